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
score moves with them (the lending loop of D'Amour et al. 2020).

Attempts are drawn like behaviour: one uniform per citizen-day decides whether they try
anything (a Poisson count over the sum of their rates), and each attempt picks its kind in
proportion to the rates; so the cost is one hash per citizen-day whatever the number of kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from panopticon import kernels
from panopticon.behaviour import profiles, rate_from_traits
from panopticon.catalogue import OPPORTUNITIES_BY_NAME
from panopticon.errors import UserError
from panopticon.policy.schema import MILLI
from panopticon.rng import Stage, stream_key, uniforms_at
from panopticon.scenario import RepaymentTable, ScenarioSpec
from panopticon.society import Population

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
MAX_TRIES = 20.0
"""Most attempts of one kind a citizen may make per day on average (rates are Poisson)."""
RETRY_SLOT = 255
"""Draw counter of a retry (a citizen's first tries of a day are numbered from 0)."""
_TRY, _RETRY, _EVADE, _REPAY = range(4)  # sub-streams of Stage.OPPORTUNITY


@dataclass(frozen=True)
class Loan:
    """A compiled :class:`~panopticon.scenario.LoanSpec`: ``repay`` is a probability, a
    condition path (evaluated on the day the loan starts) or a lookup table; events are
    indices into the run's events."""

    repay: float | str | RepaymentTable
    term_days: int
    repaid_event: int
    default_event: int


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
        for k, (name, opp) in enumerate(spec.opportunities.items()):
            default = OPPORTUNITIES_BY_NAME.get(name)
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
                loan = Loan(f"opportunities.{name}.loan.repay" if isinstance(repay, str)
                            else repay, opp.loan.term_days, events.index(opp.loan.repaid_event),
                            events.index(opp.loan.default_event))
            kinds.append(Opportunity(name, tuple(blocked), tuple(needs),
                                     _thresholds(opp.min_score, pop), opp.retry, opp.evasion,
                                     loan))
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


@dataclass
class OpportunityState:
    """What the gates remember: ``pending`` (K, n) bool, refused and still wanting; for each
    loan kind l, ``loan_due`` (L, n) int32 the day the loan ends (-1: none; a day of the run
    plus a term, both at most 36,500) and ``loan_repays`` (L, n) bool its drawn outcome."""

    pending: np.ndarray
    loan_due: np.ndarray
    loan_repays: np.ndarray

    FIELDS = ("pending", "loan_due", "loan_repays")

    @classmethod
    def empty(cls, opps: Opportunities, n: int) -> OpportunityState:
        """Nobody pending, no loans."""
        return cls(np.zeros((len(opps.kinds), n), dtype=bool),
                   np.full((len(opps.loans), n), -1, dtype=np.int32),
                   np.zeros((len(opps.loans), n), dtype=bool))

    def snapshot(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Arrays for a checkpoint."""
        return {f"opportunities.{k}": getattr(self, k).copy() if copy else getattr(self, k)
                for k in self.FIELDS}

    @classmethod
    def restore(cls, snap: dict[str, np.ndarray]) -> OpportunityState:
        """From :meth:`snapshot`."""
        return cls(*(snap[f"opportunities.{k}"].copy() for k in cls.FIELDS))


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


def _reasons(opp: Opportunity, who: np.ndarray, denied: dict, granted: dict,
             scores: np.ndarray, at: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Why the gates refuse each of ``who``'s tries, one bool mask per :data:`REASONS`; the
    masks and scores are read at ``at`` (default: ``who``, for arrays over all citizens)."""
    at = who if at is None else at
    sanctioned, no_perk, low_score = (np.zeros(len(who), dtype=bool) for _ in REASONS)
    for name in opp.blocked_by:
        if name in denied:
            sanctioned |= denied[name][at]
    for name in opp.needs:
        no_perk |= ~granted[name][at] if name in granted else True
    if opp.min_score is not None:
        low_score |= scores[at] < opp.min_score[who]
    return sanctioned, no_perk, low_score


def _refused(opp: Opportunity, who: np.ndarray, denied: dict, granted: dict,
             scores: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
    """Which of ``who``'s tries the gates refuse, for any of the :func:`_reasons`."""
    sanctioned, no_perk, low_score = _reasons(opp, who, denied, granted, scores, at)
    return sanctioned | no_perk | low_score


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
    for k, opp in enumerate(opps.kinds):
        mine = kind == k
        who, tries = citizen[mine], slot[mine]
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
        reasons = _reasons(opp, who, gates.denied, gates.granted, gates.scores)
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
        g = group[who]
        for m, mask in enumerate((None, retry, refused, None, evaded, granted, started,
                                  *reasons)):
            if m != wrongful_at:
                counts[m, k] = np.bincount(g if mask is None else g[mask], minlength=n_groups)
        parts.append((who[refused], np.full(int(refused.sum()), k, dtype=np.int16),
                      evaded[refused], retry[refused], *(r[refused] for r in reasons)))
    if not parts:
        parts = [(np.empty(0, np.int32), np.empty(0, np.int16),
                  *(np.empty(0, bool) for _ in range(2 + len(REASONS))))]
    who, kinds, evaded, retry, *why = (np.concatenate(cols) for cols in zip(*parts, strict=True))
    wrongful = _wrongful(opps, gates, who, kinds)
    for k in range(len(opps.kinds)):
        counts[wrongful_at, k] = np.bincount(group[who[wrongful & (kinds == k)]],
                                             minlength=n_groups)
    return OpportunityDay(counts, Refusals(who, kinds, wrongful, evaded, retry, *why))


def _wrongful(opps: Opportunities, gates: Gates, who: np.ndarray, kinds: np.ndarray
              ) -> np.ndarray:
    """Which refusals the gates would not have made on the citizens' true standing."""
    wrongful = np.zeros(len(who), dtype=bool)
    if not len(who):
        return wrongful
    citizens = np.unique(who)
    denied, granted, scores = gates.honest(citizens)
    at = np.searchsorted(citizens, who)
    for k, opp in enumerate(opps.kinds):
        mine = kinds == k
        wrongful[mine] = ~_refused(opp, who[mine], denied, granted, scores, at[mine])
    return wrongful


def _start_loans(seed: int, day: int, loan: Loan, k: int, slot: int, state: OpportunityState,
                 who: np.ndarray, granted: np.ndarray, repay_of) -> np.ndarray:
    """Start the granted loans (the first of a citizen's tries today); their outcome is drawn
    now and becomes a true event when the term ends. Returns which tries started one."""
    idx = np.flatnonzero(granted)
    _, first = np.unique(who[idx], return_index=True)
    idx = idx[first]
    borrowers = who[idx]
    if isinstance(loan.repay, float | int):
        p = np.full(len(borrowers), float(loan.repay))
    else:
        p = repay_of(loan.repay, borrowers)
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
