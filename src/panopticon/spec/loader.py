"""Loading specifications: the scenario document (:class:`ScenarioSpec`, its schema version
and the operations that re-validate it), scenario and policy files, packaged presets, a policy
given by name or by reference (``use``/``set``), and ``--set``-style assignments. Each load
parses (:mod:`panopticon.spec.files`), validates the models, runs the checks
(:mod:`panopticon.spec.checks`) and reports every problem at once with file, line, column and
key path.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
)

from panopticon.catalogue import (
    Catalogue,
    CatalogueSpec,
    catalogue_of,
)
from panopticon.errors import Problem, UserError
from panopticon.spec.checks import Problem as Found
from panopticon.spec.checks import _check_references, check_limits, check_policy, one_of
from panopticon.spec.files import (
    Positions,
    capped,
    check_kind,
    did_you_mean,
    dotted,
    locate,
    problems_from,
    read_yaml,
    validate,
)
from panopticon.spec.policy import PolicySpec
from panopticon.spec.scenario import (
    BehaviourSpec,
    GovernanceSpec,
    OpportunitySpec,
    RunSpec,
    SocietySpec,
    SourceSpec,
    canonical_digest,
)
from panopticon.spec.types import (
    Strict,
)

SCHEMA_VERSION = 1


class ScenarioSpec(Strict):
    """Everything one run needs."""

    schema_version: Literal[1]
    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    run: RunSpec = RunSpec()
    society: SocietySpec = SocietySpec()
    behaviour: BehaviourSpec = BehaviourSpec()
    sensors: dict[str, SourceSpec] = {}
    opportunities: dict[str, OpportunitySpec] = {}
    governance: GovernanceSpec = GovernanceSpec()
    catalogue: CatalogueSpec = CatalogueSpec()
    """The scenario's own event types, data sources, sanctions, perks and opportunities,
    added to the packaged catalogue (docs/scenarios.md#catalogue)."""
    policy: PolicySpec

    @property
    def library(self) -> Catalogue:
        """The catalogue this scenario sees: the packaged entries, then its own."""
        return catalogue_of(self)

    def with_run(self, **changes: Any) -> ScenarioSpec:
        """A copy with run settings changed (validated), e.g. ``with_run(citizens=1000)``."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        try:
            run = RunSpec.model_validate({**self.run.model_dump(), **changes})
        except ValidationError as exc:
            raise UserError("invalid run settings", problems_from(
                exc, {**self.run.model_dump(), **changes}, {}, "<command line>",
                model=RunSpec)) from None
        spec = self.model_copy(update={"run": run})
        if (run.citizens, run.seed) != (self.run.citizens, self.run.seed):
            # the largest drawn rates depend on who is drawn: check them as loading does
            problems = placed(check_limits(spec), {}, "<command line>")
            if problems:
                raise UserError(f"invalid run settings for {self.name} (run.citizens="
                                f"{run.citizens}, run.seed={run.seed})", capped(problems))
        return spec

    def set(self, key: str, value: Any) -> ScenarioSpec:
        """A copy with one setting changed by its dotted key, as written in YAML (list items
        by index), e.g. ``set("sensors.cameras.misattribution", 0.02)`` or
        ``set("policy.association.0.weight", 0.3)``; validated with exactly the checks a
        scenario file gets (names, limits), so a typo is an error, never ignored.

        Raises:
            UserError: no such key (with the keys known there), or an invalid value.
        """
        data = self.model_dump(mode="json")
        assign(data, key, value)
        return scenario_from_data(data, {}, f"<set {key}>")

    def canonical_json(self) -> str:
        """The scenario as sorted JSON: what is hashed and stored with every run."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical scenario: run settings included, except those that
        change how a run is written, never what it computes (:data:`WRITING_ONLY`: runs that
        differ only there have one digest and one fingerprint). Keys at their default are
        left out, so a key added in a later version (whose default keeps what runs did
        before) changes no scenario's digest, and writing a default out changes nothing."""
        return canonical_digest(self.model_dump(mode="json", exclude_defaults=True))

    def active_events(self) -> list[str]:
        """Event types that happen (have a rate) or can be observed, in catalogue order
        (the packaged entries, then the scenario's own). The scenario's own event types are
        always active, so that any condition may count them."""
        library = self.library
        used = set(self.behaviour.events) | library.own["events"]
        for src in self.sensors.values():
            used |= set(src.events) | set(src.phantom_events or ())
        used |= {r.event for r in self.policy.rules}
        for lst in self.policy.lists:
            used |= set(lst.enter_on) | set(lst.leave_on)
        if self.policy.peer_rating is not None:
            used |= set(self.policy.peer_rating.incident_events)
        for r in self.behaviour.responses:
            used |= set(r.events)
        for o in self.opportunities.values():
            if o.loan is not None:
                used |= {o.loan.repaid_event, o.loan.default_event}
        return [e for e in library.events if e in used]


# ---------------------------------------------------------------- loading
@dataclass(frozen=True)
class _Sections:
    """The scenario's sections that validated on their own (None where a section is invalid),
    so that name checks can run even when another part of the file has errors."""

    society: SocietySpec | None
    behaviour: BehaviourSpec | None
    sensors: dict[str, SourceSpec] | None
    opportunities: dict[str, OpportunitySpec] | None
    governance: GovernanceSpec | None
    policy: PolicySpec | None
    catalogue: CatalogueSpec | None = None


_SECTION_MODELS: dict[str, Any] = {
    "society": TypeAdapter(SocietySpec), "behaviour": TypeAdapter(BehaviourSpec),
    "sensors": TypeAdapter(dict[str, SourceSpec]),
    "opportunities": TypeAdapter(dict[str, OpportunitySpec]),
    "governance": TypeAdapter(GovernanceSpec), "policy": TypeAdapter(PolicySpec),
    "catalogue": TypeAdapter(CatalogueSpec)}


def _valid_sections(data: dict) -> _Sections:
    found = {}
    for name, adapter in _SECTION_MODELS.items():
        try:
            found[name] = adapter.validate_python(data[name]) if name in data else (
                None if name == "policy" else adapter.validate_python({}))
        except ValidationError:
            found[name] = None
    return _Sections(**found)


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


def placed(found: list[Found], positions: Positions, file: str) -> list[Problem]:
    """What the checks found, as problems of ``file`` at the line and column of each key
    path (0 where the file has no position, e.g. the command line), each message in the one
    style of :class:`panopticon.spec.checks.Problem`."""
    return [Problem(file, *locate(positions, f.path), f.key, f.message) for f in found]


def load_policy(path: str | Path) -> PolicySpec:
    """Load and validate a policy file (conditions checked against the default society)."""
    data, positions = read_yaml(path)
    policy = validate(PolicySpec, data, positions, str(path), what="policy")
    problems = placed(check_policy(policy), positions, str(path))
    if problems:
        raise UserError("invalid policy", capped(problems))
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
        raise UserError(f"unknown preset {name!r}{did_you_mean(name, preset_names())}; "
                        f"presets are: {', '.join(preset_names())}")
    return load_scenario(path)


def assign(data: dict, key: str, value: Any, prefix: str = "", what: str = "scenario") -> None:
    """Set ``data[a][b]...`` for ``key`` = ``a.b...`` (list indices as numbers); the parents
    must exist, the leaf may be new (the validator then says whether it is allowed).
    ``prefix`` starts each message (e.g. ``"--set "`` for a command-line option); ``what``
    names what ``data`` is in them (``"policy"`` for a scenario's ``policy.set``)."""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        path = ".".join(parts[:depth + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, key, prefix)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict):
            hint = difflib.get_close_matches(part, list(map(str, node)), n=1)
            raise UserError(f"{prefix}{key}: the {what} has no {path!r}"
                            + (f"; did you mean {hint[0]!r}?" if hint else "")
                            + f" (known here: {', '.join(sorted(map(str, node))) or 'nothing'})")
        else:
            raise UserError(f"{prefix}{key}: {path} is not a mapping or a list")
    leaf = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, leaf, key, prefix)] = value
    elif isinstance(node, dict):
        node[leaf] = value
    else:
        raise UserError(f"{prefix}{key}: {'.'.join(parts[:-1])} is not a mapping or a list")


