"""The day loop. ``step`` is one simulated day, read top to bottom; ``run`` drives it.

The engine does no I/O: what a run produces leaves through a :class:`Sink` (memory, the run
store, a progress bar), and checkpoints are state snapshots handed to the sink. Every random
draw is keyed by (seed, stage, day, citizen), so a run resumed from a checkpoint, or run in
chunks, gives the same bits as a run straight through.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from typing import Protocol

import numpy as np

from panopticon import kernels, ledger
from panopticon.behaviour import (
    DENSE,
    Deterrence,
    PerceivedDeterrence,
    Profiled,
    Rates,
    Responses,
    adapt,
    add_events,
    behave,
    initial_rate_columns,
    perceive,
    respond,
    totals,
)
from panopticon.governance import (
    FILED,
    REJECTED,
    UPHELD,
    AppealDay,
    Appeals,
    AppealState,
    Insiders,
    Manipulations,
    Review,
    ReviewDay,
    ReviewState,
    appeals_today,
    edit_rows,
    insiders_act,
    review_today,
)
from panopticon.metrics.daily import behaviour_by_group, measure, rates_by_group, standing
from panopticon.policy.runtime import (
    ENTERED,
    LEFT,
    ListChanges,
    PolicyRuntime,
    RuleTable,
    compile_policy_conditions,
    static_columns,
)
from panopticon.policy.scoring import ARRIVAL, CompiledPolicy, LedgerRows, associate, classify
from panopticon.rng import Stage, stream_key, uniforms, uniforms_at
from panopticon.sanctions import (
    Gates,
    Opportunities,
    OpportunityDay,
    OpportunityState,
    attempt,
    loan_outcomes,
    repayment,
)
from panopticon.scenario import RepaymentTable, ScenarioSpec, scenario_conditions
from panopticon.sensors import (
    PATROL,
    TALLY,
    Observations,
    SensorModel,
    compile_sensors,
    observe,
    place_units,
    prior_counts,
    reallocate,
    stream_records,
    with_coverage,
)
from panopticon.society import CSR, Society, generate_society, network
from panopticon.society.ties import from_pairs, index_dtype


@dataclass(frozen=True)
class Simulation:
    """Everything fixed for a run: the scenario compiled against its generated society."""

    scenario: ScenarioSpec
    events: tuple[str, ...]
    society: Society
    sensors: SensorModel
    policy: CompiledPolicy
    deterrence: tuple[Deterrence, ...]
    responses: Responses
    opportunities: Opportunities
    conditions: dict[str, tuple[str, str, bool]]
    """The scenario's own conditions (responses, loans), compiled by the policy runtime."""
    baseline: np.ndarray
    """(T, G) float64 expected events a day by type and group at the starting rates."""
    appeals: Appeals | None = None
    insiders: Insiders | None = None
    perceived: PerceivedDeterrence | None = None
    visiting: dict = field(default_factory=dict, repr=False, compare=False)
    """With visitors: ``start``, the visitor slots' day-0 dense rates (filled when the rates
    are made), which each arrival starts from."""
    review: Review | None = None

    @property
    def adapting(self) -> np.ndarray:
        """(T,) bool: the event types whose rates change during the run."""
        out = self.responses.apply.any(axis=0)
        for d in self.deterrence:
            out = out | d.event_mask
        if self.perceived is not None:
            out = out | self.perceived.events
        return out

    @property
    def seed(self) -> int:
        """The run's root seed."""
        return self.scenario.run.seed

    @property
    def n(self) -> int:
        """Number of citizens."""
        return self.society.n


