"""A judge before the sanction (``governance.review``): new list entries and falls into
reviewed tiers wait for a reviewer before they bring sanctions; reviewers decide ``capacity``
cases a day, oldest first, no earlier than ``delay_days`` after entry, and dismiss false
cases with probability ``catch_false`` and true ones with probability ``dismiss_true``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_scenario
from test_opportunities import GATED

from panopticon import api, engine
from panopticon.errors import UserError
from panopticon.governance import CONFIRMED, DISMISSED, PENDING
from panopticon.metrics import run as metrics
from panopticon.policy.runtime import LEFT
from panopticon.sensors import Observations

LISTED = {**GATED, "policy": {
    **GATED["policy"], "score": {"start": 104, "min": 0, "max": 200},
    "rules": [{"event": "baby_products_purchase", "points": 5}],
    "lists": [{"name": "flagged", "kind": "blacklist", "enter_on": ["red_light"], "days": 30}],
    "sanctions": [{"when": 'listed("flagged")', "deny": ["loans"]}]}}
"""GATED with a list: a red light lists the citizen for 30 days, and listed citizens are
denied loans. Everyone starts at 104 (tier A): only the list sanctions."""

JUDGED = {"review": {"lists": ["flagged"], "capacity": 2, "delay_days": 1,
                     "catch_false": 1.0, "dismiss_true": 0.0}}

MISLISTED = {**LISTED, "run": {"citizens": 2000, "days": 60, "seed": 5, "checkpoint_every": 10},
             "behaviour": {"events": {"red_light": {"rate": 0.002, "min_age": 0}}},
             "sensors": {**LISTED["sensors"],
                         "cameras": {"events": ["red_light"], "misattribution": 0.4}}}
"""Two months of red lights seen by cameras that pin 40% of them on someone else: false
listings, and loans denied because of them."""


def _red_lights(sim, state, citizens, true):
    """A policy day with red-light observations naming ``citizens`` (``true``: which were)."""
    t = sim.events.index("red_light")
    c = np.asarray(citizens, np.int32)
    true = np.asarray(true, bool)
    obs = Observations(c, np.full(len(c), t, np.int16), np.zeros(len(c), np.int8), true,
                       np.where(true, c, -1).astype(np.int32))
    return engine.apply_policy(sim, state, obs)


def _empty(sim, state):
    return engine.apply_policy(sim, state, Observations(*(np.empty(0, dt) for dt in (
        np.int32, np.int16, np.int8, bool, np.int32))))


def test_an_entry_waits_for_its_reviewer_and_a_false_one_is_lifted():
    """Day 0: red lights list 5 (false), 7 (true) and 3 (false); all three are on the list
    but denied nothing: their entries wait. Day 1 (delay 1, capacity 2): the oldest, then by
    citizen id: 3 and 5, both false, are dismissed (catch_false 1): their listings end on day 1
    (list change ``left``). Day 2: 7, true, is confirmed (dismiss_true 0) and denied loans
    from then on; its wait was 2 days."""
    sim = engine.build(build_scenario(LISTED, governance=JUDGED))
    state = engine.initial_state(sim)
    day0 = _red_lights(sim, state, [5, 7, 3], [False, True, False])
    assert (state.policy.until[0, [3, 5, 7]] == 30).all()
    assert not day0.denied["loans"][[3, 5, 7]].any()
    assert day0.review.entered == 3 and day0.review.confirmed == day0.review.dismissed == 0
    assert state.review.status[0, [3, 5, 7]].tolist() == [PENDING] * 3
    # without the review all three would be denied, two of them wrongly
    assert engine.wrongly_sanctioned(sim, state, day0.denied) == 0

    state.day = 1
    day1 = _empty(sim, state)
    assert (day1.review.dismissed, day1.review.false_caught, day1.review.confirmed) == (2, 2, 0)
    assert day1.review.waited.tolist() == [1, 1]
    assert state.policy.until[0, [3, 5, 7]].tolist() == [1, 1, 30]
    assert day1.lists.citizen.tolist() == [3, 5] and (day1.lists.change == LEFT).all()
    assert not day1.denied["loans"][[3, 5, 7]].any()

    state.day = 2
    day2 = _empty(sim, state)
    assert (day2.review.confirmed, day2.review.dismissed, day2.review.waited.tolist()) == (
        1, 0, [2])
    assert day2.denied["loans"][[3, 5, 7]].tolist() == [False, False, True]
    assert state.review.status[0, 7] == CONFIRMED and (state.review.queued < 0).all()

    state.day = 3  # confirmed: stays sanctioned, nothing more to decide
    day3 = _empty(sim, state)
    assert day3.denied["loans"][7] and day3.review.confirmed == day3.review.dismissed == 0


def test_a_true_entry_wrongly_dismissed_brings_no_sanction():
    """dismiss_true 1, delay 0: citizen 7's true entry is decided the day it is made,
    dismissed (``true_dismissed``) and lifted; catch_false 0: citizen 5's false entry is
    confirmed (``false_confirmed``) and denied loans: a wrongful sanction."""
    sim = engine.build(build_scenario(LISTED, governance={"review": {
        "lists": ["flagged"], "delay_days": 0, "catch_false": 0.0, "dismiss_true": 1.0}}))
    state = engine.initial_state(sim)
    day = _red_lights(sim, state, [5, 7], [False, True])
    assert (day.review.true_dismissed, day.review.false_confirmed) == (1, 1)
    assert day.denied["loans"][[5, 7]].tolist() == [True, False]
    assert state.policy.until[0, [5, 7]].tolist() == [30, 0]
    assert engine.wrongly_sanctioned(sim, state, day.denied) == 1


def test_capacity_zero_holds_every_sanction():
    """Nobody reviews: every entry waits for ever and nobody is denied anything."""
    sim = engine.build(build_scenario(LISTED, governance={"review": {
        "lists": ["flagged"], "capacity": 0}}))
    state = engine.initial_state(sim)
    for d in range(3):
        state.day = d
        day = _red_lights(sim, state, [d + 1], [True])
        assert not day.denied["loans"].any()
    assert (state.review.queued[0, [1, 2, 3]] == [0, 1, 2]).all()


def test_a_decision_depends_on_the_citizen_not_on_the_queue():
    """catch_false 0.5: whether citizen 40's false entry is dismissed on day 0 is the same
    whoever else is in the queue (draws are keyed by citizen, never by position); about half
    of 200 false entries are caught."""
    review = {"review": {"lists": ["flagged"], "delay_days": 0, "catch_false": 0.5,
                         "capacity": 1000}}
    outcomes = []
    for others in ([], list(range(41, 60)), list(range(0, 40))):
        sim = engine.build(build_scenario(LISTED, governance=review))
        state = engine.initial_state(sim)
        _red_lights(sim, state, [40, *others], [False] * (1 + len(others)))
        outcomes.append(int(state.review.status[0, 40]))
    assert len(set(outcomes)) == 1
    sim = engine.build(build_scenario(LISTED, governance=review))
    state = engine.initial_state(sim)
    day = _red_lights(sim, state, list(range(200)), [False] * 200)
    assert 80 < day.review.false_caught < 120 and day.review.false_caught == day.review.dismissed


def test_a_fall_into_a_reviewed_tier_waits_and_a_dismissed_fall_spares_the_citizen():
    """GATED's tiers: A from 104, B below; B is denied loans. Everyone starts at 104. Red
    lights (-50) take 9 (false) and 11 (true) to 54, tier B. Review of B, delay 0: both are
    decided that day: 9's fall is false (true standing 104, A) and dismissed, 11's is true and
    confirmed. 9 stays in B (the tier table says so) but sanctions see A while 9 stays in B;
    11 is denied loans. Once 11 climbs back to A the case ends; falling again is a new case."""
    spec = build_scenario(GATED, policy={"score": {"start": 104}}, governance={"review": {
        "tiers": ["B"], "delay_days": 0, "catch_false": 1.0, "dismiss_true": 0.0}})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    day = _red_lights(sim, state, [9, 11], [False, True])
    assert state.tier[[9, 11]].tolist() == [1, 1]
    assert (day.review.entered, day.review.false_caught, day.review.confirmed) == (2, 1, 1)
    assert day.denied["loans"][[9, 11]].tolist() == [False, True]
    assert state.review.status[-1, [9, 11]].tolist() == [DISMISSED, CONFIRMED]
    assert engine.wrongly_sanctioned(sim, state, day.denied) == 0
    state.day = 1
    assert not _empty(sim, state).denied["loans"][9]  # still spared
    state.scores[11] = 104_000  # back in A: the case ends
    state.day = 2
    _empty(sim, state)
    assert state.review.status[-1, 11] == 0
    state.day = 3
    again = _red_lights(sim, state, [11], [True])
    assert again.review.entered == 1 and again.denied["loans"][11]


def test_a_review_that_never_errs_and_never_waits_changes_no_sanction():
    """capacity above the population, delay 0, catch_false 0, dismiss_true 0: every entry is
    confirmed the day it is made, so every day's sanctions are those of the run without
    review."""
    plain = api.run(build_scenario(MISLISTED)).daily.to_pandas()
    spec = build_scenario(MISLISTED, governance={"review": {
        "lists": ["flagged"], "capacity": 10_000, "catch_false": 0.0, "dismiss_true": 0.0}})
    judged = api.run(spec).daily.to_pandas()
    for column in ("denied_loans", "citizens_wrongly_sanctioned", "listed_flagged", "refused"):
        assert judged[column].tolist() == plain[column].tolist()
    assert judged.reviews_confirmed.sum() == judged.reviews_entered.sum() > 0
    assert judged.review_backlog.max() == 0


def test_a_review_cuts_wrongful_sanctions_and_is_summarised():
    """The same run with a review that catches 90% of false entries within a week, capacity 5
    a day: fewer citizen-days wrongly sanctioned; ``summary`` shows the review's counts, and
    they add up."""
    plain = metrics.summary(api.run(build_scenario(MISLISTED)))
    spec = build_scenario(MISLISTED, governance={"review": {
        "lists": ["flagged"], "capacity": 5, "delay_days": 3, "catch_false": 0.9,
        "dismiss_true": 0.05}})
    judged = metrics.summary(api.run(spec))
    assert "review_entered" not in plain
    assert judged["citizen_days_wrongly_sanctioned"] < plain["citizen_days_wrongly_sanctioned"]
    assert judged["review_false_caught"] > 0
    assert judged["review_confirmed"] + judged["review_dismissed"] + judged["review_backlog"] \
        <= judged["review_entered"]
    assert judged["review_dismissed"] == judged["review_false_caught"] \
        + judged["review_true_dismissed"]
    assert judged["review_mean_wait"] >= 3


def test_a_run_with_review_resumes_bit_for_bit():
    """The queue is state: a run stopped on day 23 and resumed from its snapshot ends with
    the fingerprint of the run straight through; a snapshot with a bad status is refused."""
    spec = build_scenario(MISLISTED, governance={"review": {
        "lists": ["flagged"], "capacity": 2, "delay_days": 5, "catch_false": 0.7}})
    sim = engine.build(spec)
    straight = engine.run(sim).fingerprint()
    half = engine.run(sim, until=23)
    assert (half.review.queued >= 0).any()  # a backlog is carried over
    snap = half.snapshot()
    assert engine.State.check_snapshot(snap, sim) == []
    assert engine.run(sim, engine.State.restore(snap, sim)).fingerprint() == straight
    snap["review.status"][0, 0] = 9
    assert any("review.status" in p for p in engine.State.check_snapshot(snap, sim))
    plain = engine.build(build_scenario(MISLISTED))
    assert "review.queued" not in engine.initial_state(plain).snapshot()


@pytest.mark.parametrize("review, message", [
    ({"lists": ["flaged"]}, "got 'flaged'; expected a list of the policy"),
    ({"tiers": ["C"]}, "got 'C'; expected a tier of the policy"),
    ({"tiers": ["A"]}, "top tier"),
    ({}, "needs lists or tiers"),
    ({"lists": ["flagged"], "catch_false": 1.5}, "catch_false"),
])
def test_a_review_of_something_that_does_not_exist_is_refused(review, message):
    with pytest.raises(UserError) as caught:
        build_scenario(LISTED, governance={"review": review})
    assert message in str(caught.value) + "".join(str(p) for p in caught.value.problems)


def test_the_report_states_what_the_reviewer_caught_from_the_runs_numbers(tmp_path):
    """A stored run with a review: the report's findings carry a review sentence whose
    numbers are metrics.review's (false cases caught and let through, true ones dismissed,
    the backlog); a run without review has none."""
    from panopticon.report.build import collect

    spec = build_scenario(MISLISTED, governance={"review": {
        "lists": ["flagged"], "capacity": 5, "delay_days": 3, "catch_false": 0.9,
        "dismiss_true": 0.05}})
    judged = api.run(spec, out=tmp_path / "runs")
    plain = api.run(build_scenario(MISLISTED), out=tmp_path / "runs")
    with_review, without = collect([judged.path, plain.path], tmp_path / "runs")
    found = [f for f in with_review.findings if f.kind == "review"]
    r = metrics.review(judged)
    assert len(found) == 1 and found[0].numbers == r
    text = found[0].text
    assert f"{int(r['false_caught']):,} of the {int(r['false_caught'] + r['false_confirmed']):,}" \
        " false cases" in text
    assert f"{int(r['true_dismissed']):,} true cases were dismissed" in text
    assert not [f for f in without.findings if f.kind == "review"]
