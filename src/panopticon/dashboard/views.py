"""What the pages show, as plain data and Vega-Lite specs (no Streamlit): the live charts of a
run in progress, the store's runs as a table, harms by any attribute with their intervals,
runs side by side with the settings that differ. Numbers come from the metrics, report and
sweeps modules; nothing here re-implements a metric or reads the store's files itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

PER = 1000


def live_frame(rows: list[dict]) -> pd.DataFrame:
    """The days done so far, one row each."""
    return pd.DataFrame(rows)


def _spec(chart) -> dict:
    from panopticon.report.build import _spec as spec

    return spec(chart.configure_legend(orient="bottom"))


def live_charts(rows: list[dict], tiers: list[str], groups: list[str], days: int
                ) -> dict[str, dict]:
    """The Explore page's charts of the days done so far, each titled with its scope: scores
    (mean and median, each day), tier shares (end of each day), false observations (each
    day, and citizens ever falsely named so far), refusals and wrongful refusals by group
    (so far: summed from day 0 to the day)."""
    from panopticon.report.build import alt, tier_colours

    a = alt()
    frame = live_frame(rows)
    if frame.empty:
        return {}
    x = a.X("day:Q", title="day", scale=a.Scale(domain=[0, max(days - 1, 1)]))
    out = {}
    scores = frame[["day", "mean_score", "median_score"]].melt(
        "day", var_name="measure", value_name="score")
    scores["measure"] = scores["measure"].str.removesuffix("_score")
    out["scores"] = _spec(a.Chart(scores).mark_line().encode(
        x=x, y=a.Y("score:Q", title="score", scale=a.Scale(zero=False)), color="measure:N",
        tooltip=["day:Q", "measure:N", a.Tooltip("score:Q", format=",.1f")]).properties(
        title=a.TitleParams("Mean and median score", subtitle="each day's end"),
        width="container", height=220))
    present = [t for t in tiers if f"share_{t}" in frame]
    if present:
        shares = frame[["day", *(f"share_{t}" for t in present)]].melt(
            "day", var_name="tier", value_name="share")
        shares["tier"] = shares["tier"].str.removeprefix("share_")
        shares["rank"] = shares["tier"].map({t: i for i, t in enumerate(present)})
        out["tiers"] = _spec(a.Chart(shares).mark_area().encode(
            x=x, y=a.Y("share:Q", stack="normalize", axis=a.Axis(format="%"), title="share"),
            color=a.Color("tier:N", sort=present, title="tier (best to worst)",
                          scale=a.Scale(domain=present, range=tier_colours(len(present)))),
            order=a.Order("rank:Q"),
            tooltip=["day:Q", "tier:N", a.Tooltip("share:Q", format=".1%")]).properties(
            title=a.TitleParams("Tier shares", subtitle="each day's end"),
            width="container", height=220))
    false = []
    if "false_observations" in frame:
        false.append(frame[["day"]].assign(series="false observations that day",
                                           count=frame["false_observations"]))
    if "citizens_ever_false" in frame:
        false.append(frame[["day"]].assign(series="citizens ever falsely named (so far)",
                                           count=frame["citizens_ever_false"]))
    if false:
        f = pd.concat(false, ignore_index=True)
        out["false"] = _spec(a.Chart(f).mark_line().encode(
            x=x, y=a.Y("count:Q", title="count"), color=a.Color("series:N", title=None),
            tooltip=["day:Q", "series:N", a.Tooltip("count:Q", format=",")]).properties(
            title=a.TitleParams("False observations", subtitle="each day, and so far"),
            width="container", height=220))
    parts = []
    for g in groups:
        for col, what in (("refused", "refusals"), ("wrongful", "wrongful refusals")):
            name = f"{col}:{g}"
            if name in frame:
                parts.append(frame[["day"]].assign(group=g, what=what,
                                                   count=frame[name].cumsum()))
    if parts:
        r = pd.concat(parts, ignore_index=True)
        out["refusals"] = _spec(a.Chart(r).mark_line().encode(
            x=x, y=a.Y("count:Q", title="so far"), color=a.Color("group:N", sort=groups),
            strokeDash=a.StrokeDash("what:N", title=None),
            tooltip=["day:Q", "group:N", "what:N", a.Tooltip("count:Q", format=",")]
        ).properties(title=a.TitleParams("Refusals and wrongful refusals by group",
                                         subtitle="so far: summed from day 0"),
                     width="container", height=220))
    return out


def runs_frame(manifests: list[dict]) -> pd.DataFrame:
    """The store's runs (as :func:`panopticon.store.local.list_runs` gives them), one row
    each, as ``panopticon runs`` lists them."""
    rows = []
    for m in manifests:
        rows.append({"run": m.get("run_id"), "status": m.get("status"),
                     "scenario": m.get("scenario"), "citizens": m.get("citizens"),
                     "days": f"{m.get('days_completed', '?')}/{m.get('days', '?')}",
                     "seed": m.get("seed"), "created": m.get("created"),
                     "settings": ", ".join(f"{k}={v}" for k, v in
                                           (m.get("settings") or {}).items())})
    return pd.DataFrame(rows, columns=["run", "status", "scenario", "citizens", "days", "seed",
                                       "created", "settings"])


def harms_frame(impact: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One attribute's disparate impact (:func:`panopticon.metrics.run.disparate_impact`'s
    category -> row) as a table: per category and harm or favourable outcome, the rate per
    1,000 with its 95% interval, the ratio to the reference category with its interval, and
    the four-fifths status."""
    rows = []
    for value, row in impact.items():
        for measure, r in row.items():
            if not isinstance(r, dict) or r.get("rate") is None:
                continue
            rows.append({"category": str(value), "measure": measure,
                         "kind": r.get("kind"), "citizens": int(row["citizens"]),
                         "events": r["events"], "per_1000": r["rate"] * PER,
                         "low": r["low"] * PER, "high": r["high"] * PER,
                         "ratio": r.get("ratio"), "ratio_low": r.get("ratio_low"),
                         "ratio_high": r.get("ratio_high"), "status": r.get("status")})
    return pd.DataFrame(rows)


