"""The knobs of the Explore page, generated from a scenario, and how their values make a new
scenario. Pure functions: no Streamlit here, so that tests hold them without a browser.

A knob sets one dotted scenario key (as ``panopticon sweep --set`` takes them, e.g.
``sensors.cameras.misattribution``), except a few that say what a reader means in words and
write a key in their own way (their key starts with ``~``): whether there is an appeals
process, who is exempt, how foreigners are treated, whether friends' standing pulls a score.
:func:`apply` turns the values into a validated scenario (exactly the checks a scenario file
gets) and the settings that differ from the scenario, which the run records in its manifest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from panopticon.errors import UserError
from panopticon.scenario import ScenarioSpec, scenario_from_data

CITIZEN_CAP = 100_000
"""The most citizens an interactive run may have here (the command line runs any size)."""
DEFAULT_CITIZENS = 20_000
"""Citizens of an interactive run unless the scenario has fewer or the reader moves it."""
DAYS_CAP = 3650

APPEALS = "~appeals"
EXEMPT = "~exempt"
FOREIGNERS = "~foreigners"
ASSOCIATION = "~association"

#: who the system never scores or lists: condition -> words (None: nobody)
EXEMPTIONS: dict[str | None, str] = {
    None: "nobody",
    "age < 18": "children (under 18)",
    "rank >= 3": "officials of rank 3 and up",
    "age < 18 or rank >= 3": "children, and officials of rank 3 and up",
}
FOREIGNER_TREATMENT = {"scored": "scored like citizens",
                       "exempt": "exempt: never scored, listed or denied"}
FOREIGNERS_EXEMPT = 'residency != "citizen"'
ABROAD_MODES = {"as_home": "scored as at home (only false observations and ties reach them)",
                "freeze": "frozen: their standing never changes",
                "decay": "their score drifts back to the start score",
                "penalty": "they lose points for missing data"}


@dataclass(frozen=True)
class Knob:
    """One control of the Explore page.

    Attributes:
        key: the dotted scenario key it sets, or a ``~`` name (see the module).
        label: what it is, in words. section: where it is shown (``run``, ``sensors: NAME``,
            ``policy``, ``governance``, ``society``).
        kind: ``int``, ``float`` (a slider from ``low`` to ``high`` by ``step``), ``number``
            (a number box; ``low`` to ``high``), ``bool`` or ``select`` (``options``: value ->
            words).
        value: the scenario's own value (the knob's start).
    """

    key: str
    label: str
    section: str
    kind: str
    value: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    options: dict[Any, str] = field(default_factory=dict)
    help: str = ""


def _up(value: float, floor: float) -> float:
    """A slider's top: ``floor``, or a round number above ``value`` (never hiding it)."""
    if value <= floor:
        return floor
    power = 10 ** math.floor(math.log10(value))
    return math.ceil(value * 2 / power) * power


def _exempt_parts(expr: str | None) -> tuple[str | None, bool]:
    """The scenario's exemption as (the part the exemption knob shows, foreigners exempt)."""
    if expr is None:
        return None, False
    text = expr.strip()
    for tail in (f" or {FOREIGNERS_EXEMPT}", f"{FOREIGNERS_EXEMPT} or "):
        if tail in text:
            rest = text.replace(tail, "").strip()
            return (rest or None), True
    if text == FOREIGNERS_EXEMPT:
        return None, True
    return text, False


