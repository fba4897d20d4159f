"""Panopticon against Mesa on the benchmark reference model (docs/presets/reference.md).

Both implementations run the same model at the same N, each in its own subprocess so that peak
memory (``ru_maxrss``) is its own. Panopticon runs its ``reference`` preset through
``engine.build`` / ``engine.initial_state`` (setup) and ``engine.run`` (the day loop), after a
small warm-up run in the same process so that Numba compilation is not in the loop time; the
whole-process time (interpreter start, imports, compilation) is reported too. Mesa
(``reference_mesa.py``) usually runs fewer days at large N; speed is compared per citizen-day.
For the final mean score, score spread and tier shares, panopticon is also run for Mesa's days
over several seeds: their seed-to-seed spread is the yardstick for the difference (ties make
neighbours' scores correlated, so this spread is wider than if citizens were independent).

    python benchmarks/vs_mesa.py                      # 10k and 100k citizens
    python benchmarks/vs_mesa.py --sizes 100000 --days 365 --mesa-days 30
    python benchmarks/vs_mesa.py --quick              # seconds; used by the tests
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_RATIO, TARGET_N = 400.0, 100_000
WARMUP_CITIZENS, WARMUP_DAYS = 2_000, 14
TIERS = ("A", "B", "C", "D")


def peak_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def panopticon_stats(sim, state) -> dict:
    """Final mean and spread of scores (points) and tier shares of a panopticon run."""
    import numpy as np

    scores = state.scores / 1000.0
    counts = np.bincount(state.tier, minlength=len(sim.policy.tier_names))
    return {"mean_score": float(scores.mean()), "score_sd": float(scores.std()),
            "shares": {t: float(c) / sim.n for t, c in zip(sim.policy.tier_names, counts, strict=True)}}


def child_panopticon(n: int, days: int, seed: int) -> dict:
    """Panopticon's reference preset: warm-up, then timed setup and day loop."""

    from panopticon import api, engine, tuning

    tuning.configure()  # as panopticon.run does before its first run

    preset = api.load("reference")
    warm = engine.build(preset.with_run(citizens=WARMUP_CITIZENS, days=WARMUP_DAYS, seed=seed))
    engine.run(warm, engine.initial_state(warm))
    del warm
    t0 = time.perf_counter()
    sim = engine.build(preset.with_run(citizens=n, days=days, seed=seed))
    state = engine.initial_state(sim)
    t1 = time.perf_counter()
    state = engine.run(sim, state)
    t2 = time.perf_counter()
    return {**panopticon_stats(sim, state), "setup_s": t1 - t0, "loop_s": t2 - t1,
            "threads": engine.default_threads(n)}


def child_spread(n: int, days: int, seed: int, seeds: int) -> dict:
    """Panopticon's final statistics for ``seeds`` consecutive seeds from ``seed`` (untimed)."""
    from panopticon import api, engine

    runs = []
    for s in range(seed, seed + seeds):
        sim = engine.build(api.load("reference").with_run(citizens=n, days=days, seed=s))
        runs.append(panopticon_stats(sim, engine.run(sim, engine.initial_state(sim))))
    return {"runs": runs}


def child_mesa(n: int, days: int, seed: int) -> dict:
    """The Mesa model (``reference_mesa.run_mesa``), one thread."""
    sys.path.insert(0, str(HERE))
    from reference_mesa import run_mesa

    return {**run_mesa(n, days, seed), "threads": 1}


