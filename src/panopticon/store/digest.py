"""What a stored run's rows hash to, independent of how they were split into files.

A run's tables are hashed day by day: for each day and table, the day's rows in stored order,
column by column (name-sorted), by value. The digest depends on the values only, not on the
Parquet encoding, the row groups, dictionary encoding or integer width, so it is the same for
the table as written and as read back, and for any checkpoint interval. The days are chained
like the ledger: ``content[d] = sha256(content[d-1] || d || (table, rows, digest) ...)``.

A run's fingerprint (:func:`run_fingerprint`) binds the final state, the ledger's head, this
chain's head and the citizens table: two runs agree iff their fingerprints agree, and a change
to any stored row changes it.

Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

EMPTY = hashlib.sha256(b"panopticon-no-rows").hexdigest()
"""The digest of a table on a day without rows (whatever the table's columns)."""


def _canonical(column: pa.ChunkedArray | pa.Array) -> tuple[str, np.ndarray, np.ndarray | None,
                                                              np.ndarray]:
    """(kind, values, string offsets or None, valid) of a column, whatever its encoding.

    Integers are widened to int64 and floats to float64, dictionary columns decoded, so a
    table hashes the same after a round trip through Parquet.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary.take(array.indices)
    n = len(array)
    valid = np.ones(n, dtype=bool) if array.null_count == 0 else \
        array.is_valid().to_numpy(zero_copy_only=False)
    kind = array.type
    if pa.types.is_null(kind):
        return "null", np.empty(0, np.uint8), None, np.zeros(n, dtype=bool)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        array = array.cast(pa.large_string())
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset:
                                                                    array.offset + n + 1]
        data = np.frombuffer(array.buffers()[2], dtype=np.uint8) if array.buffers()[2] \
            else np.empty(0, np.uint8)
        return "str", data, offsets, valid
    if pa.types.is_boolean(kind):
        values = array.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
        return "bool", values, None, valid
    if pa.types.is_integer(kind):
        return "int", array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), \
            None, valid
    if pa.types.is_floating(kind):
        return "float", array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64), \
            None, valid
    raise ValueError(f"cannot hash a column of type {kind}")


def _update(h, name: str, kind: str, values: np.ndarray, offsets: np.ndarray | None,
            valid: np.ndarray, lo: int, hi: int) -> None:
    """Hash rows lo..hi of one canonical column: its name, which rows hold a value, and the
    values (the kind only when there is a value, so an all-null column hashes alike whether
    Arrow typed it or not)."""
    keep = valid[lo:hi]
    h.update(name.encode() + b"\0")
    h.update(np.packbits(keep).tobytes())
    if not keep.any():
        return
    h.update(kind.encode() + b"\0")
    if offsets is None:
        h.update(np.ascontiguousarray(values[lo:hi][keep]).tobytes())
        return
    starts, ends = offsets[lo:hi][keep], offsets[lo + 1:hi + 1][keep]
    h.update((ends - starts).tobytes())
    h.update(b"".join(values[s:e].tobytes() for s, e in zip(starts, ends, strict=True))
             if not keep.all() else values[offsets[lo]:offsets[hi]].tobytes())


def day_digests(table: pa.Table) -> list[tuple[int, int, str]]:
    """(day, rows, digest) for each day with rows in ``table`` (which has a ``day`` column),
    in day order; the rows of a day keep their stored order.

    Raises:
        ValueError: a column of a type no table of a run has.
    """
    if table.num_rows == 0:
        return []
    day = table.column("day").to_numpy()
    order = np.argsort(day, kind="stable")
    if not np.array_equal(order, np.arange(len(day))):
        table = table.take(pa.array(order))
        day = day[order]
    cuts = np.flatnonzero(np.diff(day)) + 1
    starts = np.r_[0, cuts]
    ends = np.r_[cuts, len(day)]
    columns = [(name, *_canonical(table.column(name))) for name in sorted(table.column_names)]
    out = []
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        h = hashlib.sha256()
        for name, kind, values, offsets, valid in columns:
            _update(h, name, kind, values, offsets, valid, lo, hi)
        out.append((int(day[lo]), hi - lo, h.hexdigest()))
    return out


def table_digest(table: pa.Table) -> str:
    """The digest of a whole table without days (the citizens table)."""
    h = hashlib.sha256()
    for name in sorted(table.column_names):
        _update(h, name, *_canonical(table.column(name)), 0, table.num_rows)
    return h.hexdigest()


def digests_table(entries: Sequence[tuple[int, str, int, str]]) -> pa.Table:
    """The ``digests`` table: one row per day and table (day, table, rows, digest)."""
    return pa.table({"day": pa.array([e[0] for e in entries], pa.int32()),
                     "table": pa.array([e[1] for e in entries], pa.string()),
                     "rows": pa.array([e[2] for e in entries], pa.int64()),
                     "digest": pa.array([e[3] for e in entries], pa.string())})


def by_day(tables: dict[str, pa.Table], names: Sequence[str], days: Iterable[int]
           ) -> list[tuple[int, str, int, str]]:
    """(day, table, rows, digest) for every day of ``days`` and every table of ``names``
    (in that order; a table without rows that day gets ``(0, EMPTY)``)."""
    found = {name: {d: (r, x) for d, r, x in day_digests(tables[name])} for name in names}
    return [(d, name, *found[name].get(d, (0, EMPTY))) for d in days for name in names]


def genesis(scenario_digest: str) -> bytes:
    """The content chain's head before day 0."""
    return hashlib.sha256(b"panopticon-content-v1:" + scenario_digest.encode()).digest()


def chain(head: bytes, entries: Sequence[tuple[int, str, int, str]]) -> bytes:
    """The content head after the entries of :func:`by_day` (whole days, in order)."""
    for day, name, rows, digest in entries:
        head = hashlib.sha256(head + np.int64(day).tobytes() + name.encode() + b"\0"
                              + np.int64(rows).tobytes() + bytes.fromhex(digest)).digest()
    return head


def run_fingerprint(state_fingerprint: str, ledger_head: str, content_head: str,
                    citizens_digest: str) -> str:
    """A run's fingerprint: its final state, ledger head, content head and citizens table."""
    h = hashlib.sha256(b"panopticon-run-v1")
    for part in (state_fingerprint, ledger_head, content_head, citizens_digest):
        h.update(bytes.fromhex(part))
    return h.hexdigest()
