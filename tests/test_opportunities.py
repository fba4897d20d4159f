"""Opportunities at the policy's gates: refusals, wrongful refusals, retries, touts, loans and
their outcomes, real-time scoring; and how citizens respond (deterrence, compliance, gaming)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_scenario

from panopticon import engine
from panopticon.behaviour import TrueEvents, add_events
from panopticon.errors import UserError
from panopticon.policy.schema import MILLI
from panopticon.sanctions import (
    MEASURES,
    Gates,
    Loan,
    Opportunities,
    Opportunity,
    OpportunityState,
    attempt,
    loan_outcomes,
    repayment,
)
from panopticon.scenario import RepaymentTable
from panopticon.sensors import Observations

N = 6


def _opps(*kinds: Opportunity, rate: float = 0.0) -> Opportunities:
    rates = np.full((N, len(kinds)), rate)
    total = rates.sum(axis=1)
    return Opportunities(tuple(kinds), rates, total, np.exp(-total),
                         tuple(k for k, o in enumerate(kinds) if o.loan is not None))


def _kind(name="flight", blocked=("flights",), needs=(), min_score=None, retry=0.0, evasion=0.0,
          loan=None) -> Opportunity:
    return Opportunity(name, blocked, needs, min_score, retry, evasion, loan)


def _gates(denied=(), honest_denied=(), granted=(), scores=None, honest=None) -> Gates:
    def mask(ids):
        m = np.zeros(N, dtype=bool)
        m[list(ids)] = True
        return m

    scores = np.full(N, 1000 * MILLI, dtype=np.int64) if scores is None else scores
    true_scores = scores if honest is None else honest
    return Gates({"flights": mask(denied)}, {"deposit_free_rental": mask(granted)}, scores,
                 lambda who: ({"flights": mask(honest_denied)[who]},
                              {"deposit_free_rental": mask(granted)[who]}, true_scores[who]))


def _everyone_tries(opps: Opportunities, state: OpportunityState, gates: Gates, day: int = 0,
                    repay_of=None):
    return attempt(1, day, opps, state, gates, np.zeros(N, dtype=np.uint8), 1, repay_of)


def _count(day, measure: str) -> int:
    return int(day.counts[MEASURES.index(measure)].sum())


def test_attempt_is_refused_exactly_when_a_blocking_sanction_is_denied():
    """Rate 20 tries a day: every citizen tries (P(no try) = e^-20). Citizens 1 and 4 are
    denied flights: their tries are refused, nobody else's."""
    opps = _opps(_kind(), rate=20.0)
    state = OpportunityState.empty(opps, N)
    day = _everyone_tries(opps, state, _gates(denied=[1, 4], honest_denied=[1, 4]))
    assert set(day.refusals.citizen.tolist()) == {1, 4}
    assert _count(day, "refused") == len(day.refusals)
    assert _count(day, "attempts") == _count(day, "refused") + _count(day, "granted")
    assert not day.refusals.wrongful.any()


def test_refusal_is_wrongful_when_true_standing_would_have_passed():
    """Citizen 1 is denied only because of false observations (not denied on true standing);
    citizen 4 is denied on both: only 1's refusals are wrongful."""
    opps = _opps(_kind(), rate=20.0)
    day = _everyone_tries(opps, OpportunityState.empty(opps, N),
                          _gates(denied=[1, 4], honest_denied=[4]))
    wrongful = dict(zip(day.refusals.citizen.tolist(), day.refusals.wrongful.tolist(), strict=True))
    assert wrongful == {1: True, 4: False}
    assert _count(day, "wrongful") == int((day.refusals.citizen == 1).sum())


def test_perk_gated_attempt_needs_the_perk_and_lender_needs_the_score():
    """deposit_free_rental needs the perk: only citizen 2 (granted) succeeds. A lender with
    min_score 650 refuses citizens below 650 points: scores 600, 650, 700 -> refused, granted,
    granted."""
    opps = _opps(_kind("deposit_free_rental", blocked=(), needs=("deposit_free_rental",)),
                 rate=20.0)
    day = _everyone_tries(opps, OpportunityState.empty(opps, N), _gates(granted=[2]))
    assert sorted(set(day.refusals.citizen.tolist())) == [0, 1, 3, 4, 5]

    scores = np.asarray([600, 650, 700, 649, 651, 0]) * MILLI
    opps = _opps(_kind("loan", blocked=(), min_score=np.full(N, 650 * MILLI)), rate=20.0)
    day = _everyone_tries(opps, OpportunityState.empty(opps, N), _gates(scores=scores))
    assert sorted(set(day.refusals.citizen.tolist())) == [0, 3, 5]


