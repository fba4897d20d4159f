"""The policy file: score, rules, tiers and association, as frozen validated data.

Points are written in points (e.g. ``-5``, ``2.5``) and stored as integer milli-points
(:data:`MILLI`), so every score change is an exact integer and sums do not depend on order.
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from panopticon.spec.types import Probability, Strict

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


def _whole_milli(points: float) -> float:
    to_milli(points)
    return points


Points = Annotated[float, AfterValidator(_whole_milli)]
"""A number of points with at most 3 decimals, within ±MAX_POINTS (exact in milli-points)."""


class ScoreSpec(Strict):
    """The score's start value and bounds, in points.

    ``start`` is a number or an expression over citizen columns (a base score from residency
    and income, say), evaluated once on day 0. With ``formula`` (the ``formula`` family) the
    score is recomputed from that expression every ``every_days`` days.

    ``realtime`` (default): sanctions and perks read the standing at the end of the day, so
    what a citizen buys in the morning counts for the loan they ask for in the afternoon;
    false: they read the standing at the start of the day (yesterday's score).
    """

    start: float | str = 1000.0
    min: float | None = None
    max: float | None = None
    formula: str | None = None
    every_days: Annotated[int, Field(ge=1, le=3650)] = 30
    realtime: bool = True

    @model_validator(mode="after")
    def _bounds(self):
        for name in ("start", "min", "max"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                try:
                    to_milli(value)
                except ValueError as exc:
                    raise ValueError(f"{name} {exc}; got {value}") from None
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        if isinstance(self.start, str):
            return self
        if self.min is not None and self.start < self.min:
            raise ValueError(f"start ({self.start}) is below min ({self.min})")
        if self.max is not None and self.start > self.max:
            raise ValueError(f"start ({self.start}) is above max ({self.max})")
        return self


class PointsRange(Strict):
    """A discretionary deduction or award: officials pick whole points in [min, max] (drawn
    uniformly per observation)."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self):
        for v in (self.min, self.max):
            to_milli(v)
            if v != int(v):
                raise ValueError("a discretionary range is in whole points")
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class CapSpec(Strict):
    """At most ``points`` (in absolute value) from this rule per citizen in each period of
    ``days`` days (periods start on day 0, day ``days``, ...)."""

    points: Annotated[Points, Field(gt=0)]
    days: Annotated[int, Field(ge=1, le=36_500)]


class WindowSpec(Strict):
    """The rule applies from ``from_day`` (inclusive) to ``to_day`` (exclusive; open if absent).
    Days are bounded by the longest run (36,500 days): beyond it a day means nothing, and an
    unbounded whole number does not fit the rule tables' int64."""

    from_day: Annotated[int, Field(ge=0, le=36_500)] = 0
    to_day: Annotated[int, Field(ge=1, le=36_500)] | None = None

    @model_validator(mode="after")
    def _opens(self):
        if self.to_day is not None and self.to_day <= self.from_day:
            raise ValueError(f"to_day ({self.to_day}) must be after from_day ({self.from_day})")
        return self


class OverrideSpec(Strict):
    """After the event the citizen's tier is at best ``max_tier`` for ``days`` days, whatever
    the points (e.g. drunk driving caps the grade at C)."""

    max_tier: str
    days: Annotated[int, Field(ge=1, le=36_500)]


class RuleSpec(Strict):
    """An observed event changes the score.

    ``points`` is fixed or a discretionary range; ``where`` limits the rule to citizens for
    whom a condition holds (regional pilots, foreigners, ...); ``active`` limits it in time;
    ``cap`` bounds its total per period; ``expires_after_days`` reverses each change after that
    many days (old deductions expire); ``override`` caps the tier for a while. Several rules may
    name the same event: each one that applies does.
    """

    event: str
    points: Points | PointsRange = 0.0
    name: str | None = None
    where: str | None = None
    active: WindowSpec | None = None
    cap: CapSpec | None = None
    expires_after_days: Annotated[int, Field(ge=1, le=36_500)] | None = None
    override: OverrideSpec | None = None


    @property
    def label(self) -> str:
        """The rule's name in ledgers and reports."""
        return self.name or self.event


class TierSpec(Strict):
    """A grade band: citizens whose score is at least ``min`` (points) and below the tier above."""

    name: Annotated[str, Field(min_length=1, max_length=32)]
    min: float | None = None


class AssociationSpec(Strict):
    """Standing through ties, every ``every_days`` days, synchronously. Either a pull:
    ``score += weight * (mean score of ties - score)``, rounded to the nearest milli-point; or
    guilt by association: ``score += points * (number of ties on list <listed>)``."""

    ties: TieKind
    weight: Probability = 0.0
    listed: str | None = None
    points: Points = 0.0
    every_days: Annotated[int, Field(ge=1, le=3650)] = 7
    name: str | None = None

    @field_validator("weight")
    @classmethod
    def _ppm(cls, v: float) -> float:
        if abs(round(v * 1_000_000) - v * 1_000_000) > 1e-6:
            raise ValueError("weight must be a multiple of 0.000001")
        return v

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.weight > 0) == (self.listed is not None) or (self.listed is None and self.points):
            raise ValueError("give either a pull weight, or listed and points (not both)")
        if self.listed is not None and self.points == 0:
            raise ValueError("listed ties need points (e.g. -20 per listed tie)")
        return self

    @property
    def label(self) -> str:
        """The rule's name in ledgers and reports."""
        if self.name:
            return self.name
        return f"association:{self.ties}" + (f":{self.listed}" if self.listed else "")


Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class RestoreSpec(Strict):
    """Credit restoration by application: once a listed citizen has had no new entry trigger
    for ``clean_days``, they apply with probability ``apply_rate`` a day and are removed."""

    clean_days: Annotated[int, Field(ge=0, le=36_500)]
    apply_rate: Probability


