"""Build the report: gather each run's small tables, draw Vega-Lite charts with Altair, and
write one HTML page with the Vega JavaScript inlined once, so that it works offline.

Only small tables are read whole (``daily``, ``opportunities``, ``behaviour``, ``network``,
``appeals``); the ``citizens`` and ``refusals`` tables are aggregated with DuckDB, and the
stories read one citizen's rows each (:func:`panopticon.explain.explain`). The ledger is read
only by the audit (:func:`panopticon.audit.audit`, without replay).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from panopticon.errors import UserError
from panopticon.metrics.run import (
    FOUR_FIFTHS,
    MIN_CITIZENS,
    MIN_EVENTS,
    REFERENCE,
    TOO_FEW,
    UNCLEAR,
)
from panopticon.report.template import CSS, PAGE, SCRIPT

#: (id, heading) of every section, in page order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("scenario", "The scenario in plain words"),
    ("headline", "Headline numbers"),
    ("scores", "Scores and tiers over time"),
    ("refusals", "Who gets refused what"),
    ("disparity", "Wrongful sanctions and disparate impact"),
    ("behaviour", "Behaviour change"),
    ("network", "Network change"),
    ("audit", "The audit"),
    ("stories", "Citizens' stories"),
)
#: citizen attributes compared in the disparate-impact tables.
ATTRIBUTES = ("group", "sex", "region", "residency")
STORY_LINES = 40
STORY_SEED = 20260101


# ---------------------------------------------------------------------------------------------
# gathering

@dataclass
class RunData:
    """What the report shows of one run (small frames only)."""

    label: str
    path: Path
    manifest: dict
    scenario: dict
    daily: pd.DataFrame
    opportunities: pd.DataFrame | None = None
    behaviour: pd.DataFrame | None = None
    network: pd.DataFrame | None = None
    appeals: pd.DataFrame | None = None
    disparity: dict[str, pd.DataFrame] | None = None
    wrongly_refused: int | None = None
    audit: dict | None = None
    notes: dict[str, str] = field(default_factory=dict)
    stories: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete"


def _parts(run_dir: Path, table: str) -> list[Path]:
    """The parts the run's manifest lists (the run's files checked first)."""
    from panopticon.store.local import table_parts

    return table_parts(run_dir, table)


def _table(run_dir: Path, name: str) -> pd.DataFrame | None:
    """A small table as pandas, or None when the run has none (a corrupt one raises)."""
    from panopticon.store.local import read_table

    if not _parts(run_dir, name):
        return None
    frame = read_table(run_dir, name).to_pandas()
    for col in frame.columns:  # dictionary columns as plain strings
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    return frame


def _sql(con, query: str, what: Path, **files: list[Path]) -> pd.DataFrame:
    """``query`` with each ``$name`` of ``files`` bound to that list of Parquet files (as
    :func:`panopticon.store.query.parquet_files`; no path is ever part of the SQL text)."""
    import duckdb

    from panopticon.store.query import parquet_files

    try:
        return con.execute(query, {k: parquet_files(v) for k, v in files.items()}).df()
    except duckdb.Error as exc:
        raise UserError(f"{what}: corrupt or unreadable ({str(exc).splitlines()[0]})") from None


def _disparity(run: RunData, con) -> None:
    """Per categorical attribute of the citizens (the four of :data:`ATTRIBUTES` first), one
    frame per attribute from :func:`panopticon.metrics.run.disparate_impact_all` (the one
    implementation): a row per value with ``citizens`` and, per measure m, ``m`` (the rate),
    ``m_low``/``m_high`` (its Wilson interval), ``m_ratio`` (to the reference) with its Katz
    interval, ``m_impact`` (the four-fifths impact ratio), ``m_flag`` and ``m_status``."""
    from panopticon.metrics import run as metrics

    if "citizens.parquet" not in run.manifest.get("files", {}):
        run.notes["disparity"] = "not in this run: the run did not finish (no citizens table)."
        return
    stored = _StoredRun(run.path, run.manifest)
    found = metrics.categorical_attributes(stored)
    wanted = [a for a in ATTRIBUTES if a in found] + [a for a in found if a not in ATTRIBUTES]
    impact = metrics.disparate_impact_all(stored, wanted)
    run.disparity = {attr: _impact_frame(cats) for attr, cats in impact.items()}
    refusals = _parts(run.path, "refusals")
    if refusals:
        run.wrongly_refused = int(_sql(con, "SELECT count(DISTINCT citizen) AS n FROM "
                                            "read_parquet($r) WHERE wrongful",
                                       run.path / "refusals", r=refusals)["n"][0])
    else:
        run.notes["refusals"] = "not in this run: it has no opportunities or refusals table."


@dataclass
class _StoredRun:
    """What the metrics functions read of a stored run: its folder and manifest."""

    path: Path
    manifest: dict


_IMPACT_FIELDS = ("low", "high", "events", "trials", "ratio", "ratio_low", "ratio_high",
                  "impact", "impact_low", "impact_high")


def _impact_frame(cats: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One attribute's disparate impact as a flat frame (None as NaN): ``value``,
    ``citizens`` and per measure m ``m``, ``m_<field>``, ``m_reference``, ``m_flag``,
    ``m_status``."""
    rows = []
    for value, row in cats.items():
        flat: dict[str, Any] = {"value": value, "citizens": int(row["citizens"])}
        for m, r in row.items():
            if not isinstance(r, dict):
                continue
            flat[m] = math.nan if r["rate"] is None else r["rate"]
            for f in _IMPACT_FIELDS:
                flat[f"{m}_{f}"] = math.nan if r[f] is None else float(r[f])
            flat[f"{m}_reference"] = r["reference"]
            flat[f"{m}_flag"] = bool(r["flag"])
            flat[f"{m}_status"] = r["status"]
        rows.append(flat)
    return pd.DataFrame(rows)


