"""Panopticon against Mesa on the benchmark reference model (``shared/BENCHMARK.md``).

Both implementations run the same model at the same N, each in its own subprocess so that peak
memory (``ru_maxrss``) is its own. Panopticon runs its ``reference`` preset through
``engine.build`` / ``engine.initial_state`` (setup) and ``engine.run`` (the day loop), after a
small warm-up run in the same process so that Numba compilation is not in the loop time; the
whole-process time (interpreter start, imports, compilation) is reported too. Mesa
(``reference_mesa.py``) usually runs fewer days at large N; speed is compared per citizen-day,
and panopticon is also run for Mesa's days so the final mean score and tier shares can be
compared (they should agree within sampling noise).

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


def child_panopticon(n: int, days: int, seed: int) -> dict:
    """Panopticon's reference preset: warm-up, then timed setup and day loop."""
    import numpy as np

    from panopticon import api, engine

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
    scores = state.scores / 1000.0
    counts = np.bincount(state.tier, minlength=len(sim.policy.tier_names))
    return {"mean_score": float(scores.mean()), "score_sd": float(scores.std()),
            "shares": {t: float(c) / n for t, c in zip(sim.policy.tier_names, counts, strict=True)},
            "setup_s": t1 - t0, "loop_s": t2 - t1}


def child_mesa(n: int, days: int, seed: int) -> dict:
    """The Mesa model (``reference_mesa.run_mesa``)."""
    sys.path.insert(0, str(HERE))
    from reference_mesa import run_mesa

    return run_mesa(n, days, seed)


CHILDREN = {"panopticon": child_panopticon, "mesa": child_mesa}


def measure(impl: str, n: int, days: int, seed: int) -> dict:
    """Run one implementation in a fresh subprocess; its result plus process wall time and N."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", impl,
           "--sizes", str(n), "--days", str(days), "--seed", str(seed)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(impl=impl, n=n, days=days, process_s=time.perf_counter() - t0)
    result["rate"] = n * days / result["loop_s"]
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
    return (f"{r['impl']:<11} {r['n']:>9,} {r['days']:>5} {r['setup_s']:>8.2f} {r['loop_s']:>9.2f} "
            f"{r['process_s']:>9.2f} {r['rate']:>12.3g} {r['peak_mib']:>8.0f} "
            f"{r['mean_score']:>9.2f}  {shares}")


def agreement(p: dict, m: dict) -> str:
    """Mean score and tier shares of two runs at equal N and days, with the difference in units
    of its standard error (citizens treated as independent: a rough yardstick, |z| < 3 is fine)."""
    n = p["n"]
    se = math.sqrt((p["score_sd"] ** 2 + m["score_sd"] ** 2) / n)
    parts = [f"mean score {p['mean_score']:.2f} vs {m['mean_score']:.2f} "
             f"(z = {(p['mean_score'] - m['mean_score']) / se:+.1f})"]
    for t in TIERS:
        a, b = p["shares"][t], m["shares"][t]
        q = (a + b) / 2
        z = (a - b) / math.sqrt(2 * q * (1 - q) / n) if 0 < q < 1 else 0.0
        parts.append(f"{t} {a:.4f} vs {b:.4f} (z = {z:+.1f})")
    return "; ".join(parts)


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
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run (2000 citizens, 28 days) to check the script works")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = CHILDREN[args.child](args.sizes[0], args.days[0], args.seed)
        result["peak_mib"] = peak_mib()
        print(json.dumps(result))
        return
    if args.quick:
        args.sizes, args.days, args.mesa_days = [2_000], [28], [28]
    sizes = args.sizes
    days = per_size(args.days, sizes, lambda n: 365)
    mesa_days = per_size(args.mesa_days, sizes, lambda n: 365 if n <= 10_000 else 30)

    print(f"reference model; seed {args.seed}; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs (panopticon's kernels use them all, Mesa one)")
    print(f"{'impl':<11} {'N':>9} {'days':>5} {'setup s':>8} {'loop s':>9} {'process s':>9} "
          f"{'cit-days/s':>12} {'peak MiB':>8} {'mean':>9}  A      B      C      D", flush=True)
    ratios = {}
    for n, d_p, d_m in zip(sizes, days, mesa_days, strict=True):
        pano = measure("panopticon", n, d_p, args.seed)
        print(row(pano), flush=True)
        same = pano if d_m == d_p else measure("panopticon", n, d_m, args.seed)
        if same is not pano:
            print(row(same), flush=True)
        mesa = measure("mesa", n, d_m, args.seed)
        print(row(mesa), flush=True)
        ratios[n] = pano["rate"] / mesa["rate"]
        print(f"  N = {n:,}: ratio panopticon/Mesa = {ratios[n]:.0f}x citizen-days/s; "
              f"peak memory {pano['peak_mib'] / mesa['peak_mib']:.2f}x", flush=True)
        print(f"  after {d_m} days: {agreement(same, mesa)}", flush=True)
    if TARGET_N in ratios:
        met = "met" if ratios[TARGET_N] >= TARGET_RATIO else "NOT met"
        print(f"target {TARGET_RATIO:.0f}x Mesa at {TARGET_N:,} citizens: {ratios[TARGET_N]:.0f}x, {met}")
    else:
        print(f"target {TARGET_RATIO:.0f}x Mesa at {TARGET_N:,} citizens: not measured in this run")


if __name__ == "__main__":
    main()
