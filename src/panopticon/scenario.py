"""A scenario: one YAML file that says everything a run needs (society, behaviour, sensors,
policy, run settings). This is the only place defaults live.

``load_scenario(path)`` parses (aliases refused), validates (unknown keys refused) and checks
cross-references (event names, tier names) and reports every problem at once with file, line,
column and key path.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from panopticon.catalogue import (
    PACKAGED,
    Catalogue,
    CatalogueSpec,
    catalogue_of,
    check_catalogue,
)
from panopticon.errors import Problem, UserError
from panopticon.policy.schema import MAX_POINTS, PolicySpec
from panopticon.spec import (
    MAX_NUMBER,
    ByCategory,
    Distribution,
    LogNormal,
    NonNegative,
    Normal,
    NumericTable,
    PerCategory,
    Probability,
    Strict,
    Table,
)
from panopticon.specfile import (
    Positions,
    capped,
    check_kind,
    did_you_mean,
    dotted,
    locate,
    problems_from,
    read_yaml,
    validate,
)

SCHEMA_VERSION = 1
CATEGORICAL = ("sex", "region", "group", "residency", "occupation")
BUILTIN_NUMBERS = ("age", "income", "rank", "children", "score")
"""Numeric citizen columns conditions can name; traits may not reuse these names."""
RESIDENCIES = ("citizen", "resident_foreigner", "tourist")
DERIVED_OCCUPATIONS = ("minor", "retired")


def _close(name: str, options) -> str:
    """`` (did you mean a, b?)`` for the known names closest to ``name`` (an event, tier,
    sanction, source, ...): close spellings, else names that share its first word
    (``red_lite`` -> ``red_light``); ``""`` when there are none."""
    options = [str(o) for o in options]
    close = difflib.get_close_matches(name, options, 3) or [
        o for o in options if o.split("_")[0] == name.split("_")[0]][:3]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def canonical_digest(data: dict) -> str:
    """SHA-256 of a scenario as JSON data (sorted keys, no spaces), without the run settings
    that only change how a run is written (:data:`WRITING_ONLY`)."""
    data = {**data, "run": {k: v for k, v in data.get("run", {}).items()
                            if k not in WRITING_ONLY}}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _unknown_category(attr: str, cat: str, categories: dict) -> str:
    """The message for a category the society does not have (``region: urbn``)."""
    return f"unknown {attr} {cat!r}{_close(cat, categories[attr])}; this society has " \
           f"{categories[attr]}"


ScoreLevel = Annotated[float, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
"""A score threshold in points, within the scores' range (it is compared in milli-points)."""


# ---------------------------------------------------------------- society
def _whole(v: object, lo: int, hi: int) -> bool:
    """Whether ``v`` is a whole number in [lo, hi] (booleans and infinities are not)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi and v == int(v)


class HouseholdSpec(Strict):
    """How citizens live together. Members beyond the couple are children with ``child_share``."""

    size: Table = Table(values=[1, 2, 3, 4, 5, 6], weights=[0.25, 0.29, 0.21, 0.15, 0.07, 0.03])
    partnered: Probability = 0.75
    child_share: Probability = 0.6

    @field_validator("size")
    @classmethod
    def _sizes(cls, size: Table) -> Table:
        for v in size.values:
            if not _whole(v, 1, 20):
                raise ValueError(f"household sizes must be whole numbers 1-20; got {v!r}")
        return size


class FriendsSpec(Strict):
    """Friendship as a small world (Watts-Strogatz): a ring lattice, far ends rewired."""

    mean_degree: Annotated[int, Field(ge=0, le=200, multiple_of=2)] = 10
    rewire: Probability = 0.1


class WorkSpec(Strict):
    """Working adults are split into teams; everyone in a team is tied to everyone else."""

    team_size: Annotated[int, Field(ge=1, le=100)] = 8


class TiesSpec(Strict):
    """Tie layers; family is the household (and the partner)."""

    friends: FriendsSpec = FriendsSpec()
    work: WorkSpec = WorkSpec()
    family: bool = True


ORIGIN_HOME = "home"
"""The ``origin`` of every resident (citizens and resident foreigners) in a society with
visitors; visitors' origins are their nationalities."""


class VisitorsSpec(Strict):
    """Tourists and short-stay foreigners: ``pool`` extra people (slots numbered after the
    residents) who arrive and leave. Each day ``arrivals_per_day`` of the absent ones arrive
    (its whole part every day, its fraction with that probability) and stay ``stay_days``
    (a number, or a distribution drawn per arrival; whole days, at least 1). A visitor has an
    ``origin`` (drawn once per slot from ``origins``) and an ``income`` (one distribution, or
    one per origin); age, sex, region, group and occupation are drawn like residents', the
    residency is ``tourist``. Visitors have no household, ties or partner, and never try
    opportunities. A slot is one person, who may visit several times; on each arrival their
    standing starts afresh (``score.start``). While away they are frozen like exempt citizens:
    no true events, no observations, no score changes, no listings."""

    pool: Annotated[int, Field(ge=1, le=10_000_000)]
    arrivals_per_day: Annotated[float, Field(ge=0, le=10_000_000)]
    stay_days: Annotated[float, Field(ge=1, le=3650)] | Distribution = 7
    origins: Table = Table(values=["foreign"], weights=[1.0])
    income: Distribution | dict[str, Distribution] = LogNormal(kind="lognormal", median=6000,
                                                               sigma=0.8)
    """Yuan per month: one distribution, or one per origin (every origin named)."""

    @field_validator("origins")
    @classmethod
    def _origin_names(cls, table: Table) -> Table:
        names = table.labels()
        bad = [v for v in names if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", str(v))]
        if bad:
            raise ValueError(f"origins must be lowercase names (a-z, 0-9, _); got {bad}")
        if ORIGIN_HOME in names:
            raise ValueError(f"{ORIGIN_HOME!r} is the residents' origin; name visitors' "
                             "origins otherwise")
        if len(set(names)) != len(names) or len(names) > 250:
            raise ValueError("origins must be distinct, at most 250")
        return table

    @model_validator(mode="after")
    def _income_by_origin(self):
        if isinstance(self.income, dict):
            names = self.origins.labels()
            missing = sorted(set(names) - set(self.income))
            extra = sorted(set(self.income) - set(names))
            if missing or extra:
                raise ValueError(f"income by origin must name every origin ({names}); "
                                 f"missing {missing}, unknown {extra}")
        return self


class SocietySpec(Strict):
    """Who lives in the synthetic society and how they are tied. Distributions are data [A]."""

    households: HouseholdSpec = HouseholdSpec()
    female_share: Probability = 0.49
    """Share of women in the whole population (couples are one woman and one man)."""
    adult_age: PerCategory = Normal(kind="normal", mean=43, sd=15, min=18, max=90)
    region: Table = Table(values=["urban", "rural"], weights=[0.65, 0.35])
    group: Table = Table(values=["majority", "minority"], weights=[0.91, 0.09])
    residency: Table = Table(values=list(RESIDENCIES), weights=[0.995, 0.003, 0.002])
    income: PerCategory = LogNormal(kind="lognormal", median=4000, sigma=0.7)
    occupation: Table = Table(
        values=["farmer", "worker", "service", "professional", "official", "unemployed"],
        weights=[0.22, 0.25, 0.25, 0.13, 0.03, 0.12])
    official_rank: Table = Table(values=[1, 2, 3, 4, 5], weights=[0.5, 0.3, 0.13, 0.05, 0.02])
    retirement_age: NonNegative = 65
    abroad_share: Probability = 0.0
    """Share of adult citizens (residency ``citizen``) living abroad: domestic sensors do not
    see what they do; the policy's ``scope.abroad`` says how they are scored."""
    ties: TiesSpec = TiesSpec()
    traits: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")], PerCategory] = {}
    """Further numeric traits drawn once per citizen (e.g. a true creditworthiness), usable in
    conditions, start scores and loan repayment like ``income``."""
    visitors: VisitorsSpec | None = None
    """Tourists and short-stay foreigners who arrive and leave (none by default)."""

    @field_validator("adult_age")
    @classmethod
    def _one_age(cls, dist):
        # ages are drawn before the categories a ByCategory would pick by (the population
        # draws one age distribution for everyone): refuse here, not with a traceback there
        if isinstance(dist, ByCategory):
            raise ValueError("adult_age takes one distribution for every adult; ages by "
                             "category are not supported")
        return dist

    @field_validator("traits")
    @classmethod
    def _trait_names(cls, traits: dict) -> dict:
        clash = sorted(set(traits) & {*BUILTIN_NUMBERS, *CATEGORICAL, "tier", "true_score",
                                    "origin"})
        if clash:
            raise ValueError(f"trait names {clash} are taken by built-in columns")
        if len(traits) > 20:
            raise ValueError("at most 20 traits")
        return traits

    @field_validator("residency")
    @classmethod
    def _residencies(cls, table: Table) -> Table:
        bad = [v for v in table.labels() if v not in RESIDENCIES]
        if bad:
            raise ValueError(f"residency values must be among {list(RESIDENCIES)}; got {bad}")
        return table

    @model_validator(mode="after")
    def _visitors_are_tourists(self):
        if self.visitors is not None and "tourist" not in self.residency.labels():
            raise ValueError("visitors have residency 'tourist': add it to residency.values "
                             "(with weight 0 if no resident is a tourist)")
        return self

    @field_validator("official_rank")
    @classmethod
    def _ranks(cls, table: Table) -> Table:
        for v in table.values:
            if not _whole(v, 1, 100):
                raise ValueError(f"official ranks must be whole numbers 1-100; got {v!r}")
        return table

    @field_validator("region", "group", "occupation")
    @classmethod
    def _few_categories(cls, table: Table) -> Table:
        if len(table.values) > 250:
            raise ValueError("at most 250 categories")
        return table

    @field_validator("occupation")
    @classmethod
    def _not_reserved(cls, table: Table) -> Table:
        reserved = sorted(set(table.labels()) & set(DERIVED_OCCUPATIONS))
        if reserved:
            raise ValueError(f"{reserved} are given by age (under 18, at retirement_age); "
                             "use other names")
        return table


# ---------------------------------------------------------------- behaviour
class Bands(Strict):
    """Piecewise-constant factor of a numeric attribute: ``factors[k]`` between edges k-1 and k."""

    edges: Annotated[list[float], Field(min_length=1)]
    factors: list[NonNegative]

    @model_validator(mode="after")
    def _shape(self):
        if len(self.factors) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) + 1} factors; "
                             f"got {len(self.factors)}")
        if any(a >= b for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must increase")
        return self


class EventBehaviour(Strict):
    """How often citizens really do one kind of thing, per citizen-day.

    ``rate`` is a number or a distribution drawn once per citizen; it is multiplied by
    ``multipliers[attribute][category]`` and by ``bands`` of age or income. Citizens below
    ``min_age`` never do it.
    """

    rate: NonNegative | Distribution | None = None
    multipliers: dict[Literal["sex", "region", "group", "residency", "occupation"],
                      dict[str, NonNegative]] = {}
    bands: dict[Literal["age", "income"], Bands] = {}
    min_age: NonNegative = 16


class DeterrenceSpec(Strict):
    """End of each day, citizens in ``tiers`` multiply their rates of ``events`` by ``factor``."""

    tiers: Annotated[list[str], Field(min_length=1)]
    events: Annotated[list[str], Field(min_length=1)]
    factor: Annotated[float, Field(gt=0, le=1)]


class PerceivedDeterrenceSpec(Strict):
    """Deterrence that emerges from the policy and the sensors instead of a factor typed in
    (Becker's certainty times severity): a citizen's rate of each of ``events`` is their own
    rate times ``exp(-sensitivity * chance * points)``, where ``chance`` is the chance that
    one such event of theirs is recorded where they live (a source's coverage of their region
    times its detection, today's: it follows a reallocation; with several sources, that any
    records it) and ``points`` the points
    one recorded event costs under the policy's rules (the negative ones; a range at its
    middle; windows and ``where`` not considered) [A]. Citizens abroad (not seen by domestic
    sources) and exempt citizens (not scored) expect no cost and are not deterred."""

    events: Annotated[list[str], Field(min_length=1)]
    sensitivity: Annotated[float, Field(ge=0, le=100)]


class ResponseSpec(Strict):
    """How citizens adapt, each day, while ``when`` holds for them (a condition, evaluated at
    the end of the day on their standing: ``tier``, ``score``, ``listed(...)``, ...).

    Either ``factor``: their rates of ``events`` are multiplied by it every such day
    (deterrence and chilling below 1, gaming above 1), never beyond ``limit`` times the rate
    they started with; or ``rate``: their rate is this many events a day while ``when`` holds
    and their own rate otherwise (e.g. listed debtors paying up).
    """

    when: Annotated[str, Field(min_length=1, max_length=500)]
    events: Annotated[list[str], Field(min_length=1)]
    factor: Annotated[float, Field(gt=0, le=10)] | None = None
    limit: Annotated[float, Field(gt=0, le=1000)] | None = None
    rate: Annotated[float, Field(ge=0, le=20)] | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.factor is None) == (self.rate is None):
            raise ValueError("give either factor (a daily multiplier) or rate (events a day)")
        if self.limit is not None and self.factor is None:
            raise ValueError("limit bounds a factor; a rate needs no limit")
        if self.limit is not None and (self.factor - 1) * (self.limit - 1) < 0:
            side = "a floor, at most 1" if self.factor < 1 else "a ceiling, at least 1"
            raise ValueError(f"with factor {self.factor:g} the limit is {side} (times the "
                             f"starting rate); got {self.limit:g}")
        return self


