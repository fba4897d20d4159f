"""A scenario's digest identifies what a run computes: keys at their default are left out, so
writing a default out, or a key added by a later version at its default, changes no digest;
runs stored before (whose digest covered every key) are still read and still checked."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import build_scenario, merge, reseal

from panopticon import api
from panopticon.errors import UserError
from panopticon.scenario import ScenarioSpec, canonical_digest
from panopticon.store import local


def test_writing_a_default_out_changes_no_digest(tiny_data):
    """`survey_every`, no `responses` and `checkpoint_every` (which only changes how a run is
    written) spelled out: the same digest as leaving them out."""
    spelled = merge(tiny_data, {"run": {"checkpoint_every": 30},
                                "behaviour": {"responses": []}})
    spelled["run"]["survey_every"] = ScenarioSpec.model_fields["run"].default.survey_every
    assert build_scenario(spelled).digest == build_scenario(tiny_data).digest


def test_a_setting_that_changes_what_runs_compute_changes_the_digest(tiny_data):
    base = build_scenario(tiny_data).digest
    assert build_scenario(merge(tiny_data, {"run": {"seed": 8}})).digest != base
    assert build_scenario(merge(tiny_data, {"behaviour": {"responses": [
        {"when": "tier == 'C'", "events": ["red_light"], "factor": 0.9}]}})).digest != base


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    return api.run(build_scenario(), out=tmp_path_factory.mktemp("digest") / "runs").path


def test_a_run_whose_manifest_has_the_old_full_digest_is_still_read(stored, tmp_path):
    """The digest an earlier version recorded (every key of scenario.json, defaults too)
    identifies the stored file: read_scenario accepts it; a changed file is still refused."""
    run_dir = tmp_path / "old"
    shutil.copytree(stored, run_dir)
    data = json.loads((run_dir / "scenario.json").read_bytes())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["scenario_digest"] = canonical_digest(data)
    assert manifest["scenario_digest"] != build_scenario().digest
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    reseal(run_dir)
    assert local.read_scenario(run_dir, local.read_manifest(run_dir)).digest == \
        build_scenario().digest
    data["run"]["seed"] += 1
    (run_dir / "scenario.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="not the scenario this run was started with"):
        local.read_scenario(run_dir, local.read_manifest(run_dir))
