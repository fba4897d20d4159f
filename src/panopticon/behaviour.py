"""Behave and respond: what citizens really do each day, and how they adapt.

True events are a Poisson process per citizen and event type with rate ``rates[i, t]`` (events
per day). Drawing them type by type would cost one draw per citizen, type and day; instead each
citizen draws the total count ``K ~ Poisson(sum_t rates[i, t])`` from one uniform (almost always
0), and each of the K events picks its type in proportion to the rates. By the superposition
property of Poisson processes this is the same distribution, at ~1 hash per citizen-day.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from panopticon import kernels
from panopticon.catalogue import catalogue_of
from panopticon.errors import UserError
from panopticon.rng import Stage, stream_key, uniforms
from panopticon.scenario import DeterrenceSpec, ScenarioSpec
from panopticon.society import Population
from panopticon.society.sampling import draw
from panopticon.spec.scenario import MAX_RATE  # the limit the checks enforce, kept here by name

MAX_EVENTS_PER_DAY = kernels.behaviour.MAX_EVENTS_PER_DAY
"""Cap on one citizen's true events in a day. With total rates of at most :data:`MAX_RATE` the
chance of reaching it is below 1e-13 per citizen-day."""
OUTCOME_SEQ = 200
"""Draw counter of events added to the day (loan outcomes); behaviour's own are below 60."""
CHUNK = kernels.behaviour.CHUNK
"""Citizens per chunk of the event draw; chunks run in parallel, each writing its own events."""


@dataclass(frozen=True)
class TrueEvents:
    """What really happened on one day, in citizen order.

    Attributes:
        citizen: who did it, int32 of shape (m,).
        event: event-type index into the run's active events, int16 of shape (m,).
        seq: the event's number among that citizen's events of the day, int32 (a draw counter).
    """

    citizen: np.ndarray
    event: np.ndarray
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.citizen)


def initial_rates(spec: ScenarioSpec, events: list[str], pop: Population, seed: int) -> np.ndarray:
    """Each citizen's daily rate of each active event type from their traits.

    Returns:
        float64 array of shape (n, T): expected events per day.
    """
    rates = np.zeros((pop.n, len(events)), dtype=np.float64)
    for t, column in initial_rate_columns(spec, events, pop, seed):
        rates[:, t] = column
    return rates