def knobs_for(spec: ScenarioSpec) -> list[Knob]:
    """The knobs that matter for the reader's questions, from what the scenario has: run size,
    length and seed; each sensor's errors (false matches, phantoms) and whom false matches
    fall on (multipliers by group and sex); association; deterrence; appeals; exemptions;
    citizens abroad; foreigners."""
    out = [
        Knob("run.citizens", "citizens", "run", "int", min(spec.run.citizens, DEFAULT_CITIZENS),
             500, CITIZEN_CAP, 500,
             help=f"at most {CITIZEN_CAP:,} here; `panopticon run --citizens N` runs any size"),
        Knob("run.days", "days", "run", "int", min(spec.run.days, DAYS_CAP), 1, DAYS_CAP, 1),
        Knob("run.seed", "seed", "run", "number", spec.run.seed, 0, 2**53 - 1, 1,
             help="the same scenario and seed give the same run, bit for bit"),
    ]
    groups = list(spec.society.group.labels())
    for name, src in spec.sensors.items():
        section = f"sensors: {name}"
        out.append(Knob(f"sensors.{name}.misattribution", "false matches (share of detections "
                        "pinned on the wrong citizen)", section, "float", src.misattribution,
                        0.0, _up(src.misattribution, 0.05), 0.0005))
        out.append(Knob(f"sensors.{name}.phantom_rate", "phantom records per citizen-day "
                        "(nobody did it)", section, "float", src.phantom_rate, 0.0,
                        _up(src.phantom_rate, 0.0001), 0.000001))
        for attr, values in (("group", groups), ("sex", ["female", "male"])):
            mine = src.false_match_multipliers.get(attr, {})
            for v in values:
                now = float(mine.get(v, 1.0))
                out.append(Knob(f"sensors.{name}.false_match_multipliers.{attr}.{v}",
                                f"errors fall on {attr} {v} × (1 = as on anyone)", section,
                                "float", now, 0.0, _up(now, 20.0), 0.5))
    family = spec.policy.family
    pulls = [(i, a) for i, a in enumerate(spec.policy.association) if a.listed is None]
    for i, a in pulls:
        out.append(Knob(f"policy.association.{i}.weight", f"pull toward {a.ties}' mean score "
                        f"(every {a.every_days} days)", "policy", "float", a.weight, 0.0, 1.0,
                        0.01))
    if not pulls and family != "list":
        out.append(Knob(ASSOCIATION, "pull toward friends' mean score (weekly; 0: none)",
                        "policy", "float", 0.0, 0.0, 1.0, 0.01))
    for i, d in enumerate(spec.behaviour.deterrence):
        out.append(Knob(f"behaviour.deterrence.{i}.factor", f"deterrence: tiers "
                        f"{', '.join(d.tiers)} multiply misconduct daily by", "policy", "float",
                        d.factor, 0.9, 1.0, 0.001,
                        help="1 = no deterrence; 0.995 halves a rate in about 140 days"))
    appeals = spec.governance.appeals
    out.append(Knob(APPEALS, "an appeals process", "governance", "bool", appeals is not None))
    out.append(Knob("governance.appeals.capacity", "appeals decided a day", "governance",
                    "int", appeals.capacity if appeals else 100, 0,
                    max(1000, appeals.capacity if appeals else 0), 1))
    exempt, foreigners = _exempt_parts(spec.policy.scope.exempt)
    options = dict(EXEMPTIONS)
    if exempt not in options:
        options = {exempt: f"as the scenario says: {exempt}", **options}
    out.append(Knob(EXEMPT, "exempt from the system", "policy", "select", exempt,
                    options=options))
    residencies = spec.society.residency.labels()
    if any(r != "citizen" for r in residencies):
        out.append(Knob(FOREIGNERS, "resident foreigners and tourists", "policy", "select",
                        "exempt" if foreigners else "scored", options=dict(FOREIGNER_TREATMENT)))
    out.append(Knob("society.abroad_share", "share of adult citizens living abroad", "society",
                    "float", spec.society.abroad_share, 0.0, _up(spec.society.abroad_share, 0.2),
                    0.005))
    abroad = spec.policy.scope.abroad
    out.append(Knob("policy.scope.abroad.mode", "citizens abroad are", "policy", "select",
                    abroad.mode, options=dict(ABROAD_MODES)))
    out.append(Knob("policy.scope.abroad.rate", "abroad, decay: share of the way back per step",
                    "policy", "float", abroad.rate, 0.0, 1.0, 0.01))
    out.append(Knob("policy.scope.abroad.points", "abroad, penalty: points lost per step",
                    "policy", "float", float(abroad.points), 0.0, _up(float(abroad.points), 50),
                    1.0))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)
        except (TypeError, ValueError):
            return False
    return a == b


