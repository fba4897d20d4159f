"""The rongcheng_points preset follows Rongcheng's documented rules (docs/sources.md#rongcheng).

Each test plants observations and feeds them through the real policy code path
(``engine.apply_policy``), with the numbers worked by hand in the docstring. Scores are int64
milli-points (1 point = 1000).
"""

from __future__ import annotations

import numpy as np
from conftest import adults, policy_day, start_preset, tier_name

from panopticon import api
from panopticon.scenario import load_preset

NAME = "rongcheng_points"
A_PERKS = ("green_channel", "deposit_free_bikes", "heating_discount", "better_loan_terms")
C_SANCTIONS = ("village_candidacy", "honours_and_subsidies", "strict_supervision")


def _start(citizens: int = 200, **policy_changes):
    """The preset's simulation at day 0."""
    return start_preset(NAME, citizens, days=30, **policy_changes)


def _day(sim, state, planted=()):
    """One policy day with planted true (citizen, event) observations."""
    return policy_day(sim, state, planted)


def _rows(sim, day, i: int) -> list[tuple[str, int]]:
    """(rule label, milli-points) of citizen i's ledger rows of one day."""
    who = day.ledger["citizen"] == i
    return [(sim.policy.rule_labels[r], int(d))
            for r, d in zip(day.ledger["rule"][who], day.ledger["delta"][who], strict=True)]


def test_court_breach_and_two_overdue_months_leave_930_grade_b():
    """Found in breach by a court (-50) and two overdue loan months (-10 per monthly cycle):
    1000 - 50 - 10 - 10 = 930, grade B (850-959): no A-range perks, no C/D sanctions."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    first = _day(sim, state, [(i, "court_judgment_default"), (i, "late_loan_payment")])
    assert _rows(sim, first, i) == [("court_judgment_default", -50_000), ("late_loan_payment", -10_000)]
    for _ in range(29):  # the next month
        _day(sim, state)
    last = _day(sim, state, [(i, "late_loan_payment")])
    assert state.scores[i] == 930_000
    assert tier_name(sim, state, i) == "B"
    assert not any(last.granted[p][i] for p in A_PERKS)
    assert not any(last.denied[s][i] for s in C_SANCTIONS)


def test_traffic_tickets_cost_five_and_the_ninth_drops_grade_a_to_b():
    """A red-light or jaywalking ticket costs 5: eight tickets leave 960 (the floor of A), the
    ninth 955 (B)."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    _day(sim, state, [(i, "red_light")] * 4 + [(i, "jaywalking")] * 4)
    assert state.scores[i] == 960_000 and tier_name(sim, state, i) == "A"
    _day(sim, state, [(i, "jaywalking")])
    assert state.scores[i] == 955_000 and tier_name(sim, state, i) == "B"


def test_other_documented_deductions_utility_arrears_20_loan_non_performance_20():
    """Late utility fees cost 20 and a defaulted loan (non-performance of a lending obligation)
    20: 1000 - 20 - 20 = 960."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    day = _day(sim, state, [(i, "utility_arrears"), (i, "loan_default")])
    assert _rows(sim, day, i) == [("utility_arrears", -20_000), ("loan_default", -20_000)]
    assert state.scores[i] == 960_000


def test_drunk_driving_caps_the_grade_at_c_whatever_the_points_for_365_days():
    """Drunk driving takes no points but caps the grade at C for 365 days: at 1000 points the
    citizen is C on days 0-364 (denied village candidacy, no A perks), A again on day 365.
    A citizen at 1060 (AAA, two heroic acts) who drives drunk is C too."""
    sim, state = _start()
    i, j = adults(sim, 2)
    _day(sim, state, [(j, "heroic_act"), (j, "heroic_act")])
    first = _day(sim, state, [(i, "drunk_driving"), (j, "drunk_driving")])  # day 1
    assert state.scores[i] == 1_000_000
    assert _rows(sim, first, i) == [("drunk_driving", 0)]  # the override is on the record
    assert state.scores[j] == 1_060_000
    assert tier_name(sim, state, i) == "C" and tier_name(sim, state, j) == "C"
    assert all(first.denied[s][i] for s in C_SANCTIONS)
    assert not any(first.granted[p][i] for p in A_PERKS)
    for _ in range(364):  # days 2-365: day 365 is the cap's 365th day
        day = _day(sim, state)
    assert state.day == 366 and tier_name(sim, state, i) == "C" and day.denied["village_candidacy"][i]
    lifted = _day(sim, state)  # day 366 = 1 + 365
    assert tier_name(sim, state, i) == "A" and tier_name(sim, state, j) == "AAA"
    assert not lifted.denied["village_candidacy"][i]
    assert all(lifted.granted[p][i] for p in A_PERKS)


def test_a_deduction_expires_after_730_days():
    """A court breach (-50) on day 0 is reversed on day 730 (two years [A]): 950 on days 0-729,
    1000 on day 730 with a ledger row expired:court_judgment_default of +50."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    _day(sim, state, [(i, "court_judgment_default")])
    assert state.scores[i] == 950_000 and tier_name(sim, state, i) == "B"
    for _ in range(729):  # days 1-729
        _day(sim, state)
    assert state.scores[i] == 950_000
    day = _day(sim, state)  # day 730
    assert _rows(sim, day, i) == [("expired:court_judgment_default", 50_000)]
    assert state.scores[i] == 1_000_000 and tier_name(sim, state, i) == "A"


