"""How a panopticon scenario (default ``seed_article``; ``--scenario NAME`` for any preset) scales
with the number of citizens.

Each size runs in its own subprocess, after a small warm-up run there so that Numba compilation
is not timed, and reports setup and day-loop seconds, seconds per simulated day, peak resident
memory (``ru_maxrss``) and bytes per citizen: the peak above the process's footprint after the
warm-up (interpreter, libraries, compiled kernels), and what the society and state arrays hold.
Growth per 10x citizens should be about 10x for both time and memory (linear).

By default the run is in memory (``engine.build`` + ``engine.run(sim, state, sink=None)``), so
no store I/O is measured; ``--store`` runs ``panopticon.api.run(..., out=tmpdir)`` instead,
writing the full run store (Parquet tables, checkpoints) to a temporary folder.

``--shards K`` runs each size split into K shards on a local Ray cluster of K CPUs
(``panopticon.shards.run``, in memory); its loop time includes starting the shards' actors,
and its peak memory is the proportional memory (PSS) summed over the driver, Ray and the
shards' workers (sampled every 0.2 s), against the unsharded run's one process.

    python benchmarks/scale.py                         # 1e5, 1e6 (365 days), 1e7 (30 days)
    python benchmarks/scale.py --sizes 100000 --days 30 --store
    python benchmarks/scale.py --scenario reference --sizes 1000000 10000000 --days 30 --shards 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from vs_mesa import per_size  # a sibling script (benchmarks/ is on sys.path when run)

SCENARIO = "seed_article"
WARMUP_CITIZENS, WARMUP_DAYS = 2_000, 14
LONG_RUN_LIMIT = 10_000_000
"""From this many citizens the default is 30 days, not 365."""


def peak_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def folder_bytes(path: Path) -> int:
    """Total size of the files under a folder."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tree_peak_bytes(stop: threading.Event, peak: list[int]) -> None:
    """Until ``stop``: the largest summed proportional memory (PSS: a page shared by k
    processes, as Ray's object store is, counts 1/k in each) of this process and every
    process under it (a local Ray cluster's raylet and workers), sampled every 0.2 s, in
    ``peak[0]``."""
    import psutil

    me = psutil.Process()
    while not stop.wait(0.2):
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_full_info().pss
            except psutil.Error:  # gone between listing and reading
                pass
        peak[0] = max(peak[0], total)


def sharded(spec, warm, shards: int) -> dict:
    """One size split into ``shards`` on a local Ray cluster, in memory: the timed run after
    an unsharded warm-up (compilation), with the peak summed over its processes."""
    from panopticon import engine
    from panopticon import shards as sharding
    from panopticon.cluster import ray_session

    warm_sim = engine.build(warm)
    engine.run(warm_sim, engine.initial_state(warm_sim))
    with ray_session(None, shards, "--shards"):
        stop, peak = threading.Event(), [0]
        sampler = threading.Thread(target=tree_peak_bytes, args=(stop, peak), daemon=True)
        sampler.start()
        baseline_wait = time.perf_counter() + 1.0  # the cluster's own footprint, settled
        while time.perf_counter() < baseline_wait:
            time.sleep(0.2)
        baseline = peak[0]
        t0 = time.perf_counter()
        sim = engine.build(spec)
        state = engine.initial_state(sim)
        t1 = time.perf_counter()
        sharding.run(sim, state, None, shards)
        t2 = time.perf_counter()
        stop.set()
        sampler.join()
    return {"store_bytes": None, "held_bytes": None, "setup_s": t1 - t0, "loop_s": t2 - t1,
            "baseline_bytes": baseline, "peak_bytes": peak[0]}


def child(n: int, days: int, seed: int, store: bool, scenario: str = SCENARIO,
          shards: int | None = None) -> dict:
    """One size: warm-up, then the timed run, in memory or into a temporary run store."""
    from panopticon import api, engine, tuning

    tuning.configure()  # as panopticon.run does before its first run

    spec = api.load(scenario).with_run(citizens=n, days=days, seed=seed)
    warm = spec.with_run(citizens=WARMUP_CITIZENS, days=WARMUP_DAYS)
    out = {"store_bytes": None, "held_bytes": None}
    if shards:
        return sharded(spec, warm, shards)
    if store:
        with tempfile.TemporaryDirectory(prefix="panopticon-scale-") as tmp:
            api.run(warm, out=tmp)
            out["baseline_bytes"] = peak_bytes()
            result = api.run(spec, out=tmp)
            out.update(result.manifest["timings"], store_bytes=folder_bytes(result.path))
    else:
        warm_sim = engine.build(warm)
        engine.run(warm_sim, engine.initial_state(warm_sim))
        del warm_sim
        out["baseline_bytes"] = peak_bytes()
        t0 = time.perf_counter()
        sim = engine.build(spec)
        state = engine.initial_state(sim)
        t1 = time.perf_counter()
        state = engine.run(sim, state, sink=None)
        t2 = time.perf_counter()
        arrays = sum(getattr(state, k).nbytes for k in (*state.ARRAYS, "total", "p0"))
        out.update(setup_s=t1 - t0, loop_s=t2 - t1, held_bytes=sim.society.nbytes + arrays)
    out["peak_bytes"] = peak_bytes()
    return out


