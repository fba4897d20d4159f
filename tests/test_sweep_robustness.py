"""Sweeps under stress: reports never overwrite each other, no more workers than runs or
CPUs, Ctrl-C stops the sweep and says which runs are stored and which are not, and worker
processes die with the sweep and do not ignore SIGTERM.

The process tests start the CLI in a subprocess of its own session, wait (bounded) for its
workers, signal it and check within a bounded time that no worker is left; whatever they
started is killed at the end whatever happens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import build_scenario

import panopticon.sweeps as sweep_module
from panopticon.store.local import read_manifest
from panopticon.sweeps import (
    COMPLETE,
    NOT_STARTED,
    Setting,
    SweepInterrupted,
    available_cpus,
    pid_alive,
    run_sweep,
    save,
    worker_count,
)

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="finds worker processes through /proc")
two_cpus = pytest.mark.skipif(available_cpus() < 2,
                              reason="one CPU: a sweep starts no worker processes")


# ---------------------------------------------------------------- helpers
def children_of(pid: int) -> set[int]:
    """Live child processes of ``pid`` (scanning /proc/*/stat for their parent)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            out.add(int(entry.name))
    return out


def is_worker(pid: int) -> bool:
    """A sweep worker (a spawned interpreter), not multiprocessing's resource tracker."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in command


def ignored_signals(pid: int) -> int:
    """The SigIgn mask of a process (bit n-1 set: signal n ignored)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigIgn line")


def wait_for(condition, timeout: float, step: float = 0.1):
    """Poll ``condition`` until it returns something truthy (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def start_sweep_cli(store: Path, *extra: str) -> subprocess.Popen:
    """A slow sweep (4 runs of 40,000 citizens, 400 days, on 2 workers) in a new session."""
    command = [sys.executable, "-m", "panopticon.cli", "sweep", "reference",
               "--set", "run.seed=1,2", "--replicates", "2", "--citizens", "40000",
               "--days", "400", "--workers", "2", "--out", str(store), "--json", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)


def run_folders(store: Path) -> list[Path]:
    return [p for p in store.iterdir() if p.is_dir()] if store.exists() else []


# ---------------------------------------------------------------- reports
def test_two_reports_of_one_scenario_are_two_files_neither_overwritten(tmp_path):
    """Two saves of the same scenario's report give two files, each with its own content."""
    first = save({"scenario": "tiny", "runs": [1]}, tmp_path)
    second = save({"scenario": "tiny", "runs": [2]}, tmp_path)
    assert first != second
    assert json.loads(first.read_text())["runs"] == [1]
    assert json.loads(second.read_text())["runs"] == [2]


def test_a_report_name_that_is_taken_is_never_overwritten(tmp_path, monkeypatch):
    """Same second, same pid, same random suffix: the file is created exclusively, so the
    second save picks another name instead of overwriting the first."""
    suffixes = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(sweep_module.secrets, "token_hex", lambda n: next(suffixes))

    class Frozen(sweep_module.datetime):
        @classmethod
        def now(cls, tz=None):
            return sweep_module.datetime(2030, 1, 1, tzinfo=tz)

    monkeypatch.setattr(sweep_module, "datetime", Frozen)
    first = save({"scenario": "tiny", "runs": [1]}, tmp_path)
    second = save({"scenario": "tiny", "runs": [2]}, tmp_path)
    assert first.name.endswith("aaaaaa.json") and second.name.endswith("bbbbbb.json")
    assert json.loads(first.read_text())["runs"] == [1]
    assert len(list(tmp_path.glob("sweep-tiny-*.json"))) == 2


# ---------------------------------------------------------------- workers
def test_never_more_workers_than_runs_nor_by_default_cpus():
    """32 wanted for 4 runs: 4; for 100 runs on 8 CPUs: 8; without the CPU limit (0): the
    runs still cap it; at least 1."""
    assert worker_count(32, 4, cpus=64) == 4
    assert worker_count(32, 100, cpus=8) == 8
    assert worker_count(32, 4, cpus=0) == 4
    assert worker_count(1, 0, cpus=8) == 1
    assert worker_count(32, 100) <= available_cpus()


def test_a_sweep_starts_no_more_processes_than_runs(tmp_path, tiny_data, monkeypatch):
    """--workers 32 on 2 runs starts a pool of 2 processes (even without the CPU limit)."""
    sizes = []

    class Recording(sweep_module.ProcessPoolExecutor):
        def __init__(self, max_workers=None, **kwargs):
            sizes.append(max_workers)
            super().__init__(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(sweep_module, "ProcessPoolExecutor", Recording)
    spec = build_scenario(tiny_data, run={"days": 3})
    report = run_sweep(spec, [Setting("run.seed", (1, 2))], 1, tmp_path, workers=32,
                       limit_to_cpus=False)
    assert sizes == [2] and report["workers"] == 2 and len(report["runs"]) == 2


# ---------------------------------------------------------------- Ctrl-C
def _interrupt_after_first(done, total):
    raise KeyboardInterrupt


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_sweep_and_accounts_for_every_run(tmp_path, tiny_data, workers):
    """Ctrl-C once a run has finished: SweepInterrupted lists every run of the grid; the
    finished one is complete in the store, the others are either stopped (their folder
    marked, never 'running') or not started; no worker process is left."""
    spec = build_scenario(tiny_data, run={"citizens": 3000, "days": 120,
                                          "checkpoint_every": 5})
    before = children_of(os.getpid()) if Path("/proc").exists() else set()
    with pytest.raises(SweepInterrupted) as caught:
        run_sweep(spec, [Setting("run.seed", (1, 2, 3))], 2, tmp_path, workers=workers,
                  progress=_interrupt_after_first, limit_to_cpus=False)
    runs = caught.value.runs
    assert len(runs) == 6
    statuses = [r["status"] for r in runs]
    assert statuses.count(COMPLETE) >= 1 and NOT_STARTED in statuses
    for r in runs:
        if r["status"] == NOT_STARTED:
            assert r["run"] is None
        else:
            assert read_manifest(Path(r["run"]))["status"] == r["status"] != "running"
    folders = {str(p) for p in run_folders(tmp_path)}
    assert folders == {r["run"] for r in runs if r["run"]}, "every folder is accounted for"
    text = caught.value.describe()
    assert "complete (stored):" in text and "not started" in text
    if Path("/proc").exists():
        assert wait_for(lambda: children_of(os.getpid()) <= before, 10)


@linux_only
@two_cpus
def test_ctrl_c_on_the_command_exits_130_naming_stored_and_unfinished_runs(tmp_path):
    """SIGINT to the sweep's process group (a Ctrl-C in the terminal) while runs go: exit
    130, a message naming the complete and the not complete runs' folders, no worker left,
    no run left 'running'."""
    proc = start_sweep_cli(tmp_path)
    workers: set[int] = set()
    try:
        workers = wait_for(lambda: children_of(proc.pid) if len(run_folders(tmp_path)) >= 2
                           else set(), 90)
        assert workers, "the sweep did not start its runs in time"
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "the sweep was stopped" in err and "not complete" in err
        for folder in run_folders(tmp_path):
            assert folder.name in err.replace("\n", "")
            assert read_manifest(folder)["status"] in ("complete", "interrupted")
        assert wait_for(lambda: not any(pid_alive(p) for p in workers), 20)
    finally:
        kill_all([proc.pid, *workers])
        proc.communicate()


# ---------------------------------------------------------------- dying with the sweep
@linux_only
@two_cpus
def test_workers_die_when_the_sweep_is_killed_and_do_not_ignore_sigterm(tmp_path):
    """SIGKILL the sweep while its workers run: within 20 s none is left. While they ran,
    none ignored SIGTERM (they ignore SIGINT only while idle: the sweep handles Ctrl-C)."""
    proc = start_sweep_cli(tmp_path)
    workers: set[int] = set()
    try:
        workers = wait_for(lambda: children_of(proc.pid) if len(run_folders(tmp_path)) >= 2
                           else set(), 90)
        assert workers, "the sweep did not start its runs in time"
        running = [pid for pid in workers if is_worker(pid)]
        assert running
        for pid in running:
            assert not ignored_signals(pid) & (1 << (signal.SIGTERM - 1))
        proc.kill()
        proc.wait(10)
        gone = wait_for(lambda: not any(pid_alive(p) for p in workers), 20, step=0.25)
        assert gone, f"workers still alive 20 s after the sweep died: {workers}"
    finally:
        kill_all([proc.pid, *workers])
        proc.communicate()


@linux_only
def test_the_watcher_ends_an_orphaned_worker_without_the_kernel_signal(tmp_path):
    """Without PR_SET_PDEATHSIG (as on other systems) the watcher thread still ends a
    worker whose parent died: a parent forks a 'worker' that sets itself up with prctl
    unavailable and sleeps; the parent exits; the worker is gone within 10 s."""
    script = tmp_path / "orphan.py"
    pidfile = tmp_path / "worker.pid"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        import panopticon.sweeps as sweep
        child = os.fork()
        if child == 0:
            sys.platform = "other"      # no prctl: the watcher thread alone
            sweep._init_worker(os.getppid(), None)
            open({str(pidfile)!r}, "w").write(str(os.getpid()))
            time.sleep(60)
            os._exit(0)
        time.sleep(1.5)
        os._exit(0)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    worker = 0
    try:
        proc.wait(30)
        worker = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 10) or 0)
        assert worker, "the worker did not start"
        assert wait_for(lambda: not pid_alive(worker), 10, step=0.2), \
            "the orphaned worker is still alive"
    finally:
        kill_all([proc.pid] + ([worker] if worker else []))
        proc.wait()
