"""Shared fixtures: tiny inline scenarios (built the way a YAML file would be) and a seed."""

from __future__ import annotations

import copy

import pyarrow as pa
import pytest

from panopticon.errors import UserError
from panopticon.scenario import ScenarioSpec, scenario_from_data

TINY = {
    "schema_version": 1,
    "name": "tiny",
    "run": {"citizens": 400, "days": 14, "seed": 7, "checkpoint_every": 5},
    "behaviour": {
        "events": {
            "red_light": {"rate": 0.05, "min_age": 0},
            "late_loan_payment": {"rate": 0.03, "min_age": 0},
            "volunteering": {"rate": 0.04, "min_age": 0},
        },
        "deterrence": [{"tiers": ["C"], "events": ["red_light"], "factor": 0.9}],
    },
    "sensors": {
        "cameras": {"events": ["red_light"], "detection": 0.8, "misattribution": 0.05,
                    "phantom_rate": 0.002, "false_match_multipliers": {"group": {"minority": 10}}},
        "payments": {"events": ["late_loan_payment"], "detection": 0.9},
        "civic": {"events": ["volunteering"], "detection": 0.7},
    },
    "policy": {
        "name": "tiny",
        "score": {"start": 100, "min": 0, "max": 120},
        "rules": [{"event": "red_light", "points": -5}, {"event": "late_loan_payment", "points": -2},
                  {"event": "volunteering", "points": 3}],
        "tiers": [{"name": "A", "min": 101}, {"name": "B", "min": 95}, {"name": "C"}],
        "association": [{"ties": "friends", "weight": 0.25, "every_days": 3}],
    },
}


def merge(base: dict, changes: dict) -> dict:
    """A deep copy of ``base`` with ``changes`` merged in (nested dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def build_scenario(data: dict | None = None, **changes) -> ScenarioSpec:
    """A validated scenario from an inline dict (default: :data:`TINY`) with ``changes`` merged in."""
    return scenario_from_data(merge(TINY if data is None else data, changes), {}, "<test>")


@pytest.fixture
def seed() -> int:
    """A fixed root seed for statistical tests."""
    return 20240611


@pytest.fixture
def tiny_data() -> dict:
    """The tiny scenario as plain data (a fresh copy per test)."""
    return copy.deepcopy(TINY)


@pytest.fixture
def tiny() -> ScenarioSpec:
    """The tiny scenario: 400 citizens, 14 days, three behaviours, errors, association, deterrence."""
    return build_scenario()


def start_preset(name: str, citizens: int = 300, days: int = 3000, seed: int | None = None,
                 **policy_changes):
    """A packaged preset's simulation and its day-0 state, with policy keys replaced through
    the scenario validator (e.g. ``scope={"exempt": "rank >= 1"}``)."""
    from panopticon import engine
    from panopticon.scenario import load_preset

    spec = load_preset(name).with_run(citizens=citizens, days=days, seed=seed)
    if policy_changes:
        data = spec.model_dump(mode="json")
        data["policy"].update(policy_changes)
        spec = scenario_from_data(data, {}, "<test>")
    sim = engine.build(spec)
    return sim, engine.initial_state(sim)


def policy_day(sim, state, planted=(), is_true: bool = True):
    """One policy day (``engine.apply_policy``) with planted (citizen, event) observations."""
    import numpy as np

    from panopticon import engine
    from panopticon.sensors import Observations

    citizen = np.asarray([c for c, _ in planted], np.int32)
    event = np.asarray([sim.events.index(e) for _, e in planted], np.int16)
    obs = Observations(citizen, event, np.zeros(len(citizen), np.int8),
                       np.full(len(citizen), is_true), citizen)
    out = engine.apply_policy(sim, state, obs)
    state.day += 1
    return out


def adults(sim, k: int) -> list[int]:
    """The first ``k`` citizens aged 18 or more."""
    import numpy as np

    return [int(i) for i in np.flatnonzero(sim.society.population.age >= 18)[:k]]


def tier_name(sim, state, i: int) -> str:
    """Citizen i's tier, by name."""
    return sim.policy.tier_names[state.tier[i]]


def reseal(run_dir) -> None:
    """Play an attacker who can rewrite the manifest too: record every file now in the run's
    table folders (and its top-level files) with its current size and SHA-256, as if the run
    had written them."""
    import json

    from panopticon.store.local import TABLES, sha256_of

    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    files = {}
    for rel in manifest["files"]:
        if (run_dir / rel).is_file() and "/" not in rel:
            files[rel] = [(run_dir / rel).stat().st_size, sha256_of(run_dir / rel)]
    for table in TABLES:
        for p in sorted((run_dir / table).glob("part-*.parquet")):
            files[f"{table}/{p.name}"] = [p.stat().st_size, sha256_of(p)]
    manifest["files"] = files
    path.write_text(json.dumps(manifest, indent=2))


class FakeRun:
    """A run with hand-built tables (an in-memory RunResult look-alike): ``table(name)``,
    ``manifest``, no path."""

    def __init__(self, manifest=None, **tables):
        self.manifest = manifest or {}
        self.path = None
        self.tables = {k: pa.table(v) for k, v in tables.items()}

    def table(self, name):
        if name not in self.tables:
            raise UserError(f"no table {name!r}")
        return self.tables[name]


class StopAfter:
    """A progress sink that presses Ctrl-C after ``days`` days."""

    def __init__(self, days: int):
        self.days = days

    def day(self, record, state):
        if record.day + 1 >= self.days:
            raise KeyboardInterrupt

    def checkpoint(self, state):
        pass
