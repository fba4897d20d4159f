"""Study ``visitors`` (question 5): tourists and foreigners rated as residents, by origin or by
income; which opportunities their standing would refuse, and how unequal that is by origin.

Visitors never try an opportunity in a run (docs/scenarios.md#societyvisitors), so the study
puts each person's standing to the policy's gates: for every opportunity of the scenario, would
the sanctions and perks of their score and tier refuse it? Residents are put to the same gates
at the end of the run. Everything is read from the stored run (the citizens table and the
scenario), never from the daily ``mean_score``, which counts absent visitor slots."""

from __future__ import annotations

from typing import Any

import numpy as np

from panopticon.errors import UserError
from panopticon.studies.base import (
    Scale,
    Study,
    _assign,
    layout,
    pct_ci,
    point_of,
    sig,
    with_ci,
)

AXIS = "rating"
HOME = "home"
ADULT = 18
"""Opportunities' ``min_age`` in the catalogue: residents younger than this are not counted."""
RATING_WORDS = {
    "as_residents": "rated as residents (`as_residents`: every visitor starts at the "
                    "residents' start score)",
    "by_origin": "rated by origin (`by_origin`: a base score per origin)",
    "by_income": "rated by income (`by_income`: a base score from each visitor's income)",
}
GATE_WORDS = {
    "travel": "a star hotel, a high-speed train seat, a flight or leaving the country",
    "credit": "a bank loan",
    "rental": "a deposit-free rental (a flat, bike or power bank)",
}


# ------------------------------------------------------------------ reading a stored run
def _labels(spec: Any) -> dict[str, tuple[str, ...]]:
    """Category labels of the run's population, as its conditions compile them."""
    from panopticon.society.population import ORIGIN_HOME, SEXES

    s = spec.society
    out = {"sex": tuple(SEXES), "region": tuple(s.region.labels()),
           "group": tuple(s.group.labels()), "residency": tuple(s.residency.labels()),
           "occupation": (*s.occupation.labels(), "minor", "retired")}
    if s.visitors is not None:
        out["origin"] = (ORIGIN_HOME, *s.visitors.origins.labels())
    return out


def _no_calls(name: str, args: tuple) -> np.ndarray:
    raise UserError(f"study visitors: a gate or start score calls {name}(...); the study reads "
                    "gates on attributes, score and tier only")


def _evaluate(cond: Any, table: Any, labels: dict, extra: dict[str, np.ndarray]) -> np.ndarray:
    """A compiled condition on the citizens table's columns (categories as codes) and
    ``extra`` (score, tier)."""
    from panopticon.metrics.run import _col
    from panopticon.store.tables import stored_name

    cols: dict[str, np.ndarray] = {}
    for name in cond.columns:
        if name in extra:
            cols[name] = extra[name]
        elif name in labels:
            index = {c: i for i, c in enumerate(labels[name])}
            values = _col(table, stored_name(name)).astype(str)
            cols[name] = np.asarray([index.get(v, -1) for v in values], dtype=np.int64)
        else:
            cols[name] = _col(table, name).astype(np.float64)
    if not cols:
        cols["score"] = extra["score"]
    return cond(cols, _no_calls)


def gate_refusals(spec: Any, table: Any, score: np.ndarray, tier: np.ndarray,
                  names: list[str]) -> dict[str, np.ndarray]:
    """For each opportunity in ``names`` (of the scenario): bool (n,) whether its gates would
    refuse each citizen of ``table`` at standing (``score`` in points, ``tier`` codes): a
    sanction in its ``blocked_by`` denied, a perk in its ``needs`` not granted, or the score
    under its ``min_score`` (one number). Exempt citizens (``scope.exempt``) are denied
    nothing, as in a run. Conditions may read attributes, score and tier, nothing else."""
    from panopticon.catalogue import catalogue_of
    from panopticon.spec.conditions import compile_policy_conditions

    policy = spec.policy
    labels = _labels(spec)
    compiled = compile_policy_conditions(policy, [], labels, tuple(spec.society.traits))
    extra = {"score": score, "tier": tier}
    exempt = np.zeros(len(score), dtype=bool)
    if policy.scope.exempt:
        exempt = _evaluate(compiled["scope.exempt"], table, labels, extra)
    denied: dict[str, np.ndarray] = {}
    granted: dict[str, np.ndarray] = {}
    for k, c in enumerate(policy.sanctions):
        mask = _evaluate(compiled[f"sanctions[{k}].when"], table, labels, extra)
        for name in c.deny:
            denied[name] = denied.get(name, False) | (mask & ~exempt)
        for name in c.grant:
            granted[name] = granted.get(name, False) | mask
    catalogued = catalogue_of(spec).opportunities
    nobody = np.zeros(len(score), dtype=bool)
    out = {}
    for name in names:
        opp = spec.opportunities[name]
        default = catalogued.get(name)
        blocked = opp.blocked_by if opp.blocked_by is not None else (
            default.blocked_by if default else ())
        needs = opp.needs if opp.needs is not None else (default.needs if default else ())
        refused = nobody.copy()
        for s in blocked:
            refused |= denied.get(s, nobody)
        for p in needs:
            refused |= ~granted.get(p, nobody)
        if opp.min_score is not None:
            if not isinstance(opp.min_score, int | float):
                raise UserError(f"study visitors: opportunities.{name}.min_score by category "
                                "is not supported")
            refused |= score < float(opp.min_score)
        out[name] = refused
    return out


