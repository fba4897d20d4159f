"""Surveillance feedback: coverage re-divided among regions in proportion to past detections
(the predictive-policing loop), or held fixed."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_scenario
from hypothesis import given, settings
from hypothesis import strategies as st

from panopticon import api, engine
from panopticon.errors import UserError
from panopticon.sensors import reallocate


def test_reallocation_splits_the_budget_in_proportion_to_detections():
    """Two regions of 100 citizens at coverage 0.5 each (budget 100 covered citizens) with
    detections 3:1 -> 0.75 and 0.25; 9:1 -> 0.9, 0.1."""
    size = np.asarray([100, 100])
    assert reallocate(np.asarray([0.5, 0.5]), np.asarray([3.0, 1.0]), size, 0.0).tolist() == \
        pytest.approx([0.75, 0.25])
    assert reallocate(np.asarray([0.5, 0.5]), np.asarray([9.0, 1.0]), size, 0.0).tolist() == \
        pytest.approx([0.9, 0.1])


def test_reallocation_caps_a_region_at_full_coverage_and_gives_the_rest_away():
    """Budget 0.6 x 650 + 0.15 x 350 = 442.5 covered citizens; detections 1:1 would give each
    region 221.25 citizens: urban 221.25 / 650 = 0.3404, rural 221.25 / 350 = 0.6321. With
    detections 1:0 everything goes to region 1 (0.6808); with a floor of 0.05 each region
    first keeps 5% (32.5 and 17.5 citizens) and region 1 gets the other 392.5: 425 / 650.
    Budget 180 over 100 + 100 with heat 9:1: region 1 would get 162 > 100, so it is capped
    at 1 and region 2 takes the remaining 80 -> 0.8."""
    size = np.asarray([650, 350])
    got = reallocate(np.asarray([0.6, 0.15]), np.asarray([1.0, 1.0]), size, 0.0)
    assert got.tolist() == pytest.approx([221.25 / 650, 221.25 / 350])
    got = reallocate(np.asarray([0.6, 0.15]), np.asarray([1.0, 0.0]), size, 0.05)
    assert got.tolist() == pytest.approx([425 / 650, 0.05])
    got = reallocate(np.asarray([0.9, 0.9]), np.asarray([9.0, 1.0]), np.asarray([100, 100]), 0)
    assert got.tolist() == pytest.approx([1.0, 0.8])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), regions=st.integers(1, 6), exponent=st.floats(0.0, 10.0),
       rounds=st.integers(1, 40))
def test_reallocation_keeps_the_budget_exactly_whatever_the_floor(data, regions, exponent,
                                                                  rounds):
    """Any sizes, coverage, heat, exponent and a floor up to the mean coverage: after any
    number of reallocations the covered citizens are the configured budget (the floor never
    ratchets it up) and every populated region's share is within [floor, 1]."""
    size = np.asarray(data.draw(st.lists(st.integers(0, 10_000), min_size=regions,
                                         max_size=regions)))
    if size.sum() == 0:
        size[0] = 1
    coverage = np.asarray(data.draw(st.lists(st.floats(0.0, 1.0), min_size=regions,
                                             max_size=regions)))
    budget = float((coverage * size).sum())
    floor = data.draw(st.floats(0.0, 1.0)) * budget / size.sum()
    moved = False  # without any records the configured coverage stays, below the floor or not
    for _ in range(rounds):
        heat = np.asarray(data.draw(st.lists(st.floats(0.0, 1e9), min_size=regions,
                                             max_size=regions)))
        coverage = reallocate(coverage, heat, size, floor, exponent)
        moved |= heat.sum() > 0
        assert float((coverage * size).sum()) == pytest.approx(budget, rel=1e-9, abs=1e-9)
        populated = coverage[size > 0]
        assert (populated <= 1 + 1e-12).all()
        assert not moved or (populated >= floor * (1 - 1e-12)).all()


def test_a_floor_of_0_05_no_longer_grows_the_budget_over_40_days():
    """The reported case: floor 0.05, exponent 2, daily reallocation toward one hot spot.
    Four regions of 10,000 at coverage 0.1: a budget of 4,000 covered citizens, of which the
    floor takes 2,000. Lifting regions to the floor after the split used to add to the budget
    each day; now it stays 4,000, and what is above the floor runs away to the hot spot."""
    size = np.full(4, 10_000)
    coverage = np.full(4, 0.1)
    rng = np.random.default_rng(5)
    for _ in range(40):
        heat = rng.poisson(coverage * size * np.asarray([0.4, 0.1, 0.1, 0.1])).astype(float)
        coverage = reallocate(coverage, heat, size, 0.05, 2.0)
        assert float((coverage * size).sum()) == pytest.approx(4_000)
    assert coverage[0] > 0.2 and coverage[1:].min() >= 0.05


