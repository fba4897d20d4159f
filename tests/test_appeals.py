"""Due process: citizens standing wrongly appeal; reviewers with a daily capacity decide the
oldest first; an upheld appeal reverses the false entries and restores access."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_scenario
from test_opportunities import GATED

from panopticon import api, engine
from panopticon.policy.schema import MILLI
from panopticon.sensors import Observations

MISNAMED = {**GATED, "run": {"citizens": 400, "days": 30, "seed": 4, "checkpoint_every": 10},
            "behaviour": {"events": {"red_light": {"rate": 0.02, "min_age": 0}}},
            "sensors": {"cameras": {"events": ["red_light"], "misattribution": 0.5}},
            "policy": {**GATED["policy"], "score": {"start": 104}, "rules": [
                {"event": "red_light", "points": -10}]}}
"""A month of red lights (-10) seen by cameras that pin half of them on someone else."""

APPEALING = {"governance": {"appeals": {"rate": 1.0, "capacity": 10, "success": 1.0}}}


def _false_red_light(sim, state, citizens):
    """A day of false red-light observations naming ``citizens`` (-50 points each)."""
    t = sim.events.index("red_light")
    k = len(citizens)
    obs = Observations(np.asarray(citizens, np.int32), np.full(k, t, np.int16),
                       np.zeros(k, np.int8), np.zeros(k, bool), np.full(k, -1, np.int32))
    return engine.apply_policy(sim, state, obs)


def _empty_day(sim, state):
    policy = engine.apply_policy(sim, state, Observations(*(np.empty(0, dt) for dt in (
        np.int32, np.int16, np.int8, bool, np.int32))))
    return policy


def test_an_upheld_appeal_restores_the_score_and_access():
    """Everyone starts at 104 (A; lenders refuse B). A false red light (-50) takes citizen 9
    to 54: refused a loan, wrongfully. Day 1: 9 stands wrongly and files (rate 1). Day 2: the
    appeal is decided (success 1): +50 on the ledger as 'appeal upheld', false points 0, and
    the loan asked for that day is granted."""
    sim = engine.build(build_scenario(GATED, policy={"score": {"start": 104}}, **APPEALING))
    state = engine.initial_state(sim)
    policy = _false_red_light(sim, state, [9])
    day = engine.try_opportunities(sim, state, engine.gates(sim, state, policy.denied,
                                                            policy.granted))
    assert 9 in day.refusals.citizen.tolist() and day.refusals.wrongful.all()
    state.day = 1
    filed = _empty_day(sim, state).appeals
    assert filed.citizen.tolist() == [9] and filed.outcome.tolist() == [0]  # filed
    state.day = 2
    policy = _empty_day(sim, state)
    assert policy.appeals.citizen.tolist() == [9] and policy.appeals.outcome.tolist() == [1]
    assert policy.appeals.waited.tolist() == [1]
    assert state.scores[9] == 104 * MILLI and state.false_points[9] == 0
    rule = sim.policy.rule_labels.index("appeal upheld")
    assert policy.ledger["rule"].tolist() == [rule] and policy.ledger["delta"].tolist() == [50_000]
    day = engine.try_opportunities(sim, state, engine.gates(sim, state, policy.denied,
                                                            policy.granted))
    assert 9 not in day.refusals.citizen.tolist()


def test_reviewers_decide_the_oldest_appeals_first_within_their_capacity():
    """Capacity 2 a day, success 0 (every appeal rejected, barred for 90 days). Adults a, b
    are named falsely on day 0 and file on day 1; c, d, e are named on day 1 and file on day
    2. Day 2 decides a and b, day 3 c and d (the oldest, then by citizen id), day 4 e, which
    waited 2 days; nobody files again while barred, so day 5 decides nothing."""
    spec = build_scenario(GATED, policy={"score": {"start": 104}}, governance={"appeals": {
        "rate": 1.0, "capacity": 2, "success": 0.0}})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    a, b, c, d_, e = np.flatnonzero(sim.society.population.age >= 18)[:5]  # minors never appeal
    _false_red_light(sim, state, [a, b])
    state.day = 1
    _false_red_light(sim, state, [c, d_, e])  # a and b file today; c, d, e are named today
    decided = {}
    for day in (2, 3, 4, 5):
        state.day = day
        appeals = _empty_day(sim, state).appeals
        done = appeals.outcome == 2
        decided[day] = (sorted(appeals.citizen[done].tolist()),
                        sorted(appeals.waited[done].tolist()))
    assert decided == {2: ([a, b], [1, 1]), 3: ([c, d_], [1, 1]), 4: ([e], [2]), 5: ([], [])}
    assert (state.appeals.filed < 0).all() and (state.false_points[[a, b, c, d_, e]] < 0).all()


def test_appeals_are_recorded_and_counted_in_a_stored_run(tmp_path):
    """A run with appeals stores every filing and decision; the daily counts add up to the
    table, the backlog is never negative, and the run resumes bit for bit."""
    spec = build_scenario(MISNAMED, governance={"appeals": {"rate": 0.3, "capacity": 3,
                                                        "success": 0.7}})
    result = api.run(spec, out=tmp_path)
    appeals = result.table("appeals").to_pandas()
    daily = result.daily.to_pandas()
    assert (appeals.outcome == "filed").sum() == daily.appeals_filed.sum() > 0
    assert (appeals.outcome == "upheld").sum() == daily.appeals_upheld.sum() > 0
    assert (daily.appeal_backlog >= 0).all()
    sim = engine.build(spec)
    straight = engine.run(sim).fingerprint()
    half = engine.run(sim, until=13)
    assert engine.run(sim, engine.State.restore(half.snapshot(), sim)).fingerprint() == straight


def test_who_appeals_depends_on_income():
    """Bands on income: the poor (below 2,000 a month) appeal at a tenth of the rate of
    the rest, as the issue asks (who they are decides who appeals)."""
    spec = build_scenario(GATED, governance={"appeals": {
        "rate": 0.5, "bands": {"income": {"edges": [2000], "factors": [0.1, 1.0]}}}})
    sim = engine.build(spec)
    pop = sim.society.population
    adults = pop.age >= 18
    poor = adults & (pop.income < 2000)
    assert sim.appeals.propensity[poor] == pytest.approx(0.05)
    assert sim.appeals.propensity[adults & ~poor] == pytest.approx(0.5)
    assert (sim.appeals.propensity[~adults] == 0).all()


def test_counterfactual_names_sanctions_true_events_alone_would_not_have_caused():
    """Everyone at 104 (A); B is denied loans. A false red light (-50) on citizen 9 and a
    true one on citizen 10: both are denied loans, but only 9's sanction would not have
    happened on true events alone: one citizen wrongly sanctioned."""
    sim = engine.build(build_scenario(GATED, policy={"score": {"start": 104}}))
    state = engine.initial_state(sim)
    t = sim.events.index("red_light")
    obs = Observations(np.asarray([9, 10], np.int32), np.asarray([t, t], np.int16),
                       np.zeros(2, np.int8), np.asarray([False, True]),
                       np.asarray([-1, 10], np.int32))
    policy = engine.apply_policy(sim, state, obs)
    assert policy.denied["loans"][[9, 10]].all()
    assert engine.wrongly_sanctioned(sim, state, policy.denied) == 1
