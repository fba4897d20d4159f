"""A stored sweep, shown again: `panopticon report SWEEP` (a chart per metric, the mean over
the replicates as a line and its 95% interval as a band), `panopticon compare SWEEP` (a row per
grid point), `--metric` on `sweep` and `compare`; bad sweep files and missing or damaged runs
are exit 2 naming the file, and sweeps and runs are not mixed."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import TINY, merge
from typer.testing import CliRunner

from panopticon.cli import app
from panopticon.metrics.run import summary_bounds
from panopticon.report.build import javascript

runner = CliRunner()
SETTING = "sensors.cameras.misattribution"


def scenario_file(folder: Path, citizens: int, days: int) -> Path:
    path = folder / f"tiny-{citizens}-{days}.yaml"
    path.write_text(yaml.safe_dump(merge(TINY, {"run": {"citizens": citizens, "days": days}})))
    return path


def sweep(scenario: Path, store: Path, *args: str) -> Path:
    """Run a sweep (one process) into ``store``; its report file."""
    res = runner.invoke(app, ["sweep", str(scenario), "--out", str(store), "--workers", "1",
                              *args])
    assert res.exit_code == 0, res.output
    found = sorted(store.glob("sweep-*.json"))
    assert found, res.output
    return found[-1]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A 2-point x 2-replicate sweep of 2,000 citizens x 30 days: (store, report file, data)."""
    root = tmp_path_factory.mktemp("sweep")
    store = root / "runs"
    path = sweep(scenario_file(root, 2000, 30), store, "--set", f"{SETTING}=0.0,0.2",
                 "--replicates", "2", "--json")
    return store, path, json.loads(path.read_text())


@pytest.fixture(scope="module")
def page(stored, tmp_path_factory):
    store, path, _ = stored
    out = tmp_path_factory.mktemp("page") / "sweep.html"
    res = runner.invoke(app, ["report", path.stem, "--out", str(store), "--html", str(out)])
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8")


def embedded(page: str) -> dict[str, dict]:
    """The Vega-Lite specs the page embeds, by chart id."""
    found = re.search(r"var specs = (\{.*?\});\n", page, flags=re.S)
    assert found
    return json.loads(found.group(1))


def band(spec: dict) -> list[dict]:
    """The rows of the chart's band layer (its ``area`` mark)."""
    for layer in spec["layer"]:
        mark = layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
        if mark == "area":
            data = layer.get("data") or spec["data"]
            return data["values"] if "values" in data else spec["datasets"][data["name"]]
    raise AssertionError("no band")


def as_json_value(x: float) -> float | None:
    return None if math.isnan(x) else x


def test_report_of_a_sweep_has_a_chart_per_metric_whose_band_is_the_sweeps_interval(stored,
                                                                                    page):
    _, _, data = stored
    specs = embedded(page)
    metrics = {m for p in data["points"] for m in p["metrics"]}
    assert len(metrics) > 10 and set(specs) == {f"chart-{m}" for m in metrics}
    for m in metrics:
        rows = {r["x"]: r for r in band(specs[f"chart-{m}"])}
        for p in data["points"]:
            if m not in p["metrics"]:
                continue
            got, want = rows[p["point"][SETTING]], p["metrics"][m]
            assert (got["low"], got["high"], got["mean"]) == (
                as_json_value(want["ci_low"]), as_json_value(want["ci_high"]), want["mean"]), m
        assert f'<div class="chart" id="chart-{m}"' in page
    share = specs["chart-share_ever_false"]
    # a numeric setting: a numeric axis
    assert {layer["encoding"]["x"]["type"] for layer in share["layer"]} == {"quantitative"}
    assert share["title"]["text"] == "Share of citizens ever named by a false observation"
    assert share["title"]["subtitle"].startswith("final state")
    assert specs["chart-false_observations"]["title"]["subtitle"].startswith("whole run")


def test_report_of_a_sweep_says_what_was_swept_and_which_runs_are_complete(stored, page):
    _, path, data = stored
    top = re.search(r'<section id="sweep">(.*?)</section>', page, flags=re.S).group(1)
    assert "tiny" in top and path.stem in top and SETTING in top
    assert "4 of 4 runs complete" in top and "seeds 7, 8" in top and "2,000 citizens" in top
    for r in data["runs"]:
        assert Path(r["run"]).name in top


def test_sweep_intervals_stay_within_each_metrics_range(stored, page):
    """The sweep keeps intervals within a metric's range (shares in [0, 1], counts >= 0), so
    the page's bands are the file's, unclipped, and inside the range."""
    _, _, data = stored
    for p in data["points"]:
        for m, v in p["metrics"].items():
            lower, upper = summary_bounds(m)
            if v["n"] > 1:
                assert lower is None or v["ci_low"] >= lower, (m, v)
                assert upper is None or v["ci_high"] <= upper, (m, v)
    assert "Interval shown clipped" not in page


def test_the_sweep_page_is_offline(page):
    assert page.count(javascript()) == 1
    outside = page.replace(javascript(), "")
    assert not re.search(r"https?://", outside)
    assert not re.search(r"<(link|img|iframe)\b", outside)
    assert "{{" not in outside  # every placeholder of the page template is filled


