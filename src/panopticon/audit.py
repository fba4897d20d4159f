"""Auditing a stored run: is its ledger the one the simulation wrote, and if not, where not?

Two checks, from cheap to thorough:

* **The hash chain.** Every day's ledger rows were hashed with the previous day's head when
  they were written (``ledger.chain``); the store keeps each day's row count and head
  (``ledger_chain``) and the manifest the final head. Re-hashing the stored rows day by day
  finds every day whose rows were edited, inserted or deleted: the first such day breaks the
  chain from there on, so each day is checked against the stored head of the day before.
* **The replay.** The run is simulated again from its scenario and seed (everything is
  deterministic) and its ledger compared with the stored one row by row: this names the rows
  that were edited, inserted or deleted, even if whoever changed them rewrote the chain too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from panopticon import ledger
from panopticon.errors import UserError
from panopticon.store.local import read_manifest, read_table


@dataclass(frozen=True)
class Finding:
    """One thing the audit found wrong: ``kind`` (edited, inserted, deleted, chain), the day,
    the row within the day's stored ledger rows (None if the day as a whole), and details."""

    kind: str
    day: int
    row: int | None
    detail: str


def stored_ledger(run_dir: Path, manifest: dict) -> dict[str, np.ndarray]:
    """The stored ledger as hashed: day, citizen, rule (index into the run's rule labels),
    delta, observation (-1: none) and truth (-1: none, 0 false, 1 true), in stored order."""
    table = read_table(run_dir, "ledger")
    labels = {name: k for k, name in enumerate(manifest["rules"])}
    rule_col = table.column("rule").combine_chunks()
    if isinstance(rule_col, pa.DictionaryArray):
        names = rule_col.dictionary.to_pylist()
        unknown = sorted(set(names) - set(labels))
        lookup = np.asarray([labels.get(x, -1) for x in names], dtype=np.int16)
        rule = lookup[rule_col.indices.to_numpy(zero_copy_only=False)] if len(names) else \
            np.zeros(len(rule_col), dtype=np.int16)
    else:  # plain strings (a rewritten file)
        values = rule_col.to_pylist()
        unknown = sorted(set(values) - set(labels))
        rule = np.asarray([labels.get(x, -1) for x in values], dtype=np.int16)
    if unknown:
        raise UserError(f"{run_dir}/ledger: rules {unknown} are not rules of this run "
                        f"({len(labels)} rules in the manifest)")
    truth = table.column("observation_true")
    missing = pc.is_null(truth).to_numpy(zero_copy_only=False)
    true = pc.fill_null(truth, False).to_numpy(zero_copy_only=False)
    return {
        "day": table.column("day").to_numpy(),
        "citizen": table.column("citizen").to_numpy(),
        "rule": rule,
        "delta": table.column("delta_milli").to_numpy(),
        "observation": table.column("observation").fill_null(-1).to_numpy(),
        "truth": np.where(missing, -1, true).astype(np.int8),
    }


def _by_day(columns: dict[str, np.ndarray], days: int) -> list[dict[str, np.ndarray]]:
    """The rows of each day 0..days-1 (rows of a day keep their stored order)."""
    order = np.argsort(columns["day"], kind="stable")
    bounds = np.searchsorted(columns["day"][order], np.arange(days + 1))
    return [{k: v[order[bounds[d]:bounds[d + 1]]] for k, v in columns.items() if k != "day"}
            for d in range(days)]


def verify_chain(run_dir: Path) -> tuple[list[Finding], int]:
    """Re-hash the stored ledger day by day against the stored chain and the manifest's head.

    Returns:
        The findings (empty if the chain holds) and the number of days checked.
    """
    manifest = read_manifest(run_dir)
    links = read_table(run_dir, "ledger_chain").to_pydict()
    days = len(links["day"])
    rows = _by_day(stored_ledger(run_dir, manifest), days)
    findings = []
    previous = ledger.genesis(manifest["scenario_digest"])
    for d, count, head in zip(links["day"], links["rows"], links["head"], strict=True):
        mine = rows[d]
        if ledger.chain(previous, d, mine).hex() != head:
            n = len(mine["citizen"])
            kind = "edited" if n == count else ("inserted" if n > count else "deleted")
            findings.append(Finding(kind, d, None, f"day {d}: {n} rows stored, {count} hashed; "
                                    "the rows do not hash to the stored head"))
        previous = bytes.fromhex(head)
    final = manifest.get("result", {}).get("ledger_head")
    if final is not None and days and links["head"][-1] != final:
        findings.append(Finding("chain", days - 1, None, "the stored chain does not end at "
                                "the manifest's ledger head: the chain itself was rewritten"))
    return findings, days