def start_scores(spec: Any, table: Any) -> np.ndarray:
    """Each citizen's start score in points (``policy.score.start``, a number or an
    expression of fixed attributes; within the score's bounds, to the milli-point)."""
    from panopticon.spec.conditions import compile_policy_conditions

    s = spec.policy.score
    n = table.num_rows
    if isinstance(s.start, str):
        labels = _labels(spec)
        cond = compile_policy_conditions(spec.policy, [], labels,
                                         tuple(spec.society.traits))["score.start"]
        start = np.round(_evaluate(cond, table, labels, {"score": np.zeros(n)}) * 1000) / 1000
    else:
        start = np.full(n, float(s.start))
    low = -np.inf if s.min is None else float(s.min)
    high = np.inf if s.max is None else float(s.max)
    return np.clip(start, low, high)


def standing(result: Any, gates: dict[str, list[str]]) -> dict[str, float]:
    """Per origin (``home``: residents aged 18 or more, at the end of the run; each origin:
    the visitors who came, each counted once, at the end of their last stay or at the run's
    end if still there): ``people_<o>``; mean ``start_score_<o>`` and ``end_score_<o>``;
    ``fell_<o>`` (and the count ``fell_n_<o>``), the share whose tier at the end is below
    their start tier (visitors: during their stay); and per gate group g (opportunities of the
    scenario) ``refused_<g>_<o>`` (and the count ``refused_n_<g>_<o>``), the share whom the
    gates of at least one of g's opportunities would refuse at their end standing."""
    from panopticon.metrics.run import _col, _spec, read, tier_of

    spec = _spec(result, None)
    table = read(result, "citizens", None)
    policy = spec.policy
    floors = [t.min for t in policy.tiers]
    code = {t.name: i for i, t in enumerate(policy.tiers)}
    score = _col(table, "score").astype(np.float64)
    tier = np.asarray([code[t] for t in _col(table, "tier").astype(str)], dtype=np.int64)
    start = start_scores(spec, table)
    start_tier = tier_of(start, floors)
    origin = _col(table, "origin").astype(str)
    age = _col(table, "age").astype(np.float64)
    wanted = [o for g in gates.values() for o in g if o in spec.opportunities]
    refused = gate_refusals(spec, table, score, tier, wanted)
    out: dict[str, float] = {}
    for o in (HOME, *spec.society.visitors.origins.labels()):
        mine = (origin == o) & ((origin != HOME) | (age >= ADULT))
        k = int(mine.sum())
        out[f"people_{o}"] = float(k)
        if not k:
            continue
        out[f"start_score_{o}"] = float(start[mine].mean())
        out[f"end_score_{o}"] = float(score[mine].mean())
        fell = tier[mine] > start_tier[mine]
        out[f"fell_n_{o}"] = float(fell.sum())
        out[f"fell_{o}"] = float(fell.mean())
        for g, opps in gates.items():
            mask = np.zeros(k, dtype=bool)
            for name in opps:
                if name in refused:
                    mask |= refused[name][mine]
            out[f"refused_n_{g}_{o}"] = float(mask.sum())
            out[f"refused_{g}_{o}"] = float(mask.mean())
    return out


def counts(point: dict, count: str, groups: list[str], replicates: int
           ) -> dict[str, tuple[float, float]]:
    """Group -> (people counted in ``count``, people), summed over the replicates (a point's
    means times the replicates): ``count`` is ``fell_n`` or ``refused_n_<gate>``."""
    out = {}
    for o in groups:
        people, hit = point.get(f"people_{o}"), point.get(f"{count}_{o}")
        if people and hit is not None and people["mean"] > 0:
            out[o] = (float(round(hit["mean"] * replicates)),
                      float(round(people["mean"] * replicates)))
    return out