class UnfriendingSpec(Strict):
    """Citizens drop ties to people of another standing and tie to their own tier instead
    (Holme & Newman 2006 rewiring, with the tier as the opinion). Each day a citizen acts with
    ``probability``: they look at one of their ties on ``layer``, and drop it if that person's
    tier is ``worse`` than theirs (or just ``different``), tying to a random citizen of their
    own tier."""

    layer: Literal["friends", "work"] = "friends"
    probability: Probability
    drop: Literal["worse", "different"] = "worse"
    every_days: Annotated[int, Field(ge=1, le=3650)] = 1
    """Citizens act on days whose 1-based number is a multiple of this (``probability`` is
    per such day): rewiring weekly costs a seventh of rewiring daily on large societies."""


class PartnersSpec(Strict):
    """A partner market: each day a couple splits with probability ``breakup``, and a single
    adult looks for a partner with probability ``meet``. Seekers are matched woman to man by
    rank of ``assortativity`` x score rank + (1 - ``assortativity``) x chance, so 1 pairs
    equal standings and 0 ignores the score [A]."""

    breakup: Probability = 0.0002
    meet: Probability = 0.002
    assortativity: Probability = 0.0
    every_days: Annotated[int, Field(ge=1, le=3650)] = 1
    """The market opens on days whose 1-based number is a multiple of this (``breakup`` and
    ``meet`` are per such day)."""


class BehaviourSpec(Strict):
    """Which kinds of behaviour happen in this society, and how citizens adapt."""

    events: dict[str, EventBehaviour] = {}
    deterrence: list[DeterrenceSpec] = []
    perceived_deterrence: list[PerceivedDeterrenceSpec] = []
    responses: list[ResponseSpec] = []
    unfriending: UnfriendingSpec | None = None
    partners: PartnersSpec | None = None


# ---------------------------------------------------------------- opportunities
class RepaymentTable(Strict):
    """A lookup: citizens whose ``column`` is at least ``at[k]`` (and below ``at[k+1]``) repay
    with probability ``probability[k]``; below ``at[0]`` they repay with ``probability[0]``.
    With ``by``, ``probability`` is one such list per category of that attribute (a table
    over category x bin); with ``by_column`` and ``by_at``, one list per bin of a second
    numeric column (a table over bin x bin)."""

    column: str
    at: Annotated[list[float], Field(min_length=1, max_length=1000)]
    probability: list[Probability] | dict[str, list[Probability]] | list[list[Probability]]
    by: Literal["group", "sex", "region", "residency", "occupation"] | None = None
    """None: one list of probabilities for everyone (the default). An attribute: the
    probabilities are ``{category: [...]}``, one list (as long as ``at``) for every category
    of it, read by the borrower's category."""
    by_column: str | None = None
    """None: no second axis (the default). A numeric column (as ``column``): ``probability``
    is a list of rows, row r for citizens whose ``by_column`` is at least ``by_at[r]`` (row 0
    below ``by_at[0]`` too), each row as long as ``at``."""
    by_at: Annotated[list[float], Field(min_length=1, max_length=1000)] | None = None
    """The increasing row edges of ``by_column`` (one per row of ``probability``)."""

    @model_validator(mode="after")
    def _shape(self):
        grid = isinstance(self.probability, list) and any(
            isinstance(r, list) for r in self.probability)
        if self.by is not None and self.by_column is not None:
            raise ValueError("give 'by' (a category) or 'by_column' (a numeric column), not both")
        if (self.by_column is None) != (self.by_at is None):
            raise ValueError("'by_column' and 'by_at' go together: the second column and its "
                             "row edges")
        if self.by is None and isinstance(self.probability, dict):
            raise ValueError("probability: one list per category needs 'by' (the attribute, "
                             "e.g. by: group); without it give one list")
        if self.by is not None and not isinstance(self.probability, dict):
            raise ValueError(f"probability: with by: {self.by}, give one list per {self.by}, "
                             f"e.g. {{{self.by}_a: [...], {self.by}_b: [...]}}")
        if self.by_column is not None and not grid:
            raise ValueError(f"probability: with by_column: {self.by_column}, give one list "
                             f"per value of by_at ({len(self.by_at)} lists)")
        if self.by_column is None and grid:
            raise ValueError("probability: a list of lists needs by_column and by_at (the "
                             "second column and its row edges)")
        if isinstance(self.probability, dict):
            rows = self.probability
        elif grid:
            if len(self.probability) != len(self.by_at):
                raise ValueError(f"{len(self.by_at)} values of 'by_at' need as many lists of "
                                 f"probabilities; got {len(self.probability)}")
            rows = {f"row {r}": row for r, row in enumerate(self.probability)}
        else:
            rows = {"": self.probability}
        for cat, row in rows.items():
            if not isinstance(row, list) or len(row) != len(self.at):
                where = f" of {cat!r}" if cat else ""
                got = len(row) if isinstance(row, list) else 1
                raise ValueError(f"{len(self.at)} values of 'at' need as many probabilities"
                                 f"{where}; got {got}")
        for key in ("at", "by_at"):
            edges = getattr(self, key) or []
            if any(a >= b for a, b in zip(edges, edges[1:], strict=False)):
                raise ValueError(f"'{key}' must increase")
        return self

    def rows(self, labels: tuple[str, ...] | list[str] = ()) -> np.ndarray:
        """The probabilities as a (rows, bins) float64 array: one row per label of ``labels``
        (the ``by`` attribute's categories, in code order), one per ``by_at`` bin, or one."""
        if isinstance(self.probability, dict):
            return np.asarray([self.probability[c] for c in labels], dtype=np.float64)
        if self.by_column is not None:
            return np.asarray(self.probability, dtype=np.float64)
        return np.asarray([self.probability], dtype=np.float64)


class LoanSpec(Strict):
    """What happens to a granted loan: after ``term_days`` it is repaid (the true event
    ``repaid_event``) with probability ``repay`` (a number, an expression over citizen
    columns such as ``0.3 + income / 20000``, clipped to 0-1, or a lookup table), else it
    defaults (``default_event``). The policy's rules score these events like any other, once
    a sensor observes them. A citizen holds one loan at a time."""

    repay: Probability | Annotated[str, Field(min_length=1, max_length=500)] | RepaymentTable
    term_days: Annotated[int, Field(ge=1, le=36_500)] = 30
    repaid_event: str = "loan_repaid"
    default_event: str = "loan_default"


