"""The score ledger: append-only rows, hash-chained day by day.

Each day's rows are serialised in a fixed little-endian layout and hashed together with the
previous day's head: ``head[d] = sha256(head[d-1] || day || rows[d])``. The genesis head hashes
the scenario digest, so a ledger cannot be moved to another run unnoticed. Changing, adding or
removing any row changes every later head.
"""

from __future__ import annotations

import hashlib

import numpy as np

from panopticon.policy.scoring import LedgerRows

LAYOUT = (("citizen", "<i4"), ("rule", "<i2"), ("delta", "<i8"), ("observation", "<i8"),
          ("truth", "<i1"))


def genesis(scenario_digest: str) -> bytes:
    """The head before day 0."""
    return hashlib.sha256(b"panopticon-ledger-v1:" + scenario_digest.encode()).digest()


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
