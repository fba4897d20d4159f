"""Behave and observe: Poisson true events, deterrence, and sensors' misses, false matches and phantoms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import build_scenario

from panopticon import engine
from panopticon.behaviour import Deterrence, behave, initial_rates, respond, totals
from panopticon.scenario import DeterrenceSpec
from panopticon.sensors import MISATTRIBUTED, NO_ACTOR, NOT_OBSERVED, OBSERVED, observe
from panopticon.society import Population


def _totals(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total, p0 = np.empty(len(rates)), np.empty(len(rates))
    totals(rates, total, p0)
    return total, p0


def _scenario(n: int, sensors: dict, events: dict, seed: int, society: dict | None = None):
    """A scenario with only the given events and sensors, no rules (so nothing feeds back)."""
    data = {"schema_version": 1, "name": "sensors", "run": {"citizens": n, "days": 5, "seed": seed},
            "behaviour": {"events": events}, "sensors": sensors,
            "policy": {"name": "none", "tiers": [{"name": "all"}]}}
    if society:
        data["society"] = society
    return build_scenario(data)


def _days(spec, days: int):
    """(sim, [(true events, observations, status)] for each day) for a scenario."""
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    out = []
    for d in range(days):
        true = behave(sim.seed, d, state.rates, state.total, state.p0)
        obs, status, _ = observe(sim.seed, d, true, sim.sensors, sim.society.population.region,
                                 sim.society.population.abroad)
        out.append((true, obs, status))
    return sim, out


# ----------------------------------------------------------------- behave


def test_event_counts_are_poisson_with_the_total_rate(seed):
    """Per citizen-day the event count is Poisson(sum of rates): with 200k citizens at rate 0.5 the mean
    and variance are 0.5 within 5 s.e. (s.e. 0.0016 and 0.0022), and P(K=k), k=0..3, match the pmf
    within 5 binomial s.e."""
    n = 200_000
    rates = np.tile([0.1, 0.15, 0.25], (n, 1))
    total, cdf = _totals(rates)
    true = behave(seed, 0, rates, total, cdf)
    k = np.bincount(true.citizen, minlength=n)
    lam = 0.5
    assert abs(k.mean() - lam) < 5 * math.sqrt(lam / n)
    assert abs(k.var() - lam) < 5 * math.sqrt((lam * (1 + 3 * lam) - lam**2) / n)
    for j in range(4):
        p = math.exp(-lam) * lam**j / math.factorial(j)
        assert abs(np.mean(k == j) - p) < 5 * math.sqrt(p * (1 - p) / n), j


def test_event_counts_follow_each_citizens_own_rate(seed):
    """Citizens with different rates (0.05, 0.5, 2, 6 per day) each get Poisson counts of their own mean
    (50k citizens each: tolerance 5 s.e. = 5*sqrt(rate/50k))."""
    levels = np.array([0.05, 0.5, 2.0, 6.0])
    n = 200_000
    rate = levels[np.arange(n) % 4]
    rates = np.stack([rate * 0.5, rate * 0.5], axis=1)
    total, cdf = _totals(rates)
    true = behave(seed, 3, rates, total, cdf)
    k = np.bincount(true.citizen, minlength=n)
    for j, lam in enumerate(levels):
        sel = k[j::4]
        assert abs(sel.mean() - lam) < 5 * math.sqrt(lam / len(sel)), lam
        assert abs(sel.var() / lam - 1) < 0.1, lam


def test_event_types_are_shared_in_proportion_to_rates(seed):
    """Each event picks its type in proportion to the citizen's rates: shares 0.2/0.3/0.5 within 5 s.e.
    (about 100k events: s.e. <= 0.0016), and a zero-rate type never occurs."""
    n = 200_000
    rates = np.tile([0.1, 0.0, 0.15, 0.25], (n, 1))
    total, cdf = _totals(rates)
    true = behave(seed, 1, rates, total, cdf)
    shares = np.bincount(true.event, minlength=4) / len(true)
    assert shares[1] == 0
    for t, want in ((0, 0.2), (2, 0.3), (3, 0.5)):
        assert abs(shares[t] - want) < 5 * math.sqrt(want * (1 - want) / len(true))


def test_true_events_are_in_citizen_order_with_sequence_numbers(seed):
    """True events come in citizen order; each citizen's events are numbered 0..k-1 by ``seq``."""
    rates = np.full((5000, 2), 0.7)
    total, cdf = _totals(rates)
    true = behave(seed, 2, rates, total, cdf)
    assert np.all(np.diff(true.citizen) >= 0)
    starts = np.r_[0, np.flatnonzero(np.diff(true.citizen)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(true)]))
    assert np.array_equal(true.seq, np.arange(len(true)) - first)


