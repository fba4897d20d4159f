"""The Python API for notebooks and scripts.

```python
import panopticon as pc
scenario = pc.load("seed_article")             # a preset name or a YAML path
result = pc.run(scenario, citizens=10_000, days=90)   # in memory
result.daily.to_pandas()                        # Arrow tables: daily, events, ledger, ...
stored = pc.run(scenario, out="runs")           # written to runs/<run id>/
pc.open_run(stored.path).ledger
```
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from panopticon import engine, tuning
from panopticon.errors import RunInterrupted, ShardFailed, UserError
from panopticon.scenario import ScenarioSpec, load_preset, load_scenario
from panopticon.store import digest, local
from panopticon.store.tables import Collector, citizens_table


def code_version() -> str:
    """The installed panopticon version."""
    try:
        return metadata.version("panopticon")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def load(name_or_path: str | Path) -> ScenarioSpec:
    """A scenario from a YAML file, or a packaged preset by name."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or Path(text).exists():
        return load_scenario(text)
    return load_preset(text)


@dataclass
class RunResult:
    """A finished (or stored) run. Tables are Arrow; call ``.to_pandas()`` on any of them.

    Attributes:
        manifest: run metadata (status, seed, scenario digest, timings, result fingerprint).
        path: the run folder, or None for an in-memory run.
    """

    manifest: dict
    path: Path | None = None
    _tables: dict[str, pa.Table] | None = None

    def table(self, name: str) -> pa.Table:
        """``daily``, ``events``, ``ledger``, ``observations``, ``lists``, ``opportunities``,
        ``refusals``, ``behaviour``, ``network`` or ``citizens``."""
        if self._tables is not None:
            if name not in self._tables:
                raise UserError(f"no table {name!r}; tables are {sorted(self._tables)}")
            return self._tables[name]
        assert self.path is not None
        return local.read_table(self.path, name)  # checks the run's files first

    @cached_property
    def daily(self) -> pa.Table:
        """One row per day: scores, tier shares, events true vs observed, false observations."""
        return self.table("daily")

    @cached_property
    def events(self) -> pa.Table:
        """Per day and event type: true, observed and false counts."""
        return self.table("events")

    @cached_property
    def ledger(self) -> pa.Table:
        """Every score change: day, citizen, rule, delta_milli, observation, observation_true."""
        return self.table("ledger")

    @cached_property
    def observations(self) -> pa.Table:
        """Every observation with its truth and true actor."""
        return self.table("observations")

    @cached_property
    def lists(self) -> pa.Table:
        """Every list change: day, citizen, list, change, observation."""
        return self.table("lists")

    @cached_property
    def citizens(self) -> pa.Table:
        """Attributes and final standing of every citizen."""
        return self.table("citizens")

    def summary(self) -> dict[str, Any]:
        """What the run came to, each figure with its scope.

        Returns:
            Run facts (``run_id``, ``status``, ``scenario``, ``citizens``, ``days``, ``seed``,
            ``fingerprint``, ``path``, ``timings``), then ``whole_run``: the totals over every
            day (see :data:`panopticon.metrics.daily.FLOWS`) and the distinct citizens ever
            refused, ever wrongly refused, and ever refused for each reason
            (``citizens_refused_sanctioned``, ``_no_perk``, ``_low_score``);
            ``final_state``: the standing at the end of the last day (scores, tier shares,
            lists, sanctions, citizens ever named falsely);
            ``last_day``: what happened on the last day alone.
        """
        from panopticon.metrics.daily import FLOWS
        from panopticon.sanctions import REASONS

        daily = self.daily
        last = daily.slice(daily.num_rows - 1).to_pylist()[0]
        whole = {k: int(np.nansum(daily.column(k).to_numpy(zero_copy_only=False))) for k in FLOWS
                 if k in daily.column_names}
        try:
            refusals = self.table("refusals")
        except UserError:
            refusals = None
        if refusals is not None and refusals.num_rows:
            citizen = refusals.column("citizen").to_numpy()
            wrongful = refusals.column("wrongful").to_numpy(zero_copy_only=False)
            whole["citizens_refused"] = int(len(np.unique(citizen)))
            whole["citizens_wrongly_refused"] = int(len(np.unique(citizen[wrongful])))
            for reason in REASONS:  # a sanction (punishment) or a perk withheld, apart
                if reason in refusals.column_names:
                    why = refusals.column(reason).to_numpy(zero_copy_only=False)
                    whole[f"citizens_refused_{reason}"] = int(len(np.unique(citizen[why])))
        elif "refused" in whole:
            whole["citizens_refused"] = whole["citizens_wrongly_refused"] = 0
            whole.update({f"citizens_refused_{reason}": 0 for reason in REASONS})
        final = {k: v for k, v in last.items() if k not in FLOWS and k != "citizens_false_today"}
        m = self.manifest
        return {"run_id": m.get("run_id"), "status": m.get("status"), "scenario": m["scenario"],
                "citizens": m["citizens"], "days": m["days_completed"], "seed": m["seed"],
                "fingerprint": m.get("result", {}).get("fingerprint"),
                "path": str(self.path) if self.path else None, "timings": m.get("timings", {}),
                "whole_run": whole, "final_state": final,
                "last_day": {k: v for k, v in last.items()
                             if k in FLOWS or k in ("day", "citizens_false_today")}}


