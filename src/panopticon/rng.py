"""Counter-based random numbers: every draw is a pure function of (seed, stage, day, counter).

No stage keeps a generator with hidden state. A draw for citizen ``i`` on day ``d`` in stage ``s``
is ``hash(key(seed, s, d), counter(i, slot))``, so the numbers do not depend on how the
population is chunked, on the number of workers, or on the order in which citizens are visited.
A run can be resumed from any day and replays bit for bit.

The hash is SplitMix64's finaliser applied to a keyed Weyl sequence (Steele, Lea & Flood 2014):
``mix64(key + counter * GOLDEN)``. It passes BigCrush for a fixed key; keys are themselves mixed,
so two streams coincide only if their counters differ by a 64-bit random offset.

The hash itself (``mix64``, ``bits``, ``uniform``) is a kernel, in
:mod:`panopticon.kernels.random`; this module names the streams and draws whole arrays of
uniforms with NumPy. ``rng.mix64``, ``rng.bits`` and ``rng.uniform`` still name those kernels
(looked up when used), for code that draws inside its own kernels.
"""

from __future__ import annotations

import enum

import numpy as np

from panopticon import kernels
from panopticon.kernels.random import GOLDEN

MASK64 = (1 << 64) - 1
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0
_KERNELS = ("mix64", "bits", "uniform")


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


def __getattr__(name: str):
    """``mix64``, ``bits`` and ``uniform``: the kernels of :mod:`panopticon.kernels.random`,
    looked up at each use (so a different kernel backend is the one found)."""
    if name in _KERNELS:
        return getattr(kernels.random, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def uniforms(key: np.uint64, n: int, offset: int = 0, stride: int = 1, slot: int = 0) -> np.ndarray:
    """Vectorised: ``n`` uniforms for counters ``(offset + arange(n)) * stride + slot``.

    Returns:
        float64 array of shape (n,), values in [0, 1).
    """
    c = (np.arange(offset, offset + n, dtype=np.uint64) * np.uint64(stride)) + np.uint64(slot)
    with np.errstate(over="ignore"):
        x = kernels.random.mix64(key + c * GOLDEN)
    return (x >> _S11).astype(np.float64) * _TWO_M53


def uniforms_at(key: np.uint64, counters: np.ndarray) -> np.ndarray:
    """Vectorised: one uniform per counter (e.g. citizen ids), float64 of the same shape."""
    with np.errstate(over="ignore"):
        x = kernels.random.mix64(key + np.asarray(counters).astype(np.uint64) * GOLDEN)
    return (x >> _S11).astype(np.float64) * _TWO_M53
