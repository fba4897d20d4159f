"""Memory: a run's peak is estimated from the scenario before anything is allocated, linear in
citizens and an upper bound of measured peaks; a run (or a sweep's concurrent runs) that
would not fit is refused with both figures, unless forced; the memory available respects a
cgroup limit."""

from __future__ import annotations

import time

import pytest
from conftest import build_scenario
from typer.testing import CliRunner

import panopticon as pc
import panopticon.resources as resources
from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.resources import (
    BASE_BYTES,
    available_bytes,
    cgroup_room,
    check_memory,
    estimate_peak_bytes,
)
from panopticon.sweeps import Setting, run_sweep

GB = 1e9


def seed_article(citizens: int, days: int = 365):
    return pc.load("seed_article").with_run(citizens=citizens, days=days)


def test_the_estimate_is_a_fixed_base_plus_a_constant_cost_per_citizen():
    """Equal steps in citizens add equal bytes (to rounding), on top of the fixed base, while
    a checkpoint interval's records fit the write buffer (beyond, the buffer bounds them)."""
    a, b, c = (estimate_peak_bytes(seed_article(n)) for n in (10_000, 20_000, 30_000))
    assert BASE_BYTES < a < b < c
    assert abs((c - b) - (b - a)) <= 2
    assert estimate_peak_bytes(seed_article(1)) - BASE_BYTES < 100_000


def test_the_per_citizen_cost_grows_with_the_scenarios_size_drivers(tiny_data):
    """More event types, denser friendships, opportunities, a longer run and more recorded
    events each cost more per citizen."""
    base = build_scenario(tiny_data)
    bigger = [
        build_scenario(tiny_data, behaviour={"events": {**tiny_data["behaviour"]["events"],
                                                        "jaywalking": {"rate": 0.0}}}),
        build_scenario(tiny_data, society={"ties": {"friends": {"mean_degree": 40}}}),
        build_scenario(tiny_data, opportunities={"flight": {}}),
        build_scenario(tiny_data, run={"days": 300}),
        build_scenario(tiny_data, sensors={"cameras": {"phantom_rate": 0.5}}),
        # a second source of red lights makes a second record of each
        build_scenario(tiny_data, sensors={"police": {"events": ["red_light"],
                                                      "detection": 0.9}}),
    ]
    for spec in bigger:
        assert estimate_peak_bytes(spec) > estimate_peak_bytes(base)


# Measured peaks (MB, /usr/bin/time; see the module docstring).
MEASURED = [("seed_article", 1_000_000, 5, 629), ("seed_article", 3_000_000, 5, 1359),
            ("seed_article", 1_000_000, 30, 1010), ("seed_article", 1_000_000, 365, 958),
            ("seed_article", 100_000, 365, 437), ("seed_article", 10_000_000, 30, 3725),
            ("reference", 1_000_000, 30, 953), ("reference", 1_000_000, 365, 960),
            ("reference", 300_000, 365, 664), ("reference", 10_000_000, 30, 3369),
            ("court_blacklist", 3_000_000, 5, 1033), ("nosedive", 1_000_000, 30, 976),
            ("nosedive", 1_000_000, 365, 1022), ("rongcheng_points", 1_000_000, 365, 628),
            ("suining_2010", 1_000_000, 365, 583), ("sesame_commercial", 1_000_000, 30, 664)]


@pytest.mark.parametrize(("preset", "citizens", "days", "mb"), MEASURED)
def test_the_estimate_is_never_below_a_measured_peak_and_at_most_55_percent_above(
        preset, citizens, days, mb):
    """The estimate bounds what was measured, without being far above."""
    estimate = estimate_peak_bytes(pc.load(preset).with_run(citizens=citizens, days=days))
    assert mb * 1e6 <= estimate <= 1.55 * mb * 1e6


def test_the_records_held_are_bounded_by_the_write_buffer_not_the_run():
    """A longer run, or a larger population, holds no more days of records than fill the
    write buffer: the estimate of 10 million citizens for 30 days stays near its state."""
    big = seed_article(10_000_000, days=30)
    assert resources.buffered_days(big) < 5
    assert estimate_peak_bytes(seed_article(1_000_000, 365)) < \
        estimate_peak_bytes(seed_article(1_000_000, 30)) * 1.2
    assert estimate_peak_bytes(big) < 5e9  # measured 3.7 GB