def initial_rate_columns(spec: ScenarioSpec, events: list[str], pop: Population, seed: int,
                         only: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`initial_rates` one event type at a time, (t, float64 (n,)) in order (``only``:
    these types; a set-up at scale never holds the whole table). With every type, after the
    last one, it checks that no citizen's rates add up to more than :data:`MAX_RATE`."""
    n = pop.n
    wanted = range(len(events)) if only is None else sorted(only)
    total = np.zeros(n) if only is None else None
    library = catalogue_of(spec)  # the packaged entries and the scenario's own
    for t in wanted:
        name = events[t]
        beh = spec.behaviour.events.get(name)
        if beh is None:  # observable (or scored) but nobody really does it here
            yield t, np.zeros(n)
            continue
        column = rate_from_traits(beh, library.events[name].rate_per_day, pop,
                                  stream_key(seed, Stage.RATES, 0, t))
        if n and column.max() > MAX_RATE:
            raise UserError(f"behaviour.events.{name}: some citizens' rate is "
                            f"{column.max():.3g} events a day; at most {MAX_RATE:g} is "
                            "supported (rates are per citizen-day)")
        if total is not None:
            total += column
        yield t, column
    if total is not None and n and total.max() > MAX_RATE:
        raise UserError(f"behaviour.events: some citizens' rates add up to "
                        f"{total.max():.3g} events a day; at most {MAX_RATE:g} "
                        "is supported (rates are per citizen-day)")


PROFILES = 65_536
"""Most distinct rows :func:`profiles` keeps as a table (its codes are uint16)."""


def profiles(rows: np.ndarray, most: int = PROFILES) -> tuple[np.ndarray, np.ndarray | slice]:
    """A per-citizen float64 table (n, K) kept once per distinct row. Rates from traits are
    functions of a few attributes (a handful of distinct rows), so a table of them and a
    2-byte code per citizen replace 8 bytes per citizen and column.

    Returns:
        (code, first): row i is ``rows[first][code[i]]``, bit for bit. ``code`` is uint16
        and ``first`` int64 (P,) the first row of each distinct row; with more than ``most``
        (at most :data:`PROFILES`) distinct rows (a rate drawn per citizen), every row is its own:
        int32 codes ``arange(n)`` and ``first`` a slice of all rows (no copy).
    """
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    code, first = kernels.arrays.distinct_rows(rows.view(np.uint64), most)
    if len(first) or not len(rows):
        return code, first
    return np.arange(len(rows), dtype=np.int32), slice(None)


@dataclass(frozen=True)
class Profiled:
    """A per-citizen float64 table (n, K) kept once per distinct row (see :func:`profiles`):
    citizen i's row is ``table[code[i]]``."""

    code: np.ndarray
    table: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray) -> Profiled:
        """The table of ``rows`` (n, K), bit for bit."""
        code, first = profiles(rows)
        return cls(code, rows[first])

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Citizens ``start`` to ``stop``'s rows, (stop - start, K) float64."""
        return self.table[self.code[start:stop]]

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes."""
        return self.code.nbytes + self.table.nbytes


FIXED_ROWS = 4096
"""Most distinct rows of the rates that never change kept as a table (32 KiB a column)."""
DENSE = np.float32
"""The dense rates' type: 4 bytes a citizen and event type instead of 8 (at 10 changing
types, 40 bytes a citizen). A rate needs no more than its 7 significant digits; the kernels
add and multiply them in float64 and round only what they store."""


@dataclass(frozen=True)
class Rates:
    """Each citizen's true events per day by type, (n, T), kept in two parts: the
    ``dense`` columns (n, D) :data:`DENSE`, those that change during the run or take many values (a rate
    drawn per citizen), and the ``fixed`` ones, functions of a few traits that never change,
    as one :class:`Profiled` table (a 2-byte code per citizen instead of 8 bytes a column).
    Event type t is ``dense[:, where[t]]`` where ``where[t] >= 0``, else column
    ``-1 - where[t]`` of ``fixed``. Every value is the one computed, bit for bit."""

    dense: np.ndarray
    fixed: Profiled
    where: np.ndarray

    @classmethod
    def start(cls, spec: ScenarioSpec, events: list[str], pop: Population, seed: int,
              changing: np.ndarray) -> Rates:
        """Day 0's rates (:func:`initial_rates`) in parts, one column at a time: the columns
        that never change first, kept by profile if together they take at most
        :data:`FIXED_ROWS` distinct rows (and an eighth of the citizens), then the dense ones
        straight into their table (the ``changing`` (T,) bool ones, and those with many
        values, worked out once more). A set-up at scale then holds the dense table and one
        column, never the whole (n, T) table. (The rates' bounds are checked where the run
        is built, :func:`initial_rate_columns`.)"""
        n, t_count = pop.n, len(events)
        most = max(1, min(FIXED_ROWS, n // 8))
        few: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # t -> (code, values)
        fixed_cols = [t for t in range(t_count) if not changing[t]]
        for t, column in initial_rate_columns(spec, events, pop, seed, only=fixed_cols):
            code, first = profiles(column[:, None], most)
            if code.dtype == np.uint16:
                few[t] = code, column[first]
        fixed = _joint(few, n, most)
        if fixed is None:
            few, fixed = {}, Profiled(np.zeros(0, np.uint16), np.zeros((0, 0)))
        dense_cols = [t for t in range(t_count) if t not in few]
        dense = np.empty((n, len(dense_cols)), dtype=DENSE)
        for t, column in initial_rate_columns(spec, events, pop, seed, only=dense_cols):
            dense[:, dense_cols.index(t)] = column
        where = np.empty(t_count, dtype=np.int64)
        where[dense_cols] = np.arange(len(dense_cols))
        where[list(few)] = -1 - np.arange(len(few))
        return cls(dense, fixed, where)

    @classmethod
    def of(cls, rates: np.ndarray) -> Rates:
        """Every column dense: ``rates`` (n, T) float64 itself (changes write to it)."""
        return cls(rates, Profiled(np.zeros(0, np.uint16), np.zeros((0, 0))),
                   np.arange(rates.shape[1], dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes."""
        return self.dense.nbytes + self.fixed.nbytes + self.where.nbytes

    @property
    def parts(self) -> tuple:
        """(dense, table, code, where), as the kernels take rates."""
        return self.dense, self.fixed.table, self.fixed.code, self.where

    def rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Citizens ``start`` to ``stop``'s rates, (m, T) float64 (a copy)."""
        dense = self.dense[start:stop]
        out = np.empty((len(dense), len(self.where)))
        kept = self.where >= 0
        out[:, kept] = dense[:, self.where[kept]]
        if not kept.all():
            out[:, ~kept] = self.fixed.rows(start, start + len(dense))[:, -1 - self.where[~kept]]
        return out