def test_behave_is_keyed_by_seed_and_day(seed):
    """The same (seed, day) gives the same events; another day or seed gives different ones."""
    rates = np.full((20_000, 3), 0.1)
    total, cdf = _totals(rates)
    a = behave(seed, 4, rates, total, cdf)
    b = behave(seed, 4, rates, total, cdf)
    assert a.citizen.tobytes() == b.citizen.tobytes() and a.event.tobytes() == b.event.tobytes()
    for other in (behave(seed, 5, rates, total, cdf), behave(seed + 1, 4, rates, total, cdf)):
        assert other.citizen.tobytes() != a.citizen.tobytes()


def test_no_rate_means_no_events(seed):
    """Citizens whose rates are all zero never do anything."""
    rates = np.zeros((1000, 3))
    rates[::2] = 0.3
    total, cdf = _totals(rates)
    true = behave(seed, 0, rates, total, cdf)
    assert len(true) > 0 and np.all(true.citizen % 2 == 0)


def test_initial_rates_apply_multipliers_bands_and_min_age():
    """rate x multipliers[attr][category] x band factor; 0 below min_age; a band edge belongs to the band
    above it (hand-worked on four citizens)."""
    spec = _scenario(4, {}, {
        "red_light": {"rate": 0.1, "multipliers": {"sex": {"male": 1.5}, "region": {"rural": 0.5}},
                      "min_age": 16},
        "late_loan_payment": {"rate": 0.02,
                              "bands": {"income": {"edges": [1500, 6000], "factors": [2.0, 1.0, 0.5]}}},
    }, seed=1)
    labels = {"sex": ("female", "male"), "region": ("urban", "rural"), "group": ("majority",),
              "residency": ("citizen",), "occupation": ("worker", "minor", "retired")}
    u8 = np.uint8
    pop = Population(
        age=np.array([30, 15, 40, 70], u8), sex=np.array([1, 1, 0, 1], u8),
        region=np.array([1, 0, 0, 0], u8), group=np.zeros(4, u8), residency=np.zeros(4, u8),
        occupation=np.array([0, 1, 0, 2], u8),
        income=np.array([1500.0, 0.0, 1499.0, 6000.0], np.float32), rank=np.zeros(4, u8),
        household=np.arange(4, dtype=np.int32), partner=np.full(4, -1, np.int32),
        abroad=np.zeros(4, bool), children=np.zeros(4, u8), labels=labels)
    events = ["late_loan_payment", "red_light", "volunteering"]
    rates = initial_rates(spec, events, pop, seed=1)
    # red_light: male rural 0.1*1.5*0.5; male but 15 (< 16); female urban 0.1; male urban 0.15
    np.testing.assert_allclose(rates[:, 1], [0.075, 0.0, 0.1, 0.15])
    # late_loan_payment: income 1500 -> band 1 (x1), 0 but age 15 < default min_age 16, 1499 -> x2,
    # 6000 -> x0.5
    np.testing.assert_allclose(rates[:, 0], [0.02, 0.0, 0.04, 0.01])
    # volunteering has no behaviour entry here: nobody does it
    assert np.all(rates[:, 2] == 0)


# ----------------------------------------------------------------- deterrence


def test_deterrence_scales_only_named_events_of_citizens_in_named_tiers():
    """Deterrence multiplies only the named events' rates, only for citizens in the named tiers, and
    refreshes total and P(no event) (hand-worked)."""
    tiers, events = ["A", "B", "C"], ["e0", "e1", "e2"]
    rule = Deterrence.compile(DeterrenceSpec(tiers=["B", "C"], events=["e1", "e2"], factor=0.5),
                              tiers, events)
    other = Deterrence.compile(DeterrenceSpec(tiers=["C"], events=["e0"], factor=0.1), tiers, events)
    rates = np.array([[0.2, 0.4, 0.8]] * 4)
    total, cdf = _totals(rates)
    tier = np.array([0, 1, 2, 1], dtype=np.uint8)
    respond([rule, other], tier, rates, total, cdf)
    want = np.array([[0.2, 0.4, 0.8],     # tier A: untouched
                     [0.2, 0.2, 0.4],     # tier B: e1, e2 halved
                     [0.02, 0.2, 0.4],    # tier C: e1, e2 halved, and e0 x 0.1
                     [0.2, 0.2, 0.4]])
    np.testing.assert_allclose(rates, want, rtol=1e-15)
    np.testing.assert_allclose(total, want.sum(axis=1), rtol=1e-15)
    np.testing.assert_allclose(cdf, np.exp(-want.sum(axis=1)), rtol=1e-15)
    # applied again the next day: compounding
    respond([rule], tier, rates, total, cdf)
    assert rates[1, 1] == pytest.approx(0.1) and rates[0, 1] == 0.4