def test_refused_citizen_retries_next_day_and_evasion_lets_refusals_through():
    """retry 1: a refused citizen tries again every day while refused (nobody tries afresh:
    rate 0). evasion 1: every refused try succeeds anyway (counted refused and evaded), and a
    success ends the retries."""
    opps = _opps(_kind(retry=1.0), rate=0.0)
    state = OpportunityState.empty(opps, N)
    state.pending[0, [2, 3]] = True  # refused yesterday
    day = _everyone_tries(opps, state, _gates(denied=[2], honest_denied=[2]), day=1)
    assert _count(day, "retries") == 2 and _count(day, "refused") == 1
    assert state.pending[0].tolist() == [False, False, True, False, False, False]

    opps = _opps(_kind(retry=1.0, evasion=1.0), rate=0.0)
    state = OpportunityState.empty(opps, N)
    state.pending[0, 2] = True
    day = _everyone_tries(opps, state, _gates(denied=[2], honest_denied=[2]), day=1)
    assert _count(day, "evaded") == 1 and _count(day, "granted") == 1
    assert day.refusals.evaded.tolist() == [True]
    assert not state.pending.any()


def test_retries_give_a_geometric_number_of_tries(seed):
    """With retry p, a citizen refused every day tries 1 + Geometric: on average 1 / (1 - p)
    times. p = 0.85 -> 6.67 tries (the ~8.7 blocked tries per listed traveller in
    docs/sources.md is p ~ 0.885). 20,000 blocked citizens, SE of the mean ~ 6.2 / sqrt(20000) = 0.044."""
    n = 20_000
    rates = np.zeros((n, 1))
    opps = Opportunities((_kind(retry=0.85),), rates, rates[:, 0], np.ones(n), ())
    state = OpportunityState.empty(opps, n)
    state.pending[0] = True
    denied = {"flights": np.ones(n, dtype=bool)}
    gates = Gates(denied, {}, np.zeros(n, np.int64),
                  lambda who: ({"flights": denied["flights"][who]}, {}, np.zeros(len(who))))
    tries = 0
    for d in range(200):
        tries += _count(attempt(seed, d, opps, state, gates, np.zeros(n, np.uint8), 1, None),
                        "attempts")
    assert tries / n == pytest.approx(0.85 / 0.15, abs=0.2)  # retries after the first refusal


def test_loan_outcome_becomes_a_true_event_after_its_term():
    """A granted loan (term 5) with repayment probability 1 ends as loan_repaid on day 0 + 5;
    with 0 as loan_default; a citizen with a running loan does not borrow again."""
    for p, event in ((1.0, 7), (0.0, 8)):
        loan = Loan(p, 5, repaid_event=7, default_event=8)
        opps = _opps(_kind("loan", blocked=(), loan=loan), rate=20.0)
        state = OpportunityState.empty(opps, N)
        day = _everyone_tries(opps, state, _gates())
        assert _count(day, "loans") == N
        assert (state.loan_due[0] == 5).all()
        again = _everyone_tries(opps, state, _gates(), day=1)
        assert _count(again, "attempts") == 0
        for d in range(1, 5):
            assert len(loan_outcomes(d, opps, state)[0]) == 0
        citizen, ev = loan_outcomes(5, opps, state)
        assert citizen.tolist() == list(range(N)) and (ev == event).all()
        assert (state.loan_due == -1).all()


def test_repayment_table_picks_the_entry_at_or_below_the_value():
    """at [0, 3, 6] with probabilities [.1, .6, .7]: -1 -> .1 (below the first), 0 -> .1,
    2.9 -> .1, 3 -> .6, 5.5 -> .6, 6 -> .7, 100 -> .7."""
    table = RepaymentTable(column="score", at=[0, 3, 6], probability=[0.1, 0.6, 0.7])
    got = repayment(table, np.asarray([-1, 0, 2.9, 3, 5.5, 6, 100]))
    assert got.tolist() == [0.1, 0.1, 0.1, 0.6, 0.6, 0.7, 0.7]


def test_added_events_keep_citizen_order_and_draw_afresh():
    """Loan outcomes for citizens 1 and 4 merge into the day's events [0, 2, 4] in citizen
    order (stable: 4's own event first), with draw counters 200 + event."""
    true = TrueEvents(np.asarray([0, 2, 4], np.int32), np.asarray([0, 1, 0], np.int16),
                      np.asarray([0, 0, 0], np.int32))
    merged = add_events(true, np.asarray([1, 4], np.int32), np.asarray([3, 3], np.int16))
    assert merged.citizen.tolist() == [0, 1, 2, 4, 4]
    assert merged.event.tolist() == [0, 3, 1, 0, 3]
    assert merged.seq.tolist() == [0, 203, 0, 0, 203]


