"""What each headline number of :func:`panopticon.metrics.run.summary` means, in plain words,
and its scope: ``whole run`` (counted or judged over every day) or ``final state`` (the
standing at the end of the last day, or the last survey day).

Used to title sweep charts and to check the metric names a user asks for
(``panopticon sweep --metric``, ``panopticon compare SWEEP --metric``).
"""

from __future__ import annotations

import difflib
from typing import Any

from panopticon.errors import UserError

WHOLE_RUN = "whole run"
FINAL_STATE = "final state"

#: name -> (plain-language description, scope), for the keys whose name is fixed.
METRICS: dict[str, tuple[str, str]] = {
    "mean_score": ("Mean score", FINAL_STATE),
    "median_score": ("Median score", FINAL_STATE),
    "gini": ("Inequality of the final scores (Gini, 0 = all equal)", FINAL_STATE),
    "mobility_up": ("Share of citizens who ended in a higher tier than they started in",
                    WHOLE_RUN),
    "mobility_down": ("Share of citizens who ended in a lower tier than they started in",
                      WHOLE_RUN),
    "mobility_stayed": ("Share of citizens who ended in the tier they started in", WHOLE_RUN),
    "false_observations": ("Observations naming someone for an act they did not commit",
                           WHOLE_RUN),
    "observations": ("Observations recorded (true and false)", WHOLE_RUN),
    "false_observation_share": ("Share of the observations that were false", WHOLE_RUN),
    "citizens_ever_false": ("Citizens ever named by a false observation", FINAL_STATE),
    "share_ever_false": ("Share of citizens ever named by a false observation", FINAL_STATE),
    "citizens_false_standing": ("Citizens whose score differs because of false observations",
                                FINAL_STATE),
    "citizens_wrongly_sanctioned": ("Citizens under a sanction their true record would not "
                                    "have brought", FINAL_STATE),
    "citizens_wrongly_sanctioned_max": ("Most citizens wrongly sanctioned on any one day",
                                        WHOLE_RUN),
    "share_wrongly_sanctioned": ("Share of citizens under a sanction their true record would "
                                 "not have brought", FINAL_STATE),
    "attempts": ("Attempts at opportunities (loans, travel, jobs, ...)", WHOLE_RUN),
    "refusals": ("Attempts refused", WHOLE_RUN),
    "refusal_rate": ("Share of attempts refused", WHOLE_RUN),
    "wrongful_refusals": ("Refusals the citizen's true record would not have brought",
                          WHOLE_RUN),
    "wrongful_refusal_share": ("Share of refusals that were wrongful", WHOLE_RUN),
    "evaded": ("Refusals got round (touts, insiders)", WHOLE_RUN),
    "worst_four_fifths": ("Lowest impact ratio between groups of citizens (below 0.8 fails the "
                          "four-fifths rule)", WHOLE_RUN),
    "four_fifths_below": ("Comparisons between groups of citizens below the four-fifths line",
                          WHOLE_RUN),
    "four_fifths_flags": ("Comparisons flagged by the four-fifths rule (whole interval below "
                          "0.8)", WHOLE_RUN),
    "max_refused_ratio": ("Highest ratio of a group's refusal rate to the least refused "
                          "group's", WHOLE_RUN),
    "max_wrongful_ratio": ("Highest ratio of a group's wrongful-refusal rate to the least "
                           "affected group's", WHOLE_RUN),
    "max_sanctioned_ratio": ("Highest ratio of a group's rate of refusals under a sanction to "
                             "the least affected group's", WHOLE_RUN),
    "max_false_ratio": ("Highest ratio of a group's rate of being falsely named to the least "
                        "affected group's", WHOLE_RUN),
    "appeals_filed": ("Appeals filed", WHOLE_RUN),
    "appeals_upheld": ("Appeals upheld", WHOLE_RUN),
    "appeals_rejected": ("Appeals rejected", WHOLE_RUN),
    "appeals_decided": ("Appeals decided", WHOLE_RUN),
    "appeals_upheld_share": ("Share of decided appeals that were upheld", WHOLE_RUN),
    "appeals_backlog": ("Appeals still waiting for a decision", FINAL_STATE),
    "appeals_mean_wait": ("Mean wait for an appeal's decision (days)", WHOLE_RUN),
    "citizen_days_wrongly_sanctioned": ("Days citizens spent under a sanction their true "
                                        "record would not have brought (summed over days)",
                                        WHOLE_RUN),
    "review_entered": ("Cases queued for review before a sanction", WHOLE_RUN),
    "review_confirmed": ("Reviewed cases confirmed (their sanctions then apply)", WHOLE_RUN),
    "review_dismissed": ("Reviewed cases dismissed", WHOLE_RUN),
    "review_false_caught": ("False entries or falls dismissed by a reviewer", WHOLE_RUN),
    "review_true_dismissed": ("True entries or falls wrongly dismissed by a reviewer",
                              WHOLE_RUN),
    "review_false_confirmed": ("False entries or falls a reviewer confirmed", WHOLE_RUN),
    "review_backlog": ("Cases still waiting for a reviewer", FINAL_STATE),
    "review_mean_wait": ("Mean wait for a review's decision (days)", WHOLE_RUN),
}