def test_deterrence_in_engine_touches_only_citizens_in_tier(tiny):
    """In a run, a citizen who was never in a deterred tier keeps every initial rate exactly."""
    sim = engine.build(tiny)
    state = engine.initial_state(sim)
    start = state.rates.rows()  # (n, T), a copy
    ever_c = np.zeros(sim.n, bool)
    c = sim.policy.tier_names.index("C")
    while state.day < 14:
        engine.step(sim, state)
        ever_c |= state.tier == c
    assert ever_c.any() and not ever_c.all()
    rates = state.rates.rows()
    assert np.array_equal(rates[~ever_c], start[~ever_c])
    red = list(sim.events).index("red_light")
    changed = np.any(rates != start, axis=1)
    assert np.array_equal(changed, ever_c & (start[:, red] > 0))
    others = [t for t in range(len(sim.events)) if t != red]
    assert np.array_equal(rates[:, others], start[:, others])


# ----------------------------------------------------------------- observe


def test_observation_probability_is_coverage_times_detection(seed):
    """A true event in region r is observed with probability coverage[r] * detection (0.6*0.5 urban,
    0.3*0.5 rural); ~40k urban and ~22k rural events: s.e. <= 0.0025, tolerance 0.0125 (5 s.e.).
    An event type no source watches is never observed."""
    spec = _scenario(
        50_000,
        {"cameras": {"events": ["red_light"], "coverage": {"urban": 0.6, "rural": 0.3},
                     "detection": 0.5}},
        {"red_light": {"rate": 0.25, "min_age": 0}, "jaywalking": {"rate": 0.1, "min_age": 0}},
        seed)
    sim, days = _days(spec, 5)
    region = sim.society.population.region
    red = list(sim.events).index("red_light")
    for r, want in ((0, 0.3), (1, 0.15)):
        seen = total = 0
        for true, _, status in days:
            mask = (true.event == red) & (region[true.citizen] == r)
            seen += np.count_nonzero(status[mask] != NOT_OBSERVED)
            total += np.count_nonzero(mask)
        assert total > 20_000
        assert abs(seen / total - want) < 5 * math.sqrt(want * (1 - want) / total), r
    for true, obs, status in days:
        assert np.all(status[true.event != red] == NOT_OBSERVED)
        assert np.all(obs.event == red)


def test_misattribution_victims_follow_false_match_multipliers(seed):
    """Misattributed observations land on profiles in proportion to (multiplier x size): per capita,
    minority men get 10x, majority women 2x and minority women 20x what majority men get; a share
    `misattribution` (0.4) of observed events is misattributed.

    ~25k false matches; the smallest cell (majority men) gets ~750, so a ratio has a relative s.e.
    of ~3.8% and is checked to 20% (> 5 s.e.); the misattribution share to 5 binomial s.e.
    """
    spec = _scenario(
        50_000,
        {"cameras": {"events": ["red_light"], "misattribution": 0.4,
                     "false_match_multipliers": {"group": {"minority": 10}, "sex": {"female": 2}}}},
        {"red_light": {"rate": 0.25, "min_age": 0}}, seed,
        society={"group": {"values": ["majority", "minority"], "weights": [0.5, 0.5]}})
    sim, days = _days(spec, 5)
    pop = sim.society.population
    false_named = np.concatenate([obs.citizen[~obs.is_true] for _, obs, _ in days])
    status = np.concatenate([s for _, _, s in days])
    observed = np.count_nonzero(status != NOT_OBSERVED)
    share = np.count_nonzero(status == MISATTRIBUTED) / observed
    assert abs(share - 0.4) < 5 * math.sqrt(0.4 * 0.6 / observed)
    cell = pop.group.astype(np.int64) * 2 + pop.sex  # (majority, female)=0, (maj, male)=1, (min, f)=2, ...
    per_capita = np.bincount(cell[false_named], minlength=4) / np.bincount(cell, minlength=4)
    base = per_capita[1]  # majority men
    for c, want in ((0, 2.0), (2, 20.0), (3, 10.0)):
        assert per_capita[c] / base == pytest.approx(want, rel=0.2), c


