"""Confidence intervals (metrics.intervals) and the four-fifths test built on them: values
worked out by hand, properties checked with hypothesis, and one statistical claim per seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import FakeRun, build_scenario
from hypothesis import given, settings
from hypothesis import strategies as st

import panopticon as pc
from panopticon.metrics import intervals as iv
from panopticon.metrics import run as m

Z = 1.959963984540054


# ------------------------------------------------------------------------ by hand

def test_z_and_t_quantiles():
    assert iv.z_value() == pytest.approx(Z)
    # Student's t 97.5% quantiles from any printed table
    for df, t in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (120, 1.980)):
        assert iv.t_quantile(0.975, df) == pytest.approx(t, abs=5e-4)
    assert iv.t_quantile(0.025, 4) == pytest.approx(-2.776, abs=5e-4)


def test_betainc_closed_forms():
    # I_x(1, 1) = x; I_x(a, 1) = x^a; I_0.5(a, a) = 1/2; I_x(1, b) = 1 - (1 - x)^b
    for x in (0.0, 0.1, 0.37, 0.9, 1.0):
        assert iv.betainc(1, 1, x) == pytest.approx(x)
        assert iv.betainc(3, 1, x) == pytest.approx(x ** 3)
        assert iv.betainc(1, 4, x) == pytest.approx(1 - (1 - x) ** 4)
    assert iv.betainc(7.5, 7.5, 0.5) == pytest.approx(0.5)


def test_wilson_5_of_20_by_hand():
    """p = 0.25, z²/n = 3.841459 / 20 = 0.192073; centre = (0.25 + 0.096036) / 1.192073 =
    0.290281; half = 1.959964 · sqrt(0.25 · 0.75 / 20 + 3.841459 / 1600) / 1.192073 =
    1.959964 · sqrt(0.009375 + 0.002401) / 1.192073 = 0.178420 -> (0.111862, 0.468701)."""
    low, high = iv.wilson(5, 20)
    assert low == pytest.approx(0.111862, abs=1e-6)
    assert high == pytest.approx(0.468701, abs=1e-6)
    # 0 of 20: centre = half = 0.096036 / 1.192073 -> (0, 0.161125); 20 of 20 mirrors it
    assert iv.wilson(0, 20) == pytest.approx((0.0, 0.161125), abs=1e-6)
    assert iv.wilson(20, 20) == pytest.approx((1 - 0.161125, 1.0), abs=1e-6)


def test_clopper_pearson_by_hand():
    # 0 of n: the upper bound solves (1 - p)^n = 0.025: 1 - 0.025^(1/20) = 0.168433
    assert iv.clopper_pearson(0, 20) == pytest.approx((0.0, 1 - 0.025 ** (1 / 20)))
    assert iv.clopper_pearson(20, 20) == pytest.approx((0.025 ** (1 / 20), 1.0))
    # 5 of 20: Beta(5, 16) 2.5% and Beta(6, 15) 97.5% quantiles (any binomial table)
    assert iv.clopper_pearson(5, 20) == pytest.approx((0.0866, 0.4910), abs=1e-4)
    # the exact interval is the wider (conservative) one here
    w, e = iv.wilson(5, 20), iv.clopper_pearson(5, 20)
    assert e[0] < w[0] and e[1] > w[1]
    assert iv.rate(5, 20, method="exact") == (0.25, *e)
    with pytest.raises(ValueError, match="method"):
        iv.rate(5, 20, method="wald")


def test_intervals_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    for x, n in ((1, 7), (13, 40), (250, 100_000)):
        low, high = iv.clopper_pearson(x, n)
        assert low == pytest.approx(stats.beta.ppf(0.025, x, n - x + 1), rel=1e-9)
        assert high == pytest.approx(stats.beta.ppf(0.975, x + 1, n - x), rel=1e-9)
    for df in (1, 3, 7.5, 40):
        assert iv.t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)


def test_katz_ratio_by_hand():
    """The 2x2 table 30 of 200 harmed (group) against 15 of 300 (reference):
    RR = 0.15 / 0.05 = 3; SE = sqrt(1/30 - 1/200 + 1/15 - 1/300) = sqrt(0.091667) = 0.302765;
    z · SE = 0.593409; e^0.593409 = 1.810148 -> (3 / 1.810148, 3 · 1.810148) = (1.6573, 5.4304).
    """
    ratio, low, high = iv.katz_ratio(30, 200, 15, 300)
    assert ratio == pytest.approx(3.0)
    assert (low, high) == pytest.approx((1.657323, 5.430444), abs=1e-6)
    # the other way round is the reciprocal
    back = iv.katz_ratio(15, 300, 30, 200)
    assert back == pytest.approx((1 / 3, 1 / high, 1 / low))


def test_a_zero_count_never_gives_an_infinite_ratio():
    """2 of 5 against 0 of 5: undefined ratio, lower bound from the table with 0.5 added to
    each cell: (2.5/6) / (0.5/6) = 5, SE = sqrt(1/2.5 - 1/6 + 1/0.5 - 1/6) = 1.437591,
    5 · e^(-1.959964 · 1.437591) = 0.298738; no upper bound."""
    assert iv.katz_ratio(2, 5, 0, 5) == pytest.approx((None, 0.298738, None), abs=1e-6)
    ratio, low, high = iv.katz_ratio(0, 5, 2, 5)
    assert (ratio, low) == (0.0, 0.0) and high == pytest.approx(1 / 0.298738, rel=1e-5)
    assert iv.katz_ratio(0, 5, 0, 9) == (None, None, None)
    # one event among 48 against none among 5,000: undefined, with a finite lower bound
    ratio, low, high = iv.katz_ratio(1, 48, 0, 5000)
    assert ratio is None and high is None and 1 < low < math.inf


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        iv.wilson(3, 2)
    with pytest.raises(ValueError):
        iv.wilson(0, 0)
    with pytest.raises(ValueError):
        iv.z_value(1.5)


def test_mean_interval_by_hand():
    # 1, 2, 3 unbounded: 2 ± 4.302653 · 1 / sqrt(3) = 2 ± 2.484138
    t = iv.mean_interval([1, 2, 3])
    assert t["method"] == "t" and (t["ci_low"], t["ci_high"]) == pytest.approx(
        (2 - 2.484138, 2 + 2.484138), abs=1e-6)
    # shares 0.1, 0.2, 0.05: mean 0.116667, sd 0.076376, s = 0.044096, t·s = 0.189729;
    # logit(0.116667) = -2.024382, d = 0.189729 / (0.116667 · 0.883333) = 1.841038;
    # expit(-3.865419) = 0.020524, expit(-0.183344) = 0.454292
    s = iv.mean_interval([0.1, 0.2, 0.05], 0.0, 1.0)
    assert s["method"] == "logit"
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((0.020524, 0.454292), abs=2e-6)
    # counts 0, 0, 10: mean 3.3333, s = 3.3333, t·s/mean = 4.302653:
    # 3.3333 · e^(∓4.302653) = (0.045109, 246.32) where the t-interval is (-11.0, 17.7)
    c = iv.mean_interval([0, 0, 10], 0.0, None)
    assert c["method"] == "log"
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((0.045109, 246.3185), rel=1e-5)
    # all at the bound: [0, 0]; one value: no interval; outside the bounds: plain t
    assert iv.mean_interval([0, 0, 0], 0.0, 1.0)["ci_low"] == 0.0
    assert math.isnan(iv.mean_interval([0.3], 0.0, 1.0)["ci_low"])
    assert iv.mean_interval([-0.5, 0.5], 0.0, 1.0)["method"] == "t"
    # only an upper bound: the mirror image of a lower one
    up = iv.mean_interval([1, 1, -9], None, 1.0)
    assert (up["ci_low"], up["ci_high"]) == pytest.approx((1 - 246.3185, 1 - 0.045109),
                                                          rel=1e-5)


# -------------------------------------------------------------------- properties

counts = st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_rate_intervals_contain_the_rate_within_0_and_1(xn, level):
    x, n = xn
    for low, high in (iv.wilson(x, n, level), iv.clopper_pearson(x, n, level)):
        assert 0.0 <= low <= x / n <= high <= 1.0


@given(counts, st.integers(2, 20))
def test_wilson_width_shrinks_with_n(xn, k):
    x, n = xn
    low, high = iv.wilson(x, n)
    low_k, high_k = iv.wilson(k * x, k * n)
    assert high_k - low_k < high - low


@settings(max_examples=60)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.integers(2, 20))
def test_clopper_pearson_width_shrinks_with_n(xn, k):
    x, n = xn
    low, high = iv.clopper_pearson(x, n)
    low_k, high_k = iv.clopper_pearson(k * x, k * n)
    assert high_k - low_k < high - low


@given(counts, counts)
def test_katz_interval_contains_the_ratio_and_is_never_infinite(a, b):
    ratio, low, high = iv.katz_ratio(*a, *b)
    for v in (ratio, low, high):
        assert v is None or (math.isfinite(v) and v >= 0)
    if ratio is not None:
        assert (low is None or low <= ratio + 1e-12) and (high is None or ratio <= high * (
            1 + 1e-12))
    if a[0] > 0 and b[0] > 0:
        assert ratio is not None and low is not None and high is not None
        assert math.log(ratio) - math.log(low) == pytest.approx(
            math.log(high) - math.log(ratio))


values = st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=12)


@given(values)
def test_mean_interval_of_shares_stays_in_0_1_and_contains_the_mean(xs):
    out = iv.mean_interval(xs, 0.0, 1.0)
    assert 0.0 <= out["ci_low"] <= out["mean"] <= out["ci_high"] <= 1.0


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=12))
def test_mean_interval_of_counts_is_never_negative_and_contains_the_mean(xs):
    out = iv.mean_interval(xs, 0.0, None)
    assert 0.0 <= out["ci_low"] <= out["mean"] <= out["ci_high"]


@given(st.lists(st.floats(0.01, 0.99, allow_nan=False), min_size=3, max_size=8,
                unique=True))
def test_mean_interval_shrinks_with_more_replicates(xs):
    one, two = iv.mean_interval(xs, 0.0, 1.0), iv.mean_interval(xs * 4, 0.0, 1.0)
    assert two["ci_high"] - two["ci_low"] < one["ci_high"] - one["ci_low"]


# ---------------------------------------------------------- the four-fifths test

def sizes_table(groups: dict[str, tuple[int, int]]) -> dict:
    """A citizens table: per group (citizens, of whom falsely named)."""
    group, ever = [], []
    for g, (n, x) in groups.items():
        group += [g] * n
        ever += [True] * x + [False] * (n - x)
    return {"citizen": list(range(len(group))), "social_group": group, "ever_false": ever}


def test_a_small_category_is_too_few_to_judge_not_flagged():
    """48 resident foreigners, 3 of them falsely named, against 5,000 citizens with none:
    no infinite ratio, no flag, 'too few to judge'."""
    citizens = sizes_table({"citizen": (5000, 0), "resident_foreigner": (48, 3)})
    citizens["residency"] = citizens.pop("social_group")
    got = m.disparate_impact(FakeRun(citizens=citizens), "residency")
    r = got["resident_foreigner"]["falsely_named"]
    assert r["status"] == m.TOO_FEW and not r["flag"]
    assert r["ratio"] is None and r["ratio_high"] is None and r["ratio_low"] > 0
    assert got["citizen"]["falsely_named"]["status"] == m.REFERENCE
    # with the thresholds lowered it is judged: flagged, as its lower bound is past 1.25
    judged = m.disparate_impact(FakeRun(citizens=citizens), "residency", min_citizens=10,
                                min_events=3)["resident_foreigner"]["falsely_named"]
    assert judged["flag"] and judged["ratio_low"] > 1.25 and judged["impact"] == 0.0


def test_the_flag_needs_the_interval_past_the_threshold():
    """Harm 30/200 against 15/300: ratio 3 with (1.66, 5.43) wholly above 1.25 -> flagged.
    Harm 20/200 against 15/300: ratio 2, Katz (1.05, 3.81) straddles 1.25 -> only 'below 4/5,
    CI includes 4/5'. 16/300 against 15/300: within."""
    counts = {"ref": (15, 300), "a": (30, 200), "b": (20, 200), "c": (16, 300)}
    size = {"ref": 300, "a": 200, "b": 200, "c": 300}
    got = m.compare_rates(counts, size, "harm")
    assert got["ref"]["status"] == m.REFERENCE
    a, b, c = got["a"], got["b"], got["c"]
    assert a["ratio"] == pytest.approx(3) and a["impact"] == pytest.approx(1 / 3)
    assert a["impact_high"] == pytest.approx(1 / 1.657323, rel=1e-6)
    assert a["flag"] and a["excludes"] and a["status"] == m.FLAGGED
    assert b["ratio"] == pytest.approx(2) and b["impact"] < m.FOUR_FIFTHS
    assert not b["flag"] and not b["excludes"] and b["status"] == m.UNCLEAR
    assert c["status"] == m.WITHIN and not c["flag"]
    assert a["rate"] == 0.15 and (a["low"], a["high"]) == pytest.approx(iv.wilson(30, 200))


