"""Checks pydantic cannot do, on validated models: every name refers to something that
exists (events, tiers, sanctions, categories, sources, columns; with "did you mean"), every
condition compiles, and what the run would refuse (rates, attempts and phantoms beyond the
supported limits, distributions whose draws overflow) is found before it builds anything,
with the run's own samplers and random streams. Each check returns :class:`Problem`s (key
path, rule, value), which all read alike; the loader places them in the file. Imports
nothing from the runtime (the random streams of :mod:`panopticon.rng` are a leaf: they
import only their kernels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from panopticon.catalogue import (
    _WHAT,
    KINDS,
    NAME,
    PACKAGED,
    Catalogue,
    CatalogueSpec,
    catalogue_of,
)
from panopticon.policy.conditions import ConditionError, compile_condition
from panopticon.rng import Stage, stream_key, uniforms
from panopticon.spec.conditions import PolicyError, compile_policy_conditions, condition_columns
from panopticon.spec.files import KeyPath, dotted, one_of, render
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


# ---------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a specification: where, the rule it breaks, what was found.

    Every check reports these, so every message reads alike (:attr:`message`):
    ``got 'urbn'; expected a region of this society, one of: urban, rural; did you mean
    'urban'?``.

    Attributes:
        path: key path of the offending value, e.g. ``("sensors", "cameras", "coverage")``
            (:attr:`key` writes it dotted). Kept as parts, not dotted text, so that the
            loader finds its line even when a key holds a dot or is all digits.
        rule: what was expected, stated as a rule: ``a number from 0 to 1``,
            ``a tier of the policy, one of: A, B, C``, ``a known event type``.
        value: the offending value as found (None: nothing was given).
        known: for a name checked against a known set, that set: the names closest to
            ``value`` are offered as "did you mean".
    """

    path: KeyPath
    rule: str
    value: Any
    known: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The dotted key path: ``behaviour.deterrence[0].tiers[2]``."""
        return dotted(self.path)

    @property
    def message(self) -> str:
        """``got VALUE; expected RULE``, then ``; did you mean 'NAME'?`` when a known name is
        close to the value: the one style of every problem (the key goes in front of it)."""
        return render(self.rule, self.value, self.known)

    def __str__(self) -> str:
        """The problem as one line: ``KEY: got VALUE; expected RULE[; did you mean ...?]``."""
        return f"{self.key}: {self.message}"

    def under(self, *parent: str | int) -> Problem:
        """The same problem with its path inside ``parent`` (a policy's problems inside the
        scenario's ``policy``)."""
        return replace(self, path=(*parent, *self.path))


def unknown_name(path: KeyPath, name: str, known, what: str) -> Problem:
    """``name`` at ``path`` is not in ``known`` (the ``what`` s there, e.g. ``a tier of the
    policy``): the rule lists them (when few) and the closest come as "did you mean"."""
    return Problem(path, one_of(what, known), name, tuple(map(str, known)))


def _unknown_event(path: KeyPath, name: str, known) -> Problem:
    """An event type that is not in the catalogue (too many to list: `panopticon events`)."""
    return Problem(path, "a known event type (see `panopticon events`)", name,
                   tuple(map(str, known)))


def _unknown_category(path: KeyPath, attr: str, cat: str, categories: dict) -> Problem:
    """A category the society does not have (``region: urbn``)."""
    return unknown_name(path, cat, categories[attr], f"a {attr} of this society")


def _by_category(path: KeyPath, table, attr: str, what: str,
                 categories: dict[str, list[str]]) -> list[Problem]:
    """A table keyed by the categories of ``attr`` (a distribution, threshold or probability
    per region, say): one entry per category of the society, and no other."""
    out = []
    missing = set(categories[attr]) - set(table)
    if missing:
        out.append(Problem(path, f"{what} for every {attr} (missing {sorted(missing)})",
                           sorted(table)))
    out += [_unknown_category((*path, cat), attr, cat, categories)
            for cat in sorted(set(table) - set(categories[attr]))]
    return out


def _condition_problem(error: ConditionError, path: KeyPath) -> Problem:
    """A condition that does not compile; the rule carries the compiler's reason (with its
    own "did you mean" for a name inside the expression)."""
    return Problem(path, f"a condition that compiles: {error}", error.expression)


# ---------------------------------------------------------------- names
def _check_catalogue(spec: CatalogueSpec) -> list[Problem]:
    """A ``catalogue`` section's names: new names only (no packaged entry redefined), each a
    lower-case identifier; an event's source, an opportunity's sanctions and perks exist
    (packaged or the section's own)."""
    out: list[Problem] = []
    lib = PACKAGED.extended(spec)
    for kind in KINDS:
        packaged = getattr(PACKAGED, kind)
        for name in getattr(spec, kind):
            path = ("catalogue", kind, name)
            if name in packaged:
                out.append(Problem(path, f"a new name, not a packaged {_WHAT[kind]} (a "
                                         "scenario adds new names and cannot redefine packaged "
                                         "ones: change its rate or sources in the scenario, or "
                                         "pick another name)", name))
            elif not NAME.match(name):
                out.append(Problem(path, "a valid name: lower-case letters, digits and "
                                         "underscores, starting with a letter, at most 60", name))
    for name, e in spec.events.items():
        if e.source not in lib.sources:
            out.append(unknown_name(("catalogue", "events", name, "source"), e.source,
                                    sorted(lib.sources), "a known data source"))
    for name, o in spec.opportunities.items():
        for key, table, what in (("blocked_by", lib.sanctions, "sanction"),
                                 ("needs", lib.perks, "perk")):
            out += [unknown_name(("catalogue", "opportunities", name, key, j), x, table,
                                 f"a known {what}")
                    for j, x in enumerate(getattr(o, key)) if x not in table]
    return out


def _check_reallocation(sname: str, spec: ReallocationSpec | None, sources: list[str],
                        categories: dict[str, list[str]]) -> list[Problem]:
    """A reallocating source's ``from`` names sources of the scenario, its ``prior`` regions
    exist, and ``units`` come without a ``floor`` (units are whole: use a prior instead)."""
    if spec is None:
        return []
    out: list[Problem] = []
    path = ("sensors", sname, "reallocate")
    for j, name in enumerate(spec.from_ or ()):
        if name not in sources:
            out.append(unknown_name((*path, "from", j), name, sources,
                                    "a source of this scenario"))
        elif name in spec.from_[:j]:
            out.append(Problem((*path, "from", j), "each source once (this one is listed twice)",
                               name))
    if spec.from_ == []:
        out.append(Problem((*path, "from"), "at least one source (or leave from out: the "
                                            "source's own records)", []))
    if isinstance(spec.prior, dict) and categories:
        out += [_unknown_category((*path, "prior", region), "region", region, categories)
                for region in spec.prior if region not in categories["region"]]
    if spec.units is not None and spec.floor > 0:
        out.append(Problem((*path, "floor"), "no floor with units: every region's coverage is "
                                             "whole units (keep regions in the draw with a "
                                             "prior)", spec.floor))
    return out


def _check_references(spec: ScenarioSpec | _Sections) -> list[Problem]:
    """Cross-field checks pydantic cannot do: every name refers to something that exists.

    Checks that need a section that is itself invalid (None) are skipped.
    """
    out: list[Problem] = []
    # an invalid catalogue section (None) leaves the packaged catalogue: its own names may
    # then be reported unknown besides the section's own problems
    section = spec.catalogue
    library = PACKAGED if section is None else catalogue_of(section)
    out += _check_catalogue(section) if section is not None else []
    known = library.events
    sources = library.sources
    soc, beh_spec, sensors, policy = spec.society, spec.behaviour, spec.sensors, spec.policy

    def event(path: tuple, name: str) -> None:
        if name not in known:
            out.append(_unknown_event(path, name, known))

    def tier(path: tuple, name: str) -> None:
        if name not in policy.tier_names:
            out.append(unknown_name(path, name, policy.tier_names, "a tier of the policy"))

    categories = {} if soc is None else {
        "sex": ["female", "male"], "region": soc.region.labels(), "group": soc.group.labels(),
        "residency": soc.residency.labels(),
        "occupation": [*soc.occupation.labels(), "minor", "retired"]}
    if soc is not None and soc.visitors is not None:
        categories["origin"] = [ORIGIN_HOME, *soc.visitors.origins.labels()]

    def cats(path: tuple, mapping: dict[str, dict[str, float]]) -> None:
        for attr, table in mapping.items() if categories else ():
            out.extend(_unknown_category((*path, attr, cat), attr, cat, categories)
                       for cat in table if cat not in categories[attr])

    for attr in ("income",):  # adult_age is one distribution (SocietySpec._one_age)
        dist = getattr(soc, attr) if soc is not None else None
        if isinstance(dist, ByCategory):
            out += _by_category(("society", attr, "values"), dist.values, dist.by,
                                "a distribution", categories)
    if beh_spec is not None:
        for name, beh in beh_spec.events.items():
            event(("behaviour", "events", name), name)
            cats(("behaviour", "events", name, "multipliers"), beh.multipliers)
        for i, det in enumerate(beh_spec.deterrence):
            for j, t in enumerate(det.tiers if policy is not None else ()):
                tier(("behaviour", "deterrence", i, "tiers", j), t)
            for j, e in enumerate(det.events):
                event(("behaviour", "deterrence", i, "events", j), e)
        for i, det in enumerate(beh_spec.perceived_deterrence):
            for j, e in enumerate(det.events):
                event(("behaviour", "perceived_deterrence", i, "events", j), e)
    for sname, src in (sensors or {}).items():
        if sname not in sources:
            out.append(unknown_name(("sensors", sname), sname, sorted(sources),
                                    "a known data source"))
        seen: set[str] = set()  # several sources may observe one event type, once each
        for j, e in enumerate(src.events):
            event(("sensors", sname, "events", j), e)
            if e in seen:
                out.append(Problem(("sensors", sname, "events", j), "each event once (this one "
                                   "is listed twice; a source observes each event once)", e))
            seen.add(e)
        out += _check_reallocation(sname, src.reallocate, list(sensors), categories)
        for j, e in enumerate(src.phantom_events or ()):
            event(("sensors", sname, "phantom_events", j), e)
        if src.phantom_rate > 0 and not src.invented_events:
            out.append(Problem(("sensors", sname, "phantom_rate"),
                               "0 for a source without events to invent (a phantom rate needs "
                               "events or phantom_events)", src.phantom_rate))
        if isinstance(src.coverage, dict) and categories:
            out += _by_category(("sensors", sname, "coverage"), src.coverage, "region",
                                "a coverage", categories)
        cats(("sensors", sname, "false_match_multipliers"), src.false_match_multipliers)
    traits = tuple(soc.traits) if soc is not None else ()
    if soc is not None:
        for name, dist in soc.traits.items():
            if isinstance(dist, ByCategory):
                out += _by_category(("society", "traits", name, "values"), dist.values,
                                    dist.by, "a distribution", categories)
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
                    out.append(Problem(("behaviour", "responses", i, "events", j),
                                       "an event without a response (or deterrence) of the "
                                       "other kind: an event's responses either set a rate or "
                                       "multiply it by a factor", e))
    for name, opp in (spec.opportunities or {}).items():
        out += _check_opportunity(name, opp, categories, traits, library)
    if policy is not None:
        labels = {k: tuple(v) for k, v in categories.items()} if categories else None
        out += [p.under("policy") for p in check_policy(policy, labels, traits, soc, library)]
        if labels is not None and beh_spec is not None:
            out += _check_conditions(policy, labels, traits,
                                     scenario_conditions(beh_spec, spec.opportunities or {},
                                                         spec.governance, library),
                                     library)
    for i, insider in enumerate(spec.governance.insiders if spec.governance else ()):
        if insider.region is not None and categories and insider.region not in categories[
                "region"]:
            out.append(_unknown_category(("governance", "insiders", i, "region"), "region",
                                         insider.region, categories))
    review = spec.governance.review if spec.governance else None
    if review is not None and policy is not None:
        names = [x.name for x in policy.lists]
        out += [unknown_name(("governance", "review", "lists", j), name, names,
                             "a list of the policy")
                for j, name in enumerate(review.lists) if name not in names]
        for j, t in enumerate(review.tiers):
            tier(("governance", "review", "tiers", j), t)
            if t == policy.tier_names[0]:
                out.append(Problem(("governance", "review", "tiers", j),
                                   "a tier below the top tier (nobody falls into the top tier)",
                                   t))
    return out


def _check_opportunity(name: str, opp: OpportunitySpec, categories: dict, traits: tuple,
                       library: Catalogue = PACKAGED) -> list[Problem]:
    """An opportunity's names: a catalogue entry (or a full definition), known sanctions,
    perks, categories, columns and events."""
    out: list[Problem] = []
    path = ("opportunities", name)
    catalogued = library.opportunities
    if name not in catalogued and (opp.rate is None or (opp.blocked_by is None
                                                        and opp.needs is None)):
        out.append(Problem(path, "an opportunity from `panopticon opportunities`, or one with "
                                 "rate and blocked_by or needs", name, tuple(catalogued)))
    for key, table, what in (("blocked_by", library.sanctions, "sanction"),
                             ("needs", library.perks, "perk")):
        out += [unknown_name((*path, key, j), x, table, f"a known {what}")
                for j, x in enumerate(getattr(opp, key) or ()) if x not in table]
    if categories:
        for attr, table in opp.multipliers.items():
            out += [_unknown_category((*path, "multipliers", attr, cat), attr, cat, categories)
                    for cat in table if cat not in categories[attr]]
        for key, what in (("min_score", "a threshold"), ("accept_at_min", "a probability")):
            value = getattr(opp, key)
            if isinstance(value, dict):
                (attr, table), = value.items()
                out += _by_category((*path, key, attr), table, attr, what, categories)
        repay = opp.loan.repay if opp.loan is not None else None
        if isinstance(repay, RepaymentTable) and isinstance(repay.probability, dict):
            out += _by_category((*path, "loan", "repay", "probability"), repay.probability,
                                repay.by, "probabilities", categories)
    out += _check_lender(path, opp)
    if opp.loan is not None:
        for key in ("repaid_event", "default_event"):
            e = getattr(opp.loan, key)
            if e not in library.events:
                out.append(_unknown_event((*path, "loan", key), e, library.events))
        repay = opp.loan.repay
        columns = [*BUILTIN_NUMBERS, *traits]
        for key in ("column", "by_column"):
            col = getattr(repay, key, None) if isinstance(repay, RepaymentTable) else None
            if col is not None and col not in columns:
                out.append(unknown_name((*path, "loan", "repay", key), col, columns,
                                        "a numeric column"))
    return out


def _check_lender(path: tuple, opp: OpportunitySpec) -> list[Problem]:
    """A randomised threshold needs a threshold; a lender needs a loan, and a solved one a
    repayment table on ``score`` and no ``min_score`` of its own."""
    out: list[Problem] = []
    if opp.accept_at_min != 1.0 and opp.min_score is None and (
            opp.lender is None or opp.lender.criterion == "fixed"):
        out.append(Problem((*path, "accept_at_min"), "1 without min_score (a randomised "
                                                     "threshold needs min_score: the threshold "
                                                     "whose cell it randomises)",
                           opp.accept_at_min))
    lender = opp.lender
    if lender is None:
        return out
    if opp.loan is None:
        out.append(Problem((*path, "loan"), "loan: {repay: ...} next to the lender (a lender "
                                            "needs loan: the loans it grants and their "
                                            "repayment)", None))
        return out
    if lender.criterion == "fixed":
        return out
    repay = opp.loan.repay
    if not isinstance(repay, RepaymentTable) or repay.column != "score":
        out.append(Problem((*path, "lender", "criterion"),
                           "fixed, or loan.repay: {column: score, at: [...], probability: "
                           "[...]} (a solved criterion solves thresholds over the bins of the "
                           "repayment table)", lender.criterion))
    elif repay.by_column is not None:
        out.append(Problem((*path, "lender", "criterion"),
                           "fixed, or a repayment table without by_column (a solved criterion "
                           "solves thresholds over the score bins of one row per category: "
                           "use by: <attribute> or one list)", lender.criterion))
    elif repay.by is not None and repay.by != lender.by:
        out.append(Problem((*path, "lender", "by"),
                           f"the attribute of the repayment table (by: {repay.by})", lender.by))
    for key in ("min_score", "accept_at_min"):
        if key in opp.model_fields_set:
            out.append(Problem((*path, key), f"no {key}: it is set by lender.criterion "
                                             f"{lender.criterion} (remove {key} or use "
                                             "criterion: fixed)", getattr(opp, key)))
    if lender.gain == 0 and lender.loss == 0:
        out.append(Problem((*path, "lender", "gain"), "a gain or a loss above 0 (with both 0, "
                                                      "every threshold would pay the same)",
                           lender.gain))
    return out


# ---------------------------------------------------------------- limits
_U_EXTREMES = np.array([0.0, 1.0 - 2.0 ** -53])
"""The smallest and largest uniforms the generator gives: every draw lies between the draws at
these two (the samplers are inverse CDFs, non-decreasing in the uniform)."""
_CHUNK = 1 << 20


def check_limits(spec: ScenarioSpec) -> list[Problem]:
    """What the run would refuse, or draw wrong, found before it builds anything.

    The run refuses a citizen with more than 20 true events a day, 20 attempts at an
    opportunity or 20 phantom records (behaviour, sanctions and sensors check the population
    they are given); a distribution whose draws overflow would give infinite incomes. These
    checks bound the same quantities with the same samplers and random streams, without a
    population, so ``validate`` refuses exactly what ``run`` would (and more only where a
    bound is not reached: a multiplier's category that no drawn citizen has, say). They take
    a few hundredths of a second per distributed rate and million citizens.
    """
    out: list[Problem] = []
    soc = spec.society
    for path, dist in [(("society", "adult_age"), soc.adult_age),
                       *_per_category(("society", "income"), soc.income),
                       *(x for name, d in soc.traits.items()
                         for x in _per_category(("society", "traits", name), d))]:
        out += _drawable(path, dist)
    for name, beh in spec.behaviour.events.items():
        if not isinstance(beh.rate, int | float | None):
            out += _drawable(("behaviour", "events", name, "rate"), beh.rate)
    for name, opp in spec.opportunities.items():
        if not isinstance(opp.rate, int | float | None):
            out += _drawable(("opportunities", name, "rate"), opp.rate)
    if out:
        return out
    return _rate_limits(spec) + _phantom_limits(spec)


def _per_category(path: tuple, dist) -> list[tuple[tuple, Any]]:
    if isinstance(dist, ByCategory):
        return [((*path, "values", cat), d) for cat, d in dist.values.items()]
    return [(path, dist)]


def _drawable(path: KeyPath, dist) -> list[Problem]:
    """Problems drawing ``dist`` (at ``path``) with the population's own sampler: it fails
    (bounds too far from the median for a float), or its draws are not finite or beyond
    ±MAX_NUMBER."""
    if isinstance(dist, NumericTable):
        return []  # its values are the draws, each within ±MAX_NUMBER
    written = dist.model_dump(mode="json", exclude_defaults=True)
    try:
        with np.errstate(all="ignore"):
            lo, hi = draw(dist, _U_EXTREMES)
    except (ValueError, OverflowError, ZeroDivisionError):
        return [Problem(path, "a distribution that can be drawn (its min or max is too far "
                              "from the median for a float)", written)]
    if not (np.isfinite(lo) and np.isfinite(hi)) or max(-lo, hi) > MAX_NUMBER:
        smaller = " or a smaller sigma" if dist.kind == "lognormal" else ""
        return [Problem(path, f"draws within ±{MAX_NUMBER:g} (it can draw values from "
                              f"{lo:.3g} to {hi:.3g}): give it a min and max{smaller}", written)]
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


def _rate_limits(spec: ScenarioSpec) -> list[Problem]:
    """Behaviour rates and opportunity attempts per citizen-day within what the run supports,
    drawn from the run's own streams (run.seed, run.citizens). The value of a problem is the
    largest rate some citizen gets."""
    out: list[Problem] = []
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
            out.append(Problem(("behaviour", "events", name,
                                *(("rate",) if beh.rate is not None else ())),
                               f"at most {MAX_RATE:g} events a day for any citizen, found "
                               f"as {_how(beh.rate, base, factor, drawn)}: lower it, or give "
                               "its distribution a max", base * factor))
        parts.append((factor, float(base) if isinstance(beh.rate, int | float | None)
                      else beh.rate, key))
        total += base * factor
    # the sum of each event's largest rate is a coarse bound: only when it is too high, add
    # up each citizen's own draws (still with the largest factors)
    largest = _largest_total(parts, n) if not out and total > MAX_RATE else 0.0
    if largest > MAX_RATE:
        out.append(Problem(("behaviour", "events"),
                           f"rates adding up to at most {MAX_RATE:g} events a day for any "
                           f"citizen, found as the largest sum {drawn}, with the largest "
                           "multipliers and bands", largest))
    for k, (name, opp) in enumerate(spec.opportunities.items()):
        default = library.opportunities[name].rate_per_day \
            if name in library.opportunities else 0.0
        key = stream_key(seed, Stage.OPPORTUNITY, 0, 100 + k)
        factor = _largest_factor(opp, categories)
        base = _largest_draw(opp.rate, default, MAX_TRIES / factor if factor else math.inf,
                             key, n)
        if base * factor > MAX_TRIES:
            out.append(Problem(("opportunities", name,
                                *(("rate",) if opp.rate is not None else ())),
                               f"at most {MAX_TRIES:g} tries a day for any citizen, found as "
                               f"{_how(opp.rate, base, factor, drawn)} times a day",
                               base * factor))
    return out


def _how(rate, base: float, factor: float, drawn: str) -> str:
    """How a rate bound came about, for a message."""
    how = f"a rate of {base:.3g}" if isinstance(rate, int | float | None) else \
        f"the largest draw {drawn} is {base:.3g}"
    return how + (f", times multipliers and bands up to {factor:.3g}" if factor != 1 else "")


def _phantom_limits(spec: ScenarioSpec) -> list[Problem]:
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
            return [Problem(("sensors", name, "phantom_rate"),
                            f"a phantom_rate giving at most {MAX_PHANTOMS:g} phantom records "
                            "a day for any citizen (times false_match_multipliers and "
                            f"coverage, citizens of region {region!r} get "
                            f"{sum(lam.values()):.3g} phantom records a day, {lam[name]:.3g} "
                            "from this source)", spec.sensors[name].phantom_rate)]
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
                      library: Catalogue = PACKAGED) -> list[Problem]:
    """The scenario's own conditions (by dotted key) compile with the policy's columns."""
    out = []
    for path, condition in conditions.items():
        try:
            compile_policy_conditions(policy, list(library.events), labels, traits,
                                      {path: condition}, only_extra=True)
        except PolicyError as exc:
            out.append(_condition_problem(exc.error, _key_path(exc.path)))
    return out


