"""The policy schema (what the system scores and how).

Kept so that ``from panopticon.policy.schema import ...`` keeps working: this module only
re-exports :mod:`panopticon.spec.policy`, where the models live.
"""

from __future__ import annotations

from panopticon.spec.policy import (
    MAX_POINTS,
    MILLI,
    AbroadSpec,
    AssociationSpec,
    CapSpec,
    ConsequenceSpec,
    ListSpec,
    Name,
    OverrideSpec,
    PeerRatingSpec,
    Points,
    PointsRange,
    PolicySpec,
    RestoreSpec,
    RuleSpec,
    ScopeSpec,
    ScoreSpec,
    TieKind,
    TierSpec,
    WindowSpec,
    to_milli,
)

__all__ = [
    "AbroadSpec",
    "AssociationSpec",
    "CapSpec",
    "ConsequenceSpec",
    "ListSpec",
    "MAX_POINTS",
    "MILLI",
    "Name",
    "OverrideSpec",
    "PeerRatingSpec",
    "Points",
    "PointsRange",
    "PolicySpec",
    "RestoreSpec",
    "RuleSpec",
    "ScopeSpec",
    "ScoreSpec",
    "TieKind",
    "TierSpec",
    "WindowSpec",
    "to_milli",
]
