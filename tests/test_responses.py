"""How citizens respond to the system: deterrence and chilling (factors below 1, with a
floor), gaming (factors above 1, with a ceiling), compliance of listed debtors (a rate while
listed), and the behaviour table that measures it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_scenario

from panopticon import api
from panopticon.behaviour import Responses, adapt, totals
from panopticon.errors import UserError
from panopticon.scenario import ResponseSpec

EVENTS = ["red_light", "critical_post", "debt_repaid"]


def _rates(rows: list[list[float]]):
    rates = np.asarray(rows, dtype=np.float64)
    total, p0 = np.empty(len(rates)), np.empty(len(rates))
    totals(rates, total, p0)
    return rates, total, p0


def test_factor_response_compounds_only_where_it_holds_and_stops_at_its_limit():
    """factor 0.5, limit 0.3 on red_light: a citizen it holds for goes 0.1 -> 0.05 -> 0.03
    (floor 0.3 x 0.1) -> 0.03; others and other events keep their rates; total and the
    Poisson CDF follow (P(0) = exp(-total))."""
    responses = Responses.compile([ResponseSpec(when="x", events=["red_light"], factor=0.5,
                                                limit=0.3)], EVENTS)
    rates, total, cdf = _rates([[0.1, 0.2, 0.0], [0.1, 0.2, 0.0]])
    base = responses.base(rates)
    mask = np.asarray([True, False])
    for expected in (0.05, 0.03, 0.03):
        adapt(responses, [mask], rates, total, cdf, base)
        assert rates[0, 0] == pytest.approx(expected)
    assert rates[1].tolist() == [0.1, 0.2, 0.0] and rates[0, 1] == 0.2
    assert total[0] == pytest.approx(0.23) and cdf[0] == pytest.approx(np.exp(-0.23))


def test_gaming_factor_above_one_stops_at_its_ceiling():
    """factor 1.5, limit 2 on critical_post (standing in for a well-scored purchase):
    0.2 -> 0.3 -> 0.4 (ceiling 2 x 0.2) -> 0.4."""
    responses = Responses.compile([ResponseSpec(when="x", events=["critical_post"], factor=1.5,
                                                limit=2)], EVENTS)
    rates, total, cdf = _rates([[0.1, 0.2, 0.0]])
    base = responses.base(rates)
    for expected in (0.3, 0.4, 0.4):
        adapt(responses, [np.ones(1, bool)], rates, total, cdf, base)
        assert rates[0, 1] == pytest.approx(expected)


def test_rate_response_holds_while_listed_and_restores_the_own_rate_after():
    """rate 0.01 for debt_repaid while the condition holds: 0 -> 0.01 while it holds, back to
    the citizen's own 0 when it stops; two rate responses on one event: the later one wins
    where both hold."""
    responses = Responses.compile([
        ResponseSpec(when="x", events=["debt_repaid"], rate=0.01),
        ResponseSpec(when="y", events=["debt_repaid"], rate=0.05)], EVENTS)
    rates, total, cdf = _rates([[0.1, 0.0, 0.0], [0.1, 0.0, 0.002], [0.1, 0.0, 0.0]])
    base = responses.base(rates)
    first, second = np.asarray([True, True, True]), np.asarray([False, False, True])
    adapt(responses, [first, second], rates, total, cdf, base)
    assert rates[:, 2].tolist() == [0.01, 0.01, 0.05]
    adapt(responses, [np.zeros(3, bool), np.zeros(3, bool)], rates, total, cdf, base)
    assert rates[:, 2].tolist() == [0.0, 0.002, 0.0]
    assert total[1] == pytest.approx(0.102)


def test_an_event_cannot_have_both_rate_and_factor_responses(tiny_data):
    """Mixing the two kinds on one event would make the restored rate ambiguous."""
    with pytest.raises(UserError, match="other kind"):
        build_scenario(tiny_data, behaviour={"responses": [
            {"when": 'tier == "C"', "events": ["red_light"], "factor": 0.9},
            {"when": 'tier == "C"', "events": ["red_light"], "rate": 0.01}]})


def test_response_condition_errors_name_the_key(tiny_data):
    """A response whose condition names an unknown column is a user error at its key path."""
    with pytest.raises(UserError) as err:
        build_scenario(tiny_data, behaviour={"responses": [
            {"when": "scroe < 3", "events": ["red_light"], "factor": 0.9}]})
    assert err.value.problems[0].path == "behaviour.responses[0].when"
    assert "did you mean 'score'" in err.value.problems[0].message


COURT = "court_blacklist"


def test_listed_debtors_pay_up_at_the_scenario_rate_and_nobody_else_does():
    """court_blacklist: debt_repaid has rate 0 for everyone and 0.00075 a day while listed
    (docs/sources.md, compliance: ~27% of the listed stock a year). Every true debt_repaid event is by a
    citizen who was listed that day; and listed debtors do pay (some leave the list)."""
    result = api.run(api.load(COURT).with_run(citizens=20_000, days=365))
    behaviour = result.table("behaviour").to_pandas()
    paid = behaviour[behaviour.event == "debt_repaid"]["true_events"].sum()
    assert paid > 0
    lists = result.lists.to_pandas()
    assert (lists.change == "left").sum() == paid  # performance is the only way off early
    entered = lists[lists.change == "entered"]
    payers = lists[lists.change == "left"]
    assert set(payers.citizen) <= set(entered.citizen)


def test_deterrence_shows_in_the_behaviour_table_as_less_expected_misconduct():
    """reference preset: tier D multiplies red_light and late_loan_payment rates by 0.98 a day.
    On survey days the expected (rate-summed) counts of those two fall below their baseline;
    the other event types stay exactly at it. True counts are recorded every day."""
    spec = api.load("reference").with_run(citizens=5_000, days=365)
    spec = spec.model_copy(update={"run": spec.run.model_copy(update={"survey_every": 200})})
    result = api.run(spec)
    assert result.daily.to_pandas().share_D.iloc[-1] > 0
    table = result.table("behaviour").to_pandas()
    assert table.day.nunique() == 365
    surveyed = table.dropna()
    assert sorted(surveyed.day.unique()) == [0, 199, 364]
    last = surveyed[surveyed.day == 364].groupby("event", observed=True)[
        ["expected", "baseline"]].sum()
    deterred = {"red_light", "late_loan_payment"}
    for event, row in last.iterrows():
        if event in deterred:
            assert row.expected < row.baseline
        else:
            assert row.expected == row.baseline


def test_a_limit_on_the_wrong_side_of_its_factor_is_refused():
    """factor 0.8 with limit 2 would double the rate on the first day: a floor must be at
    most 1 (times the starting rate), a ceiling at least 1."""
    with pytest.raises(ValueError, match="floor, at most 1"):
        ResponseSpec(when="x", events=["red_light"], factor=0.8, limit=2)
    with pytest.raises(ValueError, match="ceiling, at least 1"):
        ResponseSpec(when="x", events=["red_light"], factor=1.2, limit=0.5)


def test_a_floor_never_raises_a_rate_another_rule_lowered():
    """Deterrence already took red_light to 0.01 (base 0.1); a response with floor 0.3 x base
    = 0.03 must not lift it back to 0.03: a bound only stops a move."""
    responses = Responses.compile([ResponseSpec(when="x", events=["red_light"], factor=0.5,
                                                limit=0.3)], EVENTS)
    rates, total, cdf = _rates([[0.1, 0.0, 0.0]])
    base = responses.base(rates)
    rates[0, 0] = 0.01
    totals(rates, total, cdf)
    adapt(responses, [np.ones(1, bool)], rates, total, cdf, base)
    assert rates[0, 0] == pytest.approx(0.01)


def test_rate_response_on_a_deterred_event_is_refused(tiny_data):
    """Deterrence multiplies red_light; a rate response would reset it every day."""
    with pytest.raises(UserError, match="other kind"):
        build_scenario(tiny_data, behaviour={"responses": [
            {"when": 'tier == "C"', "events": ["red_light"], "rate": 0.01}]})


def test_trait_tables_name_only_known_categories(tiny_data):
    """A trait drawn by group must name this society's groups (as income must)."""
    with pytest.raises(UserError) as err:
        build_scenario(tiny_data, society={"traits": {"level": {"by": "region", "values": {
            "urban": {"kind": "constant", "value": 1},
            "rural": {"kind": "constant", "value": 2},
            "suburb": {"kind": "constant", "value": 3}}}}})
    assert "got 'suburb'; expected a region of this society" in str(err.value)
