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


ENGINES = ("processes", "ray")


def run_sweep(base: ScenarioSpec, settings: list[Setting], replicates: int, store: Path,
              workers: int = 1, progress: Callable[[int, int], None] | None = None,
              force: bool = False, limit_to_cpus: bool = True, engine: str = "processes",
              ray_address: str | None = None) -> dict:
    """Run the grid x replicates (in up to ``workers`` processes) and summarise each point.

    Args:
        workers: processes wanted; at most one per run and, with ``limit_to_cpus``, one per
            CPU are started. With ``engine="ray"`` and no address: the CPUs of the local
            Ray cluster started for the sweep.
        force: skip the memory check (``workers`` concurrent runs of the largest point must
            fit in the memory available).
        engine: ``processes`` (a pool on this machine) or ``ray``: each run a Ray task, on
            the cluster at ``ray_address`` (``auto``: the one ``ray start`` made on this
            machine) or on a local cluster started for the sweep. On a cluster the store
            must be a folder every node sees under the same path (a shared filesystem), and
            every node needs panopticon installed; results do not depend on the engine.

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
    if engine not in ENGINES:
        raise UserError(f"--engine {engine!r}: choose {' or '.join(ENGINES)}")
    if ray_address is not None and engine != "ray":
        raise UserError("--ray-address needs --engine ray")
    points = grid(base, settings)
    store = store.resolve()  # a Ray worker may start in another folder
    jobs = [(spec.model_dump_json(), str(store), r, point)
            for point, spec in points for r in range(replicates)]
    used = worker_count(workers, len(jobs), None if limit_to_cpus else 0)
    if ray_address is None:  # on this machine: the memory check holds
        largest = max((spec for _, spec in points), key=estimate_peak_bytes)
        check_memory(largest, force, runs=used)
    store.mkdir(parents=True, exist_ok=True)
    digests = [spec.with_run(seed=spec.run.seed + r).digest
               for _, spec in points for r in range(replicates)]
    if engine == "ray":
        done = _run_ray(jobs, digests, store, used, ray_address, progress)
    elif used <= 1:
        done = _run_here(jobs, digests, store, progress)
    else:
        done = _run_pool(jobs, digests, store, used, progress)
    return {"scenario": base.name, "replicates": replicates, "workers": used, "engine": engine,
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


def _run_ray(jobs: list[tuple], digests: list[str], store: Path, workers: int,
             address: str | None, progress: Callable[[int, int], None] | None) -> list[dict]:
    """The runs as Ray tasks (one CPU each), on the cluster at ``address`` or on a local
    cluster of ``workers`` CPUs started (and shut down) here. Ctrl-C cancels them:
    :class:`SweepInterrupted` says which runs are stored; a task that fails (its worker
    killed, or out of memory) stops the sweep with the account of what is stored."""
    from panopticon.cluster import ray_session

    with ray_session(address, workers, "--engine ray") as ray:
        return _ray_tasks(ray, jobs, digests, store, progress)


def _ray_tasks(ray, jobs: list[tuple], digests: list[str], store: Path,
               progress: Callable[[int, int], None] | None) -> list[dict]:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    task = ray.remote(num_cpus=1, max_retries=0)(_one)
    refs = {task.remote(job): i for i, job in enumerate(jobs)}
    pending = list(refs)
    records: dict[int, dict] = {}
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    records[refs[ref]] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    records[refs[ref]] = {"point": jobs[refs[ref]][3],
                                          "replicate": jobs[refs[ref]][2], "run": None,
                                          "status": NOT_STARTED, "stopped": True}
                    raise _RayTaskFailed(str(exc).splitlines()[0]) from None
                if progress:
                    progress(len(records), len(jobs))
    except (KeyboardInterrupt, _RayTaskFailed) as exc:
        for ref in pending:
            ray.cancel(ref, force=True)
        account = SweepInterrupted(_account(jobs, digests, records, store, set(), since))
        if isinstance(exc, KeyboardInterrupt):
            raise account from None
        raise UserError(f"a sweep run failed on Ray ({exc}); the sweep was stopped.\n"
                        + account.describe()) from None
    return [records[i] for i in range(len(jobs))]


class _RayTaskFailed(Exception):
    pass


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
             pids: set[int], since: str | None = None) -> list[dict]:
    """Every run of an interrupted sweep with its status: what the runs returned, else what
    the store holds for a run of that scenario and seed written by one of ``pids`` (or, for
    Ray tasks, whose processes the sweep does not know, created at ``since`` or later),
    else not started."""
    from panopticon.store.local import read_manifest

    found: dict[str, list[tuple[Path, dict]]] = {}
    for folder in sorted(store.iterdir()) if store.is_dir() else []:
        try:
            manifest = read_manifest(folder) if folder.is_dir() else None
        except UserError:
            continue
        if manifest and (manifest.get("pid") in pids
                         or (since is not None and str(manifest.get("created")) >= since)):
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


# ---------------------------------------------------------------- stored sweeps
LATEST = "latest-sweep"
"""The word that names the newest sweep report in a store."""


def is_sweep_ref(ref: str | Path, store: Path) -> bool:
    """Whether ``ref`` names a sweep report rather than a run: ``latest-sweep``, a file (a run
    is a folder), a name ending in ``.json``, a sweep id (file name without ``.json``) in
    ``store``, or a name starting ``sweep-`` that is no run folder."""
    text = str(ref)
    if text == LATEST or text.endswith(".json") or Path(text).is_file():
        return True
    if (Path(store) / f"{text}.json").is_file():
        return True
    return text.startswith("sweep-") and not Path(text).is_dir() \
        and not (Path(store) / text).is_dir()


def find_sweep(ref: str | Path, store: Path) -> Path:
    """The sweep report file ``ref`` names: a path, a sweep id in ``store``, or
    ``latest-sweep`` (the newest ``sweep-*.json`` in ``store``).

    Raises:
        UserError: no such sweep (the sweeps in ``store`` are named).
    """
    store = Path(store)
    text = str(ref)
    found = sorted(store.glob("sweep-*.json"), key=lambda p: (p.stat().st_mtime, p.name)) \
        if store.is_dir() else []
    if text == LATEST:
        if not found:
            raise UserError(f"{LATEST}: no sweep report in {store}/ yet (`panopticon sweep "
                            "... -o STORE` writes one)")
        return found[-1]
    for path in (Path(text), store / text, store / f"{text}.json"):
        if path.is_file():
            return path
    known = [p.stem for p in reversed(found)][:5]
    hint = f"; sweeps in {store}/ include {', '.join(known)}" if known else \
        f"; there is no sweep report in {store}/"
    raise UserError(f"no sweep {text!r}: give a sweep report file, a sweep id (its file name "
                    f"without .json) or {LATEST}{hint}")


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _check_shape(data: Any) -> str | None:
    """What is wrong with a sweep report's structure, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    for key, kind in (("scenario", str), ("replicates", int), ("settings", dict),
                      ("points", list), ("runs", list)):
        if key not in data:
            return f"no {key!r}"
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            return f"{key!r} is not a {kind.__name__}"
    settings = data["settings"]
    if not settings or not all(isinstance(v, list) and v for v in settings.values()):
        return "'settings' must map each swept key to its values"
    keys = set(settings)
    size = math.prod(len(v) for v in settings.values())
    if len(data["points"]) != size:
        return (f"{len(data['points'])} grid points, but the settings make a grid of {size}")
    for i, p in enumerate(data["points"]):
        if not isinstance(p, dict) or not isinstance(p.get("point"), dict) \
                or not isinstance(p.get("metrics"), dict):
            return f"points[{i}] has no 'point' and 'metrics'"
        if set(p["point"]) != keys:
            return f"points[{i}] sets {sorted(p['point'])}, not the swept {sorted(keys)}"
        for name, m in p["metrics"].items():
            if not isinstance(m, dict) or not all(_number(m.get(f)) for f in
                                                  ("mean", "ci_low", "ci_high")) \
                    or not isinstance(m.get("n"), int):
                return f"points[{i}].metrics.{name} needs numbers mean, ci_low, ci_high, n"
    points = [p["point"] for p in data["points"]]
    for i, r in enumerate(data["runs"]):
        if not isinstance(r, dict):
            return f"runs[{i}] is not an object"
        for key, kinds in (("point", dict), ("replicate", int), ("status", str)):
            if not isinstance(r.get(key), kinds):
                return f"runs[{i}] has no {key!r}"
        if r["point"] not in points:
            return f"runs[{i}] is at {r['point']}, which is not a grid point"
        if r.get("run") is not None and not isinstance(r["run"], str):
            return f"runs[{i}].run is not a folder name"
        if r["status"] == COMPLETE and not r.get("run"):
            return f"runs[{i}] is complete but names no run folder"
    return None


