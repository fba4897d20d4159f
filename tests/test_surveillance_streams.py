"""Surveillance that learns from its own records: several sources per event type, reallocation
from chosen record streams, prior counts, inverse-coverage weighting and discrete allocation
of patrol units (issue 14; Ensign et al. 2018, Lum & Isaac 2016)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import build_scenario
from test_surveillance_feedback import FEEDBACK  # the same two-region feedback society

from panopticon import api, engine
from panopticon.behaviour import behave
from panopticon.errors import UserError
from panopticon.rng import Stage, stream_key, uniforms
from panopticon.sensors import (
    MISATTRIBUTED,
    NOT_OBSERVED,
    OBSERVED,
    PATROL,
    Observations,
    observe,
    place_units,
    prior_counts,
    reallocate,
    stream_records,
)

BASE = {
    "schema_version": 1, "name": "streams",
    "run": {"citizens": 4_000, "days": 5, "seed": 11},
    "society": {"region": {"values": ["urban", "rural"], "weights": [0.5, 0.5]}},
    "behaviour": {"events": {"jaywalking": {"rate": 0.2, "min_age": 0}}, "deterrence": []},
    "sensors": {"cameras": {"events": ["jaywalking"], "detection": 1.0},
                "police": {"events": ["jaywalking"], "detection": 1.0}},
    "policy": {"name": "none", "tiers": [{"name": "all"}], "association": []},
}


def _data(**sensors) -> dict:
    data = copy.deepcopy(BASE)
    for name, changes in sensors.items():
        if changes is None:
            del data["sensors"][name]
        else:
            data["sensors"][name] = {**data["sensors"].get(name, {"events": ["jaywalking"]}),
                                     **changes}
    return data


def _day(spec, day: int = 0):
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    pop = sim.society.population
    true = behave(sim.seed, day, state.rates, state.total, state.p0)
    obs, status, tally = observe(sim.seed, day, true, sim.sensors, pop.region, pop.abroad)
    return sim, true, obs, status, tally


# ------------------------------------------------------------ several sources per event type


def test_two_sources_of_one_event_each_record_every_event_they_see():
    """Cameras and police both see jaywalking at coverage 1, detection 1, no errors: every
    true event gives two records, the cameras' then the police's, both naming the actor.
    Tally: true events m, records on the actor 2m, none missed; per source m records."""
    sim, true, obs, status, tally = _day(build_scenario(_data()))
    m = len(true)
    assert m > 500 and not sim.society.population.abroad.any()
    assert sim.sensors.sources_of_event.shape[1] == 2
    assert len(obs) == 2 * m
    assert np.bincount(obs.source, minlength=2).tolist() == [m, m]
    assert obs.source.tolist() == [0, 1] * m
    np.testing.assert_array_equal(obs.citizen[0::2], true.citizen)
    np.testing.assert_array_equal(obs.citizen[1::2], true.citizen)
    assert obs.is_true.all() and (status == OBSERVED).all()
    t = sim.events.index("jaywalking")
    assert tally[:, t].tolist() == [m, 2 * m, 0, 0, 0]


def test_the_first_source_draws_as_if_it_were_alone_and_the_second_independently():
    """Detection 0.5 each: the cameras' records are bit for bit those of a scenario with the
    cameras alone (the first source keeps the one-source counters); the police draw from
    their own stream, so an event is missed by both with chance 0.25, seen by both with
    0.25 (5 s.e. of a binomial share)."""
    both = build_scenario(_data(cameras={"detection": 0.5}, police={"detection": 0.5}))
    alone = build_scenario(_data(cameras={"detection": 0.5}, police=None))
    sim, true, obs, status, tally = _day(both, day=3)
    _, true1, obs1, status1, _ = _day(alone, day=3)
    np.testing.assert_array_equal(true.citizen, true1.citizen)
    np.testing.assert_array_equal(obs.citizen[obs.source == 0], obs1.citizen)
    m = len(true)
    cams = status1 == OBSERVED  # what the cameras saw, alone or not
    police = int(np.count_nonzero(obs.source == 1))
    only_police = int(np.count_nonzero((status == OBSERVED) & ~cams))
    se = 5 * np.sqrt(0.25 * 0.75 / m)
    assert abs(police / m - 0.5) < 5 * np.sqrt(0.25 / m)
    assert abs(np.mean(status == NOT_OBSERVED) - 0.25) < se
    assert abs((police - only_police) / m - 0.25) < se  # seen by both
    t = sim.events.index("jaywalking")
    assert tally[0, t] == m and tally[2, t] == np.count_nonzero(status == NOT_OBSERVED)
    assert tally[1, t] == len(obs) == np.count_nonzero(cams) + police


def test_an_event_pinned_wrongly_by_one_source_and_rightly_by_another_counts_both_records():
    """Cameras always misattribute (misattribution 1), police never do: every event has a
    false camera record and a true police record; its status is observed (some source got
    the actor right). Tally: records on the actor m, misattributed records m, false
    observations m. With the police gone every event is misattributed."""
    sim, true, obs, status, tally = _day(build_scenario(_data(cameras={"misattribution": 1.0})))
    m = len(true)
    t = sim.events.index("jaywalking")
    assert (status == OBSERVED).all()
    assert tally[:, t].tolist() == [m, m, 0, m, m]
    assert (~obs.is_true[obs.source == 0]).all() and obs.is_true[obs.source == 1].all()
    _, _, _, status, tally = _day(build_scenario(_data(cameras={"misattribution": 1.0},
                                                       police=None)))
    assert (status == MISATTRIBUTED).all()


def test_an_event_listed_twice_by_one_source_is_refused_but_two_sources_are_fine():
    build_scenario(_data())
    with pytest.raises(UserError, match="listed twice"):
        build_scenario(_data(police={"events": ["jaywalking", "jaywalking"]}))


# ------------------------------------------------------------ the reallocation pieces


def test_stream_records_sum_the_chosen_streams_and_weight_by_inverse_coverage():
    """Records per source and region [[4, 2], [6, 0]] under coverage [[0.5, 0.25], [1, 0]]:
    own stream [4, 2]; both streams [10, 2]; weighted own stream [4 / 0.5, 2 / 0.25] =
    [8, 8]; weighted both [8 + 6 / 1, 8 + 0] = [14, 8] (records where coverage is 0 count
    nothing: there are none here, and a false match landing there would count 0)."""
    seen = np.asarray([[4, 2], [6, 0]])
    cov = np.asarray([[0.5, 0.25], [1.0, 0.0]])
    assert stream_records(seen, cov, [0]).tolist() == [4, 2]
    assert stream_records(seen, cov, [0, 1]).tolist() == [10, 2]
    assert stream_records(seen, cov, [0], "inverse_coverage").tolist() == [8.0, 8.0]
    assert stream_records(seen, cov, [0, 1], "inverse_coverage").tolist() == [14.0, 8.0]
    assert stream_records(np.asarray([[0, 3]]), np.asarray([[0.5, 0.0]]), [0],
                          "inverse_coverage").tolist() == [0.0, 0.0]


def test_prior_counts_join_the_heat_before_the_shares():
    """Two regions of 100 at coverage 0.5 (budget 100). Heat [3, 1] plus prior 1 each is
    [4, 2]: shares 2/3 and 1/3. No records at all with the prior: [1, 1], an even split (the
    prior alone decides); a prior by region {b: 3} gives [3, 4] -> 3/7, 4/7."""
    size = np.asarray([100, 100])
    cov = np.asarray([0.5, 0.5])
    prior = prior_counts(1.0, ["a", "b"])
    assert reallocate(cov, np.asarray([3.0, 1.0]) + prior, size, 0.0).tolist() == \
        pytest.approx([2 / 3, 1 / 3])
    assert reallocate(np.asarray([0.8, 0.2]), np.zeros(2) + prior, size, 0.0).tolist() == \
        pytest.approx([0.5, 0.5])
    by_region = prior_counts({"b": 3.0}, ["a", "b"])
    assert by_region.tolist() == [0.0, 3.0]
    assert reallocate(cov, np.asarray([3.0, 1.0]) + by_region, size, 0.0).tolist() == \
        pytest.approx([3 / 7, 4 / 7])


def test_units_are_placed_by_drawing_regions_from_the_shares():
    """Heat [3, 1, 5] over regions of 10, 10 and 0 citizens: the empty region gets no unit,
    the others shares 3/4 and 1/4. Unit u goes to region 0 if uniform(key, u) < 0.75, else 1;
    coverage = min(1, units there x unit_coverage). Exponent 2: shares 9/10 and 1/10. Heat
    only in an empty region: no placement (None, the coverage stays)."""
    key = stream_key(7, Stage.OBSERVE, 4, PATROL + 1)
    size = np.asarray([10, 10, 0])
    heat = np.asarray([3.0, 1.0, 5.0])
    u = uniforms(key, 6)
    to0 = int(np.count_nonzero(u < 0.75))
    got = place_units(key, heat, size, 6, 0.3)
    assert got.tolist() == pytest.approx([min(1.0, to0 * 0.3), (6 - to0) * 0.3, 0.0])
    to0 = int(np.count_nonzero(u < 0.9))
    assert place_units(key, heat, size, 6, 0.1, exponent=2.0).tolist() == \
        pytest.approx([to0 * 0.1, (6 - to0) * 0.1, 0.0])
    many = place_units(key, heat, size, 100_000, 1e-5)
    assert many[0] == pytest.approx(0.75, abs=5 * np.sqrt(0.75 * 0.25 / 100_000))
    assert place_units(key, np.asarray([0.0, 0.0, 5.0]), size, 6, 0.3) is None


# ------------------------------------------------------------ the loop, through engine.watch


def _records(sim, pairs: list[tuple[int, int, int]]) -> Observations:
    """Observations of (source, region, count): records naming citizens of that region."""
    region = sim.society.population.region
    cit, src = [], []
    for s, r, k in pairs:
        cit += np.flatnonzero(region == r)[:k].tolist()
        src += [s] * k
    n = len(cit)
    return Observations(np.asarray(cit, np.int32), np.zeros(n, np.int16),
                        np.asarray(src, np.int8), np.ones(n, bool), np.asarray(cit, np.int32))


def test_watch_follows_the_chosen_streams_weighted_by_the_coverage_of_the_day():
    """Police (coverage 0.5 / 0.5) reallocate daily from the cameras' records and their own,
    each divided by the coverage that made it, plus a prior of 2 for rural. Cameras cover
    urban 0.5, rural 0.25 and record 4 urban, 2 rural; police 3 urban, 1 rural. Heat: urban
    4 / 0.5 + 3 / 0.5 = 14, rural 2 / 0.25 + 1 / 0.5 = 10; with the prior [14, 12]: the
    budget B = 0.5 (N_u + N_r) covered citizens splits 14:12. Next day one police record in
    urban, weighted by the new urban coverage c: heat 0.9 x [14, 10] + [1 / c, 0]."""
    data = _data(cameras={"coverage": {"urban": 0.5, "rural": 0.25}},
                 police={"coverage": 0.5, "reallocate": {
                     "every_days": 1, "memory": 0.9, "from": ["cameras", "police"],
                     "weighting": "inverse_coverage", "prior": {"rural": 2}}})
    sim = engine.build(build_scenario(data))
    state = engine.initial_state(sim)
    size = sim.sensors.region_size.astype(float)
    budget = 0.5 * size.sum()
    engine.watch(sim, state, _records(sim, [(0, 0, 4), (0, 1, 2), (1, 0, 3), (1, 1, 1)]))
    assert state.heat[1].tolist() == pytest.approx([14.0, 10.0])
    want = budget * np.asarray([14, 12]) / 26 / size
    assert state.sensors.coverage[1].tolist() == pytest.approx(want.tolist())
    assert state.sensors.coverage[0].tolist() == [0.5, 0.25]  # cameras do not move
    state.day += 1
    engine.watch(sim, state, _records(sim, [(1, 0, 1)]))
    heat = [0.9 * 14 + 1 / want[0], 0.9 * 10]
    assert state.heat[1].tolist() == pytest.approx(heat)
    shares = np.asarray([heat[0], heat[1] + 2])
    assert state.sensors.coverage[1].tolist() == pytest.approx(
        (budget * shares / shares.sum() / size).tolist())


def test_watch_places_units_keyed_by_day_and_source():
    """Police with 3 units of coverage 0.25 each, reallocating daily on their own records:
    urban 6 records, rural 2 -> shares 3/4, 1/4; the units land where the (day, source,
    unit) draws send them, and the coverage metric is units x 0.25."""
    data = _data(police={"coverage": 0.5, "reallocate": {"every_days": 1, "memory": 0.9,
                                                          "units": 3, "unit_coverage": 0.25}})
    sim = engine.build(build_scenario(data))
    state = engine.initial_state(sim)
    engine.watch(sim, state, _records(sim, [(1, 0, 6), (1, 1, 2)]))
    u = uniforms(stream_key(sim.seed, Stage.OBSERVE, 0, PATROL + 1), 3)
    to0 = int(np.count_nonzero(u < 0.75))
    assert state.sensors.coverage[1].tolist() == pytest.approx([to0 * 0.25, (3 - to0) * 0.25])
    assert engine.coverage_today(sim, state) == {
        "coverage_police_urban": to0 * 0.25, "coverage_police_rural": (3 - to0) * 0.25}


def test_reallocation_keys_are_checked():
    """Unknown streams and prior regions, and a floor with units, are refused with the key."""
    def bad(realloc: dict, match: str):
        with pytest.raises(UserError, match=match):
            build_scenario(_data(police={"reallocate": realloc}))
    bad({"from": ["cammeras"]}, r"reallocate\.from\[0\].*expected a source of this scenario")
    bad({"from": ["courts"]}, "expected a source of this scenario")
    bad({"prior": {"suburb": 1}}, r"reallocate\.prior\.suburb")
    bad({"units": 4, "floor": 0.1}, r"reallocate\.floor.*units")
    bad({"weighting": "inverse"}, "weighting")
    spec = build_scenario(_data(police={"reallocate": {"from": ["cameras"], "units": 2}}))
    dumped = spec.model_dump(mode="json")["sensors"]["police"]["reallocate"]
    assert dumped["from"] == ["cameras"] and "from_" not in dumped
    assert type(spec).model_validate_json(spec.model_dump_json()) == spec


# ------------------------------------------------------------ whole runs


def test_inverse_coverage_weighting_corrects_the_locked_in_split(tiny_data):
    """Both regions behave alike, urban starts watched more (0.55 / 0.45). Weighting each
    record by 1 / coverage estimates the true events per region, equal here: the budget
    is split by citizens, so both regions end near the same coverage (the mean coverage
    over the last 60 days within 0.03 of each other), where following the raw records keeps
    urban ahead (test_surveillance_feedback)."""
    data = {**tiny_data, **copy.deepcopy(FEEDBACK)}
    data["sensors"]["cameras"]["reallocate"]["weighting"] = "inverse_coverage"
    daily = api.run(build_scenario(data)).daily.to_pandas()
    urban, rural = daily["coverage_cameras_urban"], daily["coverage_cameras_rural"]
    assert abs(urban[60:].mean() - rural[60:].mean()) < 0.03


def test_runs_with_streams_priors_and_units_resume_bit_identically(tiny_data):
    """Units (placed by day, source and unit), streams, weights and priors: the coverage and
    the decayed heat are all the state there is; a resumed run matches a straight one."""
    data = {**tiny_data, **copy.deepcopy(FEEDBACK)}
    data["behaviour"]["events"]["jaywalking"] = {"rate": 0.05, "min_age": 0}
    data["sensors"]["cameras"]["events"] = ["red_light", "jaywalking"]
    data["sensors"]["police"] = {"events": ["jaywalking"], "coverage": 0.3, "reallocate": {
        "every_days": 2, "from": ["cameras", "police"], "units": 5, "unit_coverage": 0.2,
        "prior": 1, "weighting": "inverse_coverage"}}
    sim = engine.build(build_scenario(data))
    straight = engine.run(sim)
    half = engine.run(sim, until=33)
    resumed = engine.run(sim, engine.State.restore(half.snapshot(), sim))
    assert resumed.fingerprint() == straight.fingerprint()
    cov = straight.sensors.coverage[1]
    assert set(np.round(cov / 0.2).tolist()) <= set(range(6)) and cov.sum() <= 1.0 + 1e-12
