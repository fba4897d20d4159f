"""Lending metrics of a finished run: what a lender's thresholds did to each category.

Computed from the daily table's ``lending_<opportunity>_<category>_<what>`` columns, which a
run records for every opportunity with a ``lender`` (see
:data:`panopticon.sanctions.LENDING` and docs/scenarios.md, "Lenders and thresholds"). Pure
functions of the stored table: no simulation, no writing.

Scope: the whole run, per lender opportunity and category of the lender's ``by`` attribute.

- ``selection_rate``: loans started / applicant-days (a citizen who tried on a day, after the
  one-loan-at-a-time rule). A rate of the run's applications, with a Wilson interval
  (``selection_rate_low``, ``selection_rate_high``) that treats applicant-days as independent
  trials (a citizen applies on many days, so it is too narrow when thresholds randomise
  per citizen-day, and exact only as a description of the decisions made).
- ``true_positive_rate``: the share of the applicants' expected repayments that were lent to,
  sum of p over borrowers / sum of p over applicant-days, with p each citizen's true
  repayment probability on the day (refused applicants have no outcome, so their would-be
  repayment is this probability). An expectation given the applications: no interval.
- ``profit``: the lender's realised profit (repaid x gain - defaulted x loss) on the loans
  granted in the run (outcomes drawn at the grant, so loans ending after the run count),
  ``profit_expected`` its expectation given the borrowers, and ``profit_low`` /
  ``profit_high`` a normal interval of the expected profit around the realised one
  (profit ± z sd, sd² = sum of p (1 - p) (gain + loss)²).
- ``mean_score_start`` / ``mean_score_end`` / ``mean_score_change``: the mean score (points)
  of the category's eligible citizens as the lender's gates read it on the first and on the
  last day of the run (a full census: no interval). The last day's loan outcomes land after
  the run and are not in it.
- ``threshold_bin_start`` / ``threshold_bin_end`` / ``accept_end``: solved thresholds only.

The key ``"all"`` of each opportunity sums the categories (selection rate, true-positive rate
and profit over every applicant).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from panopticon.metrics.intervals import LEVEL, wilson, z_value
from panopticon.metrics.run import _spec, read
from panopticon.sanctions import LENDING

SOLVED = ("threshold_bin", "accept")
SUFFIXES = (*LENDING, *SOLVED)


def _split(columns: list[str], spec: Any) -> dict[tuple[str, str], dict[str, str]]:
    """``(opportunity, category) -> {what: column}`` of the lending columns, the names taken
    from the scenario's lenders (see :func:`_split_by_values` without a scenario)."""
    pairs: list[tuple[str, str]] = []
    if spec is not None:
        from panopticon.spec.checks import _categories

        cats = _categories(spec.society)
        pairs = [(name, c) for name, opp in (spec.opportunities or {}).items()
                 if opp.lender is not None for c in cats[opp.lender.by]]
    out: dict[tuple[str, str], dict[str, str]] = {}
    for col in columns:
        if not col.startswith("lending_"):
            continue
        what = next((s for s in sorted(SUFFIXES, key=len, reverse=True)
                     if col.endswith("_" + s)), None)
        if what is None:
            continue
        middle = col[len("lending_"):-len(what) - 1]
        hit = [(o, c) for o, c in pairs if middle == f"{o}_{c}"]
        if hit:
            out.setdefault(hit[0], {})[what] = col
    return out


def _categories_of(result: Any) -> list[str]:
    """Every category value of the citizens table's categorical columns."""
    citizens = read(result, "citizens")
    if citizens is None:
        return []
    values: set[str] = set()
    for name in ("social_group", "sex", "region", "residency", "occupation"):
        if name in citizens.column_names:
            col = citizens.column(name)
            values |= {str(v) for v in col.unique().to_pylist()} if col.num_chunks else set()
    return sorted(values, key=len, reverse=True)


def lending(result: Any, spec: Any = None, level: float = LEVEL
            ) -> dict[str, dict[str, dict[str, float]]]:
    """Per lender opportunity and category (and ``"all"``): the metrics of the module
    docstring. Empty when the run has no lender (or no daily table).

    Args:
        result: a run (in memory or stored). spec: its scenario (default: the stored run's;
            an in-memory run without it is parsed with the citizens table's categories).
        level: the intervals' confidence level.
    """
    daily = read(result, "daily")
    if daily is None:
        return {}
    columns = [c for c in daily.column_names if c.startswith("lending_")]
    if not columns:
        return {}
    spec = _spec(result, spec)
    found = _split(columns, spec) if spec is not None else _split_by_values(columns, result)
    z = z_value(level)
    out: dict[str, dict[str, dict[str, float]]] = {}
    sums: dict[str, dict[str, float]] = {}
    for (opp, cat), cols in sorted(found.items()):
        if any(w not in cols for w in LENDING):
            continue
        v = {w: daily.column(cols[w]).to_numpy(zero_copy_only=False).astype(np.float64)
             for w in cols}
        total = {w: float(np.nansum(v[w])) for w in LENDING if w != "mean_score"}
        row = _rates(total, z, level)
        scores = v["mean_score"]
        row["mean_score_start"], row["mean_score_end"] = float(scores[0]), float(scores[-1])
        row["mean_score_change"] = row["mean_score_end"] - row["mean_score_start"]
        if "threshold_bin" in v:
            row["threshold_bin_start"] = float(v["threshold_bin"][0])
            row["threshold_bin_end"] = float(v["threshold_bin"][-1])
            row["accept_end"] = float(v["accept"][-1])
        out.setdefault(opp, {})[cat] = row
        acc = sums.setdefault(opp, dict.fromkeys(total, 0.0))
        for w, x in total.items():
            acc[w] += x
    for opp, total in sums.items():
        out[opp]["all"] = _rates(total, z, level)
    return out


def _split_by_values(columns: list[str], result: Any) -> dict[tuple[str, str], dict[str, str]]:
    """As :func:`_split` without a scenario: categories from the citizens table."""
    cats = _categories_of(result)
    out: dict[tuple[str, str], dict[str, str]] = {}
    for col in columns:
        what = next((s for s in sorted(SUFFIXES, key=len, reverse=True)
                     if col.endswith("_" + s)), None)
        if what is None:
            continue
        middle = col[len("lending_"):-len(what) - 1]
        cat = next((c for c in cats if middle.endswith("_" + c)
                    and len(middle) > len(c) + 1), None)
        if cat is not None:
            out.setdefault((middle[:-len(cat) - 1], cat), {})[what] = col
    return out


def _rates(total: dict[str, float], z: float, level: float) -> dict[str, float]:
    """Selection rate (Wilson interval), true-positive rate and profit (normal interval)."""
    row = {k: total[k] for k in ("applicants", "borrowers", "repaid", "defaulted", "profit",
                                 "profit_expected")}
    n, x = total["applicants"], total["borrowers"]
    row["selection_rate"] = x / n if n else math.nan
    row["selection_rate_low"], row["selection_rate_high"] = (
        wilson(x, n, level) if n else (math.nan, math.nan))
    mass = total["repay_applicants"]
    row["true_positive_rate"] = total["repay_borrowers"] / mass if mass else math.nan
    sd = math.sqrt(max(total["profit_variance"], 0.0))
    row["profit_sd"] = sd
    row["profit_low"], row["profit_high"] = total["profit"] - z * sd, total["profit"] + z * sd
    return row