def test_favourable_outcomes_flag_the_lower_rate():
    """Granted 50 of 100 against 90 of 100: impact 0.556, Katz SE = sqrt(1/50 - 1/100 +
    1/90 - 1/100) = 0.105409, interval 0.556 · e^(±0.206600) = (0.452, 0.683) < 0.8."""
    got = m.compare_rates({"x": (90, 100), "y": (50, 100)}, {"x": 100, "y": 100},
                          "favourable")
    y = got["y"]
    assert got["x"]["status"] == m.REFERENCE and y["reference"] == "x"
    assert y["impact"] == pytest.approx(5 / 9)
    assert (y["impact_low"], y["impact_high"]) == pytest.approx(
        (5 / 9 * math.exp(-Z * 0.105409), 5 / 9 * math.exp(Z * 0.105409)), rel=1e-5)
    assert y["flag"] and y["status"] == m.FLAGGED


def test_too_few_events_are_not_judged():
    # 2 events against 1 in 1,000 citizens each: 3 < 10 events
    got = m.compare_rates({"x": (1, 1000), "y": (2, 1000)}, {"x": 1000, "y": 1000}, "harm")
    assert got["y"]["status"] == m.TOO_FEW and got["y"]["ratio"] == pytest.approx(2)
    assert m.compare_rates({"x": (1, 1000), "y": (2, 1000)}, {"x": 1000, "y": 1000}, "harm",
                           min_events=3)["y"]["status"] == m.UNCLEAR