def test_phantoms_scale_with_rate_coverage_and_multipliers(seed):
    """Phantoms per citizen-day = phantom_rate x coverage[region] x multipliers, summed over sources, and a
    phantom's source is drawn in proportion to each source's rate (0.02 vs 0.06 -> 1/4 vs 3/4); the
    phantom's event is uniform over the source's phantom_events. The smallest cell holds ~1.4k
    phantoms (relative s.e. 2.7%): tolerance 15%; source share 0.25 +- 0.01 (s.e. 0.0025)."""
    spec = _scenario(
        40_000,
        {"cameras": {"events": ["red_light"], "coverage": {"urban": 1.0, "rural": 0.5},
                     "phantom_rate": 0.02, "phantom_events": ["red_light", "jaywalking"],
                     "false_match_multipliers": {"group": {"minority": 4}}},
         "payments": {"events": ["late_loan_payment"], "phantom_rate": 0.06,
                      "coverage": {"urban": 1.0, "rural": 0.5},
                      "false_match_multipliers": {"group": {"minority": 4}}}},
        {}, seed, society={"group": {"values": ["majority", "minority"], "weights": [0.5, 0.5]}})
    sim, days = _days(spec, 5)
    pop = sim.society.population
    for true, obs, _ in days:
        assert len(true) == 0
        assert not obs.is_true.any()
        assert np.all(obs.true_actor == NO_ACTOR)
    named = np.concatenate([obs.citizen for _, obs, _ in days])
    cell = pop.group.astype(np.int64) * 2 + pop.region
    per_capita = np.bincount(cell[named], minlength=4) / np.bincount(cell, minlength=4) / 5
    # (majority, urban), (majority, rural), (minority, urban), (minority, rural)
    want = 0.08 * np.array([1.0, 0.5, 4.0, 2.0])
    np.testing.assert_allclose(per_capita, want, rtol=0.15)
    source = np.concatenate([obs.source for _, obs, _ in days])
    event = np.concatenate([obs.event for _, obs, _ in days])
    cams = sim.sensors.names.index("cameras")
    assert np.mean(source == cams) == pytest.approx(0.25, abs=0.01)
    ev = list(sim.events)
    cam_events = event[source == cams]
    assert set(np.unique(cam_events)) == {ev.index("red_light"), ev.index("jaywalking")}
    assert np.mean(cam_events == ev.index("red_light")) == pytest.approx(0.5, abs=0.03)  # s.e. 0.0055
    assert np.all(event[source != cams] == ev.index("late_loan_payment"))


@pytest.mark.parametrize("run_seed", [1, 2, 3])
def test_observation_truth_and_actor_are_consistent(run_seed):
    """True observations name their actor; misattributed ones have is_true False and a true actor other
    than the citizen named; phantoms have true_actor -1 and is_true False; sources match event types."""
    spec = build_scenario(run={"citizens": 3000, "seed": run_seed}, sensors={
        "cameras": {"misattribution": 0.3, "phantom_rate": 0.01}})
    sim, days = _days(spec, 6)
    n_mis = n_phantom = 0
    for true, obs, status in days:
        n_seen = np.count_nonzero(status != NOT_OBSERVED)
        real, phantom = slice(0, n_seen), slice(n_seen, len(obs))
        st = status[status != NOT_OBSERVED]
        assert np.array_equal(obs.is_true[real], st == OBSERVED)
        assert np.array_equal(obs.true_actor[real], true.citizen[status != NOT_OBSERVED])
        ok = st == OBSERVED
        assert np.array_equal(obs.citizen[real][ok], obs.true_actor[real][ok])
        mis = st == MISATTRIBUTED
        assert not obs.is_true[real][mis].any()
        assert np.all(obs.citizen[real][mis] != obs.true_actor[real][mis])
        assert np.all(obs.true_actor[real] >= 0)
        assert np.all(obs.true_actor[phantom] == NO_ACTOR) and not obs.is_true[phantom].any()
        assert np.array_equal(obs.source[real], sim.sensors.source_of_event[obs.event[real]])
        assert np.all((obs.citizen >= 0) & (obs.citizen < sim.n))
        n_mis += int(mis.sum())
        n_phantom += len(obs) - n_seen
    assert n_mis > 0 and n_phantom > 0
