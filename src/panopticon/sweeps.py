"""Sweeps: a scenario run over a grid of settings, several replicates each, in parallel
processes; every run is stored, and each grid point is summarised with confidence intervals
across its replicates.

A setting is a dotted key into the scenario as written in YAML (``sensors.cameras.
misattribution``, ``policy.association.0.weight``, ``run.citizens``) and a list of values.
Replicate r of a grid point runs with seed ``run.seed + r``, so replicates differ only by
chance and grid points share their seeds (common random numbers: differences between points
are not drowned by seed-to-seed noise).

Processes: never more workers than runs, nor (by default) than the CPUs this process may use;
before any run starts, the memory the concurrent runs need is checked against what the
machine has (:func:`panopticon.resources.check_memory`). Workers are fresh interpreters
(``spawn``: a fork of a process that has run a simulation dies in OpenMP). They ignore
Ctrl-C while idle (the sweep handles it) but not SIGTERM, and die with the sweep: on Linux
the kernel sends them SIGTERM when their parent dies (``PR_SET_PDEATHSIG``), and a watcher
thread in each worker notices a dead parent anyway, stops the worker's run at the end of its
day and ends the worker a few seconds later. Ctrl-C stops the sweep: runs not yet started are cancelled,
running ones are stopped at the end of their day and marked ``interrupted`` (resumable), and
:class:`SweepInterrupted` says which runs are stored and which are not complete.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import itertools
import json
import math
import multiprocessing
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from panopticon.errors import Problem, RunInterrupted, UserError
from panopticon.scenario import ScenarioSpec, assign, scenario_from_data


@dataclass(frozen=True)
class Setting:
    """One swept key and its values (parsed as YAML scalars: ``0.1``, ``true``, ``urban``)."""

    key: str
    values: tuple[Any, ...]

    @classmethod
    def parse(cls, text: str) -> Setting:
        """``key=v1,v2,...`` -> a setting."""
        key, sep, values = text.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UserError(f"--set {text!r}: expected KEY=VALUE[,VALUE...], e.g. "
                            "sensors.cameras.misattribution=0.001,0.01")
        parsed = []
        for v in values.split(","):
            try:
                parsed.append(yaml.safe_load(v.strip()))
            except yaml.YAMLError:
                parsed.append(v.strip())
        return cls(key.strip(), tuple(parsed))


def grid(base: ScenarioSpec, settings: list[Setting]) -> list[tuple[dict, ScenarioSpec]]:
    """Every combination of the settings' values as (values by key, validated scenario)."""
    data = base.model_dump(mode="json")
    out = []
    for combo in itertools.product(*(s.values for s in settings)):
        point = dict(zip((s.key for s in settings), combo, strict=True))
        changed = copy.deepcopy(data)
        for key, value in point.items():
            assign(changed, key, value, "--set ")
        try:
            spec = scenario_from_data(changed, {}, "<sweep>")
        except UserError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in point.items())
            problems = [Problem(p.file, p.line, p.column, p.path, f"{p.message} (with {where})")
                        for p in exc.problems]
            raise UserError("invalid sweep setting", problems) from None
        out.append((point, spec))
    return out


COMPLETE, INTERRUPTED, NOT_STARTED = "complete", "interrupted", "not started"
_STOP_S = 30.0
"""After Ctrl-C: how long running workers get to finish their day and mark their runs
interrupted before they are sent SIGTERM (and SIGKILL :data:`_KILL_S` later)."""
_KILL_S = 5.0
"""How long the sweep waits for workers to exit (after shutdown, SIGTERM, SIGKILL)."""
_WATCH_S = 0.5
"""How often a worker's watcher thread checks that the sweep is still there."""
_ORPHAN_S = 5.0
"""How long an orphaned worker gets to stop its run cleanly before it exits regardless."""
_PR_SET_PDEATHSIG = 1

_stopping: Any = None
"""In a worker: the sweep's 'stop' event (set on Ctrl-C: stop the run at the end of its day,
start no more)."""
_in_run = threading.Event()
"""In a worker: set while it runs a simulation."""


