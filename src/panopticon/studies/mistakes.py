"""Study ``mistakes`` (question 1): sensor errors, a judge before the sanction, insiders."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from panopticon.report.build import percent
from panopticon.studies.base import (
    PER,
    Scale,
    Study,
    differs,
    layout,
    pct_ci,
    point_of,
    sig,
    with_ci,
)

AXIS = "sensors.cameras.misattribution"
CHAIN = {True: "intact", False: "broken", None: "not checked"}
"""The audit's ``chain_intact`` in words."""
GROUPS = ("majority", "minority")
SEXES = ("male", "female")


def group_rates(result: Any) -> dict[str, float]:
    """Per 1,000 citizens of each group and sex: falsely named at least once
    (``citizens.ever_false``) and wrongly refused at least once (a ``refusals`` row with
    ``wrongful``); and per 1,000 citizens overall, wrongly sanctioned on the last day and
    citizen-days wrongly sanctioned (the daily ``citizens_wrongly_sanctioned`` summed)."""
    from panopticon.metrics.run import _col, read, wrongful

    citizens = read(result, "citizens", ["social_group", "sex", "ever_false"])
    n = citizens.num_rows
    refusals = read(result, "refusals", ["citizen", "wrongful"])
    wronged = np.zeros(n, dtype=bool)
    if refusals is not None:
        who = _col(refusals, "citizen").astype(np.int64)
        wronged[who[_col(refusals, "wrongful").astype(bool)]] = True
    ever = _col(citizens, "ever_false").astype(bool)
    out: dict[str, float] = {}
    for column, cats in (("social_group", GROUPS), ("sex", SEXES)):
        values = _col(citizens, column).astype(str)
        for c in cats:
            mine = values == c
            if mine.any():
                out[f"falsely_named_per_1000_{c}"] = float(ever[mine].mean() * PER)
                out[f"wrongly_refused_per_1000_{c}"] = float(wronged[mine].mean() * PER)
    out["wrongly_refused_per_1000"] = float(wronged.mean() * PER)
    w = wrongful(result)
    if "citizens_wrongly_sanctioned" in w:
        out["wrongly_sanctioned_per_1000"] = w["citizens_wrongly_sanctioned"] / n * PER
        out["wrongly_sanctioned_days_per_1000"] = \
            w["citizen_days_wrongly_sanctioned"] / n * PER
    return out


def wrongful_by_source(result: Any) -> dict[str, float]:
    """Whole run, per source S that made a false observation: ``false_records_<S>`` (false
    observations S made) and ``wrongful_after_false_<S>_share``, the share of wrongful
    refusals that fell on a citizen a false observation of S had named on or before that day
    (a refusal can count for several sources)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from panopticon.metrics.run import _col, _files, read

    files = _files(Path(result.path), "observations")
    refusals = read(result, "refusals", ["citizen", "day", "wrongful"])
    if not files:
        return {}
    false = ds.dataset([str(f) for f in files]).to_table(
        columns=["citizen", "day", "source"], filter=~pc.field("is_true"))
    if refusals is not None:
        wrong = _col(refusals, "wrongful").astype(bool)
        who = _col(refusals, "citizen").astype(np.int64)[wrong]
        when = _col(refusals, "day").astype(np.int64)[wrong]
    else:
        who = when = np.zeros(0, dtype=np.int64)
    source = _col(false, "source").astype(str)
    citizen = _col(false, "citizen").astype(np.int64)
    day = _col(false, "day").astype(np.int64)
    out: dict[str, float] = {}
    for s in np.unique(source):
        mine = source == s
        out[f"false_records_{s}"] = float(mine.sum())
        if len(who):
            named, first = _first_day(citizen[mine], day[mine])
            at = np.minimum(np.searchsorted(named, who), len(named) - 1)
            hit = (named[at] == who) & (first[at] <= when)
            out[f"wrongful_after_false_{s}_share"] = float(hit.mean())
    return out


def _first_day(citizen: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct citizens of ``(citizen, day)`` pairs, sorted, and each one's earliest
    day."""
    order = np.lexsort((day, citizen))
    citizen, day = citizen[order], day[order]
    keep = np.ones(len(citizen), dtype=bool)
    keep[1:] = citizen[1:] != citizen[:-1]
    return citizen[keep], day[keep]


