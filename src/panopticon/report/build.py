"""Build the report: read each run through the store and API readers, compute its numbers
with the metrics module, turn them into findings, charts and tables, and write one HTML page
with the Vega JavaScript inlined once, so that it works offline.

Reading: every table comes through :func:`panopticon.open_run` (``RunResult.table``) or
:func:`panopticon.store.local.read_table` (a few columns of ``citizens`` and ``refusals``);
disparities, wrongful counts, behaviour change and appeals come from
:mod:`panopticon.metrics.run`; stories from :func:`panopticon.explain.explain`; the ledger is
read only by the audit (:func:`panopticon.audit.audit`, without replay).

The findings are sentences from :func:`findings`, a pure function of the numbers
:func:`facts_of` gathers, so that a test can hold every sentence against the metrics.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from panopticon.errors import UserError
from panopticon.metrics.run import (
    ATTRIBUTES,
    FAVOURABLE,
    FOUR_FIFTHS,
    HARMS,
    MIN_CITIZENS,
    MIN_EVENTS,
    REFERENCE,
    TOO_FEW,
    UNCLEAR,
)
from panopticon.report.template import CSS, PAGE, SCRIPT

#: (id, heading) of every section, in page order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("findings", "Findings"),
    ("scenario", "The scenario in plain words"),
    ("headline", "How many were hurt"),
    ("scores", "Scores and tiers"),
    ("refusals", "Who gets refused what"),
    ("disparity", "Who is hurt more: disparities between groups"),
    ("behaviour", "Behaviour change"),
    ("network", "Network change"),
    ("audit", "The audit and appeals"),
    ("stories", "Citizens' stories"),
)

#: The one definition of a wrongful refusal the page uses (the ``wrongful`` column of
#: ``refusals``, see :mod:`panopticon.sanctions`).
WRONGLY_REFUSED = ("A refusal is wrongful when the gates would not have refused the citizen on "
                   "their true standing: their score without the points of false observations, "
                   "and without listings that only false observations caused.")

STORY_SEED = 20260101
PER = 1000  # harms are shown per this many citizens
MAX_FINDINGS = 6

#: Tier colours, best to worst (ColorBrewer RdYlGn without its pale middle): a tier's colour
#: is its place in the policy's order, never a categorical default.
TIER_SCHEME = ("#006837", "#1a9850", "#66bd63", "#a6d96a", "#d9ef8b", "#fee08b", "#fdae61",
               "#f46d43", "#d73027", "#a50026")


def tier_colours(k: int) -> list[str]:
    """``k`` colours of :data:`TIER_SCHEME` spread from its best end to its worst, in order
    (one tier: the best end)."""
    if k <= 1:
        return list(TIER_SCHEME[:k])
    idx = np.round(np.linspace(0, len(TIER_SCHEME) - 1, k)).astype(int)
    if len(set(idx)) < k:  # more tiers than colours: interpolate
        return [_mix(i * (len(TIER_SCHEME) - 1) / (k - 1)) for i in range(k)]
    return [TIER_SCHEME[i] for i in idx]


def _mix(pos: float) -> str:
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(TIER_SCHEME) - 1)
    t = pos - lo
    a, b = (tuple(int(TIER_SCHEME[i][j:j + 2], 16) for j in (1, 3, 5)) for i in (lo, hi))
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------------------------------------
# gathering

@dataclass(frozen=True)
class Finding:
    """One finding: ``kind`` (``wrongly_refused``, ``falsely_named``, ``disparity``,
    ``no_clear_difference``, ``behaviour``, ``appeals``, ``review``), the sentence, and the
    numbers it states (as the metrics gave them)."""

    kind: str
    text: str
    numbers: dict[str, Any]


@dataclass(frozen=True)
class StoryView:
    """A citizen's story on the page: why this citizen, the narrative, and the log behind it."""

    why: str
    citizen: int
    narrative: str
    log: list[str]


@dataclass
class RunData:
    """What the report shows of one run; ``impact`` is the metrics' disparate impact
    (attribute -> category -> measure -> row)."""

    label: str
    details: str
    path: Path
    result: Any
    manifest: dict
    spec: Any
    tiers: list[str]
    daily: pd.DataFrame
    opportunities: pd.DataFrame | None = None
    behaviour: pd.DataFrame | None = None
    network: pd.DataFrame | None = None
    appeals: pd.DataFrame | None = None
    impact: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    tiers_by: pd.DataFrame | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    audit: dict | None = None
    notes: dict[str, str] = field(default_factory=dict)
    stories: list[StoryView] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete"

    @property
    def citizens(self) -> int:
        return int(self.manifest["citizens"])

    @property
    def wrongly_refused(self) -> int | None:
        """Citizens wrongly refused at least once over the whole run (None: no refusals)."""
        whole = self.facts.get("whole_run") or {}
        k = whole.get("citizens_wrongly_refused")
        return None if k is None else int(k)

    @property
    def disparity(self) -> dict[str, pd.DataFrame]:
        """:attr:`impact` (:func:`~panopticon.metrics.run.disparate_impact_all`'s) as one flat
        frame per attribute: ``value``, ``citizens``, and per measure m ``m`` (the rate) and
        ``m_<field>`` for each of the metric's fields (None as NaN)."""
        out = {}
        for attr, cats in self.impact.items():
            rows = []
            for value, row in cats.items():
                flat: dict[str, Any] = {"value": value, "citizens": float(row["citizens"])}
                for m, r in row.items():
                    if isinstance(r, dict):
                        for k, v in r.items():
                            name = m if k == "rate" else f"{m}_{k}"
                            flat[name] = math.nan if v is None else v
                rows.append(flat)
            out[attr] = pd.DataFrame(rows)
        return out


def _small(run: RunData | Any, name: str) -> pd.DataFrame | None:
    """A small table through ``RunResult.table`` as pandas, or None when the run has none
    (no part listed in its manifest); a corrupt one raises, named."""
    from panopticon.store.local import table_parts

    result = run.result if isinstance(run, RunData) else run
    if not table_parts(result.path, name, result.manifest):
        return None
    frame = result.table(name).to_pandas()
    for col in frame.columns:  # dictionary columns as plain strings
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    return frame


def _columns(run: RunData, table: str, columns: list[str]) -> pd.DataFrame | None:
    """A few columns of a run's table (:func:`panopticon.store.local.read_table`), or None
    when the run has no such table or not all the columns."""
    import pyarrow.parquet as pq

    from panopticon.store.local import read_table, table_parts

    if table == "citizens":
        if "citizens.parquet" not in run.manifest["files"]:
            return None
        first = run.path / "citizens.parquet"
    else:
        parts = table_parts(run.path, table, run.manifest)
        if not parts:
            return None
        first = parts[0]
    try:
        names = set(pq.read_schema(first).names)
    except (OSError, ValueError) as exc:
        raise UserError(f"{first}: corrupt Parquet file ({str(exc).splitlines()[0]})") from None
    if not set(columns) <= names:
        return None
    frame = read_table(run.path, table, run.manifest, columns=columns).to_pandas()
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    return frame


def _last_survey_day(behaviour: pd.DataFrame | None) -> int | None:
    if behaviour is None or "expected" not in behaviour:
        return None
    surveyed = behaviour["day"][behaviour["expected"].notna()]
    return int(surveyed.max()) if len(surveyed) else None


def facts_of(run: RunData) -> dict[str, Any]:
    """The numbers the findings are made of, from the metrics module and the API (plain
    values only): ``citizens``, ``days``, ``opportunities`` (the run has them),
    ``whole_run`` (:meth:`RunResult.summary`'s), ``wrongful``
    (:func:`panopticon.metrics.run.wrongful`), ``disparity``
    (:func:`~panopticon.metrics.run.disparate_impact_all`), ``behaviour``
    (:func:`~panopticon.metrics.run.behaviour_change`) and ``behaviour_day`` (its last survey
    day), ``appeals`` (:func:`~panopticon.metrics.run.appeals`), ``appeals_process`` (the
    scenario has one), ``tiers`` (best first)."""
    from panopticon.metrics import run as metrics

    summary = run.result.summary()
    return {
        "citizens": run.citizens,
        "days": int(run.manifest.get("days_completed", run.manifest["days"])),
        "opportunities": bool(run.spec.opportunities),
        "whole_run": summary["whole_run"],
        "wrongful": metrics.wrongful(run.result),
        "disparity": run.impact,
        "behaviour": metrics.behaviour_change(run.result, spec=run.spec),
        "behaviour_day": _last_survey_day(run.behaviour),
        "appeals": metrics.appeals(run.result),
        "appeals_process": bool(run.spec.governance and run.spec.governance.appeals),
        "review": metrics.review(run.result),
        "tiers": list(run.tiers),
    }


