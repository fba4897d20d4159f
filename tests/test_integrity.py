"""A stored run is whole and untampered, or every command says it is not.

Each test plays a user whose machine crashed or an attacker with write access to the store,
and checks that the damage is refused (exit 2, naming the file) or found by the audit (exit 1,
naming the day and table), never passed off as a valid result.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import StopAfter, build_scenario, reseal
from typer.testing import CliRunner

from panopticon import api
from panopticon.audit import audit
from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.scenario import load_preset
from panopticon.store import local

runner = CliRunner()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, tiny_data_module):
    """A complete tiny run (400 citizens, 14 days, checkpoints every 5 days), kept untouched."""
    root = tmp_path_factory.mktemp("pristine")
    return api.run(build_scenario(tiny_data_module), out=root / "runs").path


@pytest.fixture(scope="module")
def tiny_data_module():
    from conftest import TINY

    return TINY


@pytest.fixture
def run_dir(pristine, tmp_path):
    """A fresh copy of the pristine run to damage."""
    return shutil.copytree(pristine, tmp_path / "runs" / pristine.name)


@pytest.fixture
def stopped(tmp_path, tiny_data_module):
    """A run interrupted after day 11: its checkpoint holds days 0-9."""
    with pytest.raises(KeyboardInterrupt):
        api.run(build_scenario(tiny_data_module), out=tmp_path / "runs", progress=StopAfter(12))
    (path,) = (tmp_path / "runs").iterdir()
    assert local.read_manifest(path)["days_completed"] == 10
    return path


def _snapshot_of(folder) -> dict[str, str]:
    """Every file of a folder and what it holds (to show nothing was changed)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def _edit_part(part, column: str, change) -> None:
    table = pq.read_table(part)
    values = change(table.column(column).to_numpy(zero_copy_only=False).copy())
    pq.write_table(table.set_column(table.schema.get_field_index(column), column,
                                    pa.array(values)), part)


def _kinds(report: dict) -> set[str]:
    return {f["kind"] for f in report["findings"]}


