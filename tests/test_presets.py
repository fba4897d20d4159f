"""The documented presets behave as their documented rules say (hand-worked numbers).

Observations are planted and fed through the real policy code path (``engine.apply_policy``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import policy_day, start_preset, tier_name

from panopticon import api
from panopticon.scenario import preset_names

_start = start_preset
_day = policy_day


# ------------------------------------------------------------------ rongcheng_points
def test_rongcheng_court_breach_and_two_overdue_months_give_930_grade_b():
    """One court breach (-50) and two overdue months (-10 each): 1000 - 50 - 20 = 930, grade B."""
    sim, state = _start("rongcheng_points")
    _day(sim, state, [(7, "court_judgment_default"), (7, "late_loan_payment")])
    _day(sim, state, [(7, "late_loan_payment")])
    assert state.scores[7] == 930_000
    assert tier_name(sim, state, 7) == "B"


def test_rongcheng_drunk_driving_caps_the_grade_at_c_for_a_year():
    """Drunk driving leaves the points at 1000 but the grade is C for 365 days, then A again."""
    sim, state = _start("rongcheng_points")
    _day(sim, state, [(3, "drunk_driving")])
    assert state.scores[3] == 1_000_000 and tier_name(sim, state, 3) == "C"
    for _ in range(364):  # days 1-364
        _day(sim, state)
    assert tier_name(sim, state, 3) == "C"  # day 364: the 365th day of the cap
    _day(sim, state)  # day 365
    assert tier_name(sim, state, 3) == "A"


def test_rongcheng_deductions_expire_after_two_years():
    """A red-light ticket (-5) is reversed 730 days later with an expired:red_light ledger row."""
    sim, state = _start("rongcheng_points")
    _day(sim, state, [(11, "red_light")])
    assert state.scores[11] == 995_000
    rule = sim.policy.rule_labels.index("expired:red_light")
    for _ in range(729):
        _day(sim, state)
    assert state.scores[11] == 995_000
    day = _day(sim, state)
    assert state.scores[11] == 1_000_000
    assert day.ledger["rule"][day.ledger["citizen"] == 11].tolist() == [rule]


def test_rongcheng_two_heroic_acts_reach_aaa_and_its_heating_discount():
    """Two heroic acts (+30 each): 1060 >= 1050, grade AAA, with the Huantai heating discount."""
    sim, state = _start("rongcheng_points")
    day = _day(sim, state, [(20, "heroic_act"), (20, "heroic_act")])
    assert state.scores[20] == 1_060_000 and tier_name(sim, state, 20) == "AAA"
    assert day.granted["heating_discount"][20]


def test_rongcheng_volunteering_points_are_capped_at_50_a_year():
    """Volunteering adds 10 a time but at most 50 a year: seven volunteering days give +50."""
    sim, state = _start("rongcheng_points")
    for _ in range(7):
        _day(sim, state, [(30, "volunteering")])
    assert state.scores[30] == 1_050_000


def test_an_exempt_officials_violations_change_nothing():
    """With scope.exempt 'rank >= 1', an official's court breach and tickets leave 1000 points."""
    sim, state = _start("rongcheng_points", citizens=3000, scope={"exempt": "rank >= 1"})
    official = int(np.flatnonzero(sim.society.population.rank >= 1)[0])
    day = _day(sim, state, [(official, "court_judgment_default"), (official, "red_light")])
    assert state.scores[official] == 1_000_000
    assert not (day.ledger["citizen"] == official).any()


# ------------------------------------------------------------------ suining_2010
def test_suining_fourteen_missed_loan_payments_cost_420_and_make_d():
    """14 missed payments x -30 = -420: 1000 -> 580, grade D, with the D sanctions."""
    sim, state = _start("suining_2010")
    day = None
    for _ in range(14):
        day = _day(sim, state, [(5, "late_loan_payment")])
    assert state.scores[5] == 580_000 and tier_name(sim, state, 5) == "D"
    assert day.denied["business_licence"][5] and day.denied["public_naming"][5]


def test_suining_discretionary_deductions_stay_in_range_and_repeat_with_the_seed():
    """Petitioning online costs 10-50 whole points, drawn the same way for the same seed."""
    draws = []
    for _ in range(2):
        sim, state = _start("suining_2010")
        _day(sim, state, [(i, "critical_post") for i in range(100)])
        draws.append(1_000_000 - state.scores[:100])
    assert np.array_equal(draws[0], draws[1])
    assert draws[0].min() >= 10_000 and draws[0].max() <= 50_000
    assert (draws[0] % 1000 == 0).all() and len(np.unique(draws[0])) > 10


# court_blacklist, sesame_commercial and city_incentive: tests/test_preset_court_blacklist.py,
# tests/test_preset_sesame.py and tests/test_preset_city_incentive.py


# ------------------------------------------------------------------ every preset
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_runs_ten_thousand_citizens_for_a_year(name):
    """Each preset runs 10,000 citizens x 365 days; tier shares sum to 1 every day."""
    result = api.run(name, citizens=10_000, days=365)
    daily = result.daily.to_pandas()
    assert len(daily) == 365
    shares = daily.filter(like="share_").sum(axis=1)
    assert np.allclose(shares, 1.0)
