"""The pages of ``panopticon dashboard``: Explore, Runs and Compare and sweeps (each run by its
own small script, ``page_*.py``, so that Streamlit can switch between them).

The app is started by :mod:`panopticon.dashboard.server` (the run store comes in the environment
variable :data:`panopticon.dashboard.STORE_ENV`). Every number comes from the API the command
line uses; the store is only read here, except that a run started on Explore is stored by
:func:`panopticon.run` like any other. No SQL is offered.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import streamlit as st

from panopticon.dashboard import STORE_ENV
from panopticon.errors import UserError

REFRESH_S = 0.4  # how often the live charts are redrawn while a run goes


def store() -> Path:
    return Path(os.environ.get(STORE_ENV, "runs"))


def _chart(spec: dict | None, missing: str = "", key: str | None = None) -> None:
    if spec is None:
        if missing:
            st.caption(missing)
        return
    st.vega_lite_chart(spec, width="stretch", theme=None, key=key)


# ------------------------------------------------------------------------------- Explore
@st.cache_resource(show_spinner=False)
def _preset(name: str):
    from panopticon.scenario import load_preset

    return load_preset(name)


def _base_scenario():
    from panopticon.dashboard.knobs import from_yaml
    from panopticon.scenario import preset_names

    kind = st.radio("scenario", ["a preset", "a scenario file"], horizontal=True,
                    key="explore:source")
    if kind == "a preset":
        names = preset_names()
        wanted = st.query_params.get("preset", "seed_article")
        name = st.selectbox("preset", names, index=names.index(wanted)
                            if wanted in names else 0, key="explore:preset",
                            help="`panopticon presets` describes each")
        spec = _preset(name)
    else:
        upload = st.file_uploader("scenario YAML", type=["yaml", "yml"], key="explore:file")
        if upload is None:
            st.info("Choose a scenario file (`panopticon presets show NAME > mine.yaml` makes "
                    "one to edit).")
            return None
        try:
            spec = from_yaml(upload.getvalue().decode("utf-8", errors="replace"), upload.name)
        except UserError as exc:
            st.error(str(exc))
            return None
    if spec.description:
        st.caption(" ".join(spec.description.split()))
    return spec


def _from_address(knob):
    """A run knob's start from the page address (``?citizens=2000&days=30&seed=1``), within
    the knob's range; else the scenario's."""
    text = st.query_params.get(knob.key.removeprefix("run.")) if knob.key.startswith("run.") \
        else None
    try:
        value = int(text) if text is not None else None
    except ValueError:
        value = None
    if value is None:
        return knob
    from dataclasses import replace

    return replace(knob, value=min(max(value, int(knob.low)), int(knob.high)))


def _widget(knob, prefix: str):
    knob = _from_address(knob)
    key = f"{prefix}:{knob.key}"
    if knob.kind == "int":
        return st.slider(knob.label, int(knob.low), int(knob.high), int(knob.value),
                         int(knob.step), key=key, help=knob.help or None)
    if knob.kind == "number":
        return st.number_input(knob.label, int(knob.low), int(knob.high), int(knob.value),
                               int(knob.step), key=key, help=knob.help or None)
    if knob.kind == "float":
        step = float(knob.step)
        fmt = "%.6f" if step < 0.0001 else "%.4f" if step < 0.01 else "%.3f" if step < 0.1 \
            else "%.2f"
        return st.slider(knob.label, float(knob.low), float(knob.high), float(knob.value), step,
                         format=fmt, key=key, help=knob.help or None)
    if knob.kind == "bool":
        return st.checkbox(knob.label, bool(knob.value), key=key, help=knob.help or None)
    options = list(knob.options)
    return st.selectbox(knob.label, options, index=options.index(knob.value),
                        format_func=lambda v, k=knob: k.options.get(v, str(v)), key=key,
                        help=knob.help or None)


def _knobs(spec) -> dict:
    from panopticon.dashboard.knobs import knobs_for

    knobs = knobs_for(spec)
    prefix = f"knob:{spec.name}"
    values = {}
    run = [k for k in knobs if k.section == "run"]
    for col, k in zip(st.columns(len(run)), run, strict=True):
        with col:
            values[k.key] = _widget(k, prefix)
    sections = list(dict.fromkeys(k.section for k in knobs if k.section != "run"))
    for section in sections:
        with st.expander(section, expanded=section == "policy"):
            for k in knobs:
                if k.section == section:
                    values[k.key] = _widget(k, prefix)
    return values, knobs


def _draw(job, bar, charts) -> None:
    from panopticon.dashboard.views import live_charts

    done = job.days_done
    text = f"day {done} of {job.days}"
    if job.rows:
        text += f" · mean score {job.rows[-1]['mean_score']:,.1f}"
    bar.progress(min(done / max(job.days, 1), 1.0), text=text)
    specs = live_charts(list(job.rows), job.tiers, job.groups, job.days)
    for name, slot in charts.items():
        if name in specs:
            slot.vega_lite_chart(specs[name], width="stretch", theme=None)


def _start(spec, settings) -> None:
    from panopticon.dashboard.live import LiveRun

    try:
        st.session_state["job"] = LiveRun(spec, store(), settings).start()
    except UserError as exc:
        st.session_state["job_error"] = str(exc)


def _resume(path) -> None:
    from panopticon.dashboard.live import LiveRun

    try:
        st.session_state["job"] = LiveRun(resume=path, store=store()).start()
    except UserError as exc:
        st.session_state["job_error"] = str(exc)


def _stop() -> None:
    job = st.session_state.get("job")
    if job is not None:
        job.stop()


def explore() -> None:
    from panopticon.dashboard.knobs import apply, to_yaml
    from panopticon.dashboard.live import COMPLETE, INTERRUPTED

    st.title("Explore")
    st.write("What happens to whom under this scenario, and what changes if you move a knob? "
             "Every run started here is stored like any other run (see Runs) and can be run "
             "again from its YAML.")
    base = _base_scenario()
    spec = settings = None
    if base is not None:
        values, knobs = _knobs(base)
        try:
            spec, settings = apply(base, values, knobs)
        except UserError as exc:
            st.error(str(exc))
        if spec is not None:
            with st.expander("the scenario as YAML (what a run of it stores)"):
                text = to_yaml(spec)
                st.download_button("download YAML", text, file_name=f"{spec.name}.yaml",
                                   mime="text/yaml", key="explore:download")
                st.code(text, language="yaml")
    job = st.session_state.get("job")
    running = job is not None and job.running
    left, right, _ = st.columns([1, 1, 4])
    with left:
        st.button("Run", type="primary", key="explore:run", disabled=running or spec is None,
                  on_click=_start, args=(spec, settings))
    with right:
        st.button("Stop", key="explore:stop", disabled=not running, on_click=_stop,
                  help="stop at the end of the day: the run is kept, interrupted, and "
                       "can be resumed")
    if "job_error" in st.session_state:
        st.error(st.session_state.pop("job_error"))
    job = st.session_state.get("job")
    if job is None:
        return
    bar = st.empty()
    top = st.columns(2)
    bottom = st.columns(2)
    charts = {"scores": top[0].empty(), "tiers": top[1].empty(), "false": bottom[0].empty(),
              "refusals": bottom[1].empty()}
    while job.running:
        _draw(job, bar, charts)
        time.sleep(REFRESH_S)
    _draw(job, bar, charts)
    where = f" in {job.path}" if job.path else ""
    took = f" ({job.seconds:.1f} s)" if job.seconds is not None else ""
    if job.status == COMPLETE:
        st.success(f"complete: {job.days} days stored{where}{took}. Open it on the Runs page "
                   f"(run {job.path.name if job.path else '?'}).")
    elif job.status == INTERRUPTED:
        st.warning(f"stopped: the run is stored{where}, interrupted at its last checkpoint; "
                   f"resume it here or with `panopticon run --resume {job.path}`.")
        st.button("Resume", key="explore:resume", on_click=_resume, args=(job.path,))
    elif job.error:
        st.error(f"{job.status}: {job.error}")
    else:
        st.warning(f"{job.status}: nothing was stored.")


# ---------------------------------------------------------------------------------- Runs
def _run_key(manifest: dict) -> tuple:
    return (manifest.get("path"), manifest.get("status"), manifest.get("days_completed"),
            (manifest.get("result") or {}).get("fingerprint"))


@st.cache_resource(show_spinner="reading the run", max_entries=8)
def _collect(path: str, _key: tuple):
    from panopticon.report.build import collect

    return collect([path], store())[0]


@st.cache_data(show_spinner="comparing categories", max_entries=32)
def _impact(path: str, _key: tuple, attribute: str) -> dict:
    import panopticon as pc
    from panopticon.metrics import run as metrics

    return metrics.disparate_impact(pc.open_run(path), attribute)


@st.cache_data(show_spinner=False, max_entries=8)
def _citizens(path: str, _key: tuple):
    import numpy as np
    import pandas as pd

    import panopticon as pc
    from panopticon.metrics import run as metrics

    result = pc.open_run(path)
    cit = metrics.read(result, "citizens", ["citizen", "score", "false_points", "tier"])
    if cit is None:
        return None
    frame = cit.to_pandas()
    frame["tier"] = frame["tier"].astype(str)
    refusals = metrics.read(result, "refusals", ["citizen", "wrongful"])
    frame["wrongly_refused"] = 0
    if refusals is not None and refusals.num_rows:
        r = refusals.to_pandas()
        counts = r[r["wrongful"].astype(bool)].groupby("citizen").size()
        frame["wrongly_refused"] = frame["citizen"].map(counts).fillna(0).astype(int)
    hit = frame[(frame["false_points"] != 0) | (frame["wrongly_refused"] > 0)]
    order = np.lexsort((hit["citizen"].to_numpy(), -hit["false_points"].abs().to_numpy(),
                        -hit["wrongly_refused"].to_numpy()))
    return pd.DataFrame(hit.iloc[order[:3000]])


def _story(path: str, citizen: int) -> None:
    import pandas as pd

    from panopticon.explain import explain

    try:
        story = explain(Path(path), citizen)
    except UserError as exc:
        st.error(str(exc))
        return
    st.markdown(f"**{story.header()}**")
    st.dataframe(pd.DataFrame([{"day": line.day, "what": line.kind, "story": line.text}
                               for line in story.lines]), hide_index=True, width="stretch")
    st.write(f"summary: {story.summary_text()}")
    for note in story.notes:
        st.caption(note)


def _open_run(manifest: dict) -> None:
    from panopticon.dashboard.knobs import to_yaml
    from panopticon.dashboard.views import citizens_chart, harms_chart, harms_frame
    from panopticon.metrics import run as metrics
    from panopticon.report import SECTIONS
    from panopticon.report.build import charts

    path, key = str(manifest["path"]), _run_key(manifest)
    try:
        run = _collect(path, key)
        specs = charts([run])
    except UserError as exc:
        st.error(str(exc))
        return
    st.subheader(run.label)
    st.caption(run.details)
    if manifest.get("status") == "interrupted":
        st.warning(f"interrupted: resume it with `panopticon run --resume {path}` (or on "
                   "Explore after stopping it there)")
    with st.expander("scenario YAML (reproduces this run)"):
        text = to_yaml(run.spec)
        st.download_button("download YAML", text, file_name=f"{run.spec.name}.yaml",
                           mime="text/yaml", key=f"runs:yaml:{path}")
        st.code(text, language="yaml")
    report, harms, audit, story = st.tabs(["Report", "Harms by attribute", "Audit",
                                           "A citizen's story"])
    with report:
        if run.findings:
            st.markdown("#### Findings")
            for f in run.findings:
                st.markdown(f"- {f.text}")
        for sid, heading in SECTIONS:
            mine = [(name, spec) for name, (sec, spec) in specs.items() if sec == sid]
            if not mine:
                continue
            st.markdown(f"#### {heading}")
            if sid in run.notes:
                st.caption(run.notes[sid])
            for name, spec in mine:
                _chart(spec, f"{name}: no data in this run", key=f"runs:{name}:{path}")
    with harms:
        attrs = [a for a in metrics.attributes(run.result) if not a.startswith("listed_")] \
            if "citizens.parquet" in run.manifest.get("files", {}) else []
        if not attrs:
            st.caption("No citizens table (the run did not finish): nothing to compare.")
        else:
            attr = st.selectbox("attribute", attrs, key=f"runs:attr:{path}",
                                help="numbers are cut in quantile bins")
            frame = harms_frame(run.impact.get(attr) or _impact(path, key, attr))
            _chart(harms_chart(frame, attr), "no outcomes to compare")
            st.caption("Whole run, per 1,000 citizens of the category (top_tier: the final "
                       "state), with the 95% interval (Wilson); ratio: against the reference "
                       "category, with its 95% interval (Katz); four-fifths status.")
            st.dataframe(frame, hide_index=True, width="stretch")
    with audit:
        a = run.audit
        if a is None:
            st.caption(run.notes.get("audit", "no audit"))
        else:
            verdict = "intact" if a.get("intact") else "NOT intact"
            chain = {True: "intact", False: "broken"}.get(a.get("chain_intact"), "not checked")
            (st.success if a.get("intact") else st.error)(
                f"verdict: {verdict} ({a.get('days_checked')} days checked; ledger hash chain "
                f"{chain})")
            for f in a.get("findings", [])[:50]:
                st.write(f"- {f['kind']}: {f['detail']}")
            st.caption("`panopticon audit RUN --replay` also simulates the run again.")
    with story:
        picks = {f"{s.why} (citizen {s.citizen})": s.citizen for s in run.stories}
        chosen = None
        frame = _citizens(path, key) if run.complete else None
        if frame is not None and len(frame):
            event = st.altair_chart(citizens_chart(frame), on_select="rerun",
                                    selection_mode="pick", key=f"runs:pick:{path}",
                                    width="stretch", theme=None)
            points = (event.selection or {}).get("pick") or [] if event else []
            if points:
                chosen = int(points[0]["citizen"])
        label = st.selectbox("or pick", ["(by id below)", *picks], key=f"runs:who:{path}")
        citizen = st.number_input("citizen id", 0, max(run.citizens - 1, 0),
                                  value=picks.get(label, 0), key=f"runs:id:{path}:{label}")
        if chosen is None:
            chosen = int(citizen)
        _story(path, chosen)


def runs() -> None:
    from panopticon.dashboard.views import runs_frame
    from panopticon.store.local import list_runs

    st.title("Runs")
    st.write("What did a stored run come to: who was hurt, by which errors, was anyone "
             "treated worse for who they are, is the record intact, and what happened to one "
             "citizen?")
    try:
        manifests = list_runs(store())
    except UserError as exc:
        st.error(str(exc))
        return
    if not manifests:
        st.info(f"No runs in {store()}/ yet: start one on Explore, or `panopticon run "
                f"--out {store()}`.")
        return
    st.dataframe(runs_frame(manifests), hide_index=True, width="stretch")
    ids = [m["run_id"] for m in manifests]
    wanted = st.query_params.get("run")
    index = ids.index(wanted) if wanted in ids else 0
    by_id = {m["run_id"]: m for m in manifests}
    chosen = st.selectbox("open a run", ids, index=index, key="runs:open",
                          format_func=lambda r: f"{r} ({by_id[r].get('status')})")
    manifest = by_id[chosen]
    if manifest.get("status") in ("corrupt", "damaged", "running"):
        st.error(f"{chosen}: {manifest.get('status')}"
                 + (f": {manifest['note']}" if manifest.get("note") else ""))
        return
    _open_run(manifest)


# ------------------------------------------------------------------------------- Compare
@st.cache_data(show_spinner="reading runs", max_entries=64)
def _summary(path: str, _key: tuple) -> dict:
    import panopticon as pc
    from panopticon.metrics.run import summary

    return summary(pc.open_run(path))


@st.cache_data(show_spinner="reading the sweep", max_entries=8)
def _sweep(file: str, mtime: float):
    from panopticon.report.sweep import run_numbers
    from panopticon.sweeps import load_sweep

    sweep = load_sweep(file, store())
    return sweep, run_numbers(sweep)


def _compare_runs() -> None:
    import pandas as pd

    from panopticon.dashboard.views import compare_frame, differing
    from panopticon.report.build import alt, run_labels
    from panopticon.store.local import list_runs

    manifests = [m for m in list_runs(store()) if m.get("status") == "complete"]
    if len(manifests) < 2:
        st.info("Two or more complete runs are needed to compare.")
        return
    by_id = {m["run_id"]: m for m in manifests}
    chosen = st.multiselect("runs (the first is the baseline)", list(by_id),
                            default=list(by_id)[:2], key="compare:runs",
                            format_func=lambda r: f"{r} ({by_id[r].get('scenario')})")
    if len(chosen) < 2:
        st.caption("Pick two or more runs.")
        return
    picked = [by_id[r] for r in chosen]
    labels = run_labels(picked)
    try:
        summaries = [_summary(str(m["path"]), _run_key(m)) for m in picked]
    except UserError as exc:
        st.error(str(exc))
        return
    st.markdown("#### Settings that differ")
    st.dataframe(differing(picked, labels), hide_index=True, width="stretch")
    frame = compare_frame(summaries, labels)
    names = list(frame["metric"])
    metric = st.selectbox("metric", names, key="compare:metric",
                          index=names.index("wrongful_refusals") if "wrongful_refusals"
                          in names else 0)
    from panopticon.metrics.describe import describe

    text, scope = describe(metric)
    a = alt()
    data = pd.DataFrame({"run": labels, "value": [s.get(metric) for s in summaries]})
    _chart(a.Chart(data).mark_bar().encode(
        y=a.Y("run:N", sort=labels, title=None), x=a.X("value:Q", title=metric),
        tooltip=["run:N", "value:Q"]).properties(
        title=a.TitleParams(text, subtitle=scope or metric), width="container").to_dict())
    st.markdown("#### Headline metrics (as `panopticon compare`)")
    st.dataframe(frame, hide_index=True, width="stretch")


def _compare_sweep() -> None:
    import pandas as pd

    from panopticon.dashboard.views import sweep_files
    from panopticon.report.sweep import chart_specs
    from panopticon.sweeps import default_metrics, point_rows, sweep_metrics

    files = sweep_files(store())
    if not files:
        st.info(f"No sweeps in {store()}/ yet: `panopticon sweep SCENARIO --set KEY=V1,V2 "
                f"--out {store()}` makes one.")
        return
    file = st.selectbox("sweep", files, format_func=lambda p: p.stem, key="compare:sweep")
    try:
        sweep, per_run = _sweep(str(file), file.stat().st_mtime)
    except UserError as exc:
        st.error(str(exc))
        return
    available = sweep_metrics(sweep)
    chosen = st.multiselect("metrics", available, default=default_metrics(available),
                            key="compare:metrics")
    st.caption(f"{sweep['scenario']}: settings "
               + "; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in sweep["settings"].items())
               + f"; {sweep['replicates']} replicates each. The line is the mean over a grid "
               "point's replicates, the band its 95% confidence interval, the dots the "
               "replicates.")
    specs = chart_specs(sweep, per_run, chosen)
    cols = st.columns(2)
    for k, name in enumerate(chosen):
        with cols[k % 2]:
            _chart(specs.get(name), f"{name}: no values")
    rows = point_rows(sweep, chosen)
    table = []
    for r in rows:
        row = {**r["point"], "runs complete": f"{r['runs_complete']}/{r['runs']}"}
        for m in chosen:
            v = r["metrics"][m]
            row[m] = "-" if v is None else f"{v['mean']:.4g} [{v['ci_low']:.4g}, {v['ci_high']:.4g}]"
        table.append(row)
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")


def compare() -> None:
    st.title("Compare and sweeps")
    st.write("Does a setting change the harm, and by more than chance? Runs side by side with "
             "the settings that differ, or a stored sweep: each metric against the swept "
             "setting with its 95% confidence band.")
    mode = st.radio("compare", ["runs", "a sweep"], horizontal=True, key="compare:mode")
    if mode == "runs":
        _compare_runs()
    else:
        _compare_sweep()