class LenderSpec(Strict):
    """The lender's utilities and how it sets its thresholds (after Liu et al. 2018 and
    Hardt, Price and Srebro 2016). A repaid loan earns ``gain``, a default costs ``loss``.

    ``criterion`` ``fixed`` keeps the opportunity's ``min_score`` and only records the lending
    metrics; the others solve a threshold per category of ``by`` from the eligible citizens'
    scores and the loan's repayment table (on ``score``), on day 0 and every ``every_days``
    days after: ``max_profit`` (each category's most profitable threshold),
    ``demographic_parity`` (the most profitable thresholds that select the same share of
    every category), ``equal_opportunity`` (the most profitable thresholds that lend to the
    same share of every category's would-be repayers)."""

    gain: Annotated[float, Field(ge=0, le=1e9)] = 1.0
    """What a repaid loan earns the lender (any unit; only gain / loss matters to the
    thresholds)."""
    loss: Annotated[float, Field(ge=0, le=1e9)] = 1.0
    """What a defaulted loan costs the lender."""
    criterion: Literal["fixed", "max_profit", "demographic_parity",
                       "equal_opportunity"] = "fixed"
    """How the thresholds are set: ``fixed`` (``min_score`` as given) or solved."""
    by: Literal["group", "sex", "region", "residency", "occupation"] = "group"
    """The attribute whose categories get their own threshold and metrics."""
    every_days: Annotated[int, Field(ge=1, le=3650)] = 1
    """Solved thresholds are re-solved on days whose 0-based number is a multiple of this
    (day 0 first) and kept in between."""


class ScheduleSpec(Strict):
    """Scheduled tries, besides those drawn from the rate: every eligible citizen (at least
    ``min_age``, ``who`` holds) tries once on day ``first_day`` (0-based) and, with
    ``every_days``, again every that many days after."""

    first_day: Annotated[int, Field(ge=0, le=36_500)] = 0
    """The first day (0-based) everyone eligible tries."""
    every_days: Annotated[int, Field(ge=1, le=36_500)] | None = None
    """None: once only. k: on ``first_day``, ``first_day`` + k, ``first_day`` + 2k, ..."""


class OpportunitySpec(Strict):
    """Something citizens try, granted or refused by the policy's sanctions and perks.

    Each day an eligible citizen (at least ``min_age``, and ``who`` holds) tries it ``rate``
    times on average (Poisson; a number or a distribution drawn once per citizen, times
    ``multipliers`` and ``bands`` as for behaviour; small rates are chances per day). The
    attempt is refused if the policy denies the citizen any of ``blocked_by``, lacks any perk
    in ``needs``, or (lenders) their score is below ``min_score``. A refused citizen tries
    again the next day with probability ``retry``; a refused attempt still succeeds through
    touts or insiders with probability ``evasion``. Defaults come from the opportunity
    catalogue (``panopticon opportunities``).
    """

    rate: Annotated[float, Field(ge=0, le=20)] | Distribution | None = None
    multipliers: dict[Literal["sex", "region", "group", "residency", "occupation"],
                      dict[str, NonNegative]] = {}
    bands: dict[Literal["age", "income"], Bands] = {}
    min_age: NonNegative = 18
    who: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    blocked_by: list[str] | None = None
    needs: list[str] | None = None
    min_score: ScoreLevel | dict[Literal["group", "sex", "region", "residency"],
                                 dict[str, ScoreLevel]] | None = None
    retry: Probability = 0.0
    evasion: Probability = 0.0
    loan: LoanSpec | None = None
    accept_at_min: Probability | dict[Literal["group", "sex", "region", "residency"],
                                      dict[str, Probability]] = 1.0
    """A randomised threshold: the chance that a try whose score lies in the threshold's cell
    is accepted (1, the default: all of them; above the cell always, below never). The cell
    is the bin of the loan's repayment table on ``score`` that holds ``min_score``, or, without
    such a table, the score ``min_score`` exactly. One number, or one per category of one
    attribute."""
    lender: LenderSpec | None = None
    """The lender's gain and loss, and thresholds solved from them (None: no lending metrics,
    thresholds as ``min_score`` says)."""
    schedule: ScheduleSpec | None = None
    """Scheduled tries by every eligible citizen on given days, besides the daily ``rate``
    (None: only the rate)."""

    @field_validator("min_score", "accept_at_min")
    @classmethod
    def _one_attribute(cls, value):
        if isinstance(value, dict) and len(value) != 1:
            raise ValueError("thresholds by one attribute, e.g. {group: {majority: 600, ...}}")
        return value




# ---------------------------------------------------------------- sensors
class ReallocationSpec(Strict):
    """The predictive-policing loop: every ``every_days`` days the source's budget of covered
    citizens (sum over regions of coverage x citizens, as configured) is re-divided among
    regions in proportion to the observations it recorded there, each day's count decayed
    by ``memory``; no region's coverage exceeds 1 or, once reallocated, falls below ``floor``
    (at most the mean coverage; the budget stays exact). Shares follow
    the decayed counts to the power ``exponent``: 1 is proportional (the initial split is
    locked in, up to chance, whatever the truth), above 1 sends more to the hot spot (it runs
    away), below 1 evens out [A]. The counts may come from other sources' records too
    (``from``), each record weighted by 1 / the coverage that made it (``weighting``), with
    ``prior`` counts added before the shares; with ``units`` the coverage is whole patrol
    units placed by drawing regions from the shares (docs/scenarios.md)."""

    every_days: Annotated[int, Field(ge=1, le=3650)] = 7
    memory: Probability = 0.9
    floor: Probability = 0.0
    exponent: Annotated[float, Field(ge=0, le=10)] = 1.0
    from_: list[str] | None = Field(None, alias="from")
    """``from``: the sources whose records drive where this source's coverage goes (their
    records per region are added up); None: the source's own records (the default)."""
    prior: NonNegative | dict[str, NonNegative] = 0.0
    """Prior counts added to each region's decayed records before the shares are computed
    (one number for every region, or per region: regions not named get 0); never decayed."""
    weighting: Literal["none", "inverse_coverage"] = "none"
    """``inverse_coverage``: each record counts 1 / (the coverage of the source that made it
    in its region on that day), so a region is not rewarded for being watched (Ensign et
    al. 2018); records made where that coverage is 0 count nothing. ``none``: 1 each."""
    units: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    """Discrete allocation: on each reallocation day ``units`` patrol units are placed, each
    in a region drawn from the shares; a region's coverage is then ``min(1, units there x
    unit_coverage)``. None: coverage is the fractional share of the budget (the default)."""
    unit_coverage: Probability = 1.0
    """The share of a region's citizens one unit watches (with ``units``)."""

    model_config = ConfigDict(serialize_by_alias=True)  # written back as ``from``

    @property
    def streams(self) -> list[str] | None:
        """The ``from`` sources (None: the source itself)."""
        return self.from_


class SourceSpec(Strict):
    """One data source and its errors.

    A true event of one of ``events`` is observed with probability ``coverage[region] *
    detection``; an observed event is attributed to the wrong citizen with probability
    ``misattribution`` (the victim drawn in proportion to ``false_match_multipliers``), and each
    citizen-day the source invents ``phantom_rate`` (times the same multipliers, times coverage)
    observations of ``phantom_events`` that nobody did (data-entry and matching errors).
    """

    events: list[str]
    coverage: Probability | dict[str, Probability] = 1.0
    detection: Probability = 1.0
    misattribution: Probability = 0.0
    phantom_rate: Annotated[float, Field(ge=0, le=10)] = 0.0
    phantom_events: list[str] | None = None
    false_match_multipliers: dict[Literal["sex", "region", "group", "residency", "occupation"],
                                  dict[str, NonNegative]] = {}
    reallocate: ReallocationSpec | None = None
    """None: coverage stays as configured (the default)."""

    @property
    def invented_events(self) -> list[str]:
        """The events phantoms are drawn from: ``phantom_events``, or ``events`` if not given."""
        return self.events if self.phantom_events is None else self.phantom_events


# ---------------------------------------------------------------- governance
class AppealsSpec(Strict):
    """Due process: a citizen standing wrongly (false points, or a listing only false
    observations caused) files an appeal with daily probability ``rate`` (times
    ``multipliers`` and ``bands`` of income or age, as for behaviour: who appeals depends on
    who they are). Reviewers decide ``capacity`` appeals a day, oldest first; an appeal is
    upheld with probability ``success``, which reverses every false entry of the citizen (their
    score loses its false points, false listings are lifted). After a rejection the citizen
    may appeal again ``retry_after_days`` later."""

    rate: Probability = 0.01
    multipliers: dict[Literal["sex", "region", "group", "residency", "occupation"],
                      dict[str, NonNegative]] = {}
    bands: dict[Literal["age", "income"], Bands] = {}
    min_age: NonNegative = 18
    capacity: Annotated[int, Field(ge=0, le=10_000_000)] = 100
    success: Probability = 0.5
    retry_after_days: Annotated[int, Field(ge=1, le=36_500)] = 90


class InsiderSpec(Strict):
    """Officials who abuse their access, each acting every ``every_days`` days:

    ``lower_targets``: deducts ``points`` from ``reach`` citizens for whom ``targets`` holds
    (critics, petitioners, a rival; anyone if not given), logged as a manual adjustment by
    that official. ``raise_cronies``: adds ``points`` to ``reach`` of their own family and
    friends, logged. ``delete_entries``: silently gives back up to ``points`` of deductions to
    ``reach`` cronies, with no ledger entry. ``edit_rules``: from day ``every_days`` on,
    deductions of citizens in ``region`` are multiplied by ``factor`` under the rules' own
    names. ``officials``: how many insiders (drawn among officials; among adults if the
    society has none) [A]."""

    attack: Literal["lower_targets", "raise_cronies", "delete_entries", "edit_rules"]
    officials: Annotated[int, Field(ge=1, le=1000)] = 1
    reach: Annotated[int, Field(ge=1, le=100_000)] = 10
    every_days: Annotated[int, Field(ge=1, le=3650)] = 30
    points: Annotated[float, Field(gt=0, le=1e6)] = 50.0
    targets: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    region: str | None = None
    factor: Annotated[float, Field(gt=0, le=100)] = 2.0

    @model_validator(mode="after")
    def _region(self):
        if (self.attack == "edit_rules") != (self.region is not None):
            raise ValueError("edit_rules needs a region; only edit_rules takes one")
        if self.targets is not None and self.attack != "lower_targets":
            raise ValueError("only lower_targets picks its victims by a condition")
        return self