def _stories(run: RunData, con) -> None:
    from panopticon.explain import explain

    if not run.complete:
        run.notes["stories"] = (f"not in this run: the run is {run.manifest.get('status')!r}; "
                                "stories need a finished run.")
        return
    citizens = run.path / "citizens.parquet"
    picks: list[tuple[str, int]] = []
    worst = _sql(con, "SELECT citizen, false_points FROM read_parquet($c) "
                      "WHERE false_points <> 0 ORDER BY abs(false_points) DESC, citizen LIMIT 1",
                 citizens, c=[citizens])
    if len(worst):
        picks.append(("the citizen with the most points from false observations",
                      int(worst["citizen"][0])))
    refusals = _parts(run.path, "refusals")
    if refusals:
        wrong = _sql(con, "SELECT min(citizen) AS c FROM read_parquet($r) WHERE wrongful",
                     run.path / "refusals", r=refusals)["c"][0]
        if wrong is not None and not pd.isna(wrong):
            picks.append(("a citizen wrongly refused", int(wrong)))
    n = int(run.manifest["citizens"])
    rng = np.random.default_rng(STORY_SEED)
    chosen = {c for _, c in picks}
    for _ in range(10):
        c = int(rng.integers(n))
        if c not in chosen:
            picks.append(("a citizen picked at random", c))
            break
    for why, citizen in picks:
        lines = explain(run.path, citizen).text_lines()
        if len(lines) > STORY_LINES:
            more = len(lines) - STORY_LINES
            lines = [*lines[:STORY_LINES - 1], f"... {more} more lines "
                     f"(panopticon explain {run.manifest.get('run_id', run.path)} -c {citizen})",
                     lines[-1]]
        run.stories.append((f"{why}: citizen {citizen}", lines))


def _audit(run: RunData) -> None:
    from panopticon.audit import QUICK_ABOVE, audit, quick_audit

    if not run.complete or not (run.path / "citizens.parquet").exists():
        run.notes["audit"] = (f"not in this run: the run is {run.manifest.get('status')!r}; "
                              "the audit needs a finished run.")
        return
    chain = _table(run.path, "ledger_chain")
    big = chain is not None and int(chain["rows"].sum()) > QUICK_ABOVE
    run.audit = quick_audit(run.path) if big else audit(run.path)