class _StopWhenAsked:
    """A run sink that stops the run at the end of the day once the sweep asks (the run is
    then marked interrupted, as on Ctrl-C)."""

    def __init__(self, event: Any):
        self.event = event

    def day(self, record, state) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt

    def checkpoint(self, state) -> None:
        pass


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a stopped worker) ended a sweep early.

    Attributes:
        runs: one per run of the grid: ``point``, ``replicate``, ``status`` (``complete``,
            ``interrupted``, ``incomplete`` - its process died while running - or ``not
            started``) and ``run`` (its folder, None when not started).
    """

    def __init__(self, runs: list[dict]):
        self.runs = runs
        super().__init__(self.describe())

    def by_status(self, status: str) -> list[dict]:
        """The runs with this status."""
        return [r for r in self.runs if r["status"] == status]

    def describe(self) -> str:
        """Which runs are stored and complete, which are not (with their folders)."""
        done = self.by_status(COMPLETE)
        idle = self.by_status(NOT_STARTED)
        stopped = [r for r in self.runs if r["status"] not in (COMPLETE, NOT_STARTED)]
        lines = [f"the sweep was stopped: {len(done)} of {len(self.runs)} runs complete, "
                 f"{len(stopped)} not complete, {len(idle)} not started; no sweep report "
                 "was written"]
        if done:
            lines.append("complete (stored):")
            lines += [f"  {r['run']}  ({_where(r)})" for r in done]
        if stopped:
            lines.append("not complete (continue one with `panopticon run --resume FOLDER`, "
                         "or delete it):")
            lines += [f"  {r['run'] or '(no folder)'}  {r['status']}  ({_where(r)})"
                      for r in stopped]
        if idle:
            lines.append(f"not started: {len(idle)} runs")
        return "\n".join(lines)


def _where(record: dict) -> str:
    point = ", ".join(f"{k}={v}" for k, v in record["point"].items())
    return f"{point}, replicate {record['replicate']}" if point else \
        f"replicate {record['replicate']}"


def _one(job: tuple) -> dict:
    """Run one grid point's replicate and summarise it (in a worker process, or in the sweep's
    own process with one worker). A run stopped by a signal is reported, not raised:
    ``stopped`` is then set and ``status`` says where the run got."""
    from panopticon import api

    spec_json, store, replicate, point = job
    record: dict[str, Any] = {"point": point, "replicate": replicate, "run": None}
    if _stopping is not None and _stopping.is_set():
        return {**record, "status": NOT_STARTED, "stopped": True}
    spec = ScenarioSpec.model_validate_json(spec_json)
    spec = spec.with_run(seed=spec.run.seed + replicate)
    _in_run.set()
    try:
        result = api.run(spec, out=store, settings=point,
                         progress=None if _stopping is None else _StopWhenAsked(_stopping))
    except RunInterrupted as exc:
        record.update(run=str(exc.path), stopped=True,
                      status=COMPLETE if exc.complete else INTERRUPTED)
        if exc.complete:
            record["summary"] = summarise(api.open_run(exc.path))
        return record
    except KeyboardInterrupt:  # before the run folder was made
        return {**record, "status": NOT_STARTED, "stopped": True}
    finally:
        _in_run.clear()
    return {**record, "run": str(result.path), "status": COMPLETE,
            "summary": summarise(result)}


# ---------------------------------------------------------------- worker processes
def _init_worker(parent: int, stopping: Any) -> None:
    """Set up a worker: Ctrl-C is the sweep's to handle (while a run goes, the run's own
    handler stops it at the end of its day), SIGTERM keeps its default (it ends an idle
    worker; a running one stops at the end of its day), and the worker dies with the sweep."""
    global _stopping
    _stopping = stopping
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """Make this process end when ``parent`` (the sweep) dies: the kernel's parent-death
    signal on Linux, and a watcher thread everywhere (also covers a worker started by a fork
    server, whose parent is not the sweep)."""
    first = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    def orphaned() -> bool:
        return os.getppid() != first or not pid_alive(parent)

    if orphaned():  # the parent died before the kernel was told to watch it
        os._exit(1)
    threading.Thread(target=_watch, args=(orphaned,), name="panopticon-sweep-watch",
                     daemon=True).start()


def _watch(orphaned: Callable[[], bool]) -> None:
    """Once the sweep is gone: stop the run at the end of its day (marked interrupted) and
    end the worker, after at most :data:`_ORPHAN_S`."""
    while not orphaned():
        time.sleep(_WATCH_S)
    if _stopping is not None:
        with contextlib.suppress(Exception):
            _stopping.set()
    deadline = time.monotonic() + _ORPHAN_S
    while _in_run.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # let a run that just stopped finish marking its folder
    os._exit(1)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:][:1] not in ("Z", "X")


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def worker_count(requested: int, jobs: int, cpus: int | None = None) -> int:
    """Processes to start: as requested, but never more than there are runs nor (unless
    ``cpus`` is 0) than the CPUs; at least 1."""
    limit = available_cpus() if cpus is None else cpus
    count = min(requested, jobs)
    if limit:
        count = min(count, limit)
    return max(1, count)


def summarise(result) -> dict[str, float]:
    """The headline numbers of a run: the metrics summary when available, else the last day
    of the daily table."""
    try:
        from panopticon.metrics.run import summary
    except ImportError:  # pragma: no cover - the metrics module is optional
        row = result.daily.slice(result.daily.num_rows - 1).to_pylist()[0]
        return {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
    return summary(result)


def run_sweep(base: ScenarioSpec, settings: list[Setting], replicates: int, store: Path,
              workers: int = 1, progress: Callable[[int, int], None] | None = None,
              force: bool = False, limit_to_cpus: bool = True) -> dict:
    """Run the grid x replicates (in up to ``workers`` processes) and summarise each point.

    Args:
        workers: processes wanted; at most one per run and, with ``limit_to_cpus``, one per
            CPU are started.
        force: skip the memory check (``workers`` concurrent runs of the largest point must
            fit in the memory available).

    Returns:
        ``settings`` (key -> values), ``workers`` (processes used), ``runs`` (one per run:
        point, replicate, run folder, status, summary) and ``points`` (per grid point: the
        setting values and, per metric, mean, sd, the 95% confidence interval of the mean
        across replicates, and n).

    Raises:
        UserError: a bad setting, or not enough memory (without ``force``).
        SweepInterrupted: Ctrl-C, or a worker's run stopped by a signal; says which runs are
            complete and which are not.
    """
    from panopticon.resources import check_memory, estimate_peak_bytes

    if replicates < 1:
        raise UserError("--replicates must be at least 1")
    points = grid(base, settings)
    jobs = [(spec.model_dump_json(), str(store), r, point)
            for point, spec in points for r in range(replicates)]
    used = worker_count(workers, len(jobs), None if limit_to_cpus else 0)
    largest = max((spec for _, spec in points), key=estimate_peak_bytes)
    check_memory(largest, force, runs=used)
    store.mkdir(parents=True, exist_ok=True)
    digests = [spec.with_run(seed=spec.run.seed + r).digest
               for _, spec in points for r in range(replicates)]
    if used <= 1:
        done = _run_here(jobs, digests, store, progress)
    else:
        done = _run_pool(jobs, digests, store, used, progress)
    return {"scenario": base.name, "replicates": replicates, "workers": used,
            "settings": {s.key: list(s.values) for s in settings}, "runs": done,
            "points": [summarise_point(point, [d["summary"] for d in done
                                              if d["point"] == point])
                       for point, _ in points]}


def _run_here(jobs: list[tuple], digests: list[str], store: Path,
              progress: Callable[[int, int], None] | None) -> list[dict]:
    """The runs one after another in this process."""
    done: list[dict] = []
    try:
        for job in jobs:
            record = _one(job)
            done.append(record)
            if record.get("stopped"):
                raise KeyboardInterrupt
            if progress:
                progress(len(done), len(jobs))
    except KeyboardInterrupt:
        raise SweepInterrupted(_account(jobs, digests, dict(enumerate(done)), store,
                                        {os.getpid()})) from None
    return done


def _run_pool(jobs: list[tuple], digests: list[str], store: Path, workers: int,
              progress: Callable[[int, int], None] | None) -> list[dict]:
    """The runs in ``workers`` processes; on Ctrl-C (or a run stopped in a worker) the
    processes are stopped and :class:`SweepInterrupted` raised."""
    # Fresh interpreters, not forks: a process that has run a simulation has started
    # OpenMP threads, and a fork of it dies as soon as it runs one itself.
    context = multiprocessing.get_context("spawn")
    stopping = context.Event()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_init_worker, initargs=(os.getpid(), stopping))
    futures: dict[Future, int] = {}
    records: dict[int, dict] = {}
    pids: set[int] = set()
    try:
        for i, job in enumerate(jobs):
            futures[pool.submit(_one, job)] = i
        pids = {p.pid for p in _processes(pool)}
        for future in as_completed(futures):
            record = future.result()
            records[futures[future]] = record
            if record.get("stopped"):
                raise KeyboardInterrupt
            if progress:
                progress(len(records), len(jobs))
    except KeyboardInterrupt:
        pids |= {p.pid for p in _processes(pool)}
        _stop_pool(pool, futures, records, stopping)
        raise SweepInterrupted(_account(jobs, digests, records, store, pids)) from None
    except BrokenProcessPool:
        pids |= {p.pid for p in _processes(pool)}
        _stop_pool(pool, futures, records, stopping)
        account = SweepInterrupted(_account(jobs, digests, records, store, pids))
        raise UserError("a sweep worker process died unexpectedly (killed, or out of "
                        "memory?); the sweep was stopped.\n" + account.describe()) from None
    except BaseException:
        _stop_pool(pool, futures, records, stopping)
        raise
    pool.shutdown(wait=True)
    return [records[i] for i in range(len(jobs))]


def _processes(pool: ProcessPoolExecutor) -> list:
    return list((getattr(pool, "_processes", None) or {}).values())


def _stop_pool(pool: ProcessPoolExecutor, futures: dict[Future, int], records: dict[int, dict],
               stopping: Any) -> None:
    """Cancel what has not started; running runs stop at the end of their day (asked
    through ``stopping``) and are marked interrupted; idle workers are let go. Workers still
    there after :data:`_STOP_S` (or at a second Ctrl-C) get SIGTERM, then SIGKILL. Collects
    the records of runs that returned meanwhile."""
    stopping.set()
    processes = _processes(pool)
    for future in futures:
        future.cancel()
    try:
        wait([f for f in futures if not f.done()], timeout=_STOP_S)
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + _KILL_S
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
        pass
    finally:
        _end(processes, signal.SIGTERM)
        _end(processes, signal.SIGKILL)
        pool.shutdown(wait=False, cancel_futures=True)
    for future, i in futures.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            records.setdefault(i, future.result())


def _end(processes: list, signum: int) -> None:
    """Send ``signum`` to the processes still alive and wait for them (briefly)."""
    alive = [p for p in processes if p.is_alive()]
    for p in alive:
        with contextlib.suppress(OSError):
            os.kill(p.pid, signum)
    deadline = time.monotonic() + _KILL_S
    for p in alive:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))


def _account(jobs: list[tuple], digests: list[str], records: dict[int, dict], store: Path,
             pids: set[int]) -> list[dict]:
    """Every run of an interrupted sweep with its status: what the runs returned, else what
    the store holds for a run of that scenario and seed written by one of ``pids``, else
    not started."""
    from panopticon.store.local import read_manifest

    found: dict[str, list[tuple[Path, dict]]] = {}
    for folder in sorted(store.iterdir()) if store.is_dir() else []:
        try:
            manifest = read_manifest(folder) if folder.is_dir() else None
        except UserError:
            continue
        if manifest and manifest.get("pid") in pids:
            found.setdefault(manifest.get("scenario_digest", ""), []).append((folder, manifest))
    claimed = {r["run"] for r in records.values() if r.get("run")}
    out = []
    for i, (_, _, replicate, point) in enumerate(jobs):
        record = records.get(i)
        if record is None or record["status"] == NOT_STARTED:
            record = {"point": point, "replicate": replicate, "run": None,
                      "status": NOT_STARTED}
            for folder, manifest in found.get(digests[i], []):
                if str(folder) not in claimed:
                    claimed.add(str(folder))
                    record.update(run=str(folder), status=manifest["status"])
                    break
        out.append({k: v for k, v in record.items() if k != "stopped"})
    return out


def summarise_point(point: dict, summaries: list[dict[str, float]],
                    bounds: Callable[[str], tuple[float | None, float | None]] | None = None
                    ) -> dict:
    """Mean, sample standard deviation, 95% confidence interval of the mean and n of every
    metric over one grid point's replicates (NaNs left out), with the interval's ``method``.

    The interval stays within the metric's range (``bounds(name)``; default
    :func:`panopticon.metrics.run.summary_bounds`), by
    :func:`panopticon.metrics.intervals.mean_interval`: Student's t for an unbounded metric
    (``"t"``), t on the logit scale for a share in [0, 1] (``"logit"``), on the log scale for
    a count or ratio >= 0 (``"log"``). One replicate: NaN bounds."""
    from panopticon.metrics.intervals import mean_interval

    if bounds is None:
        from panopticon.metrics.run import summary_bounds as bounds
    metrics: dict[str, dict[str, Any]] = {}
    for name in sorted({k for s in summaries for k in s}):
        values = [s[name] for s in summaries if name in s and not math.isnan(s[name])]
        if not values:
            continue
        lower, upper = bounds(name)
        metrics[name] = mean_interval(values, lower, upper)
    return {"point": point, "metrics": metrics}


def save(report: dict, store: Path) -> Path:
    """Write the sweep report next to its runs; returns the file, named
    ``sweep-<scenario>-<UTC time>-<pid>-<random>.json`` and created exclusively: two sweeps
    never write to one file, whenever they run."""
    store.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=str)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for _ in range(100):
        path = store / (f"sweep-{report['scenario']}-{stamp}-{os.getpid()}-"
                        f"{secrets.token_hex(3)}.json")
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            continue
        return path
    raise UserError(f"{store}: cannot create a sweep report file")  # pragma: no cover
