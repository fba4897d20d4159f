"""What a stored run's rows hash to, independent of how they were split into files.

A run's tables are hashed day by day: for each day and table, the day's rows in stored order,
column by column (name-sorted), by value. The digest depends on the values only, not on the
Parquet encoding, the row groups or the dictionaries (a label is hashed by its text), so it
is the same for the table as written and as read back, and for any checkpoint interval. The days are chained
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


def _label_codes(array: pa.Array) -> np.ndarray:
    """Each value of a string (or dictionary) column as the first 8 bytes of its label's
    SHA-256 (0 for a null): one code per distinct label, whatever the dictionary's order."""
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    labels = array.dictionary.to_pylist()
    codes = np.asarray([int.from_bytes(hashlib.sha256(str(x).encode()).digest()[:8], "little",
                                       signed=True) for x in labels] or [0], dtype=np.int64)
    indices = array.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return codes[indices]


def _canonical(column: pa.ChunkedArray | pa.Array) -> tuple[str, np.ndarray, np.ndarray | None]:
    """(kind, values, valid or None when every row holds a value) of a column, whatever its
    encoding: labels (strings, dictionaries) as codes of their text, booleans as bytes, numbers
    as they are (a table read back from Parquet has the types it was written with)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    n = len(array)
    if pa.types.is_null(kind):
        return "null", np.zeros(n, np.uint8), np.zeros(n, dtype=bool)
    valid = None if array.null_count == 0 else array.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_dictionary(kind) or pa.types.is_string(kind) \
            or pa.types.is_large_string(kind):
        return "label", _label_codes(array), valid
    if pa.types.is_boolean(kind):
        return "bool", array.fill_null(False).to_numpy(zero_copy_only=False).view(np.uint8), \
            valid
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        values = array.to_numpy(zero_copy_only=False) if valid is None else \
            array.fill_null(0).to_numpy(zero_copy_only=False)
        return str(values.dtype), np.ascontiguousarray(values), valid
    raise ValueError(f"cannot hash a column of type {kind}")


def _update(h, name: str, kind: str, values: np.ndarray, valid: np.ndarray | None,
            lo: int, hi: int) -> None:
    """Hash rows lo..hi of one canonical column: its name, which rows hold a value, and the
    values (the kind only when there is a value, so an all-null column hashes alike whether
    Arrow typed it or not)."""
    h.update(name.encode() + b"\0")
    keep = None if valid is None else valid[lo:hi]
    if keep is None or keep.all():  # the same bytes whether other rows of the file have nulls
        h.update(b"all\0" + kind.encode() + b"\0")
        h.update(values[lo:hi])
        return
    h.update(np.packbits(keep).tobytes())
    if keep.any():
        h.update(kind.encode() + b"\0")
        h.update(np.ascontiguousarray(values[lo:hi][keep]))


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
    spans = list(zip(starts.tolist(), ends.tolist(), strict=True))
    hashers = [hashlib.sha256() for _ in spans]
    for name in sorted(table.column_names):  # one column in canonical form at a time
        kind, values, valid = _canonical(table.column(name))
        for h, (lo, hi) in zip(hashers, spans, strict=True):
            _update(h, name, kind, values, valid, lo, hi)
        del values, valid
    return [(int(day[lo]), hi - lo, h.hexdigest())
            for h, (lo, hi) in zip(hashers, spans, strict=True)]


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
    return entries({name: day_digests(tables[name]) for name in names}, days)


def entries(found: dict[str, list[tuple[int, int, str]]], days: Iterable[int]
            ) -> list[tuple[int, str, int, str]]:
    """:func:`by_day` from each table's :func:`day_digests` (table name -> its digests, in
    the order of the tables)."""
    by_name = {name: {d: (r, x) for d, r, x in digests} for name, digests in found.items()}
    return [(d, name, *by_name[name].get(d, (0, EMPTY))) for d in days for name in by_name]


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
