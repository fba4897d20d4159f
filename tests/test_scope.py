"""Who is scored and how: citizens abroad, exemptions, and base scores for foreigners."""

from __future__ import annotations

import numpy as np
from conftest import build_scenario

from panopticon import engine
from panopticon.sensors import Observations

ABROAD = {"society": {"abroad_share": 0.5}, "run": {"days": 30}}


def _run(spec, days=None):
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    records = []
    while state.day < (days or spec.run.days):
        records.append(engine.step(sim, state))
    return sim, state, records


def test_abroad_share_picks_adult_citizens_only():
    """abroad_share is drawn among adult citizens (residency citizen, 18+); nobody else is abroad."""
    sim = engine.build(build_scenario(**ABROAD))
    pop = sim.society.population
    assert pop.abroad.any()
    assert (pop.age[pop.abroad] >= 18).all()
    assert (pop.residency[pop.abroad] == pop.labels["residency"].index("citizen")).all()
    adults = (pop.age >= 18) & (pop.residency == 0)
    assert abs(pop.abroad[adults].mean() - 0.5) < 0.08


def test_domestic_sensors_never_see_what_citizens_abroad_do():
    """No true observation names a citizen living abroad as the actor (only phantoms can name them)."""
    sim, _, records = _run(build_scenario(**ABROAD))
    abroad = sim.society.population.abroad
    for r in records:
        assert not abroad[r.observations.true_actor[r.observations.true_actor >= 0]].any()
    assert sum(r.metrics["missed_events"] for r in records) > 0


def test_frozen_citizens_abroad_keep_their_score_exactly():
    """With scope.abroad freeze, a citizen abroad keeps the start score through phantoms and pulls."""
    spec = build_scenario(**ABROAD, policy={"scope": {"abroad": {"mode": "freeze"}}})
    sim, state, _ = _run(spec)
    abroad = sim.society.population.abroad
    assert (state.scores[abroad] == 100_000).all()
    assert (state.scores[~abroad] != 100_000).any()


def test_penalty_takes_points_from_citizens_abroad_on_schedule():
    """penalty 7 points every 10 days: after 30 days a citizen abroad with no phantoms or pulls is at
    100 - 21 = 79 (association and phantoms off)."""
    spec = build_scenario(**ABROAD, policy={"association": [],
                                            "scope": {"abroad": {"mode": "penalty", "points": 7,
                                                                 "every_days": 10}}},
                          sensors={"cameras": {"events": ["red_light"], "phantom_rate": 0.0,
                                               "misattribution": 0.0}})
    sim, state, records = _run(spec)
    abroad = sim.society.population.abroad
    assert (state.scores[abroad] == 79_000).all()
    rule = sim.policy.rule_labels.index("abroad")
    days = [r.day for r in records if (r.ledger["rule"] == rule).any()]
    assert days == [9, 19, 29]


def test_decay_moves_citizens_abroad_back_toward_the_start():
    """decay rate 0.5 every day: a citizen abroad at 80 goes to 90, then 95 (start 100)."""
    spec = build_scenario(**ABROAD, policy={"association": [],
                                            "scope": {"abroad": {"mode": "decay", "rate": 0.5,
                                                                 "every_days": 1}}},
                          sensors={"cameras": {"events": ["red_light"], "phantom_rate": 0.0,
                                               "misattribution": 0.0}})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    i = int(np.flatnonzero(sim.society.population.abroad)[0])
    state.scores[i] = 80_000
    engine.step(sim, state)
    assert state.scores[i] == 90_000
    engine.step(sim, state)
    assert state.scores[i] == 95_000


def test_exempt_citizens_are_never_scored_listed_or_pulled():
    """scope.exempt rank >= 1 (every official): their score never moves, whatever they do or their
    friends' scores, while others' scores do."""
    spec = build_scenario(society={"occupation": {"values": ["worker", "official"], "weights": [1, 1]}},
                          policy={"scope": {"exempt": "rank >= 1"}}, run={"days": 30})
    sim, state, _ = _run(spec)
    officials = sim.society.population.rank >= 1
    assert officials.any()
    assert (state.scores[officials] == 100_000).all()
    assert (state.scores[~officials] != 100_000).any()