class ReviewSpec(Strict):
    """A judge before the sanction: a new entry on one of ``lists``, or a fall into one of
    ``tiers``, brings no sanction until a reviewer has confirmed it. Reviewers decide
    ``capacity`` cases a day, oldest first (then by citizen), each no earlier than
    ``delay_days`` after it was queued; a false case (the lab knows it is false) is dismissed
    with probability ``catch_false``, a true one with probability ``dismiss_true``. A dismissed
    listing is lifted; a dismissed fall brings no sanction while the citizen stays in the
    reviewed tiers (see docs/scenarios.md, governance.review)."""

    lists: Annotated[list[str], Field(max_length=100)] = []
    tiers: Annotated[list[str], Field(max_length=50)] = []
    capacity: Annotated[int, Field(ge=0, le=10_000_000)] = 100
    delay_days: Annotated[int, Field(ge=0, le=36_500)] = 0
    catch_false: Probability = 0.9
    dismiss_true: Probability = 0.05

    @model_validator(mode="after")
    def _something(self):
        if not self.lists and not self.tiers:
            raise ValueError("a review needs lists or tiers to review")
        for key in ("lists", "tiers"):
            names = getattr(self, key)
            if len(set(names)) != len(names):
                raise ValueError(f"{key}: a name is given twice")
        return self


class GovernanceSpec(Strict):
    """Who watches the system: appeals, a review before sanctions, and insiders who
    manipulate it."""

    appeals: AppealsSpec | None = None
    review: ReviewSpec | None = None
    insiders: Annotated[list[InsiderSpec], Field(max_length=50)] = []


# ---------------------------------------------------------------- run
class RunSpec(Strict):
    """How big and how long, and the one root seed."""

    citizens: Annotated[int, Field(ge=1, le=2_000_000_000)] = 100_000
    days: Annotated[int, Field(ge=1, le=36_500)] = 365
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    checkpoint_every: Annotated[int, Field(ge=1, le=36_500)] = 30
    write_buffer_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 256.0
    """A stored run writes its buffered days as parts once they hold this many megabytes,
    without waiting for the next checkpoint (which then lists them): memory stays bounded
    however many citizens a checkpoint interval holds."""
    survey_every: Annotated[int, Field(ge=0, le=36_500)] = 7
    """How often the slow statistics are measured, in days (also on the first and last
    day): tie statistics and expected behaviour by group. 0: never."""


WRITING_ONLY = ("checkpoint_every", "write_buffer_mb")
"""Run settings that change how a stored run is written, never what it computes."""


class ScenarioSpec(Strict):
    """Everything one run needs."""

    schema_version: Literal[1]
    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    run: RunSpec = RunSpec()
    society: SocietySpec = SocietySpec()
    behaviour: BehaviourSpec = BehaviourSpec()
    sensors: dict[str, SourceSpec] = {}
    opportunities: dict[str, OpportunitySpec] = {}
    governance: GovernanceSpec = GovernanceSpec()
    catalogue: CatalogueSpec = CatalogueSpec()
    """The scenario's own event types, data sources, sanctions, perks and opportunities,
    added to the packaged catalogue (docs/scenarios.md#catalogue)."""
    policy: PolicySpec

    @property
    def library(self) -> Catalogue:
        """The catalogue this scenario sees: the packaged entries, then its own."""
        return catalogue_of(self)

    def with_run(self, **changes: Any) -> ScenarioSpec:
        """A copy with run settings changed (validated), e.g. ``with_run(citizens=1000)``."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        try:
            run = RunSpec.model_validate({**self.run.model_dump(), **changes})
        except ValidationError as exc:
            raise UserError("invalid run settings", problems_from(
                exc, {**self.run.model_dump(), **changes}, {}, "<command line>",
                model=RunSpec)) from None
        spec = self.model_copy(update={"run": run})
        if (run.citizens, run.seed) != (self.run.citizens, self.run.seed):
            # the largest drawn rates depend on who is drawn: check them as loading does
            problems = [Problem("<command line>", 0, 0, dotted(path), message)
                        for path, message in check_limits(spec)]
            if problems:
                raise UserError(f"invalid run settings for {self.name} (run.citizens="
                                f"{run.citizens}, run.seed={run.seed})", capped(problems))
        return spec

    def set(self, key: str, value: Any) -> ScenarioSpec:
        """A copy with one setting changed by its dotted key, as written in YAML (list items
        by index), e.g. ``set("sensors.cameras.misattribution", 0.02)`` or
        ``set("policy.association.0.weight", 0.3)``; validated with exactly the checks a
        scenario file gets (names, limits), so a typo is an error, never ignored.

        Raises:
            UserError: no such key (with the keys known there), or an invalid value.
        """
        data = self.model_dump(mode="json")
        assign(data, key, value)
        return scenario_from_data(data, {}, f"<set {key}>")

    def canonical_json(self) -> str:
        """The scenario as sorted JSON: what is hashed and stored with every run."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical scenario: run settings included, except those that
        change how a run is written, never what it computes (:data:`WRITING_ONLY`: runs that
        differ only there have one digest and one fingerprint). Keys at their default are
        left out, so a key added in a later version (whose default keeps what runs did
        before) changes no scenario's digest, and writing a default out changes nothing."""
        return canonical_digest(self.model_dump(mode="json", exclude_defaults=True))

    def active_events(self) -> list[str]:
        """Event types that happen (have a rate) or can be observed, in catalogue order
        (the packaged entries, then the scenario's own). The scenario's own event types are
        always active, so that any condition may count them."""
        library = self.library
        used = set(self.behaviour.events) | library.own["events"]
        for src in self.sensors.values():
            used |= set(src.events) | set(src.phantom_events or ())
        used |= {r.event for r in self.policy.rules}
        for lst in self.policy.lists:
            used |= set(lst.enter_on) | set(lst.leave_on)
        if self.policy.peer_rating is not None:
            used |= set(self.policy.peer_rating.incident_events)
        for r in self.behaviour.responses:
            used |= set(r.events)
        for o in self.opportunities.values():
            if o.loan is not None:
                used |= {o.loan.repaid_event, o.loan.default_event}
        return [e for e in library.events if e in used]


# ---------------------------------------------------------------- loading
@dataclass(frozen=True)
class _Sections:
    """The scenario's sections that validated on their own (None where a section is invalid),
    so that name checks can run even when another part of the file has errors."""

    society: SocietySpec | None
    behaviour: BehaviourSpec | None
    sensors: dict[str, SourceSpec] | None
    opportunities: dict[str, OpportunitySpec] | None
    governance: GovernanceSpec | None
    policy: PolicySpec | None
    catalogue: CatalogueSpec | None = None


_SECTION_MODELS: dict[str, Any] = {
    "society": TypeAdapter(SocietySpec), "behaviour": TypeAdapter(BehaviourSpec),
    "sensors": TypeAdapter(dict[str, SourceSpec]),
    "opportunities": TypeAdapter(dict[str, OpportunitySpec]),
    "governance": TypeAdapter(GovernanceSpec), "policy": TypeAdapter(PolicySpec),
    "catalogue": TypeAdapter(CatalogueSpec)}


def _valid_sections(data: dict) -> _Sections:
    found = {}
    for name, adapter in _SECTION_MODELS.items():
        try:
            found[name] = adapter.validate_python(data[name]) if name in data else (
                None if name == "policy" else adapter.validate_python({}))
        except ValidationError:
            found[name] = None
    return _Sections(**found)


def _check_reallocation(sname: str, spec: ReallocationSpec | None, sources: list[str],
                        categories: dict[str, list[str]]) -> list[tuple[tuple, str]]:
    """A reallocating source's ``from`` names sources of the scenario, its ``prior`` regions
    exist, and ``units`` come without a ``floor`` (units are whole: use a prior instead)."""
    if spec is None:
        return []
    out: list[tuple[tuple, str]] = []
    path = ("sensors", sname, "reallocate")
    for j, name in enumerate(spec.from_ or ()):
        if name not in sources:
            out.append(((*path, "from", j), f"{name!r} is not a source of this scenario"
                        f"{_close(name, sources)}; its sources are {sources}"))
        elif name in spec.from_[:j]:
            out.append(((*path, "from", j), f"{name!r} is listed twice"))
    if spec.from_ == []:
        out.append(((*path, "from"), "needs at least one source (or leave it out: the "
                    "source's own records)"))
    if isinstance(spec.prior, dict) and categories:
        for region in spec.prior:
            if region not in categories["region"]:
                out.append(((*path, "prior", region),
                            _unknown_category("region", region, categories)))
    if spec.units is not None and spec.floor > 0:
        out.append(((*path, "floor"), "a floor needs fractional coverage; with units every "
                    "region's coverage is whole units (keep regions in the draw with a prior)"))
    return out


