"""Sweeps on Ray: each run a Ray task on a local cluster (2 CPUs, never a remote one), the
same runs as the process pool stores; bad Ray options are user errors in seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import build_scenario
from typer.testing import CliRunner

from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.store.local import read_manifest
from panopticon.sweeps import Setting, run_sweep

ray = pytest.importorskip("ray")
SETTING = Setting("sensors.cameras.misattribution", (0.0, 0.2))


def _fingerprints(report: dict) -> dict:
    return {(r["point"][SETTING.key], r["replicate"]):
            read_manifest(Path(r["run"]))["result"]["fingerprint"] for r in report["runs"]}


def test_a_ray_sweep_stores_the_same_runs_as_the_process_pool(tmp_path, tiny_data):
    """2 points x 2 replicates as Ray tasks on a local 2-CPU cluster: every run stored and
    complete, with the fingerprints a sweep in this process gives, and the same summary."""
    spec = build_scenario(tiny_data, run={"days": 6})
    on_ray = run_sweep(spec, [SETTING], 2, tmp_path / "ray", workers=2, engine="ray")
    here = run_sweep(spec, [SETTING], 2, tmp_path / "here", workers=1)
    assert on_ray["engine"] == "ray" and not ray.is_initialized()  # its own cluster, shut down
    assert all(r["status"] == "complete" for r in on_ray["runs"])
    assert _fingerprints(on_ray) == _fingerprints(here)
    assert on_ray["points"] == here["points"]


def test_the_sweep_command_runs_on_ray_and_says_so(tmp_path):
    result = CliRunner().invoke(app, [
        "sweep", "reference", "--set", "run.seed=1,2", "--replicates", "1", "--citizens",
        "400", "--days", "4", "--out", str(tmp_path), "--engine", "ray", "--workers", "2",
        "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["engine"] == "ray" and len(report["runs"]) == 2
    assert all(read_manifest(Path(r["run"]))["status"] == "complete" for r in report["runs"])


def test_an_address_where_no_cluster_answers_is_refused_in_seconds(tmp_path, tiny_data):
    spec = build_scenario(tiny_data, run={"days": 2})
    t0 = time.monotonic()
    with pytest.raises(UserError, match="no Ray cluster answers there"):
        run_sweep(spec, [SETTING], 1, tmp_path, engine="ray", ray_address="127.0.0.1:1")
    assert time.monotonic() - t0 < 15
    assert not list(tmp_path.glob("*/manifest.json"))  # nothing ran


@pytest.mark.parametrize("args, message", [
    (["--engine", "spark"], "choose processes or ray"),
    (["--ray-address", "auto"], "--ray-address needs --engine ray"),
])
def test_bad_engine_options_are_user_errors(tmp_path, args, message):
    result = CliRunner().invoke(app, ["sweep", "reference", "--set", "run.seed=1",
                                      "--out", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output
