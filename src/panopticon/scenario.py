"""A scenario: one YAML file that says everything a run needs (society, behaviour, sensors,
policy, run settings). This is the only place defaults live.

``load_scenario(path)`` parses (aliases refused), validates (unknown keys refused) and checks
cross-references (event names, tier names) and reports every problem at once with file, line,
column and key path.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from panopticon.catalogue import EVENTS_BY_NAME, SOURCES
from panopticon.errors import Problem, UserError
from panopticon.policy.schema import PolicySpec
from panopticon.spec import (
    ByCategory,
    Distribution,
    LogNormal,
    NonNegative,
    Normal,
    PerCategory,
    Probability,
    Strict,
    Table,
)
from panopticon.specfile import Positions, dotted, locate, problems_from, read_yaml, validate

SCHEMA_VERSION = 1
CATEGORICAL = ("sex", "region", "group", "residency", "occupation")
RESIDENCIES = ("citizen", "resident_foreigner", "tourist")
DERIVED_OCCUPATIONS = ("minor", "retired")


# ---------------------------------------------------------------- society
def _whole(v: object, lo: int, hi: int) -> bool:
    """Whether ``v`` is a whole number in [lo, hi] (booleans and infinities are not)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi and v == int(v)


class HouseholdSpec(Strict):
    """How citizens live together. Members beyond the couple are children with ``child_share``."""

    size: Table = Table(values=[1, 2, 3, 4, 5, 6], weights=[0.25, 0.29, 0.21, 0.15, 0.07, 0.03])
    partnered: Probability = 0.75
    child_share: Probability = 0.6

    @field_validator("size")
    @classmethod
    def _sizes(cls, size: Table) -> Table:
        for v in size.values:
            if not _whole(v, 1, 20):
                raise ValueError(f"household sizes must be whole numbers 1-20; got {v!r}")
        return size


class FriendsSpec(Strict):
    """Friendship as a small world (Watts-Strogatz): a ring lattice, far ends rewired."""

    mean_degree: Annotated[int, Field(ge=0, le=200, multiple_of=2)] = 10
    rewire: Probability = 0.1


class WorkSpec(Strict):
    """Working adults are split into teams; everyone in a team is tied to everyone else."""

    team_size: Annotated[int, Field(ge=1, le=100)] = 8


class TiesSpec(Strict):
    """Tie layers; family is the household (and the partner)."""

    friends: FriendsSpec = FriendsSpec()
    work: WorkSpec = WorkSpec()
    family: bool = True


class SocietySpec(Strict):
    """Who lives in the synthetic society and how they are tied. Distributions are data [A]."""

    households: HouseholdSpec = HouseholdSpec()
    female_share: Probability = 0.49
    """Share of women in the whole population (couples are one woman and one man)."""
    adult_age: PerCategory = Normal(kind="normal", mean=43, sd=15, min=18, max=90)
    region: Table = Table(values=["urban", "rural"], weights=[0.65, 0.35])
    group: Table = Table(values=["majority", "minority"], weights=[0.91, 0.09])
    residency: Table = Table(values=list(RESIDENCIES), weights=[0.995, 0.003, 0.002])
    income: PerCategory = LogNormal(kind="lognormal", median=4000, sigma=0.7)
    occupation: Table = Table(
        values=["farmer", "worker", "service", "professional", "official", "unemployed"],
        weights=[0.22, 0.25, 0.25, 0.13, 0.03, 0.12])
    official_rank: Table = Table(values=[1, 2, 3, 4, 5], weights=[0.5, 0.3, 0.13, 0.05, 0.02])
    retirement_age: NonNegative = 65
    abroad_share: Probability = 0.0
    """Share of adult citizens (residency ``citizen``) living abroad: domestic sensors do not
    see what they do; the policy's ``scope.abroad`` says how they are scored."""
    ties: TiesSpec = TiesSpec()

    @field_validator("residency")
    @classmethod
    def _residencies(cls, table: Table) -> Table:
        bad = [v for v in table.labels() if v not in RESIDENCIES]
        if bad:
            raise ValueError(f"residency values must be among {list(RESIDENCIES)}; got {bad}")
        return table

    @field_validator("official_rank")
    @classmethod
    def _ranks(cls, table: Table) -> Table:
        for v in table.values:
            if not _whole(v, 1, 100):
                raise ValueError(f"official ranks must be whole numbers 1-100; got {v!r}")
        return table

    @field_validator("region", "group", "occupation")
    @classmethod
    def _few_categories(cls, table: Table) -> Table:
        if len(table.values) > 250:
            raise ValueError("at most 250 categories")
        return table

    @field_validator("occupation")
    @classmethod
    def _not_reserved(cls, table: Table) -> Table:
        reserved = sorted(set(table.labels()) & set(DERIVED_OCCUPATIONS))
        if reserved:
            raise ValueError(f"{reserved} are given by age (under 18, at retirement_age); "
                             "use other names")
        return table