def test_a_floor_above_the_mean_coverage_is_refused_naming_the_source(tiny_data):
    """A floor the budget cannot pay for everywhere is a user error at build, with the
    numbers, not a budget that silently grows."""
    data = {**tiny_data, **FEEDBACK, "sensors": {"cameras": {
        **FEEDBACK["sensors"]["cameras"],
        "reallocate": {**FEEDBACK["sensors"]["cameras"]["reallocate"], "floor": 0.9}}}}
    with pytest.raises(UserError, match=r"sensors\.cameras\.reallocate\.floor: 0\.9 .*at most"):
        engine.build(build_scenario(data))


def test_no_detections_leave_coverage_unchanged():
    """Nothing recorded anywhere: there is nothing to follow, the coverage stays."""
    cov = np.asarray([0.3, 0.7])
    assert reallocate(cov, np.zeros(2), np.asarray([5, 5]), 0.0) is cov


FEEDBACK = {
    "run": {"citizens": 4_000, "days": 120, "seed": 5, "checkpoint_every": 40},
    "society": {"region": {"values": ["urban", "rural"], "weights": [0.5, 0.5]}},
    "behaviour": {"events": {"red_light": {"rate": 0.05, "min_age": 0}}, "deterrence": []},
    "sensors": {"cameras": {"events": ["red_light"], "coverage": {"urban": 0.55, "rural": 0.45},
                            "detection": 1.0,
                            "reallocate": {"every_days": 1, "memory": 0.9}}},
    "policy": {"name": "feedback", "score": {"start": 100}, "rules": [
        {"event": "red_light", "points": -1}], "tiers": [{"name": "all"}], "association": []},
}


def _coverage(data: dict, exponent: float) -> tuple[np.ndarray, object]:
    data = {**data, "sensors": {"cameras": {**FEEDBACK["sensors"]["cameras"], "reallocate": {
        "every_days": 1, "memory": 0.9, "exponent": exponent}}}}
    result = api.run(build_scenario(data))
    daily = result.daily.to_pandas()
    return daily[["coverage_cameras_urban", "coverage_cameras_rural"]].to_numpy(), result


def test_proportional_reallocation_locks_in_the_first_split_and_never_learns_the_truth(
        tiny_data):
    """Both regions behave the same (rate 0.05 a day, 2,000 citizens each), but urban starts
    with more coverage (0.55 vs 0.45), so it records more. Following the records in
    proportion (exponent 1) reproduces the split it started from: detections ~ coverage, so
    coverage ~ coverage (a Polya urn). After 120 days urban is still watched more, never
    corrected toward the truth (0.5 / 0.5), and its citizens lose more points for the same
    behaviour. The budget of covered citizens (coverage x citizens, summed) is kept."""
    coverage, result = _coverage({**tiny_data, **FEEDBACK}, 1.0)
    assert coverage[-1, 0] == pytest.approx(0.55, abs=0.06)
    assert coverage[-1, 0] > coverage[-1, 1]
    citizens = result.citizens.to_pandas()
    size = citizens.region.value_counts().reindex(["urban", "rural"]).to_numpy()
    budget = 0.55 * size[0] + 0.45 * size[1]
    assert coverage @ size == pytest.approx(np.full(len(coverage), budget))
    means = citizens.groupby("region", observed=True)["score"].mean()
    assert means["urban"] < means["rural"]


def test_hot_spot_reallocation_runs_away_toward_the_region_watched_more(tiny_data):
    """exponent 2: the region with more records gets more than its proportional share, which
    brings more records: coverage runs away (Ensign et al. 2018), urban above 0.9 by the
    end and rising on average over the run. Held fixed (no reallocate), nothing moves and
    no coverage columns are written."""
    coverage, _ = _coverage({**tiny_data, **FEEDBACK}, 2.0)
    assert coverage[-1, 0] > 0.9 and coverage[-1, 1] < 0.1
    assert coverage[60:, 0].mean() > coverage[:60, 0].mean()
    fixed = {**tiny_data, **FEEDBACK, "sensors": {"cameras": {
        k: v for k, v in FEEDBACK["sensors"]["cameras"].items() if k != "reallocate"}}}
    daily = api.run(build_scenario(fixed)).daily.to_pandas()
    assert not any(c.startswith("coverage_") for c in daily.columns)


def test_reallocating_run_resumes_bit_identically(tiny_data):
    """The coverage and the decayed detections are part of the checkpoint."""
    sim = engine.build(build_scenario({**tiny_data, **FEEDBACK}))
    straight = engine.run(sim).fingerprint()
    half = engine.run(sim, until=33)
    assert engine.run(sim, engine.State.restore(half.snapshot(), sim)).fingerprint() == straight
