"""One citizen's story, told from a run's tables: ``panopticon explain RUN --citizen ID``.

The story is in day order: the score at the start, every score change (the ledger row's rule
and points, the observation behind it and whether it was true, the running score after it),
list changes, tier changes, and every refused opportunity; then a summary. Nothing here
prints: :func:`explain` returns a :class:`Story` that the command line renders (or prints as
JSON with :meth:`Story.to_dict`).

Only the citizen's rows are read: for a stored run DuckDB scans the Parquet parts with a
``WHERE citizen = ...`` (runs can hold 100 million ledger rows), for an in-memory run the
Arrow tables are filtered.

Tiers are not stored per day; they are derived here as the engine classifies them: the first
tier whose ``min`` the end-of-day score reaches, capped by grade overrides, which are rebuilt
from the ledger rows of the rules that carry an ``override`` (such a row is written whenever the
rule applies, even with 0 points). The derived final tier is checked against the stored one
and a note says so if they differ.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panopticon.errors import UserError
from panopticon.policy.schema import MILLI, PolicySpec, to_milli
from panopticon.scenario import ScenarioSpec

STORY_TABLES = ("ledger", "observations", "lists", "refusals", "appeals")
"""The tables a story reads besides ``citizens``."""

_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_COLUMNS = {
    "ledger": ("day", "rule", "delta_milli", "observation", "observation_true"),
    "observations": ("id", "day", "event", "source", "is_true", "true_actor"),
    "lists": ("day", "list", "change", "observation"),
    "refusals": ("day", "opportunity", "wrongful", "evaded", "retry"),
    "appeals": ("day", "outcome", "waited"),
}
_HEADLINE = ("age", "sex", "region", "social_group", "residency", "occupation")


# ------------------------------------------------------------------ the story


@dataclass(frozen=True)
class Line:
    """One line of the story.

    Attributes:
        day: the simulated day (0-based).
        kind: ``start``, ``score``, ``list``, ``tier`` or ``refusal``.
        text: the line in words.
        data: the same as data (what ``--json`` prints besides day, kind and text).
        alarm: the line rests on a false observation, or is a wrongful refusal.
    """

    day: int
    kind: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    alarm: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The line as JSON-ready data."""
        return {"day": self.day, "kind": self.kind, **self.data, "text": self.text}


@dataclass(frozen=True)
class Story:
    """A citizen's story in one run.

    Attributes:
        run_id: the run's id (None for an in-memory run).
        citizen: the citizen's id.
        attributes: the citizen's row of the ``citizens`` table (final score, tier,
            ``false_points``, ``listed_*`` included).
        start_score: the score before day 0, in points.
        lines: the story in day order.
        summary: counts: score changes, of them from false observations and their points,
            observations naming the citizen, tier and list changes, refusals, wrongful ones.
        notes: anything the story could not reconcile with the stored final standing.
    """

    run_id: str | None
    citizen: int
    attributes: dict[str, Any]
    start_score: float
    lines: tuple[Line, ...]
    summary: dict[str, Any]
    notes: tuple[str, ...] = ()

    def header(self) -> str:
        """Who the citizen is and where they ended up, in one line."""
        a = self.attributes
        who = ", ".join(f"{k.removeprefix('social_')} {a[k]}" if k != "sex" else str(a[k])
                        for k in _HEADLINE if k in a)
        lists = [k.removeprefix("listed_") for k, v in a.items() if k.startswith("listed_") and v]
        return (f"citizen {self.citizen}: {who}; final score {_points(_milli(a['score']))}, "
                f"tier {a['tier']}, false points {_points(_milli(a['false_points']))}, "
                f"listed: {', '.join(lists) or 'none'}")

    def summary_text(self) -> str:
        """The summary in one line."""
        s = self.summary
        return (f"{_count(s['score_changes'], 'score change')}, "
                f"{s['from_false_observations']} from false observations "
                f"({_signed(_milli(s['points_from_false_observations']))} points); "
                f"named in {_count(s['observations'], 'observation')}, "
                f"{s['false_observations']} false; "
                f"{_count(s['tier_changes'], 'tier change')}; "
                f"{_count(s['list_changes'], 'list change')}; "
                f"{_count(s['refusals'], 'refusal')}, {s['wrongful_refusals']} wrongful, "
                f"{s['evaded_refusals']} evaded")

    def text_lines(self) -> list[str]:
        """The whole story as plain text: header, one line per story line, summary, notes."""
        width = len(str(max((x.day for x in self.lines), default=0)))
        body = [f"day {x.day:>{width}}  {x.kind:<7}  {x.text}" for x in self.lines]
        return [self.header(), *body, f"summary: {self.summary_text()}",
                *(f"note: {n}" for n in self.notes)]

    def to_dict(self) -> dict[str, Any]:
        """The story as JSON-ready data (what ``panopticon explain --json`` prints)."""
        return {"run_id": self.run_id, "citizen": self.citizen,
                "attributes": _plain(self.attributes), "start_score": self.start_score,
                "lines": [x.to_dict() for x in self.lines], "summary": self.summary,
                "notes": list(self.notes)}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in row.items() if k != "citizen"}, default=str))


