"""The ledger's chain hashes rows by fixed blocks of citizens, so that any split of the citizens
into shards of whole blocks gives the same daily root and head; older runs (ledger format 2)
are still checked by their own format, and never continued by a newer one."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import build_scenario, reseal
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from panopticon import api, ledger
from panopticon.audit import audit, verify_chain
from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.store import local

runner = CliRunner()


def _rows(seed: int, m: int, citizens: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"citizen": rng.integers(0, citizens, m).astype(np.int32),
            "rule": rng.integers(0, 9, m).astype(np.int16),
            "delta": rng.integers(-5000, 5000, m).astype(np.int64),
            "observation": rng.integers(-1, 1 << 40, m).astype(np.int64),
            "truth": rng.integers(-1, 2, m).astype(np.int8)}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(0, 400),
       cuts=st.lists(st.integers(1, 11), max_size=5))
def test_the_daily_root_is_the_same_for_any_split_into_shards_of_whole_blocks(seed, m, cuts):
    """Each shard hashes its own citizens' rows (in the day's order) into leaves; the root over
    all shards' leaves equals the root of the whole day's rows, and so does the head."""
    rows = _rows(seed, m, 12 * ledger.BLOCK)
    bounds = [0, *sorted(set(cuts)), 12]
    blocks, leaves = [], []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        mine = (rows["citizen"] >= lo * ledger.BLOCK) & (rows["citizen"] < hi * ledger.BLOCK)
        b, leaf = ledger.leaves({k: v[mine] for k, v in rows.items()})
        blocks.append(b)
        leaves += leaf
    whole = ledger.root(*ledger.leaves(rows))
    # shards may hand their leaves over in any order
    order = np.random.default_rng(seed).permutation(len(leaves))
    assert ledger.root(np.concatenate(blocks)[order], [leaves[k] for k in order]) == whole
    head = ledger.genesis("digest", ["a", "b"])
    assert ledger.chain(head, 3, rows) == \
        ledger.chain(head, 3, {k: v[::-1][::-1] for k, v in rows.items()})


def test_changing_reordering_or_moving_one_row_changes_the_head():
    """Within a block the day's order counts; a row's every field counts, including which
    block its citizen is in."""
    rows = _rows(7, 200, 3 * ledger.BLOCK)
    head = ledger.genesis("digest", ["a"])
    base = ledger.chain(head, 0, rows)
    same_block = np.flatnonzero(rows["citizen"] // ledger.BLOCK == rows["citizen"][0] // ledger.BLOCK)
    swapped = {k: v.copy() for k, v in rows.items()}
    i, j = same_block[0], same_block[1]
    for v in swapped.values():
        v[[i, j]] = v[[j, i]]
    assert ledger.chain(head, 0, swapped) != base
    for column in ("citizen", "rule", "delta", "observation", "truth"):
        edited = {k: v.copy() for k, v in rows.items()}
        # citizen: the same citizen number in the next block
        edited[column][5] += ledger.BLOCK if column == "citizen" else 1
        assert ledger.chain(head, 0, edited) != base, column
    assert ledger.chain(head, 1, rows) != base


def test_rows_of_different_blocks_may_be_hashed_in_either_order():
    """Interleaving two blocks' rows differently (each block's own order kept) is the same
    ledger day: what a sharded run writes is each shard's rows, not the whole day's order."""
    a = {k: v[:4] for k, v in _rows(1, 4, ledger.BLOCK).items()}
    b = {k: v[:4] for k, v in _rows(2, 4, ledger.BLOCK).items()}
    b["citizen"] = b["citizen"] + ledger.BLOCK
    ab = {k: np.concatenate([a[k], b[k]]) for k in a}
    interleaved = {k: np.stack([a[k], b[k]], axis=1).ravel() for k in a}
    head = ledger.genesis("digest", [])
    assert ledger.chain(head, 0, ab) == ledger.chain(head, 0, interleaved)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A complete tiny run (400 citizens, 14 days), copied by each test that changes it."""
    return api.run(build_scenario(), out=tmp_path_factory.mktemp("ledger") / "runs").path


def _as_format_2(run_dir) -> None:
    """Rewrite a run as the previous version wrote it: the chain's heads in format 2 and a
    manifest that does not name its ledger format."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    days = manifest["days"]
    from panopticon.audit import _by_day, stored_ledger
    rows = _by_day(stored_ledger(run_dir, manifest), days)
    head = ledger.genesis(manifest["scenario_digest"], manifest["rules"])
    heads = []
    for d in range(days):
        head = ledger.chain(head, d, rows[d], fmt=2)
        heads.append(head.hex())
    for part in sorted((run_dir / "ledger_chain").glob("part-*.parquet")):
        table = pq.read_table(part)
        first = table["day"][0].as_py()
        table = table.set_column(table.schema.get_field_index("head"), "head",
                                 pa.array(heads[first:first + table.num_rows]))
        pq.write_table(table, part)
    del manifest["ledger_format"]
    manifest["result"]["ledger_head"] = heads[-1]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    reseal(run_dir)


def test_a_run_written_in_ledger_format_2_is_checked_by_format_2(stored, tmp_path):
    """A run of the previous version (one hash over each day's rows) keeps an intact chain;
    the same heads claimed as format 3 do not hold."""
    run_dir = tmp_path / "old"
    shutil.copytree(stored, run_dir)
    _as_format_2(run_dir)
    manifest = local.read_manifest(run_dir)
    assert verify_chain(run_dir, manifest, manifest["days"])[0] == []
    assert audit(run_dir)["chain_intact"]
    manifest["ledger_format"] = 3
    findings, _ = verify_chain(run_dir, manifest, manifest["days"])
    assert findings and findings[0].kind == "edited" and findings[0].day == 0


def test_resuming_a_run_of_an_older_ledger_format_is_refused_naming_the_version(tmp_path):
    """A stopped run of format 2 cannot be continued in format 3 (its chain would mix two
    formats): resume exits 2 and says why, and leaves the run as it was."""
    spec = build_scenario(run={"checkpoint_every": 5})
    path = api.run(spec, out=tmp_path / "runs").path
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(status="stopped", days_completed=10)
    del manifest["ledger_format"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    before = (path / "manifest.json").read_bytes()
    with pytest.raises(UserError, match="ledger format 2.*format 3 only"):
        api.resume(path)
    result = runner.invoke(app, ["run", "--resume", str(path)])
    assert result.exit_code == 2 and "older panopticon" in result.output
    assert (path / "manifest.json").read_bytes() == before


@pytest.mark.parametrize("value", [4, "3", None])
def test_a_manifest_naming_an_unknown_ledger_format_is_corrupt(stored, tmp_path, value):
    """Reading it is refused naming the key; the audit says the run is not intact and that
    the chain was not checked (never "intact" after checking nothing)."""
    run_dir = tmp_path / "run"
    shutil.copytree(stored, run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["ledger_format"] = value
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="ledger_format"):
        local.read_manifest(run_dir)
    result = runner.invoke(app, ["audit", str(run_dir)])
    assert result.exit_code == 1 and "ledger_format" in result.output, result.output
    assert "ledger hash chain: not checked" in result.output
    assert audit(run_dir)["chain_intact"] is None
