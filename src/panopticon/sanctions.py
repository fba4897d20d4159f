"""Opportunities and their gates: what citizens try each day, and what the policy lets them do.

Citizens try things (a loan, a flight, a school place for their child, a flat without a
deposit) at rates that depend on who they are. Each attempt meets the policy's gates: refused
if the policy denies the citizen a sanction that blocks it, if it needs a perk they are not
granted, or if a lender's threshold is above their score. A refused citizen may try again the
next day, and a refused attempt may still succeed through touts or insiders (evasion).

Every refusal is also judged on the citizen's *true* standing, the same gates applied to their
score net of points from false observations and without listings that only false observations
caused: a refusal those gates would not have made is **wrongful**.

Granted loans have outcomes: after the term the borrower repays (a true ``loan_repaid`` event,
by default) with a probability from an expression or a lookup table over citizen columns, or
defaults. These events go through the sensors and the policy like any other behaviour, so the
score moves with them (the lending loop of D'Amour et al. 2020). A lender's threshold may be
randomised in its boundary cell, or solved from its gain and loss each period (max profit,
demographic parity, equal opportunity: :func:`solve_thresholds`), and records its metrics per
category (:data:`LENDING`). Scheduled tries add one try per eligible citizen on given days.

Attempts are drawn like behaviour: one uniform per citizen-day decides whether they try
anything (a Poisson count over the sum of their rates), and each attempt picks its kind in
proportion to the rates; so the cost is one hash per citizen-day whatever the number of kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from panopticon import kernels
from panopticon.behaviour import profiles, rate_from_traits
from panopticon.catalogue import catalogue_of
from panopticon.errors import UserError
from panopticon.policy.schema import MILLI
from panopticon.rng import Stage, stream_key, uniforms_at
from panopticon.scenario import OpportunitySpec, RepaymentTable, ScenarioSpec
from panopticon.society import Population
from panopticon.spec.scenario import MAX_TRIES  # the limit the checks enforce, kept here by name

MEASURES = ("attempts", "retries", "refused", "wrongful", "evaded", "granted", "loans",
            "refused_sanctioned", "refused_no_perk", "refused_low_score")
"""What is counted per opportunity and group each day: attempts (retries included), retries,
refused (evaded ones included), wrongful refusals, evaded refusals (succeeded anyway), granted
attempts (evaded included), loans started, and the refusals by why (see :data:`REASONS`; one
refusal may have several)."""
REASONS = ("sanctioned", "no_perk", "low_score")
"""Why a try is refused: a sanction that blocks it is denied to the citizen (a punishment), a
perk it needs is not granted to them (a reward withheld), or their score is below the
lender's minimum."""
RETRY_SLOT = 255
"""Draw counter of a retry (a citizen's first tries of a day are numbered from 0)."""
SCHEDULED_SLOT = 254
"""Draw counter of a scheduled try (see :class:`~panopticon.scenario.ScheduleSpec`)."""
_TRY, _RETRY, _EVADE, _REPAY, _CELL = range(5)  # sub-streams of Stage.OPPORTUNITY
_LOWEST, _HIGHEST = np.iinfo(np.int64).min, np.iinfo(np.int64).max
CRITERIA = ("max_profit", "demographic_parity", "equal_opportunity")
"""How a lender may solve its thresholds (see :func:`solve_thresholds`)."""
LENDING = ("applicants", "borrowers", "repay_applicants", "repay_borrowers", "repaid",
           "defaulted", "profit", "profit_expected", "profit_variance", "mean_score")
"""What a lender's loans record per day and category of its ``by`` attribute, as daily
metrics ``lending_<opportunity>_<category>_<what>``: distinct applicants (citizens who made a
try), borrowers (loans started), the sum of the applicants' and of the borrowers' repayment
probabilities, the drawn outcomes of the day's loans (repaid, defaulted; drawn when the loan
starts, so loans ending after the run count too), the lender's profit on them (repaid x gain
- defaulted x loss), its expectation (sum of p gain - (1 - p) loss) and variance (sum of
p (1 - p) (gain + loss)^2), and the mean score (points) of the eligible citizens as the gates
read it. Solved thresholds add ``threshold_bin`` (the bin lent to at random; bins above it in
full; the number of bins: nobody) and ``accept`` (the chance at that bin)."""


@dataclass(frozen=True)
class Loan:
    """A compiled :class:`~panopticon.scenario.LoanSpec`: ``repay`` is a probability, a
    condition path (evaluated on the day the loan starts) or a lookup table; events are
    indices into the run's events."""

    repay: float | str | RepaymentTable
    term_days: int
    repaid_event: int
    default_event: int
    by_code: np.ndarray | None = None
    """A table with ``by``: each citizen's category code (n,); ``rows`` holds one plain table
    per category (None: ``repay`` is read for everyone alike)."""
    rows: tuple[RepaymentTable, ...] = ()
    row_of: RepaymentTable | None = None
    """A table with ``by_column``: a lookup of each citizen's row (its "probabilities" are the
    row numbers 0, 1, ...), read like any table; ``rows`` holds one plain table per row."""