def _disparity(run: RunData) -> None:
    """Every categorical attribute of the citizens (the default four first) through
    :func:`panopticon.metrics.run.disparate_impact_all` (the one implementation)."""
    from panopticon.metrics import run as metrics

    if "citizens.parquet" not in run.manifest.get("files", {}):
        run.notes["disparity"] = ("No disparities: the run did not finish, so it has no "
                                  "citizens table to compare groups by.")
        return
    # listed_* columns are outcomes (on a list at the end), not attributes to compare by
    found = [a for a in metrics.categorical_attributes(run.result)
             if not a.startswith("listed_")]
    wanted = [a for a in ATTRIBUTES if a in found] + [a for a in found if a not in ATTRIBUTES]
    run.impact = metrics.disparate_impact_all(run.result, wanted)
    attrs = [a for a in ATTRIBUTES if a in found]
    frame = _columns(run, "citizens", [*attrs, "tier"])
    if frame is not None and attrs:
        parts = [frame.groupby([a, "tier"], as_index=False).size().rename(
            columns={a: "value", "size": "citizens"}).assign(attribute=a) for a in attrs]
        run.tiers_by = pd.concat(parts, ignore_index=True)


def _stories(run: RunData) -> None:
    from panopticon.explain import explain

    if not run.complete:
        run.notes["stories"] = (f"No stories: the run is {run.manifest.get('status')!r}, and "
                                "stories are told of finished runs.")
        return
    picks: list[tuple[str, int]] = []
    citizens = _columns(run, "citizens", ["citizen", "false_points"])
    if citizens is not None:
        hit = citizens[citizens["false_points"] != 0]
        if len(hit):
            worst = hit.assign(a=hit["false_points"].abs()).sort_values(
                ["a", "citizen"], ascending=[False, True]).iloc[0]
            picks.append(("the citizen false observations cost the most",
                          int(worst["citizen"])))
    refusals = _columns(run, "refusals", ["citizen", "wrongful"])
    if refusals is not None:
        wrong = refusals[refusals["wrongful"].astype(bool)]
        if len(wrong):
            counts = wrong.groupby("citizen").size().reset_index(name="n")
            counts = counts[~counts["citizen"].isin([c for _, c in picks])]
            if len(counts):
                top = counts.sort_values(["n", "citizen"], ascending=[False, True]).iloc[0]
                picks.append(("the citizen wrongly refused most often", int(top["citizen"])))
    rng = np.random.default_rng(STORY_SEED)
    chosen = {c for _, c in picks}
    for _ in range(10):
        c = int(rng.integers(run.citizens))
        if c not in chosen:
            picks.append(("a citizen picked at random", c))
            break
    last = int(run.manifest.get("days_completed", run.manifest["days"])) - 1
    for why, citizen in picks:
        story = explain(run.path, citizen)
        run.stories.append(StoryView(why, citizen, narrate(story, run.tiers, last),
                                     story.text_lines()))


def _audit(run: RunData) -> None:
    from panopticon.audit import QUICK_ABOVE, audit, quick_audit

    if not run.complete or "citizens.parquet" not in run.manifest["files"]:
        run.notes["audit"] = (f"No audit: the run is {run.manifest.get('status')!r}, and the "
                              "audit checks finished runs.")
        return
    chain = _small(run, "ledger_chain")
    big = chain is not None and int(chain["rows"].sum()) > QUICK_ABOVE
    run.audit = quick_audit(run.path) if big else audit(run.path)


def _load(path: Path, label: str, details: str) -> RunData:
    import panopticon
    from panopticon.metrics import run as metrics
    from panopticon.store.local import read_scenario

    result = panopticon.open_run(path)
    manifest = result.manifest
    spec = read_scenario(path, manifest)
    daily = _small(result, "daily")
    if daily is None or daily.empty:
        raise UserError(f"{path}: no daily table; the run has no days to report")
    shares = metrics.tier_shares(result) or {}
    tiers = [t for t in shares if t != "day"] or list(spec.policy.tier_names)
    run = RunData(label=label, details=details, path=path, result=result, manifest=manifest,
                  spec=spec, tiers=tiers, daily=daily)
    run.opportunities = _small(run, "opportunities")
    if run.opportunities is not None and (run.opportunities.empty or not spec.opportunities):
        run.opportunities = None  # a scenario without opportunities writes an empty table
    run.behaviour = _small(run, "behaviour")
    run.network = _small(run, "network")
    run.appeals = _small(run, "appeals")
    _disparity(run)
    run.facts = facts_of(run)
    run.findings = findings(run.facts)
    _audit(run)
    _stories(run)
    return run


def collect(runs: list[str | Path], store: str | Path = "runs") -> list[RunData]:
    """Each run (a folder or a run id under ``store``) with what the report shows of it.

    Raises:
        UserError: an unknown run, or a missing or corrupt file of one (named).
    """
    from panopticon.explain import locate
    from panopticon.store.local import read_manifest

    if not runs:
        raise UserError("give at least one run (a run folder or a run id)")
    paths = [locate(r, store) for r in runs]
    manifests = [read_manifest(p) for p in paths]
    labels = run_labels(manifests)
    details = [run_details(m, p) for m, p in zip(manifests, paths, strict=True)]
    return [_load(p, label, d) for p, label, d in zip(paths, labels, details, strict=True)]


def read_id(path: Path) -> str:
    from panopticon.store.local import read_manifest

    return read_manifest(path).get("run_id") or path.name


# ---------------------------------------------------------------------------------------------
# labels