# ------------------------------------------------------------------ through the engine
GATED = {
    "schema_version": 1,
    "name": "gated",
    "run": {"citizens": 300, "days": 5, "seed": 3},
    "behaviour": {"events": {}, "deterrence": []},
    "sensors": {"payments": {"events": ["baby_products_purchase", "loan_default",
                                        "loan_repaid"]},
                "cameras": {"events": ["red_light"]}},
    "policy": {"name": "gated", "score": {"start": 100, "min": 0, "max": 200},
               "rules": [{"event": "baby_products_purchase", "points": 5},
                         {"event": "red_light", "points": -50}],
               "tiers": [{"name": "A", "min": 104}, {"name": "B"}], "association": [],
               "sanctions": [{"when": 'tier == "B"', "deny": ["loans"]}]},
    "opportunities": {"loan": {"rate": 20.0, "min_age": 0,
                               "loan": {"repay": 1.0, "term_days": 100}}},
}


def _planted_day(realtime: bool, event: str, citizen: int, is_true: bool = True):
    """Day 0 of GATED with one planted observation, and the loan attempts that followed."""
    spec = build_scenario(GATED, policy={"score": {"realtime": realtime}})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    t = sim.events.index(event)
    obs = Observations(np.asarray([citizen], np.int32), np.asarray([t], np.int16),
                       np.zeros(1, np.int8), np.asarray([is_true]),
                       np.asarray([citizen if is_true else -1], np.int32))
    early = None if realtime else engine.gates(sim, state, *state.policy.consequences(
        0, state.scores, state.tier))
    policy = engine.apply_policy(sim, state, obs)
    today = early or engine.gates(sim, state, policy.denied, policy.granted)
    return sim, state, engine.try_opportunities(sim, state, today)


def _refused(day, citizen: int) -> bool:
    return citizen in day.refusals.citizen.tolist()


def test_realtime_scoring_counts_the_basket_bought_the_same_day():
    """Everyone starts at 100 (tier B, no loans). Citizen 7 buys baby products: +5 -> 105, tier
    A. Real-time: the loan asked for the same day is granted; scored at the start of the day
    (realtime false): refused, as for everyone else."""
    _, _, day = _planted_day(True, "baby_products_purchase", 7)
    assert not _refused(day, 7) and _refused(day, 8)
    _, _, day = _planted_day(False, "baby_products_purchase", 7)
    assert _refused(day, 7)


def _misidentified_and_guilty(sim, state, event: str):
    """Day 0 with two planted observations of ``event``: a false one naming citizen 9 and a
    true one by citizen 10; the loan attempts that followed."""
    t = sim.events.index(event)
    obs = Observations(np.asarray([9, 10], np.int32), np.asarray([t, t], np.int16),
                       np.zeros(2, np.int8), np.asarray([False, True]),
                       np.asarray([-1, 10], np.int32))
    policy = engine.apply_policy(sim, state, obs)
    return engine.try_opportunities(sim, state, engine.gates(sim, state, policy.denied,
                                                             policy.granted))


def test_false_observation_makes_a_wrongful_refusal():
    """Lenders refuse tier B (below 104). Everyone starts at 104 (A). A false red-light
    observation (-50) drops citizen 9 to 54 (B): refused; on true standing (54 + 50 = 104, A)
    the lender would have said yes, so the refusal is wrongful. A true red light on citizen
    10 is refused just the same, but rightly."""
    sim = engine.build(build_scenario(GATED, policy={"score": {"start": 104}}))
    state = engine.initial_state(sim)
    day = _misidentified_and_guilty(sim, state, "red_light")
    assert state.scores[9] == state.scores[10] == 54 * MILLI
    assert state.false_points[9] == -50 * MILLI and state.false_points[10] == 0
    assert dict(zip(day.refusals.citizen.tolist(), day.refusals.wrongful.tolist(),
                    strict=True)) == {9: True, 10: False}
    assert _count(day, "wrongful") == int((day.refusals.citizen == 9).sum())


def test_run_with_opportunities_records_every_refusal_and_resumes_bit_identically(tmp_path):
    """A stored run of GATED (everyone B: all loans refused) has one refusal row per refused
    attempt, per-group counts that add up, and gives the same fingerprint run straight or
    stopped and resumed."""
    from panopticon import api

    spec = build_scenario(GATED, run={"days": 6, "checkpoint_every": 2})
    result = api.run(spec)
    counts = result.table("opportunities").to_pandas()
    refusals = result.table("refusals").to_pandas()
    assert counts["refused"].sum() == len(refusals) > 0
    assert counts["attempts"].sum() == counts["refused"].sum() + counts["granted"].sum()
    assert result.daily.to_pandas()["refused"].sum() == len(refusals)
    whole = result.summary()["whole_run"]  # whole-run totals, distinct citizens counted once
    assert whole["refused"] == len(refusals)
    assert whole["citizens_refused"] == refusals.citizen.nunique() < len(refusals)
    assert whole["citizens_wrongly_refused"] == refusals[refusals.wrongful].citizen.nunique()
    sim = engine.build(spec)
    straight = engine.run(sim).fingerprint()
    half = engine.run(sim, until=3)
    resumed = engine.run(sim, engine.State.restore(half.snapshot(), sim))
    assert resumed.fingerprint() == straight


