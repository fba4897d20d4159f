"""Study ``visitors`` (question 5) at tiny scale: every section of its page, every number the
page printed recomputed from the stored runs, and what the ratings must do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panopticon.api import open_run
from panopticon.metrics.intervals import mean_interval
from panopticon.metrics.run import _col, compare_rates, read
from panopticon.studies import get
from panopticon.studies.base import pct_ci, run_study, with_ci
from panopticon.studies.visitors import AXIS, HOME, Visitors, impact_text, share, standing
from panopticon.sweeps import COMPLETE, load_sweep

SECTIONS = ("## The question", "## The design", "## The answer",
            "## What is documented and what is assumed", "## How to rerun it")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Visitors, dict, str, Path]:
    root = tmp_path_factory.mktemp("visitors")
    out, store = root / "docs", root / "runs"
    v = get("visitors")
    run_study(v, "tiny", out, store, workers=1)
    return (v, json.loads((out / "visitors.json").read_text()),
            (out / "visitors.md").read_text(), out)


@pytest.fixture(scope="module")
def runs(study) -> dict[str, list[tuple[dict, object]]]:
    """rating -> [(the run's numbers recomputed, the run)] from the stored runs."""
    v, data, _, _ = study
    sweep = load_sweep(Path(data["store"]) / data["sweep"], Path(data["store"]))
    out: dict[str, list] = {}
    for r in sweep["runs"]:
        assert r["status"] == COMPLETE
        result = open_run(r["path"])
        out.setdefault(r["point"][AXIS], []).append((standing(result, v.gates), result))
    return out


def test_page_has_every_section(study):
    _, data, page, out = study
    for section in SECTIONS:
        assert section in page, section
    assert "Generated at tiny scale" in page and data["question"] in page
    assert (out / "visitors.html").stat().st_size > 0
    assert data["charts"] and all((out / c).exists() and f"]({c})" in page
                                  for c in data["charts"])
    assert f"{data['runs']} runs" in page


def _expected(v: Visitors, data: dict, runs: dict) -> dict[str, str]:
    """Every number the page may print, recomputed from the runs: means with their t interval
    over replicates, counts and shares pooled over replicates (Wilson), four-fifths tests."""
    groups = [HOME, *v.origins]
    want: dict[str, str] = {}
    pooled_rental = []
    for rating, items in runs.items():
        assert len(items) == data["replicates"]
        nums = [n for n, _ in items]
        pooled: dict[str, dict[str, tuple[float, float]]] = {}
        for o in groups:
            people = sum(n[f"people_{o}"] for n in nums)
            want[f"{rating}/people/{o}"] = f"{round(people):,}"
            for m in ("start_score", "end_score"):
                values = [n[f"{m}_{o}"] for n in nums]
                want[f"{rating}/{m}_{o}"] = with_ci(mean_interval(values, None, None), digits=4)
            for what in ("fell", *v.gates):
                key = "fell_n" if what == "fell" else f"refused_n_{what}"
                hit = sum(n[f"{key}_{o}"] for n in nums)
                pooled.setdefault(what, {})[o] = (hit, people)
                if what != "fell":
                    want[f"{rating}/{what}/{o}"] = pct_ci(share((hit, people)))
            want[f"{rating}/fell/{o}"] = pct_ci(share(pooled["fell"][o]))
            pooled_rental.append(share(pooled["rental"][o]))
        test = compare_rates({o: (n - x, n) for o, (x, n) in pooled["travel"].items()},
                             {o: n for o, (_, n) in pooled["travel"].items()}, "favourable")
        for o in groups:
            want[f"{rating}/impact/{o}"] = impact_text(test[o])
    want["rental/lowest"] = pct_ci(min(pooled_rental, key=lambda s: s["mean"]))
    want["rental/highest"] = pct_ci(max(pooled_rental, key=lambda s: s["mean"]))
    return want


def test_every_printed_number_comes_from_the_runs(study, runs):
    v, data, page, _ = study
    want = _expected(v, data, runs)
    assert len(data["numbers"]) >= 3 * 5 * 7
    for key, text in data["numbers"].items():
        assert key in want, key
        assert text == want[key], (key, text, want[key])
        assert text in page, (key, text)


def test_as_residents_visitors_start_where_residents_do(study, runs):
    v, data, _, _ = study
    for numbers, _ in runs["as_residents"]:
        for o in (HOME, *v.origins):
            assert numbers[f"start_score_{o}"] == 1000
            assert numbers[f"people_{o}"] > 0


def test_by_origin_rates_the_lowest_origin_into_the_travel_bans(study, runs):
    """Under ``by_origin`` the lowest-rated origin (590: tier D) is refused travel far more
    often than residents, with an adverse impact; under ``as_residents`` it is not."""
    v, data, page, _ = study
    last = v.origins[-1]
    for rating, flagged in (("by_origin", True), ("as_residents", False)):
        nums = [n for n, _ in runs[rating]]
        hit = sum(n[f"refused_n_travel_{last}"] for n in nums)
        people = sum(n[f"people_{last}"] for n in nums)
        home = sum(n[f"refused_n_travel_{HOME}"] for n in nums) / sum(
            n[f"people_{HOME}"] for n in nums)
        if flagged:
            assert all(n[f"start_score_{last}"] == 590 for n in nums)
            assert hit / people > 0.5 > home
            assert "adverse impact" in data["numbers"][f"{rating}/impact/{last}"]
        else:
            assert hit / people < 0.05
            assert "adverse impact" not in data["numbers"][f"{rating}/impact/{last}"]


def test_by_income_orders_the_origins_by_their_incomes(runs, study):
    v = study[0]
    for numbers, _ in runs["by_income"]:
        starts = [numbers[f"start_score_{o}"] for o in v.origins]
        assert starts == sorted(starts, reverse=True) and starts[0] > starts[-1] + 200
        assert numbers[f"start_score_{HOME}"] == 1000


def test_gates_match_the_tiers_read_straight_from_the_citizens_table(runs, study):
    """seed_article's travel group is blocked by tier D only, its loan by C or D: the study's
    gate counts equal the tiers counted by hand; visitors are the slots that came."""
    v = study[0]
    for items in runs.values():
        for numbers, result in items:
            t = read(result, "citizens", ["origin", "tier", "visits", "age"])
            origin = _col(t, "origin").astype(str)
            tier = _col(t, "tier").astype(str)
            visits = _col(t, "visits").astype(np.int64)
            for o in v.origins:
                mine = origin == o
                assert (visits[mine] > 0).all()
                assert numbers[f"people_{o}"] == mine.sum()
                assert numbers[f"refused_n_travel_{o}"] == (mine & (tier == "D")).sum()
                assert numbers[f"refused_n_credit_{o}"] == (mine & np.isin(tier, ["C", "D"])).sum()
                assert numbers[f"refused_n_rental_{o}"] == (
                    mine & ~np.isin(tier, ["AA", "AAA"])).sum()
