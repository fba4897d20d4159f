"""Sweeps: a scenario run over a grid of settings, several replicates each, in parallel
processes; every run is stored, and each grid point is summarised with confidence intervals
across its replicates.

A setting is a dotted key into the scenario as written in YAML (``sensors.cameras.
misattribution``, ``policy.association.0.weight``, ``run.citizens``) and a list of values.
Replicate r of a grid point runs with seed ``run.seed + r``, so replicates differ only by
chance and grid points share their seeds (common random numbers: differences between points
are not drowned by seed-to-seed noise).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from panopticon.errors import Problem, UserError
from panopticon.scenario import ScenarioSpec, scenario_from_data

_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
"""Student's t 97.5% quantiles for 1-30 degrees of freedom (1.96 beyond)."""


@dataclass(frozen=True)
class Setting:
    """One swept key and its values (parsed as YAML scalars: ``0.1``, ``true``, ``urban``)."""

    key: str
    values: tuple[Any, ...]

    @classmethod
    def parse(cls, text: str) -> Setting:
        """``key=v1,v2,...`` -> a setting."""
        key, sep, values = text.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UserError(f"--set {text!r}: expected KEY=VALUE[,VALUE...], e.g. "
                            "sensors.cameras.misattribution=0.001,0.01")
        parsed = []
        for v in values.split(","):
            try:
                parsed.append(yaml.safe_load(v.strip()))
            except yaml.YAMLError:
                parsed.append(v.strip())
        return cls(key.strip(), tuple(parsed))


def _assign(data: dict, key: str, value: Any) -> None:
    """Set ``data[a][b]...`` for ``key`` = ``a.b...`` (list indices as numbers); the parents
    must exist, the leaf may be new (the validator then says whether it is allowed)."""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[:depth + 1]), key)
    leaf = parts[-1]
    if isinstance(node, list):
        index = _index(node, leaf, key)
        node[index] = value
    elif isinstance(node, dict):
        node[leaf] = value
    else:
        raise UserError(f"--set {key}: {'.'.join(parts[:-1])} is not a mapping or a list")


def _child(node: Any, part: str, path: str, key: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key)]
    if isinstance(node, dict):
        if part not in node:
            raise UserError(f"--set {key}: the scenario has no {path!r} (known here: "
                            f"{', '.join(sorted(map(str, node))) or 'nothing'})")
        return node[part]
    raise UserError(f"--set {key}: {path} is not a mapping or a list")


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise UserError(f"--set {key}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


def grid(base: ScenarioSpec, settings: list[Setting]) -> list[tuple[dict, ScenarioSpec]]:
    """Every combination of the settings' values as (values by key, validated scenario)."""
    data = base.model_dump(mode="json")
    out = []
    for combo in itertools.product(*(s.values for s in settings)):
        point = dict(zip((s.key for s in settings), combo, strict=True))
        changed = copy.deepcopy(data)
        for key, value in point.items():
            _assign(changed, key, value)
        try:
            spec = scenario_from_data(changed, {}, "<sweep>")
        except UserError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in point.items())
            problems = [Problem(p.file, p.line, p.column, p.path, f"{p.message} (with {where})")
                        for p in exc.problems]
            raise UserError("invalid sweep setting", problems) from None
        out.append((point, spec))
    return out


def _one(job: tuple) -> dict:
    """Run one grid point's replicate and summarise it (in a worker process)."""
    from panopticon import api

    spec_json, store, replicate, point = job
    spec = ScenarioSpec.model_validate_json(spec_json)
    spec = spec.with_run(seed=spec.run.seed + replicate)
    result = api.run(spec, out=store)
    return {"point": point, "replicate": replicate, "run": str(result.path),
            "summary": summarise(result)}


def summarise(result) -> dict[str, float]:
    """The headline numbers of a run: the metrics summary when available, else the last day
    of the daily table."""
    try:
        from panopticon.metrics.run import summary
    except ImportError:  # pragma: no cover - the metrics module is optional
        row = result.daily.slice(result.daily.num_rows - 1).to_pylist()[0]
        return {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
    return summary(result)


def run_sweep(base: ScenarioSpec, settings: list[Setting], replicates: int, store: Path,
              workers: int = 1, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run the grid x replicates (in ``workers`` processes) and summarise each grid point.

    Returns:
        ``settings`` (key -> values), ``runs`` (one per run: point, replicate, run folder,
        summary) and ``points`` (per grid point: the setting values and, per metric, mean,
        sd, the 95% confidence interval of the mean across replicates, and n).
    """
    if replicates < 1:
        raise UserError("--replicates must be at least 1")
    points = grid(base, settings)
    jobs = [(spec.model_dump_json(), str(store), r, point)
            for point, spec in points for r in range(replicates)]
    store.mkdir(parents=True, exist_ok=True)
    done: list[dict] = []
    if workers <= 1:
        for job in jobs:
            done.append(_one(job))
            if progress:
                progress(len(done), len(jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for item in pool.map(_one, jobs):
                done.append(item)
                if progress:
                    progress(len(done), len(jobs))
    return {"scenario": base.name, "replicates": replicates,
            "settings": {s.key: list(s.values) for s in settings}, "runs": done,
            "points": [summarise_point(point, [d["summary"] for d in done
                                              if d["point"] == point])
                       for point, _ in points]}


def summarise_point(point: dict, summaries: list[dict[str, float]]) -> dict:
    """Mean, sample standard deviation, 95% confidence interval of the mean (Student's t)
    and n of every metric over one grid point's replicates (NaNs left out)."""
    metrics: dict[str, dict[str, float]] = {}
    for name in sorted({k for s in summaries for k in s}):
        values = [s[name] for s in summaries if name in s and not math.isnan(s[name])]
        n = len(values)
        if not n:
            continue
        mean = sum(values) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
        half = (_T975[n - 2] if n - 1 <= len(_T975) else 1.96) * sd / math.sqrt(n) \
            if n > 1 else math.nan
        metrics[name] = {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half,
                         "n": n}
    return {"point": point, "metrics": metrics}


def save(report: dict, store: Path) -> Path:
    """Write the sweep report next to its runs; returns the file."""
    path = store / f"sweep-{report['scenario']}-{len(list(store.glob('sweep-*.json')))}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path
