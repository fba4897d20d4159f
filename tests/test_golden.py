"""Golden fingerprints: every preset and example, run small in memory, must come out bit for
bit as recorded in ``tests/golden/fingerprints.json``.

A run's fingerprint (``RunResult.manifest["result"]["fingerprint"]``) binds its final state,
its ledger and every table it wrote, so one changed bit anywhere (a kernel moved, a loop
reordered, a random stream shifted) changes it. The test recomputes all of them and names
every scenario whose fingerprint differs; for each it also says whether the scenario's own
digest changed (a preset or the scenario schema was edited: a new golden file is then
expected) or only the results did (the code changed what a run computes).

Regenerating the golden file is a deliberate act, never a side effect of a failing test: run
this module with ``PANOPTICON_REGOLD=1``::

    PANOPTICON_REGOLD=1 .venv/bin/pytest -q tests/test_golden.py

which rewrites the file from the current code (and the test then passes). Do it only after
checking that the change in results is intended.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import panopticon as pc
from panopticon.scenario import load_preset, load_scenario, preset_names

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "fingerprints.json"
CITIZENS, DAYS = 20_000, 200
"""Small enough that all scenarios together take about ten seconds once the kernels are compiled,
large enough that every stage (ties, lists, appeals, loans, rewiring) has work to do."""


def _scenarios() -> dict:
    specs = {f"preset:{name}": load_preset(name) for name in preset_names()}
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        specs[f"example:{path.stem}"] = load_scenario(path)
    return specs


def _fingerprints() -> dict[str, dict[str, str]]:
    out = {}
    for name, spec in _scenarios().items():
        spec = spec.with_run(citizens=CITIZENS, days=DAYS)
        result = pc.run(spec).manifest["result"]
        out[name] = {"fingerprint": result["fingerprint"],
                     "state_fingerprint": result["state_fingerprint"],
                     "scenario_digest": spec.digest}
    return out


def test_fingerprints_match_the_golden_file():
    now = _fingerprints()
    if os.environ.get("PANOPTICON_REGOLD") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps({"citizens": CITIZENS, "days": DAYS, "runs": now},
                                     indent=2, sort_keys=True) + "\n")
        return
    if not GOLDEN.exists():
        pytest.fail(f"no golden file {GOLDEN}; make it with PANOPTICON_REGOLD=1")
    golden = json.loads(GOLDEN.read_text())
    assert (golden["citizens"], golden["days"]) == (CITIZENS, DAYS), \
        "the golden file was made at other sizes: regenerate it with PANOPTICON_REGOLD=1"
    was = golden["runs"]
    problems = []
    for name in sorted(set(was) | set(now)):
        if name not in now:
            problems.append(f"{name}: in the golden file, no longer a preset or example")
        elif name not in was:
            problems.append(f"{name}: new scenario, not in the golden file")
        elif now[name]["fingerprint"] != was[name]["fingerprint"]:
            why = ("its scenario digest changed too (the preset or the scenario schema was "
                   "edited)" if now[name]["scenario_digest"] != was[name]["scenario_digest"]
                   else "same scenario, different results")
            state = ("final state differs" if now[name]["state_fingerprint"]
                     != was[name]["state_fingerprint"] else "final state equal, tables differ")
            problems.append(f"{name}: fingerprint {now[name]['fingerprint'][:16]}... != golden "
                            f"{was[name]['fingerprint'][:16]}...: {why}; {state}")
    for line in problems:
        print(line)
    assert not problems, f"{len(problems)} of {len(now)} runs differ from the golden file:\n" \
        + "\n".join(problems)
