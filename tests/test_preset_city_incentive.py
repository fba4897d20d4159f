"""The city_incentive preset behaves as its documented rules say (docs/presets/city_incentive.md).

Observations are planted and fed through the real policy code path (``engine.apply_policy``);
the numbers are worked by hand from the preset.
"""

from __future__ import annotations

import numpy as np
from conftest import adults, policy_day, start_preset

from panopticon import api

PERKS = ("free_parking_extension", "parking_discount", "deposit_free_rental", "transit_discount")


def _start(citizens: int = 300):
    """The preset's simulation at day 0."""
    return start_preset("city_incentive", citizens, days=3000)


def _day(sim, state, planted=()):
    """One policy day with planted true (citizen, event) observations."""
    return policy_day(sim, state, planted)


def test_nobody_is_ever_denied_anything():
    """Incentive-only by design [V Nesta]: a day of court defaults, drunk driving and arrears
    for 50 adults denies nothing to anyone, even those pushed to the bottom band."""
    sim, state = _start()
    group = adults(sim, 50)
    state.scores[group] = 100_000
    day = _day(sim, state, [(i, e) for i in group
                            for e in ("court_judgment_default", "drunk_driving", "utility_arrears")])
    assert day.denied == {}
    assert state.policy.consequences(1, state.scores, state.tier)[0] == {}


def test_parking_perks_open_at_530_and_680():
    """Xiamen Haicang [V]: 530 extends free roadside parking (15 -> 30 min), 680 adds 10% off."""
    sim, state = _start()
    who = adults(sim, 4)
    state.scores[who] = [529_000, 530_000, 679_000, 680_000]
    granted = _day(sim, state).granted
    assert [bool(granted["free_parking_extension"][i]) for i in who] == [False, True, True, True]
    assert [bool(granted["parking_discount"][i]) for i in who] == [False, False, False, True]


def test_deposit_and_transit_perks_open_at_600():
    """Hangzhou perks [V], threshold 600 [A]: 599 no, 600 yes."""
    sim, state = _start()
    a, b = adults(sim, 2)
    state.scores[[a, b]] = [599_000, 600_000]
    granted = _day(sim, state).granted
    for perk in ("deposit_free_rental", "transit_discount"):
        assert not granted[perk][a] and granted[perk][b]


def test_the_bands_follow_the_qianjiang_cut_offs():
    """<550 needs improvement, 550-600 average, 600-700 good, 700-750 excellent, >=750 outstanding [V]."""
    sim, state = _start()
    who = adults(sim, 6)
    state.scores[who] = [549_000, 550_000, 600_000, 699_000, 700_000, 750_000]
    _day(sim, state)
    assert [sim.policy.tier_names[state.tier[i]] for i in who] == [
        "needs_improvement", "average", "good", "good", "excellent", "outstanding"]


def test_a_legal_offence_costs_50_to_150_whole_points():
    """A court-judgment default costs up to 150 points [V], drawn in whole points from 50 [A]."""
    sim, state = _start(citizens=3000)
    group = adults(sim, 200)
    before = state.scores[group].copy()
    _day(sim, state, [(i, "drunk_driving") for i in group])
    lost = before - state.scores[group]
    assert lost.min() >= 50_000 and lost.max() <= 150_000 and (lost % 1000 == 0).all()
    assert len(np.unique(lost)) > 20


def test_a_late_utility_bill_costs_20_points_for_a_year():
    """Late payments to government lower the score [V]: -20 [A] on day 0 (650 -> 630), reversed
    on day 365 [A] (back to 650)."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    state.scores[i] = 650_000
    _day(sim, state, [(i, "utility_arrears")])
    assert state.scores[i] == 630_000
    for _ in range(1, 365):
        _day(sim, state)
    assert state.scores[i] == 630_000
    _day(sim, state)  # day 365
    assert state.scores[i] == 650_000


def test_volunteering_adds_5_up_to_30_a_year():
    """Pro-social acts raise the score [V]: +5 a day of volunteering, at most +30 a year [A]:
    eight days give 600 -> 630."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    state.scores[i] = 600_000
    for _ in range(8):
        _day(sim, state, [(i, "volunteering")])
    assert state.scores[i] == 630_000


def test_the_start_is_600_plus_income_and_age_terms():
    """Start [A]: 600 + 65 x (clip((income - 4000) / 2800, -1.4, 0) + clip((income - 4000) / 7000,
    0, 2)) + 3 x (age - 43). Income 4,000 at 43: 600. Income 1,200 at 30: 600 - 65 - 39 = 496.
    Income 11,000 at 60: 600 + 65 + 51 = 716. Income 40,000 at 43: 600 + 130 = 730. No income
    at 43: 600 - 91 = 509."""
    sim, state = _start()
    start = state.policy.conditions["score.start"]
    columns = {"income": np.array([4000.0, 1200, 11000, 40000, 0]),
               "age": np.array([43.0, 30, 60, 43, 43])}
    assert start(columns, None).tolist() == [600.0, 496.0, 716.0, 730.0, 509.0]


def test_adults_start_roughly_normal_with_mean_600_and_sd_60():
    """On the default society (50,000 citizens) adults start at mean 600 +- 5 and sd 60 +- 5 [A]."""
    sim, state = _start(citizens=50_000)
    adult = sim.society.population.age >= 18
    start = state.scores[adult] / 1000
    assert abs(start.mean() - 600) < 5 and abs(start.std() - 60) < 5


def test_children_are_not_scored_and_get_no_perks():
    """Qianjiang covers those aged 18+ [V]: a child's record changes nothing and no perk is
    granted to a child whatever the score."""
    sim, state = _start()
    child = int(np.flatnonzero(sim.society.population.age < 18)[0])
    state.scores[child] = 800_000
    day = _day(sim, state, [(child, "volunteering")])
    assert state.scores[child] == 800_000
    assert not any(day.granted[p][child] for p in PERKS)


def test_city_incentive_runs_ten_thousand_citizens_for_a_year_without_sanctions():
    """10,000 citizens x 365 days: scores in [0, 1000], perks granted, no denied_* column."""
    result = api.run("city_incentive", citizens=10_000, days=365)
    scores = result.citizens.column("score").to_numpy()
    assert scores.min() >= 0 and scores.max() <= 1000
    daily = result.daily.to_pandas()
    assert len(daily) == 365
    assert not [c for c in daily.columns if c.startswith("denied_")]
    assert daily["granted_free_parking_extension"].iloc[-1] > daily["granted_parking_discount"].iloc[-1] > 0