def _plain_value(key: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and key == "citizens":
        return f"{value:,}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def run_labels(manifests: list[dict]) -> list[str]:
    """A label per run: its scenario's name, then ``key=value`` of each setting that differs
    between the runs (the sweep ``settings``, dotted keys shortened to their last part where
    that is unambiguous, then ``seed``, ``citizens``, ``days``) among the runs of the same
    scenario (runs of other scenarios differ by name already); one run alone shows its sweep
    settings. Labels still equal (the same run twice) get ``#2``, ``#3``. Never the run id."""
    facts = []
    for m in manifests:
        f: dict[str, Any] = {f"settings:{k}": v for k, v in (m.get("settings") or {}).items()}
        f.update(seed=m.get("seed"), citizens=m.get("citizens"), days=m.get("days"))
        facts.append(f)
    keys = list(dict.fromkeys(k for f in facts for k in f))
    if len(manifests) == 1:
        shown = [k for k in keys if k.startswith("settings:")]
    else:  # what tells apart runs of the same scenario (other scenarios differ by name)
        scenarios: dict[str, list[dict]] = {}
        for m, f in zip(manifests, facts, strict=True):
            scenarios.setdefault(str(m.get("scenario")), []).append(f)
        shown = [k for k in keys if any(
            len({json.dumps(f[k], default=str) if k in f else "\0" for f in same}) > 1
            for same in scenarios.values())]
    names = {k: k.removeprefix("settings:") for k in shown}
    last = {k: n.rsplit(".", 1)[-1] for k, n in names.items()}
    short = {k: last[k] if list(last.values()).count(last[k]) == 1 else names[k] for k in shown}
    labels = []
    for m, f in zip(manifests, facts, strict=True):
        parts = [str(m.get("scenario") or "run")]
        parts += [f"{short[k]}={_plain_value(short[k], f[k]) if k in f else '-'}"
                  for k in shown]
        labels.append(" · ".join(parts))
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def run_details(manifest: dict, path: Path) -> str:
    """The small print under a run's label: run id, seed, size, days, status."""
    m = manifest
    done = m.get("days_completed", m.get("days"))
    days = f"{done} days" if done == m.get("days") else f"{done} of {m.get('days')} days"
    return (f"run {m.get('run_id') or path.name} · seed {m.get('seed')} · "
            f"{int(m.get('citizens', 0)):,} citizens × {days} · {m.get('status')}")


# ---------------------------------------------------------------------------------------------
# findings (pure: numbers in, sentences and the numbers they state out)

_HARM_WORDS = {
    "wrongly_refused": "to be wrongly refused an opportunity",
    "falsely_named": "to be falsely named by a sensor",
    "sanctioned": "to be refused an opportunity because a sanction blocked it",
    "refused": "to be refused an opportunity",
}
_FAVOURABLE_WORDS = {
    "top_tier": "to end the run in the top tier",
    "perks_granted": "to be granted an attempt at an opportunity that needs a perk",
    "granted": "to be granted an attempt at an opportunity",
}
#: measures per attempt, not per citizen.
PER_ATTEMPT = ("granted", "perks_granted")
#: the order disparities are considered in: how wrong first, then how hurt.
_PRIORITY = ("wrongly_refused", "falsely_named", "sanctioned", "refused", "perks_granted",
             "top_tier", "granted")
_RESIDENCY = {"citizen": "full citizens", "resident_foreigner": "resident foreigners",
              "tourist": "tourists"}


def who(attribute: str, value: str) -> str:
    """The citizens of one category, in words: ``minority citizens``, ``female citizens``."""
    v = str(value).replace("_", " ")
    if attribute in ("social_group", "group", "sex", "region"):
        return f"{v} citizens"
    if attribute == "residency":
        return _RESIDENCY.get(str(value), f"citizens of residency {v}")
    return f"citizens whose {attribute.replace('_', ' ')} is {v}"


def per_thousand(rate: float) -> str:
    """A share as citizens per 1,000: 0.01457 -> '14.6', 0.000531 -> '0.53'."""
    v = rate * PER
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def percent(share: float) -> str:
    """A share as a percentage that never rounds a nonzero share to 0, nor a share below 1 to
    100: 0.254 -> '25.4%', 0.000129 -> '0.013%', 0.9999 -> '99.99%'."""
    v = share * 100
    if v == 0 or abs(v) >= 1:
        digits = 1
        while v < 100 and round(v, digits) >= 100 and digits < 9:
            digits += 1
        return f"{v:.{digits}f}%"
    return f"{v:.2g}%"


def _rate_words(rate: float, measure: str) -> str:
    return percent(rate) if measure in PER_ATTEMPT else f"{per_thousand(rate)} per 1,000"


def ratio_text(ratio: float, low: float, high: float, harm: bool) -> str:
    """``3.7× (95% CI 2.9–4.6)``, with as many decimals as it takes for the interval to
    show the side of 1 it lies on."""
    for d in (1, 2, 3):
        lo, hi = round(low, d), round(high, d)
        if (harm and lo > 1) or (not harm and hi < 1):
            break
    return f"{ratio:.{d}f}× (95% CI {low:.{d}f}–{high:.{d}f})"


def _supported(r: dict[str, Any]) -> bool:
    """A comparison the metrics judged (not the reference, not too few to judge) whose 95%
    ratio interval lies wholly on the worse side of 1."""
    if not isinstance(r, dict) or r.get("status") in (TOO_FEW, REFERENCE, None):
        return False
    if r.get("rate") is None:
        return False
    harm = r.get("kind", "harm") == "harm"
    if harm:
        return r.get("ratio_low") is not None and r["ratio_low"] > 1
    return r.get("ratio_high") is not None and r["ratio_high"] < 1


def _disparity_candidates(disparity: dict) -> list[dict[str, Any]]:
    """Supported comparisons by the default attributes only (:data:`ATTRIBUTES`): every extra
    attribute is more comparisons, and more chance of a spurious one."""
    out = []
    for attribute, cats in disparity.items():
        if attribute not in ATTRIBUTES:
            continue
        for category, row in cats.items():
            for measure, r in row.items():
                if measure not in _PRIORITY or not _supported(r):
                    continue
                ref = r["reference"]
                ref_row = cats.get(ref, {}).get(measure)
                if not isinstance(ref_row, dict) or ref_row.get("status") != REFERENCE:
                    continue
                harm = measure in HARMS
                out.append({"attribute": attribute, "category": category, "reference": ref,
                            "measure": measure, "kind": "harm" if harm else "favourable",
                            "rate": r["rate"], "reference_rate": ref_row["rate"],
                            "events": r["events"], "trials": r["trials"],
                            "reference_events": ref_row["events"],
                            "reference_trials": ref_row["trials"],
                            "ratio": r["ratio"], "ratio_low": r["ratio_low"],
                            "ratio_high": r["ratio_high"], "status": r["status"],
                            "flag": bool(r["flag"]),
                            "strength": r["ratio_low"] if harm else 1 / r["ratio_high"]})
    return out


def _disparity_sentence(c: dict[str, Any]) -> str:
    harm = c["kind"] == "harm"
    a, b = who(c["attribute"], c["category"]), who(c["attribute"], c["reference"])
    words = (_HARM_WORDS if harm else _FAVOURABLE_WORDS)[c["measure"]]
    scope = " at least once over the whole run" if harm else (
        " over the whole run" if c["measure"] in PER_ATTEMPT else "")
    rates = (f"{_rate_words(c['rate'], c['measure'])} against "
             f"{_rate_words(c['reference_rate'], c['measure'])}")
    if c["measure"] in PER_ATTEMPT:
        a, b = f"attempts by {a}", f"those by {b}"
    if c["ratio"] is not None:
        times = ratio_text(c["ratio"], c["ratio_low"], c["ratio_high"], harm)
        text = (f"{a[0].upper()}{a[1:]} were {times} "
                f"as likely as {b} {words}{scope} ({rates}).")
    else:  # the reference was never harmed: no ratio, only the low end of its interval
        lo = c["ratio_low"]
        d = 1 if round(lo, 1) > 1 else 2
        text = (f"{a[0].upper()}{a[1:]} were more likely than {b} {words}{scope} ({rates}; "
                f"the ratio is undefined, its 95% CI starts at {lo:.{d}f}×).")
    if c["flag"]:
        text += " That fails the four-fifths rule even at the end of its interval."
    return text


def _behaviour_finding(facts: dict[str, Any]) -> Finding | None:
    change = facts.get("behaviour") or {}
    day = facts.get("behaviour_day")
    moved = [(e, d) for e, d in change.items()
             if d.get("change") is not None and not math.isnan(d["change"])]
    if not moved:
        return None
    scope = (f"by the last survey day (day {day}), against what citizens would have done "
             "without the system" if day is not None else
             "by the end of the run, against what citizens would have done without the system")
    picks: list[tuple[str, dict]] = []
    for valence, pick in ((-1.0, min), (0.0, min), (1.0, max)):
        mine = [(e, d) for e, d in moved if d.get("valence") == valence
                and abs(d["change"]) >= 0.005]
        if mine:
            picks.append(pick(mine, key=lambda x: x[1]["change"]))
    if not picks:
        return Finding("behaviour", f"Behaviour barely moved: {scope}, no act's expected rate "
                       "changed by as much as 0.5%.",
                       {"day": day, "events": {e: d["change"] for e, d in moved}})
    label = {-1.0: "misconduct", 0.0: "a legitimate act", 1.0: "a rewarded act"}
    effect = {(-1.0, False): "deterrence", (0.0, False): "chilling",
              (1.0, True): "encouraged", (-1.0, True): "encouraged misconduct",
              (0.0, True): "encouraged", (1.0, False): "discouraged"}
    parts = []
    for e, d in picks:
        up = d["change"] > 0
        parts.append(f"{e.replace('_', ' ')} ({label[d['valence']]}) "
                     f"{'rose' if up else 'fell'} {abs(d['change']):.1%} "
                     f"({effect[(d['valence'], up)]})")
    text = f"{scope[0].upper()}{scope[1:]}: " + "; ".join(parts) + "."
    return Finding("behaviour", text, {"day": day, "events": {e: d["change"] for e, d in picks}})


def findings(facts: dict[str, Any]) -> list[Finding]:
    """Three to six findings, each a sentence with its scope, from :func:`facts_of`'s numbers.

    How many citizens were wrongly refused and falsely named (whole run) and wrongly
    sanctioned (at the peak and on the last day); up to two disparities whose 95% ratio
    interval lies wholly on the worse side of 1, never for a category or comparison the
    metrics call too few to judge (none supported: a "no clear difference" sentence); what
    behaviour changed; appeals. Pure: no reading, no state."""
    n = int(facts["citizens"])
    days = int(facts["days"])
    whole = facts.get("whole_run") or {}
    w = facts.get("wrongful") or {}
    out: list[Finding] = []
    span = f"over the whole run ({days} days)"

    if facts.get("opportunities") and "citizens_wrongly_refused" in whole:
        k, refused = int(whole["citizens_wrongly_refused"]), int(whole.get("citizens_refused", 0))
        wr, r = int(whole.get("wrongful_refusals", 0)), int(whole.get("refused", 0))
        nums = {"citizens_wrongly_refused": k, "citizens_refused": refused,
                "wrongful_refusals": wr, "refusals": r, "citizens": n,
                "per_1000": k / n * PER if n else math.nan}
        if k:
            text = (f"{plural(k, 'citizen')} ({per_thousand(k / n)} per 1,000) "
                    f"{'was' if k == 1 else 'were'} wrongly refused an opportunity at least "
                    f"once {span}: {wr:,} of {plural(r, 'refusal')} ({percent(wr / r)}) would not "
                    f"have been made on the citizen's true standing. "
                    f"{plural(refused, 'citizen')} {'was' if refused == 1 else 'were'} "
                    "refused at least once.")
        else:
            text = (f"No citizen was wrongly refused {span}: " + (
                f"each of the {plural(r, 'refusal')} (of {plural(refused, 'citizen')}) would "
                "have been made on the citizen's true standing too." if r else
                "nobody was refused anything."))
        out.append(Finding("wrongly_refused", text, nums))
    elif not facts.get("opportunities"):
        out.append(Finding("wrongly_refused", "No citizen could be refused anything: this "
                           "scenario has no opportunities.", {"citizens_wrongly_refused": 0}))

    if "citizens_ever_false" in w:
        k = int(w["citizens_ever_false"])
        nums: dict[str, Any] = {"citizens_ever_false": k, "citizens": n,
                                "false_observations": int(w.get("false_observations", 0)),
                                "per_1000": k / n * PER if n else math.nan}
        fo = int(w.get("false_observations", 0))
        text = (f"{plural(k, 'citizen')} ({per_thousand(k / n)} per 1,000) "
                f"{'was' if k == 1 else 'were'} falsely named by a sensor at least once {span}"
                + (f", by {plural(fo, 'false observation')}" if fo else "")
                + (f" ({w['false_observation_share']:.2%} of all observations)"
                   if w.get("false_observation_share") else "") + "."
                if k else f"No citizen was falsely named by a sensor {span}.")
        if "citizens_wrongly_sanctioned_max" in w:
            peak, last = int(w["citizens_wrongly_sanctioned_max"]), \
                int(w["citizens_wrongly_sanctioned"])
            nums.update(citizens_wrongly_sanctioned_max=peak, citizens_wrongly_sanctioned=last)
            text += (f" At the peak {plural(peak, 'citizen')} at once "
                     f"{'was' if peak == 1 else 'were'} under a sanction their true standing "
                     f"would not have brought ({last:,} on the last day)."
                     if peak else " No citizen was ever under a sanction their true standing "
                     "would not have brought.")
        out.append(Finding("falsely_named", text, nums))

    disparity = facts.get("disparity") or {}
    candidates = _disparity_candidates(disparity)
    chosen: list[dict[str, Any]] = []
    def best(pool: list[dict[str, Any]]) -> dict[str, Any]:
        return max(pool, key=lambda c: (c["strength"], -list(disparity).index(c["attribute"])))

    for measure in _PRIORITY:  # the strongest of each measure, most wrongful first
        mine = [c for c in candidates if c["measure"] == measure]
        if mine and len(chosen) < 2:
            chosen.append(best(mine))
    for measure in _PRIORITY:  # a slot left: the same measure by another attribute
        mine = [c for c in candidates if c["measure"] == measure and c not in chosen
                and c["attribute"] not in {x["attribute"] for x in chosen}]
        if mine and len(chosen) < 2:
            chosen.append(best(mine))
    for c in chosen:
        out.append(Finding("disparity", _disparity_sentence(c),
                           {k: v for k, v in c.items() if k != "strength"}))
    if not chosen and disparity:
        judged = [(m, r["ratio"], r["ratio_low"], r["ratio_high"])
                  for attr, cats in disparity.items() if attr in ATTRIBUTES
                  for row in cats.values()
                  for m, r in row.items() if isinstance(r, dict) and m in HARMS
                  and r.get("status") not in (TOO_FEW, REFERENCE, None)]
        text = ("No clear difference by group, sex, region or residency in any harm: for "
                "every comparison the "
                "metrics could judge, the 95% interval of the ratio to the least harmed group "
                "includes 1" + ("" if judged else " (none had enough citizens and events to "
                                "judge)") + ".")
        out.append(Finding("no_clear_difference", text, {"judged": judged}))

    behaviour = _behaviour_finding(facts)
    if behaviour is not None:
        out.append(behaviour)

    a = facts.get("appeals") or {}
    if a.get("filed", 0):
        total = int(a["filed"])
        text = (f"{total:,} appeals were filed {span}: {int(a['upheld']):,} upheld, "
                f"{int(a['rejected']):,} rejected, {int(a['backlog']):,} still waiting at the "
                "end" + (f"; a decision took {a['mean_wait']:.0f} days on average"
                         if not math.isnan(a.get("mean_wait", math.nan)) else "") + ".")
        out.append(Finding("appeals", text, dict(a)))
    elif facts.get("appeals_process"):
        out.append(Finding("appeals", f"Nobody appealed {span}, though the scenario allows "
                           "appeals.", {"filed": 0}))

    r = facts.get("review") or {}
    if r:
        false = int(r["false_caught"] + r["false_confirmed"])
        decided = int(r["confirmed"] + r["dismissed"])
        text = (f"A reviewer decided {plural(decided, 'case')} before any sanction {span}: "
                f"{int(r['false_caught']):,} of the {false:,} false cases decided were caught "
                f"and {int(r['false_confirmed']):,} let through to a wrongful sanction; "
                f"{int(r['true_dismissed']):,} true cases were dismissed; "
                f"{int(r['backlog']):,} still waited at the end"
                + (f", a decision took {r['mean_wait']:.1f} days on average"
                   if not math.isnan(r.get("mean_wait", math.nan)) else "") + ".")
        out.append(Finding("review", text, dict(r)))
    return out[:MAX_FINDINGS]


# ---------------------------------------------------------------------------------------------
# stories as narratives

_SOURCES = {"cameras": "a camera", "payments": "the payment records", "courts": "a court record",
            "online": "online monitoring", "police": "a police report",
            "civic": "the civic register", "location": "phone or transit-card location records",
            "gait": "gait recognition on camera footage"}
_EVENTS = {"red_light": "running a red light", "late_loan_payment": "a late loan payment",
           "loan_default": "a loan default", "utility_arrears": "utility arrears",
           "court_judgment_default": "defaulting on a court judgment",
           "drunk_driving": "drunk driving", "critical_post": "a critical post",
           "spreading_rumours": "spreading rumours", "alcohol_purchase": "buying alcohol",
           "cigarette_purchase": "buying cigarettes", "video_game_hours": "long video-game hours",
           "public_outburst": "a public outburst", "debt_repaid": "repaying a debt"}
_OPPORTUNITIES = {"loan": "a loan", "flight": "a flight", "high_speed_train":
                  "a high-speed train ticket", "star_hotel": "a room in a star hotel",
                  "travel_abroad": "travel abroad", "flat_purchase": "a flat purchase",
                  "civil_service_post": "a civil service post",
                  "executive_post": "an executive post", "school_place": "a school place",
                  "deposit_free_rental": "a rental without deposit",
                  "soft_sleeper": "a soft-sleeper berth", "car_purchase": "a car purchase",
                  "insurance_purchase": "an insurance policy", "holiday": "a holiday"}


def plural(k: int, noun: str, nouns: str | None = None) -> str:
    """``1 citizen``, ``2 citizens`` (thousands separated)."""
    return f"{k:,} {noun if k == 1 else nouns or noun + 's'}"


def _points(x: float) -> str:
    return f"{x:,.1f}".removesuffix(".0")


def narrate(story: Any, tiers: list[str], last_day: int) -> str:
    """A citizen's story (:class:`panopticon.explain.Story`) in a few sentences: who they are,
    what false observations named them for and what it did to their score, tier falls,
    refusals (wrongful ones said so), appeals, and where they ended."""
    a = story.attributes
    sex = str(a.get("sex", ""))
    age = a.get("age")
    adult = age is None or int(age) >= 18
    subj, obj, poss = {"female": ("she", "her", "her"), "male": ("he", "him", "his")}.get(
        sex, ("the citizen", "the citizen", "the citizen's"))
    noun = {"female": "woman" if adult else "girl", "male": "man" if adult else "boy"}.get(
        sex, "person")
    group = a.get("social_group", a.get("group"))
    desc = f"a {int(age)}-year-old" if age is not None else "a"
    desc += f" {group}" if group else ""
    desc += f" {noun}"
    extra = [str(a[k]).replace("_", " ") for k in ("region", "occupation") if a.get(k)]
    if a.get("residency") not in (None, "citizen"):
        extra.append(str(a["residency"]).replace("_", " "))
    if extra:
        desc += f" ({', '.join(extra)})"
    start_tier = next((x.data.get("tier") for x in story.lines if x.kind == "start"), None)
    head = (f"Citizen {story.citizen:,}, {desc}, started at {_points(story.start_score)} points"
            + (f" in tier {start_tier}." if start_tier else "."))

    beats: list[tuple[int, int, str]] = []
    false_scores = [x for x in story.lines if x.kind == "score" and x.alarm]
    for x in false_scores[:2]:
        o = x.data.get("observation") or {}
        source = _SOURCES.get(o.get("source"), f"the {o.get('source', 'unknown')} source")
        event = _EVENTS.get(o.get("event"), str(o.get("event", "an act")).replace("_", " "))
        actor = o.get("true_actor")
        did = (" (a phantom record: nobody did)" if actor is None
               else f" (citizen {actor:,} did)" if actor != story.citizen else "")
        moved = "fell" if x.data["delta"] < 0 else "rose"
        beats.append((x.day, len(beats), f"On day {x.day}, {source} named {obj} for {event} "
                      f"{subj} did not commit{did}; {poss} score {moved} to "
                      f"{_points(x.data['score'])}."))
    if len(false_scores) > 2:
        more = len(false_scores) - 2
        beats.append((false_scores[2].day, len(beats),
                      f"{more} more false observation{'s' if more > 1 else ''} followed."))
    for x in [x for x in story.lines if x.kind == "list" and x.alarm][:1]:
        beats.append((x.day, len(beats), f"On day {x.day}, a false observation put {obj} on "
                      f"the {str(x.data['list']).replace('_', ' ')} list."))
    falls = [x for x in story.lines if x.kind == "tier" and x.data["from"] in tiers
             and x.data["to"] in tiers and tiers.index(x.data["to"]) > tiers.index(x.data["from"])]
    for x in falls[:2]:
        beats.append((x.day, len(beats), f"On day {x.day}, {subj} fell from tier "
                      f"{x.data['from']} to {x.data['to']}."))
    refusals = [x for x in story.lines if x.kind == "refusal"]
    shown = [x for x in refusals if x.data.get("wrongful")][:2] or refusals[:1]
    for x in shown:
        opp = _OPPORTUNITIES.get(x.data["opportunity"],
                                 str(x.data["opportunity"]).replace("_", " "))
        text = f"On day {x.day}, {subj} was refused {opp}"
        if x.data.get("wrongful"):
            text += f", wrongly: on {poss} true standing the gates would have let {obj} through"
        if x.data.get("evaded"):
            text += ", and got it anyway"
        beats.append((x.day, len(beats), text + "."))
    for x in [x for x in story.lines if x.kind == "appeal"][:2]:
        beats.append((x.day, len(beats), f"On day {x.day}, {subj} appealed." if
                      x.data["outcome"] == "filed" else f"On day {x.day}, {poss} appeal was "
                      f"{x.data['outcome']} after {x.data['waited']} days."))
    beats.sort()

    s = story.summary
    final = (f"By the end of day {last_day}, {subj} stood at {_points(s['final_score'])} points "
             f"in tier {s['final_tier']}")
    false_pts = float(s.get("points_from_false_observations", 0))
    if false_pts:
        final += (f"; false observations had {'cost' if false_pts < 0 else 'given'} {obj} "
                  f"{_points(abs(false_pts))} points")
    k, wrong = int(s["refusals"]), int(s["wrongful_refusals"])
    if k:
        times = "once" if k == 1 else "twice" if k == 2 else f"{k:,} times"
        how = ("" if not wrong else ", wrongly" if wrong == k and k == 1 else
               ", each time wrongly" if wrong == k else f", {wrong:,} of them wrongly")
        final += f"; {subj} was refused {times} in all{how}"
    final += "."
    if not beats:
        changes = int(s["score_changes"])
        quiet = (f"Nothing false was recorded against {obj} and {subj} was never refused "
                 "anything; " + (f"{plural(changes, 'routine score change')} moved {poss} "
                                 "score." if changes else f"{poss} score never changed."))
        return " ".join([head, quiet, final])
    return " ".join([head, *(t for _, _, t in beats), final])


# ---------------------------------------------------------------------------------------------
# charts

def alt():
    import altair

    altair.data_transformers.disable_max_rows()
    return altair


def _with_run(frames: list[tuple[RunData, pd.DataFrame | None]]) -> pd.DataFrame:
    parts = [f.assign(run=r.label) for r, f in frames if f is not None and len(f)]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).replace([np.inf, -np.inf], np.nan)


