"""A stored run writes its days as parts once they fill ``run.write_buffer_mb``, without
waiting for a checkpoint: memory is bounded by the buffer, the results (fingerprint, every
table) are those of a run that buffers whole checkpoint intervals, and a run stopped between
a flush and its checkpoint resumes from the checkpoint as if never stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY, StopAfter, merge

from panopticon import api
from panopticon.audit import audit
from panopticon.scenario import ScenarioSpec
from panopticon.store import local

DAYS = 24


def _spec(buffer_mb: float, checkpoint_every: int = 10) -> ScenarioSpec:
    data = merge(TINY, {"name": "streamed", "run": {
        "citizens": 3000, "days": DAYS, "seed": 5, "checkpoint_every": checkpoint_every,
        "write_buffer_mb": buffer_mb}})
    return ScenarioSpec.model_validate(data)


def _parts(run_dir: Path, table: str = "ledger") -> list[str]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return sorted(rel for rel in manifest["files"] if rel.startswith(f"{table}/"))


def _rows(result, table: str) -> list[tuple]:
    frame = result.table(table).to_pandas()
    return sorted(map(tuple, frame.astype(str).itertuples(index=False)))


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The run buffering whole checkpoint intervals (the default buffer is far larger)."""
    return api.run(_spec(256.0), out=tmp_path_factory.mktemp("whole"))


def test_a_small_buffer_writes_a_part_per_day_with_the_same_results(whole, tmp_path):
    streamed = api.run(_spec(0.000001), out=tmp_path)
    assert len(_parts(whole.path)) == 3  # days 0-9, 10-19, 20-23
    assert len(_parts(streamed.path)) == DAYS  # every day flushed on its own
    assert streamed.manifest["result"]["fingerprint"] == whole.manifest["result"]["fingerprint"]
    for table in ("ledger", "observations", "daily", "refusals"):
        assert _rows(api.open_run(streamed.path), table) == _rows(api.open_run(whole.path), table)
    assert audit(streamed.path, full=True)["intact"]


def test_the_buffer_is_a_writing_setting_not_part_of_the_scenarios_identity():
    assert _spec(0.5).digest == _spec(256.0).digest == _spec(256.0, checkpoint_every=3).digest


def test_parts_flushed_after_the_last_checkpoint_are_not_listed_and_resume_rewrites_them(
        whole, tmp_path):
    """Stopped on day 16 with a checkpoint at day 10 and a part per day since: the manifest
    lists days 0-9 only, readers see a whole interrupted run, and the resume ends with the
    uninterrupted fingerprint."""
    with pytest.raises(KeyboardInterrupt):
        api.run(_spec(0.000001), out=tmp_path, progress=StopAfter(16))
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "manifest.json").exists()]
    manifest = local.read_manifest(run_dir)
    assert manifest["status"] == "interrupted" and manifest["days_completed"] == 10
    on_disk = sorted(p.name for p in (run_dir / "ledger").glob("part-*.parquet"))
    assert len(on_disk) > len(_parts(run_dir)) == 10  # flushed days 10-15 not listed
    local.open_checked(run_dir)  # not damaged: unlisted parts after the checkpoint
    resumed = api.resume(run_dir)
    assert resumed.manifest["result"]["fingerprint"] == whole.manifest["result"]["fingerprint"]
    assert len(_parts(run_dir)) == DAYS
    assert audit(run_dir, full=True)["intact"]