def test_a_200_million_citizen_run_is_refused_at_once_naming_the_estimate(monkeypatch):
    """seed_article at 200,000,000 citizens on a 64 GB machine: refused in well under a
    second, with the estimate and the memory available in GB and --force named."""
    monkeypatch.setattr(resources, "available_bytes", lambda: int(64 * GB))
    spec = seed_article(200_000_000)
    t0 = time.perf_counter()
    with pytest.raises(UserError) as err:
        check_memory(spec)
    assert time.perf_counter() - t0 < 1.0
    message = str(err.value)
    assert f"{estimate_peak_bytes(spec) / GB:.1f} GB" in message
    assert "64.0 GB" in message and "--force" in message and "200,000,000" in message


def test_force_skips_the_memory_check(monkeypatch):
    """With force nothing is checked, however little memory there is."""
    monkeypatch.setattr(resources, "available_bytes", lambda: 1)
    check_memory(seed_article(200_000_000), force=True)


def test_a_run_that_fits_passes_the_check(monkeypatch):
    monkeypatch.setattr(resources, "available_bytes", lambda: int(64 * GB))
    check_memory(seed_article(100_000))


def test_the_memory_available_is_a_positive_number_of_bytes():
    assert available_bytes() > 0


def test_a_cgroup_limit_caps_the_memory_available(tmp_path):
    """v2: the tightest memory.max of this process's group and those above it, less the
    group's anonymous memory (cache can be reclaimed); 'max' is no limit."""
    root = tmp_path / "cgroup"
    (root / "a" / "b").mkdir(parents=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/a/b\n")
    assert cgroup_room(root, proc) is None
    (root / "a" / "memory.max").write_text("4000000000\n")
    (root / "a" / "memory.stat").write_text("anon 1000000000\nfile 2500000000\n")
    (root / "a" / "b" / "memory.max").write_text("max\n")
    assert cgroup_room(root, proc) == 3_000_000_000
    (root / "a" / "b" / "memory.max").write_text("2000000000\n")
    (root / "a" / "b" / "memory.current").write_text("500000000\n")
    assert cgroup_room(root, proc) == 1_500_000_000


def test_a_sweep_needs_memory_for_all_its_concurrent_runs_before_starting_any(
        tmp_path, tiny_data, monkeypatch):
    """Room for one run but not two: 2 workers are refused before any run starts (naming
    the concurrent runs); --force, or one worker, runs."""
    spec = build_scenario(tiny_data, run={"days": 3})
    monkeypatch.setattr(resources, "available_bytes",
                        lambda: int(estimate_peak_bytes(spec) * 1.5))
    setting = [Setting("run.seed", (1, 2))]
    with pytest.raises(UserError, match="2 concurrent runs"):
        run_sweep(spec, setting, 1, tmp_path / "two", workers=2, limit_to_cpus=False)
    assert not (tmp_path / "two").exists()
    report = run_sweep(spec, setting, 1, tmp_path / "one", workers=1)
    assert len(report["runs"]) == 2
    report = run_sweep(spec, setting, 1, tmp_path / "forced", workers=2, force=True,
                       limit_to_cpus=False)
    assert len(report["runs"]) == 2


def test_the_sweep_command_refuses_what_does_not_fit_and_force_runs_it(tmp_path, monkeypatch):
    """200 million citizens on a 64 GB machine: exit 2 at once with the estimate and
    --force, nothing written; a small sweep on a machine said to have no room is refused,
    and runs with --force."""
    runner = CliRunner()
    monkeypatch.setattr(resources, "available_bytes", lambda: int(64 * GB))
    big = runner.invoke(app, ["sweep", "seed_article", "--set", "run.seed=1", "--replicates",
                              "1", "--citizens", "200000000", "--out", str(tmp_path)])
    assert big.exit_code == 2 and "GB" in big.output and "--force" in big.output
    assert not any(tmp_path.iterdir())
    monkeypatch.setattr(resources, "available_bytes", lambda: 1)
    args = ["sweep", "reference", "--set", "run.seed=1", "--replicates", "1", "--citizens",
            "300", "--days", "3", "--out", str(tmp_path), "--json"]
    assert runner.invoke(app, args).exit_code == 2
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