def _load(path: Path, label: str, con) -> RunData:
    from panopticon.store.local import open_checked, read_scenario

    manifest = open_checked(path)
    scenario = read_scenario(path, manifest).model_dump(mode="json")
    daily = _table(path, "daily")
    if daily is None or daily.empty:
        raise UserError(f"{path}: no daily table; the run has no days to report")
    run = RunData(label=label, path=path, manifest=manifest, scenario=scenario, daily=daily)
    run.opportunities = _table(path, "opportunities")
    run.behaviour = _table(path, "behaviour")
    run.network = _table(path, "network")
    run.appeals = _table(path, "appeals")
    _disparity(run, con)
    _audit(run)
    _stories(run, con)
    return run


def collect(runs: list[str | Path], store: str | Path = "runs") -> list[RunData]:
    """Each run (a folder or a run id under ``store``) with what the report shows of it.

    Raises:
        UserError: an unknown run, or a missing or corrupt file of one (named).
    """
    import duckdb

    from panopticon.explain import locate

    if not runs:
        raise UserError("give at least one run (a run folder or a run id)")
    paths = [locate(r, store) for r in runs]
    labels: list[str] = []
    for p in paths:
        label = str(read_id(p))
        while label in labels:
            label += "'"
        labels.append(label)
    con = duckdb.connect()
    return [_load(p, label, con) for p, label in zip(paths, labels, strict=True)]


def read_id(path: Path) -> str:
    from panopticon.store.local import read_manifest

    return read_manifest(path).get("run_id") or path.name


# ---------------------------------------------------------------------------------------------
# numbers

def _tiers(daily: pd.DataFrame) -> list[str]:
    return [c.removeprefix("share_") for c in daily.columns if c.startswith("share_")]


def _headline(run: RunData) -> list[tuple[str, str]]:
    d = run.daily
    last = d.iloc[-1]

    def total(col: str) -> str:
        return f"{int(d[col].sum()):,}" if col in d else "n/a"

    def final(col: str) -> str:
        return f"{int(last[col]):,}" if col in d else "n/a"

    rows = [("final mean score", f"{last['mean_score']:,.1f}"),
            ("final median score", f"{last['median_score']:,.1f}")]
    rows += [(f"share in tier {t}", f"{last['share_' + t]:.1%}") for t in _tiers(d)]
    rows += [("false observations (all days)", total("false_observations")),
             ("citizens ever falsely named", final("citizens_ever_false")),
             ("refusals (all days)", total("refused")),
             ("wrongful refusals (all days)", total("wrongful_refusals")),
             ("citizens ever wrongly refused",
              f"{run.wrongly_refused:,}" if run.wrongly_refused is not None else "n/a"),
             ("citizens wrongly sanctioned on the last day", final("citizens_wrongly_sanctioned"))]
    return rows


#: (measure, column heading) of the disparity tables, harms then favourable outcomes.
_MEASURES = (("refused", "ever refused"), ("wrongly_refused", "wrongly refused"),
             ("sanctioned", "refused under a sanction"), ("falsely_named", "falsely named"),
             ("top_tier", "in the top tier"), ("granted", "attempts granted"),
             ("perks_granted", "perk attempts granted"))


def _pct(x: float) -> str:
    return f"{x:.2%}" if x < 0.1 else f"{x:.1%}"


