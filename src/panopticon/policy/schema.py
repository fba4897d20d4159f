"""The policy file: score, rules, tiers and association, as frozen validated data.

Points are written in points (e.g. ``-5``, ``2.5``) and stored as integer milli-points
(:data:`MILLI`), so every score change is an exact integer and sums do not depend on order.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from panopticon.spec import Probability, Strict

MILLI = 1000
"""Fixed-point scale: one point = 1000 milli-points."""

TieKind = Literal["family", "friends", "work", "partner"]


MAX_POINTS = 1e9
"""Largest magnitude of any score, bound or delta, in points. Kept far inside int64 milli-points
(9.2e15) so that sums over ties and the exact association arithmetic cannot overflow."""


def to_milli(points: float) -> int:
    """Points as integer milli-points; refuses non-finite or huge values and values finer than
    a thousandth of a point."""
    if not math.isfinite(points) or abs(points) > MAX_POINTS:
        raise ValueError(f"must be a finite number of points within ±{MAX_POINTS:g}")
    milli = round(points * MILLI)
    if abs(milli - points * MILLI) > 1e-6 * max(1.0, abs(points)):
        raise ValueError(f"{points} has more than 3 decimals; scores are kept in milli-points")
    return milli


class ScoreSpec(Strict):
    """The score's start value and bounds, in points."""

    start: float = 1000.0
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self):
        for name in ("start", "min", "max"):
            value = getattr(self, name)
            if value is not None:
                try:
                    to_milli(value)
                except ValueError as exc:
                    raise ValueError(f"{name} {exc}; got {value}") from None
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        if self.min is not None and self.start < self.min:
            raise ValueError(f"start ({self.start}) is below min ({self.min})")
        if self.max is not None and self.start > self.max:
            raise ValueError(f"start ({self.start}) is above max ({self.max})")
        return self


class RuleSpec(Strict):
    """An observed event of a type changes the score by a number of points."""

    event: str
    points: float
    name: str | None = None

    @field_validator("points")
    @classmethod
    def _fixed_point(cls, v: float) -> float:
        to_milli(v)
        return v

    @property
    def label(self) -> str:
        """The rule's name in ledgers and reports."""
        return self.name or self.event


class TierSpec(Strict):
    """A grade band: citizens whose score is at least ``min`` (points) and below the tier above."""

    name: Annotated[str, Field(min_length=1, max_length=32)]
    min: float | None = None


class AssociationSpec(Strict):
    """Standing pulled toward ties: every ``every_days`` days, synchronously,
    ``score += weight * (mean score of ties - score)``, rounded to the nearest milli-point."""

    ties: TieKind
    weight: Probability
    every_days: Annotated[int, Field(ge=1, le=3650)] = 7
    name: str | None = None

    @field_validator("weight")
    @classmethod
    def _ppm(cls, v: float) -> float:
        if abs(round(v * 1_000_000) - v * 1_000_000) > 1e-6:
            raise ValueError("weight must be a multiple of 0.000001")
        return v

    @property
    def label(self) -> str:
        """The rule's name in ledgers and reports."""
        return self.name or f"association:{self.ties}"


class PolicySpec(Strict):
    """A scoring policy (the full language grows from this core)."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    score: ScoreSpec = ScoreSpec()
    rules: list[RuleSpec] = []
    tiers: Annotated[list[TierSpec], Field(min_length=1, max_length=50)]
    association: list[AssociationSpec] = []

    @field_validator("tiers")
    @classmethod
    def _tiers_descend(cls, tiers: list[TierSpec]) -> list[TierSpec]:
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be distinct; got {names}")
        if tiers[-1].min is not None:
            raise ValueError("the last (lowest) tier must have no min: it takes every score below")
        mins = [t.min for t in tiers[:-1]]
        if any(m is None for m in mins):
            raise ValueError("every tier but the last needs a min")
        if any(a <= b for a, b in zip(mins, mins[1:], strict=False)):
            raise ValueError(f"tier mins must strictly decrease from the first tier; got {mins}")
        for m in mins:
            to_milli(m)
        return tiers

    @field_validator("rules")
    @classmethod
    def _one_rule_per_event(cls, rules: list[RuleSpec]) -> list[RuleSpec]:
        events = [r.event for r in rules]
        dupes = sorted({e for e in events if events.count(e) > 1})
        if dupes:
            raise ValueError(f"one rule per event type; repeated: {dupes}")
        return rules

    @property
    def tier_names(self) -> list[str]:
        """Tier names from the highest to the lowest."""
        return [t.name for t in self.tiers]
