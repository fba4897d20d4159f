"""Study ``oversight`` (question 3): exempt officials, their friends and families, everyone
else; and what the audit catches when exempt officials abuse their access."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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
from panopticon.studies.mistakes import CHAIN

AXIS = "exemption"
GROUPS = ("officials", "friends", "family", "others")
GROUP_WORDS = {"officials": "officials", "friends": "their friends",
               "family": "their families", "others": "everyone else"}
REGIME_SHORT = {"none": "when officials are scored", "officials": "when they are exempt"}
ATTACK_WORDS = {"raise_cronies": "raised family and friends (logged)",
                "delete_entries": "silently deleted family and friends' deductions",
                "lower_targets": "lowered critics (logged)"}
CRONY_ATTACKS = ("raise_cronies", "delete_entries")


# ------------------------------------------------------------------ who is who
def _start_friends(result: Any):
    """The friends layer as the run's society was generated (day 0): a pure function of the
    stored scenario, so the same citizens whatever the policy did to the ties later."""
    from panopticon.metrics.run import _spec
    from panopticon.society.population import generate_society

    spec = _spec(result, None)
    return generate_society(spec.society, spec.run.citizens, spec.run.seed).ties["friends"]


def groups(result: Any) -> dict[str, np.ndarray]:
    """Masks over the citizens table: ``officials`` (occupation ``official``), ``friends``
    (other citizens with an official among their friends at the start of the run),
    ``family`` (other citizens sharing a household with an official; a citizen may be both
    friend and family) and ``others`` (everyone who is neither)."""
    from panopticon.metrics.run import _col, read

    table = read(result, "citizens", ["occupation", "household"])
    official = _col(table, "occupation").astype(str) == "official"
    household = _col(table, "household").astype(np.int64)
    n = len(official)
    layer = _start_friends(result)
    indptr = np.asarray(layer.indptr[:n + 1], dtype=np.int64)
    src = np.repeat(np.arange(n), np.diff(indptr))
    dst = np.asarray(layer.indices[:indptr[-1]], dtype=np.int64)
    friend = np.zeros(n, dtype=bool)
    friend[dst[official[src]]] = True
    friend &= ~official
    homes = np.unique(household[official & (household >= 0)])
    family = ~official & (household >= 0) & np.isin(household, homes)
    return {"officials": official, "friends": friend, "family": family,
            "others": ~official & ~friend & ~family}


def standing(result: Any) -> dict[str, float]:
    """Per group (:func:`groups`): at the end of the run, the mean score, the share in the
    two lowest tiers (where the sanctions are) and in the two highest (where the perks are);
    over the whole run, per 1,000 citizens of the group, those refused an opportunity at
    least once because of a sanction (``refusals.sanctioned``) and for want of a perk
    (``refusals.no_perk``); how many citizens each group has; and the share of the family
    group that is also in the friends group (``share_family_friends``)."""
    from panopticon.metrics.run import _col, _tiers, read

    masks = groups(result)
    table = read(result, "citizens", ["score", "tier"])
    score = _col(table, "score").astype(np.float64)
    tier = _col(table, "tier").astype(str)
    n = len(score)
    tiers = _tiers(result)
    refusals = read(result, "refusals", ["citizen", "sanctioned", "no_perk"])
    sanctioned = np.zeros(n, dtype=bool)
    no_perk = np.zeros(n, dtype=bool)
    if refusals is not None:
        who = _col(refusals, "citizen").astype(np.int64)
        sanctioned[who[_col(refusals, "sanctioned").astype(bool)]] = True
        no_perk[who[_col(refusals, "no_perk").astype(bool)]] = True
    out: dict[str, float] = {}
    if masks["family"].any():
        out["share_family_friends"] = float(masks["friends"][masks["family"]].mean())
    for g, mask in masks.items():
        out[f"citizens_{g}"] = float(mask.sum())
        if not mask.any():
            continue
        out[f"mean_score_{g}"] = float(score[mask].mean())
        out[f"share_{g}_two_lowest"] = float(np.isin(tier[mask], tiers[-2:]).mean())
        out[f"share_{g}_two_highest"] = float(np.isin(tier[mask], tiers[:2]).mean())
        out[f"refused_sanctioned_per_1000_{g}"] = float(sanctioned[mask].mean() * PER)
        out[f"refused_no_perk_per_1000_{g}"] = float(no_perk[mask].mean() * PER)
    return out


# ------------------------------------------------------------------ insiders
def insider_effect(control: Any, insiders: Any) -> dict[str, float]:
    """What the insiders did, against the same run without them (same scenario and seed;
    the insiders' choice and picks draw from their own streams, so the runs differ only
    through what the insiders changed): for the cronies (citizens picked by
    ``raise_cronies`` or ``delete_entries``) and the critics (picked by ``lower_targets``),
    their number, mean final score and share in the two lowest tiers in both runs, and the
    difference of the means (``cronies_gain``: with minus without; ``critics_loss``: without minus with)."""
    from panopticon.metrics.run import _col, _tiers, read

    done = read(insiders, "manipulations", ["citizen", "attack"])
    attack = _col(done, "attack").astype(str) if done is not None else np.array([], str)
    who = _col(done, "citizen").astype(np.int64) if done is not None else np.array([], int)
    tiers = _tiers(insiders)
    out: dict[str, float] = {}
    finals = {}
    for name, result in (("with", insiders), ("without", control)):
        table = read(result, "citizens", ["score", "tier"])
        finals[name] = (_col(table, "score").astype(np.float64), _col(table, "tier").astype(str))
    for label, kinds in (("cronies", CRONY_ATTACKS), ("critics", ("lower_targets",))):
        picked = np.unique(who[np.isin(attack, kinds)])
        out[f"{label}"] = float(len(picked))
        if not len(picked):
            continue
        for name, (score, tier) in finals.items():
            out[f"{label}_score_{name}"] = float(score[picked].mean())
            out[f"share_{label}_two_lowest_{name}"] = float(np.isin(tier[picked],
                                                                    tiers[-2:]).mean())
        diff = out[f"{label}_score_with"] - out[f"{label}_score_without"]
        out[f"{label}_{'gain' if label == 'cronies' else 'loss'}"] = \
            diff if label == "cronies" else -diff
    return out


def audited(result: Any) -> dict:
    """The audit of an insider run (:func:`panopticon.audit.audit`) against the lab's record
    (:func:`panopticon.metrics.run.manipulations` and the ``manipulations`` table): the
    verdict, the manual adjustments and the officials they name, the unexplained scores and
    off-rule entries; per attack the actions, the citizens and points, the officials who
    acted and how many actions the audit caught; and the officials whose only abuse was
    silent (``delete_entries``) whom the audit names nowhere."""
    from panopticon.audit import audit
    from panopticon.metrics.run import _col, manipulations, read

    report = audit(Path(result.path))
    found = report.get("insider_actions_found") or {}
    named = {str(m["official"]) for m in report.get("manual") or []}
    table = read(result, "manipulations", ["official", "attack"])
    acted: dict[str, set[str]] = {}
    if table is not None:
        for official, attack in zip(_col(table, "official").astype(np.int64).astype(str),
                                    _col(table, "attack").astype(str), strict=True):
            acted.setdefault(attack, set()).add(official)
    logged = set().union(*(acted.get(a, set()) for a in ("raise_cronies", "lower_targets")))
    silent_only = acted.get("delete_entries", set()) - logged
    return {"intact": bool(report["intact"]), "chain_intact": report["chain_intact"],
            "manual": len(report.get("manual") or []), "named": len(named),
            "acted": len(set().union(*acted.values())) if acted else 0,
            "logged_officials": len(logged), "logged_named": len(logged & named),
            "silent_only": len(silent_only), "silent_named": len(silent_only & named),
            "unexplained": len(report.get("unexplained") or []),
            "deviations": len(report.get("deviations") or []),
            "attacks": {a: {"actions": int(d["actions"]), "citizens": int(d["citizens"]),
                            "points": d["points"], "officials": len(acted.get(a, ())),
                            "caught": int(found.get(a, {}).get("caught", 0))}
                        for a, d in manipulations(result).items()}}


def insider_summary(runs: list[dict], bounds: Callable) -> dict:
    """Each :func:`insider_effect` number's mean and interval over the insider runs, and the
    audits' counts summed over them."""
    from panopticon.metrics.intervals import mean_interval

    names = sorted({k for r in runs for k in r["effect"]})
    effect = {k: mean_interval([r["effect"][k] for r in runs if k in r["effect"]], *bounds(k))
              for k in names}
    audits = [r["audit"] for r in runs]
    attacks: dict[str, dict[str, float]] = {}
    for a in audits:
        for attack, d in a["attacks"].items():
            total = attacks.setdefault(attack, {k: 0 for k in d})
            for k, v in d.items():
                total[k] += v
    keys = ("manual", "named", "acted", "logged_officials", "logged_named", "silent_only",
            "silent_named", "unexplained", "deviations")
    return {"effect": effect, "attacks": attacks,
            "totals": {k: sum(a[k] for a in audits) for k in keys},
            "not_intact": sum(not a["intact"] for a in audits),
            "chains": sorted({CHAIN[a["chain_intact"]] for a in audits})}


