"""Studies (`panopticon study`): each study rerun at tiny scale; its page's sentences must carry
the numbers recomputed here from the stored runs, never numbers typed in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panopticon.api import open_run
from panopticon.cli import app
from panopticon.metrics.intervals import mean_interval
from panopticon.metrics.run import summary
from panopticon.studies import STUDIES, get, run_study
from panopticon.studies.abroad import standing
from panopticon.studies.base import pct_ci, with_ci
from panopticon.studies.mistakes import group_rates, wrongful_by_source
from panopticon.sweeps import COMPLETE, load_sweep

runner = CliRunner()

SECTIONS = ("## The question", "## The design", "## The answer",
            "## What is documented and what is assumed", "## How to rerun it")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, tuple[dict, str, Path]]:
    """Both studies at tiny scale: ``abroad`` through the command line, ``mistakes`` through
    the API; name -> (the page's data, the page, the pages folder)."""
    root = tmp_path_factory.mktemp("studies")
    out, store = root / "docs", root / "runs"
    result = runner.invoke(app, ["study", "abroad", "--scale", "tiny", "--out", str(out),
                                 "--store", str(store), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    run_study(get("mistakes"), "tiny", out, store, workers=1)
    return {name: (json.loads((out / f"{name}.json").read_text()),
                   (out / f"{name}.md").read_text(), out) for name in ("abroad", "mistakes")}


def _recomputed(data: dict, extras) -> dict[tuple, dict[str, dict]]:
    """Per grid point (its values in the study's axis order): each metric's mean and interval
    over the replicates, recomputed from the stored runs."""
    sweep = load_sweep(Path(data["store"]) / data["sweep"], Path(data["store"]))
    bounds = get(data["study"]).bounds
    values: dict[tuple, dict[str, list[float]]] = {}
    for r in sweep["runs"]:
        assert r["status"] == COMPLETE
        result = open_run(r["path"])
        numbers = {**summary(result), **extras(result)}
        key = tuple(str(r["point"][k]) for k in data["settings"])
        for name, v in numbers.items():
            values.setdefault(key, {}).setdefault(name, []).append(v)
    return {key: {name: mean_interval(v, *bounds(name)) for name, v in by_name.items()}
            for key, by_name in values.items()}


def _check_numbers(data: dict, page: str, extras, formats) -> int:
    """Every number the page printed for a grid point, recomputed; returns how many."""
    again = _recomputed(data, extras)
    checked = 0
    for key, text in data["numbers"].items():
        *where, metric = key.split("/")
        if len(where) != len(data["settings"]) or metric not in formats:
            continue
        m = again[tuple(where)].get(metric)
        expected = formats[metric](m)
        assert text == expected, (key, text, expected)
        assert text in page, (key, text)
        checked += 1
    return checked


def test_pages_have_every_section(pages):
    for name, (data, page, out) in pages.items():
        for section in SECTIONS:
            assert section in page, (name, section)
        assert "Generated at tiny scale" in page and "make studies" in page
        assert data["question"] in page
        assert (out / f"{name}.html").stat().st_size > 0
        html = (out / f"{name}.html").read_text()
        assert "<script src=" not in html and "http://" not in html.split("<script>")[0]
        for chart in data["charts"]:
            assert (out / chart).exists() and f"]({chart})" in page
        assert f"{data['runs']} runs" in page and f"{data['seconds'] / 60:.1f} minutes" in page


def test_mistakes_sentences_come_from_the_runs(pages):
    data, page, _ = pages["mistakes"]
    formats = {f"{kind}_per_1000_{g}": with_ci for kind in ("falsely_named", "wrongly_refused")
               for g in ("minority", "majority")}
    formats |= {"wrongly_sanctioned_days_per_1000": with_ci, "review_false_caught": with_ci,
                "review_true_dismissed": with_ci}
    formats |= {k: pct_ci for k in data["points"][0]["metrics"]
                if k.startswith("wrongful_after_false_")}
    formats |= {k: with_ci for k in data["points"][0]["metrics"] if k.startswith("false_records_")}
    checked = _check_numbers(data, page, lambda r: group_rates(r) | wrongful_by_source(r),
                             formats)
    assert checked >= 3 * 5 + 2 + 3 * 2
    # the judge sentence compares the computer and the judge at the middle error rate
    assert data["numbers"]["computer/0.002/days"] in page
    assert data["numbers"]["judge/0.002/days"] in page


def test_mistakes_insider_run_is_audited(pages):
    from panopticon.audit import audit
    from panopticon.metrics.run import manipulations

    data, page, _ = pages["mistakes"]
    ins = data["extra"]["insiders"]
    folder = Path(data["store"]) / ins["run"]
    report = audit(folder)
    done = manipulations(open_run(folder))
    assert f"the audit's verdict was *{'intact' if report['intact'] else 'not intact'}*" in page
    found = report["insider_actions_found"]
    assert set(ins["attacks"]) == set(done) and done
    for attack, d in done.items():
        text = f"`{attack}` {found[attack]['caught']:,} of {int(d['actions']):,} actions"
        assert text in page


def test_abroad_sentences_come_from_the_runs(pages):
    data, page, _ = pages["abroad"]
    formats = {f"mean_score_{w}": (lambda m: with_ci(m, digits=4))
               for w in ("abroad", "home", "family")}
    formats |= {f"share_{w}_{t}": pct_ci for w in ("abroad", "home", "family")
                for t in ("lowest", "two_lowest")}
    assert _check_numbers(data, page, standing, formats) == 4 * 9
    # under freeze citizens abroad keep the start score exactly
    freeze = next(p for p in data["points"] if p["point"]["policy.scope.abroad.mode"] == "freeze")
    assert freeze["metrics"]["mean_score_abroad"]["mean"] == 1000


def test_unknown_study_is_exit_2_with_a_suggestion():
    result = runner.invoke(app, ["study", "mistkes"])
    assert result.exit_code == 2 and "did you mean 'mistakes'" in result.output
    result = runner.invoke(app, ["study", "abroad", "--scale", "huge"])
    assert result.exit_code == 2 and "tiny, small, full" in result.output


def test_help_lists_the_five_studies_in_the_order_of_the_questions():
    result = runner.invoke(app, ["study", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert list(STUDIES) == ["mistakes", "positive", "oversight", "abroad", "visitors"]
    at = [result.output.index(f"{name}: {k}.") for k, name in enumerate(STUDIES, 1)]
    assert at == sorted(at)


def test_false_records_by_source_add_up_to_the_runs_false_observations(pages):
    """Each source's false records, summed, are the run's false observations (daily table);
    the share of wrongful refusals after a source's false record is a share."""
    data, _, _ = pages["mistakes"]
    sweep = load_sweep(Path(data["store"]) / data["sweep"], Path(data["store"]))
    for r in sweep["runs"]:
        result = open_run(r["path"])
        by_source = wrongful_by_source(result)
        made = sum(v for k, v in by_source.items() if k.startswith("false_records_"))
        assert made == summary(result)["false_observations"] > 0
        assert all(0 <= v <= 1 for k, v in by_source.items() if k.endswith("_share"))
