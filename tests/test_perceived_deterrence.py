"""Perceived deterrence: a citizen's rate of an event falls with the chance of being recorded
where they live times the points a record costs, so that what a policy deters is a result of
the run (of its rules and its sensors), not a factor typed in."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import StopAfter, build_scenario, merge

from panopticon import api, engine
from panopticon.errors import RunInterrupted, UserError

# Two regions, cameras covering urban at 0.5 and rural at 0.1, detection 0.8; red light costs
# 5 points (the tiny policy) and late payments 2 (seen by payments, everywhere, detection 0.9).
SETUP = {
    "society": {"region": {"values": ["urban", "rural"], "weights": [0.5, 0.5]}},
    "behaviour": {"deterrence": [],
                  "perceived_deterrence": [{"events": ["red_light", "late_loan_payment"],
                                            "sensitivity": 0.1}]},
    "sensors": {"cameras": {"coverage": {"urban": 0.5, "rural": 0.1}, "misattribution": 0.0,
                            "phantom_rate": 0.0}},
}


STORED = 3e-7
"""Relative precision of a stored rate: a changing rate is float32 (6e-8 a rounding), rounded
when it starts and again each time it is rescaled."""


def _column(state, sim, event: str) -> np.ndarray:
    return state.rates.rows()[:, list(sim.events).index(event)]


def test_rates_start_at_their_trait_rate_times_exp_of_minus_sensitivity_chance_points(
        tiny_data):
    """red light 0.05 a day: urban exp(-0.1 x 0.5 x 0.8 x 5) = exp(-0.2) -> 0.040937, rural
    exp(-0.1 x 0.1 x 0.8 x 5) = exp(-0.04) -> 0.048039; late payments 0.03 x exp(-0.1 x 0.9 x
    2) = exp(-0.18) -> 0.025058 in both regions; volunteering (not deterred) stays 0.04."""
    sim = engine.build(build_scenario(merge(tiny_data, SETUP)))
    state = engine.initial_state(sim)
    pop = sim.society.population
    urban = pop.region == pop.labels["region"].index("urban")
    red = _column(state, sim, "red_light")
    assert red[urban] == pytest.approx(0.05 * math.exp(-0.2), rel=STORED)
    assert red[~urban] == pytest.approx(0.05 * math.exp(-0.04), rel=STORED)
    assert _column(state, sim, "late_loan_payment") == pytest.approx(0.03 * math.exp(-0.18))
    assert _column(state, sim, "volunteering") == pytest.approx(0.04, rel=STORED)
    assert state.total == pytest.approx(state.rates.rows().sum(axis=1))


def test_citizens_abroad_and_exempt_citizens_expect_no_cost_and_are_not_deterred(tiny_data):
    """Abroad, domestic sources do not see you; exempt, no rule scores you: both keep 0.05."""
    data = merge(tiny_data, SETUP)
    data = merge(data, {"society": {"abroad_share": 0.2},
                        "policy": {"scope": {"exempt": "age >= 60"}}})
    sim = engine.build(build_scenario(data))
    state = engine.initial_state(sim)
    pop = sim.society.population
    free = pop.abroad | (pop.age >= 60)
    assert free.any() and (~free).any()
    assert _column(state, sim, "red_light")[free] == pytest.approx(0.05, rel=STORED)
    assert (_column(state, sim, "red_light")[~free] < 0.05).all()


def test_an_event_nobody_records_or_nothing_punishes_is_not_deterred(tiny_data):
    """No source for the event, or no negative points: the chance or the cost is 0, the
    factor exp(0) = 1."""
    data = merge(tiny_data, SETUP)
    data["behaviour"]["perceived_deterrence"] = [{"events": ["volunteering", "jaywalking"],
                                                  "sensitivity": 5.0}]
    data["behaviour"]["events"]["jaywalking"] = {"rate": 0.02, "min_age": 0}
    sim = engine.build(build_scenario(data))
    state = engine.initial_state(sim)
    assert _column(state, sim, "volunteering") == pytest.approx(0.04, rel=STORED)  # rewarded, not punished
    assert _column(state, sim, "jaywalking") == pytest.approx(0.02, rel=STORED)  # no source sees it


def test_rates_follow_coverage_when_the_police_move(tiny_data):
    """With the cameras reallocated every day, each citizen's red-light rate is always the
    trait rate times the factor of today's coverage of their region."""
    data = merge(tiny_data, SETUP)
    data = merge(data, {"sensors": {"cameras": {"reallocate": {"every_days": 1,
                                                               "exponent": 2.0}}}})
    sim = engine.build(build_scenario(data))
    state = engine.initial_state(sim)
    pop = sim.society.population
    t = list(sim.events).index("red_light")
    moved = False
    for _ in range(10):
        engine.step(sim, state)
        cov = state.sensors.coverage[list(sim.sensors.names).index("cameras")]
        moved |= not np.allclose(cov, [0.5, 0.1])
        expected = 0.05 * np.exp(-0.1 * cov[pop.region] * 0.8 * 5)
        # other mechanisms are off: only perceived deterrence changes this rate
        assert state.rates.rows()[:, t] == pytest.approx(expected, rel=STORED)
    assert moved