def harms_chart(frame: pd.DataFrame, attribute: str) -> dict | None:
    """Rates per 1,000 by category with their 95% interval as whiskers, one panel per
    measure, whole run (or final state for ``top_tier``)."""
    from panopticon.metrics.run import TOO_FEW
    from panopticon.report.build import alt

    if frame.empty:
        return None
    a = alt()
    data = frame.assign(judged=frame["status"] != TOO_FEW)
    base = a.Chart(data).encode(
        y=a.Y("category:N", title=attribute),
        opacity=a.condition("datum.judged", a.value(1), a.value(0.35)),
        tooltip=["category:N", "measure:N", "citizens:Q", "events:Q", "status:N",
                 a.Tooltip("per_1000:Q", format=",.2f", title="per 1,000"),
                 a.Tooltip("low:Q", format=",.2f", title="95% CI from"),
                 a.Tooltip("high:Q", format=",.2f", title="95% CI to")])
    bars = base.mark_bar(color="#b35806").encode(
        x=a.X("per_1000:Q", title="per 1,000 (95% CI)"))
    whiskers = base.mark_rule(color="black").encode(x="low:Q", x2="high:Q")
    chart = a.layer(bars, whiskers).properties(width=260, height=a.Step(18)).facet(
        facet=a.Facet("measure:N", title=None), columns=2).resolve_scale(x="independent")
    return _spec(chart.properties(title=a.TitleParams(
        f"Harms and outcomes by {attribute}",
        subtitle="whole run (top_tier: final state); faded: too few to judge")))


def citizens_chart(frame: pd.DataFrame) -> dict:
    """Citizens as points, final score against the points false observations cost them (and
    how often they were wrongly refused as the size); a click picks one (its ``citizen``)."""
    from panopticon.report.build import alt

    a = alt()
    pick = a.selection_point(name="pick", fields=["citizen"], on="click")
    chart = a.Chart(frame).mark_circle(opacity=0.6).encode(
        x=a.X("false_points:Q", title="points lost to false observations (final state)"),
        y=a.Y("score:Q", title="final score", scale=a.Scale(zero=False)),
        size=a.Size("wrongly_refused:Q", title="wrongful refusals (whole run)"),
        color=a.Color("tier:N", title="final tier"),
        tooltip=["citizen:Q", "tier:N", a.Tooltip("score:Q", format=",.1f"),
                 "false_points:Q", "wrongly_refused:Q"]).add_params(pick).properties(
        title=a.TitleParams("Citizens hit by errors: click one for their story",
                            subtitle="final state; size: wrongful refusals over the whole run"),
        width="container", height=300)
    return chart


def differing(manifests: list[dict], labels: list[str]) -> pd.DataFrame:
    """The settings that differ between runs (scenario, seed, citizens, days, and every
    recorded setting), a column per run."""
    facts = []
    for m in manifests:
        f = {"scenario": m.get("scenario"), "seed": m.get("seed"),
             "citizens": m.get("citizens"), "days": m.get("days_completed", m.get("days"))}
        f.update({k: v for k, v in (m.get("settings") or {}).items()})
        facts.append(f)
    keys = list(dict.fromkeys(k for f in facts for k in f))
    rows = []
    for k in keys:
        values = [json.dumps(f.get(k, "-"), default=str) for f in facts]
        if len(set(values)) > 1:
            rows.append({"setting": k, **{label: str(f.get(k, "-"))
                                          for label, f in zip(labels, facts, strict=True)}})
    return pd.DataFrame(rows, columns=["setting", *labels])


def compare_frame(summaries: list[dict[str, float]], labels: list[str]) -> pd.DataFrame:
    """Headline metrics side by side (:func:`panopticon.metrics.run.summary` per run, as
    ``panopticon compare``), with each run's difference from the first."""
    names = list(dict.fromkeys(k for s in summaries for k in s))
    rows = []
    for name in names:
        row: dict[str, Any] = {"metric": name}
        base = summaries[0].get(name)
        for k, (label, s) in enumerate(zip(labels, summaries, strict=True)):
            v = s.get(name)
            row[label] = v
            if k:
                row[f"{label} − first"] = None if v is None or base is None else v - base
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.replace([math.inf, -math.inf], math.nan)


def sweep_files(store: Path) -> list[Path]:
    """The store's sweep reports, newest first (as ``latest-sweep`` finds the newest)."""
    if not store.is_dir():
        return []
    return sorted(store.glob("sweep-*.json"), key=lambda p: (p.stat().st_mtime, p.name),
                  reverse=True)
