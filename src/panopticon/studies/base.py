"""What every study shares: its scenario family (a packaged YAML file), the grid of settings x
replicates run through the sweep machinery into a store, the study's own per-run numbers
added to each run's summary, and the page (Markdown) and offline HTML report written from
those numbers.

A study file (``src/panopticon/studies/<name>.yaml``) holds ``name``, ``question``, ``base``
(a preset or scenario file), ``fixed`` (dotted keys set in every run), ``vary`` (dotted keys
and their values: one axis each), ``variants`` (at most one named axis whose values are
bundles of dotted keys, e.g. ``decision: {computer: {}, judge: {governance.review: ...}}``)
and ``scales`` (``tiny``, ``small``, ``full``: citizens, days, replicates).

Nothing a page says is typed in: :meth:`Study.page` turns the numbers of
:func:`run_study`'s ``data`` into sentences, and records each number it printed in
``data["numbers"]`` (name -> the text printed), which ``tests/test_studies.py`` recomputes
from the stored runs.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from panopticon.errors import UserError

SCALES = ("tiny", "small", "full")
"""``tiny``: seconds, for the tests; ``small``: a few minutes; ``full``: the published pages
(``make studies``)."""

PER = 1000


@dataclass(frozen=True)
class Scale:
    """How large a study's runs are."""

    name: str
    citizens: int
    days: int
    replicates: int
    insider_citizens: int | None = None


# ------------------------------------------------------------------ numbers in words
def sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, thousands separated, no exponent: 1234.5 ->
    '1,234', 0.011234 -> '0.0112', 0 -> '0'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{x:,.{decimals}f}"


