"""Visitors: tourists and short-stay foreigners who arrive and leave (society.visitors)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY, build_scenario

from panopticon import api, engine
from panopticon.errors import UserError
from panopticon.metrics.run import disparate_impact
from panopticon.sanctions import draw_tries
from panopticon.scenario import SocietySpec

INCOME = {"usa": {"kind": "constant", "value": 9000},
          "nigeria": {"kind": "constant", "value": 2000}}
VISITORS = {"pool": 10, "arrivals_per_day": 2, "stay_days": 3,
            "origins": {"values": ["usa", "nigeria"], "weights": [1, 1]}, "income": INCOME}
START = '100 if origin == "home" else min(60 + income / 1000, 90)'


def _spec(days: int = 10, policy: dict | None = None, sensors: dict | None = None,
          **visitors):
    extra = {} if sensors is None else {"sensors": sensors}
    return build_scenario(society={"visitors": {**VISITORS, **visitors}},
                          policy={"score": {"start": START}, **(policy or {})},
                          run={"days": days}, **extra)


def _days(spec, days: int):
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    records = [engine.step(sim, state) for _ in range(days)]
    return sim, state, records


def test_no_visitors_by_default_and_the_digest_is_unchanged():
    """Without visitors the society has only residents, no origin column, and writing
    ``visitors: null`` out changes no digest."""
    assert SocietySpec().visitors is None
    plain = build_scenario()
    explicit = build_scenario(society={**TINY.get("society", {}), "visitors": None})
    assert plain.digest == explicit.digest
    sim = engine.build(plain)
    pop = sim.society.population
    assert pop.visitors == 0 and pop.origin is None and "origin" not in pop.columns()
    assert engine.initial_state(sim).visit_until is None


def test_visitor_slots_follow_the_residents_with_their_own_attributes():
    """400 residents, then 10 slots: residency tourist, origin usa/nigeria with their
    income (9000 and 2000 yuan), no ties, no partner, households of their own."""
    sim = engine.build(_spec())
    pop = sim.society.population
    assert (pop.n, pop.residents, pop.visitors) == (410, 400, 10)
    slots = slice(400, 410)
    assert pop.labels["origin"] == ("home", "usa", "nigeria")
    assert (pop.origin[:400] == 0).all() and (pop.origin[slots] > 0).all()
    assert (pop.residency[slots] == pop.labels["residency"].index("tourist")).all()
    income = np.where(pop.origin[slots] == 1, 9000.0, 2000.0)
    assert np.array_equal(pop.income[slots], income.astype(np.float32))
    assert (pop.partner[slots] == -1).all()
    assert len(np.unique(pop.household[slots])) == 10
    assert pop.household[slots].min() > pop.household[:400].max()
    for layer in sim.society.ties.values():
        assert (layer.degree[slots] == 0).all()
        assert not np.isin(layer.indices, np.arange(400, 410)).any()


def test_arrivals_and_stays_by_hand():
    """2 arrivals a day, stays of 3 days, a pool of 10: present 2, 4, 6, then 6 every day
    (two leave as two come); after 5 days, 10 stays have begun."""
    _, state, records = _days(_spec(), 5)
    assert [r.metrics["visitors_present"] for r in records] == [2, 4, 6, 6, 6]
    assert [r.metrics["visitors_arrived"] for r in records] == [2] * 5
    assert [r.metrics["visitors_turned_away"] for r in records] == [0] * 5
    assert state.visits.sum() == 10
    assert sorted(state.visit_until[state.visit_until > 4].tolist()) == [5, 5, 6, 6, 7, 7]


def test_a_full_pool_turns_arrivals_away_by_hand():
    """Pool 5: days 0 and 1 fill 4 slots; day 2 has one free slot, so 1 arrives and 1 is
    turned away; day 3 the day-0 pair has left (their stay ended): 2 free, 2 arrive."""
    _, _, records = _days(_spec(pool=5), 4)
    got = [(r.metrics["visitors_arrived"], r.metrics["visitors_turned_away"],
            r.metrics["visitors_present"]) for r in records]
    assert got == [(2, 0, 2), (2, 0, 4), (1, 1, 5), (2, 0, 5)]


def test_fractional_arrivals_and_a_drawn_stay():
    """0.5 arrivals a day come on about half the days; a uniform stay of 1-4 days is whole."""
    spec = _spec(days=200, pool=50, arrivals_per_day=0.5,
                 stay_days={"kind": "uniform", "low": 1, "high": 4})
    _, state, records = _days(spec, 200)
    arrived = [r.metrics["visitors_arrived"] for r in records]
    assert set(arrived) <= {0, 1} and 70 < sum(arrived) < 130
    assert state.visits.sum() == sum(arrived)


def test_base_score_from_origin_and_income_by_hand():
    """score.start = 100 at home, else min(60 + income/1000, 90): usa (9000) 69, nigeria
    (2000) 62; a visitor arriving starts there."""
    sim = engine.build(_spec())
    state = engine.initial_state(sim)
    pop = sim.society.population
    start = state.policy.start
    assert (start[:400] == 100_000).all()
    assert np.array_equal(start[400:], np.where(pop.origin[400:] == 1, 69_000, 62_000))
    record = engine.step(sim, state)
    arrived = 400 + np.flatnonzero(state.visits == 1)
    assert len(arrived) == 2
    delta = np.zeros(sim.n, dtype=np.int64)
    np.add.at(delta, record.ledger["citizen"].astype(np.int64), record.ledger["delta"])
    assert np.array_equal(state.scores[arrived] - delta[arrived], start[arrived])


def test_absent_visitors_are_frozen_and_unseen():
    """A visitor away does nothing, no record names them (no phantom, no misattribution),
    and their standing does not move."""
    spec = _spec(days=20, sensors={"cameras": {"events": ["red_light"], "phantom_rate": 0.05,
                                               "misattribution": 0.3}})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    for _ in range(20):
        before = state.scores.copy()
        record = engine.step(sim, state)
        gone = np.zeros(sim.n, dtype=bool)
        gone[400:] = state.visit_until <= record.day  # away on that day
        assert gone.any()
        assert not gone[record.observations.citizen].any()
        assert not gone[record.observations.true_actor[record.observations.true_actor >= 0]
                        ].any()
        assert not gone[record.ledger["citizen"]].any()
        assert np.array_equal(state.scores[gone], before[gone])


def test_a_returning_visitor_starts_afresh():
    """Pool 1, one arrival a day, stays of 2 days: the slot arrives on days 0, 2, 4 (turned
    away on days 1, 3); whatever it had at the end of day 1 is gone on day 2."""
    sim = engine.build(_spec(pool=1, arrivals_per_day=1, stay_days=2))
    state = engine.initial_state(sim)
    records = [engine.step(sim, state) for _ in range(2)]
    assert [r.metrics["visitors_turned_away"] for r in records] == [0, 1]
    i = 400
    state.scores[i] = 1_234
    state.false_points[i] = 5_000
    if len(state.policy.lists):
        state.policy.until[:, i] = 10_000
    record = engine.step(sim, state)
    assert state.visits[0] == 2 and state.visit_until[0] == 4
    reset = (record.ledger["citizen"] == i) & (
        record.ledger["rule"] == sim.policy.rule_labels.index("visitor arrival"))
    assert record.ledger["delta"][reset].tolist() == [state.policy.start[i] - 1_234]
    rows = (record.ledger["citizen"] == i) & ~reset
    assert state.scores[i] - record.ledger["delta"][rows].sum() == state.policy.start[i]
    assert state.false_points[i] == record.ledger["delta"][rows & (record.ledger["truth"] == 0)
                                                           ].sum()
    assert (state.policy.until[:, i] <= 3).all() or not len(state.policy.lists)


def test_resume_is_bit_identical_and_presence_is_checked():
    """A run resumed from a day-6 snapshot ends with the same fingerprint as one straight
    through; the presence arrays are part of the snapshot and checked."""
    spec = _spec(days=12, pool=6)
    sim = engine.build(spec)
    straight = engine.run(sim, until=12)
    sim2 = engine.build(spec)
    half = engine.run(sim2, until=6)
    snap = half.snapshot()
    assert "visitors.until" in snap and "visitors.visits" in snap
    assert engine.State.check_snapshot(snap, sim2) == []
    resumed = engine.run(sim2, engine.State.restore(snap, sim2), until=12)
    assert resumed.fingerprint() == straight.fingerprint()
    assert np.array_equal(resumed.visit_until, straight.visit_until)
    broken = {k: v for k, v in snap.items() if k != "visitors.until"}
    assert "visitors.until: missing" in engine.State.check_snapshot(broken, sim2)
    bad = {**snap, "visitors.visits": np.full(6, -1, dtype=np.int32)}
    assert any(p.startswith("visitors.visits") for p in engine.State.check_snapshot(bad, sim2))
    # presence changes the fingerprint
    other = engine.run(engine.build(_spec(days=12, pool=6, stay_days=4)), until=12)
    assert other.fingerprint() != straight.fingerprint()


def test_disparate_impact_by_origin():
    """The citizens table has origin (slots never arrived read no_visit) and visits; the
    disparate impact by origin counts each visited slot once, in its origin."""
    result = api.run(_spec(days=8, pool=30))
    citizens = result.table("citizens")
    visits = citizens.column("visits").to_numpy()
    origin = np.asarray(citizens.column("origin").to_pylist())
    assert (visits[:400] == 0).all() and visits[400:].sum() == 16
    assert set(origin[:400]) == {"home"}
    assert (origin[400:][visits[400:] == 0] == "no_visit").all()
    impact = disparate_impact(result, "origin")
    visited = origin[400:][visits[400:] > 0]
    for name in ("usa", "nigeria"):
        if (visited == name).any():
            assert impact[name]["citizens"] == (visited == name).sum()
    assert impact["home"]["citizens"] == 400


def test_origin_in_conditions_and_visitors_never_try_opportunities():
    """origin is a category conditions can name; visitors are never eligible to try."""
    spec = build_scenario(
        society={"visitors": VISITORS},
        policy={"rules": [{"event": "red_light", "points": -5, "where": 'origin == "usa"'}]},
        opportunities={"travel_abroad": {"rate": 20.0, "min_age": 0}},
        behaviour={"events": {"red_light": {"rate": 0.5, "min_age": 0}}},
        sensors={"cameras": {"events": ["red_light"], "coverage": {"urban": 1.0, "rural": 1.0},
                             "detection": 1.0, "phantom_rate": 0.0, "misattribution": 0.0}},
        run={"days": 6})
    sim, state, records = _days(spec, 6)
    pop = sim.society.population
    assert all(len(r.opportunities.refusals.citizen) == 0
               or r.opportunities.refusals.citizen.max() < 400 for r in records)
    for d in range(6):
        assert draw_tries(sim.seed, d, sim.opportunities)[0].max() < 400
    # the rule where origin == "usa" hits US visitors only: -5 per observed red light
    rule = 0
    for r in records:
        hit = r.ledger["citizen"][r.ledger["rule"] == rule]
        assert (pop.origin[hit] == 1).all()
    assert any((r.ledger["rule"] == rule).any() for r in records)


@pytest.mark.parametrize("visitors, message", [
    ({"income": {"usa": {"kind": "constant", "value": 1}}}, "missing ['nigeria']"),
    ({"origins": {"values": ["home"], "weights": [1]}, "income": {"kind": "constant",
                                                                  "value": 1}}, "home"),
])
def test_bad_visitors_are_refused(visitors, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _spec(**visitors)


def test_visitors_need_the_tourist_residency():
    with pytest.raises(UserError, match="tourist"):
        build_scenario(society={"residency": {"values": ["citizen"], "weights": [1]},
                                "visitors": VISITORS})


def test_origin_condition_is_checked_against_the_origins():
    with pytest.raises(UserError, match="origin"):
        _spec(policy={"score": {"start": '100 if origin == "usaa" else 50'}})


def test_a_stored_run_interrupted_and_resumed_matches_one_straight_through(tmp_path):
    """Through the run store: stopped after day 9 (checkpoint at day 5), resumed, the run
    ends with the fingerprint of a run straight through."""
    from conftest import StopAfter

    spec = _spec(days=14, pool=8)
    straight = api.run(spec, out=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        api.run(spec, out=tmp_path / "b", progress=StopAfter(9))
    (run_dir,) = [p for p in (tmp_path / "b").iterdir() if p.is_dir()]
    resumed = api.resume(run_dir)
    fingerprint = straight.manifest["result"]["fingerprint"]
    assert fingerprint and resumed.manifest["result"]["fingerprint"] == fingerprint


def test_daily_scores_and_tier_shares_count_only_citizens_present():
    """The day's mean score, median and tier shares are over residents and the visitors
    present that day; absent slots (frozen at their last score) are not counted."""
    sim = engine.build(_spec())
    state = engine.initial_state(sim)
    for _ in range(4):
        record = engine.step(sim, state)
        state.day -= 1  # the day just simulated, to ask who was present on it
        here = ~engine.away(sim, state)
        state.day += 1
        assert here.sum() < sim.n  # some slots are absent: the rule is tested
        assert record.metrics["mean_score"] * 1000 == pytest.approx(state.scores[here].mean())
        shares = [record.metrics[f"share_{t}"] for t in sim.policy.tier_names]
        counts = np.bincount(state.tier[here], minlength=len(shares))
        assert np.allclose(shares, counts / here.sum())


def test_a_returning_visitors_reset_is_in_the_ledger_and_the_audit_finds_the_run_intact(
        tmp_path):
    """A visitor who comes back starts again at the start score: the ledger records the
    reset (rule ``visitor arrival``, delta = start - the score left with), so every score is
    its start plus its ledger rows and ``panopticon audit`` finds the run intact."""
    from panopticon.audit import audit
    from panopticon.metrics.run import read

    spec = _spec(days=40, pool=6, stay_days=2)
    result = api.run(spec, out=tmp_path)
    ledger = read(result, "ledger", ["citizen", "rule", "delta_milli"]).to_pydict()
    resets = [(c, d) for c, r, d in zip(ledger["citizen"], ledger["rule"],
                                        ledger["delta_milli"], strict=True)
              if r == "visitor arrival"]
    assert resets and all(c >= 400 and d != 0 for c, d in resets)
    report = audit(result.path)
    assert report["unexplained"] == [] and report["intact"], report
