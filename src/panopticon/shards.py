"""Sharded runs: the citizens split into shards of whole ledger blocks, each shard held by a
Ray actor, a driver passing between them what a day needs.

A shard holds its citizens' changing state (scores, tiers, false points, rates, the policy's
memory of each citizen) and their tie rows. Each day it draws its citizens' behaviour and the
records of it (every draw keyed by citizen id, so any split draws the same), scores the
records that name its citizens (each keyed by its place in the day's list, which the driver
assigns), pulls its citizens toward their ties (on association days the driver hands every
shard everyone's scores), classifies, deters, and hashes its blocks' ledger leaves. The driver
draws the day's phantom records, routes every record to the shard of the citizen it names,
links the day's ledger root from the shards' leaves, merges the day's numbers and rows in the
order one process writes them, changes the ties (unfriending, the partner market: it holds
every tie and the day's scores and tiers), sending each shard its new rows, and decides the
opportunities (it holds their state: the shards hand it their citizens' sanctions and perks,
and the true standing of those it refused; it hands them the loans that end today). A sharded
run therefore stores the same tables, ledger chain and fingerprint as the same run unsharded,
for any number of shards (``tests/test_shards.py``), and its checkpoints are ordinary
checkpoints: a run stopped with K shards resumes with any number, or none.

What is sharded today (docs/scale.md): the day's work and the changing state. A shard holds
its rows of the society and of the state, and of everyone only what records are drawn
against (region, abroad, group, the sensors' profile tables), all handed over by the driver
(what every shard gets alike goes once into Ray's object store). Not yet: the driver generates
the whole society and holds the whole state (it gathers the shards' state at checkpoints and
at the end, and everyone's scores and tiers every day for the day's numbers). Scenarios with
features whose exchanges are not written yet are refused with the list of them
(:func:`unsupported`).
"""

from __future__ import annotations

import time
from dataclasses import fields, replace
from typing import Any

import numpy as np

from panopticon import engine, kernels, ledger
from panopticon.behaviour import Profiled, Rates, TrueEvents, add_events, behave
from panopticon.errors import ShardFailed, UserError
from panopticon.metrics.daily import behaviour_by_group, measure
from panopticon.policy.runtime import ListChanges, PolicyRuntime
from panopticon.policy.scoring import LedgerRows, associate, classify
from panopticon.sanctions import Gates, loan_outcomes
from panopticon.sensors import TALLY, Observations, observe
from panopticon.society import CSR, network
from panopticon.spec.conditions import compile_policy_conditions

OBS = ("citizen", "event", "source", "is_true", "true_actor")
"""The columns of :class:`~panopticon.sensors.Observations`."""
DUE = ("due", "due_citizen", "due_delta", "due_rule", "due_obs", "due_truth")
"""The policy's queue of changes to reverse later (rules that expire), in the order they were
made: by observation id."""
BY_RECORD = 2
"""The first stages of a shard's day, scoring and expiry, make rows in record order; the
others in citizen order."""


def unsupported(sim: engine.Simulation) -> list[str]:
    """The features of ``sim``'s scenario a sharded run cannot run yet (empty: it can)."""
    spec = sim.scenario
    beh, pol, gov = spec.behaviour, spec.policy, spec.governance
    pop = sim.society.population
    conditions = compile_policy_conditions(pol, list(sim.events), pop.labels,
                                           tuple(pop.traits), sim.conditions)
    found = {
        "opportunities read before the day's scoring (policy.score.realtime: false)": bool(
            spec.opportunities) and not pol.score.realtime,
        "a loan's repay as an expression": any(
            o.loan is not None and isinstance(o.loan.repay, str)
            for o in spec.opportunities.values()),
        "policy.lists": bool(pol.lists),
        "conditions reading ties' scores (ties_mean)": any(
            f == "ties_mean" for c in conditions.values() for f, _ in c.calls),
        "policy.peer_rating": pol.peer_rating is not None,
        "a score formula": getattr(pol.score, "formula", None) is not None,
        "association by listed ties": any(a.listed is not None for a in pol.association),
        "more than one association rule": len(pol.association) > 1,
        "behaviour.perceived_deterrence": bool(beh.perceived_deterrence),
        "society.visitors": bool(sim.society.population.visitors),
        "sensors' reallocate": any(s.reallocate is not None for s in spec.sensors.values()),
        "governance (appeals, review, insiders)": bool(gov.appeals or gov.review
                                                       or gov.insiders),
    }
    return [name for name, used in found.items() if used]