def with_ci(m: dict | None, factor: float = 1.0, digits: int = 3, unit: str = "") -> str:
    """A mean with its 95% interval: '12.3 (95% CI 10.1–14.6)'; one replicate: no interval;
    replicates that all agree (e.g. all 0): said so, not a '0–0' interval."""
    if not m or m.get("mean") is None or math.isnan(m["mean"]):
        return "n/a"
    mean = sig(m["mean"] * factor, digits) + unit
    low, high = m.get("ci_low"), m.get("ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{mean} (one replicate: no interval)"
    if low == high:  # e.g. none in any replicate: an interval of one point says nothing
        return f"{mean} (the same in every replicate)"
    return f"{mean} (95% CI {sig(low * factor, digits)}–{sig(high * factor, digits)}{unit})"


def pct_ci(m: dict | None, digits: int = 2) -> str:
    """A share with its interval, as percentages: '4.1% (95% CI 3.8–4.4%)'."""
    return with_ci(m, 100.0, digits, "%")


def differs(a: dict, b: dict) -> bool:
    """Whether two points' 95% intervals do not overlap (a clear difference at this scale)."""
    vals = [a.get("ci_low"), a.get("ci_high"), b.get("ci_low"), b.get("ci_high")]
    if any(v is None or math.isnan(v) for v in vals):
        return False
    return a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"]


# ------------------------------------------------------------------ the study
class Study:
    """One question: its scenario family, the numbers it takes of each run, its page.

    Subclasses set ``name`` and ``title`` and implement :meth:`extras` and :meth:`page`;
    :meth:`extra_runs` (runs outside the grid) and :data:`charts` are optional."""

    name: str = ""
    title: str = ""
    charts: tuple[str, ...] = ()
    """Metrics drawn as charts (SVG next to the page) and embedded in the Markdown page."""

    def __init__(self) -> None:
        text = (resources.files("panopticon.studies") / f"{self.name}.yaml").read_text("utf-8")
        self.config: dict[str, Any] = yaml.safe_load(text)
        self.file = f"src/panopticon/studies/{self.name}.yaml"

    @property
    def question(self) -> str:
        return " ".join(str(self.config["question"]).split())

    def scale(self, name: str) -> Scale:
        if name not in SCALES:
            raise UserError(f"--scale {name!r}: choose one of {', '.join(SCALES)}")
        s = self.config["scales"][name]
        return Scale(name, int(s["citizens"]), int(s["days"]), int(s["replicates"]),
                     s.get("insider_citizens"))

    def settings(self) -> dict[str, list]:
        """The study's axes: the variant axis first (if any), then each ``vary`` key."""
        out: dict[str, list] = {}
        for key, bundles in (self.config.get("variants") or {}).items():
            out[key] = list(bundles)
        for key, values in (self.config.get("vary") or {}).items():
            out[key] = list(values)
        return out

    def base_data(self, scale: Scale, citizens: int | None = None) -> dict:
        from panopticon.api import load

        data = load(self.config["base"]).model_dump(mode="json")
        data["run"]["citizens"] = citizens or scale.citizens
        data["run"]["days"] = scale.days
        data["name"] = f"study-{self.name}"
        for key, value in (self.config.get("fixed") or {}).items():
            _assign(data, key, value)
        return data

    def points(self, scale: Scale) -> list[tuple[dict, Any]]:
        """Every grid point as (setting values, validated scenario)."""
        from panopticon.scenario import scenario_from_data

        variants = self.config.get("variants") or {}
        axes = self.settings()
        base = self.base_data(scale)
        out = []
        for combo in itertools.product(*axes.values()):
            point = dict(zip(axes, combo, strict=True))
            data = copy.deepcopy(base)
            for key, value in point.items():
                if key in variants:
                    for k, v in (variants[key][value] or {}).items():
                        _assign(data, k, v)
                else:
                    _assign(data, key, value)
            out.append((point, scenario_from_data(data, {}, f"<study {self.name}>")))
        return out

    def bounds(self, name: str) -> tuple[float | None, float | None]:
        """The range of a study metric (for its interval); summary keys as the sweeps do."""
        from panopticon.metrics.run import summary_bounds

        if name.startswith(("share_abroad", "share_home", "share_family")):
            return 0.0, 1.0
        if "per_1000" in name:
            return 0.0, None
        return summary_bounds(name)

    def extras(self, result: Any) -> dict[str, float]:
        """The study's own numbers of one stored run (added to its summary)."""
        return {}

    def extra_runs(self, scale: Scale, store: Path, progress: Callable[[str], None]) -> dict:
        """Runs outside the grid (e.g. an audited insider run); their facts for the page."""
        return {}

    def page(self, data: dict) -> str:
        raise NotImplementedError


def _assign(data: dict, key: str, value: Any) -> None:
    from panopticon.scenario import assign

    assign(data, key, copy.deepcopy(value), "study file: ")


# ------------------------------------------------------------------ running
def run_study(study: Study, scale: str = "full", out: str | Path = "docs/studies",
              store: str | Path = "runs/studies", workers: int | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Run ``study`` at ``scale``: its grid x replicates (stored under ``store/<name>``, with
    a sweep report), its extra runs, then write ``out/<name>.md``, ``out/<name>.html``,
    ``out/<name>.json`` (the numbers the page was written from) and its charts
    (``out/<name>/<metric>.svg``). Returns the data the page was written from."""
    from panopticon.resources import check_memory, estimate_peak_bytes
    from panopticon.sweeps import _run_here, _run_pool, save, summarise_point, worker_count

    say = progress or (lambda _msg: None)
    started = time.monotonic()
    sc = study.scale(scale)
    folder = Path(store).resolve() / study.name
    folder.mkdir(parents=True, exist_ok=True)
    points = study.points(sc)
    jobs = [(spec.model_dump_json(), str(folder), r, point)
            for point, spec in points for r in range(sc.replicates)]
    digests = [spec.with_run(seed=spec.run.seed + r).digest
               for _, spec in points for r in range(sc.replicates)]
    used = worker_count(workers or os.cpu_count() or 1, len(jobs))
    check_memory(max((s for _, s in points), key=estimate_peak_bytes), runs=used)
    say(f"{study.name}: {len(jobs)} runs of {sc.citizens:,} citizens x {sc.days} days "
        f"({len(points)} settings x {sc.replicates} replicates) in {used} processes")

    def tick(done: int, total: int) -> None:
        say(f"{study.name}: {done}/{total} runs done ({time.monotonic() - started:.0f} s)")

    done = (_run_here(jobs, digests, folder, tick) if used <= 1 else
            _run_pool(jobs, digests, folder, used, tick))
    from panopticon.api import open_run

    for record in done:
        record["summary"].update(study.extras(open_run(record["run"])))
    report = {"scenario": f"study-{study.name}", "replicates": sc.replicates, "workers": used,
              "engine": "processes", "settings": study.settings(), "runs": done,
              "points": [summarise_point(point, [d["summary"] for d in done
                                                 if d["point"] == point], study.bounds)
                         for point, _ in points]}
    sweep_file = save(report, folder)
    grid_s = time.monotonic() - started
    extra = study.extra_runs(sc, folder, say)
    seconds = time.monotonic() - started
    data = {"study": study.name, "title": study.title, "question": study.question,
            "scale": sc.name, "citizens": sc.citizens, "days": sc.days,
            "replicates": sc.replicates, "insider_citizens": sc.insider_citizens,
            "settings": study.settings(), "points": report["points"],
            "sweep": sweep_file.name, "store": str(folder), "runs": len(done),
            "workers": used, "cpus": os.cpu_count(), "machine": platform.machine(),
            "grid_seconds": round(grid_s, 1), "seconds": round(seconds, 1), "extra": extra,
            "generated": datetime.now(UTC).strftime("%Y-%m-%d"), "numbers": {},
            "study_file": study.file}
    write_outputs(study, data, Path(out), sweep_file, folder)
    say(f"{study.name}: done in {seconds:.0f} s: {Path(out) / (study.name + '.md')}")
    return data


def write_outputs(study: Study, data: dict, out: Path, sweep_file: Path, folder: Path) -> None:
    """The page, its numbers, its charts and the offline HTML report."""
    from panopticon.api import RunResult
    from panopticon.report.build import write_chart_files, write_page
    from panopticon.report.sweep import _run_name, chart_specs, run_numbers, sweep_page
    from panopticon.sweeps import COMPLETE, load_sweep

    out.mkdir(parents=True, exist_ok=True)
    sweep = load_sweep(sweep_file, folder)
    per_run = run_numbers(sweep)
    for r in sweep["runs"]:
        if r["status"] == COMPLETE and r.get("path") is not None:
            per_run[_run_name(r)].update(study.extras(RunResult(r["manifest"], Path(r["path"]))))
    write_page(sweep_page(sweep, per_run), out / f"{study.name}.html")
    charts = out / study.name
    if study.charts:
        written = write_chart_files(chart_specs(sweep, per_run, list(study.charts)), charts)
        for path in written:
            if path.suffix == ".png":
                path.unlink()
    data["charts"] = [f"{study.name}/{m}.svg" for m in study.charts
                      if (charts / f"{m}.svg").exists()]
    text = study.page(data)
    (out / f"{study.name}.md").write_text(text, encoding="utf-8")
    (out / f"{study.name}.json").write_text(json.dumps(data, indent=1, default=str) + "\n",
                                             encoding="utf-8")


# ------------------------------------------------------------------ page parts
def point_of(data: dict, **where: Any) -> dict:
    """The metrics of the grid point whose settings include ``where``."""
    for p in data["points"]:
        if all(p["point"].get(k) == v for k, v in where.items()):
            return p["metrics"]
    raise KeyError(where)


def layout(data: dict, design: str, answer: list[str], captions: dict[str, str], table: str,
           sources: str) -> str:
    """A study's page in the one order every page has: title and scale, the question, the
    design, the answer (a list of paragraphs), the charts (metric -> caption), the table of
    every setting, what is documented and what is assumed, and how to rerun it."""
    return "\n".join([
        header(data),
        "## The question", "", data["question"], "",
        "## The design", "", design, "",
        "## The answer", "", *answer, "",
        charts(data, captions), table, "",
        "## What is documented and what is assumed", "", sources, "",
        rerun(data)])


def header(data: dict) -> str:
    """Title, and the small-scale warning when the page is not at full scale."""
    lines = [f"# {data['title']}", ""]
    if data["scale"] != "full":
        lines += [f"> **Generated at {data['scale']} scale** ({data['citizens']:,} citizens, "
                  f"{data['replicates']} replicates): rerun `make studies` for the published "
                  "numbers.", ""]
    lines += ["*This page is generated by `panopticon study " + data["study"] + "` from the "
              "runs it made; every number in it comes from those runs. Do not edit it by "
              "hand.*", ""]
    return "\n".join(lines)


def _where(store: str) -> str:
    """The runs' folder as the reader can use it: relative to the working folder when in it."""
    try:
        return str(Path(store).resolve().relative_to(Path.cwd()))
    except ValueError:
        return store


def rerun(data: dict) -> str:
    minutes = data["seconds"] / 60
    store = _where(data["store"])
    processes = "1 process" if data["workers"] == 1 else f"{data['workers']} processes"
    return "\n".join([
        "## How to rerun it", "",
        "```sh",
        f"panopticon study {data['study']}                 # full scale, as published",
        f"panopticon study {data['study']} --scale small   # minutes",
        "make studies                              # every study, full scale",
        "```", "",
        f"This page was generated on {data['generated']} at {data['scale']} scale: "
        f"{data['runs']} runs of the grid in {processes} on a machine with "
        f"{data['cpus']} CPUs ({data['machine']}), in {minutes:.1f} minutes all told "
        f"({data['grid_seconds'] / 60:.1f} for the grid). The runs and the sweep report "
        f"(`{data['sweep']}`) are stored under `{store}/` "
        f"(`panopticon compare {data['sweep'].removesuffix('.json')} --out "
        f"{store}` prints every metric with its interval); the numbers "
        f"this page was written from are in `{data['study']}.json`, the offline report with "
        f"a chart per metric in [`{data['study']}.html`]({data['study']}.html). The scenario "
        f"family is `{data['study_file']}`.", ""])


def charts(data: dict, captions: dict[str, str]) -> str:
    lines = []
    for path in data.get("charts", []):
        metric = Path(path).stem
        lines += [f"![{captions.get(metric, metric)}]({path})", "",
                  f"*{captions.get(metric, metric)}*", ""]
    return "\n".join(lines)
