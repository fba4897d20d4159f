"""A run killed at any moment and resumed ends as if it had never been stopped.

Real processes (``python -m panopticon.cli run ...``) are killed with SIGKILL or SIGINT at
seeded random moments (during setup, the day loop, a checkpoint, a resume, the final write),
then resumed with ``run --resume`` (and maybe killed again) until the run is complete. Every
finished run has the fingerprint of the uninterrupted run, every file its manifest lists, and
audits intact. Ctrl-C exits 130 and marks the run ``interrupted`` (never ``failed``); a second
writer is refused; a resume of a damaged run is refused before anything is changed.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import TINY, StopAfter, merge
from typer.testing import CliRunner

from panopticon import api
from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.store import local

runner = CliRunner()
SCENARIO = merge(TINY, {"name": "crash", "run": {"citizens": 5000, "days": 120, "seed": 11,
                                                 "checkpoint_every": 7}})
DAYS = SCENARIO["run"]["days"]


def start(*args: str, cwd: Path) -> subprocess.Popen:
    """``python -m panopticon.cli ARGS`` in a new process."""
    return subprocess.Popen([sys.executable, "-m", "panopticon.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    """Wait for a process; (exit code, stderr)."""
    _, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stderr


def runs_in(store: Path) -> list[Path]:
    """Run folders of a store (folders with a manifest; a process killed before writing its
    first manifest leaves an empty folder, which is no run)."""
    return sorted(d for d in store.iterdir() if (d / "manifest.json").exists()) \
        if store.is_dir() else []


def manifest_of(run_dir: Path) -> dict:
    return local.read_manifest(run_dir)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 30) -> bool:
    """Poll ``condition`` every few milliseconds while ``proc`` runs; True once it holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            if condition():
                return True
        except (OSError, ValueError, UserError):
            pass  # a manifest being replaced
        time.sleep(0.003)
    return False


def files_of(folder: Path) -> dict[str, str]:
    """Every file of a folder and what it holds (the lock file aside: taking it writes it)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def assert_finished_as_uninterrupted(run_dir: Path, fingerprint: str) -> None:
    """Complete, with the reference fingerprint, every listed file present with its size and
    SHA-256, and `audit` exits 0."""
    manifest = manifest_of(run_dir)
    assert manifest["status"] == "complete" and manifest["days_completed"] == DAYS, manifest
    assert manifest["result"]["fingerprint"] == fingerprint
    for rel, (size, sha) in manifest["files"].items():
        path = run_dir / rel
        assert path.is_file(), f"{rel}: listed in the manifest but missing"
        assert path.stat().st_size == size and local.sha256_of(path) == sha, rel
    result = runner.invoke(app, ["audit", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["intact"]


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "crash.yaml"
    path.write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    return path


def raw_manifest(store: Path) -> dict:
    """The manifest of the store's run as written (no status correction)."""
    (run_dir,) = runs_in(store)
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def reference(scenario_file, tmp_path_factory) -> tuple[str, float]:
    """(the fingerprint of the run made in memory, seconds from the start of an
    uninterrupted stored run of the command line until its manifest says complete); the
    stored run's fingerprint is the in-memory one."""
    fingerprint = api.run(api.load(scenario_file)).manifest["result"]["fingerprint"]
    store = tmp_path_factory.mktemp("reference") / "runs"
    t0 = time.monotonic()
    proc = start("run", str(scenario_file), "--out", str(store), "-q", cwd=store.parent)
    assert wait_for(lambda: raw_manifest(store)["status"] == "complete", proc, timeout=120)
    seconds = time.monotonic() - t0
    rc, stderr = finish(proc)
    assert rc == 0, stderr
    (run_dir,) = runs_in(store)
    assert_finished_as_uninterrupted(run_dir, fingerprint)
    return fingerprint, seconds


@pytest.fixture(scope="module")
def interrupted(scenario_file, tmp_path_factory) -> Path:
    """A run stopped after day 30: its checkpoint holds days 0-27."""
    store = tmp_path_factory.mktemp("interrupted") / "runs"
    with pytest.raises(KeyboardInterrupt):
        api.run(api.load(scenario_file), out=store, progress=StopAfter(30))
    (run_dir,) = runs_in(store)
    manifest = manifest_of(run_dir)
    assert manifest["status"] == "interrupted" and manifest["days_completed"] == 28
    return run_dir