#: (prefix, description with {} for what follows the prefix, scope, what follows, in words).
FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    ("share_", "Share of citizens in tier {}", FINAL_STATE, "tier"),
    ("behaviour_change_", "Change in {} since the start (expected / baseline - 1)",
     FINAL_STATE, "event"),
    ("tier_assortativity_", "How much {} ties stay within a tier (assortativity, 1 = only "
                            "within)", FINAL_STATE, "layer"),
    ("mean_degree_", "Mean {} ties per citizen", FINAL_STATE, "layer"),
    ("fragmentation_", "Share of citizens outside the largest {} network", FINAL_STATE,
     "layer"),
    ("manipulations_", "Insider manipulations: {} actions", WHOLE_RUN, "attack"),
)

#: tie layers of the network table.
LAYERS = ("family", "partner", "friends", "work")

#: what ``panopticon sweep`` prints when no ``--metric`` is given (those a run has).
DEFAULT_SHOWN = ("mean_score", "gini", "share_wrongly_sanctioned", "wrongful_refusals",
                 "refusals", "false_observations")


def describe(name: str) -> tuple[str, str]:
    """``(description, scope)`` of a summary key; an unknown key is described by its name
    (scope ``""``)."""
    if name in METRICS:
        return METRICS[name]
    for prefix, text, scope, _ in FAMILIES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return text.format(name[len(prefix):].replace("_", " ")), scope
    return name.replace("_", " ").capitalize(), ""


def metric_names(spec: Any = None) -> list[str]:
    """Every summary key a run of ``spec`` can have (tiers, events from the scenario); without
    a scenario the families are written with a placeholder (``share_<tier>``)."""
    names = list(METRICS)
    if spec is None:
        return names + [f"{prefix}<{what}>" for prefix, _, _, what in FAMILIES]
    from panopticon.governance import ATTACKS

    values = {"tier": list(spec.policy.tier_names), "event": list(spec.active_events()),
              "layer": list(LAYERS), "attack": list(ATTACKS)}
    for prefix, _, _, what in FAMILIES:
        names += [f"{prefix}{v}" for v in values[what]]
    return list(dict.fromkeys(names))


def check_names(wanted: list[str], available: list[str], where: str = "") -> list[str]:
    """``wanted`` (commas split, duplicates dropped) once each is in ``available``.

    Raises:
        UserError: an unknown name, with the closest names and every available one.
    """
    names: list[str] = []
    for item in wanted:
        names += [n.strip() for n in str(item).split(",") if n.strip()]
    if not names:
        raise UserError("--metric: give a metric name, e.g. --metric mean_score")
    for name in names:
        if name not in available:
            close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UserError(f"--metric {name}: no such metric{where}{hint}\n"
                            f"available: {', '.join(available)}")
    return list(dict.fromkeys(names))