def four_fifths(pooled: dict[str, tuple[float, float]]) -> dict[str, dict]:
    """The four-fifths test on the shares allowed (people the gates would not refuse): each
    group against the best-treated one (:func:`panopticon.metrics.run.compare_rates`,
    ``favourable``; Wilson intervals for the rates, Katz for the impact ratio)."""
    from panopticon.metrics.run import compare_rates

    return compare_rates({o: (n - x, n) for o, (x, n) in pooled.items()},
                         {o: n for o, (_, n) in pooled.items()}, "favourable")


def share(pair: tuple[float, float] | None) -> dict:
    """A pooled share (events, people) with its Wilson interval, as ``with_ci`` reads it."""
    from panopticon.metrics.intervals import rate

    if not pair or not pair[1]:
        return {}
    r, low, high = rate(*pair)
    return {"mean": r, "ci_low": low, "ci_high": high}


def impact_text(row: dict) -> str:
    """The four-fifths impact ratio, its interval and status, in words."""
    if not row:
        return "n/a"
    if row.get("impact") is None or row["status"] == "reference":
        return row.get("status", "n/a")
    low, high = row.get("impact_low"), row.get("impact_high")
    ci = f" (95% CI {sig(low, 2)}–{sig(high, 2)})" if low is not None and high is not None \
        else ""
    return f"{sig(row['impact'], 2)}{ci}, {row['status']}"


