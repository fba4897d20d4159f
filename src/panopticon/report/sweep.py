"""The page of a stored sweep: each metric against the swept setting, the mean over a grid
point's replicates as a line with its 95% confidence interval as a band and every replicate
as a dot; at the top what was swept, with which seeds, and which runs are complete.

:func:`sweep_page` is pure (a checked sweep dict, as :func:`panopticon.sweeps.load_sweep`
returns it, and each run's numbers in; one HTML string out); :func:`write_sweep_report` does
the reading and writing. The page is offline like the run report: the Vega JavaScript is
inlined once (:func:`panopticon.report.build.javascript`).
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

from panopticon.errors import UserError

EXPLAIN = (
    "Each chart shows one metric against the swept setting: the line is the mean over a grid "
    "point's replicates, the band its 95% confidence interval (Student's t; on the logit scale "
    "for a share and the log scale for a count, so that it stays within the metric's range), "
    "the dots the replicates themselves. Replicate r of every grid point runs with the same "
    "seed (common random numbers), so differences between points are not drowned by "
    "seed-to-seed noise. A point with one replicate has no band. <i>Whole run</i>: counted or "
    "judged over every day; <i>final state</i>: the standing at the end of the last day (or "
    "the last survey day).")

EXTRA_CSS = """
.charts { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: flex-start; }
.charts .chart { flex: 0 1 520px; min-width: 0; }
.table-wrap { max-width: 100%; overflow-x: auto; }
table.points td { white-space: nowrap; overflow-wrap: normal; }
.index { columns: 3 16rem; font-size: .85rem; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _label(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def _numeric(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _is_share(name: str) -> bool:
    return name.startswith(("share_", "mobility_", "fragmentation_")) or \
        name.endswith(("_share", "_rate"))


def axes(settings: dict[str, list]) -> tuple[str, list[str]]:
    """The swept key on the x axis (the first with several numeric values, else the first with
    several values, else the first) and the others (one line per combination of theirs)."""
    keys = list(settings)
    several = [k for k in keys if len(settings[k]) > 1]
    x = next((k for k in several if _numeric(settings[k])), several[0] if several else keys[0])
    return x, [k for k in keys if k != x]


def _series(point: dict, others: list[str]) -> str:
    if len(others) == 1:
        return _label(point[others[0]])
    return ", ".join(f"{k}={_label(point[k])}" for k in others) or "all"


def _run_name(record: dict) -> str:
    return Path(record["run"]).name if record.get("run") else "(no folder)"


def clipped(sweep: dict) -> list[str]:
    """Where a point's interval goes past its metric's range (a sweep made before intervals
    were kept within it): one line each. The chart shows those clipped."""
    from panopticon.metrics.run import summary_bounds

    out = []
    for p in sweep["points"]:
        for name, m in p["metrics"].items():
            lower, upper = summary_bounds(name)
            low, high = _finite(m["ci_low"]), _finite(m["ci_high"])
            if (lower is not None and low is not None and low < lower) or \
                    (upper is not None and high is not None and high > upper):
                where = ", ".join(f"{k}={_label(v)}" for k, v in p["point"].items())
                out.append(f"{name} at {where}: [{m['ci_low']:.4g}, {m['ci_high']:.4g}] goes "
                           f"past the metric's range [{lower}, {upper}]")
    return out


def chart_specs(sweep: dict, per_run: dict[str, dict[str, float]] | None = None,
                metrics: list[str] | None = None) -> dict[str, dict]:
    """One Vega-Lite spec per metric (default: every metric of the sweep), by metric name.

    Each is a layer of the band (``mark: area`` from ``low`` to ``high``: the point's
    ``ci_low`` and ``ci_high``, clipped to the metric's range), the mean (a line with points)
    and, from ``per_run`` (run folder name -> its summary), each replicate as a dot."""
    import altair as alt

    from panopticon.metrics.describe import describe
    from panopticon.metrics.run import summary_bounds
    from panopticon.report.build import _spec
    from panopticon.sweeps import COMPLETE, sweep_metrics

    alt.data_transformers.disable_max_rows()
    settings = sweep["settings"]
    x_key, others = axes(settings)
    numeric = _numeric(settings[x_key])
    order = [_label(v) for v in settings[x_key]]
    per_run = per_run or {}
    names = metrics if metrics is not None else sweep_metrics(sweep)
    specs = {}
    for name in names:
        lower, upper = summary_bounds(name)

        def clip(v: float | None, lower=lower, upper=upper) -> float | None:
            if v is None:
                return None
            v = v if lower is None else max(v, lower)
            return v if upper is None else min(v, upper)

        rows = []
        for p in sweep["points"]:
            m = p["metrics"].get(name)
            if m is None:
                continue
            x = p["point"][x_key]
            rows.append({"x": x if numeric else _label(x), "series": _series(p["point"], others),
                         "mean": _finite(m["mean"]), "low": clip(_finite(m["ci_low"])),
                         "high": clip(_finite(m["ci_high"])), "n": m["n"]})
        if not rows:
            continue
        dots = []
        for r in sweep["runs"]:
            value = per_run.get(_run_name(r), {}).get(name)
            if r["status"] != COMPLETE or value is None or not math.isfinite(value):
                continue
            x = r["point"][x_key]
            dots.append({"x": x if numeric else _label(x), "series": _series(r["point"], others),
                         "value": float(value), "replicate": r["replicate"],
                         "run": _run_name(r)})
        fmt = ".1%" if _is_share(name) else ",.4~g"
        x_field = "x:Q" if numeric else "x:O"
        x_enc = alt.X("x:Q", title=x_key, scale=alt.Scale(zero=False, nice=False,
                                                          padding=12)) if numeric \
            else alt.X("x:O", title=x_key, sort=order)
        axis = alt.Axis(format="%") if _is_share(name) else alt.Axis()
        legend_title = others[0] if len(others) == 1 else "settings"
        color = alt.Color("series:N", title=legend_title, legend=alt.Legend() if others
                          else None, sort=list(dict.fromkeys(x["series"] for x in rows)))
        base = alt.Chart(alt.Data(values=rows)).encode(x=x_enc, color=color)
        band = base.mark_area(opacity=0.2).encode(
            y=alt.Y("low:Q", title=name, axis=axis, scale=alt.Scale(zero=False)), y2="high:Q")
        tooltip = [alt.Tooltip(x_field, title=x_key), alt.Tooltip("mean:Q", format=fmt),
                   alt.Tooltip("low:Q", format=fmt, title="95% CI from"),
                   alt.Tooltip("high:Q", format=fmt, title="95% CI to"),
                   alt.Tooltip("n:Q", title="replicates")]
        if others:
            tooltip.insert(1, alt.Tooltip("series:N", title=legend_title))
        line = base.mark_line(point=True).encode(y=alt.Y("mean:Q", title=name), tooltip=tooltip)
        layers = [band, line]
        if dots:
            layers.append(alt.Chart(alt.Data(values=dots)).mark_circle(
                size=28, opacity=0.55).encode(
                x=x_enc, y=alt.Y("value:Q", title=name), color=color,
                tooltip=[alt.Tooltip(x_field, title=x_key), alt.Tooltip("value:Q", format=fmt),
                         "replicate:Q", "run:N"]))
        text, scope = describe(name)
        subtitle = f"{scope} · {name}" if scope else name
        chart = alt.layer(*layers).properties(
            title=alt.TitleParams(text=text, subtitle=subtitle, anchor="start"),
            width=420, height=220)
        specs[name] = _spec(chart)
    return specs


def _mismatches(sweep: dict, per_run: dict[str, dict[str, float]]) -> list[str]:
    """Where a stored run's numbers differ from what the sweep file recorded for it."""
    out = []
    for r in sweep["runs"]:
        stored, recorded = per_run.get(_run_name(r)), r.get("summary")
        if stored is None or not isinstance(recorded, dict):
            continue
        for name, v in recorded.items():
            if name in stored and isinstance(v, int | float) and not math.isclose(
                    stored[name], float(v), rel_tol=1e-9, abs_tol=1e-12):
                out.append(f"{_run_name(r)}: {name} is {stored[name]:.6g} in the run, "
                           f"{float(v):.6g} in the sweep file")
    return out


def _table(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="table-wrap"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>')


def _facts(sweep: dict) -> str:
    from panopticon.sweeps import COMPLETE

    settings, runs = sweep["settings"], sweep["runs"]
    manifests = [r["manifest"] for r in runs if r.get("manifest")]

    def distinct(key: str) -> str:
        values = sorted({m[key] for m in manifests if m.get(key) is not None})
        return ", ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in values) or "?"

    size = math.prod(len(v) for v in settings.values())
    complete = [r for r in runs if r["status"] == COMPLETE]
    parts = [
        f"<p>Scenario <b>{_e(sweep['scenario'])}</b>; sweep report "
        f"<code>{_e(sweep.get('id', ''))}</code>.</p>",
        _table(["swept setting", "values"],
               [[k, ", ".join(_label(v) for v in vs)] for k, vs in settings.items()]),
        f"<p>Grid: {size} point{'s' * (size != 1)} × {sweep['replicates']} "
        f"replicate{'s' * (sweep['replicates'] != 1)} = {size * sweep['replicates']} runs; "
        f"seeds {_e(distinct('seed'))} (replicate r of every point uses the same seed); "
        f"{_e(distinct('citizens'))} citizens, {_e(distinct('days'))} days.</p>",
        f"<p><b>{len(complete)} of {len(runs)} runs complete.</b></p>",
    ]
    missing = [r for r in runs if r["status"] != COMPLETE]
    if missing:
        where = [", ".join(f"{k}={_label(v)}" for k, v in r["point"].items())
                 + f", replicate {r['replicate']}" for r in missing]
        parts.append('<p class="note">Not complete (left out of the charts):</p><ul>' + "".join(
            f"<li><code>{_e(_run_name(r))}</code>: {_e(r['status'])} ({_e(w)})</li>"
            for r, w in zip(missing, where, strict=True)) + "</ul>")
    keys = list(settings)
    rows = []
    for p in sweep["points"]:
        mine = [r for r in runs if r["point"] == p["point"]]
        done = [r for r in mine if r["status"] == COMPLETE]
        rows.append([*(_label(p["point"][k]) for k in keys), f"{len(done)} of {len(mine)}",
                     " ".join(_run_name(r) for r in mine)])
    parts.append(_table([*keys, "runs complete", "run folders"], rows, "numbers points"))
    return "".join(parts)


def sweep_page(sweep: dict, per_run: dict[str, dict[str, float]] | None = None) -> str:
    """The whole page as one HTML string.

    Args:
        sweep: a checked sweep (:func:`panopticon.sweeps.load_sweep`).
        per_run: run folder name -> that run's :func:`panopticon.metrics.run.summary`, for the
            replicate dots (and a note where they differ from the sweep file's numbers).
    """
    from panopticon.metrics.describe import describe
    from panopticon.report.build import javascript
    from panopticon.report.template import CSS, PAGE, SCRIPT

    per_run = per_run or {}
    specs = chart_specs(sweep, per_run)
    ids = {name: "chart-" + re.sub(r"[^A-Za-z0-9_-]", "-", name) for name in specs}
    notes = [f"Interval shown clipped: {x}." for x in clipped(sweep)]
    differ = _mismatches(sweep, per_run)
    if differ:
        notes.append("The stored runs' numbers differ from the sweep file's (the dots show the "
                     "runs', the lines and bands the file's): " + "; ".join(differ[:10])
                     + (f"; and {len(differ) - 10} more" if len(differ) > 10 else "") + ".")
    index = "".join(f'<li><a href="#{ids[n]}">{_e(describe(n)[0])}</a> '
                    f"<small>({_e(describe(n)[1] or n)})</small></li>" for n in specs)
    charts = "".join(f'<div class="chart" id="{ids[n]}" data-chart="{_e(n)}" '
                     f'data-metric="{_e(n)}"></div>' for n in specs)
    body = (f'<section id="sweep"><h2>The sweep</h2>{_facts(sweep)}'
            + "".join(f'<p class="note">{_e(n)}</p>' for n in notes) + "</section>"
            + f'<section id="metrics"><h2>Metrics against the settings</h2>'
            f'<p class="explain">{EXPLAIN}</p><ul class="index">{index}</ul>'
            f'<div class="charts">{charts}</div></section>')
    nav = '<a href="#sweep">The sweep</a><a href="#metrics">Metrics against the settings</a>'
    title = f"panopticon sweep: {sweep['scenario']}"
    details = f"<p>sweep report {_e(sweep.get('file', sweep.get('id', '')))}</p>" + "".join(
        f"<p>{_e(_run_name(r))}: {_e(r['status'])}</p>" for r in sweep["runs"])
    embedded = {ids[n]: s for n, s in specs.items()}
    payload = json.dumps(embedded, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    page = (PAGE.replace("{{title}}", _e(title)).replace("{{css}}", CSS + EXTRA_CSS)
            .replace("{{nav}}", nav).replace("{{details}}", details))
    # a placeholder the run report's page has and this one does not fill stays out of sight
    page = re.sub(r"\{\{(?!body\}\}|script\}\})[a-z_]+\}\}", "", page)
    return page.replace("{{body}}", body).replace(
        "{{script}}", "<script>" + javascript() + "</script>"
        + "<script>" + SCRIPT.replace("{{specs}}", payload) + "</script>")


def run_numbers(sweep: dict) -> dict[str, dict[str, float]]:
    """Each complete run's :func:`panopticon.metrics.run.summary`, read from the store (the
    runs were checked by :func:`panopticon.sweeps.load_sweep`), by run folder name."""
    from panopticon.api import RunResult
    from panopticon.metrics.run import summary
    from panopticon.sweeps import COMPLETE

    out = {}
    for r in sweep["runs"]:
        if r["status"] == COMPLETE and r.get("path") is not None:
            try:
                out[_run_name(r)] = summary(RunResult(r["manifest"], Path(r["path"])))
            except UserError as exc:
                raise UserError(f"{sweep['file']}: run {_run_name(r)}: {exc}") from None
    return out


def write_sweep_report(ref: str | Path, out: str | Path, store: str | Path = "runs",
                       charts_dir: str | Path | None = None) -> Path:
    """Write the page of the sweep ``ref`` names (a sweep report file, a sweep id in
    ``store``, or ``latest-sweep``) to ``out``; with ``charts_dir``, also each metric's chart
    as ``NAME.png`` and ``NAME.svg`` there.

    Raises:
        UserError: a bad or missing sweep file, a missing or damaged run (named), or ``out``
            not writable.
    """
    from panopticon.report.build import write_chart_files, write_page
    from panopticon.sweeps import load_sweep

    sweep = load_sweep(ref, Path(store))
    per_run = run_numbers(sweep)
    out = write_page(sweep_page(sweep, per_run), out)
    if charts_dir is not None:
        write_chart_files(chart_specs(sweep, per_run), charts_dir)
    return out
