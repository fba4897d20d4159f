"""One folder per run.

```
<run>/manifest.json        status (running | complete | interrupted | failed), scenario digest,
                           seed, code version, timings, result fingerprint
<run>/scenario.json        the resolved scenario (re-run it bit for bit)
<run>/daily/part-*.parquet events/… ledger/… observations/…   written at each checkpoint
<run>/citizens.parquet     attributes and final standing (written last)
<run>/checkpoint.npz       state at the last checkpoint, with checkpoint.json
```
Part files are written before the checkpoint that names them, and the manifest is replaced
atomically, so a run killed at any moment is either resumable from its last checkpoint or
clearly marked as not complete. A reader never mistakes a partial run for a finished one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from panopticon.errors import UserError
from panopticon.store.tables import Collector, citizens_table

TABLES = ("daily", "events", "ledger", "observations", "lists", "opportunities", "refusals",
          "appeals", "manipulations", "behaviour", "network", "network_groups", "ledger_chain")
"""A run's tables, each a folder of Parquet parts. ``ledger_chain`` (day, rows, head: the
ledger's hash chain after each day) is written by the store only."""
COMPLETE, RUNNING, INTERRUPTED, FAILED = "complete", "running", "interrupted", "failed"


def write_parquet(table: pa.Table, path: Path) -> None:
    """Parquet with fast zstd; dictionary pages only for the columns that are categories."""
    categories = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    pq.write_table(table, path, compression="zstd", compression_level=1,
                   use_dictionary=categories or False)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    _atomic_write(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def read_manifest(run_dir: Path) -> dict:
    """A run's manifest, with ``status`` corrected for a process that died while running."""
    path = run_dir / "manifest.json"
    if not path.exists():
        raise UserError(f"{run_dir}: not a panopticon run (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: corrupt manifest ({exc})") from None
    if manifest.get("status") == RUNNING and not _alive(manifest):
        manifest["status"] = "incomplete"
        manifest["note"] = "the process that wrote this run is gone; resume it or delete it"
    return manifest


def _alive(manifest: dict) -> bool:
    if manifest.get("host") != socket.gethostname():
        return True  # cannot tell; trust the status
    try:
        os.kill(int(manifest.get("pid", -1)), 0)
    except (OSError, ValueError):
        return False
    return True


def _check_store(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: is a file; the run store must be a folder (see --out)")


def new_run_dir(root: Path, name: str, seed: int) -> Path:
    """A fresh, unique run folder under ``root``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    _check_store(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{root}: cannot create the run store ({exc.strerror})") from None
    base = f"{name}-s{seed}-{stamp}"
    for k in range(1000):
        path = root / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UserError(f"{root}: cannot create a run folder")


def describe(sim, code_version: str) -> dict:
    """What a run is: scenario, digest, seed, size, code version, and its names."""
    spec = sim.scenario
    return {"scenario": spec.name, "description": spec.description.strip(),
            "scenario_digest": spec.digest, "seed": spec.run.seed,
            "citizens": spec.run.citizens, "days": spec.run.days, "code_version": code_version,
            "events": list(sim.events), "tiers": list(sim.policy.tier_names),
            "rules": list(sim.policy.rule_labels), "sources": list(sim.sensors.names)}


def result_of(state) -> dict:
    """What a finished run came to: its fingerprint and ledger head (equal iff runs agree)."""
    return {"fingerprint": state.fingerprint(), "ledger_head": state.ledger_head.hex()}


class RunWriter:
    """A :class:`panopticon.engine.Sink` that writes the run folder."""

    def __init__(self, sim, run_dir: Path, manifest: dict):
        self.sim = sim
        self.dir = run_dir
        self.manifest = manifest
        self.buffer = Collector(sim)
        self.write_s = 0.0
        # One background writer: parts, then checkpoint, then manifest, strictly in order,
        # while the day loop goes on (Parquet encoding and the Numba kernels release the GIL).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="panopticon-store")
        self._pending: list[Future] = []
        for t in TABLES:
            (run_dir / t).mkdir(exist_ok=True)

    @classmethod
    def create(cls, sim, root: Path, code_version: str) -> RunWriter:
        """Start a new run folder with a manifest marked ``running``."""
        spec = sim.scenario
        run_dir = new_run_dir(root, spec.name, spec.run.seed)
        (run_dir / "scenario.json").write_text(
            json.dumps(spec.model_dump(mode="json"), indent=2))
        manifest = {
            **describe(sim, code_version), "run_id": run_dir.name, "status": RUNNING,
            "days_completed": 0, "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "pid": os.getpid(), "host": socket.gethostname(), "timings": {},
        }
        write_json(run_dir / "manifest.json", manifest)
        return cls(sim, run_dir, manifest)

    @classmethod
    def reopen(cls, sim, run_dir: Path, manifest: dict, day: int) -> RunWriter:
        """Continue writing a stopped run from its checkpoint at ``day``."""
        manifest = {k: v for k, v in manifest.items() if k not in ("note", "stopped")}
        manifest.update(status=RUNNING, days_completed=day, pid=os.getpid(),
                        host=socket.gethostname())
        write_json(run_dir / "manifest.json", manifest)
        return cls(sim, run_dir, manifest)

    def day(self, record, state) -> None:  # noqa: D102 - Sink
        self.buffer.add(record)

    def checkpoint(self, state) -> None:  # noqa: D102 - Sink
        self._raise_failed()
        buffered, self.buffer = self.buffer, Collector(self.sim)
        snapshot, day, head = state.snapshot(), state.day, state.ledger_head.hex()
        links = state.chain.take_links()
        self._pending.append(self._writer.submit(self._write, buffered, snapshot, day, head,
                                                 links))

    def _write(self, buffered: Collector, snapshot: dict, day: int, head: str,
               links: list[tuple[int, int, bytes]]) -> None:
        t0 = time.perf_counter()
        if buffered.days:
            name = f"part-{buffered.days[0]:05d}-{buffered.days[-1]:05d}.parquet"
            for table, data in buffered.tables().items():
                write_parquet(data, self.dir / table / name)
            write_parquet(chain_table(links), self.dir / "ledger_chain" / name)
        _atomic_write(self.dir / "checkpoint.npz", _npz_bytes(snapshot))
        write_json(self.dir / "checkpoint.json", {"day": day, "ledger_head": head})
        self.manifest["days_completed"] = day
        write_json(self.dir / "manifest.json", self.manifest)
        self.write_s += time.perf_counter() - t0

    def _raise_failed(self) -> None:
        """Re-raise, in the day loop, an error of a write that has already finished."""
        for f in [f for f in self._pending if f.done()]:
            self._pending.remove(f)
            f.result()

    def drain(self) -> None:
        """Block until every checkpoint handed over so far is on disk; re-raise a write error."""
        pending, self._pending = self._pending, []
        for f in pending:
            f.result()

    def finish(self, state, timings: dict[str, float]) -> None:
        """Write the citizens table and mark the run complete."""
        self.drain()
        self._writer.shutdown()
        t0 = time.perf_counter()
        write_parquet(citizens_table(self.sim, state), self.dir / "citizens.parquet")
        self.write_s += time.perf_counter() - t0
        self.manifest.update(
            status=COMPLETE, finished=datetime.now(UTC).isoformat(timespec="seconds"),
            timings={**timings, "write_s": round(self.write_s, 3)},
            result=result_of(state),
        )
        write_json(self.dir / "manifest.json", self.manifest)

    def mark(self, status: str, reason: str) -> None:
        """Record that the run stopped early (interrupted or failed), after pending writes."""
        try:
            self.drain()
        except Exception as exc:  # noqa: BLE001 - the run is being marked as stopped anyway
            reason += f"; a checkpoint write failed too ({exc})"
        self._writer.shutdown()
        day = self.manifest["days_completed"]
        self.manifest.update(status=status, stopped=datetime.now(UTC).isoformat(timespec="seconds"),
                             note=f"{reason}; the last checkpoint holds days 0-{day - 1}; "
                                  f"resume with `panopticon run --resume {self.dir}`"
                             if day else f"{reason}; no checkpoint was written")
        write_json(self.dir / "manifest.json", self.manifest)


def chain_table(links: list[tuple[int, int, bytes]]) -> pa.Table:
    """The ledger's hash chain, one row per day: day, rows (ledger rows that day), head (hex)."""
    return pa.table({"day": pa.array([d for d, _, _ in links], pa.int32()),
                     "rows": pa.array([r for _, r, _ in links], pa.int64()),
                     "head": pa.array([h.hex() for _, _, h in links], pa.string())})


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def load_checkpoint(run_dir: Path) -> dict[str, np.ndarray] | None:
    """The state arrays saved at the last checkpoint (None if there is none yet); removes the
    parts written after it."""
    path = run_dir / "checkpoint.npz"
    snap = None
    if path.exists():
        try:
            with np.load(path) as data:
                snap = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: corrupt checkpoint ({exc})") from None
    day = 0 if snap is None else int(snap["day"])
    for table in TABLES:
        for part in (run_dir / table).glob("part-*.parquet"):
            if int(part.stem.split("-")[1]) >= day:
                part.unlink()  # written after the checkpoint: will be written again
    return snap


def read_table(run_dir: Path, table: str) -> pa.Table:
    """One of a run's tables (all its parts, in day order)."""
    if table == "citizens":
        path = run_dir / "citizens.parquet"
        if not path.exists():
            raise UserError(f"{run_dir}: no citizens table (the run did not finish)")
        return pq.read_table(path)
    parts = sorted((run_dir / table).glob("part-*.parquet"))
    if not parts:
        raise UserError(f"{run_dir}: no {table} data yet")
    try:
        return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
    except (OSError, pa.ArrowInvalid) as exc:
        raise UserError(f"{run_dir}/{table}: corrupt Parquet file ({exc})") from None


def find_run(ref: str | Path, root: Path) -> Path:
    """A run folder from a path or a run id under ``root``."""
    for path in (Path(ref), Path(root) / str(ref)):
        if path.is_dir() and (path / "manifest.json").exists():
            return path
    known = [m["run_id"] for m in list_runs(Path(root))][:5] if Path(root).exists() else []
    hint = f"; runs in {root}/ include {', '.join(known)}" if known else ""
    raise UserError(f"no run {str(ref)!r}: give a run folder or a run id{hint} "
                    "(`panopticon runs` lists them)")


def list_runs(root: Path) -> list[dict]:
    """Manifests of every run under ``root``, newest first (unreadable ones flagged)."""
    if not root.exists():
        return []
    _check_store(root)
    out = []
    for d in root.iterdir():
        if not d.is_dir() or not (d / "manifest.json").exists():
            continue
        try:
            out.append({**read_manifest(d), "path": str(d)})
        except UserError as exc:
            out.append({"run_id": d.name, "status": "corrupt", "note": str(exc), "path": str(d)})
    return sorted(out, key=lambda m: m.get("created", ""), reverse=True)
