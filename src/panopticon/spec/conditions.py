"""The vocabulary of conditions (the columns and functions they may name) and compiling every
condition of a policy against it, with the key path of the first that does not compile.

Used both when a scenario is checked (:mod:`panopticon.spec.checks`) and when a run binds a
policy to its population (:mod:`panopticon.policy.runtime`, which re-exports these names);
it imports nothing from the runtime.
"""

from __future__ import annotations

from panopticon.catalogue import EVENTS_BY_NAME
from panopticon.policy.conditions import Column, Condition, ConditionError, Function, compile_condition
from panopticon.spec.policy import PolicySpec

STATIC_NUMBERS = ("age", "income", "rank", "children")
STATIC_CATEGORIES = ("sex", "region", "group", "residency", "occupation")
FUNCTIONS = {
    "listed": Function(("list",), "bool"),
    "days_listed": Function(("list",), "number"),
    "days_since": Function(("event",), "number"),
    "count": Function(("event", "number"), "number"),
    "abroad": Function((), "bool"),
    "ties_mean": Function(("layer",), "number"),
}


class PolicyError(ValueError):
    """A condition in a policy that does not compile; ``path`` is its key path."""

    def __init__(self, path: str, error: ConditionError):
        self.path, self.error = path, error
        super().__init__(f"{path}: {error}")


def condition_columns(labels: dict[str, tuple[str, ...]], tiers: list[str],
                      traits: tuple[str, ...] = ()) -> dict[str, Column]:
    """The columns conditions may name, for a population with these category labels."""
    cols = {name: Column("number") for name in (*STATIC_NUMBERS, *traits, "score")}
    for name in STATIC_CATEGORIES:
        cols[name] = Column("category", tuple(labels[name]))
    if "origin" in labels:  # a society with visitors (residents' origin: "home")
        cols["origin"] = Column("category", tuple(labels["origin"]))
    cols["tier"] = Column("category", tuple(tiers))
    return cols


def compile_policy_conditions(policy: PolicySpec, events: list[str],
                              labels: dict[str, tuple[str, ...]], traits: tuple[str, ...] = (),
                              extra: dict[str, tuple[str, str, bool]] | None = None,
                              only_extra: bool = False) -> dict[str, Condition]:
    """Every condition of a policy, compiled, by key path (e.g. ``rules[2].where``).

    ``extra`` adds the scenario's own conditions (who tries an opportunity, when citizens
    respond), by key path: (text, "bool" or "number", fixed attributes only); with
    ``only_extra`` the policy's own are skipped.

    Raises:
        PolicyError: for the first condition that does not compile, naming its key path.
    """
    columns = condition_columns(labels, policy.tier_names, traits)
    static = {k: v for k, v in columns.items() if k != "score" and k != "tier"}
    # any catalogue event may be named: one this run never observes just counts nothing;
    # ``events`` adds a scenario's own (which are always among a run's events)
    names = {"event": list(dict.fromkeys([*EVENTS_BY_NAME, *events])), "list": [x.name for x in policy.lists],
             "tier": policy.tier_names, "layer": ["family", "friends", "work", "partner"]}
    found: dict[str, Condition] = {}

    def add(path: str, text: str | None, expect: str = "bool", only_static: bool = False) -> None:
        if text is None:
            return
        try:
            found[path] = cond = compile_condition(text, static if only_static else columns,
                                                   {} if only_static else FUNCTIONS, names, expect)
        except ConditionError as exc:
            raise PolicyError(path, exc) from None
        for name, args in cond.calls:
            if name == "count" and (args[1] < 1 or args[1] != int(args[1]) or args[1] > 36_500):
                raise PolicyError(path, ConditionError(
                    text, 0, f"count({args[0]!r}, {args[1]}) needs a whole number of days, 1-36500"))

    if isinstance(policy.score.start, str) and not only_extra:
        add("score.start", policy.score.start, "number", only_static=True)
    if not only_extra:
        add("score.formula", policy.score.formula, "number")
        if policy.peer_rating is not None:
            add("peer_rating.opinion", policy.peer_rating.opinion, "number")
        add("scope.exempt", policy.scope.exempt, only_static=True)
        for r, rule in enumerate(policy.rules):
            add(f"rules[{r}].where", rule.where)
        for k, lst in enumerate(policy.lists):
            add(f"lists[{k}].enter_when", lst.enter_when)
            add(f"lists[{k}].leave_when", lst.leave_when)
        for k, c in enumerate(policy.sanctions):
            add(f"sanctions[{k}].when", c.when)
    for path, (text, expect, only_static) in (extra or {}).items():
        add(path, text, expect, only_static)
    return found