@dataclass(frozen=True)
class Lender:
    """A compiled :class:`~panopticon.scenario.LenderSpec`: ``code`` (n,) each citizen's
    category of ``by`` (``labels``), ``eligible`` (n,) the citizens who may apply. For solved
    thresholds, ``repay`` (C, B) float64 the repayment probability per category and bin of
    the table and ``edges`` (B,) int64 the bins' lower edges in milli-points (bin 0 reaches
    down to any score)."""

    gain: float
    loss: float
    criterion: str
    every_days: int
    code: np.ndarray
    labels: tuple[str, ...]
    eligible: np.ndarray
    repay: np.ndarray | None = None
    edges: np.ndarray | None = None

    @property
    def solved(self) -> bool:
        """Whether the thresholds are solved (not ``fixed``)."""
        return self.criterion != "fixed"


@dataclass(frozen=True)
class Opportunity:
    """One compiled kind of attempt. ``min_score``: int64 milli-points per citizen (n,), or
    None for no lender threshold."""

    name: str
    blocked_by: tuple[str, ...]
    needs: tuple[str, ...]
    min_score: np.ndarray | None
    retry: float
    evasion: float
    loan: Loan | None
    cell_top: np.ndarray | None = None
    """A randomised threshold: (n,) int64 the top (exclusive) of each citizen's threshold
    cell, whose tries pass with probability ``accept`` (n,) float64 (None: always)."""
    accept: np.ndarray | None = None
    lender: Lender | None = None
    scheduled: np.ndarray | None = None
    """(n,) bool the citizens who try on scheduled days (None: no schedule); they try on
    ``first_day`` and every ``every_days`` after (None: once)."""
    first_day: int = 0
    every_days: int | None = None

    def scheduled_on(self, day: int) -> bool:
        """Whether ``day`` is one of the schedule's days."""
        if self.scheduled is None or day < self.first_day:
            return False
        return day == self.first_day if self.every_days is None else \
            (day - self.first_day) % self.every_days == 0


@dataclass(frozen=True)
class Opportunities:
    """The scenario's opportunities bound to a population.

    Attributes:
        kinds: K opportunities. rates: (P, K) float64 attempts per citizen-day of each
            profile (0 where a citizen is not eligible). total: (P,) row sums; p0: (P,)
            exp(-total). loans: indices of the kinds that are loans.
        profile: (n,) each citizen's row of ``rates``, ``total`` and ``p0`` (uint16: rates
            from traits take few distinct rows, see :func:`~panopticon.behaviour.profiles`);
            None: one row per citizen.
    """

    kinds: tuple[Opportunity, ...]
    rates: np.ndarray
    total: np.ndarray
    p0: np.ndarray
    loans: tuple[int, ...]
    profile: np.ndarray | None = None

    def __post_init__(self):
        if self.profile is None:  # built by hand, one row per citizen
            object.__setattr__(self, "profile", np.arange(len(self.total), dtype=np.int32))

    @property
    def n(self) -> int:
        """Number of citizens."""
        return len(self.profile)

    @property
    def names(self) -> list[str]:
        """Kind names, in order."""
        return [k.name for k in self.kinds]

    @classmethod
    def compile(cls, spec: ScenarioSpec, events: list[str], pop: Population, seed: int,
                who: dict[str, np.ndarray]) -> Opportunities:
        """Rates from traits and eligibility (``who``: name -> bool (n,)), gates and loans."""
        n, kinds = pop.n, []
        rates = np.zeros((n, len(spec.opportunities)), dtype=np.float64)
        catalogued = catalogue_of(spec).opportunities  # packaged, then the scenario's own
        for k, (name, opp) in enumerate(spec.opportunities.items()):
            default = catalogued.get(name)
            rate = rate_from_traits(opp, default.rate_per_day if default else 0.0, pop,
                                    stream_key(seed, Stage.OPPORTUNITY, 0, 100 + k))
            if name in who:
                rate[~who[name]] = 0.0
            if n and rate.max() > MAX_TRIES:
                raise UserError(f"opportunities.{name}: some citizens would try it "
                                f"{rate.max():.3g} times a day; at most {MAX_TRIES:g} is "
                                "supported")
            rates[:, k] = rate
            blocked = opp.blocked_by if opp.blocked_by is not None else (
                default.blocked_by if default else ())
            needs = opp.needs if opp.needs is not None else (default.needs if default else ())
            loan = None
            if opp.loan is not None:
                repay = opp.loan.repay
                by_code, rows, row_of = None, (), None
                if isinstance(repay, RepaymentTable) and (repay.by or repay.by_column):
                    rows = tuple(RepaymentTable(column=repay.column, at=repay.at,
                                                probability=list(row))
                                 for row in repay.rows(pop.labels.get(repay.by, ())))
                    if repay.by is not None:
                        by_code = _codes(pop, repay.by)
                    else:  # row numbers looked up like probabilities (exact small floats)
                        row_of = RepaymentTable.model_construct(
                            column=repay.by_column, at=repay.by_at,
                            probability=[float(r) for r in range(len(rows))], by=None,
                            by_column=None, by_at=None)
                loan = Loan(f"opportunities.{name}.loan.repay" if isinstance(repay, str)
                            else repay, opp.loan.term_days, events.index(opp.loan.repaid_event),
                            events.index(opp.loan.default_event), by_code, rows, row_of)
            min_score = _thresholds(opp.min_score, pop)
            top, accept = _cells(opp, min_score, pop)
            scheduled = None
            if opp.schedule is not None:
                scheduled = pop.age >= opp.min_age
                if name in who:
                    scheduled &= who[name]
            kinds.append(Opportunity(
                name, tuple(blocked), tuple(needs), min_score, opp.retry, opp.evasion, loan, top,
                accept, _lender(opp, pop, rate > 0 if scheduled is None else
                                (rate > 0) | scheduled), scheduled,
                opp.schedule.first_day if opp.schedule else 0,
                opp.schedule.every_days if opp.schedule else None))
        total = rates.sum(axis=1)
        p0 = np.exp(-total)
        code, first = profiles(rates)  # picked from the rows as computed: the same bits
        return cls(tuple(kinds), rates[first], total[first], p0[first],
                   tuple(k for k, o in enumerate(kinds) if o.loan is not None), code)