def _run_folder(record: dict, sweep_file: Path, store: Path) -> Path | None:
    """A run of a sweep: next to the sweep file, where it was written, or in ``store``."""
    recorded = Path(record["run"])
    for path in (sweep_file.parent / recorded.name, recorded, store / recorded.name):
        if path.is_dir() and (path / "manifest.json").exists():
            return path
    return None


def load_sweep(ref: str | Path, store: Path, check_runs: bool = True) -> dict:
    """A stored sweep report, checked: the file ``ref`` names (see :func:`find_sweep`), read
    and validated, with each complete run found in the store and passing its integrity check
    (:func:`panopticon.store.local.open_checked`).

    Returns:
        The report (``scenario``, ``replicates``, ``settings``, ``points``, ``runs``) with
        ``file`` (its path) and ``id`` (its name without ``.json``); with ``check_runs``, each
        run also has ``path`` (its folder, or None) and ``manifest``, and a run whose stored
        status is not complete has that status.

    Raises:
        UserError: naming the file: unreadable, truncated or not JSON, not shaped like a sweep
            report, a run missing from the store, damaged, or made with other settings.
    """
    from panopticon.store.local import open_checked, read_manifest

    store = Path(store)
    path = find_sweep(ref, store)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the sweep report "
                        f"({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not a readable sweep report: {exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno} (truncated, or not JSON?)") from None
    problem = _check_shape(data)
    if problem:
        raise UserError(f"{path}: not a valid sweep report: {problem}")
    for p in data["points"]:
        for m in p["metrics"].values():
            for f in ("mean", "ci_low", "ci_high"):
                m[f] = math.nan if m[f] is None else float(m[f])
    data = {**data, "file": str(path), "id": path.stem}
    if not check_runs:
        return data
    runs = []
    for i, record in enumerate(data["runs"]):
        record = dict(record)
        record["path"], record["manifest"] = None, None
        if record.get("run"):
            folder = _run_folder(record, path, store)
            name = Path(record["run"]).name
            if folder is None:
                if record["status"] == COMPLETE:
                    looked = dict.fromkeys(f"{d}/" for d in (path.parent,
                                                             Path(record["run"]).parent, store))
                    raise UserError(f"{path}: run {name} ({_where(record)}) is missing: it is "
                                    f"not in {' nor in '.join(looked)} (deleted or moved?)")
            elif record["status"] != COMPLETE:  # not used: named as not complete
                with contextlib.suppress(UserError):
                    record.update(path=folder, manifest=read_manifest(folder))
            else:
                try:
                    manifest = open_checked(folder)
                except UserError as exc:
                    raise UserError(f"{path}: run {name} ({_where(record)}): {exc}") from None
                made = manifest.get("settings")
                if made is not None and made != record["point"]:
                    raise UserError(f"{path}: run {name} was made with settings {made}, not "
                                    f"the sweep's {record['point']} (runs[{i}])")
                record.update(path=folder, manifest=manifest)
                if manifest.get("status") != COMPLETE:
                    record["status"] = str(manifest.get("status"))
        runs.append(record)
    data["runs"] = runs
    return data