def _milli(points: float) -> int:
    return round(points * MILLI)


def _points(milli: int) -> str:
    """Milli-points as points, exactly: 62500 -> '62.5', -50000 -> '-50'."""
    sign = "-" if milli < 0 else ""
    whole, frac = divmod(abs(milli), MILLI)
    return f"{sign}{whole}" + (f".{frac:03d}".rstrip("0") if frac else "")


def _signed(milli: int) -> str:
    return ("+" if milli >= 0 else "") + _points(milli)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _tier_of(score: int, floors: list[int]) -> int:
    """Index of the first tier whose floor the score reaches (0 = highest), else the last."""
    for k, floor in enumerate(floors):
        if score >= floor:
            return k
    return len(floors)


def _observation(obs_id: int | None, truth: bool | None, observations: dict[int, dict],
                 citizen: int) -> tuple[str, dict | None]:
    """Words and data for the observation behind a ledger row or a list change."""
    if obs_id is None:
        return "", None
    o = observations.get(obs_id)
    true = o["is_true"] if truth is None and o is not None else truth
    data = {"id": obs_id, "true": true}
    words = f"; observation {obs_id}"
    if o is not None:
        data.update(event=o["event"], source=o["source"], true_actor=o["true_actor"])
        words += f": {o['event']} by {o['source']}"
    if true is not None:
        words += ", true" if true else ", FALSE"
    if o is not None and not true:
        actor = o["true_actor"]
        words += (" (a phantom record: nobody did it)" if actor is None
                  else f" (citizen {actor} did it)" if actor != citizen else "")
    return words, data


