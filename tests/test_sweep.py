"""Sweeps: a grid of settings x replicates, run in parallel processes, each run stored, each
grid point summarised with confidence intervals; bad settings are user errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import build_scenario
from typer.testing import CliRunner

from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.store.local import read_manifest
from panopticon.sweeps import Setting, grid, run_sweep, summarise_point


def test_a_setting_is_a_dotted_key_and_yaml_values():
    """``a.b=1,0.5,true,urban`` -> key a.b and values 1, 0.5, True, 'urban'."""
    s = Setting.parse("a.b=1,0.5,true,urban")
    assert s.key == "a.b" and s.values == (1, 0.5, True, "urban")
    with pytest.raises(UserError, match="KEY=VALUE"):
        Setting.parse("no-equals-sign")


def test_grid_is_every_combination_validated(tiny):
    """2 misattribution values x 3 association weights = 6 scenarios, each with its values."""
    points = grid(tiny, [Setting("sensors.cameras.misattribution", (0.0, 0.1)),
                         Setting("policy.association.0.weight", (0.1, 0.2, 0.3))])
    assert len(points) == 6
    got = {(s.sensors["cameras"].misattribution, s.policy.association[0].weight)
           for _, s in points}
    assert got == {(m, w) for m in (0.0, 0.1) for w in (0.1, 0.2, 0.3)}


def test_unknown_keys_and_invalid_values_are_user_errors_naming_them(tiny):
    """A key the scenario does not have names what is there; a value the validator refuses
    is reported at its key path with the setting that caused it."""
    with pytest.raises(UserError, match="no 'sensor'"):
        grid(tiny, [Setting("sensor.cameras.detection", (0.5,))])
    with pytest.raises(UserError) as err:
        grid(tiny, [Setting("sensors.cameras.detection", (0.5, 1.5))])
    problem = err.value.problems[0]
    assert problem.path == "sensors.cameras.detection" and "detection=1.5" in problem.message


def test_a_points_summary_has_the_t_interval_of_the_mean():
    """Values 1, 2, 3: mean 2, sample sd 1, 95% CI 2 +- 4.302653 / sqrt(3) = 2 +- 2.484138 (an
    unbounded metric: Student's t); a metric seen once has no interval (NaN); NaNs are left
    out."""
    out = summarise_point({"k": 1}, [{"m": 1.0, "x": math.nan}, {"m": 2.0},
                                     {"m": 3.0, "y": 5.0}])
    m = out["metrics"]["m"]
    assert (m["mean"], m["sd"], m["n"]) == (2.0, 1.0, 3)
    assert m["ci_low"] == pytest.approx(2 - 2.484138, abs=1e-6)
    assert m["ci_high"] == pytest.approx(2 + 2.484138, abs=1e-6)
    assert out["metrics"]["y"]["n"] == 1 and math.isnan(out["metrics"]["y"]["ci_low"])
    assert "x" not in out["metrics"]
    assert m["method"] == "t"


def test_intervals_of_shares_and_counts_stay_within_their_range():
    """A count seen 0, 1 and 14 times: the t-interval 5 ± 4.303 · 7.81 / sqrt(3) would go
    to -14.4; on the log scale it is 5 · e^(±19.40 / 5) = (0.103, 242.2), never negative. A share
    of 0.001, 0.0, 0.004 stays in [0, 1]; the mean score keeps the plain t-interval."""
    out = summarise_point({}, [{"citizens_wrongly_sanctioned": 0.0, "share_ever_false": 0.001,
                                "mean_score": 100.0},
                               {"citizens_wrongly_sanctioned": 1.0, "share_ever_false": 0.0,
                                "mean_score": 101.0},
                               {"citizens_wrongly_sanctioned": 14.0, "share_ever_false": 0.004,
                                "mean_score": 99.0}])["metrics"]
    count, share, score = (out[k] for k in ("citizens_wrongly_sanctioned", "share_ever_false",
                                            "mean_score"))
    assert count["method"] == "log" and count["mean"] == 5.0
    half = 4.302653 * math.sqrt(61) / math.sqrt(3)      # sd = sqrt(((25 + 16 + 81) / 2))
    assert (count["ci_low"], count["ci_high"]) == pytest.approx(
        (5 * math.exp(-half / 5), 5 * math.exp(half / 5)), rel=1e-6)
    assert share["method"] == "logit" and 0 < share["ci_low"] < share["mean"] < \
        share["ci_high"] < 1
    assert score["method"] == "t" and score["ci_low"] == pytest.approx(100 - 2.484138, abs=1e-6)
    # a custom range: everything unbounded
    plain = summarise_point({}, [{"share_x": 0.1}, {"share_x": 0.3}],
                            bounds=lambda name: (None, None))["metrics"]["share_x"]
    assert plain["method"] == "t" and plain["ci_low"] < 0


def test_sweep_runs_the_grid_in_parallel_and_stores_every_run(tmp_path, tiny_data):
    """2 points x 2 replicates on 2 processes: 4 stored runs; replicate r uses seed + r at
    every point (common random numbers), so the two points' replicate 0 share a seed."""
    spec = build_scenario(tiny_data, run={"days": 6})
    report = run_sweep(spec, [Setting("sensors.cameras.misattribution", (0.0, 0.2))], 2,
                       tmp_path, workers=2)
    assert len(report["runs"]) == 4 and len(report["points"]) == 2
    seeds = {(r["point"]["sensors.cameras.misattribution"], r["replicate"]):
             read_manifest(Path(r["run"]))["seed"] for r in report["runs"]}
    assert seeds == {(0.0, 0): 7, (0.0, 1): 8, (0.2, 0): 7, (0.2, 1): 8}
    # a disparity ratio is left out of a replicate where it is undefined or not judged
    assert all(p["metrics"][k]["n"] == 2 for p in report["points"]
               for k in ("mean_score", "gini", "false_observations"))
    assert all(1 <= m["n"] <= 2 for p in report["points"] for m in p["metrics"].values())


def test_sweep_command_reports_json_and_refuses_bad_settings(tmp_path):
    """The CLI prints the report as JSON (exit 0); a key that is not in the scenario is exit
    code 2 with the key named."""
    runner = CliRunner()
    ok = runner.invoke(app, ["sweep", "reference", "--set", "run.seed=1,2", "--replicates",
                             "1", "--citizens", "500", "--days", "5", "--out", str(tmp_path),
                             "--json"])
    assert ok.exit_code == 0, ok.output
    assert len(json.loads(ok.stdout)["runs"]) == 2
    bad = runner.invoke(app, ["sweep", "reference", "--set", "sensors.radar.detection=1",
                              "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "no 'sensors.radar'" in bad.output