class _Tee:
    def __init__(self, *sinks):
        self.sinks = [s for s in sinks if s is not None]

    def day(self, record, state):
        for s in self.sinks:
            s.day(record, state)

    def checkpoint(self, state):
        for s in self.sinks:
            s.checkpoint(state)


class _Stop:
    """Ctrl-C (SIGINT) or SIGTERM during a run stops it at the end of the day: a signal that
    arrives while a compiled kernel runs must not raise inside it (it would surface as a
    ``SystemError`` and lose the run). A second Ctrl-C stops at once. Handlers are installed
    only while a run is going (in the main thread) and restored after."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._old: dict = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if a stop was asked for."""
        if self.requested:
            raise KeyboardInterrupt

    def day(self, record, state) -> None:  # a sink: checked after every day
        self.check()

    def checkpoint(self, state) -> None:
        pass


class _Memory:
    def __init__(self, sim):
        self.collector = Collector(sim)

    def day(self, record, state):
        self.collector.add(record)

    def checkpoint(self, state):
        pass


def run(scenario: ScenarioSpec | str | Path, *, citizens: int | None = None,
        days: int | None = None, seed: int | None = None, out: str | Path | None = None,
        progress: Any = None, threads: int | None = None,
        settings: dict[str, Any] | None = None, shards: int | None = None,
        ray_address: str | None = None) -> RunResult:
    """Run a scenario; store it under ``out`` if given, else keep the tables in memory.

    Args:
        scenario: a spec, a preset name or a YAML path.
        citizens, days, seed: override the scenario's run settings.
        out: root folder of the run store (a new run folder is made in it).
        progress: optional: a callable ``(days done, days in all)``, or a sink with
            ``day(record, state)`` and ``checkpoint(state)``, e.g. a progress bar.
        threads: CPU threads for the day loop (default: see ``engine.run``); results do not
            depend on it.
        settings: the settings this run varies (dotted scenario key -> value), recorded in
            its manifest: a sweep's runs carry their grid point, and the ``runs`` view of
            ``panopticon query`` has one column per key.
        shards: split the citizens into this many shards on Ray actors (see
            :mod:`panopticon.shards`): the same results, tables and fingerprint.
        ray_address: with ``shards``, the Ray cluster to run on (``auto``: the one ``ray
            start`` made here; default: a local cluster started for the run).

    Raises:
        RunInterrupted: Ctrl-C or SIGTERM during a stored run (it is marked ``interrupted``
            at its last checkpoint, or was completed if the signal came during the final
            write); KeyboardInterrupt before the run folder was made or for a run in memory.
    """
    spec = scenario if isinstance(scenario, ScenarioSpec) else load(scenario)
    spec = spec.with_run(citizens=citizens, days=days, seed=seed)
    tuning.configure()
    tuning.announce_compiling()
    progress = _sink(progress, spec.run.days)
    loop = _loop(threads, shards, ray_address)
    with _Stop() as stop:
        t0 = time.perf_counter()
        sim = engine.build(spec)
        _check_shards(sim, shards)
        state = engine.initial_state(sim)
        setup_s = time.perf_counter() - t0
        stop.check()
        if out is not None:
            writer = local.RunWriter.create(sim, Path(out), code_version(), settings)
            return _drive(sim, state, writer, progress, setup_s, loop, stop)
        memory = _Memory(sim)
        t1 = time.perf_counter()
        state = loop(sim, state, _Tee(memory, progress, stop))
        loop_s = time.perf_counter() - t1
    tables = memory.collector.tables()
    tables["digests"] = (digester := local.Digester(digest.genesis(spec.digest))).add(
        tables, memory.collector.days)
    tables["citizens"] = citizens_table(sim, state)
    manifest = {**local.describe(sim, code_version()), "run_id": None,
                "settings": dict(settings or {}),
                "status": local.COMPLETE, "days_completed": state.day,
                "timings": {"setup_s": round(setup_s, 3), "loop_s": round(loop_s, 3)},
                "result": local.result_of(state, digester.head.hex(), tables["citizens"])}
    return RunResult(manifest, None, tables)