def test_deterrence_emerges_from_coverage_fewer_red_lights_where_cameras_watch(tiny_data):
    """4,000 citizens over 60 days, half urban: without perceived deterrence about
    0.05 x 4,000 x 60 = 12,000 red lights; with it the expected count is 12,000 x
    (exp(-0.2) + exp(-0.04)) / 2 = 10,677, 11.0% fewer. The runs share their random numbers,
    so the ratio is close to its expectation (within 2%)."""
    base = merge(tiny_data, {**SETUP, "run": {"citizens": 4000, "days": 60}})
    off = merge(base, {"behaviour": {"perceived_deterrence": []}})
    seen = []
    for data in (off, base):
        sim = engine.build(build_scenario(data))
        state = engine.initial_state(sim)
        t = list(sim.events).index("red_light")
        seen.append(sum(int(engine.step(sim, state).events["true_events"][t])
                        for _ in range(60)))
    assert seen[0] == pytest.approx(12_000, rel=0.03)
    assert seen[1] / seen[0] == pytest.approx((math.exp(-0.2) + math.exp(-0.04)) / 2, rel=0.02)


def test_a_run_with_perceived_deterrence_resumes_bit_identically(tiny_data, tmp_path):
    """Stopped after a checkpoint with reallocating cameras and resumed: the same
    fingerprint as the run made in one go (the factors are derived from the coverage)."""
    data = merge(tiny_data, SETUP)
    data = merge(data, {"sensors": {"cameras": {"reallocate": {"every_days": 2}}},
                        "run": {"days": 14, "checkpoint_every": 5}})
    whole = api.run(build_scenario(data), out=tmp_path / "a")
    with pytest.raises(RunInterrupted) as stopped:
        api.run(build_scenario(data), out=tmp_path / "b", progress=StopAfter(7))
    resumed = api.resume(stopped.value.path)
    assert resumed.manifest["result"]["fingerprint"] == whole.manifest["result"]["fingerprint"]


def test_an_unknown_event_is_refused_naming_the_key(tiny_data):
    data = merge(tiny_data, SETUP)
    data["behaviour"]["perceived_deterrence"] = [{"events": ["red_lihgt"], "sensitivity": 1}]
    with pytest.raises(UserError, match=r"perceived_deterrence.*red_lihgt.*red_light"):
        build_scenario(data)


def test_an_event_with_a_rate_response_cannot_also_be_perceived(tiny_data):
    data = merge(tiny_data, SETUP)
    data["behaviour"]["responses"] = [{"when": "tier == 'C'", "events": ["red_light"],
                                       "rate": 0.0}]
    with pytest.raises(UserError, match="other kind"):
        build_scenario(data)


def test_with_two_sources_the_chance_is_that_either_records_it(tiny_data):
    """Cameras (urban 0.5 x 0.8 = 0.4, rural 0.1 x 0.8 = 0.08) and police (0.5 x 0.9 = 0.45
    everywhere) both see red lights: urban 1 - 0.6 x 0.55 = 0.67, rural 1 - 0.92 x 0.55 =
    0.494; the factors exp(-0.1 x 0.67 x 5) and exp(-0.1 x 0.494 x 5)."""
    data = merge(tiny_data, SETUP)
    data["sensors"]["police"] = {"events": ["red_light"], "coverage": 0.5, "detection": 0.9}
    sim = engine.build(build_scenario(data))
    state = engine.initial_state(sim)
    pop = sim.society.population
    urban = pop.region == pop.labels["region"].index("urban")
    red = _column(state, sim, "red_light")
    assert red[urban] == pytest.approx(0.05 * math.exp(-0.1 * 0.67 * 5), rel=STORED)
    assert red[~urban] == pytest.approx(0.05 * math.exp(-0.1 * 0.494 * 5), rel=STORED)
