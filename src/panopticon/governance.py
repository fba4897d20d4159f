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

from panopticon import kernels
from panopticon.behaviour import rate_from_traits
from panopticon.policy.scoring import CompiledPolicy, LedgerRows, apply_deltas
from panopticon.rng import Stage, stream_key, uniforms_at
from panopticon.scenario import AppealsSpec, ReviewSpec
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
    """``filed`` (n,) int32 the day a pending appeal was filed (-1: none); ``barred_until``
    (n,) int32 the first day a rejected citizen may appeal again (days of the run plus at
    most 36,500: int32 holds them)."""

    filed: np.ndarray
    barred_until: np.ndarray

    FIELDS = ("filed", "barred_until")

    @classmethod
    def empty(cls, n: int) -> AppealState:
        """No appeals yet."""
        return cls(np.full(n, -1, dtype=np.int32), np.zeros(n, dtype=np.int32))

    def snapshot(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Arrays for a checkpoint."""
        return {f"appeals.{k}": getattr(self, k).copy() if copy else getattr(self, k)
                for k in self.FIELDS}

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


# ---------------------------------------------------------------- review
PENDING, CONFIRMED, DISMISSED = 1, 2, 3
"""Review status of a case (0: none): waiting for a reviewer, confirmed, dismissed."""
_REVIEW = 10_000_000  # sub-streams of Stage.GOVERN: one per case row (lists, then tiers)


@dataclass(frozen=True)
class Review:
    """Compiled :class:`ReviewSpec`. A citizen has one case row per policy list and one for
    the tiers (row ``len(lists)``): ``rows`` (L + 1,) bool, the rows reviewed; ``tiers`` (K,)
    bool, the reviewed tiers; ``stand_in`` (K,) uint8, the tier sanctions see for a citizen
    whose fall into a reviewed tier waits or was dismissed (the worst tier above it that is
    not reviewed); the rest as given."""

    rows: np.ndarray
    tiers: np.ndarray
    stand_in: np.ndarray
    capacity: int
    delay_days: int
    catch_false: float
    dismiss_true: float

    @classmethod
    def compile(cls, spec: ReviewSpec, list_names: list[str], tier_names: list[str]) -> Review:
        """Resolve the names (checked when the scenario was loaded)."""
        rows = np.asarray([x in spec.lists for x in list_names] + [bool(spec.tiers)])
        tiers = np.asarray([t in spec.tiers for t in tier_names], dtype=bool)
        stand_in = np.arange(len(tier_names))
        for t in range(1, len(tier_names)):
            if tiers[t]:
                stand_in[t] = stand_in[t - 1]  # the top tier is never reviewed
        return cls(rows, tiers, stand_in.astype(np.uint8), spec.capacity, spec.delay_days,
                   spec.catch_false, spec.dismiss_true)

    @property
    def lists(self) -> int:
        """How many policy lists (rows before the tiers' row)."""
        return len(self.rows) - 1


@dataclass
class ReviewState:
    """(L + 1, n) per case row (lists, then tiers) and citizen: ``queued`` int32 the day a
    waiting case was queued (-1: none waiting), ``status`` int8 (0 none, :data:`PENDING`,
    :data:`CONFIRMED`, :data:`DISMISSED`); ``fell_to`` (n,) uint8 the worst reviewed tier of the
    citizen's current tier case (0: none)."""

    queued: np.ndarray
    status: np.ndarray
    fell_to: np.ndarray

    FIELDS = ("queued", "status", "fell_to")

    @classmethod
    def empty(cls, rows: int, n: int) -> ReviewState:
        """Nothing under review."""
        return cls(np.full((rows, n), -1, dtype=np.int32), np.zeros((rows, n), dtype=np.int8),
                   np.zeros(n, dtype=np.uint8))

    def snapshot(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Arrays for a checkpoint."""
        return {f"review.{k}": getattr(self, k).copy() if copy else getattr(self, k)
                for k in self.FIELDS}

    @classmethod
    def restore(cls, snap: dict[str, np.ndarray]) -> ReviewState:
        """From :meth:`snapshot`."""
        return cls(*(snap[f"review.{k}"].copy() for k in cls.FIELDS))

    def held(self, review: Review) -> np.ndarray:
        """(L, n) bool: listings whose entry waits for a reviewer (no sanction yet)."""
        return self.status[:review.lists] == PENDING

    def sanction_tier(self, review: Review, tier: np.ndarray) -> np.ndarray:
        """The tiers sanctions see: a fall into a reviewed tier that waits or was dismissed
        counts as the stand-in tier (a copy; ``tier`` itself when nothing is held)."""
        if not review.tiers.any():
            return tier
        row = self.status[review.lists]
        held = np.flatnonzero(((row == PENDING) | (row == DISMISSED)) & review.tiers[tier])
        if not len(held):
            return tier
        out = tier.copy()
        out[held] = review.stand_in[tier[held]]
        return out


@dataclass(frozen=True)
class ReviewDay:
    """One day of review: ``entered`` cases queued, ``confirmed``, ``dismissed``,
    ``false_caught`` (dismissed false cases), ``true_dismissed`` (dismissed true ones),
    ``false_confirmed`` (confirmed false ones), ``waited`` (days each decision waited);
    ``lifted`` the listings dismissals ended (list changes ``left``)."""

    entered: int
    confirmed: int
    dismissed: int
    false_caught: int
    true_dismissed: int
    false_confirmed: int
    waited: np.ndarray
    lifted: tuple[np.ndarray, np.ndarray]


def review_today(seed: int, day: int, review: Review, state: ReviewState, entered: tuple,
                 until: np.ndarray, falsely: np.ndarray, tier: np.ndarray,
                 honest_tier, exempt: np.ndarray | None = None) -> ReviewDay:
    """Queue today's new cases, then decide the oldest (state, ``until`` and ``falsely`` in
    place). Runs at the end of the policy's day, after the tiers and before the sanctions.

    Args:
        entered: (list, citizen) int arrays of today's ``entered`` list changes.
        until, falsely: the policy's (L, n) listing ends and false-listing flags; a dismissed
            listing ends today (``until`` = day).
        tier: (n,) today's tiers. honest_tier: callable(citizens) -> their tiers on their
            true standing (a fall is false when that is better than the tier it records).
        exempt: (n,) bool, citizens the policy exempts (None: nobody): never a tier case.
    """
    lists = review.lists
    queued, status = state.queued, state.status
    # a new entry is a new case, even over an old confirmed one; an ended listing has none
    new_entry = review.rows[entered[0]]
    k, c = entered[0][new_entry], entered[1][new_entry]
    status[k, c] = PENDING
    queued[k, c] = day
    for k in np.flatnonzero(review.rows[:lists]):
        off = until[k] <= day
        status[k, off] = 0
        queued[k, off] = -1
        fresh = (status[k] == 0) & ~off  # listed with no case (never without an entry)
        status[k, fresh] = PENDING
        queued[k, fresh] = day
    if review.rows[lists]:
        row_s, row_q = status[lists], queued[lists]
        fallen = review.tiers[tier] if exempt is None else review.tiers[tier] & ~exempt
        row_s[~fallen], row_q[~fallen], state.fell_to[~fallen] = 0, -1, 0
        deeper = fallen & (tier > state.fell_to)
        new = fallen & ((row_s == 0) | (deeper & (row_s != PENDING)))
        row_s[new], row_q[new] = PENDING, day
        state.fell_to[deeper] = tier[deeper]  # a waiting case keeps its place
    entered_today = int(np.count_nonzero(queued == day))

    row, who = np.nonzero((queued >= 0) & (queued <= day - review.delay_days))
    order = np.lexsort((row, who, queued[row, who]))[:review.capacity]
    row, who = row[order], who[order]  # oldest first, then by citizen, then lists before tiers
    waited = day - queued[row, who]
    false = np.zeros(len(who), dtype=bool)
    on_list = row < lists
    false[on_list] = falsely[row[on_list], who[on_list]]
    on_tier = np.flatnonzero(~on_list)
    if len(on_tier):
        false[on_tier] = honest_tier(who[on_tier]) < tier[who[on_tier]]
    u = np.empty(len(who))
    for r in np.unique(row):  # one stream per row, drawn by citizen id
        at = row == r
        u[at] = uniforms_at(stream_key(seed, Stage.GOVERN, day, _REVIEW + int(r)), who[at])
    dismiss = u < np.where(false, review.catch_false, review.dismiss_true)
    queued[row, who] = -1
    status[row, who] = np.where(dismiss, DISMISSED, CONFIRMED)
    lift = dismiss & on_list
    lk, lc = row[lift], who[lift]
    until[lk, lc] = day
    falsely[lk, lc] = False
    status[lk, lc] = 0
    return ReviewDay(entered_today, int((~dismiss).sum()), int(dismiss.sum()),
                     int((dismiss & false).sum()), int((dismiss & ~false).sum()),
                     int((~dismiss & false).sum()), waited.astype(np.int32),
                     (lk.astype(np.int16), lc.astype(np.int32)))


# ---------------------------------------------------------------- insiders
ATTACKS = ("lower_targets", "raise_cronies", "delete_entries", "edit_rules")
"""Insider attacks (see :class:`panopticon.scenario.InsiderSpec`)."""


@dataclass(frozen=True)
class Insiders:
    """The scenario's insiders bound to a population.

    Attributes:
        specs: the insider specs. officials: per spec, the citizen ids of its insiders.
        labels: the ledger label of each insider's manual adjustments, in spec then insider
            order (``manual by official <id>``); first_rule: ledger rule id of the first.
    """

    specs: tuple
    officials: tuple[np.ndarray, ...]
    labels: tuple[str, ...]
    first_rule: int

    @staticmethod
    def choose(specs: list, pop: Population, seed: int) -> tuple[np.ndarray, ...]:
        """Each spec's insiders: officials (adults if there are none) in a seeded order."""
        occ = pop.labels["occupation"]
        pool = np.flatnonzero(pop.occupation == occ.index("official")) if "official" in occ \
            else np.empty(0, np.int64)
        if not len(pool):
            pool = np.flatnonzero(pop.age >= 18)
        out = []
        for i, spec in enumerate(specs):
            u = uniforms_at(stream_key(seed, Stage.GOVERN, 0, 1000 + i), pool)
            out.append(pool[np.argsort(u, kind="stable")[:spec.officials]])
        return tuple(out)

    @staticmethod
    def label_names(specs: list, officials: tuple[np.ndarray, ...]) -> tuple[str, ...]:
        """Ledger labels of the manual adjustments, one per insider (distinct: one official
        may be an insider of two attacks)."""
        names = [f"manual by official {int(c)} ({spec.attack})"
                 for spec, group in zip(specs, officials, strict=True) for c in group]
        return tuple(f"{x} #{names[:k].count(x) + 1}" if names[:k].count(x) else x
                     for k, x in enumerate(names))


@dataclass(frozen=True)
class Manipulations:
    """What insiders did on one day (known to the lab, not to the system): citizen int32,
    official int32, attack int8 (:data:`ATTACKS`), delta int64 milli-points, logged bool
    (a ledger row shows it as a manual adjustment)."""

    citizen: np.ndarray
    official: np.ndarray
    attack: np.ndarray
    delta: np.ndarray
    logged: np.ndarray

    @staticmethod
    def concat(parts: list) -> Manipulations:
        """One day's manipulations from several insiders."""
        fields = (("citizen", np.int32), ("official", np.int32), ("attack", np.int8),
                  ("delta", np.int64), ("logged", bool))
        return Manipulations(*(np.concatenate([getattr(p, f) for p in parts]).astype(dt)
                               if parts else np.empty(0, dt) for f, dt in fields))


def _pick(seed: int, day: int, slot: int, pool: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` of ``pool``, chosen by a seeded shuffle (sorted)."""
    if len(pool) <= k:
        return np.sort(pool)
    u = uniforms_at(stream_key(seed, Stage.GOVERN, day, slot), pool)
    return np.sort(pool[np.argsort(u, kind="stable")[:k]])


def insiders_act(seed: int, day: int, insiders: Insiders, policy: CompiledPolicy,
                 scores: np.ndarray, false_points: np.ndarray, start: np.ndarray,
                 targets, cronies, exempt: np.ndarray | None = None
                 ) -> tuple[LedgerRows, Manipulations]:
    """Insiders whose day it is lower targets, raise or silently restore cronies (scores in
    place); edits of rules are applied by :func:`edit_rows`.

    Args:
        start: (n,) start scores (a silent deletion restores at most back to them).
        targets: callable(spec index) -> bool (n,), whom a ``lower_targets`` insider picks.
        cronies: callable(official) -> citizen ids of the official's family and friends.
        exempt: (n,) bool, the policy's exempt citizens (None: nobody): the system holds no
            standing of theirs to edit, so no insider picks them.
    """
    rows, done = [], []
    label = insiders.first_rule
    for i, spec in enumerate(insiders.specs):
        acting = (day + 1) % spec.every_days == 0 and spec.attack != "edit_rules"
        for j, official in enumerate(insiders.officials[i]):
            rule = label
            label += 1
            if not acting:
                continue
            slot = 100_000 + 1000 * i + j  # at most 1000 officials an entry
            if spec.attack == "lower_targets":
                pool = np.flatnonzero(targets(i))
            else:
                pool = np.setdiff1d(cronies(official), [official])
            if exempt is not None:
                pool = pool[~exempt[pool]]
            who = _pick(seed, day, slot, pool, spec.reach)
            points = round(spec.points * 1000)
            if spec.attack == "delete_entries":
                delta = np.minimum(points, np.maximum(start[who] - scores[who], 0))
            else:
                delta = np.full(len(who), -points if spec.attack == "lower_targets" else points)
            new = np.clip(scores[who] + delta, policy.low, policy.high)
            applied = new - scores[who]
            logged = spec.attack != "delete_entries"
            if logged:
                full = np.zeros(len(scores), dtype=np.int64)
                full[who] = applied
                rows.append(apply_deltas(full, scores, rule))
            else:
                scores[who] = new  # no ledger row: the entry is gone
            hit = applied != 0
            done.append(Manipulations(who[hit], np.full(int(hit.sum()), official),
                                      np.full(int(hit.sum()), ATTACKS.index(spec.attack)),
                                      applied[hit], np.full(int(hit.sum()), logged)))
    ledger_rows = LedgerRows.concat(rows) if rows else LedgerRows.empty()
    return ledger_rows, Manipulations.concat(done)


def edit_rows(day: int, insiders: Insiders, rows: LedgerRows, region: np.ndarray,
              region_code: dict[str, int], policy: CompiledPolicy, scores: np.ndarray,
              false_points: np.ndarray) -> tuple[Manipulations, np.ndarray, np.ndarray]:
    """Edited rules: from day ``every_days - 1`` to the end of the run, deductions of citizens
    in an ``edit_rules`` insider's region are ``factor`` times the rule's, under the rule's
    own name (rows, scores and false points in place).

    Returns:
        The edits (those that changed a score), and the rows edited with what was added to
        each (so that a deduction that expires gives back what was really taken).
    """
    done, edited, added = [], [], []
    for i, spec in enumerate(insiders.specs):
        if spec.attack != "edit_rules" or day < spec.every_days - 1 or not len(rows):
            continue
        mine = (region[rows.citizen] == region_code[spec.region]) & (rows.delta < 0) \
            & (rows.observation >= 0)
        idx = np.flatnonzero(mine)
        if not len(idx):
            continue
        extra = np.round(rows.delta[idx] * (spec.factor - 1)).astype(np.int64)
        kernels.governance.add_in_order(rows.citizen, rows.delta, rows.truth, idx, extra,
                                        policy.low, policy.high, scores, false_points)
        hit = extra != 0  # a bound can swallow the whole edit: then nothing happened
        idx, extra = idx[hit], extra[hit]
        official = insiders.officials[i][0]
        done.append(Manipulations(rows.citizen[idx], np.full(len(idx), official),
                                  np.full(len(idx), ATTACKS.index("edit_rules")), extra,
                                  np.zeros(len(idx), bool)))
        edited.append(idx)
        added.append(extra)
    return (Manipulations.concat(done),
            np.concatenate(edited) if edited else np.empty(0, np.int64),
            np.concatenate(added) if added else np.empty(0, np.int64))
