"""What is measured each day: standing, events true versus observed, and the damage of errors."""

from __future__ import annotations

import numpy as np

from panopticon.kernels import median_int
from panopticon.policy.schema import MILLI
from panopticon.sensors import MISATTRIBUTED, NOT_OBSERVED, Observations


def measure(day: int, scores: np.ndarray, tier: np.ndarray, tier_names: tuple[str, ...],
            status: np.ndarray, obs: Observations, n_ledger: int, ever_false: np.ndarray,
            false_points: np.ndarray) -> dict[str, float | int]:
    """The day's headline numbers (one row of the daily table).

    Args:
        scores: (n,) int64 milli-points. tier: (n,) uint8, 0 = highest tier.
        status: (m,) int8 status of each true event (missed / observed / misattributed).
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
    row: dict[str, float | int] = {"day": day}
    row["mean_score"] = float(scores.sum(dtype=np.int64)) / n / MILLI
    row["median_score"] = median_int(scores) / MILLI
    counts = np.bincount(tier, minlength=len(tier_names))
    for name, c in zip(tier_names, counts, strict=True):
        row[f"share_{name}"] = float(c) / n
    row["true_events"] = int(len(status))
    row["observed_true"] = int(np.count_nonzero(status == 1))
    row["missed_events"] = int(np.count_nonzero(status == NOT_OBSERVED))
    row["misattributed"] = int(np.count_nonzero(status == MISATTRIBUTED))
    false = ~obs.is_true
    row["false_observations"] = int(np.count_nonzero(false))
    row["phantoms"] = row["false_observations"] - row["misattributed"]
    victims = obs.citizen[false]
    row["citizens_false_today"] = int(len(np.unique(victims)))
    ever_false[victims] = True
    row["citizens_ever_false"] = int(np.count_nonzero(ever_false))
    row["citizens_false_standing"] = int(np.count_nonzero(false_points))
    row["score_changes"] = int(n_ledger)
    return row


def event_counts(status: np.ndarray, true_event: np.ndarray, obs: Observations,
                 n_events: int) -> dict[str, np.ndarray]:
    """Per event type: ``true`` events, ``observed`` true ones, ``false`` observations. (T,) each."""
    return {
        "true": np.bincount(true_event, minlength=n_events),
        "observed": np.bincount(true_event[status == 1], minlength=n_events),
        "false": np.bincount(obs.event[~obs.is_true], minlength=n_events),
    }