def _check_references(spec: ScenarioSpec | _Sections) -> list[tuple[tuple, str]]:
    """Cross-field checks pydantic cannot do: every name refers to something that exists.

    Checks that need a section that is itself invalid (None) are skipped.
    """
    out: list[tuple[tuple, str]] = []
    # an invalid catalogue section (None) leaves the packaged catalogue: its own names may
    # then be reported unknown besides the section's own problems
    section = spec.catalogue
    library = PACKAGED if section is None else catalogue_of(section)
    out += check_catalogue(section) if section is not None else []
    known = set(library.events)
    sources = library.sources
    soc, beh_spec, sensors, policy = spec.society, spec.behaviour, spec.sensors, spec.policy

    def event(path: tuple, name: str) -> None:
        if name not in known:
            close = _close(name, known)
            out.append((path, f"unknown event type {name!r}{close}; see `panopticon events`"))

    categories = {} if soc is None else {
        "sex": ["female", "male"], "region": soc.region.labels(), "group": soc.group.labels(),
        "residency": soc.residency.labels(),
        "occupation": [*soc.occupation.labels(), "minor", "retired"]}
    if soc is not None and soc.visitors is not None:
        categories["origin"] = [ORIGIN_HOME, *soc.visitors.origins.labels()]

    def cats(path: tuple, mapping: dict[str, dict[str, float]]) -> None:
        for attr, table in mapping.items() if categories else ():
            for cat in table:
                if cat not in categories[attr]:
                    out.append(((*path, attr, cat), _unknown_category(attr, cat, categories)))

    for attr in ("income",):  # adult_age is one distribution (SocietySpec._one_age)
        dist = getattr(soc, attr) if soc is not None else None
        if not isinstance(dist, ByCategory):
            continue
        missing = set(categories[dist.by]) - set(dist.values)
        if missing:
            out.append((("society", attr, "values"),
                        f"needs a distribution for every {dist.by}; missing {sorted(missing)}"))
        for cat in sorted(set(dist.values) - set(categories[dist.by])):
            out.append((("society", attr, "values", cat),
                        _unknown_category(dist.by, cat, categories)))
    if beh_spec is not None:
        for name, beh in beh_spec.events.items():
            event(("behaviour", "events", name), name)
            cats(("behaviour", "events", name, "multipliers"), beh.multipliers)
        for i, det in enumerate(beh_spec.deterrence):
            for j, t in enumerate(det.tiers if policy is not None else ()):
                if t not in policy.tier_names:
                    out.append((("behaviour", "deterrence", i, "tiers", j),
                                f"unknown tier {t!r}{_close(t, policy.tier_names)}; the "
                                f"policy's tiers are {policy.tier_names}"))
            for j, e in enumerate(det.events):
                event(("behaviour", "deterrence", i, "events", j), e)
        for i, det in enumerate(beh_spec.perceived_deterrence):
            for j, e in enumerate(det.events):
                event(("behaviour", "perceived_deterrence", i, "events", j), e)
    for sname, src in (sensors or {}).items():
        if sname not in sources:
            out.append((("sensors", sname), f"unknown data source {sname!r}"
                        f"{_close(sname, sources)}; known sources are {sorted(sources)}"))
        seen: set[str] = set()  # several sources may observe one event type, once each
        for j, e in enumerate(src.events):
            event(("sensors", sname, "events", j), e)
            if e in seen:
                out.append((("sensors", sname, "events", j),
                            f"{e!r} is listed twice; a source observes each event once"))
            seen.add(e)
        out += _check_reallocation(sname, src.reallocate, list(sensors), categories)
        for j, e in enumerate(src.phantom_events or ()):
            event(("sensors", sname, "phantom_events", j), e)
        if src.phantom_rate > 0 and not src.invented_events:
            out.append((("sensors", sname, "phantom_rate"),
                        "a phantom rate needs events to invent (events or phantom_events)"))
        if isinstance(src.coverage, dict) and categories:
            for region in src.coverage:
                if region not in categories["region"]:
                    out.append((("sensors", sname, "coverage", region),
                                _unknown_category("region", region, categories)))
            missing = set(categories["region"]) - set(src.coverage)
            if missing:
                out.append((("sensors", sname, "coverage"),
                            f"coverage needs every region; missing {sorted(missing)}"))
        cats(("sensors", sname, "false_match_multipliers"), src.false_match_multipliers)
    traits = tuple(soc.traits) if soc is not None else ()
    if soc is not None:
        for name, dist in soc.traits.items():
            if isinstance(dist, ByCategory):
                missing = set(categories[dist.by]) - set(dist.values)
                if missing:
                    out.append((("society", "traits", name, "values"),
                                f"needs a distribution for every {dist.by}; missing "
                                f"{sorted(missing)}"))
                for cat in sorted(set(dist.values) - set(categories[dist.by])):
                    out.append((("society", "traits", name, "values", cat),
                                _unknown_category(dist.by, cat, categories)))
    if beh_spec is not None:
        for i, resp in enumerate(beh_spec.responses):
            for j, e in enumerate(resp.events):
                event(("behaviour", "responses", i, "events", j), e)
        modes = {e: "factor" for det in [*beh_spec.deterrence, *beh_spec.perceived_deterrence]
                 for e in det.events}
        for i, resp in enumerate(beh_spec.responses):
            mode = "rate" if resp.rate is not None else "factor"
            for j, e in enumerate(resp.events):
                if modes.setdefault(e, mode) != mode:
                    out.append((("behaviour", "responses", i, "events", j),
                                f"{e!r} already has a response (or deterrence) of the other "
                                "kind; an event's responses either set a rate or multiply it "
                                "by a factor"))
    for name, opp in (spec.opportunities or {}).items():
        out += _check_opportunity(name, opp, categories, traits, library)
    if policy is not None:
        labels = {k: tuple(v) for k, v in categories.items()} if categories else None
        out += [(("policy", *path), msg)
                for path, msg in check_policy(policy, labels, traits, soc, library)]
        if labels is not None and beh_spec is not None:
            out += _check_conditions(policy, labels, traits,
                                     scenario_conditions(beh_spec, spec.opportunities or {},
                                                         spec.governance, library),
                                     library)
    for i, insider in enumerate(spec.governance.insiders if spec.governance else ()):
        if insider.region is not None and categories and insider.region not in categories[
                "region"]:
            out.append((("governance", "insiders", i, "region"),
                        _unknown_category("region", insider.region, categories)))
    review = spec.governance.review if spec.governance else None
    if review is not None and policy is not None:
        names = [x.name for x in policy.lists]
        for j, name in enumerate(review.lists):
            if name not in names:
                out.append((("governance", "review", "lists", j),
                            f"unknown list {name!r}{_close(name, names)}; the policy's "
                            f"lists are {names}"))
        for j, t in enumerate(review.tiers):
            if t not in policy.tier_names:
                out.append((("governance", "review", "tiers", j),
                            f"unknown tier {t!r}{_close(t, policy.tier_names)}; the "
                            f"policy's tiers are {policy.tier_names}"))
            elif t == policy.tier_names[0]:
                out.append((("governance", "review", "tiers", j),
                            f"{t!r} is the top tier: nobody falls into it"))
    return out


def _check_opportunity(name: str, opp: OpportunitySpec, categories: dict, traits: tuple,
                       library: Catalogue = PACKAGED) -> list[tuple[tuple, str]]:
    """An opportunity's names: a catalogue entry (or a full definition), known sanctions,
    perks, categories, columns and events."""
    out: list[tuple[tuple, str]] = []
    path = ("opportunities", name)
    catalogued = library.opportunities
    if name not in catalogued and (opp.rate is None or (opp.blocked_by is None
                                                        and opp.needs is None)):
        out.append((path, f"unknown opportunity {name!r}{_close(name, catalogued)}"
                          "; name one from "
                          "`panopticon opportunities`, or give rate and blocked_by or needs"))
    for key, table, what in (("blocked_by", library.sanctions, "sanction"),
                             ("needs", library.perks, "perk")):
        for j, x in enumerate(getattr(opp, key) or ()):
            if x not in table:
                out.append(((*path, key, j), f"unknown {what} {x!r}{_close(x, table)}"))
    if categories:
        for attr, table in opp.multipliers.items():
            for cat in table:
                if cat not in categories[attr]:
                    out.append(((*path, "multipliers", attr, cat),
                                _unknown_category(attr, cat, categories)))
        for key, what in (("min_score", "a threshold"), ("accept_at_min", "a probability")):
            value = getattr(opp, key)
            if isinstance(value, dict):
                (attr, table), = value.items()
                missing = set(categories[attr]) - set(table)
                if missing:
                    out.append(((*path, key, attr),
                                f"needs {what} for every {attr}; missing {sorted(missing)}"))
                for cat in sorted(set(table) - set(categories[attr])):
                    out.append(((*path, key, attr, cat),
                                _unknown_category(attr, cat, categories)))
        repay = opp.loan.repay if opp.loan is not None else None
        if isinstance(repay, RepaymentTable) and isinstance(repay.probability, dict):
            attr = repay.by
            missing = set(categories[attr]) - set(repay.probability)
            if missing:
                out.append(((*path, "loan", "repay", "probability"),
                            f"needs probabilities for every {attr}; missing {sorted(missing)}"))
            for cat in sorted(set(repay.probability) - set(categories[attr])):
                out.append(((*path, "loan", "repay", "probability", cat),
                            _unknown_category(attr, cat, categories)))
    out += _check_lender(path, opp)
    if opp.loan is not None:
        for key in ("repaid_event", "default_event"):
            e = getattr(opp.loan, key)
            if e not in library.events:
                out.append(((*path, "loan", key), f"unknown event type {e!r}"
                                                  f"{_close(e, library.events)}; see "
                                                  "`panopticon events`"))
        repay = opp.loan.repay
        columns = [*BUILTIN_NUMBERS, *traits]
        for key in ("column", "by_column"):
            col = getattr(repay, key, None) if isinstance(repay, RepaymentTable) else None
            if col is not None and col not in columns:
                out.append(((*path, "loan", "repay", key),
                            f"unknown column {col!r}{_close(col, columns)}; "
                            f"numeric columns are {columns}"))
    return out


def _check_lender(path: tuple, opp: OpportunitySpec) -> list[tuple[tuple, str]]:
    """A randomised threshold needs a threshold; a lender needs a loan, and a solved one a
    repayment table on ``score`` and no ``min_score`` of its own."""
    out: list[tuple[tuple, str]] = []
    if opp.accept_at_min != 1.0 and opp.min_score is None and (
            opp.lender is None or opp.lender.criterion == "fixed"):
        out.append(((*path, "accept_at_min"), "a randomised threshold needs min_score (the "
                                              "threshold whose cell it randomises)"))
    lender = opp.lender
    if lender is None:
        return out
    if opp.loan is None:
        out.append(((*path, "lender"), "a lender needs loan: {repay: ...} (the loans it "
                                       "grants and their repayment)"))
        return out
    if lender.criterion == "fixed":
        return out
    repay = opp.loan.repay
    if not isinstance(repay, RepaymentTable) or repay.column != "score":
        out.append(((*path, "lender", "criterion"),
                    f"criterion {lender.criterion} solves thresholds over the bins of the "
                    "repayment table: needs loan.repay: {column: score, at: [...], "
                    "probability: [...]}"))
    elif repay.by_column is not None:
        out.append(((*path, "lender", "criterion"),
                    f"criterion {lender.criterion} solves thresholds over the score bins of one "
                    "row per category: the repayment table cannot have by_column (use by: "
                    "<attribute> or one list)"))
    elif repay.by is not None and repay.by != lender.by:
        out.append(((*path, "lender", "by"),
                    f"the repayment table is by {repay.by}; the lender's thresholds must be "
                    f"by the same attribute (by: {repay.by})"))
    for key in ("min_score", "accept_at_min"):
        if key in opp.model_fields_set:
            out.append(((*path, key), f"set by lender.criterion {lender.criterion}; remove "
                                      f"{key} or use criterion: fixed"))
    if lender.gain == 0 and lender.loss == 0:
        out.append(((*path, "lender"), "gain and loss are both 0: every threshold would pay "
                                       "the same; give the lender a gain or a loss"))
    return out