def _by_run(chart, runs: list[RunData]):
    """One panel per run, stacked (several runs), or the chart alone."""
    if len(runs) > 1:
        return chart.facet(facet=alt().Facet("run:N", title=None,
                                             sort=[r.label for r in runs]), columns=1)
    return chart


def _harms_daily(run: RunData) -> pd.DataFrame | None:
    """Harms over time per 1,000 citizens: citizens ever falsely named, refusals and wrongful
    refusals so far, citizens under a wrongful sanction that day."""
    d, n = run.daily, run.citizens
    series = []
    if "citizens_ever_false" in d:
        series.append(("citizens ever falsely named", d["citizens_ever_false"]))
    if run.opportunities is not None and "refused" in d:
        series.append(("refusals so far", d["refused"].cumsum()))
        series.append(("wrongful refusals so far", d["wrongful_refusals"].cumsum()))
    if "citizens_wrongly_sanctioned" in d:
        series.append(("citizens under a wrongful sanction", d["citizens_wrongly_sanctioned"]))
    if not series or not n:
        return None
    return pd.concat([pd.DataFrame({"day": d["day"], "harm": h, "count": v.astype(float),
                                    "per_1000": v.astype(float) / n * PER})
                      for h, v in series], ignore_index=True)


HARM_LABELS = {"refused": "ever refused", "wrongly_refused": "ever wrongly refused",
               "sanctioned": "ever refused under a sanction", "falsely_named": "ever falsely named"}
