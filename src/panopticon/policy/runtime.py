"""The policy in motion: rules, lists, consequences and their state, bound to one population.

A :class:`PolicySpec` is data; :class:`PolicyRuntime` compiles its conditions against the
population's columns and keeps what the policy remembers from day to day: when each citizen was
last observed doing each event, rolling event counts, who is on which list since when, how much
of a capped rule each citizen has used this period, tier overrides, and deductions waiting to
expire. Every array is per citizen (shape (n,) or (k, n)); nothing loops over citizens in Python.

Conditions may name these columns: numbers ``age``, ``income`` (yuan/month), ``rank``,
``children`` (minors in an adult's household), the scenario's ``traits``, ``score``
(points); categories ``sex``, ``region``, ``group``, ``residency``, ``occupation``,
``tier``; and call ``listed("list")``, ``days_listed("list")``, ``days_since("event")``
(observations; :data:`NEVER` if none yet) and ``count("event", days)`` (observations in the last
``days`` days, today included), ``abroad()`` (the citizen lives abroad) and
``ties_mean("friends")`` (the mean score of a tie layer, in points; one's own score without
ties).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from panopticon import kernels
from panopticon.policy.schema import MILLI, PolicySpec, to_milli
from panopticon.policy.scoring import CompiledPolicy, LedgerRows, apply_deltas
from panopticon.rng import Stage, stream_key, uniforms_at
from panopticon.spec.conditions import (  # noqa: F401 - re-exported: the vocabulary of conditions
    FUNCTIONS,
    STATIC_CATEGORIES,
    STATIC_NUMBERS,
    PolicyError,
    compile_policy_conditions,
    condition_columns,
)

NEVER = kernels.scoring.NEVER
"""``days_since`` of an event never observed, and the end day of an open-ended listing."""
DAY = np.int32
"""Per-citizen days that are a day of the run plus at most a bounded duration (when last
seen, listed since, caps' periods and ends): runs and durations are at most 36,500 days, so
int32 holds them (and -NEVER) with room. ``until`` stays int64: extensions add up."""
TIER = np.uint8
"""Per-citizen tier indices (at most 50 tiers), as ``classify`` gives them."""
ENTERED, EXTENDED, LEFT, EXPIRED, RESTORED = (kernels.scoring.ENTERED, kernels.scoring.EXTENDED,
                                              kernels.scoring.LEFT, kernels.scoring.EXPIRED,
                                              kernels.scoring.RESTORED)
LIST_CHANGES = ("entered", "extended", "left", "expired", "restored")
"""What happened to a listing: entered, extended (trigger while listed), left (performance or
a leave condition), expired (its days ran out), restored (credit restoration granted)."""


def static_columns(population) -> dict[str, np.ndarray]:
    """The fixed citizen columns conditions may name (attributes and traits), by name."""
    out = {c: getattr(population, c) for c in (*STATIC_NUMBERS, *STATIC_CATEGORIES)}
    if getattr(population, "origin", None) is not None:
        out["origin"] = population.origin
    return {**out, **population.traits}


@dataclass(frozen=True)
class RuleTable:
    """Event rules as arrays (R rules, T event types).

    Attributes:
        first: (T+1,) int64 rules of event t are ``order[first[t]:first[t+1]]``; order: (R,).
        plain: (R,) bool, a rule with fixed points and nothing else (the fast path).
        delta: (R,) int64 fixed milli-points; lo, hi: (R,) whole points of a range (lo > hi: none).
        from_day, to_day: (R,) int64 active window. where_row: (R,) int64 row of the day's
        where masks (-1: everyone). cap: (R,) int64 milli-points per period (0: no cap);
        cap_days: (R,) int64; cap_row: (R,) int64 row of cap usage (-1: none).
        expires: (R,) int64 days until reversal (0: never). override_tier, override_days: (R,)
        int64 tier index the grade is capped at (-1: no override) and for how long.
    """

    first: np.ndarray
    order: np.ndarray
    plain: np.ndarray
    delta: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    from_day: np.ndarray
    to_day: np.ndarray
    where_row: np.ndarray
    cap: np.ndarray
    cap_days: np.ndarray
    cap_row: np.ndarray
    expires: np.ndarray
    override_tier: np.ndarray
    override_days: np.ndarray

    @property
    def most_per_event(self) -> int:
        """The most rules any one event has (at least 1): rows an observation can make."""
        return max(1, int(np.diff(self.first).max(initial=1)))

    @classmethod
    def compile(cls, policy: PolicySpec, events: list[str]) -> RuleTable:
        """Resolve names and points."""
        rules = policy.rules
        r_count = len(rules)
        by_event = sorted(range(r_count), key=lambda r: (events.index(rules[r].event), r))
        counts = np.bincount([events.index(r.event) for r in rules], minlength=len(events))
        first = np.zeros(len(events) + 1, dtype=np.int64)
        np.cumsum(counts, out=first[1:])

        def column(f, dtype=np.int64):
            return np.asarray([f(r) for r in rules], dtype=dtype).reshape(r_count)

        where_rows = np.cumsum([r.where is not None for r in rules]) - 1
        cap_rows = np.cumsum([r.cap is not None for r in rules]) - 1
        return cls(
            first=first, order=np.asarray(by_event, dtype=np.int64),
            plain=column(lambda r: isinstance(r.points, int | float) and r.where is None
                         and r.active is None and r.cap is None and r.override is None
                         and r.expires_after_days is None, np.bool_),
            delta=column(lambda r: 0 if not isinstance(r.points, int | float) else to_milli(r.points)),
            lo=column(lambda r: int(r.points.min) if not isinstance(r.points, int | float) else 1),
            hi=column(lambda r: int(r.points.max) if not isinstance(r.points, int | float) else 0),
            from_day=column(lambda r: r.active.from_day if r.active else 0),
            to_day=column(lambda r: (r.active.to_day or NEVER) if r.active else NEVER),
            where_row=np.where([r.where is not None for r in rules], where_rows, -1).astype(np.int64)
            if r_count else np.zeros(0, np.int64),
            cap=column(lambda r: to_milli(r.cap.points) if r.cap else 0),
            cap_days=column(lambda r: r.cap.days if r.cap else 1),
            cap_row=np.where([r.cap is not None for r in rules], cap_rows, -1).astype(np.int64)
            if r_count else np.zeros(0, np.int64),
            expires=column(lambda r: r.expires_after_days or 0),
            override_tier=column(lambda r: policy.tier_names.index(r.override.max_tier)
                                 if r.override else -1),
            override_days=column(lambda r: r.override.days if r.override else 0),
        )


@dataclass(frozen=True)
class ListChanges:
    """List changes of one day: citizen int32, list int16, change int8 (:data:`LIST_CHANGES`),
    observation int64 run-wide id (-1 when not caused by an observation)."""

    citizen: np.ndarray
    list: np.ndarray
    change: np.ndarray
    observation: np.ndarray

    @staticmethod
    def concat(parts: list[ListChanges]) -> ListChanges:
        """Several stages' changes, in order."""
        return ListChanges(*(np.concatenate([getattr(p, f) for p in parts]) if parts
                             else np.empty(0, dt) for f, dt in
                             (("citizen", np.int32), ("list", np.int16), ("change", np.int8),
                              ("observation", np.int64))))


class PolicyRuntime:
    """A policy bound to a population, with its day-to-day memory (see the module docstring)."""

    STATE = ("last_seen", "until", "since", "trigger", "falsely", "cap_used", "cap_period",
             "tier_cap", "tier_cap_until", "true_cap", "true_cap_until", "due", "due_citizen",
             "due_delta", "due_rule", "due_obs", "due_truth")
    RATINGS = ("sum_w", "sum_wr", "rating_mean", "boost_until")

    def __init__(self, policy: PolicySpec, events: list[str], population, seed: int,
                 ties: dict | None = None,
                 extra: dict[str, tuple[str, str, bool]] | None = None):
        self.policy, self.events, self.seed = policy, list(events), seed
        self.ties = ties or {}
        n = population.n
        self.labels = population.labels
        self.conditions = compile_policy_conditions(policy, self.events, self.labels,
                                                    tuple(population.traits), extra)
        self.static = static_columns(population)
        self.rules = RuleTable.compile(policy, self.events)
        self.abroad = population.abroad
        exempt = self.conditions.get("scope.exempt")
        self.exempt = exempt(self.static, _no_calls) if exempt else np.zeros(n, dtype=bool)
        if policy.scope.abroad.mode == "freeze":
            self.exempt = self.exempt | self.abroad  # frozen: nothing changes their standing
        self.any_exempt = bool(self.exempt.any())
        self.exempt_always = self.exempt  # the exemptions that never change (not visitors away)
        self.lists = policy.lists
        t_count, l_count = len(self.events), len(self.lists)
        self.enters = np.zeros((l_count, t_count), dtype=np.bool_)
        self.leaves = np.zeros((l_count, t_count), dtype=np.bool_)
        for k, lst in enumerate(self.lists):
            self.enters[k, [self.events.index(e) for e in lst.enter_on]] = True
            self.leaves[k, [self.events.index(e) for e in lst.leave_on]] = True
        self.list_days = np.asarray([x.days or 0 for x in self.lists], dtype=np.int64)
        self.list_extend = np.asarray([x.extend_days for x in self.lists], dtype=np.int64)
        # counters the conditions call: days_since needs last_seen, count needs a window log
        calls = {c for cond in self.conditions.values() for c in cond.calls}
        tracked = sorted({a[0] for f, a in calls if f in ("days_since", "count")})
        self.tracked = {e: j for j, e in enumerate(tracked)}
        self.windows = sorted({(a[0], int(a[1])) for f, a in calls if f == "count"})
        self.depth = {e: max([w for ev, w in self.windows if ev == e], default=0) for e in tracked}
        self.log: dict[str, deque] = {e: deque() for e in tracked if self.depth[e] > 0}
        self.window_counts = {w: np.zeros(n, dtype=np.int32) for w in self.windows}
        self.last_seen = np.full((len(tracked), n), -NEVER, dtype=DAY)
        self.until = np.full((l_count, n), -1, dtype=np.int64)  # listed while until > day
        self.since = np.zeros((l_count, n), dtype=DAY)
        self.trigger = np.zeros((l_count, n), dtype=DAY)
        self.falsely = np.zeros((l_count, n), dtype=np.bool_)  # listed by a false observation
        n_caps = int((self.rules.cap_row >= 0).sum())
        self.cap_used = np.zeros((n_caps, n), dtype=np.int64)
        self.cap_period = np.full((n_caps, n), -1, dtype=DAY)
        self.tier_cap = np.zeros(n, dtype=TIER)
        self.tier_cap_until = np.zeros(n, dtype=DAY)
        self.true_cap = np.zeros(n, dtype=TIER)  # the caps true observations set
        self.true_cap_until = np.zeros(n, dtype=DAY)
        empty = np.empty(0, dtype=np.int64)
        self.due, self.due_citizen, self.due_delta = empty, empty, empty
        self.due_rule, self.due_obs, self.due_truth = empty, empty, empty
        self._static_where: dict[str, np.ndarray] = {}
        self._nobody = np.zeros((1, n), dtype=bool)  # the where masks of a policy without any
        self._start: np.ndarray | None = None
        self.state_names = self.STATE
        if policy.peer_rating is not None:  # weights in ppm, stars in milli-stars
            self.sum_w = np.zeros(n, dtype=np.int64)
            self.sum_wr = np.zeros(n, dtype=np.int64)
            self.rating_mean = np.full(n, to_milli(policy.score.start), dtype=np.int64)
            self.boost_until = np.zeros(n, dtype=DAY)
            self.state_names = (*self.STATE, *self.RATINGS)

    # ------------------------------------------------------------------ state
    def snapshot(self, copy: bool = True) -> dict[str, np.ndarray]:
        """The runtime's memory as arrays (for checkpoints)."""
        out = {f"policy.{k}": getattr(self, k).copy() if copy else getattr(self, k)
               for k in self.state_names}
        for e, log in self.log.items():
            out[f"policy.log.{e}.days"] = np.asarray([d for d, _ in log], dtype=np.int64)
            out[f"policy.log.{e}.sizes"] = np.asarray([len(c) for _, c in log], dtype=np.int64)
            out[f"policy.log.{e}.citizens"] = (np.concatenate([c for _, c in log]) if log
                                               else np.empty(0, np.int32))
        return out

    def restore(self, snap: dict[str, np.ndarray], day: int) -> None:
        """Load :meth:`snapshot` arrays; rolling counts are rebuilt from the log."""
        for k in self.state_names:
            setattr(self, k, snap[f"policy.{k}"].copy())
        for e in self.log:
            days = snap[f"policy.log.{e}.days"]
            parts = np.split(snap[f"policy.log.{e}.citizens"],
                             np.cumsum(snap[f"policy.log.{e}.sizes"])[:-1]) if len(days) else []
            self.log[e] = deque(zip(days.tolist(), parts, strict=True))
        for (e, w), counts in self.window_counts.items():
            counts[:] = 0
            for d, citizens in self.log[e]:
                if d > day - 1 - w:
                    np.add.at(counts, citizens, 1)

    def set_away(self, away: np.ndarray | None) -> None:
        """Visitors not in the country today (bool (n,), None: nobody) are frozen: exempt from
        every rule, list, formula and consequence, on top of the fixed exemptions."""
        self.exempt = self.exempt_always if away is None else self.exempt_always | away
        self.any_exempt = bool(self.exempt.any())

    def arrive(self, who: np.ndarray, scores: np.ndarray) -> None:
        """Visitors arriving today (citizen ids, int64) start afresh: the start score, no
        listings, caps, overrides, counters, queued expiries or ratings of an earlier stay
        (``scores`` in place)."""
        if not len(who):
            return
        scores[who] = self.start[who]
        self.last_seen[:, who] = -NEVER
        self.until[:, who] = -1
        self.since[:, who] = 0
        self.trigger[:, who] = 0
        self.falsely[:, who] = False
        self.cap_used[:, who] = 0
        self.cap_period[:, who] = -1
        for name in ("tier_cap", "tier_cap_until", "true_cap", "true_cap_until"):
            getattr(self, name)[who] = 0
        if len(self.due):
            keep = ~np.isin(self.due_citizen, who)
            for name in ("due", "due_citizen", "due_delta", "due_rule", "due_obs", "due_truth"):
                setattr(self, name, getattr(self, name)[keep])
        for e, log in self.log.items():
            self.log[e] = deque((d, c[~np.isin(c, who)]) for d, c in log)
        for counts in self.window_counts.values():
            counts[who] = 0
        if self.policy.peer_rating is not None:
            self.sum_w[who] = 0
            self.sum_wr[who] = 0
            self.rating_mean[who] = to_milli(self.policy.score.start)
            self.boost_until[who] = 0

    # ------------------------------------------------------------------ conditions
    def context(self, day: int, scores: np.ndarray, tier: np.ndarray, honest: bool = False,
                subset: np.ndarray | None = None, everyone=None,
                held: np.ndarray | None = None):
        """(columns, call) for evaluating conditions today. ``honest``: listings entered only
        by false observations do not count (with scores and tiers net of false points, this
        is the citizen's standing on true events alone). ``subset``: evaluate for these
        citizens only; scores and tier cover everyone, or with ``everyone`` (a callable
        giving all citizens' scores, for ``ties_mean``) they are already the subset's.
        ``held``: (lists, n) bool, listings that do not count yet (an entry waiting for
        review, ``governance.review``). Columns are computed only when a condition names
        them."""
        pick = (lambda a: a) if subset is None else (lambda a: a[subset])
        mine = pick if everyone is None else (lambda a: a)
        columns = _Lazy({name: (lambda v=v: pick(v)) for name, v in self.static.items()})
        columns.factories["score"] = lambda: mine(scores) / MILLI
        columns.factories["tier"] = lambda: mine(tier)
        all_scores = (lambda: scores) if everyone is None else everyone

        def listed(k: int) -> np.ndarray:
            on = pick(self.until[k]) > day
            if held is not None:
                on &= ~pick(held[k])
            return on & ~pick(self.falsely[k]) if honest else on

        def call(name: str, args: tuple) -> np.ndarray:
            if name == "listed":
                return listed(self._list(args[0]))
            if name == "days_listed":
                k = self._list(args[0])
                return np.where(listed(k), day - pick(self.since[k]), 0).astype(np.float64)
            if name == "abroad":
                return pick(self.abroad).copy()
            if name == "ties_mean":
                layer, values = self.ties[args[0]], all_scores()
                # one's own score without ties
                return pick(kernels.ties.ties_mean(layer.indptr, layer.indices, values,
                                                   values)) / MILLI
            if name == "days_since":
                last = pick(self.last_seen[self.tracked[args[0]]])
                return np.minimum(np.subtract(day, last, dtype=np.float64), NEVER)
            return pick(self.window_counts[(args[0], int(args[1]))]).astype(np.float64)

        return columns, call

    def _list(self, name: str) -> int:
        return next(k for k, x in enumerate(self.lists) if x.name == name)

    def evaluate(self, path: str, day: int, scores: np.ndarray, tier: np.ndarray,
                 honest: bool = False, subset: np.ndarray | None = None,
                 everyone=None, held: np.ndarray | None = None) -> np.ndarray:
        """One compiled condition, evaluated on today's state (see :meth:`context`)."""
        return self.conditions[path](*self.context(day, scores, tier, honest, subset,
                                                   everyone, held))

    # ------------------------------------------------------------------ the day
    def remember(self, day: int, obs_citizen: np.ndarray, obs_event: np.ndarray) -> None:
        """Update the counters with today's observations (before anything reads them)."""
        for e, j in self.tracked.items():
            if e not in self.events:
                continue  # never observed in this run: days_since stays NEVER, counts 0
            citizens = obs_citizen[obs_event == self.events.index(e)]
            self.last_seen[j, citizens] = day
            if e in self.log:
                self.log[e].append((day, citizens))
        for (e, w), counts in self.window_counts.items():
            for d, citizens in self.log[e]:
                if d == day:
                    np.add.at(counts, citizens, 1)
                elif d == day - w:  # the day that just left this window
                    np.subtract.at(counts, citizens, 1)
        for e, log in self.log.items():
            while log and log[0][0] <= day - self.depth[e]:
                log.popleft()

    @property
    def start(self) -> np.ndarray:
        """Day-0 scores in milli-points (a number, or an expression per citizen), (n,) int64;
        a number is one value seen n times (a read-only view: no memory per citizen)."""
        if self._start is None:
            s = self.policy.score
            low, high = _bound(s.min, -2**62), _bound(s.max, 2**62)
            if isinstance(s.start, str):
                start = np.round(self.conditions["score.start"](self.static, _no_calls) * MILLI
                                 ).astype(np.int64)
                self._start = np.clip(start, low, high)
            else:
                value = np.clip(np.int64(to_milli(s.start)), low, high)
                self._start = np.broadcast_to(value, self.exempt.shape)
        return self._start

    def lists_today(self, day: int, obs, scores: np.ndarray, tier: np.ndarray) -> ListChanges:
        """Today's list changes, in order: listings whose days ran out, then entries,
        extensions and exits caused by observations, then the enter/leave conditions, then
        credit restoration. A citizen is listed on day d while ``until > d``."""
        parts = [_changes(self.until[k] == day, k, EXPIRED) for k in range(len(self.lists))]
        if self.lists and len(obs):
            m = len(obs) * len(self.lists)
            cols = (np.empty(m, np.int32), np.empty(m, np.int16), np.empty(m, np.int8),
                    np.empty(m, np.int64))
            k = kernels.scoring.enter_lists(day, obs.citizen, obs.event, obs.is_true,
                                            self.enters, self.leaves, self.exempt,
                                            self.list_days, self.list_extend, self.until,
                                            self.since, self.trigger, self.falsely, *cols)
            parts.append(ListChanges(*(c[:k] for c in cols)))
        for k, lst in enumerate(self.lists):
            if lst.enter_when:
                enter = self.evaluate(f"lists[{k}].enter_when", day, scores, tier) \
                    & (self.until[k] <= day) & ~self.exempt
                self.since[k, enter] = day
                self.trigger[k, enter] = day
                self.falsely[k, enter] = False
                self.until[k, enter] = day + lst.days if lst.days else NEVER
                parts.append(_changes(enter, k, ENTERED))
            if lst.leave_when:
                leave = self.evaluate(f"lists[{k}].leave_when", day, scores, tier) \
                    & (self.until[k] > day)
                self.until[k, leave] = day
                parts.append(_changes(leave, k, LEFT))
            if lst.restore:
                eligible = np.flatnonzero((self.until[k] > day)
                                          & (day - self.trigger[k] >= lst.restore.clean_days))
                key = stream_key(self.seed, Stage.POLICY, day, k)
                restored = eligible[uniforms_at(key, eligible) < lst.restore.apply_rate]
                self.until[k, restored] = day
                mask = np.zeros(len(self.exempt), dtype=bool)
                mask[restored] = True
                parts.append(_changes(mask, k, RESTORED))
        return ListChanges.concat(parts)

    def where_masks(self, day: int, scores: np.ndarray, tier: np.ndarray) -> np.ndarray:
        """(R_where, n) bool: for each rule with ``where``, whom it applies to today. Conditions
        on fixed attributes are evaluated once."""
        rows = []
        for r, rule in enumerate(self.policy.rules):
            if rule.where is None:
                continue
            path = f"rules[{r}].where"
            cond = self.conditions[path]
            if cond.calls or not cond.columns <= set(self.static):
                rows.append(self.evaluate(path, day, scores, tier))
            else:
                if path not in self._static_where:
                    self._static_where[path] = cond(self.static, _no_calls)
                rows.append(self._static_where[path])
        return np.stack(rows) if rows else self._nobody

    def score(self, day: int, obs, policy: CompiledPolicy, scores: np.ndarray,
              false_points: np.ndarray, tier: np.ndarray,
              positions: np.ndarray | None = None) -> LedgerRows:
        """Apply every rule of every observation, in observation order (scores in place).

        A rule applies when its window is open, its ``where`` holds and the citizen is not
        exempt; its points are fixed or drawn from its range, bounded by its cap and by the
        score bounds. Overrides take effect whatever the points and are always recorded (a
        ledger row of 0 points when the rule has none). Changes to expire later are queued.
        ``positions``: each observation's place in the day's list (int64; default: they are
        the whole list), which its id and draws are keyed by: a shard scores its citizens'
        observations as the whole list would.
        """
        if positions is None:
            positions = np.arange(len(obs), dtype=np.int64)
        m = len(obs) * self.rules.most_per_event
        cols = (np.empty(m, np.int32), np.empty(m, np.int16), np.empty(m, np.int64),
                np.empty(m, np.int64), np.empty(m, np.int8))
        due = np.empty(m, np.int64)
        rt = self.rules
        k = kernels.scoring.apply_rules(
            day, stream_key(self.seed, Stage.SCORE, day), positions, obs.citizen, obs.event,
            obs.is_true,
            rt.first, rt.order, rt.plain, rt.delta, rt.lo, rt.hi, rt.from_day, rt.to_day,
            rt.where_row, self.where_masks(day, scores, tier), self.any_exempt, self.exempt,
            rt.cap, rt.cap_days, rt.cap_row, self.cap_used, self.cap_period, rt.expires,
            rt.override_tier, rt.override_days, self.tier_cap, self.tier_cap_until, policy.low,
            policy.high, scores, false_points, *cols, due)
        rows = LedgerRows(*(c[:k] for c in cols))
        later = due[:k] >= 0
        if later.any():
            self.due = np.concatenate([self.due, due[:k][later]])
            self.due_citizen = np.concatenate([self.due_citizen, rows.citizen[later]])
            self.due_delta = np.concatenate([self.due_delta, rows.delta[later]])
            self.due_rule = np.concatenate([self.due_rule, rows.rule[later]])
            self.due_obs = np.concatenate([self.due_obs, rows.observation[later]])
            self.due_truth = np.concatenate([self.due_truth, rows.truth[later]])
        self._true_overrides(day, rows)
        return rows

    def _true_overrides(self, day: int, rows: LedgerRows) -> None:
        """Keep the grade caps that true observations set, apart: a citizen's true standing
        is capped by those only (see :meth:`cap_tiers`)."""
        if not len(rows) or self.rules.override_tier.max(initial=-1) < 0:
            return
        cap_tier = self.rules.override_tier[rows.rule]
        hit = (cap_tier >= 0) & (rows.truth == 1)
        if not hit.any():
            return
        who, cap = rows.citizen[hit], cap_tier[hit].astype(TIER)
        until = (day + self.rules.override_days[rows.rule[hit]]).astype(DAY)
        self.true_cap[who] = np.where(self.true_cap_until[who] > day, self.true_cap[who], 0)
        np.maximum.at(self.true_cap, who, cap)
        np.maximum.at(self.true_cap_until, who, until)

    def add_to_due(self, observation: np.ndarray, rule: np.ndarray, added: np.ndarray) -> None:
        """Rows changed after they were scored (an edited rule) expire with their new delta:
        ``added`` (milli-points) goes to the queued expiry of each (observation, rule)."""
        if not len(observation) or not len(self.due):
            return
        queued = self.due_obs * 65536 + self.due_rule  # (observation, rule) is one row
        order = np.argsort(queued, kind="stable")
        wanted = observation.astype(np.int64) * 65536 + rule
        at = np.minimum(np.searchsorted(queued[order], wanted), len(order) - 1)
        found = queued[order[at]] == wanted
        self.due_delta[order[at[found]]] += added[found]

    def expire(self, day: int, policy: CompiledPolicy, scores: np.ndarray,
               false_points: np.ndarray) -> LedgerRows:
        """Reverse the changes whose expiry day is today (ledger rule ``expired:<rule>``)."""
        now = self.due == day
        if not now.any():
            return LedgerRows.empty()
        keep = ~now
        citizen, delta = self.due_citizen[now], self.due_delta[now]
        rule, obs, truth = self.due_rule[now], self.due_obs[now], self.due_truth[now]
        for name in ("due", "due_citizen", "due_delta", "due_rule", "due_obs", "due_truth"):
            setattr(self, name, getattr(self, name)[keep])
        applied = kernels.scoring.reverse(citizen, delta, truth, policy.low, policy.high, scores,
                                          false_points)
        changed = applied != 0
        return LedgerRows(citizen[changed].astype(np.int32),
                          (rule[changed] + policy.first_expiry_rule).astype(np.int16),
                          applied[changed], obs[changed], truth[changed].astype(np.int8))

    def recompute(self, day: int, policy: CompiledPolicy, scores: np.ndarray,
                  tier: np.ndarray) -> LedgerRows:
        """The formula family: on its schedule, every non-exempt score becomes the formula."""
        s = self.policy.score
        if s.formula is None or (day + 1) % s.every_days:
            return LedgerRows.empty()
        value = np.round(self.evaluate("score.formula", day, scores, tier) * MILLI)
        new = np.clip(value, policy.low, policy.high).astype(np.int64)
        return apply_deltas(np.where(self.exempt, 0, new - scores), scores, policy.formula_rule)

    def abroad_today(self, day: int, policy: CompiledPolicy, scores: np.ndarray) -> LedgerRows:
        """``decay`` or ``penalty`` of citizens living abroad, on the policy's schedule."""
        spec = self.policy.scope.abroad
        if spec.mode not in ("decay", "penalty") or (day + 1) % spec.every_days:
            return LedgerRows.empty()
        who = np.flatnonzero(self.abroad & ~self.exempt)
        if spec.mode == "penalty":
            target = scores[who] - to_milli(spec.points)
        else:
            target = scores[who] + np.round(spec.rate * (self.start[who] - scores[who])).astype(np.int64)
        delta = np.zeros(len(scores), dtype=np.int64)
        delta[who] = np.clip(target, policy.low, policy.high) - scores[who]
        return apply_deltas(delta, scores, policy.formula_rule + 1)

    def ratings_today(self, day: int, obs, policy: CompiledPolicy, ties: dict,
                      scores: np.ndarray, tier: np.ndarray) -> LedgerRows:
        """The ``peer_rating`` family: today's ratings move each rated citizen's score by the
        change of their weighted mean (rules' points stay on top of it)."""
        spec = self.policy.peer_rating
        if spec is None:
            return LedgerRows.empty()
        if spec.incident_events and len(obs):
            hit = np.isin(obs.event, [self.events.index(e) for e in spec.incident_events
                                      if e in self.events])
            citizens = obs.citizen[hit]
            self.boost_until[citizens] = np.maximum(self.boost_until[citizens], day + spec.incident_days)
        opinion = self.evaluate("peer_rating.opinion", day, scores, tier)
        layer = ties[spec.ties]
        prior = round(spec.prior * 1_000_000)
        start = to_milli(self.policy.score.start)
        kernels.scoring.rate_peers(stream_key(self.seed, Stage.POLICY, day, 1_000), layer.indptr,
                                   layer.indices, scores, opinion, spec.ratings_per_day,
                                   spec.noise, spec.rater_weight_exponent, self.boost_until,
                                   spec.incident_weight, day, self.exempt, self.sum_w,
                                   self.sum_wr)
        mean = (prior * start + self.sum_wr + (prior + self.sum_w) // 2) // (prior + self.sum_w)
        move = np.where(self.exempt, 0, mean - self.rating_mean)
        self.rating_mean = np.where(self.exempt, self.rating_mean, mean)
        delta = np.clip(scores + move, policy.low, policy.high) - scores
        return apply_deltas(delta, scores, policy.formula_rule + 2)

    def listed_ties_today(self, day: int, policy: CompiledPolicy, ties: dict,
                          scores: np.ndarray) -> LedgerRows:
        """Guilt by association: ``points`` per tie on the named list, on the rule's schedule."""
        parts = []
        for k, a in enumerate(self.policy.association):
            rule_id = len(self.policy.rules) + k  # ledger ids: rules, then association rules
            if a.listed is None or (day + 1) % a.every_days:
                continue
            layer = ties[a.ties]
            listed = self.until[self._list(a.listed)] > day
            count = kernels.ties.ties_sum(layer.indptr, layer.indices, listed)
            count[self.exempt] = 0
            delta = np.clip(scores + count * to_milli(a.points), policy.low, policy.high) - scores
            parts.append(apply_deltas(np.where(count > 0, delta, 0), scores, rule_id))
        return LedgerRows.concat(parts) if parts else LedgerRows.empty()

    def cap_tiers(self, day: int, tier: np.ndarray, honest: bool = False,
                  subset: np.ndarray | None = None) -> np.ndarray:
        """Tiers after overrides, no better than an active override's tier (``tier`` is
        changed in place and returned; with ``subset``, the tiers of those citizens).
        ``honest``: only the overrides true observations set (a real drunk driver stays
        capped; a misidentified one does not)."""
        if not (self.rules.override_tier >= 0).any():
            return tier
        cap, until = (self.true_cap, self.true_cap_until) if honest else (
            self.tier_cap, self.tier_cap_until)
        if subset is not None:
            cap, until = cap[subset], until[subset]
        capped = np.flatnonzero(until > day)  # few: index them, not everyone
        tier[capped] = np.maximum(tier[capped], cap[capped])
        return tier

    def consequences(self, day: int, scores: np.ndarray, tier: np.ndarray, honest: bool = False,
                     subset: np.ndarray | None = None, everyone=None,
                     held: np.ndarray | None = None
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Who is denied each sanction and granted each perk today: name -> bool (n,), or
        aligned with ``subset``. Exempt citizens are never denied anything. ``honest``,
        ``held``: see :meth:`context` (a review passes the tiers it holds back in ``tier``).
        """
        denied: dict[str, np.ndarray] = {}
        granted: dict[str, np.ndarray] = {}
        exempt = self.exempt if subset is None else self.exempt[subset]

        def add(found: dict, names: list[str], mask: np.ndarray) -> None:
            for name in names:  # masks are shared between names, never changed in place
                found[name] = found[name] | mask if name in found else mask

        for k, c in enumerate(self.policy.sanctions):
            mask = self.evaluate(f"sanctions[{k}].when", day, scores, tier, honest, subset,
                                 everyone, held)
            add(denied, c.deny, mask & ~exempt if c.deny and self.any_exempt else mask)
            add(granted, c.grant, mask)
        return denied, granted


class _Lazy(dict):
    """Condition columns computed on first use (a condition names only some of them)."""

    def __init__(self, factories: dict):
        super().__init__()
        self.factories = factories

    def __missing__(self, key: str) -> np.ndarray:
        value = self[key] = self.factories[key]()
        return value

    def values(self):
        """Every column, each computed when reached (a constant condition takes the length
        of the first)."""
        return (self[k] for k in self.factories)


def _bound(value: float | None, default: int) -> int:
    return default if value is None else to_milli(value)


def _no_calls(name: str, args: tuple) -> np.ndarray:  # pragma: no cover - static conditions
    raise AssertionError(f"static condition called {name}")


def _changes(mask: np.ndarray, k: int, change: int) -> ListChanges:
    idx = np.flatnonzero(mask).astype(np.int32)
    return ListChanges(idx, np.full(len(idx), k, np.int16), np.full(len(idx), change, np.int8),
                       np.full(len(idx), -1, np.int64))
