"""The fast kernels give exactly what their plain definitions give: behave's events, observe's
statuses, tallies and columns, and the daily sum, median and nonzero count.

Each reference below is the straightforward per-citizen (or per-event) loop the kernel was
first written as, run in Python on small inputs; the kernels must match it bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from conftest import build_scenario

from panopticon import engine
from panopticon.behaviour import CHUNK, MAX_EVENTS_PER_DAY, behave, totals
from panopticon.kernels.random import poisson_count
from panopticon.kernels.sensing import pick
from panopticon.metrics.daily import sum_and_median, sum_median_nonzero
from panopticon.rng import Stage, stream_key, uniform
from panopticon.sensors import MISATTRIBUTED, NO_ACTOR, NOT_OBSERVED, OBSERVED, observe


def _reference_behave(seed: int, day: int, rates: np.ndarray, total: np.ndarray,
                      p0: np.ndarray) -> tuple[list, list, list]:
    """Count from the uniform of counter i << 8 (the Poisson CDF at 0, 1 and 2, worked out
    from P(0) as the inversion does, else the full inversion);
    the k-th event's type from the uniform of (i << 8) + k + 1: the number of cumulative
    rates at or below it, stepped back over zero-rate types."""
    key = stream_key(seed, Stage.BEHAVE, day)
    citizen, event, seq = [], [], []
    for i in range(len(rates)):
        u = uniform(key, np.uint64(i) << np.uint64(8))
        cdf, p = [p0[i]], p0[i]
        for c in (1, 2):
            p *= total[i] / c
            cdf.append(cdf[-1] + p)
        k = sum(int(u >= cdf[c]) for c in range(3))
        if k == 3:
            k = poisson_count(u, p0[i], total[i], MAX_EVENTS_PER_DAY)
        for j in range(k):
            x = uniform(key, (np.uint64(i) << np.uint64(8)) + np.uint64(j + 1)) * total[i]
            t, acc = 0, 0.0
            for c in range(rates.shape[1] - 1):
                acc += rates[i, c]
                t += int(acc <= x)
            while rates[i, t] == 0.0 and t > 0:
                t -= 1
            citizen.append(i)
            event.append(t)
            seq.append(j)
    return citizen, event, seq


def _awkward_rates(n: int, t_count: int, rng: np.random.Generator) -> np.ndarray:
    """Rates with zero columns, zero citizens and heavy citizens (counts of 3 and more)."""
    rates = rng.uniform(0.0, 0.3, (n, t_count))
    rates[rng.random((n, t_count)) < 0.2] = 0.0
    rates[rng.random(n) < 0.05] = 0.0
    heavy = rng.random(n) < 0.05
    rates[heavy] *= rng.uniform(5, 15, (int(heavy.sum()), 1))
    if t_count > 1:
        rates[rng.random(n) < 0.1, -1] = 0.0  # rounding may reach a zero-rate last type
    return rates


@pytest.mark.parametrize("t_count", [1, 2, 4, 7])
def test_behave_matches_the_per_citizen_definition(t_count):
    """Several chunks (n > 2 * CHUNK), awkward rates, a few days; one and two threads alike."""
    rng = np.random.default_rng(t_count)
    n = 2 * CHUNK + 517
    rates = _awkward_rates(n, t_count, rng)
    total, p0 = np.empty(n), np.empty(n)
    totals(rates, total, p0)
    before = numba.get_num_threads()
    try:
        for day in range(3):
            want = _reference_behave(11, day, rates, total, p0)
            for threads in {1, min(2, numba.config.NUMBA_NUM_THREADS)}:
                numba.set_num_threads(threads)
                got = behave(11, day, rates, total, p0)
                assert got.citizen.dtype == np.int32 and got.event.dtype == np.int16
                assert got.seq.dtype == np.int32
                for column, expected in zip((got.citizen, got.event, got.seq), want, strict=True):
                    np.testing.assert_array_equal(column, expected)
    finally:
        numba.set_num_threads(before)


def test_behave_with_no_citizens():
    true = behave(1, 0, np.zeros((0, 3)), np.zeros(0), np.zeros(0))
    assert len(true) == 0 and true.citizen.dtype == np.int32


def _reference_observe(seed, day, true, model, region, abroad):
    """Each true event in order: missed, seen on its actor, or pinned on someone else."""
    key = stream_key(seed, Stage.OBSERVE, day)
    t_count = len(model.source_of_event)
    tally = np.zeros((5, t_count), np.int64)
    status, columns = [], []
    for e in range(len(true)):
        i, t, q = int(true.citizen[e]), int(true.event[e]), int(true.seq[e])
        s = int(model.source_of_event[t])
        tally[0, t] += 1
        c = (np.uint64(i) << np.uint64(10)) + (np.uint64(q) << np.uint64(2))
        if s < 0 or abroad[i] or uniform(key, c) >= model.detect[s, region[i]]:
            status.append(NOT_OBSERVED)
            tally[2, t] += 1
            continue
        j = i
        if model.misattribution[s] > 0.0 and (
                uniform(key, c + np.uint64(1)) < model.misattribution[s]):
            p = pick(model.victim_cdf[s], uniform(key, c + np.uint64(2)))
            first, size = model.profile_starts[p], model.profile_starts[p + 1] - model.profile_starts[p]
            k = int(uniform(key, c + np.uint64(3)) * size)
            j = int(model.profile_members[first + k])
            if j == i and size > 1:
                j = int(model.profile_members[first + (k + 1) % size])
        status.append(OBSERVED if j == i else MISATTRIBUTED)
        tally[1 if j == i else 3, t] += 1
        tally[4, t] += j != i
        columns.append((j, t, s, j == i, i))
    return np.asarray(status, np.int8), tally, columns


def test_observe_matches_the_per_event_definition():
    """Misses, false matches, citizens abroad and an event no source sees; then the phantoms."""
    spec = build_scenario({
        "schema_version": 1, "name": "sensors", "run": {"citizens": 6000, "days": 3, "seed": 5},
        "behaviour": {"events": {"red_light": {"rate": 0.3, "min_age": 0},
                                 "late_loan_payment": {"rate": 0.2, "min_age": 0},
                                 "volunteering": {"rate": 0.2, "min_age": 0}}},
        "sensors": {"cameras": {"events": ["red_light"], "detection": 0.6, "misattribution": 0.3,
                                "phantom_rate": 0.01},
                    "payments": {"events": ["late_loan_payment"], "detection": 0.9}},
        "policy": {"name": "none", "tiers": [{"name": "all"}]}})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    pop = sim.society.population
    abroad = np.random.default_rng(3).random(sim.n) < 0.1
    for day in range(3):
        true = behave(sim.seed, day, state.rates, state.total, state.p0)
        obs, status, tally = observe(sim.seed, day, true, sim.sensors, pop.region, abroad)
        want_status, want_tally, columns = _reference_observe(sim.seed, day, true, sim.sensors,
                                                              pop.region, abroad)
        assert (want_status == MISATTRIBUTED).any() and (want_status == NOT_OBSERVED).any()
        np.testing.assert_array_equal(status, want_status)
        m = len(columns)
        phantom = ~obs.is_true[m:]
        assert phantom.all() and (obs.true_actor[m:] == NO_ACTOR).all()
        want_tally[4] += np.bincount(obs.event[m:], minlength=tally.shape[1])
        np.testing.assert_array_equal(tally, want_tally)
        for k, name in enumerate(("citizen", "event", "source", "is_true", "true_actor")):
            np.testing.assert_array_equal(getattr(obs, name)[:m], [col[k] for col in columns])


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001, 50_000])
def test_sum_median_nonzero_equals_numpy(n):
    rng = np.random.default_rng(n)
    cases = [rng.integers(-10**6, 10**6, n), rng.integers(0, 3, n),
             rng.integers(-2**52, 2**52, n),
             # two far clusters: the middle ranks in different buckets, empty ones between
             np.where(np.arange(n) < n // 2, rng.integers(0, 5, n), rng.integers(10**9, 10**9 + 5, n))]
    for x in cases:
        x = x.astype(np.int64)
        y = np.where(rng.random(n) < 0.3, x, 0)
        total, median, nonzero = sum_median_nonzero(x, y)
        assert total == int(x.sum()) and median == float(np.median(x))
        assert nonzero == int(np.count_nonzero(y))
        assert sum_and_median(x) == (total, median)


def test_sum_median_nonzero_needs_equal_lengths():
    with pytest.raises(ValueError):
        sum_median_nonzero(np.zeros(3, np.int64), np.zeros(2, np.int64))