# ----------------------------------------------------------------------------- kill and resume
def _attempt_checks(sig: int, rc: int, stderr: str, before: dict | None,
                    run_dir: Path | None) -> None:
    """What a killed attempt may leave: a manifest that reads (never corrupt, never failed);
    after Ctrl-C exit 130 and the run interrupted (or complete, or untouched if the signal
    came before the run was opened), never a SystemError; another exit only for a signal
    before the command began or after it ended."""
    after = manifest_of(run_dir) if run_dir is not None else None
    if after is not None:
        assert after["status"] in ("complete", "interrupted", "incomplete", "running"), after
    if sig != signal.SIGINT:
        return
    assert "SystemError" not in stderr, stderr
    def same(m: dict) -> dict:
        return {k: v for k, v in m.items() if k not in ("status", "note")}

    untouched = after is None or (before is not None and same(after) == same(before))
    if rc == 130:
        assert after is None or after["status"] in ("interrupted", "complete") or untouched, (
            after, stderr)
        assert "Traceback" not in stderr, stderr
    elif rc != 0:  # Ctrl-C before the command began (Python importing: nothing was opened)
        # or after it ended (interpreter shutdown, the default handler back: the run complete)
        assert untouched or (after["status"] == "complete" and "Traceback" not in stderr), (
            rc, after and after["status"], stderr)


def kill_plan(rng: random.Random, seconds: float) -> list[tuple[int, str, float]]:
    """Two or three kills: (signal, trigger, argument), a trigger being ``delay`` (that many
    seconds after the process starts: imports, setup, the loop or checkpoint writes) or
    ``day`` (once the process has checkpointed that day), and last ``final`` (once the
    process has written the last checkpoint: during the final write)."""
    signals = [signal.SIGKILL, signal.SIGINT]
    plan = []
    for _ in range(rng.randint(1, 2)):
        trigger = rng.choice(["delay", "day"])
        arg = rng.uniform(0.3, 1.0) * seconds if trigger == "delay" else rng.randrange(1, DAYS)
        plan.append((rng.choice(signals), trigger, arg))
    return [*plan, (rng.choice(signals), "final", DAYS)]


def kill_when(proc: subprocess.Popen, sig: int, trigger: str, arg: float, store: Path,
              t0: float) -> bool:
    """Send ``sig`` to ``proc`` when the trigger fires; False if the process ended first."""
    if trigger == "delay":
        time.sleep(max(0.0, arg - (time.monotonic() - t0)))
    else:
        def due() -> bool:
            manifest = raw_manifest(store)
            return manifest["pid"] == proc.pid and manifest["days_completed"] >= arg and (
                trigger == "day" or manifest["status"] == "running")
        wait_for(due, proc, timeout=60)
    if proc.poll() is not None:
        return False
    proc.send_signal(sig)
    return True


@pytest.mark.parametrize("seed", range(6))
def test_a_run_killed_at_random_moments_and_resumed_ends_with_the_uninterrupted_fingerprint(
        scenario_file, reference, tmp_path, seed):
    """The run and its resumes are killed (SIGKILL or SIGINT) two or three times at seeded
    random moments (the last during the final write), then resumed until complete: the
    uninterrupted fingerprint, every listed file present, the audit intact."""
    fingerprint, seconds = reference
    kills = kill_plan(random.Random(seed), seconds)
    store = tmp_path / "runs"
    log = []
    for attempt in range(len(kills) + 3):
        found = runs_in(store)
        assert len(found) <= 1, found
        run_dir = found[0] if found else None
        before = manifest_of(run_dir) if run_dir is not None else None
        if before is not None and before["status"] == "complete":
            break
        args = ("run", "--resume", str(run_dir), "-q") if run_dir is not None else \
            ("run", str(scenario_file), "--out", str(store), "-q")
        t0 = time.monotonic()
        proc = start(*args, cwd=tmp_path)
        sig, trigger, arg = kills[attempt] if attempt < len(kills) else (None, None, None)
        hit = sig is not None and kill_when(proc, sig, trigger, arg, store, t0)
        rc, stderr = finish(proc)
        found = runs_in(store)
        after = manifest_of(found[0]) if found else {}
        log.append((args[1][-12:], sig and signal.Signals(sig).name, trigger, arg, hit, rc,
                    after.get("status"), after.get("days_completed")))
        if sig is None:
            assert rc == 0, (log, stderr)
        _attempt_checks(sig, rc, stderr, before, found[0] if found else None)
    assert runs_in(store) and manifest_of(runs_in(store)[0])["status"] == "complete", log
    assert_finished_as_uninterrupted(runs_in(store)[0], fingerprint)


