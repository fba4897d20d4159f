"""Study ``abroad`` (question 4): citizens living abroad, and their families at home."""

from __future__ import annotations

from typing import Any

import numpy as np

from panopticon.studies.base import (
    Study,
    differs,
    layout,
    pct_ci,
    point_of,
    with_ci,
)

AXIS = "policy.scope.abroad.mode"
WHO = ("abroad", "home", "family")
WHO_WORDS = {"abroad": "citizens abroad", "home": "everyone at home",
             "family": "their families at home"}
MODE_WORDS = {
    "as_home": "scored as at home (`as_home`: domestic sensors do not see them, but rules, "
               "association and false matches still apply)",
    "freeze": "frozen (`freeze`: their score stays at the start score, as for an exempt "
              "citizen)",
    "decay": "decaying (`decay`: each month the score moves a share of the way back to the "
             "start score)",
    "penalty": "docked (`penalty`: points lost each month for missing data)",
}


def standing(result: Any) -> dict[str, float]:
    """Final standing of citizens abroad, of everyone at home, and of the family at home
    (citizens at home sharing a household with someone abroad): mean score, share in the
    lowest tier and share in the two lowest tiers; and how many citizens each group has."""
    from panopticon.metrics.run import _col, _tiers, read

    table = read(result, "citizens", ["abroad", "score", "tier", "household"])
    abroad = _col(table, "abroad").astype(bool)
    score = _col(table, "score").astype(np.float64)
    tier = _col(table, "tier").astype(str)
    household = _col(table, "household").astype(np.int64)
    tiers = _tiers(result)
    away_households = np.unique(household[abroad & (household >= 0)])
    family = ~abroad & np.isin(household, away_households) & (household >= 0)
    out: dict[str, float] = {}
    for who, mask in (("abroad", abroad), ("home", ~abroad), ("family", family)):
        out[f"citizens_{who}"] = float(mask.sum())
        if not mask.any():
            continue
        out[f"mean_score_{who}"] = float(score[mask].mean())
        out[f"share_{who}_lowest"] = float((tier[mask] == tiers[-1]).mean())
        out[f"share_{who}_two_lowest"] = float(np.isin(tier[mask], tiers[-2:]).mean())
    return out


class Abroad(Study):
    name = "abroad"
    title = "Citizens abroad: frozen, decayed, docked, or scored as at home"
    charts = ("mean_score_abroad", "share_abroad_two_lowest")

    def extras(self, result: Any) -> dict[str, float]:
        return standing(result)

    def page(self, data: dict) -> str:
        nums = data["numbers"]
        modes = data["settings"][AXIS]
        scope = self.config["fixed"]

        def say(name: str, text: str) -> str:
            nums[name] = text
            return text

        answer = []
        for mode in modes:
            m = point_of(data, **{AXIS: mode})
            s = {w: say(f"{mode}/mean_score_{w}", with_ci(m.get(f"mean_score_{w}"), digits=4))
                 for w in WHO}
            low = {w: say(f"{mode}/share_{w}_two_lowest", pct_ci(m.get(f"share_{w}_two_lowest")))
                   for w in WHO}
            d = {w: say(f"{mode}/share_{w}_lowest", pct_ci(m.get(f"share_{w}_lowest")))
                 for w in WHO}
            answer.append(
                f"- **{MODE_WORDS.get(mode, mode).capitalize()}**: citizens abroad ended the "
                f"run ({data['days']} days) with a mean score of {s['abroad']}, against "
                f"{s['home']} for everyone at home; {low['abroad']} of them were in the two "
                f"lowest tiers (where "
                f"sanctions apply) and {d['abroad']} in the lowest, against {low['home']} and "
                f"{d['home']} at home. Their families at home averaged {s['family']}, with "
                f"{low['family']} in the two lowest tiers.")
        base = point_of(data, **{AXIS: "as_home"}) if "as_home" in modes else None
        if base:
            for mode in modes:
                if mode == "as_home":
                    continue
                m = point_of(data, **{AXIS: mode})
                a, b = m.get("mean_score_abroad"), base.get("mean_score_abroad")
                if a and b:
                    diff = a["mean"] - b["mean"]
                    clear = differs(a, b)
                    answer.append(
                        f"- `{mode}` against `as_home`: citizens abroad ended "
                        f"{say(f'{mode}/diff', f'{abs(diff):,.1f}')} points "
                        f"{'higher' if diff > 0 else 'lower'} on average"
                        + ("" if clear else " (the intervals overlap: no clear difference "
                           "at this scale)") + ".")
        design = (
            f"The default scenario `{self.config['base']}` with "
            f"{data['citizens']:,} citizens for {data['days']} days, "
            f"{scope['society.abroad_share']:.0%} of adult citizens living abroad (not seen "
            "by domestic sensors; false matches and phantom records can still name them). "
            f"**What varies:** how the policy scores them (`policy.scope.abroad.mode`: "
            f"{', '.join(modes)}); `decay` moves the score "
            f"{scope['policy.scope.abroad.rate']:.0%} of the way back to the start score every "
            f"{scope['policy.scope.abroad.every_days']} days, `penalty` docks "
            f"{scope['policy.scope.abroad.points']} points every "
            f"{scope['policy.scope.abroad.every_days']} days (docs/policies.md#scope). **What "
            "is held fixed:** everything else, and the seeds (replicate r of every mode uses "
            f"the same seed), {data['replicates']} replicates per mode; intervals are 95% "
            "Student's t intervals across replicates (on the logit scale for shares). "
            "*Families at home*: citizens living at home in a household with a member abroad. "
            "**Why:** the start score (1,000) sits in tier A; a citizen who is not seen earns "
            "no deductions and no awards, so where they end depends on the mode and on the "
            "weekly pull toward their friends' scores.")
        captions = {
            "mean_score_abroad": "Mean final score of citizens abroad, by mode "
                                 "(bands: 95% CI)",
            "share_abroad_two_lowest": "Share of citizens abroad in the two lowest "
                                       "tiers at the end, by mode"}
        sources = "\n".join([
            "- Documented: the Rongcheng start score and bands the tiers follow "
            "(docs/sources.md#rongcheng-start-and-bands); every number of the base scenario "
            "is tagged in `src/panopticon/scenarios/seed_article.yaml`.",
            "- Assumed: the share living abroad, the decay rate, the penalty and their "
            "schedule (marked [A] in `src/panopticon/studies/abroad.yaml`); no documented "
            "system is known to score citizens abroad in any of these ways, so the four modes "
            "are alternatives to compare, not a model of one system "
            "(docs/sources.md#no-national-score).",
            "- Not modelled: citizens moving abroad or back during the run, and foreign "
            "sources of data."])
        return layout(data, design, answer, captions, self._table(data), sources)

    @staticmethod
    def _table(data: dict) -> str:
        rows = ["| mode | mean score: abroad | at home | families at home | two lowest tiers: "
                "abroad | at home | families |", "|---|---|---|---|---|---|---|"]
        for p in data["points"]:
            m = p["metrics"]
            rows.append("| " + " | ".join([
                f"`{p['point'][AXIS]}`",
                *(with_ci(m.get(f"mean_score_{w}"), digits=4) for w in WHO),
                *(pct_ci(m.get(f"share_{w}_two_lowest")) for w in WHO)]) + " |")
        return "\n".join(["Every setting (mean over replicates, 95% CI):", "", *rows])
