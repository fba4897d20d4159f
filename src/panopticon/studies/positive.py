"""Study ``positive`` (question 2): does the score cut misconduct, and at what cost in chilled
legitimate acts and wrongful sanctions? The same citizens and seeds with no scoring
consequences (``none``), the preset's typed-in deterrence (``fixed``) and deterrence that
emerges from the chance of being recorded and the points at stake (``perceived``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from panopticon.studies.base import (
    PER,
    Study,
    differs,
    layout,
    point_of,
    sig,
    with_ci,
)

AXIS = "system"
BASELINE = "none"
YEAR = 365.0

DEBTS = ("late_loan_payment", "utility_arrears", "loan_default", "court_judgment_default")
"""Unpaid debts: the finance events the catalogue marks as misconduct."""
TRAFFIC = ("red_light", "jaywalking")
SPEECH = ("critical_post", "spreading_rumours")
"""Speech the score punishes; the catalogue marks both as legitimate acts some systems
penalise (a "rumour" is what the authorities label one)."""

GROUPS: dict[str, str] = {
    "misconduct_per_1000": "all misconduct",
    "per_1000_drunk_driving": "drunk driving",
    "debts_per_1000": "unpaid debts",
    "traffic_per_1000": "traffic offences",
    "per_1000_critical_post": "critical posts",
    "per_1000_spreading_rumours": "posts labelled rumours",
}
"""The true-event rates the page compares with ``none`` (metric -> words)."""

CHANGES = tuple(GROUPS)

MODELLED: dict[str, str] = {
    "drunk_driving": "drunk driving",
    "late_loan_payment": "late loan payments",
    "utility_arrears": "utility arrears",
    "red_light": "red lights",
    "critical_post": "critical posts",
    "spreading_rumours": "posts labelled rumours",
}
"""Events whose modelled rate on the last survey day (``behaviour_change_<event>``) the page
gives: noise-free, and unchanged under ``none``."""

SYSTEM_WORDS = {
    "none": "no scoring consequences (`none`: the sensors record, but the policy has no rules, "
            "so nobody leaves the start score or tier A, no sanction applies, and nobody "
            "adapts: no deterrence and no responses)",
    "fixed": "the preset's typed-in deterrence (`fixed`: seed_article as it is)",
    "perceived": "deterrence that emerges from what citizens expect to lose (`perceived`)",
}


def conduct(result: Any) -> dict[str, float]:
    """Whole-run numbers of one run: true events per 1,000 citizen-years of each event
    (``per_1000_<event>``, from the ``events`` table) and of the catalogue's misconduct
    (``misconduct_per_1000``: every event of valence -1), unpaid debts (:data:`DEBTS`),
    traffic (:data:`TRAFFIC`); citizen-days wrongly sanctioned per 1,000 citizen-years (the
    daily ``citizens_wrongly_sanctioned`` summed); citizens wrongly refused an opportunity at
    least once, and refused because of a sanction at least once, per 1,000 citizens."""
    from panopticon.catalogue import catalogue_of
    from panopticon.errors import UserError
    from panopticon.metrics.run import _citizen_count, _col, _spec, read, wrongful

    n = _citizen_count(result)
    daily = read(result, "daily", ["day"])
    events = read(result, "events", ["event", "true_events"])
    if not n or daily is None or events is None:
        return {}
    years = n * daily.num_rows / YEAR
    name = _col(events, "event").astype(str)
    true = _col(events, "true_events").astype(np.float64)
    totals = {e: float(true[name == e].sum()) for e in dict.fromkeys(name)}
    try:
        catalogued = catalogue_of(_spec(result, None)).events
    except UserError:
        catalogued = catalogue_of(None).events
    out = {f"per_1000_{e}": v / years * PER for e, v in totals.items()}
    misconduct = [e for e in totals if e in catalogued and catalogued[e].valence == -1]
    out["misconduct_per_1000"] = sum(totals[e] for e in misconduct) / years * PER
    out["debts_per_1000"] = sum(totals.get(e, 0.0) for e in DEBTS) / years * PER
    out["traffic_per_1000"] = sum(totals.get(e, 0.0) for e in TRAFFIC) / years * PER
    w = wrongful(result)
    if "citizen_days_wrongly_sanctioned" in w:
        out["wrongly_sanctioned_days_per_1000"] = \
            w["citizen_days_wrongly_sanctioned"] / years * PER
    refusals = read(result, "refusals", ["citizen", "wrongful", "sanctioned"])
    for key, column in (("wrongly_refused_per_1000", "wrongful"),
                        ("sanction_refused_per_1000", "sanctioned")):
        hit = np.zeros(n, dtype=bool)
        if refusals is not None:
            who = _col(refusals, "citizen").astype(np.int64)
            hit[who[_col(refusals, column).astype(bool)]] = True
        out[key] = float(hit.mean() * PER)
    return out


def paired_changes(runs: list[dict], settings: list[str]) -> dict[str, dict[str, dict]]:
    """Per system other than ``none`` and per metric of :data:`CHANGES`: the mean over
    replicates of (value / the same replicate's value under ``none``) - 1, with its 95%
    interval (replicate r of every system uses the same seed). ``runs``: the sweep's complete
    runs, each with ``point``, ``replicate`` and ``summary`` (the study's numbers included)."""
    from panopticon.metrics.intervals import mean_interval

    base = {r["replicate"]: r["summary"] for r in runs if r["point"][AXIS] == BASELINE}
    out: dict[str, dict[str, dict]] = {}
    for system in settings:
        if system == BASELINE:
            continue
        mine = sorted((r for r in runs if r["point"][AXIS] == system),
                      key=lambda r: r["replicate"])
        out[system] = {}
        for metric in CHANGES:
            ratios = []
            for r in mine:
                b, v = base.get(r["replicate"], {}).get(metric), r["summary"].get(metric)
                if b and v is not None:
                    ratios.append(v / b - 1)
            out[system][metric] = mean_interval(ratios, -1.0, None)
    return out


def _pct(x: float) -> str:
    text = sig(abs(x) * 100, 2) + "%"
    return ("+" if x > 0 else "−" if x < 0 else "") + text


def change_text(m: dict | None) -> str:
    """A relative change with its interval, signed: '−12% (95% CI −15% to −9.1%)'."""
    if not m or m.get("mean") is None or math.isnan(m["mean"]):
        return "n/a"
    low, high = m.get("ci_low"), m.get("ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{_pct(m['mean'])} (one replicate: no interval)"
    if low == high:
        return f"{_pct(m['mean'])} (the same in every replicate)"
    return f"{_pct(m['mean'])} (95% CI {_pct(low)} to {_pct(high)})"


def _join(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clear(m: dict | None) -> str:
    """How a change reads: 'a clear fall', 'a clear rise' or 'no clear change'."""
    if not m or any(m.get(k) is None or math.isnan(m[k]) for k in ("ci_low", "ci_high")):
        return "no interval"
    if m["ci_high"] < 0:
        return "a clear fall"
    if m["ci_low"] > 0:
        return "a clear rise"
    return "no clear change at this scale"


class Positive(Study):
    name = "positive"
    title = "Positive effects: less misconduct, and at what cost"
    charts = ("misconduct_per_1000", "per_1000_critical_post")

    def extras(self, result: Any) -> dict[str, float]:
        return conduct(result)

    def _changes(self, data: dict) -> dict[str, dict[str, dict]]:
        from panopticon.sweeps import COMPLETE, load_sweep

        sweep = load_sweep(Path(data["store"]) / data["sweep"], Path(data["store"]))
        runs = [r for r in sweep["runs"] if r["status"] == COMPLETE]
        return paired_changes(runs, data["settings"][AXIS])

    # ------------------------------------------------------------------ the page
    def page(self, data: dict) -> str:
        nums = data["numbers"]
        systems = data["settings"][AXIS]
        data["changes"] = changes = self._changes(data)

        def say(name: str, text: str) -> str:
            nums[name] = text
            return text

        answer = []
        for system in systems:
            m = point_of(data, **{AXIS: system})
            r = {k: say(f"{system}/{k}", with_ci(m.get(k))) for k in GROUPS}
            days = say(f"{system}/wrongly_sanctioned_days_per_1000",
                       with_ci(m.get("wrongly_sanctioned_days_per_1000")))
            wrong = say(f"{system}/wrongly_refused_per_1000",
                        with_ci(m.get("wrongly_refused_per_1000")))
            refused = say(f"{system}/sanction_refused_per_1000",
                          with_ci(m.get("sanction_refused_per_1000")))
            text = (f"- **{_first_up(SYSTEM_WORDS.get(system, system))}**: per 1,000 "
                    f"citizen-years over the whole run, {r['per_1000_drunk_driving']} drunk "
                    f"drives, {r['debts_per_1000']} unpaid debts (late loan payments, utility "
                    f"arrears, loan defaults and court-judgment defaults), "
                    f"{r['traffic_per_1000']} red lights and jaywalks "
                    f"({r['misconduct_per_1000']} acts of misconduct in all); "
                    f"{r['per_1000_critical_post']} critical posts and "
                    f"{r['per_1000_spreading_rumours']} posts labelled rumours. Citizens "
                    f"spent {days} days per 1,000 citizen-years under a sanction their true "
                    f"record would not have brought; per 1,000 citizens, {refused} were refused "
                    f"an opportunity because of a sanction at least once, {wrong} wrongly.")
            if system in changes:
                c = {k: say(f"{system}/change_{k}", change_text(changes[system][k]))
                     for k in CHANGES}
                parts = [f"{GROUPS[k]} {c[k]} ({_clear(changes[system][k])})" for k in CHANGES]
                text += (f" Against `{BASELINE}`, replicate by replicate (same seeds): "
                         + "; ".join(parts) + ".")
                rates = [say(f"{system}/behaviour_change_{e}",
                             change_text(m[f"behaviour_change_{e}"])) + f" for {words}"
                         for e, words in MODELLED.items() if m.get(f"behaviour_change_{e}")]
                if rates:
                    text += (" On the last day, citizens' modelled rates (their expected "
                             "rates, free of the luck of the draws) stood, against their "
                             "day-0 rates, at " + _join(rates) + ".")
            answer.append(text)
        answer += self._verdict(data, changes, say)
        captions = {
            "misconduct_per_1000": "True acts of misconduct (the catalogue's: debts, "
                                   "traffic, drunk driving) per 1,000 citizen-years over "
                                   "the whole run, by system (bands: 95% CI)",
            "per_1000_critical_post": "Critical posts per 1,000 citizen-years over the "
                                      "whole run, by system (bands: 95% CI)"}
        return layout(data, self._design(data), answer, captions,
                      self._table(data), self._sources())

    def _verdict(self, data: dict, changes: dict, say) -> list[str]:
        """The answer in short: per system, what fell, what did not, and at what cost."""
        out = []
        base = point_of(data, **{AXIS: BASELINE}).get("wrongly_sanctioned_days_per_1000")
        for system, c in changes.items():
            parts = []
            for keys, what in ((("per_1000_drunk_driving", "debts_per_1000",
                                 "traffic_per_1000"), "Misconduct"),
                               (("per_1000_critical_post", "per_1000_spreading_rumours"),
                                "Speech the score punishes")):
                by: dict[str, list[str]] = {}
                for k in keys:
                    by.setdefault(_clear(c[k]), []).append(GROUPS[k])
                parts.append(f"{what}: " + ", ".join(f"{verdict} in {_join(names)}"
                                                     for verdict, names in by.items()))
            days = point_of(data, **{AXIS: system}).get("wrongly_sanctioned_days_per_1000")
            if days and base:
                parts.append(f"Errors: {say(f'{system}/days_short', with_ci(days))} "
                             "citizen-days "
                             "wrongly sanctioned per 1,000 citizen-years, against "
                             f"{say(f'{BASELINE}/days_short', with_ci(base))}")
            out.append(f"- **In short, `{system}` against `{BASELINE}`**, over the whole "
                       "run. " + ". ".join(parts) + ".")
        pair = list(changes)
        if len(pair) == 2:
            a, b = (point_of(data, **{AXIS: s}).get("wrongly_sanctioned_days_per_1000")
                    for s in pair)
            if a and b:
                verb = ("differed clearly (the intervals do not overlap)" if differs(a, b)
                        else "did not differ clearly at this scale (the intervals overlap)")
                out.append(f"- Citizen-days wrongly sanctioned under `{pair[0]}` and "
                           f"`{pair[1]}` {verb}.")
        return out

    def _design(self, data: dict) -> str:
        per = self.config["variants"][AXIS]["perceived"]["behaviour.perceived_deterrence"][0]
        return (
            f"The default scenario `{self.config['base']}` (cameras with face matching, "
            "payments, courts, online monitoring and police reports feeding one score with "
            "Rongcheng-style tiers; a drunk drive caps the tier at C for a year, a court "
            "finding of default holds it at D for two; tier C bars loans and civil-service "
            "jobs, tier D carries the court list's travel and loan bans) with "
            f"{data['citizens']:,} citizens for {data['days']} days. **What varies:** the "
            "system, three ways. "
            + " ".join(f"({i}) {_first_up(SYSTEM_WORDS.get(s, s))}."
                       for i, s in enumerate(data["settings"][AXIS], 1))
            + " In `fixed`, a citizen in tier B, C or D multiplies their rates of debts, "
            "traffic offences, drunk driving, critical posts and rumours by 0.995 each day "
            "(typed in), and the preset's responses apply: a citizen recorded running a red "
            "light or posting a critical post does it less, and citizens below the perk bands "
            "buy more baby products. In `perceived` the tier factor is replaced by the "
            "economics of crime (docs/scenarios.md#behaviourperceived_deterrence): every "
            "citizen's rate of each of the same events is multiplied by exp(−"
            f"{per['sensitivity']} × the chance a sensor records it in their region × the "
            "points it costs), whatever their tier; the responses stay. **What is held "
            "fixed:** everything else, and the seeds: replicate r of every system uses the "
            f"same seed (common random numbers), {data['replicates']} replicates per system. "
            "Changes against `none` are taken replicate by replicate (the value over the same "
            "replicate's value under `none`, minus 1) and averaged; intervals are 95% "
            "Student's t intervals across replicates (on the log scale for rates and "
            "changes). **What is measured, over the whole run:** true acts (whether or not a "
            "sensor saw them) per 1,000 citizen-years, where a citizen-year is one citizen "
            "for 365 days, children included; *misconduct* is every event the catalogue "
            "marks as misconduct; *citizen-days wrongly sanctioned*: each day a citizen "
            "spent under a sanction their true record (without false observations) would "
            "not have brought, summed (docs/scenarios.md#opportunities); *refused because "
            "of a sanction*: an attempt at an opportunity blocked by a sanction, rightly or "
            "wrongly. The run records how many citizens are wrongly sanctioned each day, not "
            "who, so the page counts citizen-days, and citizens *wrongly refused* (an attempt "
            "refused that their true record would have allowed) as the per-citizen measure.")

    def _table(self, data: dict) -> str:
        cols = [*GROUPS, "wrongly_sanctioned_days_per_1000", "sanction_refused_per_1000",
                "wrongly_refused_per_1000"]
        words = [*GROUPS.values(), "citizen-days wrongly sanctioned",
                 "citizens refused for a sanction", "citizens wrongly refused"]
        rows = ["| system | " + " | ".join(words) + " |",
                "|---|" + "---|" * len(cols)]
        for p in data["points"]:
            m = p["metrics"]
            rows.append("| " + " | ".join([f"`{p['point'][AXIS]}`",
                                           *(with_ci(m.get(c)) for c in cols)]) + " |")
        events = sorted(k.removeprefix("per_1000_") for p in data["points"]
                        for k in p["metrics"] if k.startswith("per_1000_"))
        events = list(dict.fromkeys(events))
        erows = ["| event | " + " | ".join(f"`{p['point'][AXIS]}`" for p in data["points"])
                 + " |", "|---|" + "---|" * len(data["points"])]
        for e in events:
            erows.append(f"| `{e}` | " + " | ".join(
                with_ci(p["metrics"].get(f"per_1000_{e}")) for p in data["points"]) + " |")
        return "\n".join([
            "Every system (mean over replicates, 95% CI; acts per 1,000 citizen-years over "
            "the whole run; citizen-days per 1,000 citizen-years; citizens per 1,000):", "",
            *rows, "", "Every event, true acts per 1,000 citizen-years over the whole run:", "",
            *erows])

    @staticmethod
    def _sources() -> str:
        return "\n".join([
            "- Documented: the point values for debts, arrears and a traffic ticket, and that "
            "drunk driving drops the grade to C (docs/sources.md#rongcheng-point-values, "
            "docs/sources.md#rongcheng-fp-values); the court list's listing rate and joint "
            "punishments (docs/sources.md#derived-court-listing-rate, "
            "docs/sources.md#court-blacklist-sanctions). The one documented effect of this "
            "kind is the court list's: debtors paying under the pressure of the bans "
            "(docs/sources.md#court-blacklist-compliance); `seed_article` does not model "
            "judgment debts being paid, so this study does not test it (the "
            "`court_blacklist` preset does). Every number of the base scenario is tagged in "
            "`src/panopticon/scenarios/seed_article.yaml` and docs/presets/seed_article.md.",
            "- Assumed: that one national score exists at all (none does: "
            "docs/sources.md#no-national-score, docs/sources.md#assumed-seed-article); every "
            "event rate (docs/sources.md#assumed-rates); how citizens respond: the tier "
            "factor of 0.995 a day, the responses, and the sensitivity of perceived "
            "deterrence, which has no documented value; that citizens know the coverage and "
            "the rules exactly. Each is marked [A] in `src/panopticon/studies/positive.yaml` "
            "or the preset.",
            "- Not modelled: perceived deterrence counts only points, not the sanctions a "
            "lower tier brings, so in `perceived` an act that costs a tier but no points "
            "(drunk driving here) is not deterred; rates cut by the tier factor or a response "
            "never recover; no fines, courts or police outside the score, so `none` is a "
            "world without any of them, not a world without law enforcement."])
