"""The scenario's section models (society, behaviour, sensors, opportunities, governance,
run), the constants they share and the limits the run supports. This is the only place
defaults live. Pure data: it imports nothing from the runtime, nor the checks or the loader
(the document itself, :class:`~panopticon.spec.loader.ScenarioSpec`, is in the loader, since
its ``with_run`` and ``set`` re-check and re-load it).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Literal

import numpy as np
from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from panopticon.spec.policy import MAX_POINTS
from panopticon.spec.types import (
    ByCategory,
    Distribution,
    LogNormal,
    NonNegative,
    Normal,
    PerCategory,
    Probability,
    Strict,
    Table,
)

CATEGORICAL = ("sex", "region", "group", "residency", "occupation")
BUILTIN_NUMBERS = ("age", "income", "rank", "children", "score")
"""Numeric citizen columns conditions can name; traits may not reuse these names."""
RESIDENCIES = ("citizen", "resident_foreigner", "tourist")
DERIVED_OCCUPATIONS = ("minor", "retired")

# ---------------------------------------------------------------- limits the run supports
MAX_RATE = 20.0
"""Largest total rate of true events per citizen-day a scenario may produce."""
MAX_TRIES = 20.0
"""Most attempts of one kind a citizen may make per day on average (rates are Poisson)."""
MAX_PHANTOMS = 20.0
"""Largest expected number of phantom records per citizen-day (draws are capped at 60)."""


def canonical_digest(data: dict) -> str:
    """SHA-256 of a scenario as JSON data (sorted keys, no spaces), without the run settings
    that only change how a run is written (:data:`WRITING_ONLY`)."""
    data = {**data, "run": {k: v for k, v in data.get("run", {}).items()
                            if k not in WRITING_ONLY}}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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
    write_buffer_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 64.0
    """A stored run writes its buffered days as parts once they hold this many megabytes,
    without waiting for the next checkpoint (which then lists them): memory stays bounded
    however many citizens a checkpoint interval holds."""
    survey_every: Annotated[int, Field(ge=0, le=36_500)] = 7
    """How often the slow statistics are measured, in days (also on the first and last
    day): tie statistics and expected behaviour by group. 0: never."""


WRITING_ONLY = ("checkpoint_every", "write_buffer_mb")
"""Run settings that change how a stored run is written, never what it computes."""


