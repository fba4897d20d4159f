"""The score ledger: append-only rows, hash-chained day by day.

Citizens fall in fixed blocks of :data:`BLOCK` consecutive ids. Each day, the rows of every block
that has any are serialised in a fixed little-endian layout, in the day's order, and hashed to
the block's *leaf*; the day's *root* hashes the leaves in block order, and the chain links the
roots: ``head[d] = sha256(head[d-1] || day || rows || root[d])``. A leaf depends only on its
block's rows, so any split of the citizens into shards made of whole blocks computes the same
leaves, root and head, each shard hashing only its own rows. The genesis head hashes the
scenario digest and the rules' names, so a ledger cannot be moved to another run, nor a rule
renamed, unnoticed. Changing, adding or removing any row changes every later head.

Runs written before the block leaves (ledger format 2: one hash over the day's rows in order)
are still checked by their own format (:data:`FORMAT`, ``chain(..., fmt=2)``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from panopticon import kernels
from panopticon.policy.scoring import LedgerRows

LAYOUT = (("citizen", "<i4"), ("rule", "<i2"), ("delta", "<i8"), ("observation", "<i8"),
          ("truth", "<i1"))
FORMAT = 3
"""The ledger format this version writes: 3 hashes rows by block (see the module docstring);
2, one hash over the day's rows, is still read."""
FORMATS = (2, 3)
"""Ledger formats this version can check."""
BLOCK_BITS = 12
BLOCK = 1 << BLOCK_BITS
"""Citizens per ledger block (4,096): a shard of a sharded run holds whole blocks."""


def genesis(scenario_digest: str, rule_labels: Sequence[str]) -> bytes:
    """The head before day 0: it binds the scenario and the names of the rules, so that rows
    (which hash a rule by its index) cannot be given another rule's name unnoticed."""
    h = hashlib.sha256(b"panopticon-ledger-v2:" + scenario_digest.encode())
    for label in rule_labels:
        h.update(b"\0" + label.encode())
    return h.digest()


def leaves(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, list[bytes]]:
    """One day's rows hashed block by block.

    Args:
        columns: ``citizen, rule, delta, observation (run-wide id), truth`` arrays (m,), in
            the day's order.

    Returns:
        The blocks that have rows, int64 (b,) ascending, and each one's leaf (32 bytes):
        ``sha256(block || each column of LAYOUT over the block's rows, in the day's order)``.
    """
    citizen = np.ascontiguousarray(columns["citizen"], dtype=np.int32)
    order, starts = kernels.arrays.bucket_order(citizen, BLOCK_BITS)
    packed = [np.ascontiguousarray(columns[name], dtype=dtype)[order] for name, dtype in LAYOUT]
    blocks = np.flatnonzero(np.diff(starts))
    out = []
    for b, lo, hi in zip(blocks.tolist(), starts[blocks].tolist(), starts[blocks + 1].tolist(),
                         strict=True):
        h = hashlib.sha256(np.int64(b).tobytes())
        for column in packed:
            h.update(memoryview(column[lo:hi]).cast("B"))
        out.append(h.digest())
    return blocks, out


def root(blocks: np.ndarray, block_leaves: list[bytes]) -> bytes:
    """The day's root: the leaves in block order (with their block numbers) hashed together.
    Shards hand over their own blocks' leaves; the root does not depend on who hashed what."""
    order = np.argsort(blocks, kind="stable")
    h = hashlib.sha256()
    for k in order.tolist():
        h.update(np.int64(blocks[k]).tobytes())
        h.update(block_leaves[k])
    return h.digest()


def chain(head: bytes, day: int, columns: dict[str, np.ndarray], fmt: int = FORMAT) -> bytes:
    """The next head after appending one day's rows.

    Args:
        head: previous head (32 bytes).
        day: the day of these rows.
        columns: ``citizen, rule, delta, observation (run-wide id), truth`` arrays.
        fmt: the ledger format (:data:`FORMAT`; 2 for runs written before block leaves).
    """
    if fmt != 2:
        return link(head, day, len(columns["citizen"]), root(*leaves(columns)))
    h = hashlib.sha256(head)
    h.update(np.int64(day).tobytes())
    h.update(np.int64(len(columns["citizen"])).tobytes())
    for name, dtype in LAYOUT:
        h.update(memoryview(np.ascontiguousarray(columns[name], dtype=dtype)).cast("B"))
    return h.digest()


def link(head: bytes, day: int, rows: int, day_root: bytes) -> bytes:
    """The next head from the day's root (format 3): ``sha256(head || day || rows || root)``;
    a sharded run links the root of its shards' leaves."""
    h = hashlib.sha256(head)
    h.update(np.int64(day).tobytes())
    h.update(np.int64(rows).tobytes())
    h.update(day_root)
    return h.digest()


def day_columns(rows: LedgerRows) -> dict[str, np.ndarray]:
    """One day's ledger rows (observations as run-wide ids), as hashed and stored."""
    return {"citizen": rows.citizen, "rule": rows.rule, "delta": rows.delta,
            "observation": rows.observation, "truth": rows.truth}


class Chain:
    """The chain's head, advanced on one worker thread so that hashing a day's rows overlaps
    the next day (``hashlib`` releases the GIL). Days are hashed strictly in order; reading
    :attr:`head` waits for every day handed over so far.
    """

    def __init__(self, head: bytes):
        self._head = head
        self._pending: Future | None = None
        self._links: list[tuple[int, int, bytes]] = []  # (day, rows, head) not yet taken
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="panopticon-ledger")

    def append(self, day: int, columns: dict[str, np.ndarray]) -> None:
        """Hand over one day's rows (the arrays must not change afterwards)."""
        self._pending = self._worker.submit(self._advance, day, columns)

    def append_root(self, day: int, rows: int, day_root: bytes) -> None:
        """Hand over one day's root, hashed from its leaves elsewhere (a sharded run's
        shards), with the number of rows it covers."""
        self.head  # noqa: B018 - days in order: wait for any day handed over as rows
        self._head = link(self._head, day, rows, day_root)
        self._links.append((day, rows, self._head))

    def _advance(self, day: int, columns: dict[str, np.ndarray]) -> None:
        self._head = chain(self._head, day, columns)
        self._links.append((day, len(columns["citizen"]), self._head))

    def take_links(self) -> list[tuple[int, int, bytes]]:
        """Each day's (day, rows, head) since the last call, once every day handed over is
        hashed: stored with the run, they let an audit find the first day that changed."""
        self.head  # noqa: B018 - waits for the worker
        links, self._links = self._links, []
        return links

    @property
    def head(self) -> bytes:
        """The head after the last day handed over."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        return self._head