def _joint(few: dict[int, tuple[np.ndarray, np.ndarray]], n: int, most: int
           ) -> Profiled | None:
    """The columns ``few`` (t -> each citizen's code into its values) as one table of
    distinct rows, numbered as :func:`profiles` numbers the rows of those columns; None when
    there are more than ``most`` rows."""
    if not few:
        return None
    key = np.zeros(n, dtype=np.uint64)  # the row's codes in mixed radix: one number a row
    radix = 1
    for code, values in few.values():
        radix *= len(values)
        if radix >= 2**63:
            return None
        key = key * np.uint64(len(values)) + code
    code, first = profiles(key.view(np.float64)[:, None], most)
    if code.dtype != np.uint16:
        return None
    return Profiled(code, np.stack([values[c[first]] for c, values in few.values()], axis=1))


def _parts(rates: Rates | np.ndarray) -> tuple:
    """The kernels' rates tuple of ``rates`` (a plain (n, T) array: all dense)."""
    return (rates if isinstance(rates, Rates) else Rates.of(rates)).parts


def rate_from_traits(spec, default: float, pop: Population, key: np.uint64) -> np.ndarray:
    """Each citizen's rate (float64 (n,), per day) of one kind of behaviour or attempt.

    ``spec`` has ``rate`` (None: ``default``; a number; or a distribution drawn per citizen
    with ``key``), ``multipliers`` by category, ``bands`` of age or income, and ``min_age``.
    """
    n = pop.n
    if spec.rate is None:
        rate = np.full(n, float(default))
    elif isinstance(spec.rate, int | float):
        rate = np.full(n, float(spec.rate))
    else:
        rate = draw(spec.rate, uniforms(key, n))
    for attr, table in spec.multipliers.items():
        labels = pop.labels[attr]
        factor = np.ones(len(labels))
        for cat, x in table.items():
            factor[labels.index(cat)] = x
        rate = rate * factor[getattr(pop, attr)]
    for attr, bands in spec.bands.items():
        values = pop.age if attr == "age" else pop.income
        idx = np.searchsorted(np.asarray(bands.edges), values, side="right")
        rate = rate * np.asarray(bands.factors)[idx]
    rate[pop.age < spec.min_age] = 0.0
    return np.maximum(rate, 0.0)


def totals(rates: Rates | np.ndarray, total: np.ndarray, p0: np.ndarray) -> None:
    """Refresh every citizen's total rate (n,) and chance of no event, ``p0 = exp(-total)``
    (n,), in place, from ``rates`` (n, T) events per day."""
    kernels.behaviour.totals(_parts(rates), total, p0)


def behave(seed: int, day: int, rates: Rates | np.ndarray, total: np.ndarray,
           p0: np.ndarray, first: int = 0) -> TrueEvents:
    """Draw one day's true events, in citizen order.

    Each citizen's count comes from one uniform (counter ``i << 8``, i the citizen's id);
    their k-th event's type from another (counter ``(i << 8) + k + 1``), so the events do not
    depend on the chunking, the number of threads or how the citizens are split into shards.

    Args:
        seed: run seed. day: simulated day.
        rates: (n, T) events per day. total: (n,) row sums. p0: (n,) ``exp(-total)`` (see
            :func:`totals`). first: the id of the citizen in row 0 (a shard's first citizen);
            the events' ``citizen`` are row numbers.
    """
    return TrueEvents(*kernels.behaviour.draw_events(stream_key(seed, Stage.BEHAVE, day),
                                                  _parts(rates), total, p0, np.int64(first)))


