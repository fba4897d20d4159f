"""Reading specification files (YAML with positions, validation, errors with file:line:col).

Kept so that ``from panopticon.specfile import ...`` keeps working: this module only
re-exports :mod:`panopticon.spec.files`, where the code lives.
"""

from __future__ import annotations

from panopticon.spec.files import (
    EXPECTED,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_PROBLEMS,
    KeyPath,
    M,
    Positions,
    capped,
    check_kind,
    did_you_mean,
    dotted,
    exponent_hint,
    known_keys,
    locate,
    parse_yaml,
    problems_from,
    read_text,
    read_yaml,
    validate,
)

__all__ = [
    "EXPECTED",
    "KeyPath",
    "M",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_PROBLEMS",
    "Positions",
    "capped",
    "check_kind",
    "did_you_mean",
    "dotted",
    "exponent_hint",
    "known_keys",
    "locate",
    "parse_yaml",
    "problems_from",
    "read_text",
    "read_yaml",
    "validate",
]
