"""Turn uniforms into draws from the scenario's distributions (vectorised, counter-based)."""

from __future__ import annotations

import math

import numpy as np

from panopticon.spec.types import ByCategory, Constant, LogNormal, Normal, Table, Uniform

_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """Inverse of the standard normal CDF (Acklam's rational approximation, |rel err| < 1.2e-9)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, 1 - 1e-16)
    out = np.empty_like(p)
    low, high = p < 0.02425, p > 1 - 0.02425
    mid = ~(low | high)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q / (
        ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1)
    for mask, sign, tail in ((low, 1.0, p), (high, -1.0, 1 - p)):
        q = np.sqrt(-2 * np.log(tail[mask]))
        out[mask] = sign * (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q
                            + _C[5]) / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1)
    return out


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def truncated_standard_normal(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Standard normals restricted to [lo, hi] by inverse CDF: bounds truncate, never pile up."""
    a, b = _normal_cdf(lo), _normal_cdf(hi)
    return np.clip(normal_quantile(a + u * (b - a)), lo, hi)


def table_codes(table: Table, u: np.ndarray) -> np.ndarray:
    """Index into ``table.values`` for each uniform (inverse CDF). Shape of ``u``, dtype int64."""
    w = np.asarray(table.weights, dtype=np.float64)
    cdf = np.cumsum(w) / w.sum()
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(w) - 1)


def draw(dist, u: np.ndarray) -> np.ndarray:
    """Numeric draws (float64) from one distribution, one per uniform (inverse CDF).

    ``min``/``max`` of normal and log-normal distributions truncate the distribution (the
    probability beyond a bound is spread over the rest), so no mass piles up at a bound.
    """
    lo, hi = getattr(dist, "min", None), getattr(dist, "max", None)
    if isinstance(dist, Constant):
        out = np.full(u.shape, dist.value, dtype=np.float64)
    elif isinstance(dist, Normal):
        z_lo = -np.inf if lo is None else (lo - dist.mean) / dist.sd
        z_hi = np.inf if hi is None else (hi - dist.mean) / dist.sd
        out = dist.mean + dist.sd * truncated_standard_normal(u, z_lo, z_hi)
    elif isinstance(dist, LogNormal):
        def z(bound):
            return math.log(bound / dist.median) / dist.sigma if dist.sigma > 0 else 0.0
        z_lo = -np.inf if lo is None or lo <= 0 else z(lo)
        z_hi = np.inf if hi is None else (z(hi) if hi > 0 else -np.inf)
        out = dist.median * np.exp(dist.sigma * truncated_standard_normal(u, z_lo, z_hi))
    elif isinstance(dist, Uniform):
        out = dist.low + (dist.high - dist.low) * u
    elif isinstance(dist, Table):
        values = np.asarray([float(v) for v in dist.values])
        out = values[table_codes(dist, u)]
    else:  # pragma: no cover - the schema admits no other kind
        raise TypeError(f"not a distribution: {dist!r}")
    if lo is not None or hi is not None:
        out = np.clip(out, lo, hi)
    return out


def draw_by(dist, u: np.ndarray, columns: dict[str, np.ndarray],
            labels: dict[str, list[str]]) -> np.ndarray:
    """Like :func:`draw`, but a :class:`ByCategory` picks each citizen's distribution by a column."""
    if not isinstance(dist, ByCategory):
        return draw(dist, u)
    out = np.empty(u.shape, dtype=np.float64)
    codes = columns[dist.by]
    for code, label in enumerate(labels[dist.by]):
        mask = codes == code
        out[mask] = draw(dist.values[label], u[mask])
    return out
