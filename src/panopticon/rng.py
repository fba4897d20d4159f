"""Counter-based random numbers: every draw is a pure function of (seed, stage, day, counter).

No stage keeps a generator with hidden state. A draw for citizen ``i`` on day ``d`` in stage ``s``
is ``hash(key(seed, s, d), counter(i, slot))``, so the numbers do not depend on how the
population is chunked, on the number of workers, or on the order in which citizens are visited.
A run can be resumed from any day and replays bit for bit.

The hash is SplitMix64's finaliser applied to a keyed Weyl sequence (Steele, Lea & Flood 2014):
``mix64(key + counter * GOLDEN)``. It passes BigCrush for a fixed key; keys are themselves mixed,
so two streams coincide only if their counters differ by a 64-bit random offset.

The same functions work on NumPy arrays (vectorised) and inside Numba kernels (scalars).
"""

from __future__ import annotations

import enum

import numba as nb
import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0


class Stage(enum.IntEnum):
    """Named random streams. Adding a stage never shifts another stage's numbers."""

    SOCIETY = 1
    BEHAVE = 2
    OBSERVE = 3
    PHANTOM = 4
    TIES = 5
    RATES = 6
    POLICY = 7
    SCORE = 8
    OPPORTUNITY = 9
    NETWORK = 10
    GOVERN = 11
    BENCHMARK = 99


@nb.njit(inline="always", cache=True)
def mix64(z):
    """SplitMix64 finaliser: a bijective avalanche of a uint64 (scalar or array)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _mix_int(z: int) -> int:
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_key(seed: int, stage: int, day: int = 0, sub: int = 0) -> np.uint64:
    """The key of one random stream: a hash of (seed, stage, day, sub-stream).

    Args:
        seed: the run's root seed (any non-negative int, reduced to 64 bits).
        stage: a :class:`Stage` (or any small int for sub-systems).
        day: simulated day (0-based); use 0 for set-up streams.
        sub: a further index, e.g. an attribute or a tie layer.
    """
    k = _mix_int(seed + 0x243F6A8885A308D3)
    k = _mix_int(k ^ (stage * 0x9E3779B97F4A7C15))
    k = _mix_int(k ^ ((day + 1) * 0xD1B54A32D192ED03))
    k = _mix_int(k ^ ((sub + 1) * 0xCA5A826395121157))
    return np.uint64(k)


@nb.njit(inline="always", cache=True)
def bits(key, counter):
    """64 random bits for ``counter`` in the stream ``key`` (scalars or arrays of uint64)."""
    return mix64(key + counter * GOLDEN)


@nb.njit(inline="always", cache=True)
def uniform(key, counter):
    """A float64 in [0, 1) with 53 random bits."""
    # via int64: the value fits exactly, and signed conversion is one instruction on x86
    return np.int64(bits(key, counter) >> _S11) * _TWO_M53


def uniforms(key: np.uint64, n: int, offset: int = 0, stride: int = 1, slot: int = 0) -> np.ndarray:
    """Vectorised: ``n`` uniforms for counters ``(offset + arange(n)) * stride + slot``.

    Returns:
        float64 array of shape (n,), values in [0, 1).
    """
    c = (np.arange(offset, offset + n, dtype=np.uint64) * np.uint64(stride)) + np.uint64(slot)
    with np.errstate(over="ignore"):
        x = mix64(key + c * GOLDEN)
    return (x >> _S11).astype(np.float64) * _TWO_M53


def uniforms_at(key: np.uint64, counters: np.ndarray) -> np.ndarray:
    """Vectorised: one uniform per counter (e.g. citizen ids), float64 of the same shape."""
    with np.errstate(over="ignore"):
        x = mix64(key + np.asarray(counters).astype(np.uint64) * GOLDEN)
    return (x >> _S11).astype(np.float64) * _TWO_M53