def tell(citizen: int, attributes: dict[str, Any], policy: PolicySpec, rule_labels: list[str],
         ledger: list[dict], observations: list[dict], lists: list[dict],
         refusals: list[dict], days: int, run_id: str | None = None,
         others: list[dict] = (), appeals: list[dict] = ()) -> Story:
    """The story from one citizen's rows (each list in stored order, days ascending).

    Args:
        citizen: the citizen's id. attributes: their ``citizens`` row.
        policy: the run's policy (tiers, overrides, ``score.start``).
        rule_labels: the run's ledger rule labels (the policy's rules first).
        ledger, observations, lists, refusals: the citizen's rows of those tables, as dicts
            with the columns of :data:`_COLUMNS`.
        days: days the run completed (a grade cap ending later is not a tier change).
        run_id: the run's id. others: observations behind the citizen's rows that name
            someone else (looked up, not counted; none are expected). appeals: the citizen's
            appeals rows (filed, upheld, rejected), told first on their day (appeals are
            heard before the day's observations are scored).
    """
    names = policy.tier_names
    floors = [to_milli(t.min) for t in policy.tiers[:-1]]
    own = rule_labels[:len(policy.rules)]
    overrides = {label: (names.index(r.override.max_tier), r.override.days)
                 for label, r in zip(own, policy.rules, strict=True) if r.override is not None}
    rule_phase = set(own) | {f"expired:{label}" for label in own}
    by_id = {o["id"]: o for o in [*others, *observations]}

    final = _milli(attributes["score"])
    start = final - sum(r["delta_milli"] for r in ledger)
    notes: list[str] = []
    if not isinstance(policy.score.start, str) and to_milli(policy.score.start) != start:
        notes.append(f"the final score less every change is {_points(start)}, not the "
                     f"scenario's score.start {_points(to_milli(policy.score.start))}")

    ledger_days, list_days, refusal_days = defaultdict(list), defaultdict(list), defaultdict(list)
    appeal_days = defaultdict(list)
    for rows, bucket in ((ledger, ledger_days), (lists, list_days), (refusals, refusal_days),
                         (appeals, appeal_days)):
        for r in rows:
            bucket[r["day"]].append(r)
    queue = sorted(set(ledger_days) | set(list_days) | set(refusal_days) | set(appeal_days))
    heapq.heapify(queue)

    score, tier = start, _tier_of(start, floors)
    cap_tier, cap_until, cap_by = 0, 0, ""  # the engine's grade cap: tier index, end (excl.)
    was_capped = False
    lines = [Line(0, "start", f"starts at {_points(start)} points, tier {names[tier]}",
                  {"score": start / MILLI, "tier": names[tier]})]

    def score_line(d: int, r: dict) -> Line:
        nonlocal score, cap_tier, cap_until, cap_by
        score += r["delta_milli"]
        label = r["rule"]
        words, obs = _observation(r["observation"], r["observation_true"], by_id, citizen)
        data: dict[str, Any] = {"rule": label, "delta": r["delta_milli"] / MILLI,
                                "score": score / MILLI, "observation": obs}
        text = f"{label} {_signed(r['delta_milli'])} -> {_points(score)}{words}"
        if label in overrides:  # as the engine: the worse of the running cap and this one
            ot, length = overrides[label]
            current = cap_tier if cap_until > d else 0
            if ot >= current:
                cap_by = f"{label} on day {d}"
            cap_tier, cap_until = max(current, ot), max(cap_until, d + length)
            data["override"] = {"max_tier": names[ot], "until_day": d + length - 1}
            text += f"; caps the tier at {names[ot]} through day {d + length - 1}"
            if cap_until < days:
                heapq.heappush(queue, cap_until)
        return Line(d, "score", text, data, alarm=obs is not None and obs["true"] is False)

    seen: set[int] = set()
    while queue:
        d = heapq.heappop(queue)
        if d in seen:
            continue
        seen.add(d)
        for r in appeal_days.get(d, []):
            waited = "" if r["outcome"] == "filed" else f" after {_count(r['waited'], 'day')}"
            lines.append(Line(d, "appeal", f"appeal {r['outcome']}{waited}",
                              {"outcome": r["outcome"], "waited": r["waited"]}))
        today = ledger_days.get(d, [])
        for r in today:
            if r["rule"] in rule_phase:
                lines.append(score_line(d, r))
        for r in list_days.get(d, []):
            words, obs = _observation(r["observation"], None, by_id, citizen)
            lines.append(Line(d, "list", f"{r['list']}: {r['change']}{words}",
                              {"list": r["list"], "change": r["change"], "observation": obs},
                              alarm=obs is not None and obs["true"] is False))
        for r in today:
            if r["rule"] not in rule_phase:
                lines.append(score_line(d, r))
        by_score = _tier_of(score, floors)
        capped = cap_until > d and cap_tier > by_score
        now = max(by_score, cap_tier) if cap_until > d else by_score
        if now != tier:
            why = (f" (capped by {cap_by})" if capped
                   else " (the grade cap ended)" if was_capped else "")
            lines.append(Line(d, "tier", f"{names[tier]} -> {names[now]}{why}",
                              {"from": names[tier], "to": names[now],
                               "capped_by": cap_by if capped else None}))
            tier = now
        was_capped = capped
        for r in refusal_days.get(d, []):
            words = [r["opportunity"]]
            if r["retry"]:
                words.append("a retry")
            if r["wrongful"]:
                words.append("wrongful: their true standing would have passed")
            if r["evaded"]:
                words.append("evaded: got it anyway")
            lines.append(Line(d, "refusal", ", ".join(words),
                              {k: r[k] for k in ("opportunity", "wrongful", "evaded", "retry")},
                              alarm=bool(r["wrongful"])))

    if names[tier] != attributes["tier"]:
        notes.append(f"the derived final tier {names[tier]} differs from the stored tier "
                     f"{attributes['tier']}")
    false_rows = [r for r in ledger if r["observation_true"] is False]
    false_milli = sum(r["delta_milli"] for r in false_rows)
    if false_milli != _milli(attributes["false_points"]):
        notes.append(f"changes from false observations add up to {_points(false_milli)} points; "
                     f"the citizens table says {_points(_milli(attributes['false_points']))}")
    summary = {
        "score_changes": len(ledger),
        "from_false_observations": len(false_rows),
        "points_from_false_observations": false_milli / MILLI,
        "observations": len(observations),
        "false_observations": sum(1 for o in observations if not o["is_true"]),
        "tier_changes": sum(1 for x in lines if x.kind == "tier"),
        "list_changes": len(lists),
        "refusals": len(refusals),
        "wrongful_refusals": sum(1 for r in refusals if r["wrongful"]),
        "evaded_refusals": sum(1 for r in refusals if r["evaded"]),
        "appeals_filed": sum(1 for r in appeals if r["outcome"] == "filed"),
        "appeals_upheld": sum(1 for r in appeals if r["outcome"] == "upheld"),
        "final_score": final / MILLI,
        "final_tier": attributes["tier"],
    }
    return Story(run_id, citizen, attributes, start / MILLI, tuple(lines), summary, tuple(notes))