def check(sim: engine.Simulation, shards: int) -> list[tuple[int, int]]:
    """The shards' ranges of citizens (:func:`plan`), or a user error if ``sim`` cannot be
    run in ``shards`` shards (before anything is written)."""
    missing = unsupported(sim)
    if missing:
        raise UserError("a sharded run cannot yet run this scenario: it uses "
                        + ", ".join(missing) + " (run it without --shards; docs/scale.md)")
    return plan(sim.n, shards)


def plan(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` ranges ``[lo, hi)`` of citizen ids, whole ledger blocks each (the last
    takes the rest), as even as the blocks allow."""
    blocks = -(-n // ledger.BLOCK)
    if not 1 <= shards <= blocks:
        raise UserError(f"--shards {shards}: {n:,} citizens make {blocks} ledger block"
                        f"{'s' if blocks > 1 else ''} of {ledger.BLOCK:,}; a shard holds whole "
                        f"blocks, so 1 to {blocks} shards")
    cuts = [min(n, round(k * blocks / shards) * ledger.BLOCK) for k in range(shards + 1)]
    cuts[-1] = n
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _rows(csr: CSR, lo: int, hi: int) -> CSR:
    """Citizens ``lo`` to ``hi - 1``'s rows of a tie layer (neighbours keep their ids)."""
    start, end = int(csr.indptr[lo]), int(csr.indptr[hi])
    return CSR((csr.indptr[lo:hi + 1] - start).astype(np.int64),
               csr.indices[start:end].copy())


def _policy_arrays(rules: PolicyRuntime, n: int) -> dict[str, np.ndarray]:
    """The policy runtime's memory of each citizen (its state arrays with citizens on the
    last axis; the queues of changes to expire are not per citizen), by attribute."""
    return {k: getattr(rules, k) for k in rules.state_names
            if getattr(rules, k).shape[-1:] == (n,)}


def part_of(state: engine.State, lo: int, hi: int) -> dict[str, Any]:
    """What a shard of citizens ``lo`` to ``hi - 1`` starts from: its rows of the state, and
    its part of the policy's memory as a snapshot (its ids made the shard's)."""
    return {"scores": state.scores[lo:hi], "tier": state.tier[lo:hi],
            "false_points": state.false_points[lo:hi], "dense": state.rates.dense[lo:hi],
            "code": state.rates.fixed.code[lo:hi], "total": state.total[lo:hi],
            "p0": state.p0[lo:hi], "base_code": state.base.code[lo:hi],
            "day": state.day, "policy": _policy_snapshot(state.policy, len(state.scores),
                                                         lo, hi)}


def _policy_snapshot(rules: PolicyRuntime, n: int, lo: int, hi: int) -> dict[str, np.ndarray]:
    """:meth:`PolicyRuntime.snapshot` of citizens ``lo`` to ``hi - 1``: their columns of the
    per-citizen arrays, their queued changes and their records in the counters' log."""
    out = {f"policy.{k}": v[..., lo:hi] for k, v in _policy_arrays(rules, n).items()}
    mine = (rules.due_citizen >= lo) & (rules.due_citizen < hi)
    out.update({f"policy.{k}": getattr(rules, k)[mine] for k in DUE})
    out["policy.due_citizen"] = out["policy.due_citizen"] - lo
    for e, log in rules.log.items():
        kept = [c[(c >= lo) & (c < hi)] - lo for _, c in log]
        out[f"policy.log.{e}.days"] = np.asarray([d for d, _ in log], dtype=np.int64)
        out[f"policy.log.{e}.sizes"] = np.asarray([len(c) for c in kept], dtype=np.int64)
        out[f"policy.log.{e}.citizens"] = np.concatenate(kept) if kept else np.empty(0, np.int32)
    return out


def society_part(sim: engine.Simulation, state: engine.State, lo: int, hi: int
                 ) -> dict[str, Any]:
    """A shard's rows of the society: its citizens' attributes (copies) and their rows of the
    tie layers the policy pulls along, as the state has them (rewired, in a resumed run)."""
    pop = sim.society.population
    mine = replace(pop, **{f.name: getattr(pop, f.name)[lo:hi].copy() for f in fields(pop)
                           if isinstance(getattr(pop, f.name), np.ndarray)},
                   traits={k: v[lo:hi].copy() for k, v in pop.traits.items()})
    layers = {a.ties for a in sim.scenario.policy.association}
    return {"population": mine,
            "ties": {name: _rows(state.ties[name], lo, hi) for name in layers}}


def shared_with_shards(sim: engine.Simulation, state: engine.State) -> dict[str, Any]:
    """What every shard gets alike (once in Ray's object store, read in place): the
    simulation without its society, the three columns of everyone that records are drawn
    against, and the rates' tables."""
    pop = sim.society.population
    return {"sim": replace(sim, society=None), "region": pop.region, "abroad": pop.abroad,
            "group": pop.group, "table": state.rates.fixed.table, "where": state.rates.where,
            "base_table": state.base.table}


class Shard:
    """Citizens ``lo`` to ``hi - 1`` of a run: their state and their part of each day.

    Built from what the driver hands over (:func:`shared_with_shards`, :func:`part_of`,
    :func:`society_part`): a shard generates nothing itself."""

    def __init__(self, shared: dict[str, Any], lo: int, hi: int, part: dict[str, Any],
                 threads: int | None = None):
        if threads is not None:  # a Ray actor: one CPU of the cluster
            kernels.threads.use(threads)
        self.sim = sim = shared["sim"]
        self.lo, self.hi = lo, hi
        self.region, self.abroad, self.group = shared["region"], shared["abroad"], \
            shared["group"]
        self.ties = part["ties"]
        self.rules = PolicyRuntime(sim.scenario.policy, list(sim.events), part["population"],
                                   sim.seed, self.ties, sim.conditions)
        self.rules.restore(part["policy"], part["day"])
        self.scores = part["scores"].copy()
        self.tier = part["tier"].copy()
        self.false_points = part["false_points"].copy()
        self.rates = Rates(part["dense"].copy(), Profiled(part["code"].copy(), shared["table"]),
                           shared["where"])
        self.total, self.p0 = part["total"].copy(), part["p0"].copy()
        self.base = Profiled(part["base_code"].copy(), shared["base_table"])
        self.records = replace(sim.sensors, block_first=np.zeros(0, np.int64),
                               block_len=np.zeros(0, np.int64),
                               block_profile=np.zeros(0, np.int32))  # phantoms: the driver's
        self.changes: list[LedgerRows] = []

    def observe(self, day: int, loans: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """The shard's citizens' true events (with ``loans``, the loans of its citizens that
        end today: citizen ids and events) and the records of them (citizen ids, in the order
        one process lists them), the day's tally of them (5, T) and the true events by type
        and group (T, G)."""
        sim = self.sim
        true = behave(sim.seed, day, self.rates, self.total, self.p0, self.lo)
        true = TrueEvents((true.citizen + self.lo).astype(np.int32), true.event, true.seq)
        if loans is not None:
            true = add_events(true, *loans)
        obs, _, tally = observe(sim.seed, day, true, self.records, self.region, self.abroad)
        by_group = behaviour_by_group(true, self.group, sim.baseline, None, sim.adapting)
        return {k: getattr(obs, k) for k in OBS}, tally, by_group["true_events"]

    def score(self, day: int, rows: dict[str, np.ndarray], positions: np.ndarray
              ) -> np.ndarray | None:
        """Score the records naming the shard's citizens (``positions``: their places in the
        day's list); the shard's scores if an association rule is due today (every shard's
        are then handed to :meth:`finish`), else None."""
        sim, rules = self.sim, self.rules
        obs = Observations((rows["citizen"] - self.lo).astype(np.int32), *(
            rows[k] for k in OBS[1:]))
        rules.remember(day, obs.citizen, obs.event)
        self.changes = [
            rules.score(day, obs, sim.policy, self.scores, self.false_points, self.tier,
                        positions),
            rules.expire(day, sim.policy, self.scores, self.false_points)]
        rules.lists_today(day, obs, self.scores, self.tier)
        self.changes.append(rules.recompute(day, sim.policy, self.scores, self.tier))
        due = any((day + 1) % every == 0 for *_, every in sim.policy.association)
        return self.scores.copy() if due else None

    def finish(self, day: int, everyone: np.ndarray | None) -> dict[str, Any]:
        """The rest of the shard's day: association (reading ``everyone``'s scores), the
        scope's treatment of citizens abroad, tiers, deterrence and responses. Returns the
        day's ledger rows by stage (citizen ids), the leaves of the shard's blocks, and its
        citizens' scores, tiers and false points."""
        sim, rules = self.sim, self.rules
        if everyone is not None:
            self.changes.append(associate(day, sim.policy, self.ties, self.scores,
                                          rules.exempt if rules.any_exempt else None,
                                          everyone=everyone, first=self.lo))
        self.changes.append(rules.abroad_today(day, sim.policy, self.scores))
        self.tier = rules.cap_tiers(day, classify(sim.policy, self.scores))
        denied, granted = rules.consequences(day, self.scores, self.tier)
        standing = {**{f"denied_{k}": int(np.count_nonzero(v)) for k, v in denied.items()},
                    **{f"granted_{k}": int(np.count_nonzero(v)) for k, v in granted.items()}}
        if sim.scenario.policy.sanctions:
            standing["citizens_wrongly_sanctioned"] = engine.wrongly_denied(
                sim.policy, rules, day, self.scores, self.false_points, denied)
        stages = [ledger.day_columns(replace(rows, citizen=(rows.citizen + self.lo).astype(
            np.int32))) for rows in self.changes]
        blocks, leaves = ledger.leaves({k: np.concatenate([s[k] for s in stages])
                                        for k in stages[0]})
        engine.adapt_rates(sim, rules, day, self.scores, self.tier, self.rates, self.total,
                           self.p0, self.base)
        gates = (denied, granted) if sim.opportunities.kinds else None
        return {"stages": stages, "blocks": blocks, "leaves": leaves, "scores": self.scores,
                "tier": self.tier, "false_points": self.false_points, "standing": standing,
                "gates": gates}

    def honest(self, day: int, citizens: np.ndarray) -> tuple[dict, dict, np.ndarray]:
        """The gates on the true standing of ``citizens`` (ids of the shard's, ascending)
        as :func:`panopticon.engine.gates` works them out: (denied, granted, scores)."""
        sim, rules = self.sim, self.rules
        mine = citizens - self.lo
        scores = self.scores[mine] - self.false_points[mine]
        tier = rules.cap_tiers(day, classify(sim.policy, scores), honest=True, subset=mine)
        return (*rules.consequences(day, scores, tier, honest=True, subset=mine,
                                    everyone=lambda: self.scores - self.false_points), scores)

    def retie(self, ties: dict[str, CSR]) -> None:
        """The shard's new rows of tie layers the driver changed (unfriending, the partner
        market), for the next association."""
        self.ties.update(ties)  # the policy runtime reads this dict

    def state(self) -> dict[str, Any]:
        """The shard's rows of the state that the driver does not follow day by day."""
        due = {k: getattr(self.rules, k) for k in DUE}
        return {"dense": self.rates.dense, "total": self.total, "p0": self.p0,
                "policy": _policy_arrays(self.rules, self.hi - self.lo),
                "due": {**due, "due_citizen": due["due_citizen"] + self.lo}}


class _Inline:
    """Shards in this process, called as Ray actors are (for tests and one shard)."""

    def __init__(self, shards: list[Shard]):
        self.shards = shards

    def call(self, method: str, *per_shard: list) -> list:
        return [getattr(s, method)(*args) for s, args in zip(
            self.shards, zip(*per_shard, strict=True) if per_shard else [()] * len(self.shards),
            strict=True)]


class _OnRay:
    """Shards as Ray actors; each call runs on every shard at once."""

    def __init__(self, ray, actors: list):
        self.ray, self.actors = ray, actors

    def call(self, method: str, *per_shard: list) -> list:
        put: dict[int, Any] = {}  # an array every shard gets goes to the object store once
        for values in per_shard:
            for v in values:
                if isinstance(v, np.ndarray) and id(v) not in put and \
                        sum(x is v for x in values) > 1:
                    put[id(v)] = self.ray.put(v)
        args = zip(*([put.get(id(v), v) for v in values] for values in per_shard),
                   strict=True) if per_shard else [()] * len(self.actors)
        try:
            return self.ray.get([getattr(a, method).remote(*x) for a, x in zip(
                self.actors, args, strict=True)])
        except self.ray.exceptions.RayError as exc:
            raise ShardFailed(f"a shard's Ray worker failed: "
                              f"{str(exc).strip().splitlines()[0]}") from None


def run(sim: engine.Simulation, state: engine.State, sink: engine.Sink | None, shards: int,
        ray_address: str | None = None, inline: bool = False,
        until: int | None = None) -> engine.State:
    """:func:`panopticon.engine.run` with the citizens split into ``shards`` (see the module
    docstring): on Ray actors (a local cluster of ``shards`` CPUs, or the cluster at
    ``ray_address``), or with ``inline`` in this process. Same days, sink calls, checkpoints
    and results as the unsharded run."""
    ranges = check(sim, shards)
    shared = shared_with_shards(sim, state)

    def part(lo: int, hi: int) -> dict[str, Any]:  # made when handed over: one at a time
        return {**part_of(state, lo, hi), **society_part(sim, state, lo, hi)}

    if inline:
        return _drive(sim, state, sink, ranges, _Inline(
            [Shard(shared, lo, hi, part(lo, hi)) for lo, hi in ranges]), until)
    from panopticon.cluster import ray_session

    with ray_session(ray_address, shards, "--shards") as ray:
        # a CPU each where the cluster has them; on a smaller one they share
        cpus = min(1.0, ray.cluster_resources().get("CPU", 1.0) / shards)
        actor = ray.remote(num_cpus=cpus, max_restarts=0)(Shard)
        # named by when they started (the newest sort last), for `ray list actors`
        run_name = f"panopticon-shard-{time.time_ns()}"
        alike = ray.put(shared)
        del shared
        actors = [actor.options(name=f"{run_name}-{k}").remote(alike, lo, hi, part(lo, hi), 1)
                  for k, (lo, hi) in enumerate(ranges)]
        try:
            return _drive(sim, state, sink, ranges, _OnRay(ray, actors), until)
        finally:  # free their CPUs and memory now, not when Ray collects them
            for a in actors:
                ray.kill(a)


def _drive(sim: engine.Simulation, state: engine.State, sink: engine.Sink | None,
           ranges: list[tuple[int, int]], shards, until: int | None) -> engine.State:
    last = sim.scenario.run.days if until is None else until
    every = sim.scenario.run.checkpoint_every
    cuts = np.asarray([lo for lo, _ in ranges] + [sim.n])
    pop = sim.society.population
    groups = len(pop.labels["group"])
    no_events = TrueEvents(np.zeros(0, np.int32), np.zeros(0, np.int16), np.zeros(0, np.int32))
    opps = sim.opportunities

    def by_shard(citizens: np.ndarray) -> list[slice]:
        """Where each shard's citizens lie in ascending ``citizens``."""
        at = np.searchsorted(citizens, cuts)
        return [slice(at[k], at[k + 1]) for k in range(len(ranges))]

    while state.day < last:
        d = state.day
        loans = [None] * len(ranges)
        if opps.loans:  # the loans that end today are true events of their citizens
            citizen, event = loan_outcomes(d, opps, state.opportunities)
            loans = [(citizen[k], event[k]) for k in by_shard(citizen)]
        seen = shards.call("observe", [d] * len(ranges), loans)
        phantoms, _, tally = observe(sim.seed, d, no_events, state.sensors, pop.region,
                                     pop.abroad)
        obs = Observations(*(np.concatenate([s[0][k] for s in seen] + [getattr(phantoms, k)])
                             for k in OBS))
        tally = tally + sum(s[1] for s in seen)
        # the counters conditions read (days_since, count) remember every record; each
        # shard keeps its own citizens', the driver everyone's (its checkpoints hold them)
        state.policy.remember(d, obs.citizen, obs.event)
        owner = np.searchsorted(cuts, obs.citizen, side="right") - 1
        mine = [np.flatnonzero(owner == k) for k in range(len(ranges))]
        scores = shards.call("score", [d] * len(ranges),
                             [{k: getattr(obs, k)[m] for k in OBS} for m in mine], mine)
        everyone = np.concatenate(scores) if scores[0] is not None else None
        done = shards.call("finish", [d] * len(ranges), [everyone] * len(ranges))
        del everyone
        rows = _merge(done)
        state.chain.append_root(d, len(rows["citizen"]), ledger.root(
            np.concatenate([s["blocks"] for s in done]), [x for s in done for x in s["leaves"]]))
        state.scores = np.concatenate([s["scores"] for s in done])
        state.tier = np.concatenate([s["tier"] for s in done])
        state.false_points = np.concatenate([s["false_points"] for s in done])
        counts = dict(zip(TALLY, tally, strict=True))
        metrics = measure(d, state.scores, state.tier, sim.policy.tier_names, counts, obs,
                          len(rows["citizen"]), state.ever_false, state.false_points)
        standing = {k: sum(s["standing"][k] for s in done) for k in done[0]["standing"]}
        wrongly = standing.pop("citizens_wrongly_sanctioned", None)
        metrics.update(standing)
        tried = None
        if opps.kinds:  # on the driver, which holds the opportunities' state
            tried = engine.try_opportunities(sim, state, _gates(d, state, done, shards,
                                                                by_shard))
            metrics.update(engine.opportunity_totals(tried))
        if wrongly is not None:
            metrics["citizens_wrongly_sanctioned"] = wrongly
        del done
        # unfriending and the partner market on the driver, which holds every tie and
        # today's scores and tiers; the shards get their new rows of the layers they pull along
        before = dict(state.ties)
        metrics.update(engine.change_ties(sim, state))
        pulled = {a.ties for a in sim.scenario.policy.association}
        changed = [name for name in pulled if state.ties[name] is not before[name]]
        if changed:
            shards.call("retie", [{name: _rows(state.ties[name], lo, hi) for name in changed}
                                  for lo, hi in ranges])
        survey = engine.survey_day(sim, d)
        state.day = d + 1
        behaviour = {"true_events": sum(s[2] for s in seen)}
        if survey:  # today's rates, and the ties (which only the driver changes) on the driver
            gather(state, ranges, shards)
            behaviour = {**behaviour_by_group(no_events, pop.group, sim.baseline, state.rates,
                                              sim.adapting), **behaviour}
        record = engine.DayRecord(
            d, metrics, counts, obs, rows, ListChanges.concat([]), tried, behaviour=behaviour,
            network=engine.measure_network(sim, state) if survey else {},
            network_groups={layer: network.group_stats(csr, state.tier, pop.group, groups)
                            for layer, csr in state.ties.items()} if survey else {})
        if sink is not None:
            sink.day(record, state)
            if state.day % every == 0 or state.day == last:
                gather(state, ranges, shards)
                sink.checkpoint(state)
        del record
    gather(state, ranges, shards)
    return state


def _gates(day: int, state: engine.State, done: list[dict], shards, by_shard) -> Gates:
    """Today's gates from the shards' sanctions and perks, the true standing of the citizens
    refused asked of their shards (as :func:`panopticon.engine.gates` has them)."""
    denied, granted = ({k: np.concatenate([s["gates"][i][k] for s in done])
                        for k in done[0]["gates"][i]} for i in (0, 1))

    def honest(citizens: np.ndarray) -> tuple[dict, dict, np.ndarray]:
        parts = shards.call("honest", [day] * len(done), [citizens[k] for k in by_shard(
            citizens)])
        return (*({k: np.concatenate([p[i][k] for p in parts]) for k in parts[0][i]}
                  for i in (0, 1)), np.concatenate([p[2] for p in parts]))

    return Gates(denied, granted, state.scores, honest)


def _merge(done: list[dict]) -> dict[str, np.ndarray]:
    """The shards' ledger rows in the order one process makes them: stage by stage; scoring
    and expiry in observation order, the others (in citizen order) shard by shard."""
    stages = []
    for k, first in enumerate(done[0]["stages"]):
        parts = {c: np.concatenate([s["stages"][k][c] for s in done]) for c in first}
        if k < BY_RECORD:  # by observation; a record's rows stay together, in order
            order = np.argsort(parts["observation"], kind="stable")
            parts = {c: v[order] for c, v in parts.items()}
        stages.append(parts)
    return {c: np.concatenate([s[c] for s in stages]) for c in stages[0]}


def gather(state: engine.State, ranges: list[tuple[int, int]], shards) -> None:
    """Copy the shards' rows of the state into ``state`` (a checkpoint, the end)."""
    mine = shards.call("state")
    rules = _policy_arrays(state.policy, len(state.scores))
    for (lo, hi), part in zip(ranges, mine, strict=True):
        state.rates.dense[lo:hi] = part["dense"]
        state.total[lo:hi], state.p0[lo:hi] = part["total"], part["p0"]
        for k, v in part["policy"].items():
            rules[k][..., lo:hi] = v
    due = {k: np.concatenate([part["due"][k] for part in mine]) for k in DUE}
    order = np.argsort(due["due_obs"], kind="stable")  # the one queue, in the order made
    for k, v in due.items():
        setattr(state.policy, k, v[order])