def test_compare_sweep_prints_every_grid_point(stored):
    store, path, data = stored
    res = runner.invoke(app, ["compare", path.stem, "--out", str(store)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    for p in data["points"]:
        m = p["metrics"]["mean_score"]
        cell = f"{m['mean']:,.4g} [{m['ci_low']:,.4g}, {m['ci_high']:,.4g}]"
        assert any(line.strip("│ ").startswith(str(p["point"][SETTING])) and cell in line
                   for line in lines), (cell, res.output)
    assert SETTING in res.output and "4 of 4 runs complete" in res.output


def test_compare_sweep_json_is_strict_and_has_every_point(stored):
    store, path, data = stored
    res = runner.invoke(app, ["compare", str(path), "--out", str(store), "--json"])
    assert res.exit_code == 0, res.output

    def no_nan(token):
        raise AssertionError(f"not strict JSON: {token}")

    got = json.loads(res.stdout, parse_constant=no_nan)
    assert [p["point"] for p in got["points"]] == [p["point"] for p in data["points"]]
    assert got["metrics"] == ["mean_score", "gini", "false_observations"]
    for mine, theirs in zip(got["points"], data["points"], strict=True):
        assert mine["metrics"]["gini"]["ci_high"] == theirs["metrics"]["gini"]["ci_high"]
        assert mine["runs_complete"] == 2


def test_latest_sweep_is_the_newest_in_the_store(stored):
    store, path, _ = stored
    res = runner.invoke(app, ["compare", "latest-sweep", "--out", str(store), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["sweep"] == path.stem


def test_metric_option_selects_what_compare_and_sweep_print(stored, tmp_path):
    store, path, _ = stored
    res = runner.invoke(app, ["compare", path.stem, "--out", str(store), "--metric",
                              "share_ever_false", "--metric", "gini", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["metrics"] == ["share_ever_false", "gini"]
    assert set(got["points"][0]["metrics"]) == {"share_ever_false", "gini"}
    res = runner.invoke(app, ["sweep", str(scenario_file(tmp_path, 300, 5)), "--set",
                              f"{SETTING}=0.1", "--replicates", "1", "--out",
                              str(tmp_path / "runs"), "--metric", "share_ever_false"])
    assert res.exit_code == 0, res.output
    assert "share_ever_false" in res.output and "mean_score" not in res.output


def test_unknown_metric_is_exit_2_with_a_suggestion_and_the_names(stored, tmp_path):
    store, path, _ = stored
    res = runner.invoke(app, ["compare", path.stem, "--out", str(store), "--metric", "gin"])
    assert res.exit_code == 2
    assert "did you mean gini" in res.output and "available: mean_score, gini" in res.output
    assert "Traceback" not in res.output
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["sweep", str(scenario_file(tmp_path, 300, 5)), "--set",
                              f"{SETTING}=0.1", "--out", str(runs), "--metric", "mean_scor"])
    assert res.exit_code == 2 and "did you mean mean_score" in res.output
    assert "share_A" in res.output  # the scenario's own names are listed
    assert not runs.exists() or not any(runs.iterdir())  # refused before anything ran


@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_truncated_or_malformed_sweep_file_is_exit_2_naming_it(stored, tmp_path, command):
    _, path, data = stored
    truncated = tmp_path / path.name
    text = path.read_text()
    truncated.write_text(text[: len(text) // 2])
    res = runner.invoke(app, [command, str(truncated), "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert str(truncated) in res.output and "truncated" in res.output
    assert "Traceback" not in res.output
    shapeless = tmp_path / "sweep-shapeless.json"
    shapeless.write_text(json.dumps({**data, "points": data["points"][:1]}))
    res = runner.invoke(app, [command, "sweep-shapeless", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert str(shapeless) in res.output and "not a valid sweep report" in res.output


@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_sweep_naming_a_deleted_run_is_exit_2_naming_the_file(tmp_path, command):
    store = tmp_path / "runs"
    path = sweep(scenario_file(tmp_path, 300, 5), store, "--set", f"{SETTING}=0.1",
                 "--replicates", "2")
    gone = Path(json.loads(path.read_text())["runs"][1]["run"]).name
    shutil.rmtree(store / gone)
    res = runner.invoke(app, [command, path.stem, "--out", str(store)])
    assert res.exit_code == 2, res.output
    assert str(path) in res.output and gone in res.output and "missing" in res.output
    assert "Traceback" not in res.output


def test_a_damaged_run_of_a_sweep_fails_the_integrity_check(stored, tmp_path):
    store, path, data = stored
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    victim = copy / Path(data["runs"][0]["run"]).name
    (victim / "citizens.parquet").write_bytes(b"garbage")
    res = runner.invoke(app, ["compare", path.stem, "--out", str(copy)])
    assert res.exit_code == 2, res.output
    assert str(copy / path.name) in res.output and victim.name in res.output
    assert "damaged or tampered" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("command", ["compare", "report"])
def test_mixing_a_sweep_and_runs_is_refused(stored, tmp_path, command):
    store, path, data = stored
    run = Path(data["runs"][0]["run"]).name
    res = runner.invoke(app, [command, path.stem, run, "--out", str(store), "--html",
                              str(tmp_path / "x.html")] if command == "report" else
                        [command, path.stem, run, "--out", str(store)])
    assert res.exit_code == 2, res.output
    assert "cannot mix sweeps and runs" in res.output or \
        "cannot compare sweeps and runs" in res.output
    assert f"{path.stem} is a sweep" in res.output and f"{run} is a run" in res.output
    assert not (tmp_path / "x.html").exists()
