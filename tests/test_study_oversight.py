"""Study ``oversight`` (question 3) rerun at tiny scale: its page has every section, every
number it prints is recomputed here from the stored runs, and what it claims holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panopticon.api import open_run
from panopticon.audit import audit
from panopticon.metrics.intervals import mean_interval
from panopticon.metrics.run import _col, read
from panopticon.studies import get
from panopticon.studies.base import pct_ci, run_study, with_ci
from panopticon.studies.oversight import (
    AXIS,
    GROUPS,
    Oversight,
    groups,
    insider_effect,
    standing,
)
from panopticon.sweeps import COMPLETE, load_sweep

SECTIONS = ("## The question", "## The design", "## The answer",
            "## What is documented and what is assumed", "## How to rerun it")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[dict, str, Path]:
    """The study at tiny scale: (the page's data, the page, the pages folder)."""
    root = tmp_path_factory.mktemp("oversight")
    out, store = root / "docs", root / "runs"
    run_study(get("oversight"), "tiny", out, store, workers=1)
    return json.loads((out / "oversight.json").read_text()), \
        (out / "oversight.md").read_text(), out


def _fmt(metric: str, m: dict | None) -> str:
    if metric.startswith("share_"):
        return pct_ci(m)
    return with_ci(m, digits=4) if metric.startswith("mean_score") else with_ci(m)


def _per_run(data: dict) -> dict[str, list[dict[str, float]]]:
    """Each grid run's :func:`standing`, by exemption setting, from the stored runs."""
    sweep = load_sweep(Path(data["store"]) / data["sweep"], Path(data["store"]))
    out: dict[str, list[dict[str, float]]] = {}
    for r in sweep["runs"]:
        assert r["status"] == COMPLETE
        out.setdefault(str(r["point"][AXIS]), []).append(standing(open_run(r["path"])))
    return out


def test_page_has_every_section(study):
    data, page, out = study
    for section in SECTIONS:
        assert section in page, section
    assert "Generated at tiny scale" in page and "make studies" in page
    assert data["question"] in page
    assert "*final state*" in page and "*Whole run*" in page
    html = (out / "oversight.html").read_text()
    assert "<script src=" not in html and "http://" not in html.split("<script>")[0]
    assert data["charts"]
    for chart in data["charts"]:
        assert (out / chart).exists() and f"]({chart})" in page
    assert f"{data['runs']} runs" in page and f"{data['seconds'] / 60:.1f} minutes" in page


def test_grid_sentences_come_from_the_runs(study):
    data, page, _ = study
    runs = _per_run(data)
    bounds = Oversight().bounds
    checked = 0
    for key, text in data["numbers"].items():
        head, _, metric = key.partition("/")
        if head in runs:
            values = [s[metric] for s in runs[head] if metric in s]
            assert text == _fmt(metric, mean_interval(values, *bounds(metric))), key
        elif head == "diff":
            g_metric = metric
            means = {r: float(np.mean([s[g_metric] for s in runs[r]])) for r in runs}
            assert text == f"{abs(means['officials'] - means['none']):,.1f}", key
        else:
            continue
        assert text in page, key
        checked += 1
    # 5 metrics x 4 groups x 2 settings, and the differences of the mean scores
    assert checked >= 5 * 4 * 2


def test_insider_sentences_come_from_the_runs(study):
    data, page, _ = study
    ins = data["extra"]["insiders"]
    store = Path(data["store"])
    effects = [insider_effect(open_run(store / r["control"]), open_run(store / r["insiders"]))
               for r in ins["runs"]]
    bounds = Oversight().bounds
    checked = 0
    for key, text in data["numbers"].items():
        parts = key.split("/")
        if parts[0] != "insiders" or len(parts) != 2 or parts[1] not in effects[0]:
            continue
        m = mean_interval([e[parts[1]] for e in effects], *bounds(parts[1]))
        expected = pct_ci(m) if parts[1].startswith("share_") else with_ci(m)
        assert text == expected and text in page, key
        checked += 1
    assert checked >= 8
    # the audit, run again on each stored insider run, against the lab's record
    caught: dict[str, list[int]] = {}
    not_intact = 0
    for r in ins["runs"]:
        report = audit(store / r["insiders"])
        not_intact += not report["intact"]
        for attack, d in report["insider_actions_found"].items():
            total = caught.setdefault(attack, [0, 0])
            total[0] += d["caught"]
            total[1] += d["actions"]
    assert set(caught) == {"raise_cronies", "delete_entries", "lower_targets"}
    for attack, (found, actions) in caught.items():
        assert data["numbers"][f"insiders/caught/{attack}"] == f"{found:,} of {actions:,}"
        assert f"`{attack}` {found:,} of {actions:,} actions" in page
    runs = len(ins["runs"])
    assert f"the verdict was *not intact* in {not_intact} of {runs} runs" in page


def test_exempt_officials_keep_the_start_score_and_scored_ones_do_not(study):
    data, _, _ = study
    runs = _per_run(data)
    start = Oversight()._facts()["start"]
    for s in runs["officials"]:
        assert s["mean_score_officials"] == start
        assert s["share_officials_two_lowest"] == 0
        assert s["refused_sanctioned_per_1000_officials"] == 0
    # scored, officials move like anyone: not all of them sit at the start score
    sweep = load_sweep(Path(data["store"]) / data["sweep"], Path(data["store"]))
    for r in sweep["runs"]:
        result = open_run(r["path"])
        official = groups(result)["officials"]
        score = _col(read(result, "citizens", ["score"]), "score")
        moved = bool((score[official] != start).any())
        assert moved == (r["point"][AXIS] == "none"), r["point"]
    # same seeds: the groups are the same citizens in both settings
    for g in GROUPS:
        assert [s[f"citizens_{g}"] for s in runs["none"]] == \
            [s[f"citizens_{g}"] for s in runs["officials"]]


def test_groups_are_officials_their_friends_and_families(study):
    data, _, _ = study
    sweep = load_sweep(Path(data["store"]) / data["sweep"], Path(data["store"]))
    result = open_run(sweep["runs"][0]["path"])
    masks = groups(result)
    from panopticon import engine
    from panopticon.metrics.run import _spec

    society = engine.build(_spec(result, None)).society
    pop, layer = society.population, society.ties["friends"]
    official = pop.occupation == pop.labels["occupation"].index("official")
    assert (masks["officials"] == official).all() and official.any()
    friends = set()
    for i in np.flatnonzero(official):
        friends.update(int(j) for j in layer.indices[layer.indptr[i]:layer.indptr[i + 1]])
    assert set(np.flatnonzero(masks["friends"])) == friends - set(np.flatnonzero(official))
    homes = set(pop.household[official].tolist())
    family = {i for i in range(pop.n) if pop.household[i] in homes and not official[i]}
    assert set(np.flatnonzero(masks["family"])) == family
    assert not (masks["others"] & (masks["officials"] | masks["friends"]
                                   | masks["family"])).any()
    assert (masks["officials"] | masks["friends"] | masks["family"] | masks["others"]).all()


def test_insiders_favour_their_cronies_and_the_audit_names_only_the_logged(study):
    data, page, _ = study
    ins = data["extra"]["insiders"]
    for r in ins["runs"]:
        assert r["effect"]["cronies_gain"] > 0 and r["effect"]["critics_loss"] > 0
        a = r["audit"]
        # every logged action is found and its official named; silent deleters never named
        for attack in ("raise_cronies", "lower_targets"):
            assert a["attacks"][attack]["caught"] == a["attacks"][attack]["actions"] > 0
        assert a["logged_named"] == a["logged_officials"] > 0
        assert a["silent_named"] == 0
        assert not a["intact"] and a["unexplained"] > 0 and a["chain_intact"]
    t = ins["totals"]
    assert f"{t['silent_named']:,} of the {t['silent_only']:,}" in page