# ------------------------------------------------------------------ reading a run


def parse_citizen(text: str | int, citizens: int) -> int:
    """A citizen id from the command line: an integer from 0 to ``citizens - 1``."""
    valid = f"citizens of this run are 0 to {citizens - 1}"
    try:
        value = int(str(text).strip())
    except ValueError:
        raise UserError(f"--citizen {text!r} is not an integer; {valid}") from None
    if not 0 <= value < citizens:
        raise UserError(f"no citizen {value}: {valid}")
    return value


def locate(ref: str | Path, store: str | Path) -> Path:
    """A run folder from a folder path or a run id under ``store``; a folder without a
    manifest is named as such."""
    from panopticon.store.local import find_run

    for path in (Path(ref), Path(store) / str(ref)):
        if path.is_dir() and not (path / "manifest.json").exists():
            raise UserError(f"{path / 'manifest.json'}: missing; {path} is not a panopticon run")
    return find_run(ref, Path(store))


def _parts(run_dir: Path, days: int) -> dict[str, list[Path]]:
    """Each story table's Parquet parts (those the run's manifest lists, once its files are
    checked), checked to cover days 0 to ``days - 1`` once."""
    from panopticon.store.local import open_checked, table_parts

    manifest = open_checked(run_dir)
    found: dict[str, dict[str, Path]] = {}
    for table in STORY_TABLES:
        folder = run_dir / table
        if not folder.is_dir():
            raise UserError(f"{folder}: missing (the run's {table} table)")
        found[table] = {p.name: p for p in table_parts(run_dir, table, manifest)
                        if _PART.match(p.name)}
    every = set().union(*found.values())
    for table, parts in found.items():
        missing = sorted(every - set(parts))
        if missing:
            raise UserError(f"{run_dir / table / missing[0]}: missing Parquet part (the other "
                            f"tables have it)")
    expect = 0
    for name in sorted(every, key=lambda n: int(_PART.match(n).group(1))):
        lo, hi = (int(x) for x in _PART.match(name).groups())
        if lo != expect:
            break
        expect = hi + 1
    if expect < days:
        raise UserError(f"{run_dir}: missing Parquet part for day {expect} in "
                        f"{', '.join(STORY_TABLES)} (the run completed {days} days)")
    return {t: sorted(found[t].values()) for t in STORY_TABLES}


