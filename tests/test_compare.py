"""`panopticon compare`: headline metrics of stored runs side by side, with differences."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import panopticon as pc
from panopticon.cli import app
from panopticon.metrics.run import summary

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    a = pc.run("seed_article", citizens=500, days=12, seed=1, out=root)
    b = pc.run("seed_article", citizens=500, days=12, seed=2, out=root)
    no_opportunities = pc.load("court_blacklist").set("opportunities", {})
    c = pc.run(no_opportunities, citizens=400, days=8, seed=1, out=root)
    return root, a, b, c


def test_compare_json_has_summaries_and_differences(store):
    root, a, b, c = store
    res = runner.invoke(app, ["compare", a.manifest["run_id"], str(b.path), c.manifest["run_id"],
                              "--out", str(root), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["baseline"] == a.manifest["run_id"]
    assert [r["run"] for r in data["runs"]] == [a.manifest["run_id"], b.manifest["run_id"],
                                                c.manifest["run_id"]]
    first, second, court = data["runs"]
    assert first["summary"] == pytest.approx(summary(pc.open_run(a.path)))
    assert second["difference"]["mean_score"] == pytest.approx(
        second["summary"]["mean_score"] - first["summary"]["mean_score"])
    assert all(v == 0 for v in first["difference"].values())
    # a run without opportunities: no refusal metrics, so no difference either
    assert "refusals" in first["summary"] and "refusals" not in court["summary"]
    assert "refusals" not in court["difference"]
    assert set(data["metrics"]) >= set(first["summary"]) | set(court["summary"])


def test_compare_table(store):
    root, a, b, c = store
    res = runner.invoke(app, ["compare", a.manifest["run_id"], c.manifest["run_id"],
                              "-o", str(root)])
    assert res.exit_code == 0, res.output
    assert "A: " + a.manifest["run_id"] in res.output
    assert "B − A" in res.output
    for label in ("mean score", "gini", "false observations", "refusals"):
        assert label in res.output


@pytest.mark.parametrize("args, message", [
    (["nope", "nothing"], "no run 'nope'"),
    (["only-one"], "at least two runs"),
])
def test_compare_bad_input_exits_2(store, args, message):
    root = store[0]
    res = runner.invoke(app, ["compare", *args, "--out", str(root)])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_compare_corrupt_run_exits_2(store, tmp_path):
    import shutil

    root, a, b, _ = store
    broken = tmp_path / "broken"
    shutil.copytree(b.path, broken)
    (broken / "citizens.parquet").write_bytes(b"garbage")
    res = runner.invoke(app, ["compare", str(a.path), str(broken), "--out", str(root)])
    assert res.exit_code == 2
    assert "corrupt" in res.output and "Traceback" not in res.output
    (broken / "manifest.json").write_text("{not json")
    res = runner.invoke(app, ["compare", str(a.path), str(broken), "--out", str(root)])
    assert res.exit_code == 2 and "corrupt manifest" in res.output