def _thresholds(min_score, pop: Population) -> np.ndarray | None:
    """A lender's threshold per citizen in milli-points: one number, or one per category."""
    if min_score is None:
        return None
    if not isinstance(min_score, dict):
        return np.full(pop.n, round(min_score * MILLI), dtype=np.int64)
    (attr, table), = min_score.items()
    labels = pop.labels[attr] if attr != "sex" else ("female", "male")
    by_code = np.asarray([round(table[c] * MILLI) for c in labels], dtype=np.int64)
    return by_code[getattr(pop, attr)]


def _codes(pop: Population, attr: str) -> np.ndarray:
    """Each citizen's category code of ``attr`` (the order of ``pop.labels[attr]``)."""
    return np.asarray(getattr(pop, attr)).astype(np.int64)


def score_edges(table: RepaymentTable) -> np.ndarray:
    """The lower edges of a score table's bins in milli-points (int64 (B,)): the smallest
    score whose value in points is at least ``at[k]``, as :func:`repayment` compares."""
    return np.ceil(np.round(np.asarray(table.at, dtype=np.float64) * MILLI, 6)).astype(np.int64)


def _cells(opp: OpportunitySpec, min_score: np.ndarray | None, pop: Population
           ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A randomised threshold's cell tops and acceptance per citizen, or (None, None) when
    every cell is accepted in full (a plain threshold)."""
    value = opp.accept_at_min
    if min_score is None or value == 1.0 or (isinstance(value, dict) and all(
            p == 1.0 for table in value.values() for p in table.values())):
        return None, None
    if isinstance(value, dict):
        (attr, table), = value.items()
        accept = np.asarray([table[c] for c in pop.labels[attr]])[_codes(pop, attr)]
    else:
        accept = np.full(pop.n, float(value))
    repay = opp.loan.repay if opp.loan is not None else None
    if isinstance(repay, RepaymentTable) and repay.column == "score":
        edges = score_edges(repay)
        b = np.maximum(np.searchsorted(edges, min_score, side="right") - 1, 0)
        top = np.append(edges, _HIGHEST)[b + 1]
    else:
        top = min_score + 1  # the score min_score exactly
    return top.astype(np.int64), accept.astype(np.float64)


def _lender(opp: OpportunitySpec, pop: Population, eligible: np.ndarray) -> Lender | None:
    """The compiled lender of an opportunity (None without ``lender``)."""
    spec = opp.lender
    if spec is None:
        return None
    labels = tuple(pop.labels[spec.by])
    repay = edges = None
    if spec.criterion != "fixed":
        table = opp.loan.repay
        rows = table.rows(labels)
        repay = np.broadcast_to(rows, (len(labels), len(table.at))).copy()
        edges = score_edges(table)
    return Lender(spec.gain, spec.loss, spec.criterion, spec.every_days, _codes(pop, spec.by),
                  labels, eligible, repay, edges)


def solve_thresholds(counts: np.ndarray, repay: np.ndarray, gain: float, loss: float,
                     criterion: str) -> tuple[np.ndarray, np.ndarray]:
    """A lender's thresholds per category, solved over the bins of a repayment table.

    A threshold is a bin k and a chance q: every score in a bin above k is lent to, scores in
    bin k with probability q, none below (k = B: nobody). A loan in bin j earns
    ``u_j = p_j gain - (1 - p_j) loss`` on average, so a threshold's expected profit on
    category c is ``sum_{j > k} n_cj u_cj + q n_ck u_ck``.

    - ``max_profit``: each category's most profitable threshold, with q = 1 (Liu et al. 2018's
      unconstrained lender). Ties (equal profit) go to the threshold whose extra bins have the
      larger sum of ``u`` (so a bin nobody is in is lent to iff lending there would pay),
      then to the lower threshold (lend when indifferent).
    - ``demographic_parity`` / ``equal_opportunity``: the thresholds that maximise the total
      profit over categories subject to every category having the same selection rate (share
      of its citizens lent to) or the same true-positive rate (share of its expected repayers,
      ``sum n p``, lent to) (Hardt, Price and Srebro 2016; Liu et al. 2018). Each category's
      profit is piecewise linear in the common rate, so the best rate is among the categories'
      breakpoints (the rates at which one bin is fully in); the highest such rate wins ties.
      A category reaches a rate by taking whole bins from the top and the fraction q of its
      boundary bin; at a breakpoint q = 1 and the bins below it that hold no one are not lent
      to. A category with no one (for ``equal_opportunity``: no expected repayer) does not
      constrain the others and gets its ``max_profit`` threshold.

    Args:
        counts: (C, B) citizens per category and bin (float or int). repay: (C, B) repayment
            probability per category and bin. gain, loss: the lender's utilities.
        criterion: one of :data:`CRITERIA`.

    Returns:
        ``bin`` int64 (C,) in 0..B and ``accept`` float64 (C,) in (0, 1].
    """
    counts = np.asarray(counts, dtype=np.float64)
    repay = np.asarray(repay, dtype=np.float64)
    c_n, b_n = counts.shape
    u = repay * gain - (1.0 - repay) * loss

    def from_top(x: np.ndarray) -> np.ndarray:  # (C, B + 1): sum over bins >= k
        out = np.zeros((c_n, b_n + 1))
        out[:, :b_n] = np.cumsum(x[:, ::-1], axis=1)[:, ::-1]
        return out

    profit, tie = from_top(counts * u), from_top(np.broadcast_to(u, counts.shape))
    best = profit == profit.max(axis=1, keepdims=True)
    tie = np.where(best, tie, -np.inf)
    best &= tie == tie.max(axis=1, keepdims=True)
    bins = np.argmax(best, axis=1).astype(np.int64)  # the lowest of the remaining ties
    accept = np.ones(c_n)
    if criterion == "max_profit":
        return bins, accept
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; expected one of {CRITERIA}")
    w = counts if criterion == "demographic_parity" else counts * repay
    cum = from_top(w)
    total = cum[:, 0]
    live = np.flatnonzero(total > 0)
    if not len(live):
        return bins, accept
    rates = np.unique(np.concatenate([cum[c] / total[c] for c in live]).clip(0.0, 1.0))
    per = []
    for c in live:  # a few categories; each vectorised over the candidate rates
        k, q, gain_c = _at_rate(cum[c], w[c], counts[c] * u[c], profit[c], rates * total[c],
                                1e-9 * total[c])
        per.append((k, q, gain_c))
    value = np.sum([g for _, _, g in per], axis=0)
    r = len(rates) - 1 - int(np.argmax(value[::-1]))  # the highest rate among ties
    for c, (k, q, _) in zip(live, per, strict=True):
        bins[c], accept[c] = k[r], q[r]
    return bins, accept


def _at_rate(cum: np.ndarray, w: np.ndarray, gain: np.ndarray, profit: np.ndarray,
             amount: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One category's threshold (bin, chance) and profit at each wanted ``amount`` of weight
    ``w`` taken from the top bins. ``cum`` (B + 1,) weight of bins >= k; ``gain`` (B,) profit
    of each bin in full; ``profit`` (B + 1,) of bins >= k."""
    b_n = len(w)
    rev = cum[::-1]  # non-decreasing: weight of the top j bins
    j = np.searchsorted(rev, amount - tol, side="left")  # fewest top bins reaching amount
    exact = np.abs(rev[np.minimum(j, b_n)] - amount) <= tol
    k = b_n - j  # a bin with weight (unless exact): cum[k + 1] < amount <= cum[k]
    k_safe = np.minimum(k, b_n - 1)
    above = cum[np.minimum(k + 1, b_n)]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(exact, 1.0, (amount - above) / w[k_safe])
    q = np.clip(np.where(np.isfinite(q), q, 1.0), 0.0, 1.0)
    value = np.where(exact, profit[k], profit[np.minimum(k + 1, b_n)] + q * gain[k_safe])
    return k.astype(np.int64), q, value