def in_child(impl: str, n: int, days: int, seed: int, seeds: int = 1) -> dict:
    """Run ``impl`` in a fresh subprocess; its JSON result plus the process's wall time."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", impl, "--sizes", str(n),
           "--days", str(days), "--seed", str(seed), "--spread-seeds", str(seeds)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t0
    return result


def measure(impl: str, n: int, days: int, seed: int) -> dict:
    """One timed run of ``panopticon`` or ``mesa``, with its speed in citizen-days per second."""
    result = in_child(impl, n, days, seed)
    result.update(impl=impl, n=n, days=days, rate=n * days / result["loop_s"])
    return result


def per_size(values: list[int] | None, sizes: list[int], default) -> list[int]:
    """One value per size: a list as long as ``sizes``, one value for all, or ``default(n)``."""
    if values is None:
        return [default(n) for n in sizes]
    if len(values) == 1:
        return values * len(sizes)
    if len(values) != len(sizes):
        raise SystemExit(f"give one value or one per size ({len(sizes)}); got {values}")
    return values


def row(r: dict) -> str:
    """One line of the results table."""
    shares = " ".join(f"{r['shares'][t]:.4f}" for t in TIERS)
    return (f"{r['impl']:<11} {r['threads']:>3} {r['n']:>9,} {r['days']:>5} {r['setup_s']:>8.2f} "
            f"{r['loop_s']:>9.2f} {r['process_s']:>9.2f} {r['rate']:>12.3g} {r['peak_mib']:>8.0f} "
            f"{r['mean_score']:>9.2f}  {shares}")


def flatten(r: dict) -> dict[str, float]:
    """The compared statistics of one run: mean score, score sd and tier shares."""
    return {"mean": r["mean_score"], "sd": r["score_sd"], **{t: r["shares"][t] for t in TIERS}}


def agreement(runs: list[dict], mesa: dict) -> tuple[str, bool]:
    """Mesa's run against panopticon's runs over k seeds.

    For each statistic, z = (Mesa - mean of panopticon) / (s * sqrt(1 + 1/k)), where s is the
    seed-to-seed standard deviation of panopticon's runs, but at least what it would be if
    citizens were independent (score sd / sqrt(N) for the mean, score sd / sqrt(2N) for the
    sd, sqrt(p(1 - p) / N) for a share p), so that a few seeds that happen to agree closely do
    not shrink it. z is about Student-t with k - 1 degrees of freedom; |z| < 4 is about its
    two-sided 99.5% range for k = 8. Returns the summary line and whether every |z| < 4.
    """
    k, n = len(runs), mesa["n"]
    stats = [flatten(r) for r in runs]
    score_sd = sum(s["sd"] for s in stats) / k
    parts, ok = [], True
    for name, m in flatten(mesa).items():
        values = [s[name] for s in stats]
        mean = sum(values) / k
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
        if name == "mean":
            floor = score_sd / math.sqrt(n)
        elif name == "sd":
            floor = score_sd / math.sqrt(2 * n)
        else:
            p = (mean + m) / 2
            floor = math.sqrt(p * (1 - p) / n)
        s = max(sd, floor)
        if s > 0:
            z = (m - mean) / (s * math.sqrt(1 + 1 / k))
            ok &= abs(z) < 4
            parts.append(f"{name} {mean:.4g}±{sd:.2g} vs {m:.4g} (z {z:+.1f})")
        else:
            parts.append(f"{name} {mean:.4g} vs {m:.4g}")
    return "; ".join(parts), ok


def main() -> None:
    """Parse flags, run every implementation, print the table, ratios and agreement."""
    parser = argparse.ArgumentParser(description="Panopticon vs Mesa on the reference model.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                        help="citizens (default 10000 100000)")
    parser.add_argument("--days", type=int, nargs="+",
                        help="panopticon's days, one value or one per size (default 365)")
    parser.add_argument("--mesa-days", type=int, nargs="+",
                        help="Mesa's days, one value or one per size (default 365 up to 10k "
                             "citizens, else 30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spread-seeds", type=int, default=8,
                        help="panopticon runs (seeds) at Mesa's days for the comparison (default 8)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run (2000 citizens, 28 days) to check the script works")
    parser.add_argument("--child", choices=["panopticon", "mesa", "spread"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        n, d = args.sizes[0], args.days[0]
        if args.child == "spread":
            result = child_spread(n, d, args.seed, args.spread_seeds)
        else:
            result = (child_panopticon if args.child == "panopticon" else child_mesa)(n, d, args.seed)
        result["peak_mib"] = peak_mib()
        print(json.dumps(result))
        return
    if args.quick:
        args.sizes, args.days, args.mesa_days = [2_000], [28], [28]
    if args.spread_seeds < 2:
        parser.error("--spread-seeds must be at least 2")
    sizes = args.sizes
    days = per_size(args.days, sizes, lambda n: 365)
    mesa_days = per_size(args.mesa_days, sizes, lambda n: 365 if n <= 10_000 else 30)

    print(f"reference model; seed {args.seed}; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} "
          "(other work on the machine makes timings noisy)")
    print(f"{'impl':<11} {'thr':>3} {'N':>9} {'days':>5} {'setup s':>8} {'loop s':>9} "
          f"{'process s':>9} {'cit-days/s':>12} {'peak MiB':>8} {'mean':>9}  A      B      C      D",
          flush=True)
    ratios, agreed = {}, True
    for n, d_p, d_m in zip(sizes, days, mesa_days, strict=True):
        pano = measure("panopticon", n, d_p, args.seed)
        print(row(pano), flush=True)
        mesa = measure("mesa", n, d_m, args.seed)
        print(row(mesa), flush=True)
        ratios[n] = pano["rate"] / mesa["rate"]
        print(f"  N = {n:,}: ratio panopticon/Mesa = {ratios[n]:.0f}x citizen-days/s; "
              f"peak memory {pano['peak_mib'] / mesa['peak_mib']:.2f}x", flush=True)
        spread = in_child("spread", n, d_m, args.seed, args.spread_seeds)["runs"]
        line, ok = agreement(spread, mesa)
        agreed &= ok
        print(f"  after {d_m} days, panopticon over {len(spread)} seeds vs Mesa: {line}; "
              f"{'agree' if ok else 'DIFFER'} (|z| < 4)", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}; final statistics "
          f"{'agree' if agreed else 'DIFFER'}")
    if TARGET_N in ratios:
        met = "met" if ratios[TARGET_N] >= TARGET_RATIO else "NOT met"
        print(f"target {TARGET_RATIO:.0f}x Mesa at {TARGET_N:,} citizens: {ratios[TARGET_N]:.0f}x, {met}")
    else:
        print(f"target {TARGET_RATIO:.0f}x Mesa at {TARGET_N:,} citizens: not measured in this run")


if __name__ == "__main__":
    main()