# ---------------------------------------------------------------- behaviour
class Bands(Strict):
    """Piecewise-constant factor of a numeric attribute: ``factors[k]`` between edges k-1 and k."""

    edges: Annotated[list[float], Field(min_length=1)]
    factors: list[NonNegative]

    @model_validator(mode="after")
    def _shape(self):
        if len(self.factors) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) + 1} factors; "
                             f"got {len(self.factors)}")
        if any(a >= b for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must increase")
        return self


class EventBehaviour(Strict):
    """How often citizens really do one kind of thing, per citizen-day.

    ``rate`` is a number or a distribution drawn once per citizen; it is multiplied by
    ``multipliers[attribute][category]`` and by ``bands`` of age or income. Citizens below
    ``min_age`` never do it.
    """

    rate: NonNegative | Distribution | None = None
    multipliers: dict[Literal["sex", "region", "group", "residency", "occupation"],
                      dict[str, NonNegative]] = {}
    bands: dict[Literal["age", "income"], Bands] = {}
    min_age: NonNegative = 16


class DeterrenceSpec(Strict):
    """End of each day, citizens in ``tiers`` multiply their rates of ``events`` by ``factor``."""

    tiers: Annotated[list[str], Field(min_length=1)]
    events: Annotated[list[str], Field(min_length=1)]
    factor: Annotated[float, Field(gt=0, le=1)]


class BehaviourSpec(Strict):
    """Which kinds of behaviour happen in this society, and how citizens adapt."""

    events: dict[str, EventBehaviour] = {}
    deterrence: list[DeterrenceSpec] = []


# ---------------------------------------------------------------- sensors
class SourceSpec(Strict):
    """One data source and its errors.

    A true event of one of ``events`` is observed with probability ``coverage[region] *
    detection``; an observed event is attributed to the wrong citizen with probability
    ``misattribution`` (the victim drawn in proportion to ``false_match_multipliers``), and each
    citizen-day the source invents ``phantom_rate`` (times the same multipliers, times coverage)
    observations of ``phantom_events`` that nobody did (data-entry and matching errors).
    """

    events: list[str]
    coverage: Probability | dict[str, Probability] = 1.0
    detection: Probability = 1.0
    misattribution: Probability = 0.0
    phantom_rate: Annotated[float, Field(ge=0, le=10)] = 0.0
    phantom_events: list[str] | None = None
    false_match_multipliers: dict[Literal["sex", "region", "group", "residency", "occupation"],
                                  dict[str, NonNegative]] = {}

    @property
    def invented_events(self) -> list[str]:
        """The events phantoms are drawn from: ``phantom_events``, or ``events`` if not given."""
        return self.events if self.phantom_events is None else self.phantom_events


# ---------------------------------------------------------------- run
class RunSpec(Strict):
    """How big and how long, and the one root seed."""

    citizens: Annotated[int, Field(ge=1, le=2_000_000_000)] = 100_000
    days: Annotated[int, Field(ge=1, le=36_500)] = 365
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    checkpoint_every: Annotated[int, Field(ge=1, le=36_500)] = 30


class ScenarioSpec(Strict):
    """Everything one run needs."""

    schema_version: Literal[1]
    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    run: RunSpec = RunSpec()
    society: SocietySpec = SocietySpec()
    behaviour: BehaviourSpec = BehaviourSpec()
    sensors: dict[str, SourceSpec] = {}
    policy: PolicySpec

    def with_run(self, **changes: Any) -> ScenarioSpec:
        """A copy with run settings changed (validated), e.g. ``with_run(citizens=1000)``."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        try:
            run = RunSpec.model_validate({**self.run.model_dump(), **changes})
        except ValidationError as exc:
            raise UserError("invalid run settings", problems_from(
                exc, {**self.run.model_dump(), **changes}, {}, "<command line>")) from None
        return self.model_copy(update={"run": run})

    def canonical_json(self) -> str:
        """The scenario as sorted JSON: what is hashed and stored with every run."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical scenario (run settings included)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def active_events(self) -> list[str]:
        """Event types that happen (have a rate) or can be observed, in catalogue order."""
        used = set(self.behaviour.events)
        for src in self.sensors.values():
            used |= set(src.events) | set(src.phantom_events or ())
        used |= {r.event for r in self.policy.rules}
        for lst in self.policy.lists:
            used |= set(lst.enter_on) | set(lst.leave_on)
        if self.policy.peer_rating is not None:
            used |= set(self.policy.peer_rating.incident_events)
        return [e for e in EVENTS_BY_NAME if e in used]


# ---------------------------------------------------------------- loading
@dataclass(frozen=True)
class _Sections:
    """The scenario's sections that validated on their own (None where a section is invalid),
    so that name checks can run even when another part of the file has errors."""

    society: SocietySpec | None
    behaviour: BehaviourSpec | None
    sensors: dict[str, SourceSpec] | None
    policy: PolicySpec | None


_SECTION_MODELS: dict[str, Any] = {
    "society": TypeAdapter(SocietySpec), "behaviour": TypeAdapter(BehaviourSpec),
    "sensors": TypeAdapter(dict[str, SourceSpec]), "policy": TypeAdapter(PolicySpec)}


def _valid_sections(data: dict) -> _Sections:
    found = {}
    for name, adapter in _SECTION_MODELS.items():
        try:
            found[name] = adapter.validate_python(data[name]) if name in data else (
                None if name == "policy" else adapter.validate_python({}))
        except ValidationError:
            found[name] = None
    return _Sections(**found)


def _check_references(spec: ScenarioSpec | _Sections) -> list[tuple[tuple, str]]:
    """Cross-field checks pydantic cannot do: every name refers to something that exists.

    Checks that need a section that is itself invalid (None) are skipped.
    """
    out: list[tuple[tuple, str]] = []
    known = set(EVENTS_BY_NAME)
    soc, beh_spec, sensors, policy = spec.society, spec.behaviour, spec.sensors, spec.policy

    def event(path: tuple, name: str) -> None:
        if name not in known:
            close = [k for k in known if k.split("_")[0] == name.split("_")[0]][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            out.append((path, f"unknown event type {name!r}{hint}; see `panopticon events`"))

    categories = {} if soc is None else {
        "sex": ["female", "male"], "region": soc.region.labels(), "group": soc.group.labels(),
        "residency": soc.residency.labels(),
        "occupation": [*soc.occupation.labels(), "minor", "retired"]}

    def cats(path: tuple, mapping: dict[str, dict[str, float]]) -> None:
        for attr, table in mapping.items() if categories else ():
            for cat in table:
                if cat not in categories[attr]:
                    out.append(((*path, attr, cat),
                                f"unknown {attr} {cat!r}; this society has {categories[attr]}"))

    for attr in ("adult_age", "income"):
        dist = getattr(soc, attr) if soc is not None else None
        if not isinstance(dist, ByCategory):
            continue
        missing = set(categories[dist.by]) - set(dist.values)
        if missing:
            out.append((("society", attr, "values"),
                        f"needs a distribution for every {dist.by}; missing {sorted(missing)}"))
        for cat in sorted(set(dist.values) - set(categories[dist.by])):
            out.append((("society", attr, "values", cat),
                        f"unknown {dist.by} {cat!r}; this society has {categories[dist.by]}"))
    if beh_spec is not None:
        for name, beh in beh_spec.events.items():
            event(("behaviour", "events", name), name)
            cats(("behaviour", "events", name, "multipliers"), beh.multipliers)
        for i, det in enumerate(beh_spec.deterrence):
            for j, t in enumerate(det.tiers if policy is not None else ()):
                if t not in policy.tier_names:
                    out.append((("behaviour", "deterrence", i, "tiers", j),
                                f"unknown tier {t!r}; the policy's tiers are {policy.tier_names}"))
            for j, e in enumerate(det.events):
                event(("behaviour", "deterrence", i, "events", j), e)
    seen: dict[str, str] = {}
    for sname, src in (sensors or {}).items():
        if sname not in SOURCES:
            out.append((("sensors", sname), f"unknown data source {sname!r}; "
                        f"known sources are {sorted(SOURCES)}"))
        for j, e in enumerate(src.events):
            event(("sensors", sname, "events", j), e)
            if e in seen:
                out.append((("sensors", sname, "events", j),
                            f"{e!r} is already observed by source {seen[e]!r}; "
                            "each event type has one source"))
            seen[e] = sname
        for j, e in enumerate(src.phantom_events or ()):
            event(("sensors", sname, "phantom_events", j), e)
        if src.phantom_rate > 0 and not src.invented_events:
            out.append((("sensors", sname, "phantom_rate"),
                        "a phantom rate needs events to invent (events or phantom_events)"))
        if isinstance(src.coverage, dict) and categories:
            for region in src.coverage:
                if region not in categories["region"]:
                    out.append((("sensors", sname, "coverage", region),
                                f"unknown region {region!r}; this society has "
                                f"{categories['region']}"))
            missing = set(categories["region"]) - set(src.coverage)
            if missing:
                out.append((("sensors", sname, "coverage"),
                            f"coverage needs every region; missing {sorted(missing)}"))
        cats(("sensors", sname, "false_match_multipliers"), src.false_match_multipliers)
    if policy is not None:
        labels = {k: tuple(v) for k, v in categories.items()} if categories else None
        out += [(("policy", *path), msg) for path, msg in check_policy(policy, labels)]
    return out


def check_policy(policy: PolicySpec, labels: dict[str, tuple[str, ...]] | None = None
                 ) -> list[tuple[tuple, str]]:
    """A policy's names and conditions: events, tiers, sanctions and perks exist, and every
    condition compiles (against the society's categories; the default society if None)."""
    from panopticon.catalogue import PERKS, SANCTIONS
    from panopticon.policy.runtime import PolicyError, compile_policy_conditions

    out: list[tuple[tuple, str]] = []

    def known(path: tuple, name: str, table, what: str) -> None:
        if name not in table:
            close = difflib.get_close_matches(name, list(table), 3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            out.append((path, f"unknown {what} {name!r}{hint}"))

    for i, rule in enumerate(policy.rules):
        known(("rules", i, "event"), rule.event, EVENTS_BY_NAME, "event type")
        if rule.override is not None:
            known(("rules", i, "override", "max_tier"), rule.override.max_tier,
                  policy.tier_names, "tier")
    for k, lst in enumerate(policy.lists):
        for key in ("enter_on", "leave_on"):
            for j, e in enumerate(getattr(lst, key)):
                known(("lists", k, key, j), e, EVENTS_BY_NAME, "event type")
    for j, e in enumerate(policy.peer_rating.incident_events if policy.peer_rating else ()):
        known(("peer_rating", "incident_events", j), e, EVENTS_BY_NAME, "event type")
    for k, c in enumerate(policy.sanctions):
        for j, name in enumerate(c.deny):
            known(("sanctions", k, "deny", j), name, SANCTIONS, "sanction")
        for j, name in enumerate(c.grant):
            known(("sanctions", k, "grant", j), name, PERKS, "perk")
    if out:
        return out
    if labels is None:
        soc = SocietySpec()
        labels = {"sex": ("female", "male"), "region": tuple(soc.region.labels()),
                  "group": tuple(soc.group.labels()), "residency": tuple(soc.residency.labels()),
                  "occupation": (*soc.occupation.labels(), *DERIVED_OCCUPATIONS)}
    try:
        compile_policy_conditions(policy, list(EVENTS_BY_NAME), labels)
    except PolicyError as exc:
        path = tuple(int(p) if p.isdigit() else p
                     for p in exc.path.replace("[", ".").replace("]", "").split("."))
        out.append((path, str(exc.error)))
    return out


def preset_path(name: str) -> Path:
    """Path of a packaged scenario preset, e.g. ``seed_article``."""
    return Path(str(resources.files("panopticon") / "scenarios" / f"{name}.yaml"))


def policy_preset_path(name: str) -> Path:
    """Path of a packaged policy preset."""
    return Path(str(resources.files("panopticon") / "policy" / "presets" / f"{name}.yaml"))


def preset_names() -> list[str]:
    """Names of the packaged scenario presets."""
    folder = Path(str(resources.files("panopticon") / "scenarios"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def policy_preset_names() -> list[str]:
    """Names of the packaged policy presets."""
    folder = Path(str(resources.files("panopticon") / "policy" / "presets"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_policy(path: str | Path) -> PolicySpec:
    """Load and validate a policy file (conditions checked against the default society)."""
    data, positions = read_yaml(path)
    policy = validate(PolicySpec, data, positions, str(path), what="policy")
    problems = [Problem(str(path), *locate(positions, p), dotted(p), msg)
                for p, msg in check_policy(policy)]
    if problems:
        raise UserError("invalid policy", problems)
    return policy


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Load a scenario file; ``policy`` may be inline or the name of a policy preset.

    Raises:
        UserError: with every problem found, each with file:line:col and key path.
    """
    data, positions = read_yaml(path)
    return scenario_from_data(data, positions, str(path))


def load_preset(name: str) -> ScenarioSpec:
    """Load a packaged scenario preset by name."""
    path = preset_path(name)
    if not re.fullmatch(r"[A-Za-z0-9_]+", name) or not path.exists():
        raise UserError(f"unknown preset {name!r}; presets are: {', '.join(preset_names())}")
    return load_scenario(path)


def scenario_from_data(data: Any, positions: Positions, file: str) -> ScenarioSpec:
    """Validate already-parsed scenario data (see :func:`load_scenario`)."""
    if isinstance(data, dict) and isinstance(data.get("policy"), str):
        name = data["policy"]
        ppath = policy_preset_path(name)
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or not ppath.exists():
            line, col = locate(positions, ("policy",))
            raise UserError("invalid scenario", [Problem(
                file, line, col, "policy",
                f"unknown policy preset {name!r}; presets are {policy_preset_names()}")])
        pdata, _ = read_yaml(ppath)
        data = {**data, "policy": pdata}
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and "schema_version" in data and (type(version) is not int
                                                                 or version != SCHEMA_VERSION):
        line, col = locate(positions, ("schema_version",))
        raise UserError("invalid scenario", [Problem(
            file, line, col, "schema_version",
            f"this panopticon reads schema_version {SCHEMA_VERSION}; "
            f"got {data['schema_version']!r}")])
    if not isinstance(data, dict):
        return validate(ScenarioSpec, data, positions, file)  # raises: not a mapping
    try:
        spec: ScenarioSpec | None = ScenarioSpec.model_validate(data)
        problems = []
    except ValidationError as exc:
        spec = None
        problems = problems_from(exc, data, positions, file)
    for path, message in _check_references(spec or _valid_sections(data)):
        line, col = locate(positions, path)
        problems.append(Problem(file, line, col, dotted(path), message))
    if problems:
        raise UserError("invalid scenario", problems)
    assert spec is not None
    return spec