def test_opportunity_rates_above_twenty_a_day_are_a_user_error():
    """A multiplier pushing a rate above 20 tries a day is refused, naming the opportunity."""
    with pytest.raises(UserError, match="opportunities.flight"):
        engine.build(build_scenario(GATED, opportunities={"flight": {"rate": 12, "multipliers": {
            "sex": {"male": 2.0}}}}))


def test_a_grade_override_from_a_true_observation_is_part_of_true_standing():
    """Drunk driving caps the grade at B for 30 days, whatever the points (everyone starts at
    104, tier A). Citizen 9 is misidentified (false observation): capped at B, refused, and
    the refusal is wrongful (without the false record they are A). Citizen 10 really drove
    drunk: capped and refused just the same, but rightly."""
    spec = build_scenario(GATED, policy={"score": {"start": 104}, "rules": [
        {"event": "drunk_driving", "points": 0, "override": {"max_tier": "B", "days": 30}}]},
        sensors={"police": {"events": ["drunk_driving"]}})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    day = _misidentified_and_guilty(sim, state, "drunk_driving")
    assert state.tier[9] == state.tier[10] == 1 and (state.scores[[9, 10]] == 104 * MILLI).all()
    assert dict(zip(day.refusals.citizen.tolist(), day.refusals.wrongful.tolist(),
                    strict=True)) == {9: True, 10: False}


def test_true_standing_of_a_few_citizens_equals_that_of_everyone():
    """The true standing worked out for a subset of citizens (as for refusals) equals the
    same citizens' entries of the standing worked out for everyone, with sanctions that read
    the score, the tier, a grade cap and friends' mean score."""
    spec = build_scenario(GATED, run={"days": 20}, policy={
        "score": {"start": 104},
        "rules": [{"event": "red_light", "points": -3},
                  {"event": "drunk_driving", "override": {"max_tier": "B", "days": 5}}],
        "sanctions": [{"when": 'tier == "B"', "deny": ["loans"]},
                      {"when": 'ties_mean("friends") < 103.5', "deny": ["flights"]},
                      {"when": "score > 110", "grant": ["deposit_free_rental"]}]},
        behaviour={"events": {"red_light": {"rate": 0.1, "min_age": 0},
                              "drunk_driving": {"rate": 0.02, "min_age": 0}}},
        sensors={"cameras": {"events": ["red_light"], "misattribution": 0.5},
                 "police": {"events": ["drunk_driving"], "misattribution": 0.5}})
    sim = engine.build(spec)
    state = engine.run(sim)
    state.day -= 1  # the standing as of the last day
    some = np.flatnonzero(state.false_points != 0)[:40]
    assert len(some) > 10
    lazy = engine.gates(sim, state, {}, {}).honest(some)
    eager = engine.gates(sim, state, {}, {}, now=True).honest(some)
    for a, b in zip(lazy[:2], eager[:2], strict=True):
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert (lazy[2] == eager[2]).all()


def test_each_refusal_says_whether_a_sanction_a_missing_perk_or_the_score_refused_it():
    """A flight blocked by the flights sanction, needing the deposit-free perk, with a lender's
    minimum of 650 points. Citizen 1 is sanctioned, citizen 2 lacks the perk only (everyone but
    3 and 4 lacks it), citizen 3 has it but is below 650, citizen 4 passes every gate: each
    refusal carries its reasons, and the day's counts split the refusals by them."""
    scores = np.asarray([700, 700, 700, 600, 700, 700]) * MILLI
    opps = _opps(_kind(needs=("deposit_free_rental",), min_score=np.full(N, 650 * MILLI)),
                 rate=20.0)
    day = _everyone_tries(opps, OpportunityState.empty(opps, N),
                          _gates(denied=[1], honest_denied=[1], granted=[3, 4], scores=scores))
    r = day.refusals
    why = {c: (s, p, low) for c, s, p, low in zip(r.citizen.tolist(), r.sanctioned.tolist(),
                                                   r.no_perk.tolist(), r.low_score.tolist(),
                                                   strict=True)}
    assert why == {0: (False, True, False), 1: (True, True, False), 2: (False, True, False),
                   3: (False, False, True), 5: (False, True, False)}
    assert _count(day, "refused_sanctioned") == int((r.citizen == 1).sum())
    assert _count(day, "refused_low_score") == int((r.citizen == 3).sum())
    assert _count(day, "refused_no_perk") == int(np.isin(r.citizen, [0, 1, 2, 5]).sum())
