"""What is measured each day: standing, events true versus observed, and the damage of errors."""

from __future__ import annotations

import numpy as np

from panopticon import kernels
from panopticon.policy.schema import MILLI
from panopticon.sensors import Observations

FLOWS = ("true_events", "observed_true", "missed_events", "misattributed", "false_observations",
         "phantoms", "score_changes", "attempts", "retries", "refused", "wrongful_refusals",
         "evaded", "granted", "loans", "refused_sanctioned", "refused_no_perk",
         "refused_low_score", "appeals_filed", "appeals_upheld", "appeals_rejected",
         "reviews_entered", "reviews_confirmed", "reviews_dismissed", "reviews_false_caught",
         "reviews_true_dismissed", "reviews_false_confirmed",
         "ties_rewired", "couples_broken", "couples_formed")
"""Columns of the daily table that count what happened that day: their sum over the days is
the whole run's total. The others (scores, tier shares, ``listed_*``, ``denied_*``,
``granted_*``, ``citizens_ever_false``, backlogs, coverage) describe the state at the end of a
day, and ``citizens_false_today`` counts distinct citizens of one day only."""


def sum_and_median(x: np.ndarray) -> tuple[int, float]:
    """Exact sum and median of an int64 array (equal to ``np.median`` for integers below
    2**53), in three linear passes: a coarse histogram finds the bucket of the middle ranks,
    and only that bucket is sorted."""
    total, median, _ = sum_median_nonzero(x, x)
    return total, median


def sum_median_nonzero(x: np.ndarray, y: np.ndarray) -> tuple[int, float, int]:
    """:func:`sum_and_median` of ``x``, and how many of ``y`` (same length) are nonzero."""
    if len(y) != len(x):
        raise ValueError(f"sum_median_nonzero: {len(x)} values but {len(y)} flags")
    if len(x) == 0:
        return 0, float("nan"), 0
    total, median, nonzero = kernels.tally.sum_median_nonzero(x, y)
    return int(total), float(median), int(nonzero)


def measure(day: int, scores: np.ndarray, tier: np.ndarray, tier_names: tuple[str, ...],
            tally: dict[str, np.ndarray], obs: Observations, n_ledger: int, ever_false: np.ndarray,
            false_points: np.ndarray) -> dict[str, float | int]:
    """The day's headline numbers (one row of the daily table).

    Args:
        scores: (n,) int64 milli-points. tier: (n,) uint8, 0 = highest tier.
        tally: the day's per-event-type counts, keyed by :data:`panopticon.sensors.TALLY`, (T,) each.
        obs: the day's observations. n_ledger: score changes recorded today.
        ever_false: (n,) bool, updated in place: named by a false observation at least once.
        false_points: (n,) int64 milli-points each citizen owes to false observations.

    Returns:
        ``mean_score``, ``median_score`` (points); ``share_<tier>`` (fraction of citizens);
        counts of ``true_events``, ``observed_true``, ``missed_events``, ``misattributed``,
        ``phantoms``, ``false_observations``; ``citizens_false_today`` (distinct citizens named
        by a false observation today), ``citizens_ever_false``, ``citizens_false_standing``
        (whose score differs because of false observations), ``score_changes``.
    """
    n = len(scores)
    total, median, false_standing = sum_median_nonzero(scores, false_points)
    row: dict[str, float | int] = {"day": day, "mean_score": total / n / MILLI,
                                   "median_score": median / MILLI}
    counts = kernels.tally.count_codes(tier, len(tier_names))
    for name, c in zip(tier_names, counts, strict=True):
        row[f"share_{name}"] = float(c) / n
    row["true_events"] = int(tally["true_events"].sum())
    row["observed_true"] = int(tally["observed"].sum())
    row["missed_events"] = int(tally["missed"].sum())
    row["misattributed"] = int(tally["misattributed"].sum())
    row["false_observations"] = int(tally["false_observations"].sum())
    row["phantoms"] = row["false_observations"] - row["misattributed"]
    victims = obs.citizen[~obs.is_true]
    row["citizens_false_today"] = int(len(np.unique(victims)))
    ever_false[victims] = True
    row["citizens_ever_false"] = int(np.count_nonzero(ever_false))
    row["citizens_false_standing"] = false_standing
    row["score_changes"] = int(n_ledger)
    return row


def standing(day: int, until: np.ndarray, lists: list[str], denied: dict[str, np.ndarray],
             granted: dict[str, np.ndarray]) -> dict[str, int]:
    """Who is on each list (``listed_<list>``), denied each sanction (``denied_<name>``) and
    granted each perk (``granted_<name>``) at the end of the day.

    Args:
        until: (lists, n) int64: a citizen is on list k while ``until[k] > day``.
        denied, granted: sanction or perk name -> bool mask (n,).
    """
    row = {f"listed_{name}": int(np.count_nonzero(until[k] > day)) for k, name in enumerate(lists)}
    row.update({f"denied_{k}": int(np.count_nonzero(v)) for k, v in denied.items()})
    row.update({f"granted_{k}": int(np.count_nonzero(v)) for k, v in granted.items()})
    return row


def rates_by_group(rates: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Expected events a day by event type and group: sum of the citizens' rates, (T, G)."""
    return kernels.tally.sum_by_group(rates, np.arange(rates.shape[1]), group, n_groups)


def behaviour_by_group(true, group: np.ndarray, baseline: np.ndarray, rates, adapting: np.ndarray
                       ) -> dict[str, np.ndarray]:
    """What citizens did today against what they did at the start, by event type and group.

    Args:
        true: the day's true events. group: (n,) group code. baseline: (T, G) expected events
            a day at the starting rates. rates: today's rates (after adaptation), a
            :class:`~panopticon.behaviour.Rates` (the adapting event types are dense columns)
            or an (n, T) array, or None on days without a survey. adapting: (T,) bool, the
            event types whose rates can change (the others keep their baseline).

    Returns:
        ``true`` (T, G) int64 events today; on survey days also ``expected`` (T, G) float64,
        the sum of today's rates, and ``baseline``: ``expected / baseline - 1`` is the
        behaviour change (deterrence, chilling, gaming) without sampling noise.
    """
    out = {"true_events": kernels.tally.count_by_group(true.event, true.citizen, group,
                                                       *baseline.shape)}
    if rates is not None:
        expected = baseline.copy()
        cols = np.flatnonzero(adapting)
        if len(cols):
            dense, where = (rates, cols) if isinstance(rates, np.ndarray) else (
                rates.dense, rates.where[cols])
            expected[cols] = kernels.tally.sum_by_group(dense, where, group, baseline.shape[1])
        out.update(expected=expected, baseline=baseline)
    return out