def test_ctrl_c_during_the_loop_exits_130_and_marks_the_run_interrupted(
        scenario_file, reference, tmp_path):
    """SIGINT once the run's folder exists (the day loop is going), then again once its
    resume is going: each exits 130 with the run `interrupted`, never `failed`, never a
    SystemError; the last resume completes it with the uninterrupted fingerprint."""
    fingerprint, _ = reference
    store = tmp_path / "runs"
    proc = start("run", str(scenario_file), "--out", str(store), "-q", cwd=tmp_path)
    assert wait_for(lambda: runs_in(store), proc)
    proc.send_signal(signal.SIGINT)
    rc, stderr = finish(proc)
    (run_dir,) = runs_in(store)
    manifest = manifest_of(run_dir)
    assert rc == 130 and manifest["status"] == "interrupted", (rc, manifest["status"], stderr)
    assert "SystemError" not in stderr and "Traceback" not in stderr, stderr
    assert "interrupted" in stderr and f"--resume {run_dir}" in stderr.replace("\n", "")
    resumed = start("run", "--resume", str(run_dir), "-q", cwd=tmp_path)
    assert wait_for(lambda: manifest_of(run_dir)["pid"] == resumed.pid, resumed)
    resumed.send_signal(signal.SIGINT)
    rc, stderr = finish(resumed)
    manifest = manifest_of(run_dir)
    assert rc == 130 and manifest["status"] == "interrupted", (rc, manifest["status"], stderr)
    assert "SystemError" not in stderr and "Traceback" not in stderr, stderr
    rc, stderr = finish(start("run", "--resume", str(run_dir), "-q", cwd=tmp_path))
    assert rc == 0, stderr
    assert_finished_as_uninterrupted(run_dir, fingerprint)


def test_a_second_resume_of_a_run_being_written_is_refused_naming_the_writer(
        interrupted, reference, tmp_path):
    """While one `--resume` writes the run (held still with SIGSTOP), a second is refused
    with exit 2 naming the writer's pid, and changes nothing; the first then completes."""
    fingerprint, _ = reference
    run_dir = Path(shutil.copytree(interrupted, tmp_path / "runs" / interrupted.name))
    writer = start("run", "--resume", str(run_dir), "-q", cwd=tmp_path)
    try:
        assert wait_for(lambda: manifest_of(run_dir)["pid"] == writer.pid, writer)
        writer.send_signal(signal.SIGSTOP)
        before = files_of(run_dir)
        second = subprocess.run([sys.executable, "-m", "panopticon.cli", "run", "--resume",
                                 str(run_dir), "-q"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        message = second.stderr.replace("\n", "")
        assert "being written by" in message and f"pid {writer.pid}" in message, message
        assert "Traceback" not in second.stderr
        assert files_of(run_dir) == before
    finally:
        writer.send_signal(signal.SIGCONT)
    rc, stderr = finish(writer)
    assert rc == 0, stderr
    assert_finished_as_uninterrupted(run_dir, fingerprint)


# ----------------------------------------------------------------------------- damaged resumes
def _damage(run_dir: Path, damage: str) -> str:
    """Damage a stopped run; returns what the refusal must say."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    checkpoint = run_dir / manifest["checkpoint"]["file"]
    if damage == "a part before the checkpoint deleted":
        (run_dir / "ledger" / "part-00007-00013.parquet").unlink()
        return "ledger/part-00007-00013.parquet: missing"
    if damage == "another seed in scenario.json":
        scenario = json.loads((run_dir / "scenario.json").read_text())
        scenario["run"]["seed"] += 1
        (run_dir / "scenario.json").write_text(json.dumps(scenario, indent=2))
        return "scenario.json: not the scenario this run was started with"
    if damage == "the checkpoint truncated":
        data = checkpoint.read_bytes()
        checkpoint.write_bytes(data[:len(data) // 2])
        return f"{checkpoint.name}: {len(data) // 2:,} bytes, the run wrote {len(data):,}"
    # the scores truncated to 100, the checkpoint re-sealed: only the arrays' check sees it
    with np.load(checkpoint) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["scores"] = arrays["scores"][:100]
    np.savez(checkpoint, **arrays)
    blob = checkpoint.read_bytes()
    manifest["files"][checkpoint.name] = [len(blob), hashlib.sha256(blob).hexdigest()]
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return f"{checkpoint.name}: not a checkpoint of this run: scores: shape (100,)"


@pytest.mark.parametrize("damage", ["a part before the checkpoint deleted",
                                    "another seed in scenario.json", "the checkpoint truncated",
                                    "the checkpoint's scores truncated and re-sealed"])
def test_a_resume_of_a_damaged_run_is_refused_naming_the_problem_and_changes_nothing(
        interrupted, tmp_path, damage):
    run_dir = Path(shutil.copytree(interrupted, tmp_path / "runs" / interrupted.name))
    expect = _damage(run_dir, damage)
    before = files_of(run_dir)
    rc, stderr = finish(start("run", "--resume", str(run_dir), "-q", cwd=tmp_path))
    assert rc == 2, stderr
    assert expect in stderr.replace("\n", ""), stderr
    assert "Traceback" not in stderr, stderr
    assert files_of(run_dir) == before
    assert manifest_of(run_dir)["status"] == "interrupted"