@dataclass
class State:
    """What changes from day to day (arrays of shape (n,) unless noted).

    Attributes:
        day: the next day to simulate (0-based).
        scores: int64 milli-points. tier: uint8, 0 = highest.
        rates: (n, T) float64 true events per day, its fixed columns by profile (see
            :class:`~panopticon.behaviour.Rates`); total: row sums; p0: ``exp(-total)``, the
            chance of no event in a day (derived from rates). base: (n, C) the
            starting rates of the events a response bounds or sets, by profile (derived).
        false_points: int64 milli-points each citizen owes to false observations.
        ever_false: bool, named by a false observation at least once.
        partner: int32 partner id (-1: none); changes with a partner market.
        sensors: the sensor model as it is today (coverage may be reallocated); heat: (S, R)
            float64 recent observations per source and region (decayed daily).
        ties: the tie layers as they are today (rewiring replaces a layer's CSR in place).
        opportunities: what the gates remember (retries, running loans).
        chain: the ledger hash chain; ``ledger_head`` is its 32-byte head.
    """

    day: int
    scores: np.ndarray
    tier: np.ndarray
    rates: Rates
    total: np.ndarray
    p0: np.ndarray
    base: Profiled
    false_points: np.ndarray
    ever_false: np.ndarray
    partner: np.ndarray
    heat: np.ndarray
    sensors: SensorModel = field(repr=False)
    ties: dict[str, CSR] = field(repr=False)
    opportunities: OpportunityState = field(repr=False)
    appeals: AppealState = field(repr=False)
    policy: PolicyRuntime = field(repr=False)
    chain: ledger.Chain = field(repr=False)
    replaced: set[str] = field(default_factory=set, repr=False)
    """The tie layers replaced since day 0 (a checkpoint stores only these; the others come
    from the seed)."""
    shapes: dict[str, tuple] = field(default_factory=dict, repr=False)
    """Cache: each layer's fragmentation, keyed by the layer object it was measured on."""
    deterred: np.ndarray | None = field(default=None, repr=False)
    """Perceived deterrence's factors now in the rates, (T, R + 1) (None without it);
    derived from the coverage."""
    visit_until: np.ndarray | None = None
    """With visitors, (pool,) int32 per visitor slot: present on day d while
    ``visit_until > d`` (0: not yet arrived). None without visitors."""
    visits: np.ndarray | None = None
    """With visitors, (pool,) int32 stays begun so far per slot (a slot is one person)."""
    review: ReviewState | None = field(default=None, repr=False)
    """Cases waiting for or decided by a review (None without ``governance.review``)."""
    arrived: LedgerRows | None = field(default=None, repr=False)
    """Today's arrivals' returns to the start score, for the day's ledger (None: none)."""

    ARRAYS = ("scores", "tier", "rates", "false_points", "ever_false", "partner", "heat")

    @property
    def ledger_head(self) -> bytes:
        """Head of the ledger hash chain after the last simulated day."""
        return self.chain.head

    def snapshot(self, copy: bool = True) -> dict[str, np.ndarray]:
        """The arrays a checkpoint must keep (total, p0, base and the fixed rates are derived):
        copies, or with ``copy=False`` the state's own arrays (valid until the next day
        changes them). ``rates`` is the dense columns of the rates."""
        arrays = {k: getattr(self, k) for k in self.ARRAYS} | {"rates": self.rates.dense}
        out = {k: v.copy() if copy else v for k, v in arrays.items()}
        out["day"] = np.int64(self.day)
        out["ledger_head"] = np.frombuffer(self.ledger_head, dtype=np.uint8).copy()
        out["coverage"] = self.sensors.coverage.copy()
        for layer in sorted(self.replaced, key=list(self.ties).index):
            out[f"ties.{layer}.indptr"] = self.ties[layer].indptr
            out[f"ties.{layer}.indices"] = self.ties[layer].indices
        out.update(self.opportunities.snapshot(copy))
        out.update(self.appeals.snapshot(copy))
        out.update(self.policy.snapshot(copy))
        if self.visit_until is not None:
            out["visitors.until"] = self.visit_until.copy() if copy else self.visit_until
            out["visitors.visits"] = self.visits.copy() if copy else self.visits
        if self.review is not None:
            out.update(self.review.snapshot(copy))
        return out

    @classmethod
    def restore(cls, snap: dict[str, np.ndarray], sim: Simulation) -> State:
        """Rebuild a state of ``sim`` from :meth:`snapshot`."""
        start, base = _start_rates(sim)
        rates = Rates(np.ascontiguousarray(snap["rates"], dtype=DENSE), start.fixed,
                      start.where)
        del start
        total, p0 = np.empty(sim.n), np.empty(sim.n)
        totals(rates, total, p0)
        day = int(snap["day"])
        replaced = {layer for layer in sim.society.ties if f"ties.{layer}.indptr" in snap}
        ties = {layer: CSR(snap[f"ties.{layer}.indptr"].astype(
                               index_dtype(len(snap[f"ties.{layer}.indices"]))),
                           snap[f"ties.{layer}.indices"].astype(np.int32))
                if layer in replaced else sim.society.ties[layer] for layer in sim.society.ties}
        for layer in replaced:
            sim.society.ties.release(layer)
        policy = _runtime(sim, ties)
        policy.restore(snap, day)
        state = cls(day=day, scores=snap["scores"].astype(np.int64),
                   tier=snap["tier"].astype(np.uint8), rates=rates, total=total, p0=p0,
                   base=base, false_points=snap["false_points"].astype(np.int64),
                   ever_false=snap["ever_false"].astype(bool),
                   partner=snap["partner"].astype(np.int32),
                   heat=snap["heat"].astype(np.float64),
                   sensors=with_coverage(sim.sensors, snap["coverage"].astype(np.float64)),
                   ties=ties,
                   opportunities=OpportunityState.restore(snap),
                   appeals=AppealState.restore(snap), policy=policy,
                   chain=ledger.Chain(bytes(snap["ledger_head"].astype(np.uint8))),
                   replaced=replaced,
                   review=ReviewState.restore(snap) if sim.review is not None else None)
        if "visitors.until" in snap:
            state.visit_until = snap["visitors.until"].astype(np.int32)
            state.visits = snap["visitors.visits"].astype(np.int32)
            policy.set_away(away(sim, state))
        if sim.perceived is not None:  # already in the rates: only what they are
            state.deterred = sim.perceived.factors(state.sensors.detect,
                                                   sim.sensors.sources_of_event)
        return state

    @classmethod
    def check_snapshot(cls, snap: dict[str, np.ndarray], sim: Simulation) -> list[str]:
        """What makes ``snap`` unfit for :meth:`restore` into ``sim``: a missing or unknown
        array, another dtype or shape than this simulation's state has, a day outside the
        run, or an index (citizen, partner, tier, tie) out of range. The compiled kernels
        trust these arrays, so a checkpoint is checked before it is restored.

        Returns:
            One line per problem (empty: restorable).
        """
        n, days = sim.n, sim.scenario.run.days
        reference = initial_state(sim).snapshot()
        ties = {f"ties.{layer}.{part}" for layer in sim.society.ties for part in ("indptr",
                                                                                  "indices")}
        problems = [f"{k}: missing" for k in sorted(set(reference) - set(snap))]
        problems += [f"{k}: not part of this run's state" for k in sorted(
            set(snap) - set(reference) - ties)]
        for key in sorted(set(reference) & set(snap)):
            want, got = reference[key], snap[key]
            if got.dtype != want.dtype or got.ndim != want.ndim:
                problems.append(f"{key}: {got.dtype} {got.shape}, expected {want.dtype} with "
                                f"{want.ndim} dimensions")
            elif got.shape != want.shape and not (want.ndim == 1 and n not in want.shape
                                                  and key.startswith("policy.")):
                problems.append(f"{key}: shape {got.shape}, expected {want.shape}")
        if problems:
            return problems
        if not 0 < int(snap["day"]) <= days:
            problems.append(f"day: {int(snap['day'])}, expected 1 to {days}")

        def out_of_range(key: str, low: int, high: int) -> None:
            a = snap[key]
            if a.size and (a.min() < low or a.max() >= high):
                problems.append(f"{key}: values outside {low} to {high - 1}")

        out_of_range("partner", -1, n)
        if "visitors.until" in snap:
            out_of_range("visitors.until", 0, days + 3651)
            out_of_range("visitors.visits", 0, days + 1)
        out_of_range("tier", 0, len(sim.policy.tier_names))
        if sim.review is not None:
            out_of_range("review.queued", -1, days + 1)
            out_of_range("review.status", 0, 4)
            out_of_range("review.fell_to", 0, len(sim.policy.tier_names))
        for key in snap:
            if key.startswith("policy.") and key.endswith(("citizen", "citizens")):
                out_of_range(key, 0, n)
        dues = {len(snap[k]) for k in snap if k.startswith("policy.due")}
        if len(dues) > 1:
            problems.append("policy.due*: queues of different lengths")
        for key in snap:
            if key.startswith("policy.log.") and key.endswith(".sizes"):
                log = key[:-len(".sizes")]
                sizes = snap[key]
                if (sizes < 0).any() or sizes.sum() != len(snap[f"{log}.citizens"]) \
                        or len(sizes) != len(snap[f"{log}.days"]):
                    problems.append(f"{log}: sizes do not match its days and citizens")
        for layer in sim.society.ties:
            indptr, indices = snap.get(f"ties.{layer}.indptr"), snap.get(f"ties.{layer}.indices")
            if indptr is None and indices is None:
                continue
            if indptr is None or indices is None or indptr.dtype not in (np.int32, np.int64) \
                    or indices.dtype != np.int32 or indptr.shape != (n + 1,) \
                    or indptr[0] != 0 or indptr[-1] != len(indices) \
                    or (np.diff(indptr) < 0).any():
                problems.append(f"ties.{layer}: not a valid tie layer of {n} citizens")
            else:
                out_of_range(f"ties.{layer}.indices", 0, n)
        return problems

    def fingerprint(self) -> str:
        """SHA-256 over every state array and the ledger head: equal iff the runs agree bitwise.

        Arrays kept narrower than they once were are hashed as they were then
        (:data:`HASHED_AS`), so fingerprints do not depend on how the state is stored."""
        h = hashlib.sha256(self.ledger_head)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Rates):  # as the (n, T) table it stands for
                rows = max(1, _HASH_CHUNK // max(len(v.where), 1))
                for lo in range(0, len(v.dense), rows):
                    h.update(v.rows(lo, lo + rows).data)
            elif f.name == "p0":  # as the (3, n) Poisson CDF at 0, 1, 2 once kept
                _hash(h, v)
                for row in (1, 2):
                    for lo in range(0, len(v), _HASH_CHUNK):
                        h.update(_cdf(v[lo:lo + _HASH_CHUNK], self.total[lo:lo + _HASH_CHUNK],
                                      row).data)
            elif isinstance(v, np.ndarray):
                _hash(h, v)
            elif isinstance(v, Profiled):  # as the (n, C) table it stands for
                rows = max(1, _HASH_CHUNK // max(v.table.shape[1], 1))
                for lo in range(0, len(v.code), rows):
                    h.update(v.rows(lo, lo + rows).data)
        for name, v in sorted({**self.policy.snapshot(False),
                               **self.opportunities.snapshot(False),
                               **self.appeals.snapshot(False),
                               **(self.review.snapshot(False) if self.review is not None
                                  else {})}.items()):
            h.update(name.encode())
            _hash(h, v, HASHED_AS.get(name))
        for layer, csr in sorted(self.ties.items()):
            h.update(layer.encode())
            _hash(h, csr.indptr, np.int64)
            _hash(h, csr.indices)
        return h.hexdigest()


HASHED_AS: dict[str, type] = {
    **{f"policy.{k}": np.int64 for k in ("last_seen", "since", "trigger", "cap_period",
                                          "tier_cap", "tier_cap_until", "true_cap",
                                          "true_cap_until", "boost_until")},
    "opportunities.loan_due": np.int64, "appeals.filed": np.int64,
    "appeals.barred_until": np.int64}
"""State arrays (snapshot names) stored narrower than the dtype the fingerprint hashes them
as (int32 days, uint8 tiers: they were int64); tie layers' ``indptr`` are hashed as int64."""
_HASH_CHUNK = 1 << 20


def _cdf(p0: np.ndarray, total: np.ndarray, k: int) -> np.ndarray:
    """The Poisson CDF at ``k`` (1 or 2) from P(0) and the mean, with the float steps of
    ``kernels.behaviour.cdf12`` (the same bits)."""
    p = p0 * (total / 1)
    c1 = p0 + p
    return c1 if k == 1 else c1 + p * (total / 2)


def _hash(h, a: np.ndarray, dtype: type | None = None) -> None:
    """Feed ``a``'s bytes to ``h`` as ``dtype`` (default: as stored), a chunk at a time so that
    a large array is never copied whole."""
    a = np.ascontiguousarray(a)  # no copy of a large (contiguous) array
    if dtype is None or a.dtype == dtype:
        h.update(a.data)
        return
    flat = a.reshape(-1)
    for lo in range(0, len(flat), _HASH_CHUNK):
        h.update(flat[lo:lo + _HASH_CHUNK].astype(dtype).data)


@dataclass(frozen=True)
class DayRecord:
    """What one day produced.

    Attributes:
        day: the day. metrics: one row of headline numbers (see ``metrics.daily.measure``).
        events: per event type counts (``metrics.daily.TALLY``), (T,) each.
        observations: the day's observations. ledger: columns as hashed (``ledger.LAYOUT``).
        lists: the day's list changes.
        opportunities: attempts and refusals at the gates (None without opportunities).
        appeals: the day's appeals filed and decided (None without appeals).
        manipulations: what insiders did (None without insiders; known to the lab only).
        behaviour: ``true`` events and ``expected`` events (sum of today's rates) by event
            type and group, (T, G) each.
        network: tie statistics per layer (measured on survey days, every
            ``run.survey_every`` days and on the first and last day; empty on other days);
            ``network_groups``: per layer, the same days, each group's ties, (G,) arrays.
    """

    day: int
    metrics: dict[str, float | int]
    events: dict[str, np.ndarray]
    observations: Observations
    ledger: dict[str, np.ndarray]
    lists: ListChanges
    opportunities: OpportunityDay | None = None
    appeals: AppealDay | None = None
    manipulations: Manipulations | None = None
    behaviour: dict[str, np.ndarray] = field(default_factory=dict)
    network: dict[str, dict[str, float]] = field(default_factory=dict)
    network_groups: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


class Sink(Protocol):
    """Receives what a run produces."""

    def day(self, record: DayRecord, state: State) -> None:
        """Called after each day."""

    def checkpoint(self, state: State) -> None:
        """Called every ``checkpoint_every`` days and at the end, with a consistent state."""


def build(scenario: ScenarioSpec) -> Simulation:
    """Generate the society and compile sensors, policy, responses and opportunities."""
    run = scenario.run
    events = scenario.active_events()
    society = generate_society(scenario.society, run.citizens, run.seed)
    pop = society.population
    conditions = scenario_conditions(scenario.behaviour, scenario.opportunities,
                                     scenario.governance, scenario.library)
    chosen = Insiders.choose(scenario.governance.insiders, pop, run.seed)
    manual = Insiders.label_names(scenario.governance.insiders, chosen)
    policy = CompiledPolicy.compile(scenario.policy, manual, visitors=pop.visitors > 0)
    return Simulation(
        scenario=scenario,
        events=tuple(events),
        society=society,
        sensors=compile_sensors(scenario, events, pop),
        policy=policy,
        deterrence=tuple(Deterrence.compile(d, scenario.policy.tier_names, events)
                         for d in scenario.behaviour.deterrence),
        responses=Responses.compile(scenario.behaviour.responses, events),
        opportunities=Opportunities.compile(scenario, events, pop, run.seed,
                                            _eligible(scenario, events, pop, conditions)),
        conditions=conditions,
        baseline=_baseline(scenario, events, pop, run.seed),
        appeals=None if scenario.governance.appeals is None
        else Appeals.compile(scenario.governance.appeals, pop, run.seed),
        insiders=Insiders(tuple(scenario.governance.insiders), chosen, manual,
                          len(policy.rule_labels) - len(manual)),
        perceived=PerceivedDeterrence.compile(scenario.behaviour.perceived_deterrence, events,
                                              RuleTable.compile(scenario.policy, events)),
        review=None if scenario.governance.review is None
        else Review.compile(scenario.governance.review, [x.name for x in scenario.policy.lists],
                            scenario.policy.tier_names),
    )


def _baseline(scenario: ScenarioSpec, events: list[str], pop, seed: int) -> np.ndarray:
    """(T, G) expected events a day by type and group at the starting rates, one type at a
    time (each sum in citizen order, as over the whole table), each rate as a changing rate
    is kept (:data:`~panopticon.behaviour.DENSE`), so that a rate that never moves reads as no
    change."""
    groups = len(pop.labels["group"])
    out = np.zeros((len(events), groups))
    for t, column in initial_rate_columns(scenario, events, pop, seed):
        out[t] = rates_by_group(column.astype(DENSE)[:, None], pop.group, groups)[0]
    return out


def _eligible(scenario: ScenarioSpec, events: list[str], pop,
              conditions: dict[str, tuple[str, str, bool]]) -> dict[str, np.ndarray]:
    """Who may try each opportunity with a ``who`` condition: name -> bool (n,)."""
    who = {p: c for p, c in conditions.items() if p.endswith(".who")}
    compiled = compile_policy_conditions(scenario.policy, events, pop.labels,
                                         tuple(pop.traits), who, only_extra=True)
    static = static_columns(pop)
    out = {p.split(".")[1]: cond(static, None) for p, cond in compiled.items()}
    if pop.visitors:  # visitors never try opportunities
        resident = np.arange(pop.n) < pop.residents
        out = {name: out[name] & resident if name in out else resident
               for name in scenario.opportunities}
    return out


def _runtime(sim: Simulation, ties: dict[str, CSR]) -> PolicyRuntime:
    return PolicyRuntime(sim.scenario.policy, list(sim.events), sim.society.population, sim.seed,
                         ties, sim.conditions)


def initial_state(sim: Simulation) -> State:
    """Day 0: everyone at the start score, rates from traits, nobody listed."""
    n, pop = sim.n, sim.society.population
    rates, base = _start_rates(sim)
    total, p0 = np.empty(n), np.empty(n)
    totals(rates, total, p0)
    ties = dict(sim.society.ties)
    policy = _runtime(sim, ties)
    scores = policy.start.copy()
    state = State(day=0, scores=scores, tier=classify(sim.policy, scores), rates=rates,
                 total=total, p0=p0, base=base,
                 false_points=np.zeros(n, dtype=np.int64), ever_false=np.zeros(n, dtype=bool),
                 partner=pop.partner.copy(), heat=np.zeros_like(sim.sensors.coverage),
                 sensors=sim.sensors, ties=ties,
                 opportunities=OpportunityState.empty(sim.opportunities, n),
                 appeals=AppealState.empty(n), policy=policy,
                 chain=ledger.Chain(ledger.genesis(sim.scenario.digest,
                                                    sim.policy.rule_labels)),
                 review=None if sim.review is None
                 else ReviewState.empty(len(sim.review.rows), n))
    if pop.visitors:
        state.visit_until = np.zeros(pop.visitors, dtype=np.int32)
        state.visits = np.zeros(pop.visitors, dtype=np.int32)
        policy.set_away(away(sim, state))
    follow_coverage(sim, state)
    return state


def away(sim: Simulation, state: State) -> np.ndarray | None:
    """Visitor slots not in the country on ``state.day`` (bool (n,)); None without visitors."""
    if state.visit_until is None:
        return None
    out = np.zeros(sim.n, dtype=bool)
    out[sim.society.population.residents:] = state.visit_until <= state.day
    return out


def arrivals(sim: Simulation, state: State) -> dict[str, int]:
    """Start of day d: visitors whose stay is over leave, and ``arrivals_per_day`` of the
    absent slots arrive (its whole part, plus one with the probability of its fraction;
    the absent slots with the smallest uniforms keyed by (day, slot) come; more than there
    are absent slots are turned away). Each stays ``stay_days`` (drawn per (day, slot),
    rounded to whole days, at least 1) and starts afresh: the policy's start score and tier,
    no false points, listings or counters, rates as on day 0 (state in place). Draws come from
    ``Stage.SOCIETY`` streams of day ``d + 1`` (the society itself is drawn on day 0)."""
    spec = sim.scenario.society.visitors
    d = state.day
    whole = int(spec.arrivals_per_day)
    frac = spec.arrivals_per_day - whole
    want = whole + int(frac > 0 and uniforms(stream_key(sim.seed, Stage.SOCIETY, d + 1, 1),
                                             1)[0] < frac)
    free = np.flatnonzero(state.visit_until <= d)
    if want < len(free):
        u = uniforms_at(stream_key(sim.seed, Stage.SOCIETY, d + 1, 2), free)
        chosen = np.sort(free[np.argsort(u, kind="stable")[:want]])
    else:
        chosen = free
    if len(chosen):
        if isinstance(spec.stay_days, int | float):
            stay = np.full(len(chosen), max(1.0, float(np.rint(spec.stay_days))))
        else:
            from panopticon.society.sampling import draw
            stay = np.maximum(1.0, np.rint(draw(spec.stay_days, uniforms_at(
                stream_key(sim.seed, Stage.SOCIETY, d + 1, 3), chosen))))
        state.visit_until[chosen] = d + np.minimum(stay, 3650).astype(np.int32)
        state.visits[chosen] += 1
        _start_afresh(sim, state, chosen)
    state.policy.set_away(away(sim, state))
    return {"visitors_arrived": len(chosen), "visitors_turned_away": want - len(chosen),
            "visitors_present": int(np.count_nonzero(state.visit_until > d))}


def _start_afresh(sim: Simulation, state: State, slots: np.ndarray) -> None:
    """Arriving visitors (slot numbers) start as on day 0 (see :func:`arrivals`)."""
    ids = (sim.society.population.residents + slots).astype(np.int64)
    rules = state.policy
    before = state.scores[ids]
    rules.arrive(ids, state.scores)
    moved = state.scores[ids] != before  # the ledger explains every score: log the reset
    state.arrived = LedgerRows(
        ids[moved].astype(np.int32),
        np.full(int(moved.sum()), sim.policy.rule_labels.index(ARRIVAL), dtype=np.int16),
        state.scores[ids][moved] - before[moved], np.full(int(moved.sum()), -1, np.int64),
        np.full(int(moved.sum()), -1, np.int8))
    state.tier[ids] = classify(sim.policy, state.scores[ids])
    state.false_points[ids] = 0
    rates = state.rates
    code = rates.fixed.code[ids] if len(rates.fixed.code) else rates.fixed.code
    sub = Rates(sim.visiting["start"][slots].copy(), Profiled(code, rates.fixed.table),
                rates.where)
    total, p0 = np.empty(len(ids)), np.empty(len(ids))
    totals(sub, total, p0)
    if state.deterred is not None:
        perceive(None, state.deterred, _cost_code(sim, rules.exempt_always, ids), sub, total, p0)
    rates.dense[ids] = sub.dense
    state.total[ids] = total
    state.p0[ids] = p0


def follow_coverage(sim: Simulation, state: State) -> None:
    """Perceived deterrence: rates follow today's chances of being recorded (at the start,
    and after coverage moves), in place."""
    if sim.perceived is None:
        return
    new = sim.perceived.factors(state.sensors.detect, sim.sensors.sources_of_event)
    if state.deterred is not None and np.array_equal(new, state.deterred):
        return
    perceive(state.deterred, new, _cost_code(sim, state.policy.exempt), state.rates,
             state.total, state.p0)
    state.deterred = new


def _cost_code(sim: Simulation, exempt: np.ndarray, ids=slice(None)) -> np.ndarray:
    """Perceived deterrence's code of citizens ``ids``: their region, or R (no cost expected)
    for those living abroad or ``exempt`` ((n,) bool); int64."""
    pop = sim.society.population
    return np.where(pop.abroad[ids] | exempt[ids], len(pop.labels["region"]),
                    pop.region[ids]).astype(np.int64)


def _start_rates(sim: Simulation) -> tuple[Rates, Profiled]:
    """Day 0's rates from traits, the columns that never change kept by profile, and the
    starting rates the responses need (:meth:`Responses.base`)."""
    rates = Rates.start(sim.scenario, list(sim.events), sim.society.population, sim.seed,
                        sim.adapting)
    if sim.society.population.visitors:
        sim.visiting["start"] = rates.dense[sim.society.population.residents:].copy()
    kept = sim.responses.base_column >= 0  # changing columns: dense, at their start
    return rates, Profiled.of(rates.dense[:, rates.where[kept]])


@dataclass(frozen=True)
class PolicyDay:
    """What the policy did on one day: ledger columns, list changes, and who is denied each
    sanction and granted each perk (name -> bool (n,))."""

    ledger: dict[str, np.ndarray]
    lists: ListChanges
    denied: dict[str, np.ndarray]
    granted: dict[str, np.ndarray]
    appeals: AppealDay | None = None
    manipulations: Manipulations | None = None
    review: ReviewDay | None = None


def wronged(state: State) -> np.ndarray:
    """Citizens standing wrongly: false points, or a listing only false observations caused
    (bool (n,))."""
    return _wronged(state.policy, state.false_points, state.day)


def _wronged(rules: PolicyRuntime, false_points: np.ndarray, day: int) -> np.ndarray:
    out = false_points != 0
    if len(rules.falsely):
        out |= (rules.falsely & (rules.until > day)).any(axis=0)
    return out


def hear_appeals(sim: Simulation, state: State) -> tuple[LedgerRows, AppealDay]:
    """Today's appeals (see :mod:`panopticon.governance`): upheld ones lose their false
    points, false listings and the grade caps false observations set."""
    rules = state.policy
    rows, day = appeals_today(sim.seed, state.day, sim.appeals, state.appeals, wronged(state),
                              sim.policy, state.scores, state.false_points, rules.falsely,
                              rules.until)
    upheld = day.citizen[day.outcome == UPHELD]
    rules.tier_cap[upheld] = rules.true_cap[upheld]
    rules.tier_cap_until[upheld] = rules.true_cap_until[upheld]
    return rows, day


def apply_policy(sim: Simulation, state: State, obs: Observations) -> PolicyDay:
    """Score, list, associate and classify one day's observations (state in place).

    This is the policy's half of :func:`step`; tests feed it planted observations.
    """
    d, rules, scores, ties = state.day, state.policy, state.scores, state.ties
    heard, appeals = hear_appeals(sim, state) if sim.appeals is not None else (None, None)
    rules.remember(d, obs.citizen, obs.event)
    changes = [rules.score(d, obs, sim.policy, scores, state.false_points, state.tier),
               rules.expire(d, sim.policy, scores, state.false_points)]
    done = []
    if sim.insiders.specs:
        pop = sim.society.population
        edits, rows_edited, added = edit_rows(
            d, sim.insiders, changes[0], pop.region,
            {r: k for k, r in enumerate(pop.labels["region"])}, sim.policy, scores,
            state.false_points)
        rules.add_to_due(changes[0].observation[rows_edited], changes[0].rule[rows_edited],
                         added)
        done.append(edits)
    if heard is not None:
        changes.insert(0, heard)
    if state.arrived is not None:
        changes.insert(0, state.arrived)
        state.arrived = None
    listings = rules.lists_today(d, obs, scores, state.tier)
    changes.append(rules.recompute(d, sim.policy, scores, state.tier))  # before any pull
    changes.append(associate(d, sim.policy, ties, scores,
                             rules.exempt if rules.any_exempt else None))
    changes.append(rules.listed_ties_today(d, sim.policy, ties, scores))
    changes.append(rules.abroad_today(d, sim.policy, scores))
    changes.append(rules.ratings_today(d, obs, sim.policy, ties, scores, state.tier))
    if sim.insiders.specs:
        manual, acted = insiders_act(
            sim.seed, d, sim.insiders, sim.policy, scores, state.false_points, rules.start,
            lambda i: rules.evaluate(f"governance.insiders[{i}].targets", d, scores, state.tier)
            if sim.insiders.specs[i].targets else np.ones(len(scores), dtype=bool),
            lambda official: np.concatenate([ties[k].neighbours(official)
                                             for k in ("family", "friends")]),
            rules.exempt if rules.any_exempt else None)
        changes.append(manual)
        done.append(acted)
    state.tier = rules.cap_tiers(d, classify(sim.policy, scores))
    reviewed = None
    if sim.review is not None:
        reviewed, listings = hold_for_review(sim, state, listings)
    denied, granted = sanctions(sim, state)
    rows = ledger.day_columns(LedgerRows.concat(changes))
    state.chain.append(d, rows)
    return PolicyDay(rows, listings, denied, granted, appeals,
                     Manipulations.concat(done) if done else None, reviewed)


def sanctions(sim: Simulation, state: State) -> tuple[dict[str, np.ndarray],
                                                        dict[str, np.ndarray]]:
    """Who is denied each sanction and granted each perk on the state as it stands, with
    what a review holds back (listings and falls waiting for a reviewer, dismissed falls)."""
    rules, review = state.policy, state.review
    if review is None:
        return rules.consequences(state.day, state.scores, state.tier)
    return rules.consequences(state.day, state.scores,
                              review.sanction_tier(sim.review, state.tier),
                              held=review.held(sim.review))


def hold_for_review(sim: Simulation, state: State, listings: ListChanges
                    ) -> tuple[ReviewDay, ListChanges]:
    """Today's review (see :func:`panopticon.governance.review_today`): new entries and falls
    wait, the oldest are decided; dismissed listings end today (list change ``left``)."""
    d, rules = state.day, state.policy
    new = listings.change == ENTERED
    entered = (listings.list[new].astype(np.int64), listings.citizen[new].astype(np.int64))

    def honest_tier(citizens: np.ndarray) -> np.ndarray:
        scores = state.scores[citizens] - state.false_points[citizens]
        return rules.cap_tiers(d, classify(sim.policy, scores), honest=True, subset=citizens)

    day = review_today(sim.seed, d, sim.review, state.review, entered, rules.until,
                       rules.falsely, state.tier, honest_tier,
                       rules.exempt if rules.any_exempt else None)
    lk, lc = day.lifted
    if len(lc):
        listings = ListChanges.concat([listings, ListChanges(
            lc, lk, np.full(len(lc), LEFT, np.int8), np.full(len(lc), -1, np.int64))])
    return day, listings


def gates(sim: Simulation, state: State, denied: dict[str, np.ndarray],
          granted: dict[str, np.ndarray], now: bool = False) -> Gates:
    """The gates as the policy applies them, and on each citizen's true standing: the score
    net of false points, its tier, and listings that true observations support. The true
    standing is worked out when asked, for the citizens asked about; ``now``: for everyone
    at once (gates read before the day's scoring, whose state is about to change)."""
    d, rules = state.day, state.policy

    def honest(citizens: np.ndarray | None):
        if citizens is None:
            scores = state.scores - state.false_points
            tier = rules.cap_tiers(d, classify(sim.policy, scores), honest=True)
            return (*rules.consequences(d, scores, tier, honest=True), scores)
        # only these citizens: their true scores and tiers, everyone's only if a condition
        # asks for ties' scores
        scores = state.scores[citizens] - state.false_points[citizens]
        tier = rules.cap_tiers(d, classify(sim.policy, scores), honest=True, subset=citizens)
        return (*rules.consequences(d, scores, tier, honest=True, subset=citizens,
                                    everyone=lambda: state.scores - state.false_points),
                scores)

    if not now:
        return Gates(denied, granted, state.scores, honest)
    everyone = honest(None)
    return Gates(denied, granted, state.scores.copy(), lambda citizens: (
        {k: v[citizens] for k, v in everyone[0].items()},
        {k: v[citizens] for k, v in everyone[1].items()}, everyone[2][citizens]))


def try_opportunities(sim: Simulation, state: State, today: Gates) -> OpportunityDay:
    """Citizens try the scenario's opportunities at today's gates (state in place)."""
    pop, d = sim.society.population, state.day

    def repay_of(repay, who: np.ndarray) -> np.ndarray:
        if isinstance(repay, RepaymentTable):
            column = state.scores / 1000 if repay.column == "score" else state.policy.static[
                repay.column]
            return repayment(repay, column[who])
        return state.policy.evaluate(repay, d, state.scores, state.tier)[who]

    return attempt(sim.seed, d, sim.opportunities, state.opportunities, today, pop.group,
                   len(pop.labels["group"]), repay_of)


def adapt_behaviour(sim: Simulation, state: State) -> None:
    """End of day: deterrence by tier, then the scenario's responses (rates in place)."""
    adapt_rates(sim, state.policy, state.day, state.scores, state.tier, state.rates,
                state.total, state.p0, state.base)


def adapt_rates(sim: Simulation, rules: PolicyRuntime, day: int, scores: np.ndarray,
                tier: np.ndarray, rates: Rates, total: np.ndarray, p0: np.ndarray,
                base: Profiled) -> None:
    """:func:`adapt_behaviour` of the citizens ``rules`` holds (everyone, or a shard)."""
    respond(list(sim.deterrence), tier, rates, total, p0)
    if sim.responses.paths:
        masks = [rules.evaluate(p, day, scores, tier) for p in sim.responses.paths]
        adapt(sim.responses, masks, rates, total, p0, base)


def change_ties(sim: Simulation, state: State) -> dict[str, int]:
    """Citizens drop and make ties (unfriending, the partner market); counts of changes."""
    out: dict[str, int] = {}
    beh, d, pop = sim.scenario.behaviour, state.day, sim.society.population
    if beh.unfriending is not None and (d + 1) % beh.unfriending.every_days == 0:
        spec = beh.unfriending
        frozen = state.policy.exempt
        if pop.visitors:  # visitors are never tied to anyone
            frozen = frozen | (np.arange(sim.n) >= pop.residents)
        layer, moved = network.rewire(
            state.ties[spec.layer], state.tier, stream_key(sim.seed, Stage.NETWORK, d, 1),
            spec.probability, spec.drop, frozen)
        _replace(sim, state, spec.layer, layer)
        out["ties_rewired"] = moved
    elif beh.unfriending is not None:
        out["ties_rewired"] = 0
    if beh.partners is not None and (d + 1) % beh.partners.every_days == 0:
        spec = beh.partners
        eligible = (pop.age >= 18) & ~pop.abroad & (np.arange(sim.n) < pop.residents)
        state.partner, broken, formed = network.rematch_partners(
            state.partner, state.scores, pop.sex, eligible,
            stream_key(sim.seed, Stage.NETWORK, d, 2), spec.breakup, spec.meet,
            spec.assortativity)
        if broken or formed:
            a = np.flatnonzero((state.partner >= 0) & (np.arange(sim.n) < state.partner))
            _replace(sim, state, "partner", from_pairs(sim.n, a, state.partner[a]))
        out["couples_broken"], out["couples_formed"] = broken, formed
    elif beh.partners is not None:
        out["couples_broken"] = out["couples_formed"] = 0
    return out


def _replace(sim: Simulation, state: State, name: str, layer: CSR) -> None:
    """The state's tie layer ``name`` is now ``layer``: the generated one is released (the
    society makes it again if asked) and so is its cached fragmentation."""
    state.ties[name] = layer
    state.replaced.add(name)
    state.shapes.pop(name, None)
    sim.society.ties.release(name)


def measure_network(sim: Simulation, state: State) -> dict[str, dict[str, float]]:
    """Tie statistics of every layer (see :func:`panopticon.society.network.tie_stats`);
    a layer's components are counted again only when its ties changed."""
    k = len(sim.policy.tier_names)
    out = {}
    for layer, csr in state.ties.items():
        known = state.shapes.get(layer)
        if known is None or known[0] is not csr:
            known = state.shapes[layer] = (csr, network.fragmentation(csr))
        out[layer] = network.tie_stats(csr, state.tier, k, state.scores, known[1])
    return out


def watch(sim: Simulation, state: State, obs: Observations) -> None:
    """The predictive-policing loop: remember where each source's record streams (its own
    records, or those of ``reallocate.from``, weighted or not) recorded observations, and on
    schedule re-divide the coverage of sources that reallocate, as fractional shares or as
    whole units (state in place)."""
    moving = [(s, spec.reallocate) for s, spec in enumerate(sim.scenario.sensors.values())
              if spec.reallocate is not None]
    if not moving:
        return
    labels = sim.society.population.labels["region"]
    regions, names = len(labels), sim.sensors.names
    seen = np.bincount(obs.source.astype(np.int64) * regions
                       + sim.society.population.region[obs.citizen],
                       minlength=state.heat.size).reshape(state.heat.shape)
    made_under = state.sensors.coverage  # the coverage today's records were made under
    coverage = made_under.copy()
    size = state.sensors.region_size
    for s, spec in moving:
        streams = [s] if spec.from_ is None else [names.index(q) for q in spec.from_]
        state.heat[s] = spec.memory * state.heat[s] + stream_records(seen, made_under, streams,
                                                                     spec.weighting)
        if (state.day + 1) % spec.every_days == 0:
            heat = state.heat[s]
            if isinstance(spec.prior, dict) or spec.prior > 0:
                heat = heat + prior_counts(spec.prior, labels)
            if spec.units is None:
                coverage[s] = reallocate(coverage[s], heat, size, spec.floor, spec.exponent)
            else:
                placed = place_units(stream_key(sim.seed, Stage.OBSERVE, state.day, PATROL + s),
                                     heat, size, spec.units, spec.unit_coverage, spec.exponent)
                if placed is not None:
                    coverage[s] = placed
    if not np.array_equal(coverage, state.sensors.coverage):
        state.sensors = with_coverage(state.sensors, coverage)
        follow_coverage(sim, state)


def step(sim: Simulation, state: State) -> DayRecord:
    """Simulate one day in place and return what it produced."""
    d, seed, pop = state.day, sim.seed, sim.society.population
    opps = sim.opportunities
    visiting = arrivals(sim, state) if state.visit_until is not None else None
    early = None
    if opps.kinds and not sim.scenario.policy.score.realtime:  # gates read yesterday's standing
        early = gates(sim, state, *sanctions(sim, state), now=True)
    true = behave(seed, d, state.rates, state.total, state.p0)
    if opps.loans:
        true = add_events(true, *loan_outcomes(d, opps, state.opportunities))
    if visiting is not None:
        true, obs, counts = _observe_present(sim, state, true)
    else:
        obs, _, counts = observe(seed, d, true, state.sensors, pop.region, pop.abroad)
    watch(sim, state, obs)
    policy = apply_policy(sim, state, obs)
    tried = try_opportunities(sim, state, early or gates(sim, state, policy.denied,
                                                         policy.granted)) if opps.kinds else None
    adapt_behaviour(sim, state)
    tie_changes = change_ties(sim, state)
    tally = dict(zip(TALLY, counts, strict=True))
    here = slice(None) if visiting is None else ~away(sim, state)  # absent visitors: not counted
    metrics = measure(d, state.scores[here], state.tier[here], sim.policy.tier_names, tally, obs,
                      len(policy.ledger["citizen"]), state.ever_false, state.false_points[here])
    metrics.update(standing(d, state.policy.until, [x.name for x in state.policy.lists],
                            policy.denied, policy.granted))
    if tried is not None:
        metrics.update(opportunity_totals(tried))
    if policy.appeals is not None:
        metrics.update(appeal_totals(policy.appeals, state))
    if policy.review is not None:
        metrics.update(review_totals(policy.review, state))
    if sim.scenario.policy.sanctions:
        metrics["citizens_wrongly_sanctioned"] = wrongly_sanctioned(sim, state, policy.denied)
    metrics.update(tie_changes)
    metrics.update(coverage_today(sim, state))
    if visiting is not None:
        metrics.update(visiting)
    survey = survey_day(sim, d)
    state.day = d + 1
    groups = len(pop.labels["group"])
    if policy.manipulations is not None:
        metrics["manipulations"] = len(policy.manipulations.citizen)
    return DayRecord(d, metrics, tally, obs, policy.ledger, policy.lists, tried, policy.appeals,
                     policy.manipulations,
                     behaviour_by_group(true, pop.group, sim.baseline,
                                        state.rates if survey else None, sim.adapting),
                     measure_network(sim, state) if survey else {},
                     {layer: network.group_stats(csr, state.tier, pop.group, groups)
                      for layer, csr in state.ties.items()} if survey else {})


def survey_day(sim: Simulation, day: int) -> bool:
    """Whether ``day`` is a survey day: every ``run.survey_every`` days, the first and the
    last (never with ``survey_every`` 0)."""
    every = sim.scenario.run.survey_every
    return every > 0 and ((day + 1) % every == 0 or day == 0 or day + 1 == sim.scenario.run.days)


def _observe_present(sim: Simulation, state: State, true):
    """With visitors: absent visitors do nothing and no record names them (their true events
    are dropped; misattributions and phantoms that would name them are dropped too, counted
    as missed and not as false observations)."""
    pop, d = sim.society.population, state.day
    gone = state.policy.exempt & ~state.policy.exempt_always  # away today
    keep = ~gone[true.citizen]
    if not keep.all():
        true = type(true)(true.citizen[keep], true.event[keep], true.seq[keep])
    obs, _, counts = observe(sim.seed, d, true, state.sensors, pop.region, pop.abroad | gone)
    drop = gone[obs.citizen]
    if drop.any():
        t = counts.shape[1]
        misattributed = drop & (obs.true_actor >= 0)
        false_rows = np.bincount(obs.event[drop].astype(np.int64), minlength=t)
        mis_rows = np.bincount(obs.event[misattributed].astype(np.int64), minlength=t)
        counts = counts.copy()
        counts[TALLY.index("false_observations")] -= false_rows
        counts[TALLY.index("misattributed")] -= mis_rows
        counts[TALLY.index("missed")] += mis_rows
        obs = Observations(*(getattr(obs, f)[~drop] for f in ("citizen", "event", "source",
                                                                "is_true", "true_actor")))
    return true, obs, counts


def appeal_totals(day: AppealDay, state: State) -> dict[str, float]:
    """``appeals_filed``, ``appeals_upheld``, ``appeals_rejected`` today, the ``appeal_backlog``
    at the end of the day and the mean ``appeal_wait_days`` of today's decisions (NaN if none)."""
    decided = day.outcome != FILED
    return {"appeals_filed": int((day.outcome == FILED).sum()),
            "appeals_upheld": int((day.outcome == UPHELD).sum()),
            "appeals_rejected": int((day.outcome == REJECTED).sum()),
            "appeal_backlog": int(np.count_nonzero(state.appeals.filed >= 0)),
            "appeal_wait_days": float(day.waited[decided].mean()) if decided.any()
            else float("nan")}


def review_totals(day: ReviewDay, state: State) -> dict[str, float]:
    """``reviews_entered`` (cases queued today), ``reviews_confirmed``, ``reviews_dismissed``,
    of those ``reviews_false_caught`` and ``reviews_true_dismissed``, and
    ``reviews_false_confirmed`` today; ``review_backlog`` (cases waiting at the end of the day)
    and the mean ``review_wait_days`` of today's decisions (NaN if none)."""
    return {"reviews_entered": day.entered, "reviews_confirmed": day.confirmed,
            "reviews_dismissed": day.dismissed, "reviews_false_caught": day.false_caught,
            "reviews_true_dismissed": day.true_dismissed,
            "reviews_false_confirmed": day.false_confirmed,
            "review_backlog": int(np.count_nonzero(state.review.queued >= 0)),
            "review_wait_days": float(day.waited.mean()) if len(day.waited) else float("nan")}


def wrongly_sanctioned(sim: Simulation, state: State, denied: dict[str, np.ndarray]) -> int:
    """Citizens denied a sanction today who would not be on their true standing (the
    counterfactual of every sanction, worked out only for citizens standing wrongly)."""
    return wrongly_denied(sim.policy, state.policy, state.day, state.scores,
                          state.false_points, denied)


def wrongly_denied(policy: CompiledPolicy, rules: PolicyRuntime, day: int, scores: np.ndarray,
                   false_points: np.ndarray, denied: dict[str, np.ndarray]) -> int:
    """:func:`wrongly_sanctioned` of the citizens ``rules`` holds (everyone's, or a shard's)."""
    who = np.flatnonzero(_wronged(rules, false_points, day))
    if not len(who) or not denied:
        return 0
    honest = scores[who] - false_points[who]
    tier = rules.cap_tiers(day, classify(policy, honest), honest=True, subset=who)
    honest_denied, _ = rules.consequences(day, honest, tier, honest=True, subset=who,
                                          everyone=lambda: scores - false_points)
    hit = np.zeros(len(who), dtype=bool)
    for name, mask in denied.items():
        hit |= mask[who] & ~honest_denied.get(name, np.zeros(len(who), dtype=bool))
    return int(hit.sum())


def coverage_today(sim: Simulation, state: State) -> dict[str, float]:
    """``coverage_<source>_<region>`` of every source that reallocates its coverage."""
    regions = sim.society.population.labels["region"]
    return {f"coverage_{name}_{r}": float(state.sensors.coverage[s, k])
            for s, (name, spec) in enumerate(sim.scenario.sensors.items())
            if spec.reallocate is not None for k, r in enumerate(regions)}


def opportunity_totals(tried: OpportunityDay) -> dict[str, float]:
    """The day's totals over opportunities and groups (``attempts``, ``refused``, ...), and
    the lenders' metrics (``lending_<opportunity>_<category>_<what>``, only with a lender)."""
    from panopticon.sanctions import MEASURES

    sums = tried.counts.sum(axis=(1, 2))
    return {**{("wrongful_refusals" if m == "wrongful" else m): int(v)
               for m, v in zip(MEASURES, sums, strict=True)}, **tried.lending}


SERIAL_BELOW = 500_000
"""Below this many citizens the day loop runs on one thread: the parallel kernels' gain is
smaller there than the cost of sharing the cores with the ledger and store threads."""


def default_threads(n: int) -> int:
    """Threads the day loop uses for ``n`` citizens unless told otherwise."""
    return 1 if n < SERIAL_BELOW else kernels.threads.available()


def run(sim: Simulation, state: State | None = None, sink: Sink | None = None,
        until: int | None = None, threads: int | None = None) -> State:
    """Run from ``state`` (default: day 0) to ``until`` (default: the scenario's days).

    The sink gets every day's record, and a checkpoint every ``run.checkpoint_every`` days and
    after the last day. ``threads`` (default: 1 below :data:`SERIAL_BELOW` citizens, else all
    cores) never changes the results, only the speed.
    """
    state = initial_state(sim) if state is None else state
    last = sim.scenario.run.days if until is None else until
    every = sim.scenario.run.checkpoint_every
    if threads is None:
        threads = default_threads(sim.n)
    previous = kernels.threads.current()
    kernels.threads.use(threads)
    try:
        while state.day < last:
            record = step(sim, state)
            if sink is not None:
                sink.day(record, state)
                if state.day % every == 0 or state.day == last:
                    sink.checkpoint(state)
            del record  # not held through the next day: a store may be writing it already
    finally:
        kernels.threads.use(previous)
    return state
