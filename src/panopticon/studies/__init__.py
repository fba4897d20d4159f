"""Studies: the questions panopticon answers by experiment, one module and one scenario family
(``<name>.yaml``) each; ``panopticon study NAME`` (and ``make studies``) runs one and writes
``docs/studies/<name>.md`` and its offline report. See :mod:`panopticon.studies.base`."""

from __future__ import annotations

import difflib

from panopticon.errors import UserError
from panopticon.studies.base import SCALES, Study, run_study

STUDIES: dict[str, str] = {
    "mistakes": "1. mistakes and manipulation: wrongly sanctioned by sensor errors, by group; "
                "a judge before the sanction; insiders and the audit",
    "positive": "2. positive effects: less misconduct, at what cost in chilled legitimate "
                "behaviour and wrongful sanctions",
    "oversight": "3. exemptions and oversight: exempt officials, their friends and families, "
                 "everyone else; insiders and what the audit catches",
    "abroad": "4. citizens abroad: freeze, decay, penalty or as at home; families at home",
    "visitors": "5. tourists and foreigners, rated as residents, by origin or by income",
}
"""The studies, in the order of the questions, with the question each answers."""

CLASSES: dict[str, str] = {name: f"panopticon.studies.{name}:{name.capitalize()}"
                           for name in STUDIES}
"""Where each study's class lives (``module:Class``), imported only when asked for."""


def get(name: str) -> Study:
    """The study called ``name``; an unknown name is a user error with a suggestion."""
    if name in STUDIES:
        import importlib

        module, cls = CLASSES[name].split(":")
        return getattr(importlib.import_module(module), cls)()
    hint = difflib.get_close_matches(name, list(STUDIES), n=1)
    raise UserError(f"no study {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                    + f" (studies: {', '.join(STUDIES)})")


__all__ = ["SCALES", "STUDIES", "get", "run_study"]