def test_foreigners_can_start_from_a_base_score_of_residency_and_income():
    """score.start as an expression: citizens start at 100, others at 60 + income/1000 (capped 90)."""
    spec = build_scenario(
        society={"residency": {"values": ["citizen", "resident_foreigner", "tourist"],
                               "weights": [0.5, 0.3, 0.2]}},
        policy={"score": {"start": '100 if residency == "citizen" else min(60 + income / 1000, 90)',
                          "min": 0, "max": 120}})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    pop = sim.society.population
    citizen = pop.residency == 0
    assert (state.scores[citizen] == 100_000).all()
    want = np.round(np.minimum(60 + pop.income[~citizen].astype(np.float64) / 1000, 90) * 1000)
    np.testing.assert_array_equal(state.scores[~citizen], want.astype(np.int64))


def test_a_listed_tie_counts_against_a_citizen():
    """association {ties: family, listed: defaulters, points: -20, every_days: 1}: a citizen with
    two listed family members loses 40 points that day; one with none loses nothing."""
    spec = build_scenario(policy={
        "association": [{"ties": "family", "listed": "defaulters", "points": -20, "every_days": 1}],
        "lists": [{"name": "defaulters", "kind": "blacklist", "enter_on": ["late_loan_payment"],
                   "days": 100}]})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    family = sim.society.ties["family"]
    i = int(np.flatnonzero(family.degree >= 2)[0])
    mates = family.neighbours(i)[:2]
    t = sim.events.index("late_loan_payment")
    obs = Observations(mates.astype(np.int32), np.full(2, t, np.int16), np.zeros(2, np.int8),
                       np.ones(2, bool), mates.astype(np.int32))
    before = state.scores.copy()
    day = engine.apply_policy(sim, state, obs)
    rule = sim.policy.rule_labels.index("association:family:defaulters")
    rows = day.ledger["rule"] == rule
    assert day.ledger["delta"][rows & (day.ledger["citizen"] == i)].tolist() == [-40_000]
    lonely = int(np.flatnonzero(family.degree == 0)[0])
    assert state.scores[lonely] == before[lonely]


def test_an_association_rule_is_either_a_pull_or_listed_ties():
    """An association rule with neither a weight nor a list, or with both, is refused by name."""
    import pytest

    from panopticon.errors import UserError

    for rule in ({"ties": "friends"}, {"ties": "friends", "weight": 0.1, "listed": "x", "points": -1}):
        with pytest.raises(UserError, match="either a pull weight, or listed and points"):
            build_scenario(policy={"association": [rule]})


def test_exempting_officials_above_a_rank_shows_what_exemption_does_to_the_rest():
    """seed_article with officials of rank 2 and above exempt: they are never scored, so they
    hold the start score of 1000 while everyone else drifts down (mean below 1000). Through
    the weekly pull toward friends, their frozen 1000 props up their friends, who end higher
    than the same citizens in the same society without the exemption; citizens with no
    exempt friend are unaffected on average (the pull is all that links them)."""
    from panopticon.scenario import load_preset

    base = load_preset("seed_article").with_run(citizens=20_000, days=365)
    exempt = base.model_copy(update={"policy": base.policy.model_copy(update={
        "scope": base.policy.scope.model_copy(update={"exempt": "rank >= 2"})})})
    sim = engine.build(exempt)
    with_exemption = engine.run(sim)
    without = engine.run(engine.build(base))
    pop = sim.society.population
    frozen = pop.rank >= 2
    assert frozen.sum() > 20 and (with_exemption.scores[frozen] == 1_000_000).all()
    friends = sim.society.ties["friends"]
    rows = np.repeat(np.arange(pop.n), friends.degree)
    near = np.zeros(pop.n, dtype=bool)
    near[friends.indices[frozen[rows]]] = True
    near &= ~frozen
    gain = (with_exemption.scores - without.scores) / 1000
    assert gain[near].mean() > 0.2
    assert abs(gain[~near & ~frozen].mean()) < gain[near].mean() / 5
