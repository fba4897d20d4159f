"""Drawing from the specification's distributions (inverse CDFs of uniforms).

Kept so that ``from panopticon.society.sampling import ...`` keeps working: this module only
re-exports :mod:`panopticon.spec.sampling`, where the samplers live (next to the
distributions they draw, so that checks can draw without importing the society).
"""

from __future__ import annotations

from panopticon.spec.sampling import (
    draw,
    draw_by,
    normal_quantile,
    table_codes,
    truncated_standard_normal,
)

__all__ = [
    "draw",
    "draw_by",
    "normal_quantile",
    "table_codes",
    "truncated_standard_normal",
]