def _impact_cell(x: Any, m: str) -> str:
    """One measure of one value: the rate and its 95% interval, then the ratio to the
    reference with its interval and the four-fifths verdict (HTML, escaped)."""
    rate = getattr(x, m)
    if rate is None or math.isnan(rate):
        return "-"
    low, high = getattr(x, f"{m}_low"), getattr(x, f"{m}_high")
    status = getattr(x, f"{m}_status")
    ratio, r_low, r_high = (getattr(x, f"{m}_ratio{s}") for s in ("", "_low", "_high"))
    if status in (REFERENCE, TOO_FEW):
        second = status
    elif not math.isnan(ratio):
        second = f"{ratio:.2f}× ({r_low:.2f}–{r_high:.2f})"
    elif not math.isnan(r_low):
        second = f"undefined (reference 0), ≥ {r_low:.2f}×"
    else:
        second = "ratio undefined"
    if getattr(x, f"{m}_flag"):
        second = "⚑ " + second
    elif status == UNCLEAR:
        second = "? " + second
    return (f"{_e(_pct(rate))} <small>({_e(_pct(low))}–{_e(_pct(high))})</small><br>"
            f"<small>{_e(second)}</small>")


def _no_events(frame: pd.DataFrame) -> list[str]:
    """The headings of the measures with no event at all in ``frame``."""
    return [h for m, h in _MEASURES if m in frame.columns and not frame[f"{m}_events"].sum()]


def _impact_table(attr: str, frame: pd.DataFrame) -> str:
    """One compact table per attribute: value, citizens, one cell per measure with events
    (rate, interval, ratio, verdict), and the measures flagged."""
    none = _no_events(frame)
    measures = [(m, h) for m, h in _MEASURES if m in frame.columns and h not in none]
    head = "".join(f"<th>{_e(h)}</th>" for h in [attr, "citizens", *(h for _, h in measures),
                                                  "four-fifths rule fails for"])
    body = []
    for x in frame.itertuples(index=False):
        flagged = ", ".join(h for m, h in measures if getattr(x, f"{m}_flag")) or "-"
        cells = [_e(x.value), f"{x.citizens:,}", *(_impact_cell(x, m) for m, _ in measures),
                 _e(flagged)]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'<table class="numbers"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _harms_long(frame: pd.DataFrame) -> pd.DataFrame:
    """The harm rates of one attribute's frame, one row per value and harm (for the chart)."""
    from panopticon.metrics.run import HARMS

    parts = [pd.DataFrame({"value": frame["value"], "citizens": frame["citizens"], "harm": h,
                           "rate": frame[m], "low": frame[f"{m}_low"],
                           "high": frame[f"{m}_high"]})
             for m, h in _MEASURES if m in HARMS and m in frame.columns]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _behaviour_change(frame: pd.DataFrame) -> pd.DataFrame:
    """Per event on its last survey day: expected / baseline - 1, summed over groups."""
    last = frame[frame["day"] == frame.groupby("event")["day"].transform("max")]
    g = last.groupby("event", as_index=False)[["expected", "baseline"]].sum()
    g = g[g["baseline"] > 0]
    g["change"] = g["expected"] / g["baseline"] - 1
    g["day"] = int(last["day"].max()) if len(last) else 0
    return g[["event", "day", "change"]]


# ---------------------------------------------------------------------------------------------
# charts

def _facet(chart, runs: list[RunData], width: int = 420):
    if len(runs) > 1:
        return chart.properties(width=max(220, width // len(runs))).facet(
            column=alt().Column("run:N", title=None))
    return chart.properties(width=width)


def alt():
    import altair

    altair.data_transformers.disable_max_rows()
    return altair


def _with_run(frames: list[tuple[RunData, pd.DataFrame]]) -> pd.DataFrame:
    parts = [f.assign(run=r.label) for r, f in frames if f is not None and len(f)]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).replace([np.inf, -np.inf], np.nan)