@dataclass
class OpportunityState:
    """What the gates remember: ``pending`` (K, n) bool, refused and still wanting; for each
    loan kind l, ``loan_due`` (L, n) int32 the day the loan ends (-1: none; a day of the run
    plus a term, both at most 36,500) and ``loan_repays`` (L, n) bool its drawn outcome; for
    each lender whose thresholds are solved, ``thresholds[name]`` = (bin int64 (C,), accept
    float64 (C,)) as last solved (see :func:`solve_thresholds`). Runs without solved
    thresholds keep none, so their snapshots and fingerprints are as before."""

    pending: np.ndarray
    loan_due: np.ndarray
    loan_repays: np.ndarray
    thresholds: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    FIELDS = ("pending", "loan_due", "loan_repays")
    SOLVED = ("threshold_bin", "threshold_accept")

    @classmethod
    def empty(cls, opps: Opportunities, n: int) -> OpportunityState:
        """Nobody pending, no loans; solved thresholds lend to nobody until first solved."""
        return cls(np.zeros((len(opps.kinds), n), dtype=bool),
                   np.full((len(opps.loans), n), -1, dtype=np.int32),
                   np.zeros((len(opps.loans), n), dtype=bool),
                   {o.name: (np.full(len(o.lender.labels), len(o.lender.edges), np.int64),
                             np.ones(len(o.lender.labels)))
                    for o in opps.kinds if o.lender is not None and o.lender.solved})

    def snapshot(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Arrays for a checkpoint."""
        out = {f"opportunities.{k}": getattr(self, k).copy() if copy else getattr(self, k)
               for k in self.FIELDS}
        for name, arrays in self.thresholds.items():
            for key, a in zip(self.SOLVED, arrays, strict=True):
                out[f"opportunities.{key}.{name}"] = a.copy() if copy else a
        return out

    @classmethod
    def restore(cls, snap: dict[str, np.ndarray]) -> OpportunityState:
        """From :meth:`snapshot`."""
        prefix = f"opportunities.{cls.SOLVED[0]}."
        names = [k[len(prefix):] for k in snap if k.startswith(prefix)]
        return cls(*(snap[f"opportunities.{k}"].copy() for k in cls.FIELDS),
                   {name: (snap[f"{prefix}{name}"].astype(np.int64),
                           snap[f"opportunities.{cls.SOLVED[1]}.{name}"].astype(np.float64))
                    for name in names})


@dataclass(frozen=True)
class Gates:
    """Today's gates as the policy applies them: sanction or perk name -> bool (n,), scores
    in milli-points (n,); and ``honest(citizens)``, the same for those citizens on their true
    standing: (denied, granted, scores), each aligned with ``citizens`` (computed only for
    the citizens refused, since only their refusals can be wrongful)."""

    denied: dict[str, np.ndarray]
    granted: dict[str, np.ndarray]
    scores: np.ndarray
    honest: Callable[[np.ndarray], tuple[dict, dict, np.ndarray]]


@dataclass(frozen=True)
class Refusals:
    """Every refused attempt of one day, in citizen order per kind: citizen int32, kind int16
    (index into the opportunities), wrongful bool (not refused on true standing), evaded bool
    (succeeded anyway), retry bool (a second or later try), and why, one bool each of
    :data:`REASONS` (``sanctioned``, ``no_perk``, ``low_score``; at least one is true)."""

    citizen: np.ndarray
    kind: np.ndarray
    wrongful: np.ndarray
    evaded: np.ndarray
    retry: np.ndarray
    sanctioned: np.ndarray | None = None
    no_perk: np.ndarray | None = None
    low_score: np.ndarray | None = None

    def __post_init__(self):
        for name in REASONS:  # hand-built refusals without reasons: none known
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(len(self.citizen), dtype=bool))

    def __len__(self) -> int:
        return len(self.citizen)


@dataclass(frozen=True)
class OpportunityDay:
    """What the gates did on one day: ``counts`` (len(MEASURES), K, G) int64 by measure, kind
    and group, and every refusal."""

    counts: np.ndarray
    refusals: Refusals
    lending: dict[str, float] = field(default_factory=dict)
    """Lenders' daily metrics (see :data:`LENDING`); empty without a ``lender``."""


def draw_tries(seed: int, day: int, opps: Opportunities
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Today's first tries: citizen int32 (a,) in order, kind int16 (a,), and each try's
    number among the citizen's tries today, int64 (a,) (a draw counter)."""
    key = stream_key(seed, Stage.OPPORTUNITY, day, _TRY)
    counts = np.empty(opps.n, dtype=np.int64)
    kernels.opportunities.count_tries(key, opps.p0, opps.total, opps.profile, counts)
    first = kernels.arrays.offsets(counts)
    citizen = np.empty(first[-1], dtype=np.int32)
    kind = np.empty(first[-1], dtype=np.int16)
    slot = np.empty(first[-1], dtype=np.int64)
    kernels.opportunities.fill_tries(key, opps.rates, opps.total, opps.profile, counts,
                                     np.flatnonzero(counts), first, citizen, kind, slot)
    return citizen, kind, slot


Limits = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
"""A lender's thresholds today, per citizen: (lowest score that may pass, top of the threshold
cell, chance of passing in the cell); the last two None for a plain threshold."""


def limits(opp: Opportunity, state: OpportunityState) -> Limits | None:
    """The opportunity's score thresholds today (None: no lender threshold): solved ones from
    ``state``, else ``min_score`` with its randomised cell if any."""
    lender = opp.lender
    if lender is not None and lender.solved:
        b, q = state.thresholds[opp.name]
        edges = lender.edges
        low = np.concatenate([[_LOWEST], edges[1:], [_HIGHEST]])  # bin B: nobody
        top = np.concatenate([edges[1:], [_HIGHEST, _HIGHEST]])
        return low[b][lender.code], top[b][lender.code], q[lender.code]
    if opp.min_score is None:
        return None
    return opp.min_score, opp.cell_top, opp.accept


def _reasons(opp: Opportunity, who: np.ndarray, denied: dict, granted: dict,
             scores: np.ndarray, at: np.ndarray | None = None, limit: Limits | None = None,
             coin: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Why the gates refuse each of ``who``'s tries, one bool mask per :data:`REASONS`; the
    masks and scores are read at ``at`` (default: ``who``, for arrays over all citizens).
    ``limit``: the score thresholds (default: ``min_score``); ``coin``: one uniform per try
    (the citizen's of the day), deciding the tries in a randomised threshold's cell (passed
    iff coin < accept)."""
    at = who if at is None else at
    sanctioned, no_perk, low_score = (np.zeros(len(who), dtype=bool) for _ in REASONS)
    for name in opp.blocked_by:
        if name in denied:
            sanctioned |= denied[name][at]
    for name in opp.needs:
        no_perk |= ~granted[name][at] if name in granted else True
    if limit is None and opp.min_score is not None:
        limit = (opp.min_score, None, None)
    if limit is not None:
        low, top, accept = limit
        score = scores[at]
        low_score |= score < low[who]
        if accept is not None:
            low_score |= (score < top[who]) & (coin >= accept[who])
    return sanctioned, no_perk, low_score


def _refused(opp: Opportunity, who: np.ndarray, denied: dict, granted: dict,
             scores: np.ndarray, at: np.ndarray | None = None, limit: Limits | None = None,
             coin: np.ndarray | None = None) -> np.ndarray:
    """Which of ``who``'s tries the gates refuse, for any of the :func:`_reasons`."""
    sanctioned, no_perk, low_score = _reasons(opp, who, denied, granted, scores, at, limit,
                                              coin)
    return sanctioned | no_perk | low_score


def solve(day: int, opp: Opportunity, state: OpportunityState, scores: np.ndarray) -> None:
    """Re-solve a lender's thresholds from today's scores if today is a solving day (day 0,
    then every ``every_days``): the eligible citizens' scores binned by the repayment table,
    per category (state in place)."""
    lender = opp.lender
    if lender is None or not lender.solved or day % lender.every_days:
        return
    c_n, b_n = lender.repay.shape
    who = np.flatnonzero(lender.eligible)
    b = np.maximum(np.searchsorted(lender.edges, scores[who], side="right") - 1, 0)
    counts = np.bincount(lender.code[who] * b_n + b, minlength=c_n * b_n).reshape(c_n, b_n)
    state.thresholds[opp.name] = solve_thresholds(counts, lender.repay, lender.gain,
                                                  lender.loss, lender.criterion)


def attempt(seed: int, day: int, opps: Opportunities, state: OpportunityState, gates: Gates,
            group: np.ndarray, n_groups: int, repay_of) -> OpportunityDay:
    """Today's attempts (first tries and retries), decided at the gates; updates ``state``.

    Args:
        group: (n,) uint8 group code of each citizen, for the counts.
        repay_of: callable(path, citizens) -> repayment probabilities (float64) of the
            citizens, for loans whose ``repay`` is an expression.
    """
    citizen, kind, slot = draw_tries(seed, day, opps)
    counts = np.zeros((len(MEASURES), len(opps.kinds), n_groups), dtype=np.int64)
    parts: list[tuple] = []
    wrongful_at = MEASURES.index("wrongful")
    lending: dict[str, float] = {}
    day_limits = []
    for k, opp in enumerate(opps.kinds):
        solve(day, opp, state, gates.scores)
        limit = limits(opp, state)
        day_limits.append(limit)
        mine = kind == k
        who, tries = citizen[mine], slot[mine]
        if opp.scheduled_on(day):  # everyone eligible tries once more
            extra = np.flatnonzero(opp.scheduled).astype(np.int32)
            who = np.concatenate([who, extra])
            tries = np.concatenate([tries, np.full(len(extra), SCHEDULED_SLOT)])
        retry = np.zeros(len(who), dtype=bool)
        if opp.retry > 0:
            waiting = np.flatnonzero(state.pending[k])
            u = uniforms_at(stream_key(seed, Stage.OPPORTUNITY, day, 10 * k + _RETRY), waiting)
            state.pending[k, waiting[u >= opp.retry]] = False  # gave up
            again = waiting[u < opp.retry]
            who = np.concatenate([who, again.astype(np.int32)])
            tries = np.concatenate([tries, np.full(len(again), RETRY_SLOT)])
            retry = np.concatenate([retry, np.ones(len(again), dtype=bool)])
        if opp.loan is not None:  # one loan at a time
            free = state.loan_due[opps.loans.index(k), who] < 0
            who, tries, retry = who[free], tries[free], retry[free]
        coin = None
        if limit is not None and limit[2] is not None:  # a randomised threshold: one coin
            coin = uniforms_at(stream_key(seed, Stage.OPPORTUNITY, day, 10 * k + _CELL),
                               who)  # per citizen and day, whatever their number of tries
        reasons = _reasons(opp, who, gates.denied, gates.granted, gates.scores, None, limit,
                           coin)
        refused = reasons[0] | reasons[1] | reasons[2]
        u = uniforms_at(stream_key(seed, Stage.OPPORTUNITY, day, 10 * k + _EVADE),
                        (who.astype(np.int64) << 8) + tries)  # one draw per try
        evaded = refused & (u < opp.evasion)
        granted = ~refused | evaded
        if opp.retry > 0:
            state.pending[k, who[refused & ~evaded]] = True
            state.pending[k, who[granted]] = False
        started = np.zeros(len(who), dtype=bool)
        if opp.loan is not None:
            started = _start_loans(seed, day, opp.loan, k, opps.loans.index(k), state, who,
                                   granted, repay_of)
        if opp.lender is not None:
            lending.update(_lending_day(opp, opps.loans.index(k), state, gates.scores, who,
                                        started, repay_of))
        g = group[who]
        for m, mask in enumerate((None, retry, refused, None, evaded, granted, started,
                                  *reasons)):
            if m != wrongful_at:
                counts[m, k] = np.bincount(g if mask is None else g[mask], minlength=n_groups)
        coins = coin[refused] if coin is not None else np.zeros(int(refused.sum()))
        parts.append((who[refused], np.full(int(refused.sum()), k, dtype=np.int16),
                      evaded[refused], retry[refused], *(r[refused] for r in reasons), coins))
    if not parts:
        parts = [(np.empty(0, np.int32), np.empty(0, np.int16),
                  *(np.empty(0, bool) for _ in range(2 + len(REASONS))), np.empty(0))]
    who, kinds, evaded, retry, *why, coins = (np.concatenate(cols)
                                              for cols in zip(*parts, strict=True))
    wrongful = _wrongful(opps, gates, who, kinds, day_limits, coins)
    for k in range(len(opps.kinds)):
        counts[wrongful_at, k] = np.bincount(group[who[wrongful & (kinds == k)]],
                                             minlength=n_groups)
    return OpportunityDay(counts, Refusals(who, kinds, wrongful, evaded, retry, *why), lending)


def _wrongful(opps: Opportunities, gates: Gates, who: np.ndarray, kinds: np.ndarray,
              day_limits: list | None = None, coins: np.ndarray | None = None) -> np.ndarray:
    """Which refusals the gates would not have made on the citizens' true standing (the same
    thresholds, and the same coin in a randomised threshold's cell)."""
    wrongful = np.zeros(len(who), dtype=bool)
    if not len(who):
        return wrongful
    citizens = np.unique(who)
    denied, granted, scores = gates.honest(citizens)
    at = np.searchsorted(citizens, who)
    for k, opp in enumerate(opps.kinds):
        mine = kinds == k
        limit = day_limits[k] if day_limits is not None else None
        wrongful[mine] = ~_refused(opp, who[mine], denied, granted, scores, at[mine], limit,
                                   coins[mine] if coins is not None else None)
    return wrongful


def _repay(loan: Loan, who: np.ndarray, repay_of) -> np.ndarray:
    """The repayment probabilities (float64, unclipped) of citizens ``who`` today."""
    if isinstance(loan.repay, float | int):
        return np.full(len(who), float(loan.repay))
    if not loan.rows:
        return repay_of(loan.repay, who)
    p = np.empty(len(who))
    code = loan.by_code[who] if loan.by_code is not None else \
        np.asarray(repay_of(loan.row_of, who)).astype(np.int64)
    for c, table in enumerate(loan.rows):  # one plain table per category
        mine = code == c
        if mine.any():
            p[mine] = repay_of(table, who[mine])
    return p


def _lending_day(opp: Opportunity, slot: int, state: OpportunityState, scores: np.ndarray,
                 who: np.ndarray, started: np.ndarray, repay_of) -> dict[str, float]:
    """A lender's metrics of the day per category (:data:`LENDING`), from its tries ``who``
    (after the one-loan rule) and which started a loan."""
    lender = opp.lender
    c_n = len(lender.labels)
    applicants = np.unique(who)
    borrowers = who[started]  # in citizen order, one per citizen
    p_app = np.clip(_repay(opp.loan, applicants, repay_of), 0.0, 1.0)
    p_bor = p_app[np.searchsorted(applicants, borrowers)]
    repaid = state.loan_repays[slot, borrowers]
    c_app, c_bor = lender.code[applicants], lender.code[borrowers]

    def by(code, weights=None):
        return np.bincount(code, weights, minlength=c_n).astype(np.float64)

    eligible = np.flatnonzero(lender.eligible)
    n_el = by(lender.code[eligible])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = by(lender.code[eligible], scores[eligible] / MILLI) / n_el
    values = {
        "applicants": by(c_app), "borrowers": by(c_bor),
        "repay_applicants": by(c_app, p_app), "repay_borrowers": by(c_bor, p_bor),
        "repaid": by(c_bor[repaid]), "defaulted": by(c_bor[~repaid]),
        "profit": by(c_bor[repaid]) * lender.gain - by(c_bor[~repaid]) * lender.loss,
        "profit_expected": by(c_bor, p_bor * lender.gain - (1 - p_bor) * lender.loss),
        "profit_variance": by(c_bor, p_bor * (1 - p_bor) * (lender.gain + lender.loss) ** 2),
        "mean_score": np.where(n_el > 0, mean, np.nan)}
    if lender.solved:
        b, q = state.thresholds[opp.name]
        values["threshold_bin"], values["accept"] = b.astype(np.float64), q
    return {f"lending_{opp.name}_{cat}_{what}": float(v[c])
            for what, v in values.items() for c, cat in enumerate(lender.labels)}


def _start_loans(seed: int, day: int, loan: Loan, k: int, slot: int, state: OpportunityState,
                 who: np.ndarray, granted: np.ndarray, repay_of) -> np.ndarray:
    """Start the granted loans (the first of a citizen's tries today); their outcome is drawn
    now and becomes a true event when the term ends. Returns which tries started one."""
    idx = np.flatnonzero(granted)
    _, first = np.unique(who[idx], return_index=True)
    idx = idx[first]
    borrowers = who[idx]
    p = _repay(loan, borrowers, repay_of)
    u = uniforms_at(stream_key(seed, Stage.OPPORTUNITY, day, 10 * k + _REPAY), borrowers)
    state.loan_due[slot, borrowers] = day + loan.term_days
    state.loan_repays[slot, borrowers] = u < np.clip(p, 0.0, 1.0)
    started = np.zeros(len(who), dtype=bool)
    started[idx] = True
    return started


def repayment(table: RepaymentTable, values: np.ndarray) -> np.ndarray:
    """Repayment probability from a lookup table: the entry of the largest ``at`` not above
    the value (the first entry below ``at[0]``). float64 of the values' shape."""
    idx = np.searchsorted(np.asarray(table.at), values, side="right") - 1
    return np.asarray(table.probability)[np.clip(idx, 0, len(table.at) - 1)]


def loan_outcomes(day: int, opps: Opportunities, state: OpportunityState
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Loans that end today become true events (repaid or defaulted): citizen int32 and event
    int16, in citizen order; the loans are closed."""
    cit, ev = [], []
    for slot, k in enumerate(opps.loans):
        loan = opps.kinds[k].loan
        due = np.flatnonzero(state.loan_due[slot] == day)
        cit.append(due.astype(np.int32))
        ev.append(np.where(state.loan_repays[slot, due], loan.repaid_event,
                           loan.default_event).astype(np.int16))
        state.loan_due[slot, due] = -1
    if not cit:
        return np.empty(0, np.int32), np.empty(0, np.int16)
    citizen, event = np.concatenate(cit), np.concatenate(ev)
    order = np.argsort(citizen, kind="stable")
    return citizen[order], event[order]