def _list_index(node: list, part: str, key: str, prefix: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise UserError(f"{prefix}{key}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


REFERENCE_KEYS = ("use", "set")
"""The keys of a policy given by reference: ``policy: {use: NAME_OR_PATH, set: {...}}``."""


def _is_policy_path(text: str) -> bool:
    """Whether ``use:`` names a file (has a folder separator or a YAML suffix), not a preset."""
    return "/" in text or "\\" in text or text.endswith((".yaml", ".yml"))


def _unknown_policy_preset(at: tuple, name: Any) -> Found:
    """A policy named by a preset that is not packaged, with the closest preset names."""
    return Found(at, one_of("a policy preset", policy_preset_names())
                 + " (a policy file is named by a path ending in .yaml)", name,
                 tuple(policy_preset_names()))


def _used_policy(use: Any, at: tuple, positions: Positions, file: str
                 ) -> tuple[Any, Positions, str]:
    """The policy ``use`` names, as (data, positions in its file, its file), or a UserError at
    ``at`` in the scenario: a preset name (the packaged folder) or a YAML file path (relative
    to the scenario file's folder)."""

    def refuse(rule: str) -> UserError:
        return UserError("invalid scenario", placed([Found(at, rule, use)], positions, file))

    if not isinstance(use, str) or not use.strip():
        raise refuse("a policy preset name or a policy file path (text), e.g. "
                     "use: rongcheng_points or use: my_policy.yaml")
    if not _is_policy_path(use):
        ppath = policy_preset_path(use)
        if not re.fullmatch(r"[A-Za-z0-9_]+", use) or not ppath.exists():
            raise UserError("invalid scenario",
                            placed([_unknown_policy_preset(at, use)], positions, file))
    else:
        if file.startswith("<"):
            raise refuse("a policy preset name: a policy file path needs a scenario read "
                         f"from a file (this one was not: {file}); or paste the policy")
        ppath = Path(use).expanduser()
        if not ppath.is_absolute():
            ppath = Path(os.path.normpath(Path(file).parent / ppath))
        if not ppath.is_file():
            raise refuse(f"an existing policy file (no such policy file {str(ppath)!r}; a "
                         "relative path is read from the scenario file's folder)")
    pfile = str(ppath)
    pdata, ppositions = read_yaml(ppath)
    check_kind(PolicySpec, pdata, ppositions, pfile, what="policy")
    if any(k in pdata for k in ("schema_version", *REFERENCE_KEYS)):
        what = "a scenario" if "schema_version" in pdata else "a policy given by reference"
        raise refuse(f"a policy file: the policy mapping on its own (name, rules, tiers, "
                     f"...), as in src/panopticon/policy/presets/; {pfile} is {what}")
    return pdata, ppositions, pfile


def _set_path(data: Any, key: str) -> tuple:
    """``rules.0.points`` as the key path it set in ``data`` (list indices as numbers)."""
    out: list = []
    node = data
    for part in key.split("."):
        step: str | int = int(part) if isinstance(node, list) else part
        out.append(step)
        node = node[step] if isinstance(node, list | dict) and (
            isinstance(node, dict) and step in node or isinstance(node, list)) else None
    return tuple(out)


def resolve_policy(data: Any, positions: Positions, file: str
                   ) -> tuple[Any, Positions, dict[str, str]]:
    """The scenario data with its policy written out in full, when it is given by name
    (``policy: NAME``) or by reference (``policy: {use: NAME_OR_PATH, set: {KEY: VALUE}}``).

    ``set`` keys are dotted paths into the used policy, with the rules of the command line's
    ``--set`` (:func:`assign`): list items by index (``rules.0.points``), each value replaces
    what is there. Returns (data, positions, origins): positions of the resolved policy's keys
    point at the scenario's ``set`` entry that wrote them, or else at ``policy.use`` (or
    ``policy``); ``origins`` gives, by dotted key path, where in the used policy file a key not
    overridden was written (``file:line``), for messages.

    Raises:
        UserError: each problem at the scenario's line and key (unknown preset with "did you
            mean", missing file, a ``set`` key the policy does not have).
    """
    if not isinstance(data, dict):
        return data, positions, {}
    policy = data.get("policy")
    if isinstance(policy, str):
        name = policy
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or not policy_preset_path(name).exists():
            raise UserError("invalid scenario", placed(
                [_unknown_policy_preset(("policy",), name)], positions, file))
        pdata, ppositions = read_yaml(policy_preset_path(name))
        return {**data, "policy": pdata}, positions, _origins(
            ppositions, str(policy_preset_path(name)), ())
    if not isinstance(policy, dict) or not (set(policy) & set(REFERENCE_KEYS) or (
            policy and not set(policy) & set(PolicySpec.model_fields)
            and any(did_you_mean(str(k), REFERENCE_KEYS) for k in policy))):
        return data, positions, {}
    found = [Found(("policy", key), "use or set: a policy given by reference takes only use "
                                     "(a preset name or a policy file) and set (dotted keys to "
                                     "change)", key, REFERENCE_KEYS)
             for key in policy if key not in REFERENCE_KEYS]
    if "use" not in policy:
        found.append(Found(("policy",), "a use key ('use' is missing): use: NAME_OR_PATH names "
                                        "the policy that set changes", list(policy)))
    changes = policy.get("set")
    if changes is None:
        changes = {}
    if not isinstance(changes, dict):
        found.append(Found(("policy", "set"), "a mapping of dotted policy keys to values, e.g. "
                                              "{rules.0.points: -50, score.start: 900}", changes))
    problems = placed(found, positions, file)
    try:
        pdata, ppositions, pfile = _used_policy(policy.get("use"), ("policy", "use"),
                                                positions, file) if "use" in policy else \
            (None, {}, "")
    except UserError as exc:
        if not problems or any(p.file != file for p in exc.problems):
            raise
        raise UserError("invalid scenario", capped(problems + exc.problems)) from None
    if problems:
        raise UserError("invalid scenario", capped(problems))
    try:  # with every default written out, so that set reaches keys the file leaves out
        pdata = PolicySpec.model_validate(pdata).model_dump(mode="json")
    except ValidationError:  # reported with the rest of the scenario, after set
        pdata = copy.deepcopy(pdata)
    set_paths = []
    for key, value in changes.items():
        at = ("policy", "set", key)
        try:
            if key.startswith("policy."):
                raise UserError(f"{key}: keys under policy.set are relative to the policy: "
                                f"write {key.removeprefix('policy.')!r}")
            assign(pdata, key, copy.deepcopy(value), what="policy")
        except UserError as exc:
            line, col = locate(positions, at)
            problems.append(Problem(file, line, col, dotted(at),
                                    str(exc).removeprefix(f"{key}: ")))
            continue
        set_paths.append((_set_path(pdata, key), key))
    if problems:
        raise UserError("invalid scenario", capped(problems))
    # positions: the scenario's, then the used policy's keys at `use`, then what `set` wrote
    use_at = locate(positions, ("policy", "use"))
    out = {k: v for k, v in positions.items() if k[:1] != ("policy",) or k == ("policy",)}
    written = [path for path, _ in set_paths]
    for p in ppositions:
        if not any(p[:len(w)] == w for w in written):
            out[("policy", *p)] = use_at
    for path, key in reversed(set_paths):  # a key and what holds it: at the first set entry
        at = ("policy", "set", key)
        for n in range(1, len(path)):
            out[("policy", *path[:n])] = positions.get(at, use_at)
    for path, key in set_paths:
        at = ("policy", "set", key)
        for k, v in positions.items():
            if k[:3] == at:
                out[("policy", *path, *k[3:])] = v
    return {**data, "policy": pdata}, out, _origins(ppositions, pfile, tuple(written))


def _origins(ppositions: Positions, pfile: str, written: tuple) -> dict[str, str]:
    """``policy.<key>`` -> ``file:line`` of each key of a used policy that ``set`` left alone;
    ``""`` for the keys ``set`` wrote and those that hold them (the scenario is their origin)."""
    out = {dotted(("policy", *p)): f"{pfile}:{line}" for p, (line, _) in ppositions.items()
           if p and not any(p[:len(w)] == w for w in written)}
    for w in written:
        out.update({dotted(("policy", *w[:n])): "" for n in range(1, len(w) + 1)})
    return out


def _with_origin(problem: Problem, origins: dict[str, str], file: str) -> Problem:
    """A problem at a key of a used policy that ``set`` did not write, saying where that
    policy wrote it."""
    if problem.file != file or not problem.path.startswith("policy"):
        return problem
    path = problem.path
    while path and path not in origins:
        path = path[:max(path.rfind("."), path.rfind("["), 0)]
    if not path or not origins[path]:
        return problem
    return replace(problem, message=f"{problem.message} (in the used policy: {origins[path]})")


def scenario_from_data(data: Any, positions: Positions, file: str) -> ScenarioSpec:
    """Validate already-parsed scenario data (see :func:`load_scenario`); a policy given by
    name or by reference (``use``/``set``) is resolved first (:func:`resolve_policy`). A
    policy that cannot be resolved (a misspelled preset, say) is reported together with
    every other problem of the file, which is checked without it."""
    try:
        data, positions, origins = resolve_policy(data, positions, file)
        unresolved: list[Problem] = []
    except UserError as exc:
        if not exc.problems or any(p.file != file for p in exc.problems):
            raise  # the used policy file itself is broken: that error names its own file
        unresolved, origins = exc.problems, {}
        data = {k: v for k, v in data.items() if k != "policy"}
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and "schema_version" in data and (type(version) is not int
                                                                 or version != SCHEMA_VERSION):
        raise UserError("invalid scenario", [*unresolved, *placed([Found(
            ("schema_version",), f"{SCHEMA_VERSION}, the schema_version this panopticon reads",
            version)], positions, file)])
    check_kind(ScenarioSpec, data, positions, file)
    try:
        spec: ScenarioSpec | None = ScenarioSpec.model_validate(data)
        problems = []
    except ValidationError as exc:
        spec = None
        problems = [p for p in problems_from(exc, data, positions, file, model=ScenarioSpec)
                    if not (unresolved and p.path == "policy")]  # missing: it was taken out
    problems = [*unresolved, *problems]
    found = _check_references(spec or _valid_sections(data))
    if spec is not None and not problems and not found:
        found = check_limits(spec)  # needs every name resolved
    problems += placed(found, positions, file)
    if problems:
        raise UserError("invalid scenario",
                        capped([_with_origin(p, origins, file) for p in problems]))
    assert spec is not None
    return spec