def add_events(true: TrueEvents, citizen: np.ndarray, event: np.ndarray) -> TrueEvents:
    """The day's events with more true events (e.g. loan outcomes) merged in, in citizen
    order. Their draw counter is ``OUTCOME_SEQ + event`` so sensors draw for them afresh."""
    if not len(citizen):
        return true
    all_citizens = np.concatenate([true.citizen, citizen.astype(np.int32)])
    order = np.argsort(all_citizens, kind="stable")
    seq = (OUTCOME_SEQ + event).astype(np.int32)
    return TrueEvents(all_citizens[order], np.concatenate([true.event, event])[order],
                      np.concatenate([true.seq, seq])[order])


@dataclass(frozen=True)
class Deterrence:
    """Compiled :class:`DeterrenceSpec`: tier mask (n_tiers,), event mask (T,), daily factor."""

    tier_mask: np.ndarray
    event_mask: np.ndarray
    factor: float

    @classmethod
    def compile(cls, spec: DeterrenceSpec, tiers: list[str], events: list[str]) -> Deterrence:
        """Resolve names to masks."""
        tier_mask = np.isin(np.asarray(tiers), spec.tiers)
        event_mask = np.isin(np.asarray(events), spec.events)
        return cls(tier_mask, event_mask, spec.factor)


def respond(rules: list[Deterrence], tier: np.ndarray, rates: Rates | np.ndarray,
            total: np.ndarray, p0: np.ndarray) -> None:
    """Deterrence: citizens in a sanctioned tier scale their rates of the named events (in place)."""
    for rule in rules:
        kernels.behaviour.deter(_parts(rates), total, p0, tier, rule.tier_mask, rule.event_mask,
                                rule.factor)


@dataclass(frozen=True)
class PerceivedDeterrence:
    """Compiled ``behaviour.perceived_deterrence`` (T event types, R regions).

    Attributes:
        sensitivity: (T,) float64 per expected point lost (0: not deterred).
        points: (T,) float64 points one recorded event costs under the policy's rules.
    """

    sensitivity: np.ndarray
    points: np.ndarray

    @classmethod
    def compile(cls, specs: list, events: list[str], rules) -> PerceivedDeterrence | None:
        """None without any. ``rules``: the policy's
        :class:`~panopticon.policy.runtime.RuleTable`."""
        if not specs:
            return None
        sensitivity = np.zeros(len(events))
        for spec in specs:
            sensitivity[[events.index(e) for e in spec.events]] = spec.sensitivity
        return cls(sensitivity, points_lost(rules, len(events)))

    @property
    def events(self) -> np.ndarray:
        """(T,) bool, the types deterred."""
        return self.sensitivity > 0

    def factors(self, detect: np.ndarray, sources_of_event: np.ndarray) -> np.ndarray:
        """(T, R + 1) float64 ``exp(-sensitivity * chance * points)`` for today's chances of
        being recorded (``detect`` (S, R): coverage times detection; ``sources_of_event``
        (T, K): the sources of each type, padded with -1): by any of its sources, each
        recording independently, ``1 - prod(1 - detect)``; column R (no cost expected) is 1."""
        missed = np.ones((len(self.points), detect.shape[1] + 1))
        for k in range(sources_of_event.shape[1]):
            s = sources_of_event[:, k]
            seen = s >= 0
            missed[seen, :-1] *= 1.0 - detect[s[seen]]
        chance = 1.0 - missed
        # at least FLOOR: a rate multiplied down to 0 could never follow a cost that falls
        return np.maximum(np.exp(-self.sensitivity[:, None] * chance * self.points[:, None]),
                          self.FLOOR)

    FLOOR = 1e-12
    """The smallest factor (a rate is never deterred to exactly 0)."""