# ---------------------------------------------------------------- limits
_U_EXTREMES = np.array([0.0, 1.0 - 2.0 ** -53])
"""The smallest and largest uniforms the generator gives: every draw lies between the draws at
these two (the samplers are inverse CDFs, non-decreasing in the uniform)."""
_CHUNK = 1 << 20


def check_limits(spec: ScenarioSpec) -> list[tuple[tuple, str]]:
    """What the run would refuse, or draw wrong, found before it builds anything.

    The run refuses a citizen with more than 20 true events a day, 20 attempts at an
    opportunity or 20 phantom records (behaviour, sanctions and sensors check the population
    they are given); a distribution whose draws overflow would give infinite incomes. These
    checks bound the same quantities with the same samplers and random streams, without a
    population, so ``validate`` refuses exactly what ``run`` would (and more only where a
    bound is not reached: a multiplier's category that no drawn citizen has, say). They take
    a few hundredths of a second per distributed rate and million citizens.
    """
    out: list[tuple[tuple, str]] = []
    soc = spec.society
    for path, dist in [(("society", "adult_age"), soc.adult_age),
                       *_per_category(("society", "income"), soc.income),
                       *(x for name, d in soc.traits.items()
                         for x in _per_category(("society", "traits", name), d))]:
        out += [(path, msg) for msg in _drawable(dist)]
    for name, beh in spec.behaviour.events.items():
        if not isinstance(beh.rate, int | float | None):
            out += [((*("behaviour", "events", name), "rate"), msg) for msg in _drawable(beh.rate)]
    for name, opp in spec.opportunities.items():
        if not isinstance(opp.rate, int | float | None):
            out += [(("opportunities", name, "rate"), msg) for msg in _drawable(opp.rate)]
    if out:
        return out
    return _rate_limits(spec) + _phantom_limits(spec)


def _per_category(path: tuple, dist) -> list[tuple[tuple, Any]]:
    if isinstance(dist, ByCategory):
        return [((*path, "values", cat), d) for cat, d in dist.values.items()]
    return [(path, dist)]


def _drawable(dist) -> list[str]:
    """Problems drawing ``dist`` with the population's own sampler: it fails (bounds too far
    from the median for a float), or its draws are not finite or beyond ±MAX_NUMBER."""
    from panopticon.society.sampling import draw

    if isinstance(dist, NumericTable):
        return []  # its values are the draws, each within ±MAX_NUMBER
    try:
        with np.errstate(all="ignore"):
            lo, hi = draw(dist, _U_EXTREMES)
    except (ValueError, OverflowError, ZeroDivisionError):
        return ["cannot be drawn: its min or max is too far from the median for a float"]
    if not (np.isfinite(lo) and np.isfinite(hi)) or max(-lo, hi) > MAX_NUMBER:
        return [f"can draw values from {lo:.3g} to {hi:.3g}; at most ±{MAX_NUMBER:g} is "
                f"supported: give it a min and max{' or a smaller sigma' * (dist.kind == 'lognormal')}"]
    return []


def _categories(soc: SocietySpec) -> dict[str, list[str]]:
    """Every category of each categorical attribute (occupation with the derived ones)."""
    return {"sex": ["female", "male"], "region": soc.region.labels(), "group": soc.group.labels(),
            "residency": soc.residency.labels(),
            "occupation": [*soc.occupation.labels(), *DERIVED_OCCUPATIONS]}


def _largest_factor(spec, categories: dict[str, list[str]], skip: str = "") -> float:
    """The largest product of ``multipliers`` (an unnamed category keeps 1) and ``bands``
    factors any citizen could get (every band and category taken as reachable)."""
    factor = 1.0
    for attr, table in spec.multipliers.items():
        if attr != skip:
            factor *= max([*table.values(), *([1.0] if set(categories[attr]) - set(table)
                                               else [])])
    for bands in getattr(spec, "bands", {}).values():
        factor *= max(bands.factors)
    return factor


def _max_uniform(key: np.uint64, n: int) -> float:
    """The largest of the ``n`` uniforms of a stream (what ``uniforms(key, n)`` gives), in
    chunks so that memory stays small for any number of citizens."""
    from panopticon.rng import uniforms

    return max(float(uniforms(key, min(_CHUNK, n - start), offset=start).max())
               for start in range(0, n, _CHUNK))


def _largest_draw(rate, default: float, limit: float, key: np.uint64, n: int) -> float:
    """The largest base rate among ``n`` citizens: the number; or the distribution's largest
    possible draw if that is within ``limit`` (a max of 1, say), else its draw at the largest
    uniform of the citizens' stream (draws are non-decreasing in the uniform); a table's
    largest value with a weight."""
    from panopticon.society.sampling import draw

    if rate is None:
        return float(default)
    if isinstance(rate, int | float):
        return float(rate)
    if isinstance(rate, NumericTable):
        return max(v for v, w in zip(rate.values, rate.weights, strict=True) if w > 0)
    largest = float(draw(rate, _U_EXTREMES[1:])[0])
    if largest <= limit:
        return largest  # no need to look at the stream
    return float(draw(rate, np.array([_max_uniform(key, n)]))[0])


def _largest_total(parts: list[tuple[float, Any, np.uint64]], n: int) -> float:
    """The largest sum over parts of factor x each citizen's own draw, citizen by citizen
    (when the sum of the parts' maxima is too coarse a bound)."""
    from panopticon.rng import uniforms
    from panopticon.society.sampling import draw

    best = 0.0
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        total = np.zeros(m)
        for factor, rate, key in parts:
            total += factor * (rate if isinstance(rate, float) else
                               draw(rate, uniforms(key, m, offset=start)))
        best = max(best, float(total.max()))
    return best


def _rate_limits(spec: ScenarioSpec) -> list[tuple[tuple, str]]:
    """Behaviour rates and opportunity attempts per citizen-day within what the run supports,
    drawn from the run's own streams (run.seed, run.citizens)."""
    from panopticon.behaviour import MAX_RATE
    from panopticon.rng import Stage, stream_key
    from panopticon.sanctions import MAX_TRIES

    out: list[tuple[tuple, str]] = []
    n, seed = spec.run.citizens, spec.run.seed
    categories = _categories(spec.society)
    drawn = f"with run.citizens={n} and run.seed={seed}"
    events = spec.active_events()
    library = spec.library
    parts, total = [], 0.0
    for name, beh in spec.behaviour.events.items():
        key = stream_key(seed, Stage.RATES, 0, events.index(name))
        factor = _largest_factor(beh, categories)
        base = _largest_draw(beh.rate, library.events[name].rate_per_day,
                             MAX_RATE / factor if factor else math.inf, key, n)
        if base * factor > MAX_RATE:
            out.append((("behaviour", "events", name, *(("rate",) if beh.rate is not None
                                                        else ())),
                        f"some citizens' rate can reach {base * factor:.3g} events a day "
                        f"({_how(beh.rate, base, factor, drawn)}); at most {MAX_RATE:g} is "
                        "supported: lower it, or give its distribution a max"))
        parts.append((factor, float(base) if isinstance(beh.rate, int | float | None)
                      else beh.rate, key))
        total += base * factor
    # the sum of each event's largest rate is a coarse bound: only when it is too high, add
    # up each citizen's own draws (still with the largest factors)
    largest = _largest_total(parts, n) if not out and total > MAX_RATE else 0.0
    if largest > MAX_RATE:
        out.append((("behaviour", "events"),
                    f"some citizens' rates can add up to {largest:.3g} events a day ({drawn}, "
                    f"with the largest multipliers and bands); at most {MAX_RATE:g} is "
                    "supported"))
    for k, (name, opp) in enumerate(spec.opportunities.items()):
        default = library.opportunities[name].rate_per_day \
            if name in library.opportunities else 0.0
        key = stream_key(seed, Stage.OPPORTUNITY, 0, 100 + k)
        factor = _largest_factor(opp, categories)
        base = _largest_draw(opp.rate, default, MAX_TRIES / factor if factor else math.inf,
                             key, n)
        if base * factor > MAX_TRIES:
            out.append((("opportunities", name, *(("rate",) if opp.rate is not None else ())),
                        f"some citizens would try it {base * factor:.3g} times a day "
                        f"({_how(opp.rate, base, factor, drawn)}); at most {MAX_TRIES:g} is "
                        "supported"))
    return out


def _how(rate, base: float, factor: float, drawn: str) -> str:
    """How a rate bound came about, for a message."""
    how = f"a rate of {base:.3g}" if isinstance(rate, int | float | None) else \
        f"the largest draw {drawn} is {base:.3g}"
    return how + (f", times multipliers and bands up to {factor:.3g}" if factor != 1 else "")


def _phantom_limits(spec: ScenarioSpec) -> list[tuple[tuple, str]]:
    """Expected phantom records per citizen-day within what the sensors support, in every
    region: phantom_rate x false_match_multipliers x coverage summed over sources. A source
    that reallocates its coverage may bring any region's to 1, so it counts with 1."""
    from panopticon.sensors import MAX_PHANTOMS

    categories = _categories(spec.society)
    for region in categories["region"]:
        lam: dict[str, float] = {}
        for name, src in spec.sensors.items():
            cov = 1.0 if src.reallocate is not None else (
                src.coverage.get(region, 0.0) if isinstance(src.coverage, dict) else src.coverage)
            by_region = src.false_match_multipliers.get("region", {}).get(region, 1.0)
            others = SimpleNamespace(multipliers=src.false_match_multipliers)
            lam[name] = src.phantom_rate * cov * by_region * _largest_factor(
                others, categories, skip="region")
        if sum(lam.values()) > MAX_PHANTOMS:
            name = max(lam, key=lam.__getitem__)
            return [(("sensors", name, "phantom_rate"),
                     f"phantom_rate times false_match_multipliers and coverage can give "
                     f"citizens of region {region!r} {sum(lam.values()):.3g} phantom records a "
                     f"day ({lam[name]:.3g} from this source); at most {MAX_PHANTOMS:g} is "
                     "supported")]
    return []