class ListSpec(Strict):
    """A blacklist or redlist: who enters, for how long, and how they get off it."""

    name: Name
    kind: Literal["blacklist", "redlist"]
    description: str = ""
    enter_on: list[str] = []
    enter_when: str | None = None
    days: Annotated[int, Field(ge=1, le=36_500)] | None = None
    extend_days: Annotated[int, Field(ge=0, le=36_500)] = 0
    leave_on: list[str] = []
    leave_when: str | None = None
    restore: RestoreSpec | None = None

    @model_validator(mode="after")
    def _has_entry(self):
        if not self.enter_on and self.enter_when is None:
            raise ValueError("a list needs enter_on events or an enter_when condition")
        return self


class ConsequenceSpec(Strict):
    """Joint sanctions denied, or perks granted, to citizens for whom ``when`` holds."""

    when: str
    deny: list[str] = []
    grant: list[str] = []

    @model_validator(mode="after")
    def _something(self):
        if not self.deny and not self.grant:
            raise ValueError("name the sanctions to deny or the perks to grant")
        return self


class AbroadSpec(Strict):
    """How citizens living abroad are scored (domestic sensors do not see them):

    ``as_home``: like everyone else (only phantoms and association reach them); ``freeze``:
    their standing does not change at all; ``decay``: every ``every_days`` days their score
    moves ``rate`` of the way back to the start score; ``penalty``: every ``every_days`` days
    they lose ``points`` for missing data.
    """

    mode: Literal["as_home", "freeze", "decay", "penalty"] = "as_home"
    rate: Probability = 0.0
    points: Annotated[Points, Field(ge=0)] = 0.0
    every_days: Annotated[int, Field(ge=1, le=3650)] = 30


class ScopeSpec(Strict):
    """Who is scored, and how. ``exempt`` (a condition on citizens' attributes, e.g.
    ``rank >= 3``) names those the system never scores or lists: their standing never changes.
    Resident foreigners and tourists can get their own rules (``where``) and a base score
    (``score.start`` as an expression of residency and income)."""

    exempt: str | None = None
    abroad: AbroadSpec = AbroadSpec()


