"""Counter-based random streams: range, NumPy/Numba agreement, chunking, independence, uniformity."""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from panopticon.rng import GOLDEN, MASK64, Stage, _mix_int, bits, mix64, stream_key, uniform, uniforms


@nb.njit(cache=False)
def _numba_uniforms(key, n, offset, stride, slot):
    out = np.empty(n)
    for i in range(n):
        c = np.uint64(offset + i) * np.uint64(stride) + np.uint64(slot)
        out[i] = uniform(key, c)
    return out


def _reference_uniform(key: int, counter: int) -> float:
    """The documented construction in plain Python integers: mix64(key + counter * GOLDEN) >> 11."""
    return (_mix_int((key + counter * int(GOLDEN)) & MASK64) >> 11) / 2.0**53


def test_mix64_is_splitmix64_finaliser():
    """mix64 is SplitMix64's finaliser: known value for 0 + GOLDEN (the first SplitMix64 output of seed 0)."""
    # SplitMix64 seeded with 0 first returns 0xE220A8397B1DCDAF (Vigna's reference implementation).
    assert int(mix64(np.uint64(0) + GOLDEN)) == 0xE220A8397B1DCDAF
    assert _mix_int(int(GOLDEN)) == 0xE220A8397B1DCDAF


def test_uniforms_lie_in_unit_interval():
    """Every uniform is a float64 in [0, 1), including at the counters that map to extreme bits."""
    key = stream_key(1, Stage.BENCHMARK)
    u = uniforms(key, 200_000)
    assert u.dtype == np.float64
    assert u.min() >= 0.0 and u.max() < 1.0
    # The largest possible 53-bit value still maps below 1.
    assert ((MASK64 >> 11) / 2.0**53) < 1.0


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), stage=st.sampled_from(list(Stage)), day=st.integers(0, 40_000),
       sub=st.integers(0, 1000), offset=st.integers(0, 2**40), stride=st.integers(1, 1024),
       slot=st.integers(0, 1023))
def test_numpy_and_numba_uniforms_agree_bit_for_bit(seed, stage, day, sub, offset, stride, slot):
    """Vectorised uniforms(), the scalar Numba uniform() and the plain-integer construction are identical."""
    key = stream_key(seed, stage, day, sub)
    n = 17
    vec = uniforms(key, n, offset=offset, stride=stride, slot=slot)
    jit = _numba_uniforms(key, n, offset, stride, slot)
    counters = [((offset + i) * stride + slot) & MASK64 for i in range(n)]
    ref = np.array([_reference_uniform(int(key), c) for c in counters])
    py_scalar = np.array([uniform(key, np.uint64(c)) for c in counters])
    assert vec.tobytes() == jit.tobytes() == ref.tobytes() == py_scalar.tobytes()
    assert [int(bits(key, np.uint64(c))) >> 11 for c in counters] == [int(x * 2**53) for x in ref]


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 3000), cuts=st.lists(st.integers(0, 3000), max_size=6),
       offset=st.integers(0, 2**32))
def test_chunked_draws_equal_one_draw(n, cuts, offset):
    """Uniforms for a counter range are the same drawn in one go or in chunks via ``offset``."""
    key = stream_key(3, Stage.BEHAVE, 5)
    whole = uniforms(key, n, offset=offset)
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    parts = [uniforms(key, b - a, offset=offset + a) for a, b in zip(bounds, bounds[1:], strict=False)]
    joined = np.concatenate(parts) if parts else np.empty(0)
    assert joined.tobytes() == whole.tobytes()


def test_stream_keys_differ_by_seed_stage_day_and_sub():
    """Changing any of seed, stage, day or sub gives a different key and an unrelated stream."""
    base = (11, Stage.OBSERVE, 3, 0)
    variants = [(12, Stage.OBSERVE, 3, 0), (11, Stage.PHANTOM, 3, 0), (11, Stage.OBSERVE, 4, 0),
                (11, Stage.OBSERVE, 3, 1), (11, Stage.BEHAVE, 3, 0), (0, Stage.OBSERVE, 3, 0)]
    keys = {int(stream_key(*base))} | {int(stream_key(*v)) for v in variants}
    assert len(keys) == 1 + len(variants)
    n = 10_000
    a = uniforms(stream_key(*base), n)
    for v in variants:
        b = uniforms(stream_key(*v), n)
        assert np.count_nonzero(a == b) == 0  # 53-bit values: a coincidence has odds ~1e-12
        # Unrelated streams: correlation within 5 standard errors (1/sqrt(n)) of 0.
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(n)


def test_stream_key_is_a_pure_function():
    """The same (seed, stage, day, sub) always gives the same key (no hidden state)."""
    k1 = stream_key(2**62 + 5, Stage.TIES, 365, 2)
    uniforms(k1, 1000)
    assert stream_key(2**62 + 5, Stage.TIES, 365, 2) == k1
    assert isinstance(k1, np.uint64)


def test_uniforms_pass_chi_square_on_100_bins():
    """Uniforms are uniform: chi-square over 100 equal bins for 1e6 draws (fixed seed) is below the
    0.999 quantile of chi2(99) (~148.2), and the mean and variance match 1/2 and 1/12 within 5 s.e."""
    n, k = 1_000_000, 100
    u = uniforms(stream_key(20240611, Stage.BENCHMARK, 0, 0), n)
    counts = np.bincount((u * k).astype(np.int64), minlength=k)
    expected = n / k
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 148.2
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    # Var of the sample variance of U(0,1) is (1/80 - 1/144) / n.
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt((1 / 80 - 1 / 144) / n)


def test_consecutive_uniforms_are_uncorrelated():
    """Neighbouring counters give uncorrelated draws (lag-1 correlation within 5/sqrt(n) of 0)."""
    n = 500_000
    u = uniforms(stream_key(99, Stage.SOCIETY, 0, 4), n)
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / math.sqrt(n)
    # Strided counters (as used for per-citizen slots) are just as independent.
    v = uniforms(stream_key(99, Stage.SOCIETY, 0, 4), n, stride=256, slot=1)
    assert abs(np.corrcoef(u, v)[0, 1]) < 5 / math.sqrt(n)
