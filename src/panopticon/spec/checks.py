"""Checks pydantic cannot do, on validated models: every name refers to something that
exists (events, tiers, sanctions, categories, sources, columns; with "did you mean"), every
condition compiles, and what the run would refuse (rates, attempts and phantoms beyond the
supported limits, distributions whose draws overflow) is found before it builds anything,
with the run's own samplers and random streams. Each check returns ``(key path, message)``
pairs; the loader places them in the file. Imports nothing from the runtime (the random
streams of :mod:`panopticon.rng` are a leaf: they import only their kernels).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from panopticon.catalogue import (
    PACKAGED,
    Catalogue,
    catalogue_of,
    check_catalogue,
)
from panopticon.policy.conditions import ConditionError, compile_condition
from panopticon.rng import Stage, stream_key, uniforms
from panopticon.spec.conditions import PolicyError, compile_policy_conditions, condition_columns
from panopticon.spec.policy import MAX_POINTS, MILLI, PolicySpec
from panopticon.spec.sampling import draw
from panopticon.spec.scenario import (
    BUILTIN_NUMBERS,
    DERIVED_OCCUPATIONS,
    MAX_PHANTOMS,
    MAX_RATE,
    MAX_TRIES,
    ORIGIN_HOME,
    BehaviourSpec,
    GovernanceSpec,
    OpportunitySpec,
    ReallocationSpec,
    RepaymentTable,
    SocietySpec,
)
from panopticon.spec.types import (
    MAX_NUMBER,
    ByCategory,
    NumericTable,
)

if TYPE_CHECKING:  # annotations only: the loader imports the checks
    from panopticon.spec.loader import ScenarioSpec, _Sections


def _close(name: str, options) -> str:
    """`` (did you mean a, b?)`` for the known names closest to ``name`` (an event, tier,
    sanction, source, ...): close spellings, else names that share its first word
    (``red_lite`` -> ``red_light``); ``""`` when there are none."""
    options = [str(o) for o in options]
    close = difflib.get_close_matches(name, options, 3) or [
        o for o in options if o.split("_")[0] == name.split("_")[0]][:3]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _unknown_category(attr: str, cat: str, categories: dict) -> str:
    """The message for a category the society does not have (``region: urbn``)."""
    return f"unknown {attr} {cat!r}{_close(cat, categories[attr])}; this society has " \
           f"{categories[attr]}"


def _check_reallocation(sname: str, spec: ReallocationSpec | None, sources: list[str],
                        categories: dict[str, list[str]]) -> list[tuple[tuple, str]]:
    """A reallocating source's ``from`` names sources of the scenario, its ``prior`` regions
    exist, and ``units`` come without a ``floor`` (units are whole: use a prior instead)."""
    if spec is None:
        return []
    out: list[tuple[tuple, str]] = []
    path = ("sensors", sname, "reallocate")
    for j, name in enumerate(spec.from_ or ()):
        if name not in sources:
            out.append(((*path, "from", j), f"{name!r} is not a source of this scenario"
                        f"{_close(name, sources)}; its sources are {sources}"))
        elif name in spec.from_[:j]:
            out.append(((*path, "from", j), f"{name!r} is listed twice"))
    if spec.from_ == []:
        out.append(((*path, "from"), "needs at least one source (or leave it out: the "
                    "source's own records)"))
    if isinstance(spec.prior, dict) and categories:
        for region in spec.prior:
            if region not in categories["region"]:
                out.append(((*path, "prior", region),
                            _unknown_category("region", region, categories)))
    if spec.units is not None and spec.floor > 0:
        out.append(((*path, "floor"), "a floor needs fractional coverage; with units every "
                    "region's coverage is whole units (keep regions in the draw with a prior)"))
    return out


def _check_references(spec: ScenarioSpec | _Sections) -> list[tuple[tuple, str]]:
    """Cross-field checks pydantic cannot do: every name refers to something that exists.

    Checks that need a section that is itself invalid (None) are skipped.
    """
    out: list[tuple[tuple, str]] = []
    # an invalid catalogue section (None) leaves the packaged catalogue: its own names may
    # then be reported unknown besides the section's own problems
    section = spec.catalogue
    library = PACKAGED if section is None else catalogue_of(section)
    out += check_catalogue(section) if section is not None else []
    known = set(library.events)
    sources = library.sources
    soc, beh_spec, sensors, policy = spec.society, spec.behaviour, spec.sensors, spec.policy

    def event(path: tuple, name: str) -> None:
        if name not in known:
            close = _close(name, known)
            out.append((path, f"unknown event type {name!r}{close}; see `panopticon events`"))

    categories = {} if soc is None else {
        "sex": ["female", "male"], "region": soc.region.labels(), "group": soc.group.labels(),
        "residency": soc.residency.labels(),
        "occupation": [*soc.occupation.labels(), "minor", "retired"]}
    if soc is not None and soc.visitors is not None:
        categories["origin"] = [ORIGIN_HOME, *soc.visitors.origins.labels()]

    def cats(path: tuple, mapping: dict[str, dict[str, float]]) -> None:
        for attr, table in mapping.items() if categories else ():
            for cat in table:
                if cat not in categories[attr]:
                    out.append(((*path, attr, cat), _unknown_category(attr, cat, categories)))

    for attr in ("income",):  # adult_age is one distribution (SocietySpec._one_age)
        dist = getattr(soc, attr) if soc is not None else None
        if not isinstance(dist, ByCategory):
            continue
        missing = set(categories[dist.by]) - set(dist.values)
        if missing:
            out.append((("society", attr, "values"),
                        f"needs a distribution for every {dist.by}; missing {sorted(missing)}"))
        for cat in sorted(set(dist.values) - set(categories[dist.by])):
            out.append((("society", attr, "values", cat),
                        _unknown_category(dist.by, cat, categories)))
    if beh_spec is not None:
        for name, beh in beh_spec.events.items():
            event(("behaviour", "events", name), name)
            cats(("behaviour", "events", name, "multipliers"), beh.multipliers)
        for i, det in enumerate(beh_spec.deterrence):
            for j, t in enumerate(det.tiers if policy is not None else ()):
                if t not in policy.tier_names:
                    out.append((("behaviour", "deterrence", i, "tiers", j),
                                f"unknown tier {t!r}{_close(t, policy.tier_names)}; the "
                                f"policy's tiers are {policy.tier_names}"))
            for j, e in enumerate(det.events):
                event(("behaviour", "deterrence", i, "events", j), e)
        for i, det in enumerate(beh_spec.perceived_deterrence):
            for j, e in enumerate(det.events):
                event(("behaviour", "perceived_deterrence", i, "events", j), e)
    for sname, src in (sensors or {}).items():
        if sname not in sources:
            out.append((("sensors", sname), f"unknown data source {sname!r}"
                        f"{_close(sname, sources)}; known sources are {sorted(sources)}"))
        seen: set[str] = set()  # several sources may observe one event type, once each
        for j, e in enumerate(src.events):
            event(("sensors", sname, "events", j), e)
            if e in seen:
                out.append((("sensors", sname, "events", j),
                            f"{e!r} is listed twice; a source observes each event once"))
            seen.add(e)
        out += _check_reallocation(sname, src.reallocate, list(sensors), categories)
        for j, e in enumerate(src.phantom_events or ()):
            event(("sensors", sname, "phantom_events", j), e)
        if src.phantom_rate > 0 and not src.invented_events:
            out.append((("sensors", sname, "phantom_rate"),
                        "a phantom rate needs events to invent (events or phantom_events)"))
        if isinstance(src.coverage, dict) and categories:
            for region in src.coverage:
                if region not in categories["region"]:
                    out.append((("sensors", sname, "coverage", region),
                                _unknown_category("region", region, categories)))
            missing = set(categories["region"]) - set(src.coverage)
            if missing:
                out.append((("sensors", sname, "coverage"),
                            f"coverage needs every region; missing {sorted(missing)}"))
        cats(("sensors", sname, "false_match_multipliers"), src.false_match_multipliers)
    traits = tuple(soc.traits) if soc is not None else ()
    if soc is not None:
        for name, dist in soc.traits.items():
            if isinstance(dist, ByCategory):
                missing = set(categories[dist.by]) - set(dist.values)
                if missing:
                    out.append((("society", "traits", name, "values"),
                                f"needs a distribution for every {dist.by}; missing "
                                f"{sorted(missing)}"))
                for cat in sorted(set(dist.values) - set(categories[dist.by])):
                    out.append((("society", "traits", name, "values", cat),
                                _unknown_category(dist.by, cat, categories)))
    if beh_spec is not None:
        for i, resp in enumerate(beh_spec.responses):
            for j, e in enumerate(resp.events):
                event(("behaviour", "responses", i, "events", j), e)
        modes = {e: "factor" for det in [*beh_spec.deterrence, *beh_spec.perceived_deterrence]
                 for e in det.events}
        for i, resp in enumerate(beh_spec.responses):
            mode = "rate" if resp.rate is not None else "factor"
            for j, e in enumerate(resp.events):
                if modes.setdefault(e, mode) != mode:
                    out.append((("behaviour", "responses", i, "events", j),
                                f"{e!r} already has a response (or deterrence) of the other "
                                "kind; an event's responses either set a rate or multiply it "
                                "by a factor"))
    for name, opp in (spec.opportunities or {}).items():
        out += _check_opportunity(name, opp, categories, traits, library)
    if policy is not None:
        labels = {k: tuple(v) for k, v in categories.items()} if categories else None
        out += [(("policy", *path), msg)
                for path, msg in check_policy(policy, labels, traits, soc, library)]
        if labels is not None and beh_spec is not None:
            out += _check_conditions(policy, labels, traits,
                                     scenario_conditions(beh_spec, spec.opportunities or {},
                                                         spec.governance, library),
                                     library)
    for i, insider in enumerate(spec.governance.insiders if spec.governance else ()):
        if insider.region is not None and categories and insider.region not in categories[
                "region"]:
            out.append((("governance", "insiders", i, "region"),
                        _unknown_category("region", insider.region, categories)))
    review = spec.governance.review if spec.governance else None
    if review is not None and policy is not None:
        names = [x.name for x in policy.lists]
        for j, name in enumerate(review.lists):
            if name not in names:
                out.append((("governance", "review", "lists", j),
                            f"unknown list {name!r}{_close(name, names)}; the policy's "
                            f"lists are {names}"))
        for j, t in enumerate(review.tiers):
            if t not in policy.tier_names:
                out.append((("governance", "review", "tiers", j),
                            f"unknown tier {t!r}{_close(t, policy.tier_names)}; the "
                            f"policy's tiers are {policy.tier_names}"))
            elif t == policy.tier_names[0]:
                out.append((("governance", "review", "tiers", j),
                            f"{t!r} is the top tier: nobody falls into it"))
    return out


def _check_opportunity(name: str, opp: OpportunitySpec, categories: dict, traits: tuple,
                       library: Catalogue = PACKAGED) -> list[tuple[tuple, str]]:
    """An opportunity's names: a catalogue entry (or a full definition), known sanctions,
    perks, categories, columns and events."""
    out: list[tuple[tuple, str]] = []
    path = ("opportunities", name)
    catalogued = library.opportunities
    if name not in catalogued and (opp.rate is None or (opp.blocked_by is None
                                                        and opp.needs is None)):
        out.append((path, f"unknown opportunity {name!r}{_close(name, catalogued)}"
                          "; name one from "
                          "`panopticon opportunities`, or give rate and blocked_by or needs"))
    for key, table, what in (("blocked_by", library.sanctions, "sanction"),
                             ("needs", library.perks, "perk")):
        for j, x in enumerate(getattr(opp, key) or ()):
            if x not in table:
                out.append(((*path, key, j), f"unknown {what} {x!r}{_close(x, table)}"))
    if categories:
        for attr, table in opp.multipliers.items():
            for cat in table:
                if cat not in categories[attr]:
                    out.append(((*path, "multipliers", attr, cat),
                                _unknown_category(attr, cat, categories)))
        for key, what in (("min_score", "a threshold"), ("accept_at_min", "a probability")):
            value = getattr(opp, key)
            if isinstance(value, dict):
                (attr, table), = value.items()
                missing = set(categories[attr]) - set(table)
                if missing:
                    out.append(((*path, key, attr),
                                f"needs {what} for every {attr}; missing {sorted(missing)}"))
                for cat in sorted(set(table) - set(categories[attr])):
                    out.append(((*path, key, attr, cat),
                                _unknown_category(attr, cat, categories)))
        repay = opp.loan.repay if opp.loan is not None else None
        if isinstance(repay, RepaymentTable) and isinstance(repay.probability, dict):
            attr = repay.by
            missing = set(categories[attr]) - set(repay.probability)
            if missing:
                out.append(((*path, "loan", "repay", "probability"),
                            f"needs probabilities for every {attr}; missing {sorted(missing)}"))
            for cat in sorted(set(repay.probability) - set(categories[attr])):
                out.append(((*path, "loan", "repay", "probability", cat),
                            _unknown_category(attr, cat, categories)))
    out += _check_lender(path, opp)
    if opp.loan is not None:
        for key in ("repaid_event", "default_event"):
            e = getattr(opp.loan, key)
            if e not in library.events:
                out.append(((*path, "loan", key), f"unknown event type {e!r}"
                                                  f"{_close(e, library.events)}; see "
                                                  "`panopticon events`"))
        repay = opp.loan.repay
        columns = [*BUILTIN_NUMBERS, *traits]
        for key in ("column", "by_column"):
            col = getattr(repay, key, None) if isinstance(repay, RepaymentTable) else None
            if col is not None and col not in columns:
                out.append(((*path, "loan", "repay", key),
                            f"unknown column {col!r}{_close(col, columns)}; "
                            f"numeric columns are {columns}"))
    return out


def _check_lender(path: tuple, opp: OpportunitySpec) -> list[tuple[tuple, str]]:
    """A randomised threshold needs a threshold; a lender needs a loan, and a solved one a
    repayment table on ``score`` and no ``min_score`` of its own."""
    out: list[tuple[tuple, str]] = []
    if opp.accept_at_min != 1.0 and opp.min_score is None and (
            opp.lender is None or opp.lender.criterion == "fixed"):
        out.append(((*path, "accept_at_min"), "a randomised threshold needs min_score (the "
                                              "threshold whose cell it randomises)"))
    lender = opp.lender
    if lender is None:
        return out
    if opp.loan is None:
        out.append(((*path, "lender"), "a lender needs loan: {repay: ...} (the loans it "
                                       "grants and their repayment)"))
        return out
    if lender.criterion == "fixed":
        return out
    repay = opp.loan.repay
    if not isinstance(repay, RepaymentTable) or repay.column != "score":
        out.append(((*path, "lender", "criterion"),
                    f"criterion {lender.criterion} solves thresholds over the bins of the "
                    "repayment table: needs loan.repay: {column: score, at: [...], "
                    "probability: [...]}"))
    elif repay.by_column is not None:
        out.append(((*path, "lender", "criterion"),
                    f"criterion {lender.criterion} solves thresholds over the score bins of one "
                    "row per category: the repayment table cannot have by_column (use by: "
                    "<attribute> or one list)"))
    elif repay.by is not None and repay.by != lender.by:
        out.append(((*path, "lender", "by"),
                    f"the repayment table is by {repay.by}; the lender's thresholds must be "
                    f"by the same attribute (by: {repay.by})"))
    for key in ("min_score", "accept_at_min"):
        if key in opp.model_fields_set:
            out.append(((*path, key), f"set by lender.criterion {lender.criterion}; remove "
                                      f"{key} or use criterion: fixed"))
    if lender.gain == 0 and lender.loss == 0:
        out.append(((*path, "lender"), "gain and loss are both 0: every threshold would pay "
                                       "the same; give the lender a gain or a loss"))
    return out


# ---------------------------------------------------------------- limits
_U_EXTREMES = np.array([0.0, 1.0 - 2.0 ** -53])
"""The smallest and largest uniforms the generator gives: every draw lies between the draws at
these two (the samplers are inverse CDFs, non-decreasing in the uniform)."""
_CHUNK = 1 << 20


def check_limits(spec: ScenarioSpec) -> list[tuple[tuple, str]]:
    """What the run would refuse, or draw wrong, found before it builds anything.

    The run refuses a citizen with more than 20 true events a day, 20 attempts at an
    opportunity or 20 phantom records (behaviour, sanctions and sensors check the population
    they are given); a distribution whose draws overflow would give infinite incomes. These
    checks bound the same quantities with the same samplers and random streams, without a
    population, so ``validate`` refuses exactly what ``run`` would (and more only where a
    bound is not reached: a multiplier's category that no drawn citizen has, say). They take
    a few hundredths of a second per distributed rate and million citizens.
    """
    out: list[tuple[tuple, str]] = []
    soc = spec.society
    for path, dist in [(("society", "adult_age"), soc.adult_age),
                       *_per_category(("society", "income"), soc.income),
                       *(x for name, d in soc.traits.items()
                         for x in _per_category(("society", "traits", name), d))]:
        out += [(path, msg) for msg in _drawable(dist)]
    for name, beh in spec.behaviour.events.items():
        if not isinstance(beh.rate, int | float | None):
            out += [((*("behaviour", "events", name), "rate"), msg) for msg in _drawable(beh.rate)]
    for name, opp in spec.opportunities.items():
        if not isinstance(opp.rate, int | float | None):
            out += [(("opportunities", name, "rate"), msg) for msg in _drawable(opp.rate)]
    if out:
        return out
    return _rate_limits(spec) + _phantom_limits(spec)


def _per_category(path: tuple, dist) -> list[tuple[tuple, Any]]:
    if isinstance(dist, ByCategory):
        return [((*path, "values", cat), d) for cat, d in dist.values.items()]
    return [(path, dist)]


def _drawable(dist) -> list[str]:
    """Problems drawing ``dist`` with the population's own sampler: it fails (bounds too far
    from the median for a float), or its draws are not finite or beyond ±MAX_NUMBER."""
    if isinstance(dist, NumericTable):
        return []  # its values are the draws, each within ±MAX_NUMBER
    try:
        with np.errstate(all="ignore"):
            lo, hi = draw(dist, _U_EXTREMES)
    except (ValueError, OverflowError, ZeroDivisionError):
        return ["cannot be drawn: its min or max is too far from the median for a float"]
    if not (np.isfinite(lo) and np.isfinite(hi)) or max(-lo, hi) > MAX_NUMBER:
        return [f"can draw values from {lo:.3g} to {hi:.3g}; at most ±{MAX_NUMBER:g} is "
                f"supported: give it a min and max{' or a smaller sigma' * (dist.kind == 'lognormal')}"]
    return []


def _categories(soc: SocietySpec) -> dict[str, list[str]]:
    """Every category of each categorical attribute (occupation with the derived ones)."""
    return {"sex": ["female", "male"], "region": soc.region.labels(), "group": soc.group.labels(),
            "residency": soc.residency.labels(),
            "occupation": [*soc.occupation.labels(), *DERIVED_OCCUPATIONS]}


def _largest_factor(spec, categories: dict[str, list[str]], skip: str = "") -> float:
    """The largest product of ``multipliers`` (an unnamed category keeps 1) and ``bands``
    factors any citizen could get (every band and category taken as reachable)."""
    factor = 1.0
    for attr, table in spec.multipliers.items():
        if attr != skip:
            factor *= max([*table.values(), *([1.0] if set(categories[attr]) - set(table)
                                               else [])])
    for bands in getattr(spec, "bands", {}).values():
        factor *= max(bands.factors)
    return factor


def _max_uniform(key: np.uint64, n: int) -> float:
    """The largest of the ``n`` uniforms of a stream (what ``uniforms(key, n)`` gives), in
    chunks so that memory stays small for any number of citizens."""
    return max(float(uniforms(key, min(_CHUNK, n - start), offset=start).max())
               for start in range(0, n, _CHUNK))


def _largest_draw(rate, default: float, limit: float, key: np.uint64, n: int) -> float:
    """The largest base rate among ``n`` citizens: the number; or the distribution's largest
    possible draw if that is within ``limit`` (a max of 1, say), else its draw at the largest
    uniform of the citizens' stream (draws are non-decreasing in the uniform); a table's
    largest value with a weight."""
    if rate is None:
        return float(default)
    if isinstance(rate, int | float):
        return float(rate)
    if isinstance(rate, NumericTable):
        return max(v for v, w in zip(rate.values, rate.weights, strict=True) if w > 0)
    largest = float(draw(rate, _U_EXTREMES[1:])[0])
    if largest <= limit:
        return largest  # no need to look at the stream
    return float(draw(rate, np.array([_max_uniform(key, n)]))[0])


def _largest_total(parts: list[tuple[float, Any, np.uint64]], n: int) -> float:
    """The largest sum over parts of factor x each citizen's own draw, citizen by citizen
    (when the sum of the parts' maxima is too coarse a bound)."""
    best = 0.0
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        total = np.zeros(m)
        for factor, rate, key in parts:
            total += factor * (rate if isinstance(rate, float) else
                               draw(rate, uniforms(key, m, offset=start)))
        best = max(best, float(total.max()))
    return best


def _rate_limits(spec: ScenarioSpec) -> list[tuple[tuple, str]]:
    """Behaviour rates and opportunity attempts per citizen-day within what the run supports,
    drawn from the run's own streams (run.seed, run.citizens)."""
    out: list[tuple[tuple, str]] = []
    n, seed = spec.run.citizens, spec.run.seed
    categories = _categories(spec.society)
    drawn = f"with run.citizens={n} and run.seed={seed}"
    events = spec.active_events()
    library = spec.library
    parts, total = [], 0.0
    for name, beh in spec.behaviour.events.items():
        key = stream_key(seed, Stage.RATES, 0, events.index(name))
        factor = _largest_factor(beh, categories)
        base = _largest_draw(beh.rate, library.events[name].rate_per_day,
                             MAX_RATE / factor if factor else math.inf, key, n)
        if base * factor > MAX_RATE:
            out.append((("behaviour", "events", name, *(("rate",) if beh.rate is not None
                                                        else ())),
                        f"some citizens' rate can reach {base * factor:.3g} events a day "
                        f"({_how(beh.rate, base, factor, drawn)}); at most {MAX_RATE:g} is "
                        "supported: lower it, or give its distribution a max"))
        parts.append((factor, float(base) if isinstance(beh.rate, int | float | None)
                      else beh.rate, key))
        total += base * factor
    # the sum of each event's largest rate is a coarse bound: only when it is too high, add
    # up each citizen's own draws (still with the largest factors)
    largest = _largest_total(parts, n) if not out and total > MAX_RATE else 0.0
    if largest > MAX_RATE:
        out.append((("behaviour", "events"),
                    f"some citizens' rates can add up to {largest:.3g} events a day ({drawn}, "
                    f"with the largest multipliers and bands); at most {MAX_RATE:g} is "
                    "supported"))
    for k, (name, opp) in enumerate(spec.opportunities.items()):
        default = library.opportunities[name].rate_per_day \
            if name in library.opportunities else 0.0
        key = stream_key(seed, Stage.OPPORTUNITY, 0, 100 + k)
        factor = _largest_factor(opp, categories)
        base = _largest_draw(opp.rate, default, MAX_TRIES / factor if factor else math.inf,
                             key, n)
        if base * factor > MAX_TRIES:
            out.append((("opportunities", name, *(("rate",) if opp.rate is not None else ())),
                        f"some citizens would try it {base * factor:.3g} times a day "
                        f"({_how(opp.rate, base, factor, drawn)}); at most {MAX_TRIES:g} is "
                        "supported"))
    return out


def _how(rate, base: float, factor: float, drawn: str) -> str:
    """How a rate bound came about, for a message."""
    how = f"a rate of {base:.3g}" if isinstance(rate, int | float | None) else \
        f"the largest draw {drawn} is {base:.3g}"
    return how + (f", times multipliers and bands up to {factor:.3g}" if factor != 1 else "")


def _phantom_limits(spec: ScenarioSpec) -> list[tuple[tuple, str]]:
    """Expected phantom records per citizen-day within what the sensors support, in every
    region: phantom_rate x false_match_multipliers x coverage summed over sources. A source
    that reallocates its coverage may bring any region's to 1, so it counts with 1."""
    categories = _categories(spec.society)
    for region in categories["region"]:
        lam: dict[str, float] = {}
        for name, src in spec.sensors.items():
            cov = 1.0 if src.reallocate is not None else (
                src.coverage.get(region, 0.0) if isinstance(src.coverage, dict) else src.coverage)
            by_region = src.false_match_multipliers.get("region", {}).get(region, 1.0)
            others = SimpleNamespace(multipliers=src.false_match_multipliers)
            lam[name] = src.phantom_rate * cov * by_region * _largest_factor(
                others, categories, skip="region")
        if sum(lam.values()) > MAX_PHANTOMS:
            name = max(lam, key=lam.__getitem__)
            return [(("sensors", name, "phantom_rate"),
                     f"phantom_rate times false_match_multipliers and coverage can give "
                     f"citizens of region {region!r} {sum(lam.values()):.3g} phantom records a "
                     f"day ({lam[name]:.3g} from this source); at most {MAX_PHANTOMS:g} is "
                     "supported")]
    return []


def scenario_conditions(behaviour: BehaviourSpec, opportunities: dict[str, OpportunitySpec],
                        governance: GovernanceSpec | None = None,
                        library: Catalogue = PACKAGED) -> dict[str, tuple[str, str, bool]]:
    """The scenario's own conditions by key path: (text, "bool"/"number", fixed attributes
    only). They are compiled with the policy's (same columns and functions); an
    opportunity's ``who`` defaults to its entry in ``library``."""
    found: dict[str, tuple[str, str, bool]] = {}
    for i, insider in enumerate(governance.insiders if governance else ()):
        if insider.targets is not None:
            found[f"governance.insiders[{i}].targets"] = (insider.targets, "bool", False)
    for i, resp in enumerate(behaviour.responses):
        found[f"behaviour.responses[{i}].when"] = (resp.when, "bool", False)
    for name, opp in opportunities.items():
        who = opp.who if opp.who is not None else (
            library.opportunities[name].who if name in library.opportunities else None)
        if who is not None:
            found[f"opportunities.{name}.who"] = (who, "bool", True)
        if opp.loan is not None and isinstance(opp.loan.repay, str):
            found[f"opportunities.{name}.loan.repay"] = (opp.loan.repay, "number", False)
    return found


def _check_conditions(policy: PolicySpec, labels: dict, traits: tuple,
                      conditions: dict[str, tuple[str, str, bool]],
                      library: Catalogue = PACKAGED) -> list[tuple[tuple, str]]:
    out = []
    for path, condition in conditions.items():
        try:
            compile_policy_conditions(policy, list(library.events), labels, traits,
                                      {path: condition}, only_extra=True)
        except PolicyError as exc:
            out.append((_key_path(exc.path), str(exc.error)))
    return out


def _key_path(path: str) -> tuple:
    """``lists[2].enter_when`` -> ("lists", 2, "enter_when")."""
    return tuple(int(p) if p.isdigit() else p
                 for p in path.replace("[", ".").replace("]", "").split("."))


def check_policy(policy: PolicySpec, labels: dict[str, tuple[str, ...]] | None = None,
                 traits: tuple[str, ...] = (), society: SocietySpec | None = None,
                 library: Catalogue = PACKAGED) -> list[tuple[tuple, str]]:
    """A policy's names and conditions: events, tiers, sanctions and perks exist, every
    condition compiles (against the society's categories; the default society if None), and
    a start score given as an expression stays within the scores' range for every citizen
    the society can hold. Names are looked up in ``library`` (a scenario's catalogue;
    the packaged one for a policy file on its own)."""
    events, sanctions, perks = library.events, library.sanctions, library.perks

    out: list[tuple[tuple, str]] = []

    def known(path: tuple, name: str, table, what: str) -> None:
        if name not in table:
            out.append((path, f"unknown {what} {name!r}{_close(name, table)}"))

    for i, rule in enumerate(policy.rules):
        known(("rules", i, "event"), rule.event, events, "event type")
        if rule.override is not None:
            known(("rules", i, "override", "max_tier"), rule.override.max_tier,
                  policy.tier_names, "tier")
    for k, lst in enumerate(policy.lists):
        for key in ("enter_on", "leave_on"):
            for j, e in enumerate(getattr(lst, key)):
                known(("lists", k, key, j), e, events, "event type")
    for j, e in enumerate(policy.peer_rating.incident_events if policy.peer_rating else ()):
        known(("peer_rating", "incident_events", j), e, events, "event type")
    for k, c in enumerate(policy.sanctions):
        for j, name in enumerate(c.deny):
            known(("sanctions", k, "deny", j), name, sanctions, "sanction")
        for j, name in enumerate(c.grant):
            known(("sanctions", k, "grant", j), name, perks, "perk")
    if out:
        return out
    if labels is None:
        soc = SocietySpec()
        labels = {"sex": ("female", "male"), "region": tuple(soc.region.labels()),
                  "group": tuple(soc.group.labels()), "residency": tuple(soc.residency.labels()),
                  "occupation": (*soc.occupation.labels(), *DERIVED_OCCUPATIONS)}
    try:
        compile_policy_conditions(policy, list(events), labels, traits)
    except PolicyError as exc:
        out.append((_key_path(exc.path), str(exc.error)))
    if not out and isinstance(policy.score.start, str):
        out += _start_range(policy, labels, traits, society or SocietySpec())
    return out


def _start_range(policy: PolicySpec, labels: dict, traits: tuple[str, ...],
                 society: SocietySpec) -> list[tuple[tuple, str]]:
    """``score.start`` as an expression, compiled as the run compiles it but with the range of
    every column the society can produce: its values, rounded to milli-points, must fit the
    int64 scores before min and max clip them, and within ±MAX_POINTS after."""
    spans = _column_spans(society)
    columns = {name: replace(col, span=spans.get(name)) for name, col in
               condition_columns(labels, policy.tier_names, traits).items()
               if name not in ("score", "tier")}
    s = policy.score
    try:
        start = compile_condition(s.start, columns, {}, expect="number")
    except ConditionError as exc:
        return [(("score", "start"), str(exc))]
    lo, hi = start.span
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []  # unknown (a division by something near 0): the run clips what it gets
    clipped = (lo if s.min is None else max(lo, s.min), hi if s.max is None else min(hi, s.max))
    if max(-lo, hi) * MILLI < 2**62 and max(-clipped[0], clipped[1]) <= MAX_POINTS:
        return []
    return [(("score", "start"),
             f"gives start scores from {lo:.4g} to {hi:.4g} points for the citizens this society "
             f"can hold ({_describe_spans(spans, start.columns)}); scores must "
             f"stay within ±{MAX_POINTS:g} points: scale it down, or clip it with score min and "
             f"max (which apply to values within ±{2**62 / MILLI:.2g})")]


def _column_spans(society: SocietySpec) -> dict[str, tuple[float, float]]:
    """The range of every numeric citizen column the population can hold (traits whose
    distributions cannot be drawn are left out; they are reported elsewhere)."""
    def span(dist) -> tuple[float, float] | None:
        ends: list[float] = []
        for d in dist.values.values() if isinstance(dist, ByCategory) else [dist]:
            if isinstance(d, NumericTable):
                ends += [min(d.values), max(d.values)]
                continue
            try:
                with np.errstate(all="ignore"):
                    ends += [float(x) for x in draw(d, _U_EXTREMES)]
            except (ValueError, OverflowError, ZeroDivisionError):
                return None
        return (min(ends), max(ends)) if all(math.isfinite(x) for x in ends) else None

    income = span(society.income)
    if society.visitors is not None and income is not None:
        vis = society.visitors.income
        for dist in vis.values() if isinstance(vis, dict) else [vis]:
            found = span(dist)
            income = None if found is None else (min(income[0], found[0]),
                                                 max(income[1], found[1]))
            if income is None:
                break
    out = {"age": (0.0, 120.0), "rank": (0.0, float(max(society.official_rank.values))),
           "children": (0.0, 255.0)}  # as the population stores them: uint8, ages clipped
    if income is not None:
        out["income"] = (0.0, max(income[1], 0.0))  # minors earn 0, negatives are raised to 0
    for name, dist in society.traits.items():
        if (found := span(dist)) is not None:
            out[name] = found
    return out


def _describe_spans(spans: dict, columns) -> str:
    return ", ".join(f"{k} from {lo:.4g} to {hi:.4g}" for k, (lo, hi) in sorted(spans.items())
                     if k in columns)