# ------------------------------------------------------------------ the study
class Oversight(Study):
    name = "oversight"
    title = "Exemptions and oversight: exempt officials, their friends, and who watches them"
    charts = ("mean_score_officials", "share_friends_two_lowest")

    def extras(self, result: Any) -> dict[str, float]:
        return standing(result)

    def bounds(self, name: str) -> tuple[float | None, float | None]:
        if name.startswith("share_"):
            return 0.0, 1.0
        if name in ("cronies", "critics"):
            return 0.0, None
        return super().bounds(name)

    def insider_spec(self, scale: Scale, replicate: int, insiders: bool) -> Any:
        """The insider run (officials exempt, ``insiders`` from the study file) or its
        control (the same without insiders), replicate ``replicate``'s seed."""
        from panopticon.scenario import scenario_from_data
        from panopticon.studies.base import _assign

        data = self.base_data(scale, citizens=scale.insider_citizens)
        for key, value in (self.config["variants"][AXIS]["officials"] or {}).items():
            _assign(data, key, value)
        data["run"]["seed"] += replicate
        kind = "insiders" if insiders else "control"
        if insiders:
            _assign(data, "governance.insiders", self.config["insiders"])
        data["name"] = f"study-oversight-{kind}"
        return scenario_from_data(data, {}, f"<study oversight {kind}>")

    def extra_runs(self, scale: Scale, store: Path, progress: Callable[[str], None]) -> dict:
        """Per replicate, a run with insiders among the exempt officials (audited) and the
        same run without them."""
        from panopticon.api import run

        runs = []
        for r in range(scale.replicates):
            pair = {}
            for insiders in (False, True):
                spec = self.insider_spec(scale, r, insiders)
                progress(f"oversight: {'insider' if insiders else 'control'} run {r + 1} of "
                         f"{scale.replicates} ({spec.run.citizens:,} citizens)")
                pair[insiders] = run(spec, out=store)
            progress(f"oversight: auditing insider run {r + 1}")
            runs.append({"control": Path(pair[False].path).name,
                         "insiders": Path(pair[True].path).name,
                         "effect": insider_effect(pair[False], pair[True]),
                         "audit": audited(pair[True])})
        spec = self.insider_spec(scale, 0, True)
        return {"insiders": {"citizens": spec.run.citizens, "days": spec.run.days,
                             "runs": runs, **insider_summary(runs, self.bounds)}}

    # ------------------------------------------------------------------ the page
    def page(self, data: dict) -> str:
        nums = data["numbers"]
        regimes = data["settings"][AXIS]

        def say(name: str, text: str) -> str:
            nums[name] = text
            return text

        def fmt(metric: str, m: dict | None) -> str:
            if metric.startswith("share_"):
                return pct_ci(m)
            return with_ci(m, digits=4) if metric.startswith("mean_score") else with_ci(m)

        def num(regime: str, metric: str) -> str:
            return say(f"{regime}/{metric}", fmt(metric, point_of(data, **{AXIS: regime})
                                                 .get(metric)))

        answer = [self._group(data, g, num) for g in GROUPS]
        if "none" in regimes and "officials" in regimes:
            answer.append(self._why(data))
        ins = data["extra"].get("insiders")
        if ins:
            answer += self._insiders(ins, say)
        captions = {
            "mean_score_officials": "Officials' mean final score, nobody exempt against "
                                    "officials exempt (bands: 95% CI)",
            "share_friends_two_lowest": "Share of officials' friends in the two lowest "
                                        "tiers at the end (bands: 95% CI)"}
        return layout(data, self._design(data), answer, captions,
                      self._table(data, fmt), self._sources())

    def _group(self, data: dict, g: str, num: Callable) -> str:
        """One group's bullet: each setting's numbers side by side, then the difference."""
        regimes = data["settings"][AXIS]
        words = {r: REGIME_SHORT.get(r, f"`{r}`") for r in regimes}

        def row(metric: str) -> str:
            texts = [num(r, metric) for r in regimes]
            if len(set(texts)) == 1 and len(texts) > 1:
                return f"{texts[0]} in both settings"
            return ", ".join(f"{t} {words[r]}" for t, r in zip(texts, regimes, strict=True))

        first = point_of(data, **{AXIS: regimes[0]})
        count = first.get(f"citizens_{g}", {}).get("mean")
        both = ""
        if g == "family" and first.get("share_family_friends"):
            both = (f"; {num(regimes[0], 'share_family_friends')} of them are also friends of "
                    "an official")
        text = (f"- **{GROUP_WORDS[g].capitalize()}** "
                + (f"(about {count:,.0f} a run{both})" if count else "") + ": "
                f"*final state* (day {data['days']}), a mean score of "
                f"{row(f'mean_score_{g}')}; in the two lowest tiers (sanctions) "
                f"{row(f'share_{g}_two_lowest')}; in the two highest (perks) "
                f"{row(f'share_{g}_two_highest')}. *Whole run*: per 1,000, refused an "
                f"opportunity at least once because of a sanction "
                f"{row(f'refused_sanctioned_per_1000_{g}')}; for want of a perk "
                f"{row(f'refused_no_perk_per_1000_{g}')}.")
        if "none" not in regimes or "officials" not in regimes:
            return text
        base, exempt = (point_of(data, **{AXIS: r}) for r in ("none", "officials"))
        verdicts = []
        for metric, what in ((f"mean_score_{g}", "mean score"),
                             (f"share_{g}_two_lowest", "share in the two lowest tiers"),
                             (f"refused_sanctioned_per_1000_{g}", "refusals under a sanction")):
            x, y = base.get(metric), exempt.get(metric)
            if not x or not y:
                continue
            if x["mean"] == y["mean"]:
                verdicts.append(f"the same {what} in both")
            elif differs(x, y):
                verdicts.append(f"a clear difference in the {what}")
            else:
                verdicts.append(f"no clear difference in the {what} (the intervals overlap)")
        a, b = base.get(f"mean_score_{g}"), exempt.get(f"mean_score_{g}")
        if a and b and a["mean"] != b["mean"]:
            diff = b["mean"] - a["mean"]
            size = f"{abs(diff):,.1f}"
            if size != "0.0":
                data["numbers"][f"diff/mean_score_{g}"] = size
            who = "officials themselves" if g == "officials" else GROUP_WORDS[g]
            text += (f" Exempting officials left {who} {size} points "
                     f"{'higher' if diff > 0 else 'lower'} on average at the end."
                     if size != "0.0" else
                     f" Exempting officials left {GROUP_WORDS[g]}'s mean final score as it "
                     "was to a tenth of a point.")
        return text + (" Against scoring them: " + "; ".join(verdicts) + "."
                       if verdicts else "")

    def _why(self, data: dict) -> str:
        f = self._facts()
        return (
            f"- Why: an exempt official keeps the start score, {f['start']:,.0f}, all run, and "
            f"so stays in tier {f['start_tier']}: never sanctioned, but never in the perk "
            f"tiers ({f['top']}) either" + (f", and never deterred by a tier (deterrence "
                                             f"applies in {f['deterred']})"
                                             if f["deterred"] else "")
            + f". Their frozen score still pulls their ties ({f['pull']})"
            + (", and they take no part in the unfriending (they neither drop friends nor "
               "are chosen as new ones; docs/policies.md#what-exemption-covers)"
               if f["unfriending"] else "")
            + f". That is all the exemption changes for anyone else: {f['unpulled']}, and "
            "everyone else is reached only through ties of ties.")

    def _facts(self) -> dict:
        """What the page says of the base scenario, read from it."""
        from panopticon.api import load

        spec = load(self.config["base"])
        policy = spec.policy
        start = float(policy.score.start)
        start_tier = next(t.name for t in policy.tiers if t.min is None or start >= t.min)
        pulls = [a for a in policy.association if a.weight]
        pull = "; ".join(f"each score moves {a.weight:.0%} of the way toward the mean score "
                         f"of the citizen's ties in the `{a.ties}` layer every "
                         f"{a.every_days} days" for a in pulls) or "no pull"
        layers = {a.ties for a in pulls}
        unpulled = ("families are not pulled in this scenario (they move only as far as "
                    "they are also friends)" if "family" not in layers
                    else "families are pulled too")
        deterred = sorted({t for d in spec.behaviour.deterrence for t in d.tiers}
                          - {start_tier}, key=[t.name for t in policy.tiers].index)
        occ = spec.society.occupation
        weights = dict(zip(occ.values, occ.weights, strict=True))
        official = weights.get("official", 0) / sum(weights.values())
        return {"start": start, "start_tier": start_tier, "pull": pull,
                "top": " and ".join(t.name for t in policy.tiers[:2]),
                "bottom": " and ".join(t.name for t in policy.tiers[-2:]),
                "unpulled": unpulled, "deterred": ", ".join(deterred),
                "unfriending": spec.behaviour.unfriending is not None,
                "official": official}

    def _insiders(self, ins: dict, say: Callable) -> list[str]:
        e, t, runs = ins["effect"], ins["totals"], len(ins["runs"])

        def effect(key: str) -> str:
            m = e.get(key)
            return say(f"insiders/{key}", pct_ci(m) if key.startswith("share_") else with_ci(m))

        attacks = [f"{d['officials']:,} officials {ATTACK_WORDS.get(a, a)} in "
                   f"{d['actions']:,} actions ({d['citizens']:,} citizens, "
                   f"{sig(d['points'], 3)} points)" for a, d in ins["attacks"].items()]
        text = (f"- **Exempt officials who abuse their access** ({runs} pairs of runs of "
                f"{ins['citizens']:,} citizens, {ins['days']} days, officials exempt: each run "
                "with insiders against the same seed without): over the runs, "
                + "; ".join(attacks) + ".")
        if "cronies_gain" in e:
            text += (f" The cronies (family and friends picked by `raise_cronies` or "
                     f"`delete_entries`; {effect('cronies')} per run) ended "
                     f"{effect('cronies_gain')} points above the same citizens in the run "
                     f"without insiders (final state), {effect('share_cronies_two_lowest_with')}"
                     f" of them in the two lowest tiers against "
                     f"{effect('share_cronies_two_lowest_without')} without.")
        if "critics_loss" in e:
            text += (f" The critics lowered ({effect('critics')} per run) ended "
                     f"{effect('critics_loss')} points below the same citizens without "
                     f"insiders, {effect('share_critics_two_lowest_with')} of them in the two "
                     f"lowest tiers against {effect('share_critics_two_lowest_without')}.")
        caught = "; ".join(
            "`{}` {} actions".format(a, say(f"insiders/caught/{a}",
                                            f"{d['caught']:,} of {d['actions']:,}"))
            for a, d in ins["attacks"].items())
        verdict = say("insiders/not_intact", f"{ins['not_intact']} of {runs}")
        logged = say("insiders/logged_named",
                     f"{t['logged_named']:,} of the {t['logged_officials']:,}")
        silent = say("insiders/silent_named",
                     f"{t['silent_named']:,} of the {t['silent_only']:,}")
        return [text,
                f"- **What the audit caught** (`panopticon audit` on each insider run): the "
                f"verdict was *not intact* in {verdict} runs, with the hash chain "
                f"{' / '.join(ins['chains'])} (the insiders wrote through the system). It "
                f"listed {t['manual']:,} manual adjustments, each under the official who made "
                f"it, {t['unexplained']:,} scores the ledger does not explain and "
                f"{t['deviations']:,} rule entries off their rule's points, and so caught: "
                f"{caught}. It named {logged} officials who logged their changes, and "
                f"{silent} whose only abuse was deleting entries: a silent deletion shows as a "
                "score the ledger does not explain, with no day and no official. Manual "
                "adjustments alone do not fail the audit (docs/audit.md); the silent edits "
                "do. The catch counts are against the lab's record of what the insiders did, "
                "which a real auditor would not have; nothing in the model punishes an "
                "insider who is caught."]

    def _design(self, data: dict) -> str:
        f = self._facts()
        first = data["points"][0]["metrics"]
        total = first.get("citizens_officials", {}).get("mean")
        friends = first.get("citizens_friends", {}).get("mean")
        family = first.get("citizens_family", {}).get("mean")
        size = ""
        if total and friends and family:
            size = (f" At this scale a run has about {total:,.0f} officials "
                    f"({total / data['citizens']:.1%} of citizens), {friends:,.0f} friends "
                    f"and {family:,.0f} family members of officials.")
        ins = data["extra"].get("insiders")
        return (
            f"The default scenario `{self.config['base']}` (one score fed by cameras, "
            "payments, courts, online monitoring and police reports, Rongcheng-style tiers; "
            "tier D carries the court list's bans, tier C bars loans and civil-service jobs, "
            f"{f['top']} bring perks; {f['pull']}) with "
            f"{data['citizens']:,} citizens for {data['days']} days. **What varies:** whether "
            f"officials (occupation `official`: {f['official']:.0%} of working-age adults in "
            "the scenario's society) are exempt "
            "(`policy.scope.exempt`; docs/policies.md#what-exemption-covers: never scored, "
            "listed, pulled or denied a sanction, and no insider edits them, but their frozen "
            "score still pulls their friends). **What is held fixed:** everything else, and "
            "the seeds: replicate r of both settings uses the same seed, so the society and "
            f"its groups are the same citizens in both; {data['replicates']} replicates per "
            "setting; intervals are 95% Student's t intervals across replicates (on the logit "
            "scale for shares, the log scale for counts). **Groups:** *officials*; *their "
            "friends*: other citizens with an official among their friends at the start of "
            "the run; *their families*: other citizens sharing a household with an official "
            "(a citizen may be both); *everyone else*: the rest. The groups differ in who "
            "they are (officials are all working-age adults; everyone else includes children "
            "and the retired), so compare each group across the two settings, not the groups "
            "with each other. **Scope:** *final state* "
            "numbers are read on the last day; *whole run* numbers count every day."
            + size
            + (f" **Oversight:** {len(ins['runs'])} more pairs of runs "
               f"({ins['citizens']:,} citizens, officials exempt, the grid's seeds) add insiders "
               "among the exempt officials who raise their family and friends (logged as "
               "manual adjustments), silently delete their deductions (no ledger row) and "
               "lower critics (logged), as in docs/examples/insiders.md; each is audited by "
               "`panopticon audit` and compared with the same run without insiders."
               if ins else ""))

    def _table(self, data: dict, fmt: Callable) -> str:
        rows = ["| exemption | group | citizens | mean final score | two lowest tiers (final) "
                "| two highest tiers (final) | refused under a sanction per 1,000 (whole run) "
                "| refused for want of a perk per 1,000 (whole run) |",
                "|---|---|---|---|---|---|---|---|"]
        for p in data["points"]:
            m = p["metrics"]
            for g in GROUPS:
                count = m.get(f"citizens_{g}", {}).get("mean", math.nan)
                rows.append("| " + " | ".join([
                    f"`{p['point'][AXIS]}`", GROUP_WORDS[g], sig(count, 4),
                    *(fmt(k, m.get(k)) for k in (
                        f"mean_score_{g}", f"share_{g}_two_lowest", f"share_{g}_two_highest",
                        f"refused_sanctioned_per_1000_{g}", f"refused_no_perk_per_1000_{g}"))])
                    + " |")
        return "\n".join(["Every setting and group (mean over replicates, 95% CI):", "", *rows])

    @staticmethod
    def _sources() -> str:
        return "\n".join([
            "- Documented: the Rongcheng start score and bands the tiers follow "
            "(docs/sources.md#rongcheng-start-and-bands); Rongcheng's measures cover everyone "
            "18 or over, with data from Party and government organs among the sources, and "
            "exempt no one (docs/sources.md#rongcheng-coverage); officials who misused a "
            "scoring-like system: 1,317 Henan depositors given red health codes improperly in "
            "2022, five Zhengzhou officials punished (docs/sources.md#location-tracking). "
            "Every number of the base scenario is tagged in "
            "`src/panopticon/scenarios/seed_article.yaml` and docs/presets/seed_article.md.",
            "- Assumed: that one national score exists at all (none does: "
            "docs/sources.md#no-national-score, docs/sources.md#assumed-seed-article); that "
            "officials could be exempt (no documented system is known to exempt them); the "
            "share of officials; the insiders, their number, their attacks and how often "
            "they act. Each is marked [A] in `src/panopticon/studies/oversight.yaml`.",
            "- Not modelled: officials' misconduct being treated differently outside the "
            "score (courts, discipline inspection), insiders being caught or punished, "
            "officials' friends choosing them as friends because they are exempt (the "
            "network is the same in both settings at the start), and anything a real "
            "auditor would need beyond the stored run."])