def _key_path(path: str) -> tuple:
    """``lists[2].enter_when`` -> ("lists", 2, "enter_when")."""
    return tuple(int(p) if p.isdigit() else p
                 for p in path.replace("[", ".").replace("]", "").split("."))


def check_policy(policy: PolicySpec, labels: dict[str, tuple[str, ...]] | None = None,
                 traits: tuple[str, ...] = (), society: SocietySpec | None = None,
                 library: Catalogue = PACKAGED) -> list[Problem]:
    """A policy's names and conditions: events, tiers, sanctions and perks exist, every
    condition compiles (against the society's categories; the default society if None), and
    a start score given as an expression stays within the scores' range for every citizen
    the society can hold. Names are looked up in ``library`` (a scenario's catalogue;
    the packaged one for a policy file on its own)."""
    events, sanctions, perks = library.events, library.sanctions, library.perks

    out: list[Problem] = []

    def event(path: tuple, name: str) -> None:
        if name not in events:
            out.append(_unknown_event(path, name, events))

    def known(path: tuple, name: str, table, what: str) -> None:
        if name not in table:
            out.append(unknown_name(path, name, table, what))

    for i, rule in enumerate(policy.rules):
        event(("rules", i, "event"), rule.event)
        if rule.override is not None:
            known(("rules", i, "override", "max_tier"), rule.override.max_tier,
                  policy.tier_names, "a tier of the policy")
    for k, lst in enumerate(policy.lists):
        for key in ("enter_on", "leave_on"):
            for j, e in enumerate(getattr(lst, key)):
                event(("lists", k, key, j), e)
    for j, e in enumerate(policy.peer_rating.incident_events if policy.peer_rating else ()):
        event(("peer_rating", "incident_events", j), e)
    for k, c in enumerate(policy.sanctions):
        for j, name in enumerate(c.deny):
            known(("sanctions", k, "deny", j), name, sanctions, "a known sanction")
        for j, name in enumerate(c.grant):
            known(("sanctions", k, "grant", j), name, perks, "a known perk")
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
        out.append(_condition_problem(exc.error, _key_path(exc.path)))
    if not out and isinstance(policy.score.start, str):
        out += _start_range(policy, labels, traits, society or SocietySpec())
    return out


def _start_range(policy: PolicySpec, labels: dict, traits: tuple[str, ...],
                 society: SocietySpec) -> list[Problem]:
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
        return [_condition_problem(exc, ("score", "start"))]
    lo, hi = start.span
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []  # unknown (a division by something near 0): the run clips what it gets
    clipped = (lo if s.min is None else max(lo, s.min), hi if s.max is None else min(hi, s.max))
    if max(-lo, hi) * MILLI < 2**62 and max(-clipped[0], clipped[1]) <= MAX_POINTS:
        return []
    return [Problem(("score", "start"),
                    f"start scores within ±{MAX_POINTS:g} points (it gives from {lo:.4g} to "
                    f"{hi:.4g} points for the citizens this society can hold: "
                    f"{_describe_spans(spans, start.columns)}): scale it down, or clip it with "
                    f"score min and max (which apply to values within ±{2**62 / MILLI:.2g})",
                    s.start)]


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
