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

import numba
import numpy as np

from panopticon import ledger
from panopticon.behaviour import Deterrence, behave, initial_rates, respond, totals
from panopticon.metrics.daily import measure, standing
from panopticon.policy.runtime import ListChanges, PolicyRuntime
from panopticon.policy.scoring import CompiledPolicy, LedgerRows, associate, classify
from panopticon.scenario import ScenarioSpec
from panopticon.sensors import TALLY, Observations, SensorModel, compile_sensors, observe
from panopticon.society import Society, generate_society


@dataclass(frozen=True)
class Simulation:
    """Everything fixed for a run: the scenario compiled against its generated society."""

    scenario: ScenarioSpec
    events: tuple[str, ...]
    society: Society
    sensors: SensorModel
    policy: CompiledPolicy
    deterrence: tuple[Deterrence, ...]

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
        rates: (n, T) float64 true events per day; total: row sums; cdf: (3, n) Poisson CDF
            of each citizen's daily count at 0, 1, 2 (derived from rates).
        false_points: int64 milli-points each citizen owes to false observations.
        ever_false: bool, named by a false observation at least once.
        chain: the ledger hash chain; ``ledger_head`` is its 32-byte head.
    """

    day: int
    scores: np.ndarray
    tier: np.ndarray
    rates: np.ndarray
    total: np.ndarray
    cdf: np.ndarray
    false_points: np.ndarray
    ever_false: np.ndarray
    policy: PolicyRuntime = field(repr=False)
    chain: ledger.Chain = field(repr=False)

    ARRAYS = ("scores", "tier", "rates", "false_points", "ever_false")

    @property
    def ledger_head(self) -> bytes:
        """Head of the ledger hash chain after the last simulated day."""
        return self.chain.head

    def snapshot(self) -> dict[str, np.ndarray]:
        """The arrays a checkpoint must keep (total and cdf are derived)."""
        out = {k: getattr(self, k).copy() for k in self.ARRAYS}
        out["day"] = np.int64(self.day)
        out["ledger_head"] = np.frombuffer(self.ledger_head, dtype=np.uint8).copy()
        out.update(self.policy.snapshot())
        return out

    @classmethod
    def restore(cls, snap: dict[str, np.ndarray], sim: Simulation) -> State:
        """Rebuild a state of ``sim`` from :meth:`snapshot`."""
        rates = np.ascontiguousarray(snap["rates"], dtype=np.float64)
        total = np.empty(rates.shape[0])
        cdf = np.empty((3, rates.shape[0]))
        totals(rates, total, cdf)
        day = int(snap["day"])
        policy = PolicyRuntime(sim.scenario.policy, list(sim.events), sim.society.population,
                               sim.seed, sim.society.ties)
        policy.restore(snap, day)
        return cls(day=day, scores=snap["scores"].astype(np.int64),
                   tier=snap["tier"].astype(np.uint8), rates=rates, total=total, cdf=cdf,
                   false_points=snap["false_points"].astype(np.int64),
                   ever_false=snap["ever_false"].astype(bool), policy=policy,
                   chain=ledger.Chain(bytes(snap["ledger_head"].astype(np.uint8))))

    def fingerprint(self) -> str:
        """SHA-256 over every state array and the ledger head: equal iff the runs agree bitwise."""
        h = hashlib.sha256(self.ledger_head)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                h.update(np.ascontiguousarray(v).tobytes())
        for name, v in sorted(self.policy.snapshot().items()):
            h.update(name.encode())
            h.update(np.ascontiguousarray(v).tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class DayRecord:
    """What one day produced.

    Attributes:
        day: the day. metrics: one row of headline numbers (see ``metrics.daily.measure``).
        events: per event type counts (``metrics.daily.TALLY``), (T,) each.
        observations: the day's observations. ledger: columns as hashed (``ledger.LAYOUT``).
        lists: the day's list changes.
    """

    day: int
    metrics: dict[str, float | int]
    events: dict[str, np.ndarray]
    observations: Observations
    ledger: dict[str, np.ndarray]
    lists: ListChanges


class Sink(Protocol):
    """Receives what a run produces."""

    def day(self, record: DayRecord, state: State) -> None:
        """Called after each day."""

    def checkpoint(self, state: State) -> None:
        """Called every ``checkpoint_every`` days and at the end, with a consistent state."""


def build(scenario: ScenarioSpec) -> Simulation:
    """Generate the society and compile sensors and policy for a scenario."""
    run = scenario.run
    events = scenario.active_events()
    society = generate_society(scenario.society, run.citizens, run.seed)
    return Simulation(
        scenario=scenario,
        events=tuple(events),
        society=society,
        sensors=compile_sensors(scenario, events, society.population),
        policy=CompiledPolicy.compile(scenario.policy),
        deterrence=tuple(Deterrence.compile(d, scenario.policy.tier_names, events)
                         for d in scenario.behaviour.deterrence),
    )


def initial_state(sim: Simulation) -> State:
    """Day 0: everyone at the start score, rates from traits, nobody listed."""
    n, pop = sim.n, sim.society.population
    rates = initial_rates(sim.scenario, list(sim.events), pop, sim.seed)
    total, cdf = np.empty(n), np.empty((3, n))
    totals(rates, total, cdf)
    policy = PolicyRuntime(sim.scenario.policy, list(sim.events), pop, sim.seed, sim.society.ties)
    scores = policy.start.copy()
    return State(day=0, scores=scores, tier=classify(sim.policy, scores), rates=rates,
                 total=total, cdf=cdf, false_points=np.zeros(n, dtype=np.int64),
                 ever_false=np.zeros(n, dtype=bool), policy=policy,
                 chain=ledger.Chain(ledger.genesis(sim.scenario.digest)))


@dataclass(frozen=True)
class PolicyDay:
    """What the policy did on one day: ledger columns, list changes, and who is denied each
    sanction and granted each perk (name -> bool (n,))."""

    ledger: dict[str, np.ndarray]
    lists: ListChanges
    denied: dict[str, np.ndarray]
    granted: dict[str, np.ndarray]


def apply_policy(sim: Simulation, state: State, obs: Observations) -> PolicyDay:
    """Score, list, associate and classify one day's observations (state in place).

    This is the policy's half of :func:`step`; tests feed it planted observations.
    """
    d, rules, scores = state.day, state.policy, state.scores
    rules.remember(d, obs.citizen, obs.event)
    changes = [rules.score(d, obs, sim.policy, scores, state.false_points, state.tier),
               rules.expire(d, sim.policy, scores, state.false_points)]
    listings = rules.lists_today(d, obs, scores, state.tier)
    changes.append(rules.recompute(d, sim.policy, scores, state.tier))  # before any pull
    changes.append(associate(d, sim.policy, sim.society.ties, scores,
                             rules.exempt if rules.any_exempt else None))
    changes.append(rules.listed_ties_today(d, sim.policy, sim.society.ties, scores))
    changes.append(rules.abroad_today(d, sim.policy, scores))
    changes.append(rules.ratings_today(d, obs, sim.policy, sim.society.ties, scores, state.tier))
    state.tier = rules.cap_tiers(d, classify(sim.policy, scores))
    denied, granted = rules.consequences(d, scores, state.tier)
    rows = ledger.day_columns(LedgerRows.concat(changes))
    state.chain.append(d, rows)
    return PolicyDay(rows, listings, denied, granted)


def step(sim: Simulation, state: State) -> DayRecord:
    """Simulate one day in place and return what it produced."""
    d, seed, pop = state.day, sim.seed, sim.society.population
    true = behave(seed, d, state.rates, state.total, state.cdf)
    obs, _, counts = observe(seed, d, true, sim.sensors, pop.region, pop.abroad)
    policy = apply_policy(sim, state, obs)
    # opportunities, appeals and manipulation come in later stages
    respond(list(sim.deterrence), state.tier, state.rates, state.total, state.cdf)
    tally = dict(zip(TALLY, counts, strict=True))
    metrics = measure(d, state.scores, state.tier, sim.policy.tier_names, tally, obs,
                      len(policy.ledger["citizen"]), state.ever_false, state.false_points)
    metrics.update(standing(d, state.policy.until, [x.name for x in state.policy.lists],
                            policy.denied, policy.granted))
    state.day = d + 1
    return DayRecord(d, metrics, tally, obs, policy.ledger, policy.lists)


SERIAL_BELOW = 500_000
"""Below this many citizens the day loop runs on one thread: the parallel kernels' gain is
smaller there than the cost of sharing the cores with the ledger and store threads."""


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
        threads = 1 if sim.n < SERIAL_BELOW else numba.config.NUMBA_NUM_THREADS
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        while state.day < last:
            record = step(sim, state)
            if sink is not None:
                sink.day(record, state)
                if state.day % every == 0 or state.day == last:
                    sink.checkpoint(state)
    finally:
        numba.set_num_threads(previous)
    return state
