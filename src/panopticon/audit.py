"""Auditing a stored run: is it whole and the one the simulation wrote, and if not, where not?

From cheap to thorough (docs/audit.md says what each guarantees against whom):

* **The files.** Every file the run wrote is in its manifest with its size and SHA-256: a
  missing, truncated, altered or unlisted part is named.
* **The manifest and the scenario.** ``scenario.json`` must hash to the manifest's scenario
  digest, and the manifest's seed, size, days and names must be the scenario's; a complete
  run has all its days.
* **The rows.** Every stored row's day must be within the run. Each day's rows of every table
  must hash to the digest stored for that day (``digests``), and those digests must chain to
  the manifest's content head; the ledger is re-hashed day by day against its own chain
  (``ledger_chain``), whose genesis binds the rules' names, and must end at the manifest's
  head. The fingerprint must be what the heads it binds make it, and with ``expect`` the one
  a user kept elsewhere.
* **The replay.** The run is simulated again from its scenario and seed (everything is
  deterministic): every table is compared day by day, the ledger row by row, the final
  scores and the fingerprint. This names the day and table (and ledger row) that differ, even
  if whoever changed them rewrote every digest, chain and head too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from panopticon import ledger
from panopticon.errors import UserError
from panopticon.store import digest
from panopticon.store.local import (
    COMPLETE,
    DATA_TABLES,
    PART,
    check_files,
    ledger_format,
    read_manifest,
    read_scenario,
    read_table,
    table_parts,
)

LEDGER_KINDS = ("edited", "inserted", "deleted", "chain")
"""Findings about the ledger's rows and chain (the rest: files, manifest, scenario, range,
digest, content, fingerprint)."""


@dataclass(frozen=True)
class Finding:
    """One thing the audit found wrong: ``kind`` (file, manifest, scenario, range, digest,
    content, fingerprint; for the ledger edited, inserted, deleted, chain), the day (None if
    not one day's), the row within the day's stored ledger rows (None if the day as a
    whole), and details."""

    kind: str
    day: int | None
    row: int | None
    detail: str


def stored_ledger(run_dir: Path, manifest: dict) -> dict[str, np.ndarray]:
    """The stored ledger as hashed: day, citizen, rule (index into the run's rule labels),
    delta, observation (-1: none) and truth (-1: none, 0 false, 1 true), in stored order."""
    table = read_table(run_dir, "ledger", manifest)
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
    """The rows of each day 0..days-1 (rows of a day keep their stored order; rows dated
    outside are the ``range`` findings of :func:`check_rows`)."""
    order = np.argsort(columns["day"], kind="stable")
    bounds = np.searchsorted(columns["day"][order], np.arange(days + 1))
    return [{k: v[order[bounds[d]:bounds[d + 1]]] for k, v in columns.items() if k != "day"}
            for d in range(days)]


def _heads(manifest: dict) -> dict[str, str | None]:
    """The heads the manifest recorded: at the end of a complete run, else at its last
    checkpoint (None where it has none)."""
    source = manifest.get("result") if manifest["status"] == COMPLETE else \
        manifest.get("checkpoint")
    source = source if isinstance(source, dict) else {}
    return {k: source.get(k) if isinstance(source.get(k), str) else None
            for k in ("ledger_head", "content_head")}


def verify_chain(run_dir: Path, manifest: dict, days: int) -> tuple[list[Finding], str]:
    """Re-hash the stored ledger day by day against the stored chain and the manifest's head.

    Returns:
        The findings (empty if the chain holds) and the head the stored rows hash to.
    """
    links = read_table(run_dir, "ledger_chain", manifest).to_pydict() if days else \
        {"day": [], "rows": [], "head": []}
    findings = []
    if links["day"] != list(range(days)):
        findings.append(Finding("chain", None, None, f"the stored chain has days "
                                f"{_span(links['day'])}, the run {_span(list(range(days)))}"))
    rows = _by_day(stored_ledger(run_dir, manifest), days) if days else []
    previous = ledger.genesis(manifest["scenario_digest"], manifest["rules"])
    mine, fmt = previous, ledger_format(manifest)
    for d, count, head in zip(links["day"], links["rows"], links["head"], strict=True):
        if not 0 <= d < days:
            continue
        mine = ledger.chain(previous, d, rows[d], fmt)
        if mine.hex() != head:
            n = len(rows[d]["citizen"])
            kind = "edited" if n == count else ("inserted" if n > count else "deleted")
            findings.append(Finding(kind, d, None, f"day {d}: {n} rows stored, {count} hashed; "
                                    "the rows do not hash to the stored head"))
        previous = bytes.fromhex(head)
    final = _heads(manifest)["ledger_head"]
    if final is None:
        findings.append(Finding("chain", None, None, "the manifest records no ledger head: "
                                "the chain cannot be checked against it"))
    elif days and links["head"] and links["head"][-1] != final:
        findings.append(Finding("chain", days - 1, None, "the stored chain does not end at "
                                "the manifest's ledger head: the chain itself was rewritten"))
    return findings, mine.hex()


def _span(days: list[int]) -> str:
    return f"{min(days)}-{max(days)} ({len(days)})" if days else "none"


def _stored_digests(run_dir: Path, manifest: dict) -> dict[tuple[int, str], tuple[int, str]]:
    table = read_table(run_dir, "digests", manifest).to_pydict()
    try:
        return {(int(d), str(t)): (int(r), bytes.fromhex(x).hex())
                for d, t, r, x in zip(table["day"], table["table"], table["rows"],
                                      table["digest"], strict=True)}
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{run_dir}/digests: not a digests table ({exc})") from None


def row_digests(run_dir: Path, manifest: dict, days: int
                ) -> tuple[dict[tuple[int, str], tuple[int, str]], list[Finding]]:
    """What each day's stored rows of every data table hash to, part by part, and the rows
    dated outside the run or outside their part's days (``range`` findings)."""
    found: dict[tuple[int, str], tuple[int, str]] = {}
    findings = []
    for table in DATA_TABLES:
        for part in table_parts(run_dir, table, manifest):
            lo, hi = (int(x) for x in PART.match(part.name).groups())
            try:
                data = pq.read_table(part)
                entries = digest.day_digests(data)
            except (OSError, pa.ArrowException, ValueError, KeyError) as exc:
                findings.append(Finding("file", None, None, f"{part}: unreadable ({exc})"))
                continue
            for d, rows, x in entries:
                if not (lo <= d <= hi and 0 <= d < days):
                    findings.append(Finding("range", d, None, f"{part}: {rows} rows dated day "
                                            f"{d}, outside the part's days {lo}-{hi} or the "
                                            f"run's 0-{days - 1}"))
                else:
                    found[(d, table)] = (rows, x)
    return found, findings


def check_rows(run_dir: Path, manifest: dict, days: int
               ) -> tuple[list[Finding], dict[tuple[int, str], tuple[int, str]], str]:
    """Each day's rows of every table against the stored digests, and the digests against
    the manifest's content head.

    Returns:
        The findings, what the stored rows hash to, and the content head they make.
    """
    actual, findings = row_digests(run_dir, manifest, days)
    stored = _stored_digests(run_dir, manifest) if days else {}
    entries = []
    for d in range(days):
        for table in DATA_TABLES:
            rows, x = actual.get((d, table), (0, digest.EMPTY))
            entries.append((d, table, rows, x))
            if (d, table) not in stored:
                findings.append(Finding("digest", d, None, f"{table} day {d}: no stored digest"))
            elif stored[(d, table)] != (rows, x):
                findings.append(Finding("digest", d, None, f"{table} day {d}: {rows} rows "
                                        f"stored, {stored[(d, table)][0]} digested; they do not "
                                        "hash to the stored digest"))
    extra = sorted(set(stored) - {(d, t) for d in range(days) for t in DATA_TABLES})
    findings += [Finding("digest", d, None, f"{t} day {d}: a digest for a day or table the "
                         "run does not have") for d, t in extra[:20]]
    # the chain over the stored digests must end at the manifest's head
    recorded = [(d, t, *stored.get((d, t), (0, digest.EMPTY))) for d in range(days)
                for t in DATA_TABLES]
    head = _heads(manifest)["content_head"]
    genesis = digest.genesis(manifest["scenario_digest"])
    if head is None:
        findings.append(Finding("content", None, None, "the manifest records no content head"))
    elif digest.chain(genesis, recorded).hex() != head:
        findings.append(Finding("content", None, None, "the stored digests do not chain to the "
                                "manifest's content head: the digests were rewritten"))
    return findings, actual, digest.chain(genesis, entries).hex()


def check_manifest(run_dir: Path, manifest: dict, sim) -> list[Finding]:
    """The manifest against the scenario it names (already checked against its digest) and
    the simulation built from it: seed, size, days and every name."""
    from panopticon.store.local import describe

    findings = []
    expected = describe(sim, manifest.get("code_version", ""))
    for key in ("scenario", "seed", "citizens", "days", "events", "tiers", "rules", "sources"):
        if manifest.get(key) != expected[key]:
            findings.append(Finding("manifest", None, None, f"manifest {key}: "
                                    f"{manifest.get(key)!r:.80} but the scenario gives "
                                    f"{expected[key]!r:.80}"))
    complete = manifest["status"] == COMPLETE
    if complete and manifest["days_completed"] != manifest["days"]:
        findings.append(Finding("manifest", None, None, f"a complete run of {manifest['days']} "
                                f"days with days_completed {manifest['days_completed']}"))
    if complete != ("citizens.parquet" in manifest["files"]) or \
            complete != isinstance(manifest.get("result"), dict):
        findings.append(Finding("manifest", None, None, f"status {manifest['status']!r}, but "
                                "the run's citizens table and result say otherwise"))
    return findings


def replay(run_dir: Path, manifest: dict | None = None,
           actual: dict[tuple[int, str], tuple[int, str]] | None = None) -> list[Finding]:
    """Simulate the run again and compare it with the stored one: every table day by day,
    the ledger row by row, the final scores and the fingerprint. ``actual``: what the stored
    rows hash to (:func:`row_digests`), if the caller has it already."""
    from panopticon import engine
    from panopticon.store.local import Digester, result_of
    from panopticon.store.tables import Collector, citizens_table

    manifest = read_manifest(run_dir) if manifest is None else manifest
    spec = read_scenario(run_dir, manifest)
    days = manifest["days_completed"]
    stored = _by_day(stored_ledger(run_dir, manifest), days) if days else []
    if actual is None:
        actual, _ = row_digests(run_dir, manifest, days)
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    digester = Digester(digest.genesis(spec.digest))
    findings: list[Finding] = []
    every = spec.run.checkpoint_every
    while state.day < days:
        buffer = Collector(sim)
        while state.day < days and (not buffer.days or state.day % every):
            d = state.day
            record = engine.step(sim, state)
            buffer.add(record)
            findings += _compare(d, record.ledger, stored[d])
        digests = digester.add(buffer.tables(), buffer.days).to_pydict()
        for d, t, rows, x in zip(*digests.values(), strict=True):
            if actual.get((d, t), (0, digest.EMPTY)) != (rows, x):
                findings.append(Finding("replay", d, None, f"{t} day {d}: the stored rows "
                                        f"are not the ones the simulation gives ({rows} rows)"))
    if manifest["status"] == COMPLETE and days == spec.run.days:
        citizens = citizens_table(sim, state)
        try:
            kept = read_table(run_dir, "citizens", manifest)
        except UserError as exc:
            findings.append(Finding("replay", None, None, str(exc)))
        else:
            score = kept.column("score").to_numpy() if "score" in kept.column_names else None
            if score is None or not np.array_equal(score, citizens.column("score").to_numpy()):
                findings.append(Finding("replay", None, None, "the stored final scores are not "
                                        "the ones the simulation gives"))
            elif digest.table_digest(kept) != digest.table_digest(citizens):
                findings.append(Finding("replay", None, None, "the stored citizens table is not "
                                        "the one the simulation gives"))
        result = result_of(state, digester.head.hex(), citizens)
        if (manifest.get("result") or {}).get("fingerprint") != result["fingerprint"]:
            findings.append(Finding("replay", None, None, "the manifest's fingerprint is not "
                                    f"the replay's ({result['fingerprint'][:16]}...)"))
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


def inspect(run_dir: Path, manifest: dict, sim) -> dict:
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

    state = engine.initial_state(sim)
    rows = stored_ledger(run_dir, manifest)
    labels = manifest["rules"]
    manual_ids = np.asarray([k for k, x in enumerate(labels) if x.startswith("manual by")])
    is_manual = np.isin(rows["rule"], manual_ids)
    final = np.round(read_table(run_dir, "citizens", manifest, ["score"]).column(
        "score").to_numpy() * 1000)
    start = state.scores
    if len(final) != len(start):
        raise UserError(f"{run_dir}/citizens.parquet: {len(final)} citizens, the run has "
                        f"{len(start)}")
    total = start.copy()
    np.add.at(total, rows["citizen"], rows["delta"])
    # a stored score that is not a number (a tampered table) is unexplained too
    unexplained = np.flatnonzero(~np.isfinite(final) | (total != np.nan_to_num(final)))
    # running score after each row, citizen by citizen in ledger order
    order = np.argsort(rows["citizen"], kind="stable")
    c_sorted, d_sorted = rows["citizen"][order], rows["delta"][order]
    after = np.empty(len(order), dtype=np.int64)
    if len(order):
        run = np.cumsum(d_sorted)
        first = np.r_[0, np.flatnonzero(np.diff(c_sorted)) + 1]
        offset = np.repeat(run[first] - d_sorted[first], np.diff(np.r_[first, len(order)]))
        after[order] = start[c_sorted] + run - offset
    table = state.policy.rules
    n_rules = len(table.plain)
    if n_rules:
        plain_rule = (rows["rule"] < n_rules) & table.plain[np.minimum(rows["rule"], n_rules - 1)]
        points = table.delta[np.minimum(rows["rule"], n_rules - 1)]
    else:  # a list-only policy: no rule has points
        plain_rule = np.zeros(len(rows["rule"]), dtype=bool)
        points = np.zeros(len(rows["rule"]), dtype=np.int64)
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


def caught(run_dir: Path, manifest: dict, found: dict) -> dict[str, dict[str, float]]:
    """Against the lab's record of what insiders did: per attack, how many actions there
    were and how many the audit found (a manual row of that citizen that day, a citizen
    whose score the ledger does not explain, or a deviating row of that citizen that day)."""
    try:
        done = read_table(run_dir, "manipulations", manifest).to_pandas()
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


def audit(run_dir: Path, full: bool = False, expect: str | None = None) -> dict:
    """The audit report of a stored run.

    Args:
        run_dir: the run folder.
        full: also replay the run (see :func:`replay`).
        expect: the fingerprint the user kept elsewhere (from when the run was made): the
            manifest's must be this one.

    Returns:
        ``intact`` (no finding at all), ``findings`` (every :class:`Finding` as a dict),
        ``days_checked``, ``chain_intact`` (the ledger's chain and head; None if it could not
        be checked), what the ledger
        shows (``manual``, ``unexplained``, ``deviations``; None where the run has no
        citizens table yet), ``insider_actions_found`` and, with ``full``,
        ``replay_matches`` and ``replay_findings``.
    """
    from panopticon import engine

    report: dict = {"run": str(run_dir), "days_checked": 0, "manual": [], "unexplained": None,
                    "deviations": None, "insider_actions_found": {}}
    try:
        manifest = read_manifest(run_dir)
    except UserError as exc:
        return _verdict(report, [Finding("manifest", None, None, str(exc))], full, False)
    findings = [Finding("file", None, None, p) for p in check_files(run_dir, manifest, True)]
    try:
        spec = read_scenario(run_dir, manifest)
        sim = engine.build(spec)
    except UserError as exc:
        return _verdict(report, [Finding("scenario", None, None, str(exc))], full, False)
    findings += check_manifest(run_dir, manifest, sim)
    days = manifest["days_completed"]
    report["days_checked"] = days
    try:
        rows, actual, content = check_rows(run_dir, manifest, days)
        chain, ledger_head = verify_chain(run_dir, manifest, days)
    except UNREADABLE as exc:
        return _verdict(report, [*findings, Finding("file", None, None, _unreadable(exc))], full,
                        False)
    findings += rows + chain
    result = manifest.get("result") or {}
    if manifest["status"] == COMPLETE:
        try:
            citizens = digest.table_digest(read_table(run_dir, "citizens", manifest))
            found = inspect(run_dir, manifest, sim)
        except UNREADABLE as exc:
            findings.append(Finding("file", None, None, _unreadable(exc)))
        else:
            report.update(found)
            report["insider_actions_found"] = caught(run_dir, manifest, found)
            bound = {"state_fingerprint": result.get("state_fingerprint"),
                     "ledger_head": ledger_head, "content_head": content,
                     "citizens_digest": citizens}
            if not all(isinstance(v, str) and len(v) == 64 for v in bound.values()) or \
                    digest.run_fingerprint(*bound.values()) != result.get("fingerprint"):
                findings.append(Finding("fingerprint", None, None, "the manifest's fingerprint "
                                        "is not the one the stored rows make"))
    if expect is not None and result.get("fingerprint") != expect.strip().lower():
        findings.append(Finding("fingerprint", None, None, f"the run's fingerprint "
                                f"{str(result.get('fingerprint'))[:16]}... is not the one you "
                                f"kept ({expect[:16]}...)"))
    if full:
        try:
            report["replay_findings"] = [asdict(f) for f in replay(run_dir, manifest, actual)]
        except UNREADABLE as exc:
            findings.append(Finding("file", None, None, "the replay cannot read the run: "
                                    + _unreadable(exc)))
    return _verdict(report, findings, full)


UNREADABLE = (UserError, ValueError, TypeError, KeyError, IndexError, pa.ArrowException)
"""What reading a tampered table can raise: each becomes a finding, never a traceback."""


def _unreadable(exc: Exception) -> str:
    return str(exc) if isinstance(exc, UserError) else \
        f"a stored table is not what the run wrote ({type(exc).__name__}: {exc})"


def _verdict(report: dict, findings: list[Finding], full: bool, chain_checked: bool = True
             ) -> dict:
    """The report with its findings and verdicts; ``chain_intact`` is None where the chain
    could not be checked at all (the manifest, scenario or a table is unreadable)."""
    report["findings"] = [asdict(f) for f in findings]
    report["chain_intact"] = not any(f.kind in LEDGER_KINDS for f in findings) \
        if chain_checked else None
    if full:
        report.setdefault("replay_findings", [])
        report["replay_matches"] = not report["replay_findings"] and not findings
    report["intact"] = not findings and not report.get("replay_findings") and not (
        report["unexplained"] or report["deviations"])
    return report


QUICK_ABOVE = 20_000_000
"""Ledger rows above which a report shows the quick audit (:func:`quick_audit`)."""


def quick_audit(run_dir: Path) -> dict:
    """What can be checked of a big run in seconds, without reading the rows themselves: the
    files' list and sizes, each day's stored ledger row count against the count that was
    hashed, the chain's end against the manifest's head, and the manual adjustments with who
    made them (counted by DuckDB). The hashes, the unexplained scores and the edited rules
    need ``panopticon audit``; their keys are None here."""
    import duckdb

    manifest = read_manifest(run_dir)
    findings = [Finding("file", None, None, p) for p in check_files(run_dir, manifest)]
    links = read_table(run_dir, "ledger_chain", manifest).to_pandas()
    files = [str(p) for p in table_parts(run_dir, "ledger", manifest)]
    try:
        con = duckdb.connect()
        counts = dict(con.execute("select day, count(*) from read_parquet($files) group by day",
                                  {"files": files}).fetchall())
        manual = con.execute("select day, citizen, rule, delta_milli from read_parquet($files) "
                             "where rule like 'manual by%' order by day, citizen",
                             {"files": files}).fetchall()
    except duckdb.Error as exc:
        raise UserError(f"{run_dir}/ledger: unreadable ({exc})") from None
    findings += [Finding("inserted" if counts.get(d, 0) > n else "deleted", int(d), None,
                         f"day {d}: {counts.get(d, 0)} rows stored, {n} hashed")
                 for d, n in zip(links.day, links.rows, strict=True) if counts.get(d, 0) != n]
    findings += [Finding("range", int(d), None, f"{n} ledger rows dated day {d}, outside the run")
                 for d, n in counts.items() if not 0 <= d < manifest["days_completed"]]
    final = _heads(manifest)["ledger_head"]
    if final is None or (len(links) and links["head"].iloc[-1] != final):
        findings.append(Finding("chain", None, None, "the stored chain does not end at the "
                                "manifest's ledger head (or it has none)"))
    report = {"run": str(run_dir), "days_checked": len(links), "quick": True,
              "manual": [{"day": d, "citizen": c, "official": rule.split()[3], "delta": x / 1000}
                         for d, c, rule, x in manual],
              "unexplained": None, "deviations": None, "insider_actions_found": {}}
    return _verdict(report, findings, False)