def charts(runs: list[RunData]) -> dict[str, tuple[str, dict | None]]:
    """Every chart: name -> (section id, Vega-Lite spec, or None where no run has the data)."""
    a = alt()
    multi = len(runs) > 1
    specs: dict[str, tuple[str, Any]] = {}

    scores = _with_run([(r, r.daily[["day", "mean_score", "median_score"]].melt(
        "day", var_name="measure", value_name="score")) for r in runs])
    scores["measure"] = scores["measure"].str.removesuffix("_score")
    line = a.Chart(scores).mark_line().encode(
        x=a.X("day:Q", title="day"), y=a.Y("score:Q", title="score", scale=a.Scale(zero=False)),
        color=a.Color("run:N" if multi else "measure:N"),
        tooltip=["run:N", "day:Q", "measure:N", a.Tooltip("score:Q", format=",.1f")])
    if multi:
        line = line.encode(strokeDash="measure:N")
    specs["scores"] = ("scores", line.properties(title="Mean and median score", width=560))

    tiers = _with_run([(r, r.daily[["day", *(f"share_{t}" for t in _tiers(r.daily))]].melt(
        "day", var_name="tier", value_name="share")) for r in runs])
    tiers["tier"] = tiers["tier"].str.removeprefix("share_")
    order = list(dict.fromkeys(t for r in runs for t in _tiers(r.daily)))
    area = a.Chart(tiers).mark_area().encode(
        x="day:Q", y=a.Y("share:Q", stack="normalize", axis=a.Axis(format="%"), title="share"),
        color=a.Color("tier:N", sort=order), order=a.Order("tier_order:Q"),
        tooltip=["run:N", "day:Q", "tier:N", a.Tooltip("share:Q", format=".1%")],
    ).transform_calculate(tier_order=f"indexof({json.dumps(order)}, datum.tier)")
    specs["tiers"] = ("scores", _facet(area.properties(title="Tier shares"), runs, 560))

    opp = _with_run([(r, None if r.opportunities is None else r.opportunities.groupby(
        ["opportunity", "group"], as_index=False)[["attempts", "refused", "wrongful"]].sum())
        for r in runs])
    if len(opp):
        bars = a.Chart(opp).mark_bar().encode(
            y=a.Y("opportunity:N", title=None), x=a.X("refused:Q", title="refusals (all days)"),
            color="group:N", yOffset="group:N",
            tooltip=["run:N", "opportunity:N", "group:N", "attempts:Q", "refused:Q",
                     "wrongful:Q"])
        specs["refusals"] = ("refusals", _facet(bars.properties(title="Refusals by opportunity "
                                                                      "and group"), runs))
    else:
        specs["refusals"] = ("refusals", None)

    rates = _with_run([(r, None if not r.disparity or "group" not in r.disparity
                        else _harms_long(r.disparity["group"])) for r in runs])
    if len(rates):
        base = a.Chart(rates).encode(
            y=a.Y("harm:N", title=None, sort=[h for _, h in _MEASURES]),
            color=a.Color("value:N", title="group"), yOffset="value:N",
            tooltip=["run:N", "value:N", "harm:N", a.Tooltip("rate:Q", format=".2%"),
                     a.Tooltip("low:Q", format=".2%", title="95% CI from"),
                     a.Tooltip("high:Q", format=".2%", title="95% CI to")])
        bars = base.mark_bar().encode(x=a.X("rate:Q", axis=a.Axis(format="%"),
                                            title="share of the group's citizens (95% CI)"))
        whiskers = base.mark_rule(color="black").encode(x="low:Q", x2="high:Q")
        specs["disparity"] = ("disparity", _facet(a.layer(bars, whiskers).properties(
            title="Harms by group"), runs))
    else:
        specs["disparity"] = ("disparity", None)

    change = _with_run([(r, None if r.behaviour is None else _behaviour_change(r.behaviour))
                        for r in runs])
    if len(change):
        bars = a.Chart(change).mark_bar().encode(
            y=a.Y("event:N", title=None),
            x=a.X("change:Q", axis=a.Axis(format="%"), title="expected / baseline - 1"),
            color=a.Color("run:N" if multi else "event:N", legend=a.Legend() if multi else None),
            tooltip=["run:N", "event:N", "day:Q", a.Tooltip("change:Q", format="+.1%")])
        if multi:
            bars = bars.encode(yOffset="run:N")
        specs["behaviour"] = ("behaviour", bars.properties(
            title="Behaviour change on the last survey day", width=480))
    else:
        specs["behaviour"] = ("behaviour", None)

    net = _with_run([(r, r.network) for r in runs])
    for name, col, title in (("assortativity", "tier_assortativity", "Tier assortativity"),
                             ("components", "components", "Connected components")):
        if len(net) and col in net:
            frame = net[["run", "day", "layer", col]].dropna()
            chart = a.Chart(frame).mark_line(point=True).encode(
                x="day:Q", y=a.Y(f"{col}:Q", title=title.lower()), color="layer:N",
                tooltip=["run:N", "day:Q", "layer:N", a.Tooltip(f"{col}:Q", format=",.3f")])
            specs[name] = ("network", _facet(chart.properties(title=title), runs))
        else:
            specs[name] = ("network", None)
    return {k: (sec, None if c is None else _spec(c)) for k, (sec, c) in specs.items()}