def scenario_conditions(behaviour: BehaviourSpec, opportunities: dict[str, OpportunitySpec],
                        governance: GovernanceSpec | None = None,
                        library: Catalogue = PACKAGED) -> dict[str, tuple[str, str, bool]]:
    """The scenario's own conditions by key path: (text, "bool"/"number", fixed attributes
    only). They are compiled with the policy's (same columns and functions); an
    opportunity's ``who`` defaults to its entry in ``library``."""
    found: dict[str, tuple[str, str, bool]] = {}
    for i, insider in enumerate(governance.insiders if governance else ()):
        if insider.targets is not None:
            found[f"governance.insiders[{i}].targets"] = (insider.targets, "bool", False)
    for i, resp in enumerate(behaviour.responses):
        found[f"behaviour.responses[{i}].when"] = (resp.when, "bool", False)
    for name, opp in opportunities.items():
        who = opp.who if opp.who is not None else (
            library.opportunities[name].who if name in library.opportunities else None)
        if who is not None:
            found[f"opportunities.{name}.who"] = (who, "bool", True)
        if opp.loan is not None and isinstance(opp.loan.repay, str):
            found[f"opportunities.{name}.loan.repay"] = (opp.loan.repay, "number", False)
    return found


def _check_conditions(policy: PolicySpec, labels: dict, traits: tuple,
                      conditions: dict[str, tuple[str, str, bool]],
                      library: Catalogue = PACKAGED) -> list[tuple[tuple, str]]:
    from panopticon.policy.runtime import PolicyError, compile_policy_conditions

    out = []
    for path, condition in conditions.items():
        try:
            compile_policy_conditions(policy, list(library.events), labels, traits,
                                      {path: condition}, only_extra=True)
        except PolicyError as exc:
            out.append((_key_path(exc.path), str(exc.error)))
    return out


def _key_path(path: str) -> tuple:
    """``lists[2].enter_when`` -> ("lists", 2, "enter_when")."""
    return tuple(int(p) if p.isdigit() else p
                 for p in path.replace("[", ".").replace("]", "").split("."))


def check_policy(policy: PolicySpec, labels: dict[str, tuple[str, ...]] | None = None,
                 traits: tuple[str, ...] = (), society: SocietySpec | None = None,
                 library: Catalogue = PACKAGED) -> list[tuple[tuple, str]]:
    """A policy's names and conditions: events, tiers, sanctions and perks exist, every
    condition compiles (against the society's categories; the default society if None), and
    a start score given as an expression stays within the scores' range for every citizen
    the society can hold. Names are looked up in ``library`` (a scenario's catalogue;
    the packaged one for a policy file on its own)."""
    from panopticon.policy.runtime import PolicyError, compile_policy_conditions

    events, sanctions, perks = library.events, library.sanctions, library.perks

    out: list[tuple[tuple, str]] = []

    def known(path: tuple, name: str, table, what: str) -> None:
        if name not in table:
            out.append((path, f"unknown {what} {name!r}{_close(name, table)}"))

    for i, rule in enumerate(policy.rules):
        known(("rules", i, "event"), rule.event, events, "event type")
        if rule.override is not None:
            known(("rules", i, "override", "max_tier"), rule.override.max_tier,
                  policy.tier_names, "tier")
    for k, lst in enumerate(policy.lists):
        for key in ("enter_on", "leave_on"):
            for j, e in enumerate(getattr(lst, key)):
                known(("lists", k, key, j), e, events, "event type")
    for j, e in enumerate(policy.peer_rating.incident_events if policy.peer_rating else ()):
        known(("peer_rating", "incident_events", j), e, events, "event type")
    for k, c in enumerate(policy.sanctions):
        for j, name in enumerate(c.deny):
            known(("sanctions", k, "deny", j), name, sanctions, "sanction")
        for j, name in enumerate(c.grant):
            known(("sanctions", k, "grant", j), name, perks, "perk")
    if out:
        return out
    if labels is None:
        soc = SocietySpec()
        labels = {"sex": ("female", "male"), "region": tuple(soc.region.labels()),
                  "group": tuple(soc.group.labels()), "residency": tuple(soc.residency.labels()),
                  "occupation": (*soc.occupation.labels(), *DERIVED_OCCUPATIONS)}
    try:
        compile_policy_conditions(policy, list(events), labels, traits)
    except PolicyError as exc:
        out.append((_key_path(exc.path), str(exc.error)))
    if not out and isinstance(policy.score.start, str):
        out += _start_range(policy, labels, traits, society or SocietySpec())
    return out


def _start_range(policy: PolicySpec, labels: dict, traits: tuple[str, ...],
                 society: SocietySpec) -> list[tuple[tuple, str]]:
    """``score.start`` as an expression, compiled as the run compiles it but with the range of
    every column the society can produce: its values, rounded to milli-points, must fit the
    int64 scores before min and max clip them, and within ±MAX_POINTS after."""
    from panopticon.policy.conditions import ConditionError, compile_condition
    from panopticon.policy.runtime import condition_columns
    from panopticon.policy.schema import MILLI

    spans = _column_spans(society)
    columns = {name: replace(col, span=spans.get(name)) for name, col in
               condition_columns(labels, policy.tier_names, traits).items()
               if name not in ("score", "tier")}
    s = policy.score
    try:
        start = compile_condition(s.start, columns, {}, expect="number")
    except ConditionError as exc:
        return [(("score", "start"), str(exc))]
    lo, hi = start.span
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []  # unknown (a division by something near 0): the run clips what it gets
    clipped = (lo if s.min is None else max(lo, s.min), hi if s.max is None else min(hi, s.max))
    if max(-lo, hi) * MILLI < 2**62 and max(-clipped[0], clipped[1]) <= MAX_POINTS:
        return []
    return [(("score", "start"),
             f"gives start scores from {lo:.4g} to {hi:.4g} points for the citizens this society "
             f"can hold ({_describe_spans(spans, start.columns)}); scores must "
             f"stay within ±{MAX_POINTS:g} points: scale it down, or clip it with score min and "
             f"max (which apply to values within ±{2**62 / MILLI:.2g})")]


def _column_spans(society: SocietySpec) -> dict[str, tuple[float, float]]:
    """The range of every numeric citizen column the population can hold (traits whose
    distributions cannot be drawn are left out; they are reported elsewhere)."""
    from panopticon.society.sampling import draw

    def span(dist) -> tuple[float, float] | None:
        ends: list[float] = []
        for d in dist.values.values() if isinstance(dist, ByCategory) else [dist]:
            if isinstance(d, NumericTable):
                ends += [min(d.values), max(d.values)]
                continue
            try:
                with np.errstate(all="ignore"):
                    ends += [float(x) for x in draw(d, _U_EXTREMES)]
            except (ValueError, OverflowError, ZeroDivisionError):
                return None
        return (min(ends), max(ends)) if all(math.isfinite(x) for x in ends) else None

    income = span(society.income)
    if society.visitors is not None and income is not None:
        vis = society.visitors.income
        for dist in vis.values() if isinstance(vis, dict) else [vis]:
            found = span(dist)
            income = None if found is None else (min(income[0], found[0]),
                                                 max(income[1], found[1]))
            if income is None:
                break
    out = {"age": (0.0, 120.0), "rank": (0.0, float(max(society.official_rank.values))),
           "children": (0.0, 255.0)}  # as the population stores them: uint8, ages clipped
    if income is not None:
        out["income"] = (0.0, max(income[1], 0.0))  # minors earn 0, negatives are raised to 0
    for name, dist in society.traits.items():
        if (found := span(dist)) is not None:
            out[name] = found
    return out


def _describe_spans(spans: dict, columns) -> str:
    return ", ".join(f"{k} from {lo:.4g} to {hi:.4g}" for k, (lo, hi) in sorted(spans.items())
                     if k in columns)


def preset_path(name: str) -> Path:
    """Path of a packaged scenario preset, e.g. ``seed_article``."""
    return Path(str(resources.files("panopticon") / "scenarios" / f"{name}.yaml"))


def policy_preset_path(name: str) -> Path:
    """Path of a packaged policy preset."""
    return Path(str(resources.files("panopticon") / "policy" / "presets" / f"{name}.yaml"))