def replay(run_dir: Path) -> list[Finding]:
    """Simulate the run again and compare its ledger with the stored one, row by row."""
    from panopticon import engine
    from panopticon.scenario import ScenarioSpec

    manifest = read_manifest(run_dir)
    try:
        spec = ScenarioSpec.model_validate_json((run_dir / "scenario.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{run_dir}/scenario.json: unreadable ({exc})") from None
    days = int(manifest.get("days_completed", spec.run.days))
    stored = _by_day(stored_ledger(run_dir, manifest), days)
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    findings = []
    while state.day < days:
        d = state.day
        expected = engine.step(sim, state).ledger
        findings += _compare(d, expected, stored[d])
    return findings


def _compare(day: int, expected: dict[str, np.ndarray], stored: dict[str, np.ndarray]
             ) -> list[Finding]:
    """Where a day's stored rows differ from the replayed ones (the row index is in the
    stored rows; an inserted or deleted row shifts the rest, so only the first is named)."""
    fields = ("citizen", "rule", "delta", "observation", "truth")
    a = np.stack([np.asarray(expected[f], dtype=np.int64) for f in fields], axis=1)
    b = np.stack([np.asarray(stored[f], dtype=np.int64) for f in fields], axis=1)
    if len(a) == len(b):
        bad = np.flatnonzero((a != b).any(axis=1))
        return [Finding("edited", day, int(r), f"day {day} row {r}: stored "
                        f"{dict(zip(fields, b[r].tolist(), strict=True))}, replay gives "
                        f"{dict(zip(fields, a[r].tolist(), strict=True))}") for r in bad]
    shorter = min(len(a), len(b))
    differ = np.flatnonzero((a[:shorter] != b[:shorter]).any(axis=1))
    first = int(differ[0]) if len(differ) else shorter
    kind = "inserted" if len(b) > len(a) else "deleted"
    return [Finding(kind, day, first, f"day {day}: {len(b)} rows stored, the replay gives "
                    f"{len(a)}; the first difference is at row {first}")]


def inspect(run_dir: Path) -> dict:
    """What the ledger itself shows: every manual adjustment (and who made it); citizens
    whose score is not their start plus their ledger rows (a change without an entry); and
    rows of fixed-points rules whose delta is not the rule's points, unless the score stopped
    at a bound (an edited rule).

    Returns:
        ``manual`` rows (day, citizen, official, delta), ``unexplained`` citizens (citizen,
        ledger score, actual score), ``deviations`` rows (day, citizen, rule, delta, points),
        each a list of dicts, and their positions for :func:`caught`.
    """
    from panopticon import engine
    from panopticon.scenario import ScenarioSpec

    manifest = read_manifest(run_dir)
    spec = ScenarioSpec.model_validate_json((run_dir / "scenario.json").read_text())
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    rows = stored_ledger(run_dir, manifest)
    labels = manifest["rules"]
    manual_ids = np.asarray([k for k, x in enumerate(labels) if x.startswith("manual by")])
    is_manual = np.isin(rows["rule"], manual_ids)
    final = np.round(read_table(run_dir, "citizens").column("score").to_numpy() * 1000)
    start = state.scores
    total = start.copy()
    np.add.at(total, rows["citizen"], rows["delta"])
    unexplained = np.flatnonzero(total != final.astype(np.int64))
    # running score after each row, citizen by citizen in ledger order
    order = np.argsort(rows["citizen"], kind="stable")
    c_sorted, d_sorted = rows["citizen"][order], rows["delta"][order]
    run = np.cumsum(d_sorted)
    first = np.r_[0, np.flatnonzero(np.diff(c_sorted)) + 1]
    offset = np.repeat(run[first] - d_sorted[first], np.diff(np.r_[first, len(order)]))
    after = np.empty(len(order), dtype=np.int64)
    after[order] = start[c_sorted] + run - offset
    table = state.policy.rules
    n_rules = len(table.plain)
    plain_rule = (rows["rule"] < n_rules) & table.plain[np.minimum(rows["rule"], n_rules - 1)]
    points = table.delta[np.minimum(rows["rule"], n_rules - 1)]
    at_bound = (after == sim.policy.low) | (after == sim.policy.high)
    deviates = plain_rule & (rows["delta"] != points) & ~at_bound
    return {
        "manual": [{"day": int(rows["day"][k]), "citizen": int(rows["citizen"][k]),
                    "official": labels[rows["rule"][k]].split()[3],
                    "delta": rows["delta"][k] / 1000} for k in np.flatnonzero(is_manual)],
        "unexplained": [{"citizen": int(c), "ledger_score": total[c] / 1000,
                         "score": final[c] / 1000} for c in unexplained],
        "deviations": [{"day": int(rows["day"][k]), "citizen": int(rows["citizen"][k]),
                        "rule": labels[rows["rule"][k]], "delta": rows["delta"][k] / 1000,
                        "points": points[k] / 1000} for k in np.flatnonzero(deviates)],
    }


def caught(run_dir: Path, found: dict) -> dict[str, dict[str, float]]:
    """Against the lab's record of what insiders did: per attack, how many actions there
    were and how many the audit found (a manual row of that citizen that day, a citizen
    whose score the ledger does not explain, or a deviating row of that citizen that day)."""
    try:
        done = read_table(run_dir, "manipulations").to_pandas()
    except UserError:
        return {}
    flagged_rows = {(m["day"], m["citizen"]) for m in found["manual"]} | {
        (m["day"], m["citizen"]) for m in found["deviations"]}
    flagged_citizens = {m["citizen"] for m in found["unexplained"]}
    out = {}
    for attack, group in done.groupby("attack", observed=True):
        hit = [(int(d), int(c)) in flagged_rows or int(c) in flagged_citizens
               for d, c in zip(group.day, group.citizen, strict=True)]
        out[str(attack)] = {"actions": len(group), "caught": int(sum(hit)),
                            "share": float(np.mean(hit)) if hit else float("nan")}
    return out


def audit(run_dir: Path, full: bool = False) -> dict:
    """The audit report of a stored run: the chain check, what the ledger shows (manual
    adjustments, unexplained scores, edited rules) and, against the lab's record, what share
    of insider actions that finds; with ``full`` the replay too."""
    findings, days = verify_chain(run_dir)
    report = {"run": str(run_dir), "days_checked": days, "chain_intact": not findings,
              "findings": [asdict(f) for f in findings]}
    found = inspect(run_dir)
    report.update(found)
    report["insider_actions_found"] = caught(run_dir, found)
    if full:
        replayed = replay(run_dir)
        report["replay_matches"] = not replayed
        report["replay_findings"] = [asdict(f) for f in replayed]
    return report


QUICK_ABOVE = 20_000_000
"""Ledger rows above which a report shows the quick audit (:func:`quick_audit`)."""


def quick_audit(run_dir: Path) -> dict:
    """What can be checked of a big run in seconds, without reading the rows themselves: each
    day's stored row count against the count that was hashed, the chain's end against the
    manifest's head, and the manual adjustments with who made them (counted by DuckDB). The
    re-hash, the unexplained scores and the edited rules need ``panopticon audit``; their keys
    are None here."""
    import duckdb

    manifest = read_manifest(run_dir)
    links = read_table(run_dir, "ledger_chain").to_pandas()
    parts = str(run_dir / "ledger" / "part-*.parquet")
    try:
        con = duckdb.connect()
        counts = dict(con.execute(f"select day, count(*) from read_parquet('{parts}') "
                                  "group by day").fetchall())
        manual = con.execute(f"select day, citizen, rule, delta_milli from read_parquet('{parts}')"
                             " where rule like 'manual by%' order by day, citizen").fetchall()
    except duckdb.Error as exc:
        raise UserError(f"{run_dir}/ledger: unreadable ({exc})") from None
    findings = [Finding("inserted" if counts.get(d, 0) > n else "deleted", int(d), None,
                        f"day {d}: {counts.get(d, 0)} rows stored, {n} hashed")
                for d, n in zip(links.day, links.rows, strict=True) if counts.get(d, 0) != n]
    final = manifest.get("result", {}).get("ledger_head")
    if final is not None and len(links) and links["head"].iloc[-1] != final:
        findings.append(Finding("chain", int(links.day.iloc[-1]), None, "the stored chain does "
                                "not end at the manifest's ledger head"))
    return {"run": str(run_dir), "days_checked": len(links), "chain_intact": not findings,
            "findings": [asdict(f) for f in findings], "quick": True,
            "manual": [{"day": d, "citizen": c, "official": rule.split()[3], "delta": x / 1000}
                       for d, c, rule, x in manual],
            "unexplained": None, "deviations": None, "insider_actions_found": {}}
