"""Arrow tables from day records and state: the shapes every consumer (store, API) sees."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from panopticon.governance import APPEAL_OUTCOMES, ATTACKS
from panopticon.policy.runtime import LIST_CHANGES
from panopticon.policy.schema import MILLI
from panopticon.sanctions import MEASURES, REASONS
from panopticon.sensors import TALLY

# Stored columns are named so that plain SQL works: ``group`` is an SQL keyword, so the
# population's ``group`` attribute is stored as ``social_group``.
STORED_NAMES = {"group": "social_group"}


def stored_name(attribute: str) -> str:
    """The stored column of a population attribute (``group`` -> ``social_group``)."""
    return STORED_NAMES.get(attribute, attribute)


def _dictionary(codes: np.ndarray, labels: Sequence[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(list(labels), pa.string()))


def _nullable(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """An Arrow array with nulls where ``valid`` is False, built from buffers (no Python loop)."""
    if valid.all():
        return pa.array(values)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    if values.dtype == bool:
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [bitmap, data])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values),
                                 [bitmap, pa.py_buffer(values)])


def daily_table(rows: list[dict]) -> pa.Table:
    """The daily headline numbers, one row per day."""
    return pa.Table.from_pylist(rows)


def events_table(days: list[int], counts: list[dict[str, np.ndarray]],
                 events: Sequence[str]) -> pa.Table:
    """Per day and event type: ``true_events``, of them ``observed`` on the actor, ``missed``
    and ``misattributed``; ``false_observations`` claiming that event."""
    t = len(events)
    return pa.table({
        "day": pa.array(np.repeat(np.asarray(days, dtype=np.int32), t)),
        "event": _dictionary(np.tile(np.arange(t, dtype=np.int16), len(days)), events),
        **{k: pa.array(np.concatenate([c[k] for c in counts]) if counts else np.empty(0, np.int64))
           for k in TALLY},
    })


def ledger_table(days: list[int], parts: list[dict[str, np.ndarray]],
                 rule_labels: Sequence[str]) -> pa.Table:
    """Score changes: day, citizen, rule, delta_milli (exact), observation id, observation_true."""
    lengths = [len(p["citizen"]) for p in parts]
    cat = {k: (np.concatenate([p[k] for p in parts]) if parts else np.empty(0, dt))
           for k, dt in (("citizen", np.int32), ("rule", np.int16), ("delta", np.int64),
                         ("observation", np.int64), ("truth", np.int8))}
    obs = cat["observation"]
    truth = cat["truth"]
    return pa.table({
        "day": pa.array(np.repeat(np.asarray(days, dtype=np.int32), lengths)),
        "citizen": pa.array(cat["citizen"]),
        "rule": _dictionary(cat["rule"], rule_labels),
        "delta_milli": pa.array(cat["delta"]),
        "observation": _nullable(obs, obs >= 0),
        "observation_true": _nullable(truth == 1, truth >= 0),
    })


def observations_table(days: list[int], parts: list, events: Sequence[str],
                       sources: Sequence[str]) -> pa.Table:
    """Every observation: run-wide id, day, named citizen, event, source, truth, true actor."""
    lengths = [len(p) for p in parts]
    day = np.repeat(np.asarray(days, dtype=np.int64), lengths)
    index = np.concatenate([np.arange(k, dtype=np.int64) for k in lengths]) if parts else \
        np.empty(0, np.int64)

    def col(name, dtype):
        return np.concatenate([getattr(p, name) for p in parts]) if parts else np.empty(0, dtype)

    actor = col("true_actor", np.int32)
    return pa.table({
        "id": pa.array((day << 32) + index),
        "day": pa.array(day.astype(np.int32)),
        "citizen": pa.array(col("citizen", np.int32)),
        "event": _dictionary(col("event", np.int16), events),
        "source": _dictionary(col("source", np.int8), sources or ["none"]),
        "is_true": pa.array(col("is_true", bool)),
        "true_actor": _nullable(actor, actor >= 0),
    })


def lists_table(days: list[int], parts: list, list_names: Sequence[str]) -> pa.Table:
    """List changes: day, citizen, list, change (entered, extended, left, expired, restored),
    and the observation that caused it (null when a condition or the calendar did)."""
    lengths = [len(p.citizen) for p in parts]
    cat = {f: (np.concatenate([getattr(p, f) for p in parts]) if parts else np.empty(0, dt))
           for f, dt in (("citizen", np.int32), ("list", np.int16), ("change", np.int8),
                         ("observation", np.int64))}
    return pa.table({
        "day": pa.array(np.repeat(np.asarray(days, dtype=np.int32), lengths)),
        "citizen": pa.array(cat["citizen"]),
        "list": _dictionary(cat["list"], list_names or ["none"]),
        "change": _dictionary(cat["change"], LIST_CHANGES),
        "observation": _nullable(cat["observation"], cat["observation"] >= 0),
    })


def opportunities_table(days: list[int], parts: list, kinds: Sequence[str],
                        groups: Sequence[str]) -> pa.Table:
    """Per day, opportunity and group: ``attempts``, ``retries``, ``refused``, ``wrongful``
    refusals, ``evaded`` refusals, ``granted`` and ``loans`` started (see
    :data:`panopticon.sanctions.MEASURES`)."""
    k, g = len(kinds), len(groups)
    cells = k * g
    present = [(d, p) for d, p in zip(days, parts, strict=True) if p is not None]
    counts = (np.concatenate([p.counts.reshape(len(MEASURES), cells) for _, p in present], axis=1)
              if present else np.zeros((len(MEASURES), 0), dtype=np.int64))
    return pa.table({
        "day": pa.array(np.repeat(np.asarray([d for d, _ in present], dtype=np.int32), cells)),
        "opportunity": _dictionary(np.tile(np.repeat(np.arange(k, dtype=np.int16), g),
                                           len(present)), kinds or ["none"]),
        "social_group": _dictionary(np.tile(np.arange(g, dtype=np.int16), k * len(present)), groups),
        **{m: pa.array(counts[j]) for j, m in enumerate(MEASURES)},
    })


def _day_rows(days: list[int], parts: list, columns: dict) -> pa.Table:
    """Row records of several days as one table: ``day``, then ``columns`` (output name ->
    (the record's field, its dtype, how to make the Arrow array)). ``parts`` holds each day's
    record (columns of equal length), or None for a day without one."""
    present = [(d, p) for d, p in zip(days, parts, strict=True) if p is not None]
    lengths = [len(p.citizen) for _, p in present]
    out = {"day": pa.array(np.repeat(np.asarray([d for d, _ in present], dtype=np.int32),
                                     lengths))}
    for name, (field, dtype, arrow) in columns.items():
        out[name] = arrow(np.concatenate([getattr(p, field) for _, p in present]) if present
                          else np.empty(0, dtype))
    return pa.table(out)


def refusals_table(days: list[int], parts: list, kinds: Sequence[str]) -> pa.Table:
    """Every refused attempt: day, citizen, opportunity, ``wrongful`` (the gates would not
    have refused on the citizen's true standing), ``evaded`` (succeeded anyway), ``retry``,
    and why (:data:`panopticon.sanctions.REASONS`): ``sanctioned`` (a sanction blocking it is
    denied to them), ``no_perk`` (a perk it needs is not granted), ``low_score`` (below the
    lender's minimum)."""
    return _day_rows(days, [p and p.refusals for p in parts], {
        "citizen": ("citizen", np.int32, pa.array),
        "opportunity": ("kind", np.int16, lambda v: _dictionary(v, kinds or ["none"])),
        "wrongful": ("wrongful", bool, pa.array),
        "evaded": ("evaded", bool, pa.array),
        "retry": ("retry", bool, pa.array),
        **{name: (name, bool, pa.array) for name in REASONS},
    })


def behaviour_table(days: list[int], parts: list[dict[str, np.ndarray]], events: Sequence[str],
                    groups: Sequence[str]) -> pa.Table:
    """Per day, event type and ``social_group``: ``true_events``, ``expected`` (sum of the day's rates)
    and ``baseline`` (the same at the starting rates; both null except on survey days):
    ``expected / baseline - 1`` is how much behaviour changed (deterrence, chilling,
    gaming)."""
    t, g = len(events), len(groups)
    missing = np.full(t * g, np.nan)

    def col(name, dtype):
        return (np.concatenate([p[name].ravel() if name in p else missing for p in parts])
                if parts else np.empty(0, dtype))

    return pa.table({
        "day": pa.array(np.repeat(np.asarray(days, dtype=np.int32), t * g)),
        "event": _dictionary(np.tile(np.repeat(np.arange(t, dtype=np.int16), g), len(days)),
                             events),
        "social_group": _dictionary(np.tile(np.arange(g, dtype=np.int16), t * len(days)), groups),
        "true_events": pa.array(col("true_events", np.int64)),
        "expected": pa.array(col("expected", np.float64), from_pandas=True),
        "baseline": pa.array(col("baseline", np.float64), from_pandas=True),
    })


NETWORK_STATS = ("mean_degree", "isolated_share", "tier_assortativity", "score_correlation",
                 "components", "largest_component_share")


def network_table(days: list[int], parts: list[dict[str, dict[str, float]]]) -> pa.Table:
    """Tie statistics per measured day and layer (see ``society.network.tie_stats``)."""
    rows = [{"day": d, "layer": layer, **{k: float(stats[k]) for k in NETWORK_STATS}}
            for d, p in zip(days, parts, strict=True) for layer, stats in p.items()]
    schema = pa.schema([("day", pa.int32()), ("layer", pa.string()),
                        *[(k, pa.float64()) for k in NETWORK_STATS]])
    return pa.Table.from_pylist(rows, schema=schema)


def appeals_table(days: list[int], parts: list) -> pa.Table:
    """Every appeal filed and decided: day, citizen, outcome (filed, upheld, rejected) and
    waited (days from filing to the decision; 0 for a filing)."""
    return _day_rows(days, parts, {
        "citizen": ("citizen", np.int32, pa.array),
        "outcome": ("outcome", np.int8, lambda v: _dictionary(v, APPEAL_OUTCOMES)),
        "waited": ("waited", np.int32, pa.array),
    })


def manipulations_table(days: list[int], parts: list) -> pa.Table:
    """What insiders did (the lab's ground truth): day, citizen, official, attack, delta_milli
    and logged (shown in the ledger as a manual adjustment)."""
    return _day_rows(days, parts, {
        "citizen": ("citizen", np.int32, pa.array),
        "official": ("official", np.int32, pa.array),
        "attack": ("attack", np.int8, lambda v: _dictionary(v, ATTACKS)),
        "delta_milli": ("delta", np.int64, pa.array),
        "logged": ("logged", bool, pa.array),
    })


GROUP_TIE_STATS = ("mean_degree", "isolated_share", "same_tier_share")


def network_groups_table(days: list[int], parts: list[dict[str, dict[str, np.ndarray]]],
                         groups: Sequence[str]) -> pa.Table:
    """Per survey day, layer and group: the group members' ``mean_degree``,
    ``isolated_share`` and ``same_tier_share`` (see ``society.network.group_stats``)."""
    rows = [{"day": d, "layer": layer, "social_group": g,
             **{k: float(stats[k][j]) for k in GROUP_TIE_STATS}}
            for d, p in zip(days, parts, strict=True) for layer, stats in p.items()
            for j, g in enumerate(groups)]
    schema = pa.schema([("day", pa.int32()), ("layer", pa.string()), ("social_group", pa.string()),
                        *[(k, pa.float64()) for k in GROUP_TIE_STATS]])
    return pa.Table.from_pylist(rows, schema=schema)


def citizens_table(sim, state) -> pa.Table:
    """Each citizen's attributes and final standing."""
    pop = sim.society.population
    cols = {"citizen": pa.array(np.arange(pop.n, dtype=np.int32))}
    for name, values in pop.columns().items():
        if name in pop.labels:
            cols[stored_name(name)] = _dictionary(values, pop.labels[name])
        elif name == "partner":
            cols[name] = _nullable(state.partner, state.partner >= 0)  # as at the end
        else:
            cols[name] = pa.array(values)
    if getattr(state, "visits", None) is not None:  # visitors: a slot is one person
        visits = np.concatenate([np.zeros(pop.residents, dtype=np.int32), state.visits])
        cols["visits"] = pa.array(visits)
        # slots that never arrived count in no origin's rates: their origin reads no_visit
        never = (np.arange(pop.n) >= pop.residents) & (visits == 0)
        labels = (*pop.labels["origin"], "no_visit")
        cols["origin"] = _dictionary(np.where(never, len(labels) - 1, pop.origin).astype(
            np.uint8), labels)
    cols["score"] = pa.array(state.scores / MILLI)
    cols["tier"] = _dictionary(state.tier, sim.policy.tier_names)
    cols["false_points"] = pa.array(state.false_points / MILLI)
    for k, lst in enumerate(sim.scenario.policy.lists):
        cols[f"listed_{lst.name}"] = pa.array(state.policy.until[k] > state.day - 1)
    cols["ever_false"] = pa.array(state.ever_false)
    for layer, csr in state.ties.items():
        cols[f"{layer}_ties"] = pa.array(csr.degree.astype(np.int32))
    return pa.table(cols)


def _array_bytes(value, depth: int = 0) -> int:
    """Bytes of the NumPy arrays in a day record (its fields, dicts and records in them)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if depth > 3:
        return 0
    if isinstance(value, dict):
        return sum(_array_bytes(v, depth + 1) for v in value.values())
    fields = getattr(value, "__dataclass_fields__", None)
    if fields:
        return sum(_array_bytes(getattr(value, f), depth + 1) for f in fields)
    return 0


class Collector:
    """Buffers day records until they are turned into tables (by the store or in memory)."""

    NAMES = ("daily", "events", "ledger", "observations", "lists", "opportunities", "refusals",
             "appeals", "manipulations", "behaviour", "network", "network_groups")
    """The tables of the buffered days, in order."""
    SOURCES = {"daily": "metrics", "refusals": "opportunities"}
    """The day record's field each table is made of, where it is not the table's name."""

    def __init__(self, sim):
        self.sim = sim
        self.days: list[int] = []
        """The buffered days, in order."""
        self.parts: dict[str, list | None] = {self._source(t): [] for t in self.NAMES}
        """Each record field, day by day (None once :meth:`drop` let it go)."""
        self.nbytes = 0
        """Bytes of the arrays buffered (what a store flushes on)."""

    @classmethod
    def _source(cls, table: str) -> str:
        return cls.SOURCES.get(table, table)

    def add(self, record) -> None:
        """Buffer one day."""
        self.days.append(record.day)
        for name, days in self.parts.items():
            days.append(getattr(record, name))
        self.nbytes += _array_bytes(record)

    def tables(self) -> dict[str, pa.Table]:
        """The buffered days as tables (see :data:`panopticon.store.local.TABLES`)."""
        return {name: self.table(name) for name in self.NAMES}

    def drop(self, table: str) -> None:
        """Let go of what ``table`` was made of, unless a later table (in :data:`NAMES`
        order) is made of it too: a store that builds the tables in order frees each day's
        arrays once they are in their table."""
        source = self._source(table)
        later = self.NAMES[self.NAMES.index(table) + 1:]
        if all(self._source(t) != source for t in later):
            self.parts[source] = None

    def table(self, name: str) -> pa.Table:
        """One of the buffered days' tables (:data:`NAMES`): a store builds, writes and drops
        them one at a time, never holding them all."""
        sim, days = self.sim, self.days
        kinds, groups = sim.opportunities.names, sim.society.population.labels["group"]

        def each(field: str) -> list:
            parts = self.parts[field]
            if parts is None:
                raise ValueError(f"{name}: its days were dropped")
            return parts

        if name == "daily":
            return daily_table(each("metrics"))
        if name == "events":
            return events_table(days, each("events"), sim.events)
        if name == "ledger":
            return ledger_table(days, each("ledger"), sim.policy.rule_labels)
        if name == "observations":
            return observations_table(days, each("observations"), sim.events,
                                      sim.sensors.names)
        if name == "lists":
            return lists_table(days, each("lists"), [x.name for x in sim.scenario.policy.lists])
        if name == "opportunities":
            return opportunities_table(days, each("opportunities"), kinds, groups)
        if name == "refusals":
            return refusals_table(days, each("opportunities"), kinds)
        if name == "appeals":
            return appeals_table(days, each("appeals"))
        if name == "manipulations":
            return manipulations_table(days, each("manipulations"))
        if name == "behaviour":
            return behaviour_table(days, each("behaviour"), sim.events, groups)
        if name == "network":
            return network_table(days, each("network"))
        if name == "network_groups":
            return network_groups_table(days, each("network_groups"), groups)
        raise KeyError(name)