def _spec(chart) -> dict:
    spec = chart.to_dict()
    spec.pop("$schema", None)  # a URL nobody fetches; the page names no address at all
    json.dumps(spec, allow_nan=False)  # fails loudly on NaN rather than in the browser
    return spec


# ---------------------------------------------------------------------------------------------
# the page

@lru_cache(maxsize=1)
def javascript() -> str:
    """Vega, Vega-Lite and Vega-Embed in one script (no imports, no addresses fetched)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=vl_version())
    if "</script" in bundle.lower():  # would end the inline <script> early
        raise UserError("this vl-convert-python's JavaScript bundle cannot be inlined")
    return bundle


def vl_version() -> str | None:
    import altair
    import vl_convert

    major_minor = ".".join(altair.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return major_minor if major_minor in vl_convert.get_vegalite_versions() else None


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table_html(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _side_by_side(runs: list[RunData], part) -> str:
    cells = "".join(f'<div class="run"><h3>{_e(r.label)}</h3>{part(r)}</div>' for r in runs)
    return f'<div class="runs">{cells}</div>'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _scenario_text(run: RunData) -> str:
    s, m = run.scenario, run.manifest
    policy = s.get("policy", {})
    sources = [k for k, v in (s.get("sensors") or {}).items() if v not in (None, False, {})]
    sanctions = []
    for x in policy.get("sanctions") or []:
        parts = []
        if x.get("deny"):
            parts.append("denies " + ", ".join(x["deny"]).replace("_", " "))
        if x.get("grant"):
            parts.append("grants " + ", ".join(x["grant"]).replace("_", " "))
        sanctions.append(f"when {x.get('when', 'always')}: {' and '.join(parts) or 'nothing'}")
    tiers = policy.get("tiers") or []
    tier_names = [t.get("name", "?") if isinstance(t, dict) else str(t) for t in tiers]
    fiction = " (fiction)" if policy.get("fiction") else ""
    paragraphs = [
        f"<p><b>{_e(s.get('name', m.get('scenario')))}</b>: "
        f"{_e(' '.join(str(s.get('description', '')).split()))}</p>",
        f"<p>{int(m['citizens']):,} citizens over {int(m.get('days_completed', m['days']))} of "
        f"{int(m['days'])} days, seed {_e(m['seed'])}; run status {_e(m.get('status'))}.</p>",
        f"<p>Sources of observations: {_e(', '.join(sources) or 'none')}.</p>",
        f"<p>Policy <b>{_e(policy.get('name', '?'))}</b>, family "
        f"{_e(policy.get('family', '?'))}{fiction}: {len(policy.get('rules') or [])} rules"
        + (f", tiers {_e(', '.join(tier_names))}" if tier_names else "") + ".</p>",
        "<p>Sanctions: " + (_e("; ".join(sanctions)) if sanctions else "none") + ".</p>",
    ]
    return "".join(paragraphs)


def _chart_div(name: str, spec: dict | None, missing: str) -> str:
    if spec is None:
        return _note(missing)
    return f'<div class="chart" id="chart-{name}" data-chart="{name}"></div>'


def _section_body(sid: str, runs: list[RunData], specs: dict) -> str:
    def chart(name: str, missing: str) -> str:
        return _chart_div(name, specs[name][1], missing)

    if sid == "scenario":
        return _side_by_side(runs, _scenario_text)
    if sid == "headline":
        heads = [dict(_headline(r)) for r in runs]
        rows = [[k, *(h.get(k, "n/a") for h in heads)] for k in heads[0]]
        return _table_html(["", *(r.label for r in runs)], rows, "numbers")
    if sid == "scores":
        return chart("scores", "") + chart("tiers", "")
    if sid == "refusals":
        def table(r: RunData) -> str:
            if r.opportunities is None:
                return _note("not in this run: it has no opportunities table.")
            g = r.opportunities.groupby(["opportunity", "group"], as_index=False)[
                ["attempts", "refused", "wrongful"]].sum()
            return _table_html(["opportunity", "group", "attempts", "refused", "share refused",
                                "wrongful"],
                               [[x.opportunity, x.group, f"{x.attempts:,}", f"{x.refused:,}",
                                 f"{x.refused / x.attempts:.1%}" if x.attempts else "-",
                                 f"{x.wrongful:,}"] for x in g.itertuples()])
        return chart("refusals", "not in this run: no run has an opportunities table.") + \
            _side_by_side(runs, table)
    if sid == "disparity":
        def tables(r: RunData) -> str:
            if not r.disparity:
                return _note(r.notes.get("disparity", "not in this run."))
            out, single = [], []
            for attr, frame in r.disparity.items():
                if len(frame) < 2:
                    single.append(f"{attr} ({frame['value'].iloc[0]})" if len(frame) else attr)
                    continue
                out.append(f"<h4>by {_e(attr)}</h4>" + _impact_table(attr, frame))
            if single:
                out.append(_note("Not compared, one value only: " + ", ".join(single) + "."))
            none = dict.fromkeys(h for f in r.disparity.values() for h in _no_events(f))
            if none:
                out.append(_note("Left out, no events in this run: " + ", ".join(none) + "."))
            return "".join(out)
        return (chart("disparity", "not in this run: no run has a citizens table.")
                + '<p class="explain">For each attribute of the citizens, the share of each '
                  'value\'s citizens ever refused an opportunity, ever wrongly refused '
                  '(refused where their true record would not have been), ever refused '
                  'because a sanction blocked it, and ever falsely named (harms), and the '
                  'share in the top tier at the end (favourable; by group also the share of '
                  'attempts granted, all and those needing a perk), each with its 95% Wilson '
                  'interval. Below it: the ratio to the reference value (the least harmed, or '
                  'most favoured, with enough citizens) and its 95% Katz interval. The '
                  'four-fifths rule (⚑) flags a harm more than 1.25× the reference\'s, or a '
                  f'favourable share below {FOUR_FIFTHS}× the reference\'s, only when the '
                  'whole interval is past that threshold too (? marks a ratio past it whose '
                  'interval is not). Refusals count among citizens old enough to try an '
                  f'opportunity. A value with fewer than {MIN_CITIZENS} citizens, or a '
                  f'comparison with fewer than {MIN_EVENTS} events, is too few to judge. A '
                  'flag is a reason to look closer, not a verdict.</p>'
                + _side_by_side(runs, tables))
    if sid == "behaviour":
        missing = [r.label for r in runs if r.behaviour is None]
        return ('<p class="explain">Expected events over the baseline (what citizens would '
                'have done without the system), minus one, on the last survey day: below zero '
                'the system deters the act, above zero it encourages it.</p>'
                + chart("behaviour", "not in this run: no run has a behaviour table.")
                + "".join(_note(f"{m}: not in this run (no behaviour table).") for m in missing))
    if sid == "network":
        missing = [r.label for r in runs if r.network is None]
        return (chart("assortativity", "not in this run: no run has a network table.")
                + chart("components", "")
                + "".join(_note(f"{m}: not in this run (no network table).") for m in missing))
    if sid == "audit":
        def audit(r: RunData) -> str:
            if r.audit is None:
                return _note(r.notes.get("audit", "not in this run."))
            a = r.audit
            full = "not checked here: run `panopticon audit` (a big run gets the quick audit)"
            rows = [["hash chain", ("intact" if a["chain_intact"] else "BROKEN")
                     + (" (row counts and head only)" if a.get("quick") else "")],
                    ["days checked", a["days_checked"]],
                    ["manual adjustments", len(a["manual"])],
                    ["officials making them",
                     ", ".join(sorted({m["official"] for m in a["manual"]})[:10]) or "-"],
                    ["scores the ledger does not explain",
                     full if a["unexplained"] is None else len(a["unexplained"])],
                    ["rule entries off their rule's points",
                     full if a["deviations"] is None else len(a["deviations"])]]
            for attack, f in a["insider_actions_found"].items():
                rows.append([f"insider {attack}: actions found",
                             f"{f['caught']} of {f['actions']} ({f['share']:.0%})"])
            if not a["insider_actions_found"]:
                rows.append(["insider actions", "none in this run"])
            if r.appeals is None or r.appeals.empty:
                rows.append(["appeals", "not in this run"])
            else:
                counts = r.appeals["outcome"].astype(str).value_counts()
                rows.append(["appeals", f"{len(r.appeals):,}: " + ", ".join(
                    f"{k} {v:,}" for k, v in counts.items())])
            return _table_html(["check", "result"], rows)
        return _side_by_side(runs, audit)
    if sid == "stories":
        def stories(r: RunData) -> str:
            if not r.stories:
                return _note(r.notes.get("stories", "not in this run: no citizen to tell of."))
            return "".join(f'<div class="story"><h4>{_e(t)}</h4><pre>{_e(chr(10).join(lines))}'
                           "</pre></div>" for t, lines in r.stories)
        return _side_by_side(runs, stories)
    raise AssertionError(sid)  # pragma: no cover


def build_report(runs: list[str | Path] | list[RunData], store: str | Path = "runs") -> str:
    """The whole report page as one HTML string (the Vega JavaScript inlined once)."""
    data = runs if runs and isinstance(runs[0], RunData) else collect(runs, store)
    specs = charts(data)
    title = "panopticon report: " + ", ".join(r.label for r in data)
    nav = "".join(f'<a href="#{sid}">{_e(h)}</a>' for sid, h in SECTIONS)
    body = "".join(f'<section id="{sid}"><h2>{_e(h)}</h2>{_section_body(sid, data, specs)}'
                   "</section>" for sid, h in SECTIONS)
    embedded = {f"chart-{k}": s for k, (_, s) in specs.items() if s is not None}
    payload = json.dumps(embedded, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    return (PAGE.replace("{{title}}", _e(title)).replace("{{css}}", CSS).replace("{{nav}}", nav)
            .replace("{{body}}", body)
            .replace("{{script}}", "<script>" + javascript() + "</script>"
                     + "<script>" + SCRIPT.replace("{{specs}}", payload) + "</script>"))


def write_report(runs: list[str | Path], out: str | Path, store: str | Path = "runs",
                 charts_dir: str | Path | None = None) -> Path:
    """Write the report to ``out`` (and, with ``charts_dir``, every chart as PNG and SVG)."""
    data = collect(runs, store)
    page = build_report(data)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    if charts_dir is not None:
        write_charts(data, charts_dir)
    return out


def write_charts(runs: list[str | Path] | list[RunData], directory: str | Path,
                 store: str | Path = "runs") -> list[Path]:
    """Each chart as ``NAME.png`` and ``NAME.svg`` in ``directory``; the paths written."""
    import vl_convert

    data = runs if runs and isinstance(runs[0], RunData) else collect(runs, store)
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{directory}: cannot make the charts folder ({exc.strerror})") from None
    version = vl_version()
    written = []
    for name, (_, spec) in charts(data).items():
        if spec is None:
            continue
        kwargs = {"vl_version": version} if version else {}
        png, svg = directory / f"{name}.png", directory / f"{name}.svg"
        png.write_bytes(vl_convert.vegalite_to_png(spec, scale=2, **kwargs))
        svg.write_text(vl_convert.vegalite_to_svg(spec, **kwargs), encoding="utf-8")
        written += [png, svg]
    return written