ATTRIBUTE_NAMES = {"social_group": "group"}


def _harms_by_group(run: RunData) -> pd.DataFrame | None:
    rows = []
    for attr in [a for a in ATTRIBUTES if a in run.impact]:
        cats = run.impact[attr]
        if len(cats) < 2:
            continue
        for value, row in cats.items():
            for m, label in HARM_LABELS.items():
                r = row.get(m)
                if not isinstance(r, dict) or r["rate"] is None:
                    continue
                if not sum(x[m]["events"] for x in cats.values() if isinstance(x.get(m), dict)):
                    continue
                rows.append({"who": f"{ATTRIBUTE_NAMES.get(attr, attr)}: {value}",
                             "harm": label, "per_1000": r["rate"] * PER,
                             "low": r["low"] * PER, "high": r["high"] * PER,
                             "citizens": int(row["citizens"]), "status": r["status"],
                             "judged": r["status"] != TOO_FEW})
    return pd.DataFrame(rows) if rows else None


def _tier_colour(a, tiers: list[str]):
    return a.Color("tier:N", sort=tiers, title="tier (best to worst)",
                   scale=a.Scale(domain=tiers, range=tier_colours(len(tiers))))


def charts(runs: list[RunData]) -> dict[str, tuple[str, dict | None]]:
    """Every chart: name -> (section id, Vega-Lite spec, or None where no run has the data)."""
    a = alt()
    multi = len(runs) > 1
    specs: dict[str, tuple[str, Any]] = {}
    order = [r.label for r in runs]

    harms = _with_run([(r, _harms_daily(r)) for r in runs])
    if len(harms):
        harm_order = list(dict.fromkeys(harms["harm"]))
        line = a.Chart(harms).mark_line().encode(
            x=a.X("day:Q", title="day"),
            y=a.Y("per_1000:Q", title="per 1,000 citizens"),
            color=a.Color("run:N", sort=order, legend=a.Legend(title=None)) if multi
            else a.value("#8c2d04"),
            tooltip=["run:N", "day:Q", "harm:N", a.Tooltip("count:Q", format=",.0f"),
                     a.Tooltip("per_1000:Q", format=",.2f", title="per 1,000")])
        specs["harms"] = ("headline", line.properties(width=300, height=150).facet(
            facet=a.Facet("harm:N", sort=harm_order, title=None), columns=2,
        ).resolve_scale(y="independent"))
    else:
        specs["harms"] = ("headline", None)

    scores = _with_run([(r, r.daily[["day", "mean_score", "median_score"]].melt(
        "day", var_name="measure", value_name="score")) for r in runs])
    scores["measure"] = scores["measure"].str.removesuffix("_score")
    line = a.Chart(scores).mark_line().encode(
        x=a.X("day:Q", title="day"), y=a.Y("score:Q", title="score", scale=a.Scale(zero=False)),
        color=a.Color("run:N" if multi else "measure:N", sort=order if multi else None),
        tooltip=["run:N", "day:Q", "measure:N", a.Tooltip("score:Q", format=",.1f")])
    if multi:
        line = line.encode(strokeDash="measure:N")
    specs["scores"] = ("scores", line.properties(title="Mean and median score", width=600))

    panels = []
    for r in runs:
        frame = r.daily[["day", *(f"share_{t}" for t in r.tiers if f"share_{t}" in r.daily)]]
        frame = frame.melt("day", var_name="tier", value_name="share").assign(run=r.label)
        frame["tier"] = frame["tier"].str.removeprefix("share_")
        frame["rank"] = frame["tier"].map({t: i for i, t in enumerate(r.tiers)})
        panels.append(a.Chart(frame).mark_area().encode(
            x=a.X("day:Q", title="day"),
            y=a.Y("share:Q", stack="normalize", axis=a.Axis(format="%"), title="share"),
            color=_tier_colour(a, r.tiers), order=a.Order("rank:Q"),
            tooltip=["run:N", "day:Q", "tier:N", a.Tooltip("share:Q", format=".1%")],
        ).properties(title=f"Tier shares: {r.label}" if multi else "Tier shares", width=600,
                     height=180))
    specs["tiers"] = ("scores", panels[0] if not multi else a.vconcat(*panels).resolve_scale(
        color="independent"))

    panels = []
    for r in runs:
        if r.tiers_by is None:
            continue
        frame = r.tiers_by.assign(run=r.label)
        frame["who"] = frame["attribute"].map(lambda x: ATTRIBUTE_NAMES.get(x, x)) + ": " + \
            frame["value"].astype(str)
        frame["rank"] = frame["tier"].map({t: i for i, t in enumerate(r.tiers)})
        panels.append(a.Chart(frame).mark_bar().encode(
            y=a.Y("who:N", title=None, sort=list(dict.fromkeys(frame["who"]))),
            x=a.X("citizens:Q", stack="normalize", axis=a.Axis(format="%"),
                  title="share of the category's citizens"),
            color=_tier_colour(a, r.tiers), order=a.Order("rank:Q"),
            tooltip=["run:N", "who:N", "tier:N", a.Tooltip("citizens:Q", format=",")],
        ).properties(title=f"Final tier by category: {r.label}" if multi
                     else "Final tier by category", width=600))
    specs["tiers_by"] = ("scores", None if not panels else panels[0] if len(panels) == 1
                         else a.vconcat(*panels).resolve_scale(color="independent"))

    opp = []
    for r in runs:
        groups = r.impact.get("social_group", {})
        if r.opportunities is None or not groups:
            continue
        g = r.opportunities.groupby(["opportunity", "social_group"], as_index=False)[
            ["attempts", "refused", "wrongful"]].sum()
        sizes = {k: float(v["citizens"]) for k, v in groups.items()}
        size = pd.Series([sizes.get(str(x), math.nan) for x in g["social_group"]],
                         index=g.index, dtype=float)
        g["refused_per_1000"] = g["refused"] / size * PER
        g["wrongful_per_1000"] = g["wrongful"] / size * PER
        opp.append((r, g.rename(columns={"social_group": "group"})))
    opp = _with_run(opp)
    if len(opp):
        bars = a.Chart(opp).mark_bar().encode(
            y=a.Y("opportunity:N", title=None),
            x=a.X("refused_per_1000:Q", title="refusals per 1,000 citizens of the group"),
            color=a.Color("group:N", legend=a.Legend(title="group")), yOffset="group:N",
            tooltip=["run:N", "opportunity:N", "group:N", "attempts:Q", "refused:Q",
                     "wrongful:Q", a.Tooltip("refused_per_1000:Q", format=",.1f")])
        specs["refusals"] = ("refusals", _by_run(bars.properties(
            title="Refusals per 1,000 citizens of each group",
            width=560), runs))
    else:
        specs["refusals"] = ("refusals", None)

    rates = _with_run([(r, _harms_by_group(r)) for r in runs])
    if len(rates):
        base = a.Chart(rates).encode(
            y=a.Y("who:N", title=None, sort=list(dict.fromkeys(rates["who"]))),
            opacity=a.condition("datum.judged", a.value(1), a.value(0.35)),
            tooltip=["run:N", "who:N", "harm:N", "citizens:Q", "status:N",
                     a.Tooltip("per_1000:Q", format=",.2f", title="per 1,000"),
                     a.Tooltip("low:Q", format=",.2f", title="95% CI from"),
                     a.Tooltip("high:Q", format=",.2f", title="95% CI to")])
        if multi:
            base = base.encode(yOffset=a.YOffset("run:N", sort=order),
                               color=a.Color("run:N", sort=order, legend=a.Legend(title=None)))
        bars = base.mark_bar(color="#b35806").encode(
            x=a.X("per_1000:Q", title="per 1,000 citizens (95% CI)"))
        whiskers = base.mark_rule(color="black").encode(x="low:Q", x2="high:Q").transform_filter(
            "datum.judged")  # a category too few to judge: its wide interval would set the scale
        specs["disparity"] = ("disparity", a.layer(bars, whiskers).properties(
            width=300).facet(facet=a.Facet("harm:N", title=None,
                                           sort=list(HARM_LABELS.values())), columns=2,
                             ).resolve_scale(x="independent"))
    else:
        specs["disparity"] = ("disparity", None)

    change = _with_run([(r, _behaviour_frame(r)) for r in runs])
    if len(change):
        bars = a.Chart(change).mark_bar().encode(
            y=a.Y("event:N", title=None),
            x=a.X("change:Q", axis=a.Axis(format="%"), title="expected / baseline - 1"),
            color=a.Color("run:N", sort=order) if multi else a.Color(
                "kind:N", scale=a.Scale(domain=["misconduct", "legitimate", "rewarded"],
                                        range=["#b2182b", "#7570b3", "#1b7837"]),
                legend=a.Legend(title="kind of act")),
            tooltip=["run:N", "event:N", "kind:N", "day:Q",
                     a.Tooltip("change:Q", format="+.1%")])
        if multi:
            bars = bars.encode(yOffset=a.YOffset("run:N", sort=order))
        specs["behaviour"] = ("behaviour", bars.properties(
            title="Behaviour change on the last survey day", width=600))
    else:
        specs["behaviour"] = ("behaviour", None)

    net = _with_run([(r, r.network) for r in runs])
    for name, col, title in (("assortativity", "tier_assortativity", "Tier assortativity"),
                             ("components", "components", "Connected components")):
        if len(net) and col in net:
            frame = net[["run", "day", "layer", col]].dropna()
            chart = a.Chart(frame).mark_line(point=True).encode(
                x="day:Q", y=a.Y(f"{col}:Q", title=title.lower()), color="layer:N",
                tooltip=["run:N", "day:Q", "layer:N", a.Tooltip(f"{col}:Q", format=",.3f")])
            specs[name] = ("network", _by_run(chart.properties(title=title, width=560), runs))
        else:
            specs[name] = ("network", None)
    return {k: (sec, None if c is None else _page_spec(c)) for k, (sec, c) in specs.items()}