def sweep_metrics(sweep: dict) -> list[str]:
    """Every metric of a sweep's points: the default shown ones first, then in the order the
    points list them."""
    from panopticon.metrics.describe import DEFAULT_SHOWN

    found = list(dict.fromkeys(name for p in sweep["points"] for name in p["metrics"]))
    return [m for m in DEFAULT_SHOWN if m in found] + [m for m in found
                                                        if m not in DEFAULT_SHOWN]


def default_metrics(available: list[str] | set[str]) -> list[str]:
    """What a sweep prints without ``--metric``: those of the default six it has, else the
    first six by name."""
    from panopticon.metrics.describe import DEFAULT_SHOWN

    return [m for m in DEFAULT_SHOWN if m in available] or sorted(available)[:6]


def known_metrics(base: ScenarioSpec, settings: list[Setting]) -> list[str]:
    """Every metric name a run of the sweep can have (for ``--metric`` before it runs)."""
    from panopticon.metrics.describe import metric_names

    return list(dict.fromkeys(name for _, spec in grid(base, settings)
                              for name in metric_names(spec)))


def point_rows(sweep: dict, metrics: list[str]) -> list[dict]:
    """One row per grid point: ``point`` (setting values), ``runs`` and ``runs_complete``,
    and per metric its ``mean``, ``ci_low``, ``ci_high`` and ``n`` (None where the point has
    no such metric)."""
    out = []
    for p in sweep["points"]:
        mine = [r for r in sweep["runs"] if r["point"] == p["point"]]
        out.append({"point": p["point"], "runs": len(mine),
                    "runs_complete": sum(r["status"] == COMPLETE for r in mine),
                    "metrics": {m: ({f: p["metrics"][m][f] for f in
                                     ("mean", "ci_low", "ci_high", "n")}
                                    if m in p["metrics"] else None) for m in metrics}})
    return out