def _loop(threads: int | None, shards: int | None, ray_address: str | None):
    """The day loop a run uses: the engine's, or split into ``shards`` on Ray."""
    if shards is None:
        if ray_address is not None:
            raise UserError("--ray-address needs --shards")
        return lambda sim, state, sink: engine.run(sim, state, sink, threads=threads)
    from panopticon import shards as sharded

    return lambda sim, state, sink: sharded.run(sim, state, sink, shards, ray_address)


def _check_shards(sim, shards: int | None) -> None:
    """Refuse a scenario or a number of shards a sharded run cannot take, before anything
    is written."""
    if shards is not None:
        from panopticon.shards import check

        check(sim, shards)


def _drive(sim, state, writer: local.RunWriter, progress, setup_s: float, loop,
           stop: _Stop) -> RunResult:
    t1 = time.perf_counter()
    try:
        state = loop(sim, state, _Tee(writer, progress, stop))
        loop_s = time.perf_counter() - t1
        writer.finish(state, {"setup_s": round(setup_s, 3), "loop_s": round(loop_s, 3)})
    except KeyboardInterrupt:
        writer.mark(local.INTERRUPTED, "interrupted")
        raise RunInterrupted(writer.dir, writer.manifest["days_completed"]) from None
    except Exception as exc:
        writer.mark(local.FAILED, local.describe_error(exc))
        if isinstance(exc, ShardFailed):
            raise UserError(f"{exc}; {writer.dir} is marked failed with "
                            f"{writer.manifest['days_completed']} days checkpointed; continue "
                            f"it with\n  panopticon run --resume {writer.dir} [--shards K]"
                            ) from None
        if isinstance(exc, OSError):
            raise UserError(f"{writer.dir}: {local.describe_error(exc)}; the run is marked "
                            "failed") from None
        raise
    if stop.requested:
        raise RunInterrupted(writer.dir, writer.manifest["days_completed"], complete=True)
    return RunResult(writer.manifest, writer.dir)


