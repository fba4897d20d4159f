"""The score ledger: append-only rows, hash-chained day by day.

Each day's rows are serialised in a fixed little-endian layout and hashed together with the
previous day's head: ``head[d] = sha256(head[d-1] || day || rows[d])``. The genesis head hashes
the scenario digest and the rules' names, so a ledger cannot be moved to another run, nor a
rule renamed, unnoticed. Changing, adding or removing any row changes every later head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from panopticon.policy.scoring import LedgerRows

LAYOUT = (("citizen", "<i4"), ("rule", "<i2"), ("delta", "<i8"), ("observation", "<i8"),
          ("truth", "<i1"))


def genesis(scenario_digest: str, rule_labels: Sequence[str]) -> bytes:
    """The head before day 0: it binds the scenario and the names of the rules, so that rows
    (which hash a rule by its index) cannot be given another rule's name unnoticed."""
    h = hashlib.sha256(b"panopticon-ledger-v2:" + scenario_digest.encode())
    for label in rule_labels:
        h.update(b"\0" + label.encode())
    return h.digest()


def chain(head: bytes, day: int, columns: dict[str, np.ndarray]) -> bytes:
    """The next head after appending one day's rows.

    Args:
        head: previous head (32 bytes).
        day: the day of these rows.
        columns: ``citizen, rule, delta, observation (run-wide id), truth`` arrays.
    """
    h = hashlib.sha256(head)
    h.update(np.int64(day).tobytes())
    h.update(np.int64(len(columns["citizen"])).tobytes())
    for name, dtype in LAYOUT:
        h.update(memoryview(np.ascontiguousarray(columns[name], dtype=dtype)).cast("B"))
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
