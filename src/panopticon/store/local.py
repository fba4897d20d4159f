"""One folder per run.

```
<run>/manifest.json        status (running | complete | interrupted | failed), scenario digest,
                           seed, code version, timings, result fingerprint, and ``files``: the
                           size and SHA-256 of every file below (what the run wrote)
<run>/scenario.json        the resolved scenario (re-run it bit for bit)
<run>/daily/part-*.parquet events/… ledger/… observations/…   written at each checkpoint
<run>/digests/part-*.parquet    per day and table: rows and a digest of their values
<run>/ledger_chain/part-*.parquet   per day: the ledger's rows and hash-chain head
<run>/citizens.parquet     attributes and final standing (written last)
<run>/checkpoint-DDDDD.npz state after day DDDDD - 1 (for --resume), named in the manifest
<run>/.lock                held by the one process writing the run
```
Part files and the checkpoint are written before the manifest that names them, and the
manifest is replaced atomically, so a run killed at any moment is either resumable from its
last checkpoint or clearly marked as not complete; files a killed process wrote after its last
manifest are leftovers that no reader reads and resume removes.

Every reader opens a run through :func:`open_checked`: a file the manifest lists that is
missing or of another size, and a part it does not list, make the run unreadable (a
:class:`~panopticon.errors.UserError` naming the file). ``panopticon audit`` checks the
SHA-256 of every file too.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import re
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from panopticon import ledger
from panopticon.errors import UserError
from panopticon.store import digest
from panopticon.store.tables import Collector, citizens_table

DATA_TABLES = ("daily", "events", "ledger", "observations", "lists", "opportunities",
               "refusals", "appeals", "manipulations", "behaviour", "network", "network_groups")
"""The tables a run's days produce, each a folder of Parquet parts with a ``day`` column."""
TABLES = (*DATA_TABLES, "ledger_chain", "digests")
"""Every table folder of a run. The store writes two of its own: ``ledger_chain`` (day, rows,
head: the ledger's hash chain after each day) and ``digests`` (day, table, rows, digest: what
each day's rows of each data table hash to, see :mod:`panopticon.store.digest`)."""
COMPLETE, RUNNING, INTERRUPTED, FAILED = "complete", "running", "interrupted", "failed"
PART = re.compile(r"^part-(\d{5})-(\d{5})\.parquet$")
CHECKPOINT = re.compile(r"^checkpoint-(\d{5})\.npz$")
MANIFEST_KEYS = {"scenario": str, "scenario_digest": str, "seed": int, "citizens": int,
                 "days": int, "days_completed": int, "status": str, "files": dict,
                 "rules": list}
"""Keys every manifest has, with their types (a manifest without them is corrupt)."""


def parquet_bytes(table: pa.Table) -> bytes:
    """Parquet with fast zstd; dictionary pages only for the columns that are categories."""
    out = io.BytesIO()
    write_parquet_to(table, out)
    return out.getvalue()


