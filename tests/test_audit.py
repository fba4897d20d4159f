"""The audit of a stored run: every edit, insertion or deletion of a ledger row is detected by
the hash chain (which day) and located by the replay (which row); bad input is exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import build_scenario, reseal
from typer.testing import CliRunner

from panopticon import api
from panopticon.audit import LEDGER_KINDS, audit
from panopticon.cli import app


@pytest.fixture
def stored(tmp_path, tiny_data):
    """A complete tiny run (400 citizens, 14 days, checkpoints every 5 days) on disk."""
    result = api.run(build_scenario(tiny_data), out=tmp_path / "runs")
    return result.path


def _ledger_part(run_dir, day: int):
    """The ledger part holding ``day`` and the table in it."""
    for part in sorted((run_dir / "ledger").glob("part-*.parquet")):
        lo, hi = (int(x) for x in part.stem.split("-")[1:3])
        if lo <= day <= hi:
            return part, pq.read_table(part)
    raise AssertionError(day)


def _rows_of(table: pa.Table, day: int) -> np.ndarray:
    return np.flatnonzero(table.column("day").to_numpy() == day)


def _ledger_findings(findings: list[dict]) -> list[tuple]:
    """(kind, day) of the findings about the ledger's rows and chain."""
    return [(f["kind"], f["day"]) for f in findings if f["kind"] in LEDGER_KINDS]


def _named(findings: list[dict], kind: str) -> list[str]:
    return [f["detail"] for f in findings if f["kind"] == kind]


def test_an_untouched_run_passes_the_chain_and_the_replay(stored):
    """Every day re-hashes to its stored head, the last head is the manifest's, and a fresh
    simulation writes the same rows."""
    report = audit(stored, full=True)
    assert report["chain_intact"] and report["replay_matches"]
    assert report["days_checked"] == 14 and report["findings"] == []


def test_an_edited_row_is_found_by_day_and_by_row(stored):
    """Change the delta of the third row of day 7: the chain breaks on day 7 only (each day is
    checked against the stored head before it), and the replay names row 2 of day 7."""
    part, table = _ledger_part(stored, 7)
    row = _rows_of(table, 7)[2]
    delta = table.column("delta_milli").to_numpy().copy()
    delta[row] += 1000
    pq.write_table(table.set_column(table.schema.get_field_index("delta_milli"), "delta_milli",
                                    pa.array(delta)), part)
    report = audit(stored, full=True)
    assert _ledger_findings(report["findings"]) == [("edited", 7)]
    assert [(f["kind"], f["day"], f["row"]) for f in report["replay_findings"]
            if f["kind"] in LEDGER_KINDS] == [("edited", 7, 2)]
    # the file's hash, the day's digest and the fingerprint say so too; the replay names the table
    assert [x for x in _named(report["findings"], "file") if str(part) in x]
    assert [f["day"] for f in report["findings"] if f["kind"] == "digest"] == [7]
    assert _named(report["findings"], "fingerprint") and not report["intact"]
    assert [f["day"] for f in report["replay_findings"] if f["kind"] == "replay"] == [7]


@pytest.mark.parametrize("change", ["inserted", "deleted"])
def test_an_inserted_or_deleted_row_is_found_by_day_and_by_row(stored, change):
    """Duplicate (insert) or drop (delete) the first row of day 3: the chain flags day 3 with
    the row counts; the replay names the first stored row that differs: row 1 for a duplicated
    row 0 (the copy is indistinguishable from the original before it), row 0 for a deletion."""
    part, table = _ledger_part(stored, 3)
    first = int(_rows_of(table, 3)[0])
    keep = np.arange(table.num_rows)
    keep = np.insert(keep, first, first) if change == "inserted" else np.delete(keep, first)
    pq.write_table(table.take(pa.array(keep)), part)
    report = audit(stored, full=True)
    assert _ledger_findings(report["findings"]) == [(change, 3)]
    assert [(f["kind"], f["day"], f["row"]) for f in report["replay_findings"]
            if f["kind"] in LEDGER_KINDS] == [(change, 3, 1 if change == "inserted" else 0)]
    assert any(str(part) in x for x in _named(report["findings"], "file"))


def test_a_rewritten_chain_is_caught_by_the_manifest_head_and_the_replay(stored):
    """Someone edits a row and rewrites the stored chain to match: the days hash again, but
    the chain no longer ends at the manifest's head, and the replay still finds the row."""
    from panopticon import ledger
    from panopticon.audit import _by_day, stored_ledger
    from panopticon.store.local import chain_table, read_manifest

    part, table = _ledger_part(stored, 5)
    row = _rows_of(table, 5)[0]
    citizen = table.column("citizen").to_numpy().copy()
    citizen[row] = (citizen[row] + 1) % 400
    pq.write_table(table.set_column(table.schema.get_field_index("citizen"), "citizen",
                                    pa.array(citizen)), part)
    manifest = read_manifest(stored)
    rows = _by_day(stored_ledger(stored, manifest), 14)
    head, links = ledger.genesis(manifest["scenario_digest"], manifest["rules"]), []
    for d in range(14):
        head = ledger.chain(head, d, rows[d])
        links.append((d, len(rows[d]["citizen"]), head))
    for p in (stored / "ledger_chain").glob("*.parquet"):
        p.unlink()
    pq.write_table(chain_table(links), stored / "ledger_chain" / "part-00000-00013.parquet")
    reseal(stored)  # and the manifest's record of the files
    report = audit(stored, full=True)
    assert _ledger_findings(report["findings"]) == [("chain", 13)]
    assert [(f["day"], f["row"]) for f in report["replay_findings"]
            if f["kind"] in LEDGER_KINDS] == [(5, 0)]