class PeerRatingSpec(Strict):
    """The ``peer_rating`` family: citizens rate each other after interactions, and the score
    is the weighted mean of the stars a citizen has received.

    Each day a citizen receives a Poisson number of ratings (mean ``ratings_per_day``) from
    ties of the ``ties`` layer. A rating is ``opinion`` (an expression over the rated citizen's
    columns, in stars) plus normal noise of sd ``noise``, rounded to whole stars and clipped to
    1-5. A rating weighs ``(rater's score / 5) ** rater_weight_exponent``; ``prior`` ratings of
    ``score.start`` stars stand in for the past. After one of ``incident_events``, negative
    ratings (below 3 stars) weigh ``incident_weight`` times as much for ``incident_days`` days.
    Rules add their points on top of the mean (an official deduction of 1 star, say).
    """

    ties: Literal["family", "friends", "work", "partner"] = "friends"
    ratings_per_day: Annotated[float, Field(gt=0, le=20)] = 1.0
    opinion: str = "3.5"
    noise: Annotated[float, Field(ge=0, le=5)] = 0.8
    rater_weight_exponent: Annotated[float, Field(ge=0, le=10)] = 2.0
    prior: Annotated[float, Field(ge=0, le=1000)] = 5.0
    incident_events: list[str] = []
    incident_weight: Annotated[float, Field(ge=1, le=100)] = 1.0
    incident_days: Annotated[int, Field(ge=0, le=3650)] = 1


class PolicySpec(Strict):
    """A social credit policy: how standing is scored, listed, and what it leads to.

    Families: ``points`` (additive points and grade bands), ``list`` (blacklists and redlists,
    no score), ``formula`` (a score recomputed from an expression, e.g. a weighted
    multi-dimension score), ``peer_rating`` (1-5 stars from other citizens, weighted by the
    rater's own score; fiction).
    """

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    family: Literal["points", "list", "formula", "peer_rating"] = "points"
    fiction: bool = False
    score: ScoreSpec = ScoreSpec()
    rules: Annotated[list[RuleSpec], Field(max_length=250)] = []
    tiers: Annotated[list[TierSpec], Field(min_length=1, max_length=50)] = [TierSpec(name="all")]
    lists: list[ListSpec] = []
    sanctions: list[ConsequenceSpec] = []
    association: list[AssociationSpec] = []
    scope: ScopeSpec = ScopeSpec()
    peer_rating: PeerRatingSpec | None = None

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

    @field_validator("lists")
    @classmethod
    def _distinct_lists(cls, lists: list[ListSpec]) -> list[ListSpec]:
        names = [x.name for x in lists]
        if len(set(names)) != len(names):
            raise ValueError(f"list names must be distinct; got {names}")
        return lists

    @model_validator(mode="after")
    def _listed_ties_name_lists(self):
        names = [x.name for x in self.lists]
        for a in self.association:
            if a.listed is not None and a.listed not in names:
                close = difflib.get_close_matches(a.listed, names, 3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ValueError(f"association names list {a.listed!r}{hint}; the lists are "
                                 f"{names}")
        return self

    @model_validator(mode="after")
    def _family(self):
        if self.family == "formula" and self.score.formula is None:
            raise ValueError("the formula family needs score.formula")
        if self.family != "formula" and self.score.formula is not None:
            raise ValueError("score.formula belongs to the formula family (family: formula)")
        if (self.family == "peer_rating") != (self.peer_rating is not None):
            raise ValueError("the peer_rating family and the peer_rating section go together")
        if self.family == "peer_rating" and (isinstance(self.score.start, str)
                                             or not 1 <= self.score.start <= 5):
            raise ValueError("a peer rating starts at a number of stars from 1 to 5")
        return self

    @property
    def tier_names(self) -> list[str]:
        """Tier names from the highest to the lowest."""
        return [t.name for t in self.tiers]
