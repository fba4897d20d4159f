"""The sesame_commercial preset behaves as its documented rules say (docs/presets/sesame_commercial.md).

Observations are planted and fed through the real policy code path (``engine.apply_policy``).
Hand-worked numbers use a "top profile" citizen: income >= 15,000 yuan (capacity 1), age >= 60
(identity 1), residency citizen. With no records the dimensions are credit 0.7, capacity 1,
behaviour 0.5, identity 1, so the own part is 600 x (0.35 x 0.7 + 0.25 + 0.2 x 0.5 + 0.15) = 447.
"""

from __future__ import annotations

import numpy as np
from conftest import adults, policy_day, start_preset, tier_name

from panopticon import api


def _start(citizens: int = 3000):
    """The preset's simulation at day 0."""
    return start_preset("sesame_commercial", citizens, days=3000)


def _day(sim, state, planted=()):
    """One policy day with planted true (citizen, event) observations."""
    return policy_day(sim, state, planted)


def _top(sim, k: int = 2) -> list[int]:
    """Adults with full capacity and identity: income >= 15,000, age >= 60, citizens."""
    pop = sim.society.population
    mask = (pop.income >= 15000) & (pop.age >= 60) & (pop.residency == 0)
    found = [int(i) for i in np.flatnonzero(mask)[:k]]
    assert len(found) == k
    return found


def test_a_649_gets_no_deposit_waiver_at_650_and_a_650_does():
    """The ofo deposit waiver needs 650 [V]: 649 is refused it, 650 gets it - both in the raw
    consequences and on an ordinary (not recomputing) policy day."""
    sim, state = _start()
    a, b = adults(sim, 2)
    state.scores[[a, b]] = [649_000, 650_000]
    granted = state.policy.consequences(0, state.scores, state.tier)[1]
    assert not granted["deposit_free_rental"][a] and granted["deposit_free_rental"][b]
    day = _day(sim, state)  # day 0: no recomputation, the scores stand
    assert state.scores[a] == 649_000 and state.scores[b] == 650_000
    assert not day.granted["deposit_free_rental"][a] and day.granted["deposit_free_rental"][b]
    assert tier_name(sim, state, a) == "good" and tier_name(sim, state, b) == "very_good"


def test_public_bikes_need_600_and_no_late_payment_or_default_on_record():
    """Suzhou bikes [V]: 600 and no bad record for 5 years. 599 gets nothing; 600 with a clean
    record gets the bikes; 600 with a late payment observed today does not (days_since 0)."""
    sim, state = _start()
    low, clean, late = adults(sim, 3)
    state.scores[[low, clean, late]] = [599_000, 600_000, 600_000]
    day = _day(sim, state, [(late, "late_loan_payment")])
    assert [bool(day.granted["deposit_free_bikes"][i]) for i in (low, clean, late)] == [False, True, False]


def test_visa_routes_open_at_700_and_750():
    """Singapore at 700 [K] and Canada above 750 [V] both grant visa_fast_track: 699 no, 700 and
    750 yes."""
    sim, state = _start()
    a, b, c = adults(sim, 3)
    state.scores[[a, b, c]] = [699_000, 700_000, 750_000]
    granted = _day(sim, state).granted["visa_fast_track"]
    assert [bool(granted[i]) for i in (a, b, c)] == [False, True, True]


def test_the_start_score_is_the_formula_without_records():
    """Day 0 for a top-profile citizen: 350 + 447 / 0.95 = 820.526 points (820,526 milli)."""
    sim, state = _start()
    i = _top(sim, 1)[0]
    assert state.scores[i] == 820_526