def _put(data: dict, key: str, value: Any) -> None:
    """Set a dotted key in scenario data, making the mappings on the way (multipliers)."""
    parts = key.split(".")
    node: Any = data
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def _plain(value: Any) -> Any:
    """A widget's value as scenario data: numpy and whole floats of int knobs as Python."""
    if hasattr(value, "item"):
        value = value.item()
    return value


def apply(spec: ScenarioSpec, values: dict[str, Any], knobs: list[Knob] | None = None
          ) -> tuple[ScenarioSpec, dict[str, Any]]:
    """The scenario with the knobs' values (a knob not in ``values`` keeps its start).

    Returns:
        The new scenario, validated like a scenario file, and the settings that differ from
        ``spec`` (dotted key -> value, without run size, length and seed, which every run
        records anyway): what the run records in its manifest and the Runs page labels it by.

    Raises:
        UserError: a value the scenario refuses (the validator's message, naming the key).
    """
    knobs = knobs if knobs is not None else knobs_for(spec)
    by_key = {k.key: k for k in knobs}
    unknown = sorted(set(values) - set(by_key))
    if unknown:
        raise UserError(f"no such knob: {', '.join(unknown)}")

    def value(key: str) -> Any:
        k = by_key.get(key)
        v = _plain(values.get(key, k.value if k else None))
        if k is not None and k.kind in ("int", "number") and v is not None:
            if isinstance(v, float) and not v.is_integer():
                raise UserError(f"{k.label}: {v} is not a whole number")
            v = int(v)
        return v

    data = spec.model_dump(mode="json")
    settings: dict[str, Any] = {}
    for k in knobs:
        if k.key.startswith("~") or k.key.startswith("governance.appeals."):
            continue
        v = value(k.key)
        if k.key.startswith("run."):
            data["run"][k.key[4:]] = v
        elif not _same(v, k.value):
            _put(data, k.key, v)
            settings[k.key] = v
    if APPEALS in by_key:
        want, had = bool(value(APPEALS)), spec.governance.appeals is not None
        capacity = value("governance.appeals.capacity")
        if want and not had:
            data["governance"]["appeals"] = {"capacity": capacity}
            settings["governance.appeals.capacity"] = capacity
        elif had and not want:
            data["governance"]["appeals"] = None
            settings["governance.appeals"] = None
        elif want and capacity != spec.governance.appeals.capacity:
            data["governance"]["appeals"]["capacity"] = capacity
            settings["governance.appeals.capacity"] = capacity
    if ASSOCIATION in by_key:
        weight = float(value(ASSOCIATION))
        if weight > 0:
            data["policy"]["association"].append({"ties": "friends", "weight": weight,
                                                  "every_days": 7})
            settings["policy.association.friends.weight"] = weight
    if EXEMPT in by_key or FOREIGNERS in by_key:
        base, foreigners = _exempt_parts(spec.policy.scope.exempt)
        base = value(EXEMPT) if EXEMPT in by_key else base
        if FOREIGNERS in by_key:
            foreigners = value(FOREIGNERS) == "exempt"
        parts = [p for p in (base, FOREIGNERS_EXEMPT if foreigners else None) if p]
        expr = " or ".join(parts) or None
        if expr != spec.policy.scope.exempt:
            data["policy"]["scope"]["exempt"] = expr
            settings["policy.scope.exempt"] = expr
    try:
        return scenario_from_data(data, {}, "<dashboard>"), settings
    except UserError as exc:
        details = "; ".join(f"{p.path}: {p.message}" for p in exc.problems[:5])
        raise UserError(f"{exc.summary}: {details}" if details else exc.summary) from None


def to_yaml(spec: ScenarioSpec) -> str:
    """The scenario as a YAML file that ``panopticon run FILE`` runs to the same result
    (its digest is the scenario's)."""
    head = (f"# {spec.name}, as set on the panopticon dashboard.\n"
            "# `panopticon validate FILE` checks it; `panopticon run FILE` runs it again, with "
            "the same result.\n")
    return head + yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False,
                                 allow_unicode=True, width=100)


def from_yaml(text: str, name: str = "<yaml>") -> ScenarioSpec:
    """A scenario from YAML text (an uploaded file), checked like a scenario file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{name}: not readable YAML ({str(exc).splitlines()[0]})") from None
    return scenario_from_data(data, {}, name)