def _behaviour_frame(run: RunData) -> pd.DataFrame | None:
    change = run.facts.get("behaviour") or {}
    rows = [{"event": e, "change": d["change"], "kind": d.get("kind", "?"),
             "day": run.facts.get("behaviour_day")}
            for e, d in change.items() if d.get("change") is not None
            and not math.isnan(d["change"])]
    return pd.DataFrame(rows) if rows else None


def _page_spec(chart) -> dict:
    """A chart of this page: legends below (they never widen it), bold panel headers."""
    return _spec(chart.configure_legend(orient="bottom").configure_header(
        labelFontSize=13, labelFontWeight="bold", titleFontSize=13))


def _spec(chart) -> dict:
    spec = chart.to_dict()
    spec.pop("$schema", None)  # a URL nobody fetches; the page names no address at all
    json.dumps(spec, allow_nan=False)  # fails loudly on NaN rather than in the browser
    return spec


# ---------------------------------------------------------------------------------------------
# the page

@lru_cache(maxsize=1)
def javascript() -> str:
    """Vega, Vega-Lite and Vega-Embed in one script (no imports, no addresses fetched)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=vl_version())
    if "</script" in bundle.lower():  # would end the inline <script> early
        raise UserError("this vl-convert-python's JavaScript bundle cannot be inlined")
    return bundle


def vl_version() -> str | None:
    import altair
    import vl_convert

    major_minor = ".".join(altair.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return major_minor if major_minor in vl_convert.get_vegalite_versions() else None


def _e(x: Any) -> str:
    return html.escape(str(x))


def _wrap(table: str) -> str:
    """A table in its own horizontally scrolling box (it never widens the page)."""
    return f'<div class="table-wrap">{table}</div>'


def _table_html(header: list[str], rows: list[list[Any]], cls: str = "",
                raw: bool = False) -> str:
    """A table, never an empty one (no rows: an error in the caller)."""
    if not rows:
        raise AssertionError("an empty table; say why in a sentence instead")
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    cell = (lambda c: str(c)) if raw else _e
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return _wrap(f'<table class="{cls}"><thead><tr>{head}</tr></thead>'
                 f"<tbody>{body}</tbody></table>")


def _run_head(r: RunData) -> str:
    return f'<h3>{_e(r.label)}</h3><p class="details">{_e(r.details)}</p>'


def _side_by_side(runs: list[RunData], part) -> str:
    """Narrow content (sentences, short tables): one column per run."""
    if len(runs) == 1:
        return part(runs[0])
    cells = "".join(f'<div class="run">{_run_head(r)}{part(r)}</div>' for r in runs)
    return f'<div class="runs">{cells}</div>'


def _one_after_another(runs: list[RunData], part) -> str:
    """Wide content (big tables): each run full width, one after the other."""
    if len(runs) == 1:
        return part(runs[0])
    return "".join(f'<div class="run wide">{_run_head(r)}{part(r)}</div>' for r in runs)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _chart_div(name: str, spec: dict | None, missing: str) -> str:
    if spec is None:
        return _note(missing) if missing else ""
    return f'<div class="chart" id="chart-{name}" data-chart="{name}"></div>'


def _scenario_text(run: RunData) -> str:
    s, m = run.spec, run.manifest
    policy = s.policy
    sources = [k for k, v in (s.model_dump(mode="json").get("sensors") or {}).items()
               if v not in (None, False, {})]
    sanctions = []
    for x in policy.model_dump(mode="json").get("sanctions") or []:
        parts = []
        if x.get("deny"):
            parts.append("denies " + ", ".join(x["deny"]).replace("_", " "))
        if x.get("grant"):
            parts.append("grants " + ", ".join(x["grant"]).replace("_", " "))
        sanctions.append(f"when {x.get('when', 'always')}: {' and '.join(parts) or 'nothing'}")
    fiction = " (fiction)" if getattr(policy, "fiction", False) else ""
    opps = ", ".join(o.replace("_", " ") for o in (s.opportunities or {}))
    appeals = "an appeals process" if s.governance and s.governance.appeals else \
        "no appeals process"
    paragraphs = [
        f"<p><b>{_e(s.name)}</b>: {_e(' '.join(str(s.description or '').split()))}</p>",
        f"<p>{int(m['citizens']):,} citizens over {int(m.get('days_completed', m['days']))} of "
        f"{int(m['days'])} days, seed {_e(m['seed'])}; run status {_e(m.get('status'))}.</p>",
        f"<p>Sources of observations: {_e(', '.join(sources) or 'none')}.</p>",
        f"<p>Policy <b>{_e(policy.name)}</b>, family {_e(getattr(policy, 'family', '?'))}"
        f"{fiction}: {len(policy.rules)} rules, tiers from best to worst "
        f"{_e(', '.join(run.tiers))}.</p>",
        "<p>Sanctions: " + (_e("; ".join(sanctions)) if sanctions else "none") + ".</p>",
        f"<p>Opportunities: {_e(opps or 'none')}; {appeals}.</p>",
    ]
    return "".join(paragraphs)


def _count(k: float | None, n: int, per: bool = True) -> str:
    if k is None or (isinstance(k, float) and math.isnan(k)):
        return "n/a"
    k = int(k)
    return f"{k:,} ({per_thousand(k / n)} per 1,000)" if per and n and k else f"{k:,}"


REFUSAL_REASONS = {"sanctioned": "of them under a sanction",
                   "no_perk": "of them for a perk not granted",
                   "low_score": "of them below a lender's minimum score"}
"""Why a citizen was refused (the ``refusals`` columns), as the report words it."""


def _headline(run: RunData) -> dict[str, str]:
    """(row, cell) of the headline table: each figure with its scope, harms per 1,000."""
    f, n, d = run.facts, run.citizens, run.daily
    whole, w = f["whole_run"], f["wrongful"]
    last = d.iloc[-1]
    rows = {"citizens": f"{n:,}",
            "mean score, last day": f"{last['mean_score']:,.1f}",
            "tiers, last day (best to worst)": ", ".join(
                f"{t} {last['share_' + t]:.1%}" for t in run.tiers if f"share_{t}" in d)}
    rows["citizens ever falsely named (whole run)"] = _count(w.get("citizens_ever_false"), n)
    rows["false observations (whole run)"] = _count(w.get("false_observations"), n, False)
    if f["opportunities"]:
        rows["citizens ever refused (whole run)"] = _count(whole.get("citizens_refused"), n)
        for reason, why in REFUSAL_REASONS.items():  # punishments and withheld perks apart
            if f"citizens_refused_{reason}" in whole:
                rows[f"… {why} (whole run)"] = _count(whole[f"citizens_refused_{reason}"], n)
        rows["citizens ever wrongly refused (whole run)"] = _count(
            whole.get("citizens_wrongly_refused"), n)
        rows["refusals, of them wrongful (whole run)"] = (
            f"{int(whole.get('refused', 0)):,}, {int(whole.get('wrongful_refusals', 0)):,}")
    else:
        rows["citizens ever refused (whole run)"] = "no opportunities in this scenario"
    if "citizens_wrongly_sanctioned" in w:
        rows["citizens under a wrongful sanction, at the peak"] = _count(
            w.get("citizens_wrongly_sanctioned_max"), n)
        rows["citizens under a wrongful sanction, last day"] = _count(
            w.get("citizens_wrongly_sanctioned"), n)
    return rows


def _impact_cell(r: dict[str, Any] | None, measure: str) -> str:
    """One measure of one category: the rate and its 95% interval, then the ratio to the
    reference with its interval and the four-fifths verdict (HTML, escaped)."""
    if not isinstance(r, dict) or r.get("rate") is None:
        return "-"
    per_attempt = measure in PER_ATTEMPT

    def fmt(x: float) -> str:
        return percent(x) if per_attempt else per_thousand(x)

    status = r["status"]
    if status in (REFERENCE, TOO_FEW):
        second = status
    elif r["ratio"] is not None:
        second = f"{r['ratio']:.2f}× ({r['ratio_low']:.2f}–{r['ratio_high']:.2f})"
    elif r["ratio_low"] is not None:
        second = f"undefined (reference 0), ≥ {r['ratio_low']:.2f}×"
    else:
        second = "ratio undefined"
    if r["flag"]:
        second = "⚑ " + second
    elif status == UNCLEAR:
        second = "? " + second
    return (f"{_e(fmt(r['rate']))} <small>({_e(fmt(r['low']))}–{_e(fmt(r['high']))})</small>"
            f"<br><small>{_e(second)}</small>")


_MEASURE_HEADS = {"refused": "ever refused", "wrongly_refused": "ever wrongly refused",
                  "sanctioned": "refused under a sanction", "falsely_named": "falsely named",
                  "top_tier": "in the top tier", "granted": "attempts granted (%)",
                  "perks_granted": "perk attempts granted (%)"}


def _measures_with_events(cats: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The measures of one attribute with events, and those without any."""
    present = [m for m in (*HARMS, *FAVOURABLE)
               if any(isinstance(row.get(m), dict) for row in cats.values())]
    some = [m for m in present
            if sum(row[m]["events"] for row in cats.values() if isinstance(row.get(m), dict))]
    return some, [m for m in present if m not in some]