def test_the_score_is_recomputed_every_30_days_only():
    """Everyone set to 650: no change on days 0-28 despite records; on day 29 (the 30th day) the
    formula gives 332.5 + 447 + 0.05 x 650 = 812 to a clean top-profile citizen, and one with a
    late payment and a default (credit 0.7 - 0.15 - 0.5 -> 0.05: own part 600 x 0.5175 = 310.5)
    gets 332.5 + 310.5 + 32.5 = 675.5. Day 30 changes nothing; day 59 recomputes again."""
    sim, state = _start()
    clean, bad = _top(sim, 2)
    state.scores[:] = 650_000
    _day(sim, state, [(bad, "late_loan_payment"), (bad, "loan_default")])
    for _ in range(1, 29):  # days 1-28
        day = _day(sim, state)
        assert len(day.ledger["citizen"]) == 0
    assert state.scores[clean] == 650_000 and state.scores[bad] == 650_000
    _day(sim, state)  # day 29
    assert state.scores[clean] == 812_000 and state.scores[bad] == 675_500
    assert tier_name(sim, state, clean) == "excellent" and tier_name(sim, state, bad) == "very_good"
    day = _day(sim, state)  # day 30
    assert len(day.ledger["citizen"]) == 0
    for _ in range(31, 59):
        _day(sim, state)
    day = _day(sim, state)  # day 59: recomputed from friends now at their own scores
    assert len(day.ledger["citizen"]) > 0


def test_friends_scores_weigh_five_percent():
    """The interpersonal dimension (5% [V unofficial], friends' mean [A]): with every score at 950
    instead of 650 before day 29, a clean top-profile citizen gets 332.5 + 447 + 0.05 x 950 =
    827 instead of 812 - exactly 0.05 x 300 = 15 points more."""
    sim, state = _start()
    i = _top(sim, 1)[0]
    state.scores[:] = 950_000
    for _ in range(30):  # days 0-29
        _day(sim, state)
    assert state.scores[i] == 827_000


def test_gaming_lowers_and_nappies_raise_the_behaviour_dimension():
    """The Li Yingyun proxies [V], weights [A]: 10 gaming days in the last 30 cost 0.2 x 0.02 x 10
    x 600 = 24 points (812 -> 788); 10 baby-product purchases in 90 days add 24 (812 -> 836)."""
    sim, state = _start()
    gamer, parent = _top(sim, 2)
    state.scores[:] = 650_000
    for d in range(30):  # days 0-29; the purchases fall on days 20-29
        _day(sim, state, [(gamer, "video_game_hours"), (parent, "baby_products_purchase")]
              if d >= 20 else ())
    assert state.scores[gamer] == 788_000 and state.scores[parent] == 836_000


def test_the_score_stays_within_350_and_950():
    """A citizen with many late payments, defaults, arrears and gaming days ends at no less than
    350, and one month of everyone at the maximum leaves nobody above 950."""
    sim, state = _start()
    worst = adults(sim, 1)[0]
    for _ in range(30):
        _day(sim, state, [(worst, "late_loan_payment"), (worst, "loan_default"),
                          (worst, "utility_arrears"), (worst, "video_game_hours")])
    assert 350_000 <= state.scores[worst] < 600_000
    state.scores[:] = 950_000
    for _ in range(30):
        _day(sim, state)
    assert state.scores.min() >= 350_000 and state.scores.max() <= 950_000


def test_children_are_not_scored_and_get_no_perks():
    """Minors are exempt [A]: their score never changes and no perk is granted, whatever it is."""
    sim, state = _start()
    child = int(np.flatnonzero(sim.society.population.age < 18)[0])
    before = int(state.scores[child])
    for _ in range(30):
        _day(sim, state)
    assert state.scores[child] == before
    state.scores[child] = 900_000
    granted = _day(sim, state).granted
    assert not any(granted[p][child] for p in granted)


def test_sesame_runs_ten_thousand_citizens_for_a_year_within_350_to_950():
    """10,000 citizens x 365 days: every score in [350, 950]; perks granted, nothing denied;
    and at the end of the year 30-55% of adults are at 650 or more, the ofo deposit waiver,
    as 40% of Hangzhou residents could waive deposits (docs/sources.md#sesame-adoption)."""
    result = api.run("sesame_commercial", citizens=10_000, days=365)
    scores = result.citizens.column("score").to_numpy()
    assert scores.min() >= 350 and scores.max() <= 950
    daily = result.daily.to_pandas()
    assert len(daily) == 365 and daily["granted_deposit_free_rental"].iloc[-1] > 0
    assert not [c for c in daily.columns if c.startswith("denied_")]
    citizens = result.citizens.to_pandas()
    grown = citizens[citizens.age >= 18]
    assert 0.30 < (grown.score >= 650).mean() < 0.55
