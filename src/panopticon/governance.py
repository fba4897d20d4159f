"""Govern: due process. Citizens who stand wrongly appeal, reviewers with a daily capacity
work through the queue oldest first, and an upheld appeal reverses the citizen's false
entries (their false points and the listings only false observations caused).

The lab knows which entries are false; a citizen knows that they did not do what a record
says, so only citizens standing wrongly appeal (the ``rate`` says how readily, by who they
are). Everything is per citizen arrays; nothing loops over citizens in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from panopticon.behaviour import rate_from_traits
from panopticon.policy.scoring import CompiledPolicy, LedgerRows, apply_deltas
from panopticon.rng import Stage, stream_key, uniforms_at
from panopticon.scenario import AppealsSpec
from panopticon.society import Population

FILED, UPHELD, REJECTED = range(3)
APPEAL_OUTCOMES = ("filed", "upheld", "rejected")
_FILE, _DECIDE = 0, 1  # sub-streams of Stage.GOVERN


@dataclass(frozen=True)
class Appeals:
    """Compiled :class:`AppealsSpec`: ``propensity`` (n,) daily chance to file while standing
    wrongly; capacity, success and retry_after_days as given."""

    propensity: np.ndarray
    capacity: int
    success: float
    retry_after_days: int

    @classmethod
    def compile(cls, spec: AppealsSpec, pop: Population, seed: int) -> Appeals:
        """Each citizen's propensity to appeal, from their traits."""
        rate = np.clip(rate_from_traits(spec, spec.rate, pop, stream_key(seed, Stage.GOVERN)),
                       0.0, 1.0)
        return cls(rate, spec.capacity, spec.success, spec.retry_after_days)


@dataclass
class AppealState:
    """``filed`` (n,) int64 the day a pending appeal was filed (-1: none); ``barred_until``
    (n,) int64 the first day a rejected citizen may appeal again."""

    filed: np.ndarray
    barred_until: np.ndarray

    FIELDS = ("filed", "barred_until")

    @classmethod
    def empty(cls, n: int) -> AppealState:
        """No appeals yet."""
        return cls(np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64))

    def snapshot(self) -> dict[str, np.ndarray]:
        """Arrays for a checkpoint."""
        return {f"appeals.{k}": getattr(self, k).copy() for k in self.FIELDS}

    @classmethod
    def restore(cls, snap: dict[str, np.ndarray]) -> AppealState:
        """From :meth:`snapshot`."""
        return cls(*(snap[f"appeals.{k}"].copy() for k in cls.FIELDS))


@dataclass(frozen=True)
class AppealDay:
    """One day of appeals: citizen int32, outcome int8 (:data:`APPEAL_OUTCOMES`) and waited
    int32 (days from filing to decision; 0 when filed), one row per filing and decision."""

    citizen: np.ndarray
    outcome: np.ndarray
    waited: np.ndarray


def appeals_today(seed: int, day: int, appeals: Appeals, state: AppealState,
                  wronged: np.ndarray, policy: CompiledPolicy, scores: np.ndarray,
                  false_points: np.ndarray, falsely: np.ndarray, until: np.ndarray
                  ) -> tuple[LedgerRows, AppealDay]:
    """Decide the oldest pending appeals, then take today's new ones (state in place).

    Args:
        wronged: (n,) bool, citizens standing wrongly today (false points or a false listing).
        scores, false_points: (n,) int64 milli-points, changed in place by upheld appeals.
        falsely, until: the policy's (lists, n) false-listing flags and listing ends; an
            upheld appeal lifts the false listings (``until`` = today).

    Returns:
        The ledger rows of the reversals (rule ``appeal upheld``) and the day's appeal rows.
    """
    pending = np.flatnonzero(state.filed >= 0)
    order = np.lexsort((pending, state.filed[pending]))  # oldest first, then by citizen
    decided = pending[order[:appeals.capacity]]
    won = uniforms_at(stream_key(seed, Stage.GOVERN, day, _DECIDE), decided) < appeals.success
    upheld, rejected = decided[won], decided[~won]
    waited = day - state.filed[decided]
    state.filed[decided] = -1
    state.barred_until[rejected] = day + appeals.retry_after_days
    delta = np.zeros(len(scores), dtype=np.int64)
    target = np.clip(scores[upheld] - false_points[upheld], policy.low, policy.high)
    delta[upheld] = target - scores[upheld]
    rows = apply_deltas(delta, scores, policy.rule_labels.index("appeal upheld"))
    false_points[upheld] = 0
    lifted = falsely[:, upheld] & (until[:, upheld] > day)
    until[:, upheld] = np.where(lifted, day, until[:, upheld])
    falsely[:, upheld] = False

    can = np.flatnonzero(wronged & (state.filed < 0) & (state.barred_until <= day))
    can = can[~np.isin(can, decided)]  # decided today: not again on the same day
    u = uniforms_at(stream_key(seed, Stage.GOVERN, day, _FILE), can)
    filing = can[u < appeals.propensity[can]]
    state.filed[filing] = day

    citizen = np.concatenate([upheld, rejected, filing]).astype(np.int32)
    outcome = np.concatenate([np.full(len(upheld), UPHELD), np.full(len(rejected), REJECTED),
                              np.full(len(filing), FILED)]).astype(np.int8)
    took = np.concatenate([waited[won], waited[~won], np.zeros(len(filing), np.int64)])
    return rows, AppealDay(citizen, outcome, took.astype(np.int32))