def test_audit_command_exit_codes(stored, tmp_path):
    """0 for an intact run (JSON report with --json), 1 once a row is changed, 2 for a run
    that does not exist or a ledger file that is not Parquet (naming the file)."""
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", str(stored), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["chain_intact"]
    missing = runner.invoke(app, ["audit", "no-such-run", "--out", str(tmp_path / "runs")])
    assert missing.exit_code == 2 and "no run 'no-such-run'" in missing.output
    part, table = _ledger_part(stored, 1)
    delta = table.column("delta_milli").to_numpy().copy()
    delta[_rows_of(table, 1)[0]] -= 5
    pq.write_table(table.set_column(table.schema.get_field_index("delta_milli"), "delta_milli",
                                    pa.array(delta)), part)
    assert runner.invoke(app, ["audit", str(stored)]).exit_code == 1
    part.write_bytes(b"not parquet")
    broken = runner.invoke(app, ["audit", stored.name, "--out", str(stored.parent)])
    assert broken.exit_code == 1 and broken.exception is None or isinstance(
        broken.exception, SystemExit)
    assert part.name in broken.output and "NOT intact" in broken.output


INSIDERS = {
    "run": {"citizens": 600, "days": 40, "seed": 9, "checkpoint_every": 10},
    "governance": {"insiders": [
        {"attack": "lower_targets", "officials": 2, "reach": 5, "every_days": 10,
         "points": 20, "targets": 'count("red_light", 365) > 0'},
        {"attack": "raise_cronies", "officials": 1, "reach": 4, "every_days": 10},
        {"attack": "delete_entries", "officials": 1, "reach": 4, "every_days": 10,
         "points": 5},
        {"attack": "edit_rules", "region": "rural", "every_days": 5, "factor": 3}]},
}


def test_audit_finds_insider_actions_by_attack_type(tmp_path, tiny_data):
    """Logged manual adjustments (lowering targets, raising cronies) are all listed with the
    official who made them; a silent deletion leaves a score its ledger does not explain;
    an edited rule leaves rows three times the rule's points. Against the lab's record each
    attack type's share found is reported (here all of them: factor 3 is never hidden by a
    bound of 0-120 points except when a score stops at 0, and scores start at 100)."""
    data = {**tiny_data, **INSIDERS, "behaviour": tiny_data["behaviour"]}
    result = api.run(build_scenario(data), out=tmp_path / "runs")
    done = result.table("manipulations").to_pandas()
    assert set(done.attack) == {"lower_targets", "raise_cronies", "delete_entries",
                                "edit_rules"}
    report = audit(result.path)
    assert report["chain_intact"]  # the insiders wrote the ledger: the chain holds
    logged = done[done.logged]
    assert len(report["manual"]) == len(logged)
    assert {m["official"] for m in report["manual"]} == {str(o) for o in logged.official}
    assert {m["citizen"] for m in report["unexplained"]} >= set(
        done[done.attack == "delete_entries"].citizen)
    found = report["insider_actions_found"]
    assert found["lower_targets"]["share"] == found["raise_cronies"]["share"] == 1.0
    assert found["delete_entries"]["caught"] >= 1
    assert found["edit_rules"]["share"] > 0.9


def test_an_honest_run_shows_no_manual_entries_or_unexplained_scores(stored):
    """Without insiders: no manual rows, every score is its start plus its ledger, and every
    fixed-points rule row carries its points (or stops at a bound)."""
    report = audit(stored)
    assert report["manual"] == [] and report["unexplained"] == []
    assert report["deviations"] == [] and report["insider_actions_found"] == {}


def test_an_edited_deduction_expires_with_what_it_really_took():
    """A -10 rule that expires after 2 days, doubled by an edited rule: the red light takes
    20 points on day 0 and its expiry gives back all 20 (not the rule's 10)."""
    from test_opportunities import GATED

    from panopticon import engine
    from panopticon.sensors import Observations

    spec = build_scenario(GATED, policy={"score": {"start": 100}, "sanctions": [], "rules": [
        {"event": "red_light", "points": -10, "expires_after_days": 2}]},
        society={"region": {"values": ["urban"], "weights": [1]}},
        governance={"insiders": [{"attack": "edit_rules", "region": "urban", "every_days": 1,
                                  "factor": 2}]})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    t = sim.events.index("red_light")
    one = Observations(np.asarray([5], np.int32), np.asarray([t], np.int16),
                       np.zeros(1, np.int8), np.asarray([True]), np.asarray([5], np.int32))
    policy = engine.apply_policy(sim, state, one)
    assert state.scores[5] == 80_000 and policy.manipulations.delta.tolist() == [-10_000]
    none = Observations(*(np.empty(0, dt) for dt in (np.int32, np.int16, np.int8, bool,
                                                      np.int32)))
    for day in (1, 2):
        state.day = day
        engine.apply_policy(sim, state, none)
    assert state.scores[5] == 100_000


def test_quick_audit_checks_row_counts_and_lists_manual_entries(stored):
    """The quick audit of a big run (as the report shows it): counts per day against the
    chain's, the chain's end against the manifest; a deleted row is named by its day, and
    the checks that need every row are left to `panopticon audit` (None)."""
    from panopticon.audit import quick_audit

    report = quick_audit(stored)
    assert report["chain_intact"] and report["manual"] == []
    assert report["unexplained"] is None and report["deviations"] is None
    part, table = _ledger_part(stored, 4)
    pq.write_table(table.take(pa.array(np.delete(np.arange(table.num_rows),
                                                 int(_rows_of(table, 4)[0])))), part)
    report = quick_audit(stored)
    assert _ledger_findings(report["findings"]) == [("deleted", 4)]
    assert any(str(part) in x for x in _named(report["findings"], "file"))