def preset_names() -> list[str]:
    """Names of the packaged scenario presets."""
    folder = Path(str(resources.files("panopticon") / "scenarios"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def policy_preset_names() -> list[str]:
    """Names of the packaged policy presets."""
    folder = Path(str(resources.files("panopticon") / "policy" / "presets"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_policy(path: str | Path) -> PolicySpec:
    """Load and validate a policy file (conditions checked against the default society)."""
    data, positions = read_yaml(path)
    policy = validate(PolicySpec, data, positions, str(path), what="policy")
    problems = [Problem(str(path), *locate(positions, p), dotted(p), msg)
                for p, msg in check_policy(policy)]
    if problems:
        raise UserError("invalid policy", capped(problems))
    return policy


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Load a scenario file; ``policy`` may be inline or the name of a policy preset.

    Raises:
        UserError: with every problem found, each with file:line:col and key path.
    """
    data, positions = read_yaml(path)
    return scenario_from_data(data, positions, str(path))


def load_preset(name: str) -> ScenarioSpec:
    """Load a packaged scenario preset by name."""
    path = preset_path(name)
    if not re.fullmatch(r"[A-Za-z0-9_]+", name) or not path.exists():
        raise UserError(f"unknown preset {name!r}; presets are: {', '.join(preset_names())}")
    return load_scenario(path)


def assign(data: dict, key: str, value: Any, prefix: str = "", what: str = "scenario") -> None:
    """Set ``data[a][b]...`` for ``key`` = ``a.b...`` (list indices as numbers); the parents
    must exist, the leaf may be new (the validator then says whether it is allowed).
    ``prefix`` starts each message (e.g. ``"--set "`` for a command-line option); ``what``
    names what ``data`` is in them (``"policy"`` for a scenario's ``policy.set``)."""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        path = ".".join(parts[:depth + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, key, prefix)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict):
            hint = difflib.get_close_matches(part, list(map(str, node)), n=1)
            raise UserError(f"{prefix}{key}: the {what} has no {path!r}"
                            + (f"; did you mean {hint[0]!r}?" if hint else "")
                            + f" (known here: {', '.join(sorted(map(str, node))) or 'nothing'})")
        else:
            raise UserError(f"{prefix}{key}: {path} is not a mapping or a list")
    leaf = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, leaf, key, prefix)] = value
    elif isinstance(node, dict):
        node[leaf] = value
    else:
        raise UserError(f"{prefix}{key}: {'.'.join(parts[:-1])} is not a mapping or a list")


def _list_index(node: list, part: str, key: str, prefix: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise UserError(f"{prefix}{key}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


REFERENCE_KEYS = ("use", "set")
"""The keys of a policy given by reference: ``policy: {use: NAME_OR_PATH, set: {...}}``."""


def _is_policy_path(text: str) -> bool:
    """Whether ``use:`` names a file (has a folder separator or a YAML suffix), not a preset."""
    return "/" in text or "\\" in text or text.endswith((".yaml", ".yml"))


def _unknown_policy_preset(name: str) -> str:
    names = policy_preset_names()
    return (f"unknown policy preset {name!r}{did_you_mean(name, names)}; presets are {names}")


def _used_policy(use: Any, at: tuple, positions: Positions, file: str
                 ) -> tuple[Any, Positions, str]:
    """The policy ``use`` names, as (data, positions in its file, its file), or a UserError at
    ``at`` in the scenario: a preset name (the packaged folder) or a YAML file path (relative
    to the scenario file's folder)."""
    line, col = locate(positions, at)

    def refuse(message: str) -> UserError:
        return UserError("invalid scenario", [Problem(file, line, col, dotted(at), message)])

    if not isinstance(use, str) or not use.strip():
        raise refuse("expected a policy preset name or a policy file path (text), e.g. "
                     f"use: rongcheng_points or use: my_policy.yaml; got {use!r}")
    if not _is_policy_path(use):
        ppath = policy_preset_path(use)
        if not re.fullmatch(r"[A-Za-z0-9_]+", use) or not ppath.exists():
            raise refuse(_unknown_policy_preset(use)
                         + "; a policy file is named by a path ending in .yaml")
    else:
        if file.startswith("<"):
            raise refuse("a policy file path needs a scenario read from a file (this one was "
                         f"not: {file}); name a policy preset or paste the policy")
        ppath = Path(use).expanduser()
        if not ppath.is_absolute():
            ppath = Path(os.path.normpath(Path(file).parent / ppath))
        if not ppath.is_file():
            raise refuse(f"no such policy file {str(ppath)!r} (a relative path is read from "
                         "the scenario file's folder)")
    pfile = str(ppath)
    pdata, ppositions = read_yaml(ppath)
    check_kind(PolicySpec, pdata, ppositions, pfile, what="policy")
    if any(k in pdata for k in ("schema_version", *REFERENCE_KEYS)):
        what = "a scenario" if "schema_version" in pdata else "a policy given by reference"
        raise refuse(f"{pfile} is {what}; use takes a policy file: the policy mapping on its "
                     "own (name, rules, tiers, ...), as in src/panopticon/policy/presets/")
    return pdata, ppositions, pfile


def _set_path(data: Any, key: str) -> tuple:
    """``rules.0.points`` as the key path it set in ``data`` (list indices as numbers)."""
    out: list = []
    node = data
    for part in key.split("."):
        step: str | int = int(part) if isinstance(node, list) else part
        out.append(step)
        node = node[step] if isinstance(node, list | dict) and (
            isinstance(node, dict) and step in node or isinstance(node, list)) else None
    return tuple(out)


def resolve_policy(data: Any, positions: Positions, file: str
                   ) -> tuple[Any, Positions, dict[str, str]]:
    """The scenario data with its policy written out in full, when it is given by name
    (``policy: NAME``) or by reference (``policy: {use: NAME_OR_PATH, set: {KEY: VALUE}}``).

    ``set`` keys are dotted paths into the used policy, with the rules of the command line's
    ``--set`` (:func:`assign`): list items by index (``rules.0.points``), each value replaces
    what is there. Returns (data, positions, origins): positions of the resolved policy's keys
    point at the scenario's ``set`` entry that wrote them, or else at ``policy.use`` (or
    ``policy``); ``origins`` gives, by dotted key path, where in the used policy file a key not
    overridden was written (``file:line``), for messages.

    Raises:
        UserError: each problem at the scenario's line and key (unknown preset with "did you
            mean", missing file, a ``set`` key the policy does not have).
    """
    if not isinstance(data, dict):
        return data, positions, {}
    policy = data.get("policy")
    if isinstance(policy, str):
        name = policy
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or not policy_preset_path(name).exists():
            line, col = locate(positions, ("policy",))
            raise UserError("invalid scenario", [Problem(
                file, line, col, "policy", _unknown_policy_preset(name))])
        pdata, ppositions = read_yaml(policy_preset_path(name))
        return {**data, "policy": pdata}, positions, _origins(
            ppositions, str(policy_preset_path(name)), ())
    if not isinstance(policy, dict) or not (set(policy) & set(REFERENCE_KEYS) or (
            policy and not set(policy) & set(PolicySpec.model_fields)
            and any(did_you_mean(str(k), REFERENCE_KEYS) for k in policy))):
        return data, positions, {}
    problems = []
    for key in policy:
        if key not in REFERENCE_KEYS:
            line, col = locate(positions, ("policy", key))
            hint = did_you_mean(str(key), REFERENCE_KEYS)
            problems.append(Problem(file, line, col, f"policy.{key}", (
                f"unknown key{hint}" if hint else "not allowed next to 'use'")
                + "; a policy given by reference takes only use (a preset name or a policy "
                  "file) and set (dotted keys to change)"))
    if "use" not in policy:
        line, col = locate(positions, ("policy",))
        problems.append(Problem(file, line, col, "policy", (
            "required key 'use' is missing: use: NAME_OR_PATH names the policy that set changes")))
    changes = policy.get("set")
    if changes is None:
        changes = {}
    if not isinstance(changes, dict):
        line, col = locate(positions, ("policy", "set"))
        problems.append(Problem(file, line, col, "policy.set", (
            "expected a mapping of dotted policy keys to values, e.g. "
            f"{{rules.0.points: -50, score.start: 900}}; got {type(changes).__name__}")))
    try:
        pdata, ppositions, pfile = _used_policy(policy.get("use"), ("policy", "use"),
                                                positions, file) if "use" in policy else \
            (None, {}, "")
    except UserError as exc:
        if not problems or any(p.file != file for p in exc.problems):
            raise
        raise UserError("invalid scenario", capped(problems + exc.problems)) from None
    if problems:
        raise UserError("invalid scenario", capped(problems))
    try:  # with every default written out, so that set reaches keys the file leaves out
        pdata = PolicySpec.model_validate(pdata).model_dump(mode="json")
    except ValidationError:  # reported with the rest of the scenario, after set
        pdata = copy.deepcopy(pdata)
    set_paths = []
    for key, value in changes.items():
        at = ("policy", "set", key)
        try:
            if key.startswith("policy."):
                raise UserError(f"{key}: keys under policy.set are relative to the policy: "
                                f"write {key.removeprefix('policy.')!r}")
            assign(pdata, key, copy.deepcopy(value), what="policy")
        except UserError as exc:
            line, col = locate(positions, at)
            problems.append(Problem(file, line, col, dotted(at),
                                    str(exc).removeprefix(f"{key}: ")))
            continue
        set_paths.append((_set_path(pdata, key), key))
    if problems:
        raise UserError("invalid scenario", capped(problems))
    # positions: the scenario's, then the used policy's keys at `use`, then what `set` wrote
    use_at = locate(positions, ("policy", "use"))
    out = {k: v for k, v in positions.items() if k[:1] != ("policy",) or k == ("policy",)}
    written = [path for path, _ in set_paths]
    for p in ppositions:
        if not any(p[:len(w)] == w for w in written):
            out[("policy", *p)] = use_at
    for path, key in reversed(set_paths):  # a key and what holds it: at the first set entry
        at = ("policy", "set", key)
        for n in range(1, len(path)):
            out[("policy", *path[:n])] = positions.get(at, use_at)
    for path, key in set_paths:
        at = ("policy", "set", key)
        for k, v in positions.items():
            if k[:3] == at:
                out[("policy", *path, *k[3:])] = v
    return {**data, "policy": pdata}, out, _origins(ppositions, pfile, tuple(written))


def _origins(ppositions: Positions, pfile: str, written: tuple) -> dict[str, str]:
    """``policy.<key>`` -> ``file:line`` of each key of a used policy that ``set`` left alone;
    ``""`` for the keys ``set`` wrote and those that hold them (the scenario is their origin)."""
    out = {dotted(("policy", *p)): f"{pfile}:{line}" for p, (line, _) in ppositions.items()
           if p and not any(p[:len(w)] == w for w in written)}
    for w in written:
        out.update({dotted(("policy", *w[:n])): "" for n in range(1, len(w) + 1)})
    return out


def _with_origin(problem: Problem, origins: dict[str, str], file: str) -> Problem:
    """A problem at a key of a used policy that ``set`` did not write, saying where that
    policy wrote it."""
    if problem.file != file or not problem.path.startswith("policy"):
        return problem
    path = problem.path
    while path and path not in origins:
        path = path[:max(path.rfind("."), path.rfind("["), 0)]
    if not path or not origins[path]:
        return problem
    return replace(problem, message=f"{problem.message} (in the used policy: {origins[path]})")


def scenario_from_data(data: Any, positions: Positions, file: str) -> ScenarioSpec:
    """Validate already-parsed scenario data (see :func:`load_scenario`); a policy given by
    name or by reference (``use``/``set``) is resolved first (:func:`resolve_policy`)."""
    data, positions, origins = resolve_policy(data, positions, file)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and "schema_version" in data and (type(version) is not int
                                                                 or version != SCHEMA_VERSION):
        line, col = locate(positions, ("schema_version",))
        raise UserError("invalid scenario", [Problem(
            file, line, col, "schema_version",
            f"this panopticon reads schema_version {SCHEMA_VERSION}; "
            f"got {data['schema_version']!r}")])
    check_kind(ScenarioSpec, data, positions, file)
    try:
        spec: ScenarioSpec | None = ScenarioSpec.model_validate(data)
        problems = []
    except ValidationError as exc:
        spec = None
        problems = problems_from(exc, data, positions, file, model=ScenarioSpec)
    found = _check_references(spec or _valid_sections(data))
    if spec is not None and not problems and not found:
        found = check_limits(spec)  # needs every name resolved
    for path, message in found:
        line, col = locate(positions, path)
        problems.append(Problem(file, line, col, dotted(path), message))
    if problems:
        raise UserError("invalid scenario",
                        capped([_with_origin(p, origins, file) for p in problems]))
    assert spec is not None
    return spec