def measure(n: int, days: int, seed: int, store: bool, scenario: str = SCENARIO,
            shards: int | None = None) -> dict | str:
    """Run one size in a fresh subprocess: its result plus process wall time, or, if the run
    failed, the last line of its error output."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--sizes", str(n),
           "--days", str(days), "--seed", str(seed), "--scenario", scenario,
           *(["--store"] if store else []), *(["--shards", str(shards)] if shards else [])]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        return lines[-1]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(n=n, days=days, process_s=time.perf_counter() - t0)
    result["per_day_s"] = result["loop_s"] / days
    result["grown_bytes"] = result["peak_bytes"] - result["baseline_bytes"]
    return result


def row(r: dict) -> str:
    """One line of the results table."""
    mib = 2 ** 20
    held = f"{r['held_bytes'] / r['n']:>9.0f}" if r["held_bytes"] is not None else f"{'-':>9}"
    store = f"{r['store_bytes'] / mib:>9.1f}" if r["store_bytes"] is not None else f"{'-':>9}"
    return (f"{r['n']:>11,} {r['days']:>5} {r['setup_s']:>8.2f} {r['loop_s']:>9.2f} "
            f"{r['per_day_s']:>9.4f} {r['n'] * r['days'] / r['loop_s']:>11.3g} "
            f"{r['peak_bytes'] / mib:>9.0f} {r['grown_bytes'] / r['n']:>9.0f} {held} {store} "
            f"{r['process_s']:>9.1f}")


def growth(a: dict, b: dict) -> str:
    """Growth of time per day and of memory from one size to the next, scaled to 10x citizens."""
    decades = math.log10(b["n"] / a["n"])

    def per10(x: float, y: float) -> str:
        return f"{(y / x) ** (1 / decades):.2f}x" if x > 0 and y > 0 and decades > 0 else "n/a"

    return (f"{a['n']:,} -> {b['n']:,}: per 10x citizens, seconds per day grow "
            f"{per10(a['per_day_s'], b['per_day_s'])}, memory (peak above baseline) "
            f"{per10(a['grown_bytes'], b['grown_bytes'])} (10x = linear)")


def main() -> None:
    """Parse flags, run every size, print the table and growth ratios."""
    parser = argparse.ArgumentParser(description="Scaling of a scenario with the number of citizens.")
    parser.add_argument("--scenario", default=SCENARIO, help="a preset name or YAML path")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000],
                        help="citizens (default 1e5 1e6 1e7)")
    parser.add_argument("--days", type=int, nargs="+",
                        help="days, one value or one per size (default 365; 30 from 1e7)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--store", action="store_true",
                        help="run through panopticon.api.run(out=tmpdir), writing the run store")
    parser.add_argument("--shards", type=int,
                        help="split each run into this many shards on a local Ray cluster")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.shards and args.store:
        parser.error("--shards runs in memory: give it without --store")

    if args.child:
        print(json.dumps(child(args.sizes[0], args.days[0], args.seed, args.store, args.scenario,
                               args.shards)))
        return
    days = per_size(args.days, args.sizes, lambda n: 365 if n < LONG_RUN_LIMIT else 30)
    mode = "writing the run store (api.run, out=tmpdir)" if args.store else "in memory, no sink"
    if args.shards:
        mode += (f", {args.shards} shards on a local Ray cluster (peak: PSS of the driver, "
                 "Ray and workers summed)")
    print(f"scenario {args.scenario}, seed {args.seed}, {mode}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} (other work on the machine makes timings noisy)")
    print("B/cit: peak RSS above the post-warm-up baseline, per citizen; held: society + state "
          "arrays per citizen")
    print(f"{'citizens':>11} {'days':>5} {'setup s':>8} {'loop s':>9} {'s/day':>9} {'cit-days/s':>11} "
          f"{'peak MiB':>9} {'B/cit':>9} {'held B/c':>9} {'store MiB':>9} {'process s':>9}",
          flush=True)
    results, failed = [], False
    for n, d in zip(args.sizes, days, strict=True):
        result = measure(n, d, args.seed, args.store, args.scenario, args.shards)
        if isinstance(result, str):
            failed = True
            print(f"{n:>11,} {d:>5} FAILED: {result}", flush=True)
        else:
            results.append(result)
            print(row(result), flush=True)
    for a, b in zip(results, results[1:], strict=False):
        print(growth(a, b))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
