"""Counter-based random numbers inside kernels: every draw is a pure function of a stream key
and a counter (see :mod:`panopticon.rng` for the streams and the vectorised NumPy draws).

The hash is SplitMix64's finaliser applied to a keyed Weyl sequence (Steele, Lea & Flood 2014):
``mix64(key + counter * GOLDEN)``. All arithmetic is on uint64 and wraps modulo 2**64.
"""

from __future__ import annotations

import numba as nb
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0


@nb.njit(inline="always", cache=True)
def mix64(z):
    """SplitMix64 finaliser: a bijective avalanche of a uint64 (scalar or array).

    Args:
        z: uint64 scalar, or a uint64 array of any shape.

    Returns:
        uint64 of the same shape.
    """
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@nb.njit(inline="always", cache=True)
def bits(key, counter):
    """64 random bits for ``counter`` in the stream ``key``.

    Args:
        key: uint64 stream key (``rng.stream_key``). counter: uint64 scalar or array.

    Returns:
        uint64 of the counter's shape.
    """
    return mix64(key + counter * GOLDEN)


@nb.njit(inline="always", cache=True)
def uniform(key, counter):
    """A float64 in [0, 1) with 53 random bits.

    Args:
        key: uint64 stream key. counter: uint64 scalar.

    Returns:
        float64 scalar in [0, 1).
    """
    # via int64: the value fits exactly, and signed conversion is one instruction on x86
    return np.int64(bits(key, counter) >> _S11) * _TWO_M53


@nb.njit(inline="always")
def poisson_count(u, p0, lam, cap):
    """Inverse-CDF Poisson draw given P(0) = p0 = exp(-lam); capped at ``cap``.

    Args:
        u: float64 uniform in [0, 1). p0: float64, exp(-lam). lam: float64 mean (events).
        cap: int, the largest count returned.

    Returns:
        int count in [0, cap].
    """
    k = 0
    p = p0
    cdf = p0
    while u >= cdf and k < cap:
        k += 1
        p *= lam / k
        cdf += p
    return k
