"""Study ``positive`` (question 2) rerun at tiny scale: its page has every section, every
number it prints is recomputed here from the stored runs, and what the variants claim holds
in the runs themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panopticon.api import open_run
from panopticon.metrics.intervals import mean_interval
from panopticon.metrics.run import read, summary
from panopticon.studies.base import run_study, with_ci
from panopticon.studies.positive import (
    AXIS,
    BASELINE,
    CHANGES,
    MODELLED,
    Positive,
    change_text,
    conduct,
)
from panopticon.sweeps import COMPLETE, load_sweep

SECTIONS = ("## The question", "## The design", "## The answer",
            "## What is documented and what is assumed", "## How to rerun it")


def _study() -> Positive:
    """The study through the registry once it lists it, else directly."""
    from panopticon.studies import get

    return get("positive")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[dict, str, Path]:
    root = tmp_path_factory.mktemp("positive")
    out, store = root / "docs", root / "runs"
    run_study(_study(), "tiny", out, store, workers=1)
    return (json.loads((out / "positive.json").read_text()),
            (out / "positive.md").read_text(), out)


@pytest.fixture(scope="module")
def runs(page) -> dict[tuple[str, int], dict]:
    """(system, replicate) -> the run's summary and study numbers, recomputed from its
    stored tables, plus its folder under ``"path"``."""
    data = page[0]
    sweep = load_sweep(Path(data["store"]) / data["sweep"], Path(data["store"]))
    out = {}
    for r in sweep["runs"]:
        assert r["status"] == COMPLETE
        result = open_run(r["path"])
        out[(r["point"][AXIS], r["replicate"])] = {**summary(result), **conduct(result),
                                                   "path": r["path"]}
    return out


def test_page_has_every_section(page):
    data, text, out = page
    for section in SECTIONS:
        assert section in text, section
    assert "Generated at tiny scale" in text and data["question"] in text
    assert "over the whole run" in text and "per 1,000 citizen-years" in text
    assert (out / "positive.html").stat().st_size > 0
    assert data["charts"]
    for chart in data["charts"]:
        assert (out / chart).exists() and f"]({chart})" in text
    assert f"{data['runs']} runs" in text


def test_every_number_printed_is_recomputed(page, runs):
    data, text, _ = page
    systems = data["settings"][AXIS]
    study = _study()
    checked = 0
    for key, printed in data["numbers"].items():
        system, metric = key.split("/")
        assert printed in text, key
        if metric.startswith("change_"):
            name = metric.removeprefix("change_")
            ratios = []
            for (s, rep), numbers in runs.items():
                if s != system:
                    continue
                base = runs[(BASELINE, rep)].get(name)
                if base and numbers.get(name) is not None:
                    ratios.append(numbers[name] / base - 1)
            expected = change_text(mean_interval(ratios, -1.0, None))
        else:
            name = "wrongly_sanctioned_days_per_1000" if metric == "days_short" else metric
            values = [n[name] for (s, _), n in runs.items() if s == system and name in n]
            m = mean_interval(values, *study.bounds(name))
            expected = change_text(m) if name.startswith("behaviour_change_") else with_ci(m)
        assert printed == expected, (key, printed, expected)
        checked += 1
    # each system: 6 rates and 3 costs; each other system: 6 changes, 6 modelled rates and
    # its short verdict
    assert checked >= 9 * len(systems) + 13 * (len(systems) - 1)
    for s in systems:
        if s != BASELINE:
            assert all(f"{s}/change_{m}" in data["numbers"] for m in CHANGES)
            assert all(f"{s}/behaviour_change_{e}" in data["numbers"] for e in MODELLED)


def test_none_sanctions_nobody_and_nobody_adapts(runs):
    for (system, _), numbers in runs.items():
        if system != BASELINE:
            continue
        assert numbers["wrongly_sanctioned_days_per_1000"] == 0
        assert numbers["sanction_refused_per_1000"] == 0
        assert numbers["wrongly_refused_per_1000"] == 0
        assert numbers.get("share_A") == 1.0  # no rules: everyone stays at the start score
        behaviour = read(open_run(numbers["path"]), "behaviour", ["expected", "baseline"])
        expected = behaviour.column("expected").to_numpy(zero_copy_only=False)
        baseline = behaviour.column("baseline").to_numpy(zero_copy_only=False)
        surveyed = ~np.isnan(expected)  # the modelled rates are kept on survey days
        assert surveyed.any()
        assert np.allclose(expected[surveyed], baseline[surveyed], rtol=1e-9, atol=1e-12)


def test_modelled_rates_follow_the_mechanism(runs):
    """Noise-free: ``none`` leaves every rate as it was; ``perceived`` cuts what costs points
    and leaves drunk driving (a tier cap, no points) alone; ``fixed`` cuts drunk driving."""
    for (system, _), n in runs.items():
        if system == BASELINE:
            assert all(n.get(f"behaviour_change_{e}", 0) == pytest.approx(0, abs=1e-12)
                       for e in MODELLED)
        elif system == "perceived":
            assert n["behaviour_change_drunk_driving"] == pytest.approx(0, abs=1e-12)
            for e in ("late_loan_payment", "utility_arrears", "critical_post",
                      "spreading_rumours"):
                assert n[f"behaviour_change_{e}"] < -0.05, e
        else:
            assert n["behaviour_change_drunk_driving"] < 0


def test_the_system_cuts_what_it_punishes(runs):
    """Same seed, same citizens: perceived deterrence cuts unpaid debts and posts the score
    punishes in every replicate, and the preset's chilling response cuts critical posts."""
    replicates = sorted({rep for _, rep in runs})
    for rep in replicates:
        none, fixed, perceived = (runs[(s, rep)] for s in ("none", "fixed", "perceived"))
        assert perceived["debts_per_1000"] < none["debts_per_1000"]
        assert perceived["per_1000_critical_post"] < none["per_1000_critical_post"]
        assert fixed["per_1000_critical_post"] < none["per_1000_critical_post"]
        # events no variant deters or rewards are drawn the same way
        for event in ("volunteering", "alcohol_purchase"):
            a, b = none[f"per_1000_{event}"], perceived[f"per_1000_{event}"]
            assert abs(a - b) <= 0.1 * a, event