# ----------------------------------------------------------------- 1. every table is covered
def test_a_deleted_part_makes_every_reader_refuse_the_run_naming_it(run_dir):
    """Delete daily/part-00005-00009: `runs` says damaged, the API, compare, query and explain
    refuse with exit 2 naming the part, and the audit exits 1 naming it."""
    part = run_dir / "daily" / "part-00005-00009.parquet"
    part.unlink()
    store = run_dir.parent
    (listed,) = local.list_runs(store)
    assert listed["status"] == "damaged" and part.name in listed["note"]
    with pytest.raises(UserError, match="part-00005-00009"):
        api.open_run(run_dir)
    for args in (["compare", str(run_dir), str(run_dir)],
                 ["explain", str(run_dir), "-c", "3"],
                 ["query", "select count(*) from daily", "--out", str(store)],
                 ["report", str(run_dir), "--html", str(store / "r.html")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "part-00005-00009" in result.output or run_dir.name in result.output, args
    result = runner.invoke(app, ["audit", str(run_dir)])
    assert result.exit_code == 1 and "part-00005-00009.parquet: missing" in result.output


def test_a_stray_part_copied_into_a_run_is_refused(run_dir):
    """A part the run did not write (a copy under another day range) would shift every mean:
    readers refuse the run, naming the stray file."""
    shutil.copy(run_dir / "daily" / "part-00000-00004.parquet",
                run_dir / "daily" / "part-00015-00019.parquet")
    with pytest.raises(UserError, match="part-00015-00019.parquet: not written by the run"):
        api.open_run(run_dir).daily  # noqa: B018


def test_zeroed_wrongful_counts_are_found_by_day_and_table_even_when_the_files_are_resealed(
        run_dir):
    """An attacker zeroes a table's counts and records the new files' hashes in the manifest:
    readers cannot tell by the files, but the audit finds that day's rows no longer hash to
    their digest, and the fingerprint no longer binds them; the replay says so too."""
    part = run_dir / "events" / "part-00005-00009.parquet"
    _edit_part(part, "false_observations", lambda v: np.zeros_like(v))
    reseal(run_dir)
    api.open_run(run_dir).events  # noqa: B018 - the cheap check cannot see it
    report = audit(run_dir, full=True)
    assert not report["intact"]
    days = sorted({f["day"] for f in report["findings"] if f["kind"] == "digest"})
    assert days and set(days) <= {5, 6, 7, 8, 9}
    assert all("events day" in f["detail"] for f in report["findings"] if f["kind"] == "digest")
    assert "fingerprint" in _kinds(report)
    assert {f["day"] for f in report["replay_findings"]} == set(days)


def test_the_fingerprint_does_not_depend_on_checkpointing_and_binds_the_stored_tables(
        tmp_path, tiny_data_module):
    """Checkpoints every 3 or 7 days, stored or in memory: one fingerprint; the stored rows it
    binds are those of every table (its content head is part of it)."""
    prints = set()
    for every in (3, 7):
        spec = build_scenario(tiny_data_module, run={"checkpoint_every": every})
        prints.add(api.run(spec, out=tmp_path / "runs").manifest["result"]["fingerprint"])
        prints.add(api.run(spec).manifest["result"]["fingerprint"])
    assert len(prints) == 1


# ----------------------------------------------------------------- 2. resume checks first
@pytest.mark.parametrize("damage", ["deleted part", "other seed", "day 9999", "short scores",
                                    "truncated checkpoint", "empty checkpoint", "missing key"])
def test_resume_refuses_a_damaged_run_before_changing_anything(stopped, damage):
    """Each damage is refused with a message naming it, exit 2, and the folder is unchanged."""
    manifest = json.loads((stopped / "manifest.json").read_text())
    checkpoint = stopped / manifest["checkpoint"]["file"]
    if damage == "deleted part":
        (stopped / "ledger" / "part-00000-00004.parquet").unlink()
        expect = "part-00000-00004.parquet: missing"
    elif damage == "other seed":
        scenario = json.loads((stopped / "scenario.json").read_text())
        scenario["run"]["seed"] = 8
        (stopped / "scenario.json").write_text(json.dumps(scenario, indent=2))
        reseal(stopped)
        expect = "not the scenario this run was started with"
    elif damage in ("day 9999", "short scores", "missing key"):
        with np.load(checkpoint) as data:
            arrays = {k: data[k] for k in data.files}
        if damage == "day 9999":
            arrays["day"] = np.int64(9999)
            expect = "its day is not the manifest's days_completed"
        elif damage == "short scores":
            arrays["scores"] = arrays["scores"][:100]
            expect = "scores: shape"
        else:
            del arrays["tier"]
            expect = "tier: missing"
        np.savez(checkpoint, **arrays)
        reseal(stopped)
    elif damage == "truncated checkpoint":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
        reseal(stopped)
        expect = "corrupt checkpoint"
    else:
        checkpoint.write_bytes(b"")
        reseal(stopped)
        expect = "corrupt checkpoint"
    before = _snapshot_of(stopped)
    result = runner.invoke(app, ["run", "--resume", str(stopped)])
    assert result.exit_code == 2, result.output
    assert expect in result.output.replace("\n", "")
    assert _snapshot_of(stopped) == before


def test_a_resumed_run_has_every_part_and_the_straight_fingerprint(stopped, pristine):
    """Leftovers of the stopped process are removed, every day is stored once, and the
    result is the uninterrupted run's."""
    (stopped / "daily" / "part-00010-00011.parquet").write_bytes(b"half a part")
    resumed = api.resume(stopped)
    assert resumed.manifest["result"] == local.read_manifest(pristine)["result"]
    assert resumed.daily.column("day").to_pylist() == list(range(14))
    assert audit(stopped)["intact"]


def test_one_writer_per_run_folder(stopped):
    """While a process holds a run (here: this one, through its lock), a resume is refused,
    naming the writer; once it lets go, the resume goes ahead."""
    lock = local.RunLock(stopped)
    try:
        result = runner.invoke(app, ["run", "--resume", str(stopped)])
        assert result.exit_code == 2 and "being written by pid" in result.output
    finally:
        lock.release()
    assert api.resume(stopped).manifest["status"] == "complete"


# ----------------------------------------------------------------- 4. the audit's holes
def test_ledger_rows_dated_after_the_last_day_are_a_finding(run_dir):
    """A row dated day 14 of a 14-day run (in the last part, resealed) is named."""
    part = run_dir / "ledger" / "part-00010-00013.parquet"
    table = pq.read_table(part)
    extra = table.slice(0, 1).set_column(0, "day", pa.array([14], pa.int32()))
    pq.write_table(pa.concat_tables([table, extra]), part)
    reseal(run_dir)
    report = audit(run_dir)
    assert any(f["kind"] == "range" and f["day"] == 14 for f in report["findings"])


def test_swapping_two_rule_names_in_manifest_and_ledger_breaks_the_chain(run_dir):
    """The chain's genesis binds the rules' names: swapping red_light's and volunteering's
    names in the manifest and the ledger's dictionary is found."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    a, b = manifest["rules"].index("red_light"), manifest["rules"].index("volunteering")
    manifest["rules"][a], manifest["rules"][b] = manifest["rules"][b], manifest["rules"][a]
    path.write_text(json.dumps(manifest))
    for part in sorted((run_dir / "ledger").glob("part-*.parquet")):
        table = pq.read_table(part)
        rule = table.column("rule").combine_chunks()
        names = [{"red_light": "volunteering", "volunteering": "red_light"}.get(x, x)
                 for x in rule.dictionary.to_pylist()]
        swapped = pa.DictionaryArray.from_arrays(rule.indices, pa.array(names))
        pq.write_table(table.set_column(table.schema.get_field_index("rule"), "rule", swapped),
                       part)
    reseal(run_dir)
    report = audit(run_dir)
    assert not report["chain_intact"] and "manifest" in _kinds(report)


def test_removing_the_last_days_and_the_head_is_not_intact(run_dir):
    """Delete the last ledger and chain parts and the manifest's ledger head (resealed): the
    audit says the chain does not cover the run's days and there is no head."""
    for table in ("ledger", "ledger_chain"):
        (run_dir / table / "part-00010-00013.parquet").unlink()
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["result"]["ledger_head"]
    path.write_text(json.dumps(manifest))
    reseal(run_dir)
    report = audit(run_dir)
    assert not report["intact"] and not report["chain_intact"]
    details = " ".join(f["detail"] for f in report["findings"])
    assert "no ledger head" in details and "the stored chain has days 0-9" in details


@pytest.mark.parametrize("field, value", [("seed", 8), ("days_completed", 9), ("citizens", 401)])
def test_editing_the_manifest_is_a_finding(run_dir, field, value):
    """The manifest must agree with its scenario; a complete run has all its days."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest[field] = value
    path.write_text(json.dumps(manifest))
    report = audit(run_dir)
    assert not report["intact"]
    assert any(f["kind"] in ("manifest", "digest", "chain") for f in report["findings"])


def test_flipped_truth_of_observations_is_found(run_dir):
    """observations.is_true is covered like every other column."""
    _edit_part(run_dir / "observations" / "part-00000-00004.parquet", "is_true",
               lambda v: ~v)
    reseal(run_dir)
    report = audit(run_dir)
    assert any(f["kind"] == "digest" and "observations day" in f["detail"]
               for f in report["findings"])


def test_a_kept_fingerprint_catches_a_consistent_rewrite(run_dir):
    """`audit --expect` with the fingerprint kept when the run was made: intact passes, a
    manifest whose fingerprint was replaced fails."""
    kept = local.read_manifest(run_dir)["result"]["fingerprint"]
    assert runner.invoke(app, ["audit", str(run_dir), "--expect", kept]).exit_code == 0
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["result"]["fingerprint"] = "0" * 64
    path.write_text(json.dumps(manifest))
    result = runner.invoke(app, ["audit", str(run_dir), "--expect", kept])
    assert result.exit_code == 1 and "not the one you kept" in result.output


# ----------------------------------------------------------------- tracebacks
@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b"[1, 2, 3]", b'{"status": 1}'])
def test_a_corrupt_manifest_is_listed_as_corrupt_and_does_not_take_the_store_down(
        run_dir, pristine, content):
    """One bad manifest: `runs` lists that run as corrupt beside the good one."""
    shutil.copytree(pristine, run_dir.parent / "good")
    (run_dir / "manifest.json").write_bytes(content)
    result = runner.invoke(app, ["runs", "--out", str(run_dir.parent), "--json"])
    assert result.exit_code == 0
    status = {r["run_id"]: r["status"] for r in json.loads(result.stdout)}
    assert status == {run_dir.name: "corrupt", "good": "complete"}


@pytest.mark.parametrize("damage", ["truncated citizens", "missing scenario", "missing part"])
def test_the_audit_names_damaged_files_without_a_traceback(run_dir, damage):
    if damage == "truncated citizens":
        path = run_dir / "citizens.parquet"
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "missing scenario":
        (run_dir / "scenario.json").unlink()
    else:
        (run_dir / "ledger" / "part-00005-00009.parquet").unlink()
    result = runner.invoke(app, ["audit", str(run_dir)])
    assert result.exit_code == 1 and result.exception is None or isinstance(
        result.exception, SystemExit), result.output
    assert "NOT intact" in result.output


def test_a_run_with_an_empty_ledger_is_audited_and_reported(tmp_path):
    """court_blacklist keeps lists and no points: its ledger is empty, and audit and report
    work on it."""
    spec = load_preset("court_blacklist").with_run(citizens=500, days=12)
    path = api.run(spec, out=tmp_path / "runs").path
    assert audit(path, full=True)["intact"]
    result = runner.invoke(app, ["report", str(path), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output


def test_a_full_disk_marks_the_run_failed_with_a_message(tmp_path, tiny_data_module, monkeypatch):
    """ENOSPC while writing a checkpoint: the run is marked failed (not left 'running'), the
    message says the disk is full, and no half-written file stays behind."""
    real = local.write_parquet_to  # tables go straight to their files
    calls = {"n": 0}

    def full(table, f):
        calls["n"] += 1
        if calls["n"] > 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, f)

    monkeypatch.setattr(local, "write_parquet_to", full)
    with pytest.raises(UserError, match="the disk is full"):
        api.run(build_scenario(tiny_data_module), out=tmp_path / "runs")
    (path,) = (tmp_path / "runs").iterdir()
    manifest = local.read_manifest(path)
    assert manifest["status"] == "failed" and "disk is full" in manifest["note"]
    assert not list(path.rglob("*.tmp"))
