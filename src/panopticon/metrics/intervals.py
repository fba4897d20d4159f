"""Confidence intervals that respect the bounds of what they estimate (pure Python, no SciPy).

- :func:`wilson` and :func:`clopper_pearson`: a binomial rate ``x / n`` (always within [0, 1]).
- :func:`katz_ratio`: the ratio of two rates ``(x1 / n1) / (x2 / n2)`` (Katz log interval;
  never infinite: a ratio over a zero rate is ``None`` with only its lower bound).
- :func:`mean_interval`: the mean of a few replicate values, on the scale its bounds call for
  (Student's t; logit-transformed for a share, log-transformed for a count).

References (also in docs/metrics.md):

- Wilson EB (1927). Probable inference, the law of succession, and statistical inference.
  *JASA* 22:209-212.
- Clopper CJ, Pearson ES (1934). The use of confidence or fiducial limits illustrated in the
  case of the binomial. *Biometrika* 26:404-413.
- Katz D, Baptista J, Azen SP, Pike MC (1978). Obtaining confidence intervals for the risk
  ratio in cohort studies. *Biometrics* 34:469-474.
- Pettigrew HM, Gart JJ, Thomas DG (1986). The bias and higher cumulants of the logarithm of
  a binomial variate. *Biometrika* 73:425-435 (the 0.5 correction for a zero count).
- Korn EL, Graubard BI (1998). Confidence intervals for proportions with small expected
  number of positive counts estimated from survey data. *Survey Methodology* 24:193-201
  (the logit-transformed interval of a mean share).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

LEVEL = 0.95
"""Default confidence level."""


def z_value(level: float = LEVEL) -> float:
    """The two-sided standard normal quantile: 1.959964 for 95%."""
    _check_level(level)
    return NormalDist().inv_cdf(0.5 + level / 2)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, not {level!r}")


def _check_counts(x: float, n: float) -> None:
    if not (0 <= x <= n) or n <= 0:
        raise ValueError(f"need 0 <= x <= n and n > 0, got x={x!r}, n={n!r}")


# ------------------------------------------------------------------ special functions


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (a, b > 0, 0 <= x <= 1), by the
    continued fraction of Numerical Recipes (2nd ed., 6.4) evaluated with Lentz's method."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < eps:
            break
    return h


def beta_quantile(p: float, a: float, b: float) -> float:
    """The ``p`` quantile of the Beta(a, b) distribution (bisection on :func:`betainc`)."""
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if betainc(a, b, mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``df`` > 0):
    ``P(T <= t) = 1 - I_{df / (df + t^2)}(df / 2, 1 / 2) / 2`` for t >= 0, inverted by
    bisection. ``t_quantile(0.975, 2) = 4.303``."""
    if not 0 < p < 1:
        raise ValueError(f"p must be between 0 and 1, not {p!r}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if p == 0.5:
        return 0.0
    tail = 2 * (1 - p)  # P(|T| > t)
    lo, hi = 0.0, 1.0
    while betainc(df / 2, 0.5, df / (df + hi * hi)) > tail:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if betainc(df / 2, 0.5, df / (df + mid * mid)) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


# ----------------------------------------------------------------------------- rates


def wilson(x: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of the rate ``x / n``:

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = x / n``.

    Worked example, 5 of 20 at 95% (z = 1.959964, z² = 3.841459): p = 0.25,
    z²/n = 0.192073, centre = (0.25 + 0.096036) / 1.192073 = 0.290281,
    half = 1.959964 · sqrt(0.009375 + 0.002401) / 1.192073 = 0.178420, so (0.1119, 0.4687).
    Always within [0, 1]; (0, 0.1611) for 0 of 20.
    """
    _check_counts(x, n)
    z = z_value(level)
    p = x / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    return low, high


def clopper_pearson(x: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of the rate ``x / n``: the ``(1-level)/2`` quantile of
    Beta(x, n - x + 1) and the ``(1+level)/2`` quantile of Beta(x + 1, n - x) (0 for x = 0,
    1 for x = n). Conservative: covers at least ``level``. 5 of 20: (0.0866, 0.4910)."""
    _check_counts(x, n)
    _check_level(level)
    alpha = 1 - level
    low = 0.0 if x == 0 else beta_quantile(alpha / 2, x, n - x + 1)
    high = 1.0 if x == n else beta_quantile(1 - alpha / 2, x + 1, n - x)
    return low, high


def rate(x: float, n: float, level: float = LEVEL, method: str = "wilson"
         ) -> tuple[float, float, float]:
    """``(x / n, low, high)`` with the Wilson (``method="wilson"``) or exact
    (``"exact"``, Clopper-Pearson) interval."""
    if method == "wilson":
        low, high = wilson(x, n, level)
    elif method == "exact":
        low, high = clopper_pearson(x, n, level)
    else:
        raise ValueError(f"unknown interval method {method!r}; use 'wilson' or 'exact'")
    return x / n, low, high


# ---------------------------------------------------------------------------- ratios


def katz_ratio(x1: float, n1: float, x2: float, n2: float, level: float = LEVEL
               ) -> tuple[float | None, float | None, float | None]:
    """The ratio of two rates ``RR = (x1 / n1) / (x2 / n2)`` and its Katz log interval
    ``RR · exp(± z · sqrt(1/x1 - 1/n1 + 1/x2 - 1/n2))``, as ``(ratio, low, high)``.

    Worked example (the 2x2 table: 30 of 200 harmed against 15 of 300): RR = 0.15 / 0.05 = 3;
    SE = sqrt(1/30 - 1/200 + 1/15 - 1/300) = sqrt(0.091667) = 0.302765; z · SE = 0.593409;
    exp(0.593409) = 1.810148, so the 95% interval is (3 / 1.810148, 3 · 1.810148) =
    (1.6573, 5.4304).

    A zero count: with ``x2 = 0 < x1`` the ratio is undefined (``None``, never infinite) and
    only the lower bound is given, from the interval with 0.5 added to every cell of the
    table (x + 0.5 of n + 1; Pettigrew, Gart and Thomas 1986); the upper bound is ``None``.
    With ``x1 = 0 < x2`` the ratio is 0, the lower bound 0 and the upper bound comes from the
    same corrected table. With both 0: ``(None, None, None)``.
    """
    _check_counts(x1, n1)
    _check_counts(x2, n2)
    z = z_value(level)
    if x1 > 0 and x2 > 0:
        ratio = (x1 / n1) / (x2 / n2)
        se = math.sqrt(max(0.0, 1 / x1 - 1 / n1 + 1 / x2 - 1 / n2))
        return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)
    if x1 == 0 and x2 == 0:
        return None, None, None
    a, m, b, k = x1 + 0.5, n1 + 1, x2 + 0.5, n2 + 1
    corrected = (a / m) / (b / k)
    se = math.sqrt(1 / a - 1 / m + 1 / b - 1 / k)
    if x2 == 0:
        return None, corrected * math.exp(-z * se), None
    return 0.0, 0.0, corrected * math.exp(z * se)


# ---------------------------------------------------------------- means of replicates


def mean_interval(values: Sequence[float], lower: float | None = None,
                  upper: float | None = None, level: float = LEVEL) -> dict:
    """Mean, sample sd, n and the ``level`` interval of the mean of ``values``, within
    ``[lower, upper]`` (either may be None: unbounded).

    With s = sd / sqrt(n) and t the (1 + level) / 2 quantile of Student's t with n - 1
    degrees of freedom, on the scale the bounds call for (``method``):

    - ``"t"`` (no bound): ``mean ± t · s``.
    - ``"logit"`` (both bounds; a share in [0, 1]): u = (mean - lower) / (upper - lower),
      ``logit(u) ± t · s_u / (u (1 - u))`` mapped back (Korn and Graubard 1998): within the
      bounds and asymmetric near them.
    - ``"log"`` (one bound; a count >= 0): v = mean - lower, ``v · exp(± t · s / v)``
      (``upper - v · exp(∓ ...)`` with only an upper bound): never past the bound.

    Each is centred on the mean's transform, so it always contains the mean. Values all at a
    bound (a mean on it, so sd 0) give the interval [mean, mean]; a value outside the bounds
    falls back to ``"t"``. One value: NaN bounds.
    """
    values = [float(v) for v in values if not math.isnan(v)]
    n = len(values)
    if not n:
        return {"mean": math.nan, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "n": 0, "method": "t"}
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    method = "t"
    inside = all((lower is None or v >= lower) and (upper is None or v <= upper)
                 for v in values)
    if inside and lower is not None and upper is not None and upper > lower:
        method = "logit"
    elif inside and (lower is None) != (upper is None):
        method = "log"
    out = {"mean": mean, "sd": sd, "ci_low": math.nan, "ci_high": math.nan, "n": n,
           "method": method}
    if n < 2:
        return out
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    if sd == 0 or method == "t":
        out["ci_low"], out["ci_high"] = mean - half, mean + half
    elif method == "logit":
        width = upper - lower
        u = (mean - lower) / width
        if u <= 0 or u >= 1:
            out["ci_low"] = out["ci_high"] = mean
        else:
            centre, d = math.log(u / (1 - u)), half / width / (u * (1 - u))
            out["ci_low"] = lower + width * _expit(centre - d)
            out["ci_high"] = lower + width * _expit(centre + d)
    else:
        bound, sign = (lower, 1.0) if lower is not None else (upper, -1.0)
        v = sign * (mean - bound)
        if v <= 0:
            out["ci_low"] = out["ci_high"] = mean
        else:
            a, b = bound + sign * v * math.exp(-half / v), bound + sign * v * math.exp(half / v)
            out["ci_low"], out["ci_high"] = min(a, b), max(a, b)
    # the transformed bounds can round a hair past the mean when the spread is tiny
    out["ci_low"] = min(out["ci_low"], mean)
    out["ci_high"] = max(out["ci_high"], mean)
    return out


def _expit(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)