def test_a_heroic_act_adds_30_and_two_lift_to_aaa():
    """A heroic act adds 30: 1030 is AA (1030-1049); a second gives 1060 >= 1050, AAA, with the
    A-range perks. Additions do not expire."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    _day(sim, state, [(i, "heroic_act")])
    assert state.scores[i] == 1_030_000 and tier_name(sim, state, i) == "AA"
    day = _day(sim, state, [(i, "heroic_act")])
    assert state.scores[i] == 1_060_000 and tier_name(sim, state, i) == "AAA"
    assert all(day.granted[p][i] for p in A_PERKS)
    assert state.policy.due.size == 0  # nothing queued to expire


def test_volunteering_and_blood_donation_add_10_volunteering_at_most_50_a_year():
    """+10 per volunteering day or blood donation (Suqian values as a proxy); volunteering adds
    at most 50 per 365-day period [A]: six days in year one give +50, one day in year two +10;
    a blood donation +10: 1000 + 50 + 10 + 10 = 1070."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    for _ in range(6):
        _day(sim, state, [(i, "volunteering")])
    assert state.scores[i] == 1_050_000
    _day(sim, state, [(i, "blood_donation")])
    while state.day < 365:
        _day(sim, state)
    _day(sim, state, [(i, "volunteering")])  # day 365: a new period
    assert state.scores[i] == 1_070_000


def test_the_score_floor_is_zero():
    """Twenty-five court breaches would take 1250 points; the floor of 0 [A] stops the fall at
    1000 lost, grade D, and the ledger records only the 1000 actually taken."""
    sim, state = _start()
    i = adults(sim, 1)[0]
    day = _day(sim, state, [(i, "court_judgment_default")] * 25)
    assert state.scores[i] == 0 and tier_name(sim, state, i) == "D"
    assert sum(d for _, d in _rows(sim, day, i)) == -1_000_000
    assert all(day.denied[s][i] for s in C_SANCTIONS)


def test_an_exempt_officials_violations_change_nothing():
    """With scope.exempt 'rank >= 3', an official of rank 3+ keeps 1000 and grade A after a
    court breach, drunk driving and tickets: no ledger row, no grade cap, no sanction. A
    non-exempt citizen with the same records loses 50 + 5 and is capped at C."""
    sim, state = _start(citizens=2000, scope={"exempt": "rank >= 3"})
    rank = sim.society.population.rank
    official = int(np.flatnonzero(rank >= 3)[0])
    other = next(i for i in range(sim.n) if rank[i] == 0 and sim.society.population.age[i] >= 18)
    records = ["court_judgment_default", "drunk_driving", "red_light"]
    day = _day(sim, state, [(c, e) for c in (official, other) for e in records])
    assert state.scores[official] == 1_000_000 and tier_name(sim, state, official) == "A"
    assert _rows(sim, day, official) == []
    assert not any(day.denied[s][official] for s in C_SANCTIONS)
    assert state.scores[other] == 945_000 and tier_name(sim, state, other) == "C"


def test_a_year_of_rongcheng_runs_on_records_alone_and_reports_its_columns():
    """10,000 citizens x 365 days: no camera source; the daily table has the tier shares of
    AAA-D (summing to 1), the three C/D sanctions and the four A perks; nobody under 18 is ever
    scored; observed rewards : deductions is near the 2015 city-wide 33,000 : 260,000 (1 : 7.9,
    docs/sources.md#rongcheng-2015); and the documented consequences happen: someone graded C
    (a drunk driver, capped at C) is struck off village candidacy, and adults in A get the
    green channel."""
    assert "cameras" not in load_preset(NAME).sensors
    result = api.run(NAME, citizens=10_000, days=365)
    daily = result.daily.to_pandas()
    assert len(daily) == 365
    tiers = [f"share_{t}" for t in ("AAA", "AA", "A", "B", "C", "D")]
    expected = {"day", "mean_score", "median_score", *tiers, "true_events", "observed_true",
                "missed_events", "misattributed", "phantoms", "false_observations",
                "citizens_false_today", "citizens_ever_false", "citizens_false_standing",
                "score_changes", *(f"denied_{s}" for s in C_SANCTIONS),
                *(f"granted_{p}" for p in A_PERKS), "citizens_wrongly_sanctioned"}
    assert expected == set(daily.columns)
    assert np.allclose(daily[tiers].sum(axis=1), 1.0)
    ledger = result.ledger.to_pandas()
    citizens = result.citizens.to_pandas().set_index("citizen")
    assert (citizens.loc[ledger["citizen"], "age"].to_numpy() >= 18).all()
    rule = ledger["rule"].astype(str)
    rewards = rule.isin(["heroic_act", "volunteering", "blood_donation"]).sum()
    deductions = ((ledger["delta_milli"] < 0) & ~rule.str.startswith("expired:")).sum()
    assert 5 < deductions / rewards < 12
    assert daily["denied_village_candidacy"].iloc[-1] > 0
    assert daily["granted_green_channel"].iloc[-1] > 0.9 * (citizens.age >= 18).sum()