class _Stored:
    """DuckDB over one run folder's Parquet parts, reading only one citizen's rows."""

    def __init__(self, run_dir: Path, days: int):
        import duckdb

        self.dir = run_dir
        self.parts = _parts(run_dir, days)
        self.con = duckdb.connect()

    def _rows(self, files: list[Path], columns: tuple[str, ...], where: str,
              params: dict[str, Any], order: str = "day, ") -> list[dict]:
        import duckdb

        from panopticon.store.query import parquet_files

        # columns, where and order are this module's constants; values and paths are bound
        sql = (f"select {', '.join(columns)} from read_parquet($files, filename=true, "
               f"file_row_number=true) where {where} order by {order}filename, file_row_number")
        try:
            cur = self.con.execute(sql, {"files": parquet_files(files), **params})
            names = [c[0] for c in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        except duckdb.Error as exc:
            for f in files:  # which file: read each alone
                try:
                    self.con.execute(sql, {"files": parquet_files([f]), **params}).fetchall()
                except duckdb.Error as one:
                    raise UserError(f"{f}: corrupt or unreadable Parquet file "
                                    f"({str(one).splitlines()[0]})") from None
            raise UserError(f"{files[0].parent}: cannot read ({str(exc).splitlines()[0]})") \
                from None

    def rows(self, table: str, citizen: int) -> list[dict]:
        if not self.parts[table]:
            return []
        return self._rows(self.parts[table], _COLUMNS[table], "citizen = $c", {"c": citizen})

    def observations(self, ids: list[int]) -> list[dict]:
        if not ids or not self.parts["observations"]:
            return []
        return self._rows(self.parts["observations"], _COLUMNS["observations"],
                          "list_contains($ids, id)", {"ids": ids})

    def citizen(self, citizen: int) -> dict | None:
        path = self.dir / "citizens.parquet"
        if not path.exists():
            raise UserError(f"{path}: missing (the citizens table is written when a run "
                            f"completes)")
        rows = self._rows([path], ("*",), "citizen = $c", {"c": citizen}, order="")
        for row in rows:
            row.pop("filename", None)
            row.pop("file_row_number", None)
        return rows[0] if rows else None


class _Memory:
    """An in-memory run's Arrow tables, filtered to one citizen."""

    def __init__(self, result):
        self.result = result

    def _filter(self, table: str, mask) -> list[dict]:
        t = self.result.table(table)
        return t.filter(mask(t)).to_pylist()

    def rows(self, table: str, citizen: int) -> list[dict]:
        import pyarrow.compute as pc

        return [{k: r[k] for k in _COLUMNS[table]}
                for r in self._filter(table, lambda t: pc.equal(t["citizen"], citizen))]

    def observations(self, ids: list[int]) -> list[dict]:
        import pyarrow as pa
        import pyarrow.compute as pc

        return [{k: r[k] for k in _COLUMNS["observations"]} for r in self._filter(
            "observations", lambda t: pc.is_in(t["id"], value_set=pa.array(ids, pa.int64())))]

    def citizen(self, citizen: int) -> dict | None:
        import pyarrow.compute as pc

        rows = self._filter("citizens", lambda t: pc.equal(t["citizen"], citizen))
        return rows[0] if rows else None


def explain(run: Any, citizen: int | str, scenario: ScenarioSpec | None = None) -> Story:
    """One citizen's story.

    Args:
        run: a run folder, or a :class:`panopticon.api.RunResult` (stored or in memory).
        citizen: the citizen's id (an int, or text from the command line).
        scenario: the run's scenario; needed only for an in-memory run (a stored run has
            its ``scenario.json``).

    Raises:
        UserError: an unknown or incomplete run, a citizen out of range, a missing or corrupt
            manifest, scenario or Parquet file (named).
    """
    from panopticon.policy.scoring import CompiledPolicy
    from panopticon.store.local import COMPLETE, open_checked, read_scenario

    in_memory = hasattr(run, "manifest") and run.path is None
    if in_memory:
        if scenario is None:
            raise UserError("an in-memory run needs its scenario: explain(result, id, scenario)")
        manifest, spec, source = run.manifest, scenario, _Memory(run)
        days = int(manifest.get("days_completed", spec.run.days))
    else:
        path = Path(run.path if hasattr(run, "manifest") else run)
        if not path.is_dir():
            raise UserError(f"{path}: no such run folder")
        manifest = open_checked(path)
        if manifest.get("status") != COMPLETE:
            raise UserError(f"{path}: the run is {manifest.get('status')!r} "
                            f"({manifest.get('days_completed', 0)} of {manifest.get('days')} "
                            f"days); explain reads complete runs (`panopticon run --resume "
                            f"{path}` finishes it)")
        spec = read_scenario(path, manifest)
        days = int(manifest.get("days_completed", spec.run.days))
        source = _Stored(path, days)
    who = parse_citizen(citizen, int(manifest.get("citizens") or spec.run.citizens))
    attributes = source.citizen(who)
    if attributes is None:
        raise UserError(f"no citizen {who} in the run's citizens table")
    ledger, lists = source.rows("ledger", who), source.rows("lists", who)
    observations = source.rows("observations", who)
    named = {o["id"] for o in observations}
    behind = sorted({r["observation"] for r in [*ledger, *lists]
                     if r["observation"] is not None} - named)
    labels = list(manifest.get("rules") or CompiledPolicy.compile(spec.policy).rule_labels)
    return tell(who, attributes, spec.policy, labels, ledger, observations, lists,
                source.rows("refusals", who), days, manifest.get("run_id"),
                others=source.observations(behind), appeals=source.rows("appeals", who))