def test_no_reference_when_every_category_is_small():
    got = m.compare_rates({"x": (5, 50), "y": (9, 60)}, {"x": 50, "y": 60}, "harm")
    assert all(r["reference"] is None and r["status"] == m.TOO_FEW for r in got.values())


def test_equal_rates_are_rarely_flagged():
    """Two groups of 2,000 and 300 with the same 5% harm rate, 400 draws: a flag (whole
    interval past 1.25) should be rare, well under 5% (the 1.25 margin leaves room)."""
    rng = np.random.default_rng(20240611)
    flags = 0
    for _ in range(400):
        x1, x2 = rng.binomial(2000, 0.05), rng.binomial(300, 0.05)
        got = m.compare_rates({"a": (x1, 2000), "b": (x2, 300)}, {"a": 2000, "b": 300}, "harm")
        flags += any(r["flag"] for r in got.values())
    assert flags / 400 < 0.05


@pytest.mark.parametrize("multiplier, flagged", [(10, True), (1, False)])
def test_a_10x_false_match_multiplier_is_flagged_at_20k_citizens(multiplier, flagged):
    """The tiny scenario at 20,000 citizens: a minority matched falsely 10x as often is
    flagged for false naming, its ratio's interval excluding 1 (and 1.25); with equal
    multipliers nobody is flagged."""
    spec = build_scenario(run={"citizens": 20000, "days": 14, "seed": 7},
                          sensors={"cameras": {"false_match_multipliers": {
                              "group": {"minority": multiplier}}}})
    got = m.disparate_impact(pc.run(spec), "group")
    minority = got["minority"]["falsely_named"]
    assert minority["flag"] is flagged
    if flagged:
        assert minority["reference"] == "majority" and minority["ratio_low"] > 1.25
    else:
        assert not any(r["flag"] for row in got.values() for r in row.values()
                       if isinstance(r, dict))