def _clear(a: dict, b: dict) -> bool:
    return bool(a) and bool(b) and (a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"])


# ------------------------------------------------------------------ the study
class Visitors(Study):
    name = "visitors"
    title = "Visitors: rated as residents, by origin or by income"

    def __init__(self) -> None:
        super().__init__()
        self.gates: dict[str, list[str]] = dict(self.config["gates"])
        self.origins: list[str] = list(self.config["fixed"]["society.visitors"]["origins"]
                                       ["values"])
        last = self.origins[-1]
        self.charts = (f"refused_travel_{last}", f"start_score_{last}")

    def base_data(self, scale: Scale, citizens: int | None = None) -> dict:
        data = super().base_data(scale, citizens)
        s = self.config["scales"][scale.name]
        _assign(data, "society.visitors.pool", int(s["pool"]))
        _assign(data, "society.visitors.arrivals_per_day", s["arrivals_per_day"])
        return data

    def bounds(self, name: str) -> tuple[float | None, float | None]:
        if name.startswith(("people_", "refused_n_", "fell_n_")):
            return 0.0, None
        if name.startswith(("refused_", "fell_")):
            return 0.0, 1.0
        if name.startswith(("start_score_", "end_score_")):
            return None, None
        return super().bounds(name)

    def extras(self, result: Any) -> dict[str, float]:
        return standing(result, self.gates)

    def pooled(self, data: dict) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
        """rating -> ``fell`` or gate -> group -> (events, people) over the replicates."""
        groups = [HOME, *self.origins]
        out = {}
        for rating in data["settings"][AXIS]:
            m = point_of(data, **{AXIS: rating})
            out[rating] = {"fell": counts(m, "fell_n", groups, data["replicates"]),
                           **{g: counts(m, f"refused_n_{g}", groups, data["replicates"])
                              for g in self.gates}}
        return out

    # ------------------------------------------------------------------ the page
    def page(self, data: dict) -> str:
        nums = data["numbers"]
        ratings = data["settings"][AXIS]
        groups = [HOME, *self.origins]
        pool = self.pooled(data)

        def say(name: str, text: str) -> str:
            nums[name] = text
            return text

        def who(o: str) -> str:
            return "residents" if o == HOME else f"`{o}`"

        def refused(rating: str, gate: str, o: str) -> str:
            return say(f"{rating}/{gate}/{o}", pct_ci(share(pool[rating][gate].get(o))))

        def start(rating: str, o: str) -> str:
            m = point_of(data, **{AXIS: rating})
            return say(f"{rating}/start_score_{o}", with_ci(m.get(f"start_score_{o}"), digits=4))

        answer = []
        for rating in ratings:
            test = four_fifths(pool[rating]["travel"])
            starts = ", ".join(f"{who(o)} {start(rating, o)}" for o in self.origins)
            travel = "; ".join(f"{who(o)} {refused(rating, 'travel', o)}" for o in groups)
            credit = "; ".join(f"{who(o)} {refused(rating, 'credit', o)}" for o in groups)
            line = (f"- **{RATING_WORDS.get(rating, rating).capitalize()}**: visitors started "
                    f"at a mean score of {starts} (residents: {start(rating, HOME)}). The "
                    f"gates of their standing at the end of their stay would have refused "
                    f"{GATE_WORDS['travel']} to {travel}; {GATE_WORDS['credit']} to {credit}.")
            worst = max((o for o in self.origins if test.get(o, {}).get("rate") is not None),
                        key=lambda o: -test[o]["rate"], default=None)
            if worst is not None:
                ref = test[worst].get("reference")
                line += (f" Four-fifths test for travel, the group most often refused "
                         f"(`{worst}`) against the best-treated ({who(ref) if ref else 'none'}"
                         f"): impact ratio of the shares allowed "
                         f"{say(f'{rating}/impact/{worst}', impact_text(test[worst]))}.")
            answer.append(line)
        if "by_origin" in ratings and "by_income" in ratings:
            moves = []
            for gate in ("travel", "credit"):
                for o in self.origins:
                    a = share(pool["by_origin"][gate].get(o))
                    b = share(pool["by_income"][gate].get(o))
                    if _clear(a, b):
                        moves.append(f"{GATE_WORDS[gate]} for {who(o)} from "
                                     f"{refused('by_origin', gate, o)} to "
                                     f"{refused('by_income', gate, o)}")
            if moves:
                answer.append(
                    "- **By income rather than by origin** (the origin's score is the one its "
                    "median income gets, so the two differ in who *within* an origin is rated "
                    "low): the shares refused moved clearly (Wilson intervals apart) for "
                    + "; ".join(moves) + ".")
            else:
                answer.append("- **By income rather than by origin**: no share refused moved "
                              "clearly (the Wilson intervals overlap) at this scale.")
        rental = [(share(pool[r]["rental"].get(o)), r, o) for r in ratings for o in groups
                  if pool[r]["rental"].get(o)]
        if rental:
            low = min(rental, key=lambda t: t[0]["mean"])
            high = max(rental, key=lambda t: t[0]["mean"])
            answer.append(
                f"- **{GATE_WORDS['rental'].capitalize()}** needs tier AA or better, above "
                f"the start score of 1,000: its gate would have refused between "
                f"{say('rental/lowest', pct_ci(low[0]))} ({who(low[2])}, `{low[1]}`) and "
                f"{say('rental/highest', pct_ci(high[0]))} ({who(high[2])}, `{high[1]}`) of "
                "every group under every rating.")
        if "as_residents" in ratings:
            fell = pool["as_residents"]["fell"]
            text = ", ".join(f"{who(o)} " + say(f"as_residents/fell/{o}", pct_ci(share(fell.get(o))))
                             for o in groups)
            line = (f"- **What conduct adds**: under `as_residents` the share whose tier at "
                    f"the end was below their start tier was {text} (visitors: within a stay "
                    f"of {self.config['fixed']['society.visitors']['stay_days']} days; "
                    f"residents: within the {data['days']} days of the run).")
            home = share(fell.get(HOME))
            below = [o for o in self.origins if fell.get(o)
                     and share(fell[o])["ci_high"] < home.get("ci_low", 0)]
            if home and len(below) == len(self.origins):
                line += (" Every origin's share is clearly below the residents': over a short "
                         "stay the score barely moves, so what a visitor would be refused is "
                         "set by how they are rated on arrival.")
            answer.append(line)
        captions = {
            f"refused_travel_{self.origins[-1]}":
                f"Share of `{self.origins[-1]}` visitors whose standing at the end of their "
                "stay would refuse travel or a star hotel, by rating (bands: 95% CI across "
                "replicates)",
            f"start_score_{self.origins[-1]}":
                f"Mean start score of `{self.origins[-1]}` visitors, by rating"}
        return layout(data, self._design(data), answer, captions,
                      self._table(data, pool, say), self._sources())

    def _design(self, data: dict) -> str:
        fixed = self.config["fixed"]
        s = self.config["scales"][data["scale"]]
        visitors = fixed["society.visitors"]
        origins, income = visitors["origins"], visitors["income"]
        mix = ", ".join(f"`{o}` {w:.0%} (median income {income[o]['median']:,} yuan a month)"
                        for o, w in zip(origins["values"], origins["weights"], strict=True))
        gates = "; ".join(f"*{g}*: {', '.join(f'`{o}`' for o in opps)}"
                          for g, opps in self.gates.items())
        variants = self.config["variants"][AXIS]
        starts = "; ".join(
            f"`{r}`: " + (f"`{(v or {})['policy.score.start']}`" if (v or {}).get(
                "policy.score.start") else "the preset's start score for everyone")
            for r, v in variants.items())
        return (
            f"The default scenario `{self.config['base']}` (Rongcheng-style tiers; tier D "
            "carries the court list's travel, hotel, loan and exit bans, tier C bars loans and "
            "civil-service jobs, deposit-free rental needs tier AA or AAA) with "
            f"{data['citizens']:,} residents for {data['days']} days, and visitors: "
            f"{s['arrivals_per_day']} arrive a day and stay {visitors['stay_days']} days, "
            f"drawn from a pool of {s['pool']:,} people (a person may come back; each stay "
            f"starts afresh). Their origins: {mix}; the labels are synthetic, no country is "
            f"modelled. **What varies:** the start score of visitors ({starts}); residents "
            "start at 1000 in every setting. **What is held fixed:** everything else, and the "
            "seeds (replicate r of every rating uses the same seed), "
            f"{data['replicates']} replicates per rating. **What is measured:** a visitor "
            "never tries an opportunity in a run (docs/scenarios.md#societyvisitors), so each "
            "person's standing is put to the policy's gates: would the sanctions and perks of "
            "their score and tier refuse each opportunity? Groups of opportunities: "
            f"{gates}; a group is refused when any of its opportunities would be. **Scope:** "
            "each visitor who came is counted once, at the end of their last stay (or at the "
            "run's end if still there); residents aged 18 or more at the end of the run. "
            "Shares pool the replicates' people and carry Wilson 95% intervals; the "
            "four-fifths test compares each group's share allowed with the best-treated "
            "group's (impact ratio with a Katz interval; docs/metrics.md). Mean scores carry "
            "95% Student's t intervals across replicates. Nothing is read from the daily "
            "`mean_score`, which counts absent visitor slots.")

    def _table(self, data: dict, pool: dict, say) -> str:
        groups = [HOME, *self.origins]
        head = "| rating | group | people | start score | end score | " + " | ".join(
            f"refused: {g}" for g in self.gates) + " | four-fifths (travel) |"
        rows = [head, "|---" * (6 + len(self.gates)) + "|"]
        for p in data["points"]:
            rating = p["point"][AXIS]
            m = p["metrics"]
            test = four_fifths(pool[rating]["travel"])
            for o in groups:
                people = m.get(f"people_{o}")
                n = round(people["mean"] * data["replicates"]) if people else None
                rows.append("| " + " | ".join([
                    f"`{rating}`", "residents" if o == HOME else f"`{o}`",
                    say(f"{rating}/people/{o}", f"{n:,}" if n is not None else "n/a"),
                    say(f"{rating}/start_score_{o}",
                        with_ci(m.get(f"start_score_{o}"), digits=4)),
                    say(f"{rating}/end_score_{o}", with_ci(m.get(f"end_score_{o}"), digits=4)),
                    *(say(f"{rating}/{g}/{o}", pct_ci(share(pool[rating][g].get(o))))
                      for g in self.gates),
                    say(f"{rating}/impact/{o}", impact_text(test.get(o, {})))]) + " |")
        return "\n".join(["Every setting and group (people: summed over the replicates; "
                          "shares refused: pooled, Wilson 95% CI):", "", *rows])

    @staticmethod
    def _sources() -> str:
        return "\n".join([
            "- Documented: the Rongcheng start score and bands the tiers follow "
            "(docs/sources.md#rongcheng-start-and-bands); the court list's bans on flights, "
            "high-speed trains, star hotels and loans (docs/sources.md#court-blacklist-sanctions)"
            "; foreign debtors can be barred from leaving the country "
            "(docs/sources.md#court-blacklist-foreigners); income-like \"fulfilment capacity\" "
            "is one of Sesame Credit's dimensions (docs/sources.md#sesame-dimensions). Every "
            "number of the base scenario is tagged in "
            "`src/panopticon/scenarios/seed_article.yaml`.",
            "- Assumed: that visitors are scored at all, and every way of rating them here "
            "(no documented system is known to rate tourists by origin or income: "
            "docs/sources.md#no-national-score); the origins, their shares and incomes, the "
            "arrivals and the stay (marked [A] in `src/panopticon/studies/visitors.yaml`).",
            "- Not modelled: visitors trying opportunities (the engine never lets them: the "
            "shares refused are what the gates would do, not counted attempts), visitors' ties "
            "(they have none, so association never moves them), and anything a visitor brings "
            "from an earlier stay."])