def write_parquet_to(table: pa.Table, f) -> None:
    """Write ``table`` to the open binary file ``f``, as :func:`parquet_bytes` gives it."""
    categories = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    pq.write_table(table, f, compression="zstd", compression_level=1,
                   use_dictionary=categories or False)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` as :func:`parquet_bytes` (atomically)."""
    _atomic_write(path, lambda f: write_parquet_to(table, f))


def _atomic_write(path: Path, data: bytes | Callable[[Any], None]) -> None:
    """Write ``data`` (bytes, or a function that writes to the open file) to a temp file,
    sync it and rename it into place."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave half a file behind (a full disk frees it)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    _atomic_write(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def file_entry(data: bytes) -> list:
    """What the manifest records of a file: [bytes, sha256]."""
    return [len(data), hashlib.sha256(data).hexdigest()]


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- reading
def read_manifest(run_dir: Path) -> dict:
    """A run's manifest, with ``status`` corrected for a process that died while running.

    Raises:
        UserError: no manifest, or one that is not a run's (unreadable, not JSON, not an
            object, a key missing or of the wrong type), naming the file and the problem.
    """
    path = run_dir / "manifest.json"
    if not path.exists():
        raise UserError(f"{run_dir}: not a panopticon run (no manifest.json)")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: corrupt manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: corrupt manifest (a JSON object expected, found "
                        f"{type(manifest).__name__})")
    for key, kind in MANIFEST_KEYS.items():
        value = manifest.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"{path}: corrupt manifest ({key!r} should be a "
                            f"{kind.__name__}, found {value!r:.60})")
    for key in ("checkpoint", "result", "timings"):
        if not isinstance(manifest.get(key, {}), dict):
            raise UserError(f"{path}: corrupt manifest ({key!r} should be an object)")
    if manifest.get("ledger_format", 2) not in ledger.FORMATS:
        raise UserError(f"{path}: corrupt manifest ('ledger_format' should be one of "
                        f"{list(ledger.FORMATS)}, found {manifest['ledger_format']!r:.60})")
    if not 0 <= manifest["days_completed"] <= manifest["days"]:
        raise UserError(f"{path}: corrupt manifest (days_completed "
                        f"{manifest['days_completed']} is not within 0-{manifest['days']})")
    if manifest["status"] == RUNNING and not _alive(manifest):
        manifest["status"] = "incomplete"
        manifest["note"] = "the process that wrote this run is gone; resume it or delete it"
    return manifest


def _alive(manifest: dict) -> bool:
    if manifest.get("host") != socket.gethostname():
        return True  # cannot tell; trust the status
    try:
        os.kill(int(manifest.get("pid", -1)), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


def leftover(name: str, manifest: dict) -> bool:
    """A file the writer left that its manifest does not list and no reader reads: a part a
    run that stopped early wrote after its last manifest (starting at or after
    ``days_completed``), or a checkpoint other than the one the manifest names. Resume
    removes them."""
    if CHECKPOINT.match(name):
        return True  # unlisted: a newer one not yet recorded, or an old one not yet removed
    part = PART.match(name)
    return manifest["status"] != COMPLETE and part is not None \
        and int(part.group(1)) >= manifest["days_completed"]


def check_files(run_dir: Path, manifest: dict, deep: bool = False) -> list[str]:
    """What is wrong with a run's files against its manifest: a listed file missing or of
    another size (with ``deep``, of another SHA-256), a part or checkpoint it does not list.

    Returns:
        One line per problem, each naming the file (empty: the files are as written).
    """
    problems = []
    listed = manifest["files"]
    for rel, entry in sorted(listed.items()):
        path = run_dir / rel
        if not (isinstance(entry, list) and len(entry) == 2 and Path(rel).parts
                and ".." not in Path(rel).parts and not Path(rel).is_absolute()):
            problems.append(f"{path}: the manifest's entry is corrupt")
        elif not path.is_file():
            problems.append(f"{path}: missing (the run wrote it)")
        elif path.stat().st_size != entry[0]:
            problems.append(f"{path}: {path.stat().st_size:,} bytes, the run wrote "
                            f"{entry[0]:,}")
        elif deep and sha256_of(path) != entry[1]:
            problems.append(f"{path}: altered (its SHA-256 is not the one the run wrote)")
    for table in TABLES:
        folder = run_dir / table
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                rel = f"{table}/{p.name}"
                if rel not in listed and not p.name.endswith(".tmp") \
                        and not leftover(p.name, manifest):
                    problems.append(f"{p}: not written by the run (not in its manifest)")
    for p in sorted(run_dir.glob("checkpoint*")):
        if p.name not in listed and not p.name.endswith(".tmp") \
                and not leftover(p.name, manifest):
            problems.append(f"{p}: not written by the run (not in its manifest)")
    if "checkpoint" in manifest and manifest["checkpoint"].get("file") not in listed:
        problems.append(f"{run_dir}/manifest.json: names a checkpoint it does not list")
    if manifest["status"] == COMPLETE and "citizens.parquet" not in listed:
        problems.append(f"{run_dir / 'citizens.parquet'}: not in the manifest of a complete run")
    return problems


def open_checked(run_dir: Path) -> dict:
    """A run's manifest once its files are checked (listed files present with their sizes,
    no unlisted part): what every reader calls first.

    Raises:
        UserError: the first problem, and how many there are; ``panopticon audit`` lists all.
    """
    manifest = read_manifest(run_dir)
    problems = check_files(run_dir, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise UserError(f"{problems[0]}{more}: the run is damaged or tampered with; "
                        f"`panopticon audit {run_dir}` lists what is wrong")
    return manifest


def table_parts(run_dir: Path, table: str, manifest: dict | None = None) -> list[Path]:
    """The Parquet parts of one of a run's tables, in day order: exactly the files its
    manifest lists (never a glob over the folder). Without ``manifest``, the run is opened
    with :func:`open_checked`."""
    manifest = open_checked(run_dir) if manifest is None else manifest
    names = sorted(rel.split("/", 1)[1] for rel in manifest["files"]
                   if rel.startswith(f"{table}/"))
    return [run_dir / table / name for name in names]


def read_table(run_dir: Path, table: str, manifest: dict | None = None,
               columns: list[str] | None = None) -> pa.Table:
    """One of a run's tables (all its parts, in day order), or the citizens table."""
    manifest = open_checked(run_dir) if manifest is None else manifest
    if table == "citizens":
        path = run_dir / "citizens.parquet"
        if "citizens.parquet" not in manifest["files"]:
            raise UserError(f"{run_dir}: no citizens table (the run did not finish)")
        parts = [path]
    else:
        parts = table_parts(run_dir, table, manifest)
        if not parts:
            raise UserError(f"{run_dir}: no {table} data yet")
    tables = []
    for p in parts:
        try:
            tables.append(pq.read_table(p, columns=columns))
            tables[-1].column_names  # noqa: B018 - names are decoded lazily: fail here, named
        except (OSError, pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"{p}: corrupt Parquet file ({str(exc).splitlines()[0]})") from None
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowException as exc:
        raise UserError(f"{run_dir}/{table}: its parts disagree on their columns "
                        f"({str(exc).splitlines()[0]}); the run is damaged or tampered with"
                        ) from None


def read_scenario(run_dir: Path, manifest: dict):
    """The run's resolved scenario (``scenario.json``), checked against the manifest's
    digest; a :class:`panopticon.scenario.ScenarioSpec`."""
    from panopticon.scenario import ScenarioSpec, canonical_digest

    path = run_dir / "scenario.json"
    try:
        raw = path.read_bytes()
        spec = ScenarioSpec.model_validate_json(raw)
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: missing or corrupt ({first})") from None
    # runs written before digests left defaults out bound the file as written, every key
    # included: its digest as stored still identifies it
    recorded = manifest["scenario_digest"]
    if recorded != spec.digest and recorded != canonical_digest(data):
        raise UserError(f"{path}: not the scenario this run was started with (its digest "
                        f"differs from the manifest's scenario_digest)")
    return spec


def find_run(ref: str | Path, root: Path) -> Path:
    """A run folder from a path or a run id under ``root``."""
    for path in (Path(ref), Path(root) / str(ref)):
        if path.is_dir() and (path / "manifest.json").exists():
            return path
    known = [m["run_id"] for m in list_runs(Path(root))][:5] if Path(root).is_dir() else []
    hint = f"; runs in {root}/ include {', '.join(known)}" if known else ""
    raise UserError(f"no run {str(ref)!r}: give a run folder or a run id{hint} "
                    "(`panopticon runs` lists them)")


def list_runs(root: Path) -> list[dict]:
    """Manifests of every run under ``root``, newest first; ``run_id`` is the folder's name
    (how a run is addressed). A run whose manifest is unreadable is listed as ``corrupt``,
    one whose files do not match it as ``damaged``, with the problem in ``note``."""
    if not root.exists():
        return []
    _check_store(root)
    out = []
    for d in root.iterdir():
        if not d.is_dir() or not (d / "manifest.json").exists():
            continue
        try:
            manifest = read_manifest(d)
        except UserError as exc:
            out.append({"run_id": d.name, "status": "corrupt", "note": str(exc), "path": str(d)})
            continue
        problems = check_files(d, manifest)
        if problems:
            manifest = {**manifest, "status": "damaged", "note": problems[0]
                        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")}
        if manifest.get("run_id") not in (None, d.name):
            manifest = {**manifest, "copy_of": manifest["run_id"]}
        out.append({**manifest, "run_id": d.name, "path": str(d)})
    return sorted(out, key=lambda m: str(m.get("created", "")), reverse=True)


# ---------------------------------------------------------------- writing
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


class RunLock:
    """The one writer of a run folder: an exclusive ``flock`` on ``<run>/.lock``, which holds
    the writer's pid and host. The kernel drops it when the process dies, so a crashed
    writer never leaves a stale lock."""

    def __init__(self, run_dir: Path):
        path = run_dir / ".lock"
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"{path}: cannot lock the run for writing ({exc.strerror})") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise UserError(f"{run_dir}: the run is being written by {holder}; one writer "
                                "at a time (wait for it, or stop it first)") from None
            raise
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)

    def release(self) -> None:
        """Let another writer in (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def describe(sim, code_version: str) -> dict:
    """What a run is: scenario, digest, seed, size, code version, and its names."""
    spec = sim.scenario
    return {"scenario": spec.name, "description": spec.description.strip(),
            "scenario_digest": spec.digest, "seed": spec.run.seed,
            "citizens": spec.run.citizens, "days": spec.run.days, "code_version": code_version,
            "ledger_format": ledger.FORMAT, "events": list(sim.events),
            "tiers": list(sim.policy.tier_names),
            "rules": list(sim.policy.rule_labels), "sources": list(sim.sensors.names)}


def ledger_format(manifest: dict) -> int:
    """The ledger format a run was written in (runs that do not say are format 2)."""
    return manifest.get("ledger_format", 2)


def result_of(state, content_head: str, citizens: pa.Table) -> dict:
    """What a finished run came to: its fingerprint (see
    :func:`panopticon.store.digest.run_fingerprint`) and the parts it binds."""
    parts = {"state_fingerprint": state.fingerprint(), "ledger_head": state.ledger_head.hex(),
             "content_head": content_head, "citizens_digest": digest.table_digest(citizens)}
    return {"fingerprint": digest.run_fingerprint(*parts.values()), **parts}


class Digester:
    """Digests a run's tables day by day and advances the content chain (see
    :mod:`panopticon.store.digest`); used by the store and by in-memory runs alike."""

    def __init__(self, head: bytes):
        self.head = head

    def add(self, tables: dict[str, pa.Table], days: list[int]) -> pa.Table:
        """Digest the tables of ``days``; returns their ``digests`` table."""
        return self.add_digests({name: digest.day_digests(tables[name])
                                 for name in DATA_TABLES}, days)

    def add_digests(self, found: dict[str, list[tuple[int, int, str]]], days: list[int]
                    ) -> pa.Table:
        """:meth:`add` from each data table's :func:`~panopticon.store.digest.day_digests`
        (by name, in :data:`DATA_TABLES` order)."""
        entries = digest.entries(found, days)
        self.head = digest.chain(self.head, entries)
        return digest.digests_table(entries)


class RunWriter:
    """A :class:`panopticon.engine.Sink` that writes the run folder (holding its lock)."""

    QUEUE = 1
    """Writes (parts or checkpoints) handed to the background writer and not yet done, at
    most: when the disk is slower than the day loop, the loop waits rather than hold every
    day's records."""

    def __init__(self, sim, run_dir: Path, manifest: dict, lock: RunLock, content_head: bytes):
        self.sim = sim
        self.dir = run_dir
        self.manifest = manifest
        self.lock = lock
        self.buffer = Collector(sim)
        self.digester = Digester(content_head)
        # Days buffered beyond ``run.write_buffer_mb`` are written as parts before the next
        # checkpoint; they stay out of the manifest until that checkpoint lists them with its
        # snapshot (a run stopped before it resumes from the checkpoint and writes them
        # again), so memory is bounded by the buffer, not by a checkpoint interval of days.
        self.flush_bytes = sim.scenario.run.write_buffer_mb * 1e6
        self.unlisted: dict[str, list] = {}  # parts written since the last checkpoint
        self.write_s = 0.0
        # One background writer: parts, then checkpoint, then manifest, strictly in order,
        # while the day loop goes on (Parquet encoding and the Numba kernels release the GIL).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="panopticon-store")
        self._pending: list[Future] = []
        for t in TABLES:
            (run_dir / t).mkdir(exist_ok=True)

    @classmethod
    def create(cls, sim, root: Path, code_version: str,
               settings: dict[str, Any] | None = None) -> RunWriter:
        """Start a new run folder with a manifest marked ``running`` (``settings``: what
        this run varies, e.g. a sweep's grid point)."""
        spec = sim.scenario
        run_dir = new_run_dir(root, spec.name, spec.run.seed)
        lock = RunLock(run_dir)
        scenario = json.dumps(spec.model_dump(mode="json"), indent=2).encode()
        _atomic_write(run_dir / "scenario.json", scenario)
        manifest = {
            **describe(sim, code_version), "run_id": run_dir.name, "status": RUNNING,
            "days_completed": 0, "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "pid": os.getpid(), "host": socket.gethostname(), "timings": {},
            "settings": dict(settings or {}), "files": {"scenario.json": file_entry(scenario)},
        }
        write_json(run_dir / "manifest.json", manifest)
        return cls(sim, run_dir, manifest, lock, digest.genesis(spec.digest))

    @classmethod
    def reopen(cls, sim, run_dir: Path, manifest: dict, lock: RunLock) -> RunWriter:
        """Continue writing a stopped run from its checkpoint (see :func:`prepare_resume`):
        remove what the stopped process wrote after its last manifest, mark it running."""
        _remove_leftovers(run_dir, manifest)
        manifest = {k: v for k, v in manifest.items() if k not in ("note", "stopped")}
        manifest.update(status=RUNNING, pid=os.getpid(), host=socket.gethostname())
        write_json(run_dir / "manifest.json", manifest)
        head = manifest["checkpoint"]["content_head"] if manifest["days_completed"] else None
        return cls(sim, run_dir, manifest, lock,
                   bytes.fromhex(head) if head else digest.genesis(sim.scenario.digest))

    def day(self, record, state) -> None:  # noqa: D102 - Sink
        self.buffer.add(record)
        if self.buffer.nbytes > self.flush_bytes:
            self._submit(self._write_parts, self._take(state))

    def checkpoint(self, state) -> None:  # noqa: D102 - Sink
        """Hand the buffered days and a copy of the state to the background writer; a state
        larger than the write buffer is written from the state itself, the day loop waiting
        (a copy of 10 million citizens' state would be gigabytes)."""
        day, head, taken = state.day, state.ledger_head.hex(), self._take(state)
        arrays = state.snapshot(copy=False)
        if sum(np.asarray(v).nbytes for v in arrays.values()) <= self.flush_bytes:
            self._submit(self._write, taken, state.snapshot(), day, head)
        else:
            self.drain()
            self._write(taken, arrays, day, head)

    def _take(self, state) -> tuple[Collector, list[tuple[int, int, bytes]]]:
        """The buffered days and their ledger links, handed over; a fresh buffer."""
        buffered, self.buffer = self.buffer, Collector(self.sim)
        return buffered, state.chain.take_links()

    def _submit(self, fn, *args) -> None:
        self._raise_failed()
        while len(self._pending) >= self.QUEUE:  # bounded memory: wait for the oldest write
            self._pending.pop(0).result()
        self._pending.append(self._writer.submit(fn, *args))

    def _put(self, rel: str, table: pa.Table, files: dict | None = None) -> None:
        """Write ``table`` as Parquet straight to its file (no copy of it in memory) and list
        it, hashed from the disk."""
        path = self.dir / rel
        _atomic_write(path, lambda f: write_parquet_to(table, f))
        (self.manifest["files"] if files is None else files)[rel] = [path.stat().st_size,
                                                                    sha256_of(path)]

    def _write_parts(self, taken: tuple[Collector, list]) -> None:
        """The buffered days as one part per table, not yet in the manifest. One table at a
        time is built, digested, written and dropped: the buffer's days as tables would
        take some times the buffer's memory."""
        t0 = time.perf_counter()
        buffered, links = taken
        if buffered.days:
            name = f"part-{buffered.days[0]:05d}-{buffered.days[-1]:05d}.parquet"
            found = {}
            for table in DATA_TABLES:
                data = buffered.table(table)
                buffered.drop(table)
                found[table] = digest.day_digests(data)
                self._put(f"{table}/{name}", data, self.unlisted)
                del data
            self._put(f"digests/{name}", self.digester.add_digests(found, buffered.days),
                      self.unlisted)
            self._put(f"ledger_chain/{name}", chain_table(links), self.unlisted)
        self.write_s += time.perf_counter() - t0

    def _write(self, taken: tuple[Collector, list], snapshot: dict, day: int,
               head: str) -> None:
        """The last parts and the snapshot, then one manifest that lists them all."""
        self._write_parts(taken)
        t0 = time.perf_counter()
        files = self.manifest["files"]
        files.update(self.unlisted)
        self.unlisted = {}
        old = self.manifest.get("checkpoint", {}).get("file")
        checkpoint = f"checkpoint-{day:05d}.npz"
        # straight to the file, hashed from the disk: a checkpoint of 10 million citizens
        # is gigabytes, and never a second copy in memory
        _atomic_write(self.dir / checkpoint, lambda f: np.savez(f, **snapshot))
        path = self.dir / checkpoint
        self.manifest["files"][checkpoint] = [path.stat().st_size, sha256_of(path)]
        self.manifest["checkpoint"] = {"file": checkpoint, "day": day, "ledger_head": head,
                                       "content_head": self.digester.head.hex()}
        self.manifest["days_completed"] = day
        if old and old != checkpoint:
            files.pop(old, None)
        write_json(self.dir / "manifest.json", self.manifest)
        if old and old != checkpoint:
            (self.dir / old).unlink(missing_ok=True)
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
        citizens = citizens_table(self.sim, state)
        self._put("citizens.parquet", citizens)
        self.write_s += time.perf_counter() - t0
        self.manifest.update(
            status=COMPLETE, finished=datetime.now(UTC).isoformat(timespec="seconds"),
            timings={**timings, "write_s": round(self.write_s, 3)},
            result=result_of(state, self.digester.head.hex(), citizens),
        )
        write_json(self.dir / "manifest.json", self.manifest)
        self.lock.release()

    def mark(self, status: str, reason: str) -> None:
        """Record that the run stopped early (interrupted or failed), after pending writes."""
        try:
            self.drain()
        except Exception as exc:  # noqa: BLE001 - the run is being marked as stopped anyway
            reason += f"; a checkpoint write failed too ({describe_error(exc)})"
        self._writer.shutdown()
        day = self.manifest["days_completed"]
        self.manifest.update(status=status, stopped=datetime.now(UTC).isoformat(timespec="seconds"),
                             note=f"{reason}; the last checkpoint holds days 0-{day - 1}; "
                                  f"resume with `panopticon run --resume {self.dir}`"
                             if day else f"{reason}; no checkpoint was written")
        try:
            write_json(self.dir / "manifest.json", self.manifest)
        finally:
            self.lock.release()


def describe_error(exc: BaseException) -> str:
    """An error as a user reads it (a full disk said in words)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the disk is full ({exc.filename or 'writing the run'})"
    return f"{type(exc).__name__}: {exc}"


def chain_table(links: list[tuple[int, int, bytes]]) -> pa.Table:
    """The ledger's hash chain, one row per day: day, rows (ledger rows that day), head (hex)."""
    return pa.table({"day": pa.array([d for d, _, _ in links], pa.int32()),
                     "rows": pa.array([r for _, r, _ in links], pa.int64()),
                     "head": pa.array([h.hex() for _, _, h in links], pa.string())})


# ---------------------------------------------------------------- resuming
def prepare_resume(run_dir: Path) -> tuple[dict, Any, dict[str, np.ndarray] | None, RunLock]:
    """Everything resume needs, checked before anything is changed: the lock (one writer),
    the manifest, the scenario (its digest, seed and size as the manifest says), every file
    the run wrote (present, same size and SHA-256) and the checkpoint (named by the manifest,
    at the day the manifest says). :meth:`RunWriter.reopen` then removes the leftovers of the
    stopped process.

    Returns:
        (manifest, scenario spec, checkpoint arrays or None before the first, the lock)
    Raises:
        UserError: naming what is wrong; nothing in the folder was changed.
    """
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    if not (run_dir / "manifest.json").exists():
        raise UserError(f"{run_dir}: not a panopticon run (no manifest.json)")
    lock = RunLock(run_dir)
    try:
        manifest = read_manifest(run_dir)
        if manifest["status"] == COMPLETE:
            raise UserError(f"{run_dir}: the run is already complete")
        spec = read_scenario(run_dir, manifest)
        written = ledger_format(manifest)
        if written != ledger.FORMAT:
            raise UserError(f"{run_dir}: written by an older panopticon ({manifest['code_version']}, "
                            f"ledger format {written}); this version continues runs of format "
                            f"{ledger.FORMAT} only: run the scenario again (the stored run "
                            "can still be read and audited)")
        for key, value in (("seed", spec.run.seed), ("citizens", spec.run.citizens),
                           ("days", spec.run.days), ("scenario", spec.name)):
            if manifest[key] != value:
                raise UserError(f"{run_dir}/manifest.json: {key} is {manifest[key]!r} but the "
                                f"scenario says {value!r}; the run cannot be resumed")
        problems = check_files(run_dir, manifest, deep=True)
        if problems:
            raise UserError(f"{problems[0]}: cannot resume a damaged run"
                            + (f" ({len(problems) - 1} more problems)" if len(problems) > 1
                               else "") + f"; `panopticon audit {run_dir}` lists them")
        day = manifest["days_completed"]
        snapshot = _load_checkpoint(run_dir, manifest) if day else None
        for table in TABLES:
            for part in table_parts(run_dir, table, manifest):
                if int(PART.match(part.name).group(2)) >= day:
                    raise UserError(f"{part}: listed in the manifest but after its checkpoint "
                                    f"(day {day}); the run cannot be resumed")
        return manifest, spec, snapshot, lock
    except BaseException:
        lock.release()
        raise


def _load_checkpoint(run_dir: Path, manifest: dict) -> dict[str, np.ndarray]:
    entry = manifest.get("checkpoint")
    if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("file", "ledger_head", "content_head")):
        raise UserError(f"{run_dir}/manifest.json: corrupt manifest (no usable checkpoint "
                        "entry although days were completed)")
    path = run_dir / entry["file"]
    if entry["file"] not in manifest["files"] or not CHECKPOINT.match(entry["file"]) \
            or entry.get("day") != manifest["days_completed"]:
        raise UserError(f"{path}: the manifest names a checkpoint it did not write, or at "
                        f"another day than days_completed ({manifest['days_completed']})")
    try:
        with np.load(path, allow_pickle=False) as data:
            snap = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise UserError(f"{path}: corrupt checkpoint ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise UserError(f"{path}: corrupt checkpoint ({type(exc).__name__}: {exc})") from None
    if "day" not in snap or snap["day"].shape != () or int(snap["day"]) != entry["day"]:
        raise UserError(f"{path}: its day is not the manifest's days_completed "
                        f"({manifest['days_completed']})")
    return snap


def _remove_leftovers(run_dir: Path, manifest: dict) -> None:
    """Files the stopped process wrote after its last manifest (they will be written again)."""
    folders = [run_dir / t for t in TABLES if (run_dir / t).is_dir()]
    for folder in [run_dir, *folders]:
        for p in folder.iterdir():
            rel = p.relative_to(run_dir).as_posix()
            if rel not in manifest["files"] and (leftover(p.name, manifest)
                                                 or p.name.endswith(".tmp")):
                p.unlink()