def points_lost(rules, n_events: int) -> np.ndarray:
    """(T,) float64 points one recorded event of each type costs: the negative points of its
    rules added up (fixed points, or a range at its middle), in points."""
    milli = np.where(rules.lo <= rules.hi, (rules.lo + rules.hi) * 500.0,
                     rules.delta.astype(np.float64))
    out = np.zeros(n_events)
    for t in range(n_events):
        mine = rules.order[rules.first[t]:rules.first[t + 1]]
        out[t] = -np.minimum(milli[mine], 0.0).sum() / 1000.0
    return out


def perceive(old: np.ndarray | None, new: np.ndarray, cost_code: np.ndarray, rates: Rates,
             total: np.ndarray, p0: np.ndarray) -> None:
    """Rates follow a change of the perceived-deterrence factors (``old`` to ``new``,
    (T, R + 1); ``old`` None: the start, rates without any), in place. ``cost_code``: (n,)
    each citizen's region, or R for those who expect no cost (abroad, exempt)."""
    ratio = new if old is None else new / old
    kernels.behaviour.scale_by_code(_parts(rates), total, p0, cost_code, ratio)


@dataclass(frozen=True)
class Responses:
    """The scenario's ``behaviour.responses``, compiled (R responses, T events).

    Attributes:
        paths: condition path of each response's ``when`` (evaluated by the policy runtime).
        scale: indices of the factor responses; factor, limit: (R,) float64 (limit 0: none).
        apply: (R, T) bool, the events each response changes.
        setting: indices of the rate responses; rate: (R,) float64 events a day.
        base_column: (T,) int64 column of each event in the base rates (-1: not kept).

    The base rates are the starting rates, functions of a few traits: kept as a
    :class:`Profiled` table, a few rows and a 2-byte code per citizen.
    """

    paths: tuple[str, ...]
    scale: tuple[int, ...]
    setting: tuple[int, ...]
    factor: np.ndarray
    limit: np.ndarray
    rate: np.ndarray
    apply: np.ndarray
    base_column: np.ndarray

    @classmethod
    def compile(cls, specs: list, events: list[str]) -> Responses:
        """Resolve event names; keep base rates only for events a limit or a rate needs."""
        r_count, t_count = len(specs), len(events)
        apply = np.zeros((r_count, t_count), dtype=np.bool_)
        for r, spec in enumerate(specs):
            apply[r, [events.index(e) for e in spec.events]] = True
        needs_base = np.zeros(t_count, dtype=bool)
        for r, spec in enumerate(specs):
            if spec.rate is not None or spec.limit is not None:
                needs_base |= apply[r]
        base_column = np.full(t_count, -1, dtype=np.int64)
        base_column[needs_base] = np.arange(int(needs_base.sum()))
        return cls(tuple(f"behaviour.responses[{r}].when" for r in range(r_count)),
                   tuple(r for r, s in enumerate(specs) if s.factor is not None),
                   tuple(r for r, s in enumerate(specs) if s.rate is not None),
                   np.asarray([s.factor or 1.0 for s in specs], dtype=np.float64),
                   np.asarray([s.limit or 0.0 for s in specs], dtype=np.float64),
                   np.asarray([s.rate or 0.0 for s in specs], dtype=np.float64),
                   apply, base_column)

    @property
    def keeps_base(self) -> bool:
        """Whether any response needs the starting rates."""
        return bool((self.base_column >= 0).any())

    def base(self, rates: np.ndarray) -> Profiled:
        """The starting rates a limit or a rate response needs, (n, C) float64, by profile."""
        return Profiled.of(rates[:, self.base_column >= 0])


def adapt(responses: Responses, masks: list[np.ndarray], rates: Rates | np.ndarray,
          total: np.ndarray, p0: np.ndarray, base: Profiled) -> None:
    """Apply the responses in order (in place). ``masks``: whom each response's ``when``
    holds for today, bool (n,) per response."""
    for r in responses.scale:
        kernels.behaviour.scale_rates(_parts(rates), total, p0, masks[r],
                                      np.flatnonzero(responses.apply[r]), responses.factor[r],
                                      responses.limit[r], base.table, base.code,
                                      responses.base_column)
    if responses.setting:
        idx = list(responses.setting)
        kernels.behaviour.set_rates(_parts(rates), total, p0, np.stack([masks[r] for r in idx]),
                                    responses.apply[idx], responses.rate[idx], base.table,
                                    base.code, responses.base_column)