def sweep(scenario: ScenarioSpec | str | Path, settings: dict[str, list], *,
          replicates: int = 3, out: str | Path = "runs", workers: int = 1,
          citizens: int | None = None, days: int | None = None, progress: Any = None,
          force: bool = False, engine: str = "processes", ray_address: str | None = None):
    """Run a scenario over a grid of settings x replicates (as ``panopticon sweep``); every
    run is stored under ``out`` with its settings in its manifest.

    Args:
        settings: dotted scenario key -> the values to try, e.g.
            ``{"sensors.cameras.misattribution": [0, 0.01, 0.05]}``; several keys make a grid.
        replicates: runs per grid point, seeds ``run.seed``, ``run.seed + 1``, ...
        workers: processes (at most one per run and per CPU).
        progress: optional callable (runs done, runs in all).
        engine: ``processes`` (default) or ``ray``: each run a Ray task, on the cluster at
            ``ray_address`` (``"auto"``: the one ``ray start`` made here) or on a local
            cluster of ``workers`` CPUs; the store must then be a folder every node sees.

    Returns:
        A pandas DataFrame, one row per run: a column per setting, ``replicate``, ``seed``,
        ``run_id``, ``status``, then one column per metric of the run (see
        ``panopticon.metrics.run.summary``); group it by the settings for means and
        intervals (``panopticon sweep`` prints them).
    """
    import pandas as pd

    from panopticon.sweeps import Setting, run_sweep

    spec = scenario if isinstance(scenario, ScenarioSpec) else load(scenario)
    spec = spec.with_run(citizens=citizens, days=days)
    grid = [Setting(key, tuple(values)) for key, values in settings.items()]
    report = run_sweep(spec, grid, replicates, Path(out), workers, progress, force=force,
                       engine=engine, ray_address=ray_address)
    rows = [{**r["point"], "replicate": r["replicate"], "seed": spec.run.seed + r["replicate"],
             "run_id": Path(r["run"]).name if r.get("run") else None, "status": r["status"],
             **(r.get("summary") or {})} for r in report["runs"]]
    return pd.DataFrame(rows)


def open_run(run: str | Path, store: str | Path = "runs") -> RunResult:
    """A stored run by folder or by run id under ``store`` (as the CLI takes them), once its
    files are checked against its manifest."""
    path = local.find_run(run, Path(store))
    return RunResult(local.open_checked(path), path)


class _Calls:
    """A plain callable as a progress sink: called with (days done, days in all)."""

    def __init__(self, fn, days: int):
        self.fn, self.days = fn, days

    def day(self, record, state) -> None:
        self.fn(record.day + 1, self.days)

    def checkpoint(self, state) -> None:
        pass


def _sink(progress, days: int):
    """``progress`` as a sink: one with ``day``/``checkpoint`` as it is, a plain callable
    (``lambda done, total: ...``) wrapped."""
    if progress is None or hasattr(progress, "day"):
        return progress
    if callable(progress):
        return _Calls(progress, days)
    raise UserError("progress must be a callable (done, total) or a sink with day() and "
                    "checkpoint()")


def resume(path: str | Path, progress: Any = None, threads: int | None = None,
           shards: int | None = None, ray_address: str | None = None) -> RunResult:
    """Continue an interrupted run from its last checkpoint (from day 0 if it stopped before
    the first); the result is bit-identical to an uninterrupted run, with or without
    ``shards`` (as in :func:`run`), whatever the run was started with.

    Everything is checked before anything is changed (see
    :func:`panopticon.store.local.prepare_resume`): one writer at a time, the scenario and
    the files the run wrote as its manifest records them, and the checkpoint's arrays against
    the state of this scenario's simulation.
    """
    path = Path(path)
    tuning.configure()
    tuning.announce_compiling()
    loop = _loop(threads, shards, ray_address)
    with _Stop() as stop:
        t0 = time.perf_counter()
        manifest, spec, snapshot, lock = local.prepare_resume(path)
        try:
            sim = engine.build(spec)
            _check_shards(sim, shards)
            state = engine.initial_state(sim) if snapshot is None else \
                _restore(path, manifest, snapshot, sim)
            stop.check()
        except BaseException:
            lock.release()
            raise
        setup_s = time.perf_counter() - t0
        writer = local.RunWriter.reopen(sim, path, manifest, lock)
        progress = _sink(progress, spec.run.days)
        return _drive(sim, state, writer, progress, setup_s, loop, stop)


def _restore(path: Path, manifest: dict, snapshot: dict, sim) -> engine.State:
    where = path / manifest["checkpoint"]["file"]
    problems = engine.State.check_snapshot(snapshot, sim)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{where}: not a checkpoint of this run: {problems[0]}{more}")
    state = engine.State.restore(snapshot, sim)
    if state.ledger_head.hex() != manifest["checkpoint"]["ledger_head"]:
        raise UserError(f"{where}: its ledger head is not the one the manifest recorded")
    return state