def _impact_table(attr: str, cats: dict[str, dict[str, Any]]) -> str:
    """One table per attribute: category, citizens, one cell per measure with events."""
    measures, _ = _measures_with_events(cats)
    head = [ATTRIBUTE_NAMES.get(attr, attr), "citizens", *(_MEASURE_HEADS[m] for m in measures)]
    rows = [[_e(value), f"{int(row['citizens']):,}", *(_impact_cell(row.get(m), m)
                                                        for m in measures)]
            for value, row in cats.items()]
    return _table_html(head, rows, "numbers", raw=True)


def _disparity_tables(r: RunData) -> str:
    if not r.impact:
        return _note(r.notes.get("disparity", "No disparities: the run's citizens have no "
                                 "attribute to compare by."))
    out, single, empty = [], [], []
    for attr, cats in r.impact.items():
        name = ATTRIBUTE_NAMES.get(attr, attr)
        if len(cats) < 2:
            single.append(f"{name} ({next(iter(cats))})" if cats else name)
            continue
        measures, _ = _measures_with_events(cats)
        if not measures:
            empty.append(name)
            continue
        out.append(f"<h4>by {_e(name)}</h4>" + _impact_table(attr, cats))
    none = dict.fromkeys(_MEASURE_HEADS[m] for cats in r.impact.values()
                         for m in _measures_with_events(cats)[1])
    if single:
        out.append(_note("Not compared, one value only: " + ", ".join(single) + "."))
    if empty:
        out.append(_note("Not compared, no events of any measure: " + ", ".join(empty) + "."))
    if none:
        out.append(_note("Left out, no events in this run: " + ", ".join(none) + "."))
    return "".join(out)


def _refusal_table(r: RunData) -> str:
    if r.opportunities is None:
        return _note("No refusals: this scenario has no opportunities, so nobody tried "
                     "anything the policy could refuse.")
    g = r.opportunities.groupby(["opportunity", "social_group"], as_index=False)[
        ["attempts", "refused", "wrongful"]].sum()
    g = g[g["attempts"] > 0]
    if g.empty:
        return _note("No refusals: nobody tried any opportunity in this run.")
    sizes = {k: v["citizens"] for k, v in r.impact.get("social_group", {}).items()}
    rows = []
    for x in g.itertuples():
        size = sizes.get(x.social_group)
        rows.append([x.opportunity.replace("_", " "), x.social_group, f"{x.attempts:,}",
                     f"{x.refused:,}", percent(x.refused / x.attempts),
                     per_thousand(x.refused / size) if size else "-", f"{x.wrongful:,}"])
    return _table_html(["opportunity", "group", "attempts", "refused", "share of attempts "
                        "refused", "refused per 1,000 citizens of the group",
                        "wrongful refusals"], rows, "numbers")


def _appeals_part(r: RunData) -> str:
    has_process = bool(r.spec.governance and r.spec.governance.appeals)
    if not has_process:
        return _note("No appeals: this scenario has no appeals process.")
    if r.appeals is None or r.appeals.empty:
        return _note("No appeals: the scenario has an appeals process, but nobody appealed.")
    a = r.facts.get("appeals") or {}
    names = {"filed": "filed", "upheld": "upheld", "rejected": "rejected",
             "backlog": "still waiting at the end"}
    rows = [[v, f"{int(a[k]):,}"] for k, v in names.items() if k in a]
    if not math.isnan(a.get("mean_wait", math.nan)):
        rows.append(["mean wait for a decision (days)", f"{a['mean_wait']:.1f}"])
    return "<h4>Appeals (whole run)</h4>" + _table_html(["appeals", "count"], rows, "numbers")


