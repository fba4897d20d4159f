"""Panopticon's ``reference`` preset against an independent Mesa implementation of the same model
(``benchmarks/reference_mesa.py``), and smoke tests of the benchmark scripts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from panopticon import api, engine

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CITIZENS, DAYS = 3_000, 56
SEEDS = (1, 2, 3, 4)
T_CRIT = 5.959
"""Two-sided 99.9% quantile of Student's t with 2 * (len(SEEDS) - 1) = 6 degrees of freedom."""


def load_benchmark(name: str):
    """A module from ``benchmarks/`` (not a package), imported by path."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def panopticon_stats(seed: int) -> dict[str, float]:
    """Final mean and spread of scores and tier shares of the reference preset."""
    sim = engine.build(api.load("reference").with_run(citizens=CITIZENS, days=DAYS, seed=seed))
    state = engine.run(sim, engine.initial_state(sim))
    scores = state.scores / 1000.0
    counts = np.bincount(state.tier, minlength=len(sim.policy.tier_names))
    return {"mean_score": scores.mean(), "score_sd": scores.std(),
            **{f"share_{t}": c / CITIZENS for t, c in zip(sim.policy.tier_names, counts, strict=True)}}


def mesa_stats(run_mesa, seed: int) -> dict[str, float]:
    """The same statistics from the Mesa model."""
    r = run_mesa(CITIZENS, DAYS, seed)
    return {"mean_score": r["mean_score"], "score_sd": r["score_sd"],
            **{f"share_{t}": s for t, s in r["shares"].items()}}


def test_reference_preset_matches_independent_mesa_model():
    """Both implementations, each over the same seeds, give the same final mean score, score
    spread across citizens and tier shares, up to seed-to-seed noise.

    Tolerance: for each statistic, the difference of the two seed-averages is compared with a
    two-sample t bound, ``T_CRIT * s * sqrt(2 / k)``, where k is the number of seeds and s the
    pooled seed-to-seed standard deviation (both implementations, 2(k-1) degrees of freedom).
    With 99.9% per statistic and six statistics, at most about 0.6% of seed sets would fail
    by chance if the models agree; the seeds are fixed, so the outcome is deterministic. So that a few
    seeds that happen to agree closely cannot make the bound collapse, s is at least the
    spread expected if citizens were independent: score sd / sqrt(N) for the mean score,
    sqrt(p(1 - p) / N) for a tier share p, and score sd / sqrt(2N) for the spread.

    What it can see at 3,000 citizens x 56 days: the bound on the mean score is about 1.2
    points, so a detection probability off by 0.1 (1.7 points) fails, as do wrong points per
    rule; the spread and the B/C shares catch a missing weekly pull (3.5 points of spread) or
    a fortnightly one (1.4). It cannot see the false events (0.2 points by day 56), and no
    citizen reaches tier A or D this early, so deterrence is left to the 365-day comparison
    that ``benchmarks/vs_mesa.py`` prints.
    """
    run_mesa = load_benchmark("reference_mesa").run_mesa
    mesa = [mesa_stats(run_mesa, s) for s in SEEDS]
    pano = [panopticon_stats(s) for s in SEEDS]
    k = len(SEEDS)
    sd_scores = float(np.mean([r["score_sd"] for r in mesa + pano]))
    for stat in mesa[0]:
        a = np.array([r[stat] for r in pano])
        b = np.array([r[stat] for r in mesa])
        if stat == "mean_score":
            floor = sd_scores / np.sqrt(CITIZENS)
        elif stat == "score_sd":
            floor = sd_scores / np.sqrt(2 * CITIZENS)
        else:
            p = (a.mean() + b.mean()) / 2
            floor = np.sqrt(p * (1 - p) / CITIZENS)
        s = max(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2), floor)
        tol = T_CRIT * s * np.sqrt(2 / k)
        assert abs(a.mean() - b.mean()) <= tol, (
            f"{stat}: panopticon {a.mean():.4f} vs Mesa {b.mean():.4f}, tolerance {tol:.4f} "
            f"(panopticon {np.round(a, 4)}, Mesa {np.round(b, 4)})")


@pytest.mark.parametrize("script, args, expected", [
    ("vs_mesa.py", ["--quick"], "ratio panopticon/Mesa"),
    ("scale.py", ["--sizes", "2000", "4000", "--days", "7"], "per 10x citizens"),
])
def test_benchmark_scripts_run_and_print_their_ratio(script, args, expected):
    """The benchmark scripts run end to end at a tiny size and print their comparison line."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout, proc.stdout
