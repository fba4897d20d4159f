"""The open catalogue (issue 14): a scenario's own event types, data sources, sanctions, perks
and opportunities, with the checks of the packaged ones, resolved per scenario (never a
global that one scenario changes for another). See docs/scenarios.md#catalogue.

The numbers are worked by hand from the scenario below: 4,000 citizens for 100 days, a
``gym_session`` of the scenario's own at its default 0.05 a day (citizens 16 and over), seen
by a source of its own with coverage 0.5 and detection 0.8 (so 0.4 of the sessions), each
record worth +2 points.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import merge
from typer.testing import CliRunner

import panopticon as pc
from panopticon import engine
from panopticon.behaviour import initial_rates
from panopticon.catalogue import (
    EVENT_TYPES,
    EVENTS_BY_NAME,
    OPPORTUNITIES_BY_NAME,
    PACKAGED,
    SOURCES,
    catalogue_of,
)
from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.metrics.run import behaviour_change
from panopticon.scenario import load_scenario, scenario_from_data

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "open_catalogue.yaml"
runner = CliRunner()

DAYS, N = 100, 4000
GYM = {
    "schema_version": 1, "name": "gym", "run": {"citizens": N, "days": DAYS, "seed": 5},
    "catalogue": {
        "sources": {"fitness_app": {"description": "a fitness app"}},
        "events": {"gym_session": {"domain": "health", "source": "fitness_app",
                                   "rate_per_day": 0.05, "valence": "rewarded"}},
        "perks": {"healthy_discount": {}},
        "sanctions": {"gym_ban": {"description": "barred from public gyms"}},
        "opportunities": {"sports_pass": {"needs": ["healthy_discount"],
                                          "rate_per_day": 0.02}},
    },
    "behaviour": {"events": {"gym_session": {}}},
    "sensors": {"fitness_app": {"events": ["gym_session"], "coverage": 0.5, "detection": 0.8}},
    "opportunities": {"sports_pass": {}},
    "policy": {"name": "gym", "score": {"start": 100, "min": 0, "max": 100000},
               "rules": [{"event": "gym_session", "points": 2}],
               "tiers": [{"name": "all"}],
               "sanctions": [{"when": "score > 1000000", "grant": ["healthy_discount"]},
                             {"when": 'count("gym_session", 30) > 100', "deny": ["gym_ban"]}]},
}


def _load(data: dict) -> pc.ScenarioSpec:
    return scenario_from_data(data, {}, "<test>")


def _problems(data: dict) -> list[str]:
    with pytest.raises(UserError) as exc:
        _load(data)
    return [f"{p.path}: {p.message}" for p in exc.value.problems]


# ------------------------------------------------------------------ hand-worked numbers
@pytest.fixture(scope="module")
def gym():
    spec = _load(GYM)
    return spec, pc.run(spec)


def test_the_default_rate_of_an_own_event_is_its_catalogue_rate():
    """No ``rate`` under behaviour: each citizen aged 16 or more does 0.05 a day, others 0."""
    spec = _load(GYM)
    sim = engine.build(spec)
    t = list(sim.events).index("gym_session")
    rates = initial_rates(spec, list(sim.events), sim.society.population, spec.run.seed)[:, t]
    adult = sim.society.population.age >= 16
    assert np.all(rates[adult] == 0.05) and np.all(rates[~adult] == 0.0)


def test_true_observed_and_points_match_the_hand_worked_numbers(gym):
    """True sessions ~ Poisson(adults x 100 x 0.05); 0.5 x 0.8 = 0.4 of them recorded;
    +2 points (2000 milli-points) per record, exactly."""
    spec, result = gym
    citizens = result.citizens.to_pandas()
    adults = int((citizens["age"] >= 16).sum())  # ages do not cross 16 in ways that matter
    expected_true = adults * DAYS * 0.05           # e.g. 3,200 adults -> 16,000
    ev = result.events.to_pandas()
    ev = ev[ev["event"] == "gym_session"]
    true, observed = int(ev["true_events"].sum()), int(ev["observed"].sum())
    assert abs(true - expected_true) < 5 * math.sqrt(expected_true) + 0.01 * expected_true
    assert abs(observed - 0.4 * true) < 5 * math.sqrt(true * 0.4 * 0.6)
    assert int(ev["false_observations"].sum()) == 0
    ledger = result.ledger.to_pandas()
    assert int(ledger["delta_milli"].sum()) == 2000 * observed
    # the score starts at 100 for everyone and only gym sessions move it
    assert citizens["score"].sum() == pytest.approx(100 * N + 2 * observed)


def test_an_own_opportunity_needs_its_own_perk(gym):
    """The perk is granted to nobody (score > 1e6), so every try of ``sports_pass`` (18 and
    over, 0.02 a day: ~ adults x 100 x 0.02) is refused for want of it."""
    _, result = gym
    opp = result.table("opportunities").to_pandas()
    opp = opp[opp["opportunity"] == "sports_pass"]
    attempts = int(opp["attempts"].sum())
    adults18 = int((result.citizens.to_pandas()["age"] >= 18).sum())
    expected = adults18 * DAYS * 0.02
    assert abs(attempts - expected) < 5 * math.sqrt(expected) + 0.01 * expected
    assert int(opp["refused"].sum()) == attempts == int(opp["refused_no_perk"].sum())
    assert int(opp["granted"].sum()) == 0


def test_an_own_event_reports_its_own_valence(gym):
    spec, result = gym
    change = behaviour_change(result, spec=spec)
    assert change["gym_session"]["valence"] == 1.0
    assert change["gym_session"]["kind"] == "rewarded"


# ------------------------------------------------------------------ resolution per scenario
def test_own_entries_never_reach_another_scenario():
    """Two scenarios in one process: the packaged catalogue and a plain scenario are the
    same before and after one with entries of its own, and the plain one cannot name them."""
    before = (dict(EVENTS_BY_NAME), dict(SOURCES), dict(OPPORTUNITIES_BY_NAME))
    plain = {k: v for k, v in GYM.items() if k != "catalogue"}
    plain = merge(plain, {"behaviour": {"events": {"red_light": {}}}})
    del plain["behaviour"]["events"]["gym_session"], plain["opportunities"]
    plain["sensors"] = {"cameras": {"events": ["red_light"]}}
    plain["policy"] = {**plain["policy"], "rules": [{"event": "red_light", "points": -5}],
                       "sanctions": []}
    plain_spec = _load(plain)
    first = pc.run(plain_spec, citizens=500, days=20).manifest["result"]["fingerprint"]
    own = _load(GYM)
    pc.run(own, citizens=500, days=20)
    assert "gym_session" in own.library.events and own.library.own["events"] == {"gym_session"}
    assert (dict(EVENTS_BY_NAME), dict(SOURCES), dict(OPPORTUNITIES_BY_NAME)) == before
    assert plain_spec.library is PACKAGED and "gym_session" not in PACKAGED.events
    again = pc.run(plain_spec, citizens=500, days=20).manifest["result"]["fingerprint"]
    assert again == first
    wrong = merge(plain, {"behaviour": {"events": {"gym_session": {}}}})
    assert any("behaviour.events.gym_session: got 'gym_session'; expected a known event "
               "type" in p for p in _problems(wrong))


def test_own_events_come_after_the_packaged_ones_and_are_always_active():
    spec = _load(merge(GYM, {"behaviour": {"events": {"red_light": {}, "volunteering": {}}},
                             "catalogue": {"events": {"unused_act": {
                                 "domain": "health", "source": "fitness_app",
                                 "valence": 0}}}}))
    assert spec.active_events() == ["red_light", "volunteering", "gym_session", "unused_act"]
    assert list(spec.library.events)[:len(EVENT_TYPES)] == [e.name for e in EVENT_TYPES]


def test_an_empty_catalogue_section_changes_no_digest():
    plain = load_scenario(EXAMPLE).model_dump(mode="json")
    del plain["catalogue"]
    base = _load({**plain, "behaviour": {"events": {"red_light": {}}},
                  "sensors": {"cameras": {"events": ["red_light"]}}, "opportunities": {},
                  "policy": {"name": "p", "tiers": [{"name": "all"}]}})
    assert _load({**base.model_dump(mode="json"), "catalogue": {}}).digest == base.digest
    assert catalogue_of(base) is PACKAGED


# ------------------------------------------------------------------ checks
@pytest.mark.parametrize(("change", "fragment"), [
    ({"events": {"red_light": {"domain": "traffic", "source": "cameras", "valence": -1}}},
     "catalogue.events.red_light: got 'red_light'; expected a new name, not a packaged "
     "event type"),
    ({"sources": {"cameras": {}}},
     "catalogue.sources.cameras: got 'cameras'; expected a new name, not a packaged"),
    ({"perks": {"green_channel": {}}},
     "catalogue.perks.green_channel: got 'green_channel'; expected a new name"),
    ({"opportunities": {"loan": {"blocked_by": ["loans"]}}},
     "catalogue.opportunities.loan: got 'loan'; expected a new name, not a packaged "
     "opportunity"),
    ({"events": {"gym_session": {"domain": "health", "source": "fitnes_app",
                                 "valence": 1}}},
     "catalogue.events.gym_session.source: got 'fitnes_app'; expected a known data source, "
     "one of: "),
    ({"opportunities": {"sports_pass": {"needs": ["healthy_discont"]}}},
     "catalogue.opportunities.sports_pass.needs[0]: got 'healthy_discont'; expected a known "
     "perk"),
    ({"opportunities": {"sports_pass": {"needs": []}}}, "blocked_by"),
    ({"events": {"Gym-Session": {"domain": "health", "source": "fitness_app", "valence": 1}}},
     "expected a valid name"),
    ({"events": {"gym_session": {"domain": "health", "source": "fitness_app", "valence": 2}}},
     "catalogue.events.gym_session.valence"),
    ({"events": {"gym_session": {"domain": "health", "source": "fitness_app", "valence": 1,
                                 "rate_per_day": 50}}},
     "catalogue.events.gym_session.rate_per_day"),
    ({"events": {"gym_session": {"domain": "health", "source": "fitness_app", "valence": 1,
                                 "colour": "red"}}}, "colour"),
])
def test_own_entries_get_the_checks_of_packaged_ones(change, fragment):
    problems = _problems(merge(GYM, {"catalogue": change}))
    assert any(fragment in p for p in problems), problems


def test_references_to_own_entries_are_checked_like_packaged_ones():
    problems = _problems(merge(GYM, {
        "sensors": {"fitness_ap": {"events": ["gym_sesion"]}},
        "policy": {"sanctions": [{"when": "score > 0", "deny": ["gym_bann"]}]}}))
    text = "\n".join(problems)
    assert "sensors.fitness_ap: got 'fitness_ap'; expected a known data source" in text
    assert "did you mean 'fitness_app'?" in text
    assert "got 'gym_sesion'; expected a known event type (see `panopticon events`); did you " \
           "mean 'gym_session'?" in text
    assert "got 'gym_bann'; expected a known sanction; did you mean 'gym_ban'?" in text


# ------------------------------------------------------------------ the worked example, CLI
def test_the_worked_example_runs_and_each_source_records_its_events():
    spec = load_scenario(EXAMPLE)
    assert spec.library.own["events"] == {"gym_session"}
    assert {"location", "gait"} <= set(PACKAGED.sources)
    result = pc.run(spec, citizens=2000, days=40)
    ev = result.events.to_pandas().groupby("event", observed=True).sum(numeric_only=True)
    for name in ("healthy_food_purchase", "gym_session", "interregional_travel"):
        assert ev.loc[name, "true_events"] > 0 and ev.loc[name, "observed"] > 0
    # the gym check-ins: 0.5 coverage x 0.8 detection
    g = ev.loc["gym_session"]
    assert abs(g["observed"] - 0.4 * g["true_events"]) < 5 * math.sqrt(g["true_events"] * 0.24)


def test_cli_lists_a_scenarios_own_entries_marked():
    result = runner.invoke(app, ["events", "--scenario", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["event"]: r for r in json.loads(result.stdout)}
    assert rows["gym_session"]["origin"] == "scenario" and rows["gym_session"]["valence"] == 1
    assert rows["red_light"]["origin"] == "packaged"
    assert list(rows)[-1] == "gym_session"
    table = runner.invoke(app, ["events", "-s", str(EXAMPLE)])
    assert table.exit_code == 0 and "fitness_app" in table.stdout and "(scenario)" in table.stdout
    opp = runner.invoke(app, ["opportunities", "--scenario", str(EXAMPLE), "--json"])
    assert {r["opportunity"]: r["origin"] for r in json.loads(opp.stdout)}[
        "sports_centre_pass"] == "scenario"
    plain = runner.invoke(app, ["events", "--json"])
    assert "origin" not in plain.stdout and "gym_session" not in plain.stdout
    bad = runner.invoke(app, ["events", "--scenario", "no_such_file.yaml"])
    assert bad.exit_code == 2