def _audit_part(r: RunData) -> str:
    if r.audit is None:
        return _note(r.notes.get("audit", "No audit for this run."))
    a = r.audit
    full = "not checked here: run `panopticon audit` (a big run gets the quick audit)"
    chain = {True: "intact", False: "BROKEN", None: "NOT CHECKED (see the findings)"}
    rows = [["hash chain", chain[a["chain_intact"]]
             + (" (row counts and head only)" if a.get("quick") else "")],
            ["days checked", a["days_checked"]],
            ["manual adjustments", len(a["manual"])],
            ["officials making them",
             ", ".join(sorted({m["official"] for m in a["manual"]})[:10]) or "-"],
            ["scores the ledger does not explain",
             full if a["unexplained"] is None else len(a["unexplained"])],
            ["rule entries off their rule's points",
             full if a["deviations"] is None else len(a["deviations"])]]
    for attack, f in a["insider_actions_found"].items():
        rows.append([f"insider {attack}: actions found",
                     f"{f['caught']} of {f['actions']} ({f['share']:.0%})"])
    if not a["insider_actions_found"]:
        rows.append(["insider actions", "none in this run"])
    return _table_html(["check", "result"], rows)


def _stories_part(r: RunData) -> str:
    if not r.stories:
        return _note(r.notes.get("stories", "No stories: no citizen to tell of."))
    out = []
    for s in r.stories:
        out.append(f'<div class="story"><h4>{_e(s.why[0].upper() + s.why[1:])}</h4>'
                   f"<p>{_e(s.narrative)}</p><details><summary>The log behind this story "
                   f"({len(s.log) - 1} lines; <code>panopticon explain "
                   f"{_e(r.manifest.get('run_id', r.path.name))} -c {s.citizen}</code>)"
                   f"</summary><pre>{_e(chr(10).join(s.log))}</pre></details></div>")
    return "".join(out)


def _findings_part(r: RunData) -> str:
    if not r.findings:
        return _note("No findings: the run has no numbers to state.")
    items = "".join(f'<li data-finding="{_e(f.kind)}">{_e(f.text)}</li>' for f in r.findings)
    return f'<ol class="findings">{items}</ol>'


def _section_body(sid: str, runs: list[RunData], specs: dict) -> str:
    def chart(name: str, missing: str = "") -> str:
        return _chart_div(name, specs[name][1], missing)

    if sid == "findings":
        return (_side_by_side(runs, _findings_part)
                + f'<p class="explain">Scope: "whole run" counts every day of the run; a ratio '
                  f"compares a category with the least harmed one (the most favoured, for a "
                  f"good outcome) and is stated only where its 95% interval excludes 1, and "
                  f"never for a category or comparison too small to judge (under "
                  f"{MIN_CITIZENS} citizens, or under {MIN_EVENTS} events). "
                  f"{_e(WRONGLY_REFUSED)}</p>")
    if sid == "scenario":
        return _side_by_side(runs, _scenario_text)
    if sid == "headline":
        heads = [_headline(r) for r in runs]
        keys = list(dict.fromkeys(k for h in heads for k in h))
        rows = [[k, *(h.get(k, "-") for h in heads)] for k in keys]
        return (_table_html(["", *(r.label for r in runs)], rows, "numbers")
                + '<p class="explain">Each harm over time, per 1,000 citizens, each on its own '
                  'scale: compare shapes and levels by reading the axes.</p>'
                + chart("harms", "No harms to chart: the run has no daily harm counts."))
    if sid == "scores":
        return (chart("scores") + chart("tiers")
                + chart("tiers_by", "No final tiers by category: the run did not finish."))
    if sid == "refusals":
        return (chart("refusals", "")
                + _one_after_another(runs, _refusal_table))
    if sid == "disparity":
        return ('<p class="explain">Harms by category, per 1,000 citizens with their 95% '
                'Wilson intervals, each harm on its own scale; faded bars are categories too '
                'few to judge.</p>'
                + chart("disparity", "")
                + '<p class="explain">In the tables: for each attribute of the citizens, the '
                  'rate of each harm (ever refused an opportunity, ever wrongly refused, ever '
                  'refused because a sanction blocked it, ever falsely named) per 1,000 '
                  'citizens, and of good outcomes (in the top tier at the end; by group, the '
                  'share of attempts granted, all and those needing a perk), each with its 95% '
                  'Wilson interval. Below it: the ratio to the reference category (the least '
                  'harmed, or most favoured, with enough citizens) and its 95% Katz interval. '
                  'The four-fifths rule (⚑) flags a harm more than 1.25× the reference\'s, or '
                  f'a good outcome below {FOUR_FIFTHS}× the reference\'s, only when the whole '
                  'interval is past that threshold too (? marks a ratio past it whose interval '
                  'is not). Refusals count among citizens old enough to try an opportunity. A '
                  f'category with fewer than {MIN_CITIZENS} citizens, or a comparison with '
                  f'fewer than {MIN_EVENTS} events, is too few to judge. A flag is a reason to '
                  'look closer, not a verdict.</p>'
                + _one_after_another(runs, _disparity_tables))
    if sid == "behaviour":
        missing = [r.label for r in runs if _behaviour_frame(r) is None]
        return ('<p class="explain">Expected events over the baseline (what citizens would '
                'have done without the system), minus one, on the last survey day: below zero '
                'the system deters the act (or chills it, for a legitimate act), above zero it '
                'encourages it.</p>'
                + chart("behaviour", "No behaviour change: the run has no behaviour survey.")
                + ("".join(_note(f"{m}: no behaviour survey in this run.") for m in missing)
                   if len(runs) > 1 else ""))
    if sid == "network":
        missing = [r.label for r in runs if r.network is None]
        return (chart("assortativity", "No network change: the run has no network survey.")
                + chart("components")
                + ("".join(_note(f"{m}: no network survey in this run.") for m in missing)
                   if len(runs) > 1 else ""))
    if sid == "audit":
        return _side_by_side(runs, lambda r: _audit_part(r) + _appeals_part(r))
    if sid == "stories":
        return _side_by_side(runs, _stories_part)
    raise AssertionError(sid)  # pragma: no cover


def build_report(runs: list[str | Path] | list[RunData], store: str | Path = "runs") -> str:
    """The whole report page as one HTML string (the Vega JavaScript inlined once)."""
    data = runs if runs and isinstance(runs[0], RunData) else collect(runs, store)
    specs = charts(data)
    title = "panopticon report: " + " | ".join(r.label for r in data)
    details = "".join(f"<p>{_e(r.label)}: {_e(r.details)}</p>" for r in data)
    nav = "".join(f'<a href="#{sid}">{_e(h)}</a>' for sid, h in SECTIONS)
    body = "".join(f'<section id="{sid}"><h2>{_e(h)}</h2>{_section_body(sid, data, specs)}'
                   "</section>" for sid, h in SECTIONS)
    embedded = {f"chart-{k}": s for k, (_, s) in specs.items() if s is not None}
    payload = json.dumps(embedded, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    return (PAGE.replace("{{title}}", _e(title)).replace("{{css}}", CSS).replace("{{nav}}", nav)
            .replace("{{details}}", details).replace("{{body}}", body)
            .replace("{{script}}", "<script>" + javascript() + "</script>"
                     + "<script>" + SCRIPT.replace("{{specs}}", payload) + "</script>"))


def write_report(runs: list[str | Path], out: str | Path, store: str | Path = "runs",
                 charts_dir: str | Path | None = None) -> Path:
    """Write the report to ``out`` (and, with ``charts_dir``, every chart as PNG and SVG)."""
    data = collect(runs, store)
    out = write_page(build_report(data), out)
    if charts_dir is not None:
        write_charts(data, charts_dir)
    return out


def write_page(page: str, out: str | Path) -> Path:
    """Write an HTML page to ``out`` (making its folder); a user error if it cannot."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return out


def write_charts(runs: list[str | Path] | list[RunData], directory: str | Path,
                 store: str | Path = "runs") -> list[Path]:
    """Each chart as ``NAME.png`` and ``NAME.svg`` in ``directory``; the paths written."""
    data = runs if runs and isinstance(runs[0], RunData) else collect(runs, store)
    return write_chart_files({name: spec for name, (_, spec) in charts(data).items()
                              if spec is not None}, directory)


def write_chart_files(specs: dict[str, dict], directory: str | Path) -> list[Path]:
    """Each Vega-Lite spec as ``NAME.png`` and ``NAME.svg`` in ``directory`` (characters a
    file name should not hold become ``-``); the paths written."""
    import vl_convert

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{directory}: cannot make the charts folder ({exc.strerror})") from None
    version = vl_version()
    kwargs = {"vl_version": version} if version else {}
    written = []
    for name, spec in specs.items():
        stem = re.sub(r"[^A-Za-z0-9_-]", "-", name)
        png, svg = directory / f"{stem}.png", directory / f"{stem}.svg"
        png.write_bytes(vl_convert.vegalite_to_png(spec, scale=2, **kwargs))
        svg.write_text(vl_convert.vegalite_to_svg(spec, **kwargs), encoding="utf-8")
        written += [png, svg]
    return written
