"""The dashboard's logic, through Streamlit's AppTest (no browser): every page renders for a
small stored run, a knob moved and Run pressed stores a run whose scenario has that value,
Stop leaves a resumable run, the store is only read, and the command checks its input."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

import panopticon as pc
from panopticon.cli import app
from panopticon.dashboard import APP, STORE_ENV
from panopticon.dashboard.knobs import (
    APPEALS,
    EXEMPT,
    FOREIGNERS,
    FOREIGNERS_EXEMPT,
    apply,
    from_yaml,
    knobs_for,
    to_yaml,
)
from panopticon.errors import UserError
from panopticon.store.local import read_manifest, read_scenario

SRC = Path(pc.__file__).parent


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dashboard-store")
    pc.run("seed_article", citizens=2000, days=30, seed=5, out=root)
    pc.run("seed_article", citizens=2000, days=30, seed=6, out=root)
    from panopticon.sweeps import Setting, run_sweep, save

    base = pc.load("reference").with_run(citizens=1000, days=10)
    save(run_sweep(base, [Setting("sensors.cameras.misattribution", (0.0, 0.05))], 2, root, 1,
                   None), root)
    return root


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _app(store: Path, monkeypatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv(STORE_ENV, str(store))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    if page is not None:
        at.switch_page(f"page_{page}.py").run()
    return at


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _charts(at: AppTest) -> int:
    return len(at.get("arrow_vega_lite_chart")) + len(at.get("vega_lite_chart"))


# ---------------------------------------------------------------------- pages (AppTest)
def test_every_page_renders_for_a_small_stored_run(store, monkeypatch):
    at = _app(store, monkeypatch)
    _clean(at)
    assert at.title[0].value == "Explore"
    assert {b.label for b in at.button} >= {"Run", "Stop"}

    at.switch_page("page_runs.py").run()
    _clean(at)
    assert at.title[0].value == "Runs"
    text = " ".join(m.value for m in at.markdown)
    assert "Findings" in text and "Scores and tiers" in text
    assert _charts(at) >= 5  # the report's charts, live
    assert any("verdict: intact" in s.value for s in at.success)  # the audit
    assert any(m.value.startswith("**citizen ") for m in at.markdown)  # a story
    assert any(t.value.startswith("summary:") for t in at.markdown) or \
        any("summary:" in str(t.value) for t in at.get("markdown"))

    at.switch_page("page_compare.py").run()
    _clean(at)
    assert at.title[0].value == "Compare and sweeps"
    from panopticon.store.local import list_runs

    pair = sorted(m["run_id"] for m in list_runs(store) if m["scenario"] == "seed_article")
    at.multiselect(key="compare:runs").set_value(pair).run()
    _clean(at)
    assert len(at.dataframe) == 2  # the settings that differ, the headline metrics
    settings = at.dataframe[0].value
    assert list(settings["setting"]) == ["seed"]
    assert _charts(at) == 1
    at.radio(key="compare:mode").set_value("a sweep").run()
    _clean(at)
    assert _charts(at) >= 1  # each chosen metric against the swept setting
    points = at.dataframe[0].value
    assert len(points) == 2 and "sensors.cameras.misattribution" in points


def test_the_runs_page_shows_harms_by_any_attribute_with_intervals(store, monkeypatch):
    at = _app(store, monkeypatch, "runs")
    key = next(s.key for s in at.selectbox if s.key.startswith("runs:attr:"))
    at.selectbox(key=key).set_value("age").run()
    _clean(at)
    frames = [d.value for d in at.dataframe if "per_1000" in d.value]
    assert frames, "no harms table"
    harms = frames[0]
    assert (harms["low"] <= harms["per_1000"]).all() and (harms["per_1000"] <= harms["high"]).all()
    assert harms["category"].nunique() > 1


def test_a_citizen_story_is_told_by_id(store, monkeypatch):
    at = _app(store, monkeypatch, "runs")
    box = next(n for n in at.number_input if n.key.startswith("runs:id:"))
    box.set_value(7).run()
    _clean(at)
    assert any(m.value.startswith("**citizen 7:") for m in at.markdown)


def test_the_pages_only_read_the_store_and_offer_no_sql(store, monkeypatch):
    before = _files(store)
    at = _app(store, monkeypatch)
    for page in ("runs", "compare"):
        at.switch_page(f"page_{page}.py").run()
        _clean(at)
        assert not at.text_area and not at.text_input  # no box to type a query into
    assert _files(store) == before


def test_moving_a_slider_and_pressing_run_stores_a_run_whose_scenario_has_that_value(
        tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch)
    prefix = "knob:seed_article:"
    at.slider(key=prefix + "run.citizens").set_value(2000)
    at.slider(key=prefix + "run.days").set_value(12)
    at.slider(key=prefix + "sensors.cameras.misattribution").set_value(0.0125)
    at.run()
    at.button(key="explore:run").click().run()
    _clean(at)
    assert any(s.value.startswith("complete: 12 days stored") for s in at.success)
    assert _charts(at) == 4  # scores, tiers, false observations, refusals by group
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1
    manifest = read_manifest(runs[0])
    assert manifest["status"] == "complete"
    spec = read_scenario(runs[0], manifest)
    assert spec.sensors["cameras"].misattribution == 0.0125
    assert (spec.run.citizens, spec.run.days) == (2000, 12)
    assert manifest["settings"] == {"sensors.cameras.misattribution": 0.0125}
    # the YAML the page shows is that scenario
    shown = next(c.value for c in at.code if c.language == "yaml")
    assert from_yaml(shown).digest == spec.digest


def test_a_bad_scenario_file_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch)
    at.radio(key="explore:source").set_value("a scenario file").run()
    assert not at.exception
    assert at.info  # asks for a file; nothing runs without one
    assert at.button(key="explore:run").disabled


# ---------------------------------------------------------------------- knobs (pure)
def test_the_knobs_unmoved_give_the_scenario_with_an_interactive_size():
    spec = pc.load("seed_article")
    new, settings = apply(spec, {})
    assert settings == {}
    assert new.run.citizens == 20_000 and new.run.days == 365
    assert new.with_run(citizens=spec.run.citizens).digest == spec.digest


def test_the_yaml_reproduces_the_scenario_exactly():
    spec, _ = apply(pc.load("seed_article"), {"sensors.cameras.misattribution": 0.02})
    assert from_yaml(to_yaml(spec)).digest == spec.digest


def test_knobs_cover_the_readers_questions():
    keys = {k.key for k in knobs_for(pc.load("seed_article"))}
    assert {"run.citizens", "run.days", "run.seed", "sensors.cameras.misattribution",
            "sensors.cameras.false_match_multipliers.group.minority",
            "sensors.cameras.false_match_multipliers.sex.female",
            "policy.association.0.weight", "behaviour.deterrence.0.factor",
            "governance.appeals.capacity", APPEALS, EXEMPT, FOREIGNERS,
            "society.abroad_share", "policy.scope.abroad.mode"} <= keys
    cap = next(k for k in knobs_for(pc.load("seed_article")) if k.key == "run.citizens")
    assert cap.high == 100_000


def test_exemptions_foreigners_and_appeals_make_one_valid_scenario():
    spec = pc.load("seed_article")
    new, settings = apply(spec, {EXEMPT: "age < 18", FOREIGNERS: "exempt", APPEALS: True,
                                 "governance.appeals.capacity": 40,
                                 "sensors.cameras.false_match_multipliers.sex.female": 3.0})
    assert new.policy.scope.exempt == f"age < 18 or {FOREIGNERS_EXEMPT}"
    assert new.governance.appeals is not None and new.governance.appeals.capacity == 40
    assert new.sensors["cameras"].false_match_multipliers["sex"]["female"] == 3.0
    assert settings["policy.scope.exempt"] == new.policy.scope.exempt
    # and back: the knobs of the new scenario start where it is
    again, more = apply(new, {})
    assert more == {} and again.digest == new.digest


def test_a_value_the_scenario_refuses_is_a_user_error_naming_the_key():
    with pytest.raises(UserError, match=r"policy\.scope\.abroad\.rate"):
        apply(pc.load("seed_article"), {"policy.scope.abroad.rate": 2.0})
    with pytest.raises(UserError, match="no such knob"):
        apply(pc.load("seed_article"), {"sensors.nope.misattribution": 0.1})


# ---------------------------------------------------------------------- stop and resume
def test_stop_leaves_a_resumable_run_that_finishes_as_if_never_stopped(tmp_path):
    import time

    from panopticon.dashboard.live import COMPLETE, INTERRUPTED, LiveRun

    spec = pc.load("reference").with_run(citizens=2000, days=400)
    job = LiveRun(spec, tmp_path).start()
    while job.days_done < 3 and job.running:
        time.sleep(0.005)
    job.stop()  # what the page's Stop button does
    assert job.wait(120)
    assert job.status == INTERRUPTED and 3 <= len(job.rows) < 400
    assert read_manifest(job.path)["status"] == "interrupted"
    again = LiveRun(resume=job.path).start()
    assert again.wait(120) and again.status == COMPLETE, again.error
    assert again.rows[-1]["day"] == 399
    stored = pc.open_run(job.path).manifest["result"]["fingerprint"]
    assert stored == pc.run(spec).manifest["result"]["fingerprint"]


# ---------------------------------------------------------------------- the command
def test_the_command_refuses_a_bad_port_or_a_missing_store_with_exit_2(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["dashboard", "--out", str(tmp_path), "--port", "70000"])
    assert bad.exit_code == 2 and "65535" in bad.output
    missing = runner.invoke(app, ["dashboard", "--out", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no run store" in missing.output
    assert "Traceback" not in bad.output + missing.output


def test_the_command_serves_locally_and_warns_for_other_hosts(tmp_path, monkeypatch):
    served = []
    monkeypatch.setattr("panopticon.dashboard.server.serve",
                        lambda store, host, port: served.append((host, port)))
    runner = CliRunner()
    local = runner.invoke(app, ["dashboard", "--out", str(tmp_path), "--port", "8765"])
    assert local.exit_code == 0, local.output
    assert "http://127.0.0.1:8765" in local.output and "warning" not in local.output
    wide = runner.invoke(app, ["dashboard", "--out", str(tmp_path), "--port", "8766",
                               "--host", "0.0.0.0"])
    assert wide.exit_code == 0, wide.output
    assert "warning" in wide.output and "http://0.0.0.0:8766" in wide.output
    assert served == [("127.0.0.1", 8765), ("0.0.0.0", 8766)]


def test_nothing_outside_the_dashboard_imports_it_but_the_command():
    pattern = re.compile(r"^\s*(from|import)\s+panopticon\.dashboard", re.M)
    users = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
             if "dashboard" not in p.parts and pattern.search(p.read_text())]
    assert users == ["cli.py"]
    cli = (SRC / "cli.py").read_text()
    top = cli[:cli.index("\nclass ")]
    assert "dashboard" not in top and "streamlit" not in top  # imported lazily