def _level(x: float) -> str:
    return f"{x:.2%}".rstrip("0").rstrip(".") if x * 100 != int(x * 100) else f"{x:.0%}"


class Mistakes(Study):
    name = "mistakes"
    title = "Mistakes and manipulation: who is wrongly sanctioned, and who notices"
    charts = ("wrongly_sanctioned_days_per_1000", "falsely_named_per_1000_minority")

    def extras(self, result: Any) -> dict[str, float]:
        return group_rates(result) | wrongful_by_source(result)

    def extra_runs(self, scale: Scale, store: Path, progress: Callable[[str], None]) -> dict:
        """One run with insiders at seed_article's matching error, audited."""
        from panopticon.api import run
        from panopticon.audit import audit
        from panopticon.metrics.run import manipulations
        from panopticon.scenario import scenario_from_data
        from panopticon.studies.base import _assign

        data = self.base_data(scale, citizens=scale.insider_citizens)
        for key, value in self.config["insiders"].items():
            _assign(data, key, value)
        data["name"] = "study-mistakes-insiders"
        spec = scenario_from_data(data, {}, "<study mistakes insiders>")
        progress(f"mistakes: one run with insiders ({spec.run.citizens:,} citizens), audited")
        result = run(spec, out=store)
        report = audit(result.path)
        done = manipulations(result)
        found = report.get("insider_actions_found") or {}
        return {"insiders": {
            "run": Path(result.path).name, "citizens": spec.run.citizens,
            "days": spec.run.days, "intact": bool(report["intact"]),
            "chain_intact": report["chain_intact"],
            "manual": len(report.get("manual") or []),
            "manual_officials": sorted({str(m["official"]) for m in report.get("manual") or []}),
            "unexplained": len(report.get("unexplained") or []),
            "deviations": len(report.get("deviations") or []),
            "attacks": {a: {"actions": int(d["actions"]), "citizens": int(d["citizens"]),
                            "points": d["points"],
                            "caught": int(found.get(a, {}).get("caught", 0))}
                        for a, d in done.items()}}}

    # ------------------------------------------------------------------ the page
    def page(self, data: dict) -> str:
        nums = data["numbers"]
        levels = data["settings"][AXIS]
        mid = levels[len(levels) // 2]
        judge = (self.config["variants"]["decision"]["judge"] or {})["governance.review"]

        def say(name: str, text: str) -> str:
            nums[name] = text
            return text

        answer = []
        for level in levels:
            m = point_of(data, decision="computer", **{AXIS: level})
            g = {c: say(f"computer/{level}/falsely_named_per_1000_{c}",
                        with_ci(m.get(f"falsely_named_per_1000_{c}"))) for c in GROUPS}
            r = {c: say(f"computer/{level}/wrongly_refused_per_1000_{c}",
                        with_ci(m.get(f"wrongly_refused_per_1000_{c}"))) for c in GROUPS}
            days = say(f"computer/{level}/wrongly_sanctioned_days_per_1000",
                       with_ci(m.get("wrongly_sanctioned_days_per_1000")))
            answer.append(
                f"- **Face matching that pins {_level(level)} of camera detections on the "
                f"wrong person** (sanctions by the computer): per 1,000 citizens, "
                f"{g['minority']} of the minority group and {g['majority']} of the majority "
                f"were falsely named by a sensor at least once in {data['days']} days; "
                f"{r['minority']} and {r['majority']} were wrongly refused an opportunity (a "
                f"loan, a flight, a job, ...) at least once. Summed over the days, citizens "
                f"spent {days} days per 1,000 citizens under a sanction their true record "
                "would not have brought.")
        answer.append(self._by_source(data, levels, say))
        mc = point_of(data, decision="computer", **{AXIS: mid})
        mj = point_of(data, decision="judge", **{AXIS: mid})
        ratio = self._ratio(mc.get("falsely_named_per_1000_minority"),
                            mc.get("falsely_named_per_1000_majority"))
        if ratio is not None:
            answer.append(f"- At {_level(mid)}, a minority citizen was "
                          f"{say('ratio_minority_majority', sig(ratio, 2))} times as likely as a "
                          "majority citizen to be falsely named (ratio of the means).")
        c_days, j_days = mc.get("wrongly_sanctioned_days_per_1000"), \
            mj.get("wrongly_sanctioned_days_per_1000")
        if c_days and j_days:
            ct = say(f"computer/{mid}/days", with_ci(c_days))
            jt = say(f"judge/{mid}/days", with_ci(j_days))
            verb = ("fell" if j_days["mean"] < c_days["mean"] else "rose") \
                if differs(c_days, j_days) else \
                "showed no clear change at this scale (the intervals overlap), going"
            caught = mj.get("review_false_caught")
            true_dismissed = mj.get("review_true_dismissed")
            answer.append(
                f"- **A judge before the sanction** (each fall into tier "
                f"{' or '.join(judge['tiers'])} waits {judge['delay_days']} days for a "
                f"reviewer who dismisses a false case with probability {judge['catch_false']} "
                f"and a true one with {judge['dismiss_true']}): at {_level(mid)}, citizen-days "
                f"wrongly sanctioned per 1,000 citizens {verb} from {ct} to {jt}. Per run the "
                f"reviewers dismissed {say(f'judge/{mid}/review_false_caught', with_ci(caught))}"
                f" false cases and "
                f"{say(f'judge/{mid}/review_true_dismissed', with_ci(true_dismissed))} true "
                "ones (sanctions a guilty citizen escaped).")
        ins = data["extra"].get("insiders")
        if ins:
            answer.append(self._insiders(ins, nums))
        captions = {
            "wrongly_sanctioned_days_per_1000":
                "Citizen-days under a sanction the true record would not have brought, "
                "per 1,000 citizens, against the share of camera detections matched to "
                "the wrong person (one line per decision; bands: 95% CI)",
            "falsely_named_per_1000_minority":
                "Minority citizens falsely named at least once, per 1,000"}
        return layout(data, self._design(data, judge), answer, captions,
                      self._table(data), self._sources())

    @staticmethod
    def _by_source(data: dict, levels: list, say: Callable[[str, str], str]) -> str:
        """Which sources' false records the wrongful refusals followed, level by level."""
        parts = []
        for level in levels:
            m = point_of(data, decision="computer", **{AXIS: level})
            sources = sorted(k[len("false_records_"):] for k in m if k.startswith(
                "false_records_"))
            def number(name: str, fmt: Callable, m=m, level=level) -> str:
                return say(f"computer/{level}/{name}", fmt(m.get(name)))

            shares = ", ".join(f"{number(f'wrongful_after_false_{s}_share', pct_ci)} after a "
                               f"false `{s}` record" for s in sources
                               if f"wrongful_after_false_{s}_share" in m)
            made = ", ".join(f"{number(f'false_records_{s}', with_ci)} by `{s}`"
                             for s in sources)
            parts.append(f"at {_level(level)}, {shares or 'none'} (false records per run: "
                         f"{made})")
        return ("- **Where the wrongful refusals come from** (whole run; a refusal counts for "
                "every source whose false record had named the citizen by that day): "
                + "; ".join(parts) + ".")

    @staticmethod
    def _ratio(a: dict | None, b: dict | None) -> float | None:
        if not a or not b or not b.get("mean") or math.isnan(b["mean"]):
            return None
        return a["mean"] / b["mean"]

    def _design(self, data: dict, judge: dict) -> str:
        levels = ", ".join(_level(x) for x in data["settings"][AXIS])
        return (
            f"The default scenario `{self.config['base']}` (cameras with face matching, "
            "payments, courts, online monitoring and police reports feeding one score with "
            "Rongcheng-style tiers; tier D carries the court list's travel and loan bans, tier "
            "C bars loans and civil-service jobs) with "
            f"{data['citizens']:,} citizens for {data['days']} days. **What varies:** the "
            f"share of camera detections that face matching pins on the wrong citizen "
            f"({levels}; the preset's is 0.2%), and who decides a sanction: the computer "
            f"(the tier applies at once) or a judge who reviews every fall into tier "
            f"{' or '.join(judge['tiers'])} first. **What is held fixed:** everything else, "
            f"and the seeds: replicate r of every setting uses the same seed (common random "
            f"numbers), {data['replicates']} replicates per setting; intervals are 95% "
            "Student's t intervals across replicates (on the log scale for counts). **Why:** "
            "wrongful sanctions are rare (tens per million on a given day), so the runs are "
            "large and the error rate is moved by factors of four. Face matching errs 10 "
            "times as often for the minority group and twice as often for women, as the "
            "preset assumes from NIST's tests. *Falsely named*: an observation named the "
            "citizen for an act they did not commit. *Wrongly refused*: an attempt was refused "
            "that the citizen's true record (without false observations) would have allowed. "
            "*Wrongly sanctioned*: under a sanction the true record would not have brought "
            "(docs/scenarios.md#opportunities). "
            + (f"One more run ({data['insider_citizens']:,} citizens, the preset's error "
               "rate, computer decisions) adds four kinds of insider abuse (critics lowered, "
               "cronies raised, deductions silently deleted, rural deductions doubled; as in "
               "docs/examples/insiders.md) and is checked by `panopticon audit`."
               if data["extra"].get("insiders") else ""))

    def _insiders(self, ins: dict, nums: dict) -> str:
        parts = []
        for attack, d in ins["attacks"].items():
            share = d["caught"] / d["actions"] if d["actions"] else math.nan
            nums[f"insiders/{attack}"] = f"{d['caught']:,} of {d['actions']:,}"
            parts.append(f"`{attack}` {d['caught']:,} of {d['actions']:,} actions "
                         f"({percent(share)}; {d['citizens']:,} citizens, "
                         f"{sig(d['points'], 3)} "
                         "points)")
        verdict = "intact" if ins["intact"] else "not intact"
        nums["insiders/verdict"] = verdict
        return (f"- **Insiders** ({ins['citizens']:,} citizens, {ins['days']} days, one run): "
                f"the audit's verdict was *{verdict}*; the hash chain was "
                f"{CHAIN[ins['chain_intact']]} (the insiders wrote through "
                f"the system, so no row was changed after the fact). It listed "
                f"{ins['manual']:,} manual adjustments by "
                f"{len(ins['manual_officials'])} officials, {ins['unexplained']:,} scores the "
                f"ledger does not explain and {ins['deviations']:,} rule entries off their "
                f"rule's points, and so caught: " + "; ".join(parts) + ". These shares are "
                "against the lab's record of what the insiders did, which a real auditor would "
                "not have.")

    def _table(self, data: dict) -> str:
        rows = ["| decision | misattribution | falsely named per 1,000: minority | majority | "
                "wrongly refused per 1,000: minority | majority | citizen-days wrongly "
                "sanctioned per 1,000 |", "|---|---|---|---|---|---|---|"]
        for p in data["points"]:
            m = p["metrics"]
            rows.append("| " + " | ".join([
                p["point"]["decision"], _level(p["point"][AXIS]),
                with_ci(m.get("falsely_named_per_1000_minority")),
                with_ci(m.get("falsely_named_per_1000_majority")),
                with_ci(m.get("wrongly_refused_per_1000_minority")),
                with_ci(m.get("wrongly_refused_per_1000_majority")),
                with_ci(m.get("wrongly_sanctioned_days_per_1000"))]) + " |")
        return "\n".join(["Every setting (mean over replicates, 95% CI):", "", *rows])

    @staticmethod
    def _sources() -> str:
        return "\n".join([
            "- Documented: face matching errs 10–100 times as often for some groups and 2–5 "
            "times for women (NIST FRVT; docs/sources.md#face-recognition-nist); the Rongcheng "
            "start score and bands (docs/sources.md#rongcheng-start-and-bands); the court "
            "list's listing rate and joint punishments (docs/sources.md#derived-court-listing-"
            "rate). Every number of the base scenario is tagged in "
            "`src/panopticon/scenarios/seed_article.yaml` and docs/presets/seed_article.md.",
            "- Assumed: that one national score exists at all (none does: "
            "docs/sources.md#no-national-score, docs/sources.md#assumed-seed-article); the "
            "three error rates; event rates (docs/sources.md#assumed-rates); the judge's "
            "delay, accuracy and unlimited capacity; the insiders' attacks and how often they "
            "act. Each is marked [A] in `src/panopticon/studies/mistakes.yaml`.",
            "- Not modelled: who a wrongly sanctioned citizen is beyond their attributes, "
            "appeals (none in this study), and anything a real auditor would need beyond the "
            "stored run."])
