"""Lending and thresholds (issue 14): repayment tables by category, randomised thresholds,
thresholds solved from the lender's utilities (max profit, demographic parity, equal
opportunity; Liu et al. 2018, Hardt, Price and Srebro 2016), the lending metrics and
scheduled opportunities. Every expected number is worked out by hand in the docstrings.

The hand-worked population (used throughout): a repayment table with four bins at scores
0, 1, 2, 3 repaying with p = (0.2, 0.4, 0.6, 0.8) in both groups; gain 1 and loss 1, so a loan
in bin j earns u_j = p_j - (1 - p_j) = 2 p_j - 1 = (-0.6, -0.2, 0.2, 0.6) on average. Group A
has 10 citizens in each bin (40); group B has (20, 20, 10, 0) (50).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pyarrow as pa
import pytest
from conftest import build_scenario

from panopticon import api, engine
from panopticon.errors import UserError
from panopticon.metrics.intervals import wilson, z_value
from panopticon.metrics.lending import lending
from panopticon.policy.schema import MILLI
from panopticon.rng import Stage, stream_key, uniforms_at
from panopticon.sanctions import (
    Gates,
    Lender,
    Loan,
    Opportunities,
    Opportunity,
    OpportunityState,
    attempt,
    repayment,
    solve_thresholds,
)
from panopticon.scenario import RepaymentTable

P = np.array([0.2, 0.4, 0.6, 0.8])
COUNTS = np.array([[10, 10, 10, 10], [20, 20, 10, 0]])
REPAY = np.vstack([P, P])


# ------------------------------------------------------------------ solving, by hand
def test_max_profit_lends_to_the_bins_that_pay():
    """u = (-0.6, -0.2, 0.2, 0.6): each group's profit is largest lending to bins 2 and 3.
    A: 10 x 0.2 + 10 x 0.6 = 8 (bin 1 would add -2); B: 10 x 0.2 = 2 (bin 3 is empty).
    Threshold bin 2 for both, accepted in full: selection rates 20/40 = 0.5 and 10/50 = 0.2."""
    bins, accept = solve_thresholds(COUNTS, REPAY, 1.0, 1.0, "max_profit")
    assert bins.tolist() == [2, 2]
    assert accept.tolist() == [1.0, 1.0]


def test_max_profit_follows_gain_and_loss():
    """gain 3, loss 1: u_j = 3 p - (1 - p) = 4 p - 1 = (-0.2, 0.6, 1.4, 2.2): bin 1 pays too,
    bin 0 does not -> threshold bin 1. gain 1, loss 9: u = 10 p - 9 = (-7, -5, -3, -1): no
    bin pays -> bin 4 (nobody)."""
    assert solve_thresholds(COUNTS, REPAY, 3.0, 1.0, "max_profit")[0].tolist() == [1, 1]
    assert solve_thresholds(COUNTS, REPAY, 1.0, 9.0, "max_profit")[0].tolist() == [4, 4]


def test_max_profit_ties_lend_in_empty_bins_that_would_pay():
    """A group whose 5 citizens are all in bin 0 (u = -0.6): thresholds 1, 2, 3 and 4 all earn 0.
    The tie goes to the largest sum of u over the bins lent to: bins >= 1: -0.2 + 0.2 + 0.6 =
    0.6, >= 2: 0.8, >= 3: 0.6, none: 0 -> bin 2 (lend where lending would pay, if anyone
    arrives). A bin with u = 0 exactly (p = 0.5) is lent to (indifference lends)."""
    bins, _ = solve_thresholds(np.array([[5, 0, 0, 0]]), P[None], 1.0, 1.0, "max_profit")
    assert bins.tolist() == [2]
    half = np.array([[0.2, 0.5, 0.8]])
    assert solve_thresholds(np.array([[1, 1, 1]]), half, 1.0, 1.0, "max_profit")[0].tolist() \
        == [1]


def test_demographic_parity_by_hand():
    """Equal selection rates s in both groups, the most profitable s.

    Taking citizens from the top, A's profit grows at 40 u per unit of s: +24 on [0, .25]
    (bin 3), +8 on [.25, .5], -8, -24. B's (bin 3 empty) at 50 u: +10 on [0, .2] (bin 2),
    -10 on [.2, .6] (bin 1), -30 after. The total grows at 34 on [0, .2], 14 on [.2, .25],
    then falls (8 - 10 = -2): best s = 0.25. A lends to bin 3 in full (10 of 40, profit 6);
    B lends to bin 2 (10) and 2.5 of bin 1's 20 citizens: bin 1 at random with q = 2.5 / 20 =
    0.125 (profit 2 - 0.5 = 1.5). Total 7.5 (s = 0.2 gives 6.8, s = 0.5 gives 7)."""
    bins, accept = solve_thresholds(COUNTS, REPAY, 1.0, 1.0, "demographic_parity")
    assert bins.tolist() == [3, 1]
    assert accept == pytest.approx([1.0, 0.125], abs=1e-12)


def test_equal_opportunity_by_hand():
    """Equal true-positive rates t (share of each group's expected repayers, sum n p, lent to),
    the most profitable t.

    A's repayers per bin n p = (2, 4, 6, 8), 20 in all; B's (4, 8, 6, 0), 18. Per unit of t a
    bin adds (total) x u / p: A +15 on [0, .4] (bin 3: 20 x 0.6 / 0.8), +6.67 on [.4, .7];
    B +6 on [0, 1/3] (bin 2: 18 x 0.2 / 0.6), -9 on [1/3, 7/9] (bin 1: 18 x -0.2 / 0.4).
    Total: +21, then +6 on [1/3, .4], then 6.67 - 9 < 0: best t = 0.4. A lends to bin 3 in
    full (8 of 20 repayers); B needs 0.4 x 18 = 7.2: bin 2's 6 and 1.2 of bin 1's 8, so bin 1
    at random with q = 1.2 / 8 = 0.15 (profit 2 - 0.15 x 20 x 0.2 = 1.4)."""
    bins, accept = solve_thresholds(COUNTS, REPAY, 1.0, 1.0, "equal_opportunity")
    assert bins.tolist() == [3, 1]
    assert accept == pytest.approx([1.0, 0.15], abs=1e-12)


def test_an_empty_group_does_not_constrain_the_others():
    """A third group with nobody: demographic parity between A and B as above (bins 3 and 1),
    and the empty group gets its max-profit threshold (bin 2, by the tie rule)."""
    counts = np.vstack([COUNTS, np.zeros(4)])
    bins, accept = solve_thresholds(counts, np.vstack([REPAY, P]), 1.0, 1.0,
                                    "demographic_parity")
    assert bins.tolist() == [3, 1, 2]
    assert accept == pytest.approx([1.0, 0.125, 1.0])


# ------------------------------------------------------------------ at the gates
N = 90
SCORES = np.repeat(np.r_[np.arange(4), np.arange(4)], np.r_[COUNTS[0], COUNTS[1]]) * MILLI
GROUP = np.repeat([0, 1], [40, 50])
TABLE = RepaymentTable(column="score", at=[0, 1, 2, 3], probability=list(P))


def _lender(criterion: str) -> Lender:
    return Lender(1.0, 1.0, criterion, 1, GROUP.astype(np.int64), ("A", "B"),
                  np.ones(N, dtype=bool), REPAY.copy(), np.arange(4, dtype=np.int64) * MILLI)


def _loan_opps(lender: Lender, min_score=None, top=None, accept=None) -> Opportunities:
    loan = Loan(TABLE, 100, repaid_event=0, default_event=1)
    kind = Opportunity("loan", (), (), min_score, 0.0, 0.0, loan, top, accept, lender)
    rates = np.full((N, 1), 20.0)  # everyone tries: P(no try) = e^-20
    return Opportunities((kind,), rates, rates[:, 0], np.exp(-rates[:, 0]), (0,))


def _gates(scores=SCORES) -> Gates:
    return Gates({}, {}, scores, lambda who: ({}, {}, scores[who]))


def _repay_of(table, who):
    return repayment(table, SCORES[who] / MILLI)


def test_parity_thresholds_at_the_gates_and_the_day_metrics():
    """Demographic parity on the hand-worked population (bins 3 and 1, B's bin 1 at 0.125):
    A's 10 citizens in bin 3 borrow, nobody else of A; B's 10 in bin 2 borrow, and of B's 20
    in bin 1 exactly those whose coin of the day (one uniform per citizen, stream
    OPPORTUNITY/day/4) is below 0.125. The day's metrics: 40 and 50 applicants; summed
    repayment probabilities 10 x (0.2 + 0.4 + 0.6 + 0.8) = 20 (A) and 20 x 0.2 + 20 x 0.4 +
    10 x 0.6 = 18 (B); A's borrowers repay 8 in expectation, profit 10 x 0.6 = 6; B's bin-2
    borrowers 6, profit 2, plus 0.4 and -0.2 for each lucky bin-1 borrower."""
    opps = _loan_opps(_lender("demographic_parity"))
    state = OpportunityState.empty(opps, N)
    day = attempt(5, 0, opps, state, _gates(), GROUP.astype(np.uint8), 2, _repay_of)
    coin = uniforms_at(stream_key(5, Stage.OPPORTUNITY, 0, 4), np.arange(N))
    bin1_b = np.arange(40 + 20, 40 + 40)  # B's bin-1 citizens (after B's 20 in bin 0)
    lucky = bin1_b[coin[bin1_b] < 0.125]
    expected = np.r_[np.arange(30, 40), np.arange(80, 90), lucky]
    assert sorted(np.flatnonzero(state.loan_due[0] >= 0).tolist()) == sorted(expected.tolist())
    m = day.lending
    assert m["lending_loan_A_threshold_bin"] == 3 and m["lending_loan_B_threshold_bin"] == 1
    assert m["lending_loan_B_accept"] == pytest.approx(0.125)
    assert (m["lending_loan_A_applicants"], m["lending_loan_B_applicants"]) == (40, 50)
    assert m["lending_loan_A_repay_applicants"] == pytest.approx(20.0)
    assert m["lending_loan_B_repay_applicants"] == pytest.approx(18.0)
    assert m["lending_loan_A_borrowers"] == 10
    assert m["lending_loan_A_repay_borrowers"] == pytest.approx(8.0)
    assert m["lending_loan_A_profit_expected"] == pytest.approx(6.0)
    assert m["lending_loan_B_borrowers"] == 10 + len(lucky)
    assert m["lending_loan_B_profit_expected"] == pytest.approx(2.0 - 0.2 * len(lucky))
    assert m["lending_loan_A_mean_score"] == pytest.approx(1.5)
    assert m["lending_loan_B_mean_score"] == pytest.approx((20 * 1 + 10 * 2) / 50)
    assert not day.refusals.wrongful.any()  # the true standing meets the same coin


def test_thresholds_are_re_solved_only_on_their_days():
    """Demographic parity, every_days 3: solved on days 0, 3, 6, ... and kept in between. Day 0
    on the hand-worked population: bins (3, 1), B's at 0.125. On day 1 everyone is at score 3
    but the thresholds stay those of day 0 (B's bin-1 cell still random, bin 3 lent to). On day
    3 they are re-solved for that population: everyone in bin 3 (u = 0.6), so lending to all
    pays most (s = 1): both thresholds bin 3 in full, and all 90 borrow."""
    lender = Lender(**{**_lender("demographic_parity").__dict__, "every_days": 3})
    opps = _loan_opps(lender)
    state = OpportunityState.empty(opps, N)
    assert state.thresholds["loan"][0].tolist() == [4, 4]  # nobody, until solved
    attempt(1, 0, opps, state, _gates(), GROUP.astype(np.uint8), 2, _repay_of)
    assert state.thresholds["loan"][0].tolist() == [3, 1]
    high = np.full(N, 3 * MILLI, dtype=np.int64)
    state.loan_due[:] = -1
    attempt(1, 1, opps, state, _gates(high), GROUP.astype(np.uint8), 2, _repay_of)
    assert state.thresholds["loan"][0].tolist() == [3, 1]
    assert state.thresholds["loan"][1] == pytest.approx([1.0, 0.125])
    state.loan_due[:] = -1
    day = attempt(1, 3, opps, state, _gates(high), GROUP.astype(np.uint8), 2, _repay_of)
    assert state.thresholds["loan"][0].tolist() == [3, 3]
    assert state.thresholds["loan"][1].tolist() == [1.0, 1.0]
    assert day.lending["lending_loan_A_borrowers"] + day.lending["lending_loan_B_borrowers"] \
        == 90


def test_randomised_threshold_accepts_the_cell_by_the_coin():
    """min_score 1 point with the cell [1, 2) points (the table's bin 1) accepted with
    probability 0.5: scores 0 and 0.999 refused, 2 and 3 accepted, and 1 and 1.5 accepted iff
    the citizen's coin of the day is below 0.5. The refused ones in the cell are low_score
    refusals, never wrongful (the true standing meets the same coin)."""
    scores = np.tile(np.array([0, 999, 1000, 1500, 2000, 3000]), 15).astype(np.int64)
    lo = np.full(N, MILLI, dtype=np.int64)
    opps = _loan_opps(None, lo, np.full(N, 2 * MILLI, dtype=np.int64), np.full(N, 0.5))
    state = OpportunityState.empty(opps, N)
    day = attempt(9, 2, opps, state, _gates(scores), GROUP.astype(np.uint8), 2, _repay_of)
    coin = uniforms_at(stream_key(9, Stage.OPPORTUNITY, 2, 4), np.arange(N))
    in_cell = (scores >= 1000) & (scores < 2000)
    want = (scores >= 2000) | (in_cell & (coin < 0.5))
    assert np.array_equal(state.loan_due[0] >= 0, want)
    assert 0 < (in_cell & want).sum() < in_cell.sum()
    assert day.refusals.low_score.all() and not day.refusals.wrongful.any()


# ------------------------------------------------------------------ the scenario language
BASE = {
    "schema_version": 1, "name": "lend",
    "run": {"citizens": 2000, "days": 12, "seed": 27},
    "society": {"households": {"size": {"values": [1], "weights": [1]}, "child_share": 0.0},
                "group": {"values": ["g1", "g2"], "weights": [0.5, 0.5]},
                "ties": {"friends": {"mean_degree": 0}},
                "traits": {"level": {"by": "group", "values": {
                    "g1": {"values": [0, 1, 2, 3], "weights": [1, 1, 1, 1]},
                    "g2": {"values": [0, 1, 2, 3], "weights": [2, 2, 1, 0]}}}}},
    "behaviour": {"events": {}},
    "opportunities": {"loan": {
        "rate": 1.0, "blocked_by": [],
        "loan": {"term_days": 1, "repay": {"column": "score", "at": [0, 1, 2, 3],
                                           "probability": [0.2, 0.4, 0.6, 0.8]}}}},
    "sensors": {"payments": {"events": ["loan_repaid", "loan_default"]}},
    "policy": {"name": "levels", "score": {"start": "level", "min": 0, "max": 3},
               "rules": [{"event": "loan_repaid", "points": 1},
                         {"event": "loan_default", "points": -1}],
               "tiers": [{"name": "all"}]},
}


def _data(**loan) -> dict:
    data = copy.deepcopy(BASE)
    data["opportunities"]["loan"].update(loan)
    return data


def _refused(data: dict) -> str:
    with pytest.raises(UserError) as info:
        build_scenario(data)
    return str(info.value)


def test_repayment_table_by_group_reads_the_borrowers_group():
    """repay by group: g1 always repays (1.0 in every bin), g2 always defaults (0.0). Loans of
    term 1 granted on day d end on day d + 1: every g1 outcome is loan_repaid and every g2
    outcome loan_default, so g1's scores only rise and g2's only fall."""
    data = _data(loan={"term_days": 1, "repay": {
        "column": "score", "at": [0, 1, 2, 3], "by": "group",
        "probability": {"g1": [1, 1, 1, 1], "g2": [0, 0, 0, 0]}}})
    result = api.run(build_scenario(data))
    citizens = result.citizens.to_pandas()
    g1 = citizens["social_group"] == "g1"
    assert (citizens.loc[g1, "score"] >= citizens.loc[g1, "level"]).all()
    assert (citizens.loc[~g1, "score"] <= citizens.loc[~g1, "level"]).all()
    assert (citizens.loc[g1, "score"] > citizens.loc[g1, "level"]).any()
    assert (citizens.loc[~g1, "score"] < citizens.loc[~g1, "level"]).any()


def test_repayment_table_by_category_is_checked():
    """Each category needs its list of as many probabilities as 'at'; a dict without 'by' and
    a 'by' without a dict are refused; unknown and missing categories are named."""
    table = {"column": "score", "at": [0, 1, 2, 3], "by": "group",
             "probability": {"g1": [1, 1, 1, 1]}}
    msg = _refused(_data(loan={"repay": table}))
    assert "opportunities.loan.loan.repay.probability" in msg and "missing ['g2']" in msg
    table["probability"] = {"g1": [1, 1, 1, 1], "g2": [1, 1, 1, 1], "g3": [1, 1, 1, 1]}
    assert "got 'g3'; expected a group of this society" in _refused(_data(loan={"repay": table}))
    table["probability"] = {"g1": [1, 1, 1], "g2": [1, 1, 1, 1]}
    assert "4 values of 'at' need as many probabilities of 'g1'; got 3" in _refused(
        _data(loan={"repay": table}))
    del table["by"]
    assert "needs 'by'" in _refused(_data(loan={"repay": table}))


def test_lender_keys_are_checked_with_clear_messages():
    """A solved lender needs a score table and no min_score or accept_at_min of its own; its
    by must match the table's; a lender needs a loan; accept_at_min needs a threshold; gain
    and loss cannot both be 0."""
    solved = {"criterion": "max_profit"}
    msg = _refused(_data(lender=solved, loan={"repay": 0.5}))
    assert "opportunities.loan.lender.criterion" in msg and "column: score" in msg
    msg = _refused(_data(lender=solved, min_score=2))
    assert "opportunities.loan.min_score" in msg and "set by lender.criterion" in msg
    table = {"column": "score", "at": [0, 1, 2, 3], "by": "group",
             "probability": {"g1": [1, 1, 1, 1], "g2": [1, 1, 1, 1]}}
    msg = _refused(_data(lender={**solved, "by": "sex"}, loan={"repay": table}))
    assert "opportunities.loan.lender.by" in msg and "by: group" in msg
    data = _data(lender=solved)
    del data["opportunities"]["loan"]["loan"]
    assert "a lender needs loan" in _refused(data)
    assert "needs min_score" in _refused(_data(accept_at_min=0.5))
    assert "both 0" in _refused(_data(lender={**solved, "gain": 0, "loss": 0}))
    msg = _refused(_data(min_score=1, accept_at_min={"group": {"g1": 0.5}}))
    assert "opportunities.loan.accept_at_min.group" in msg and "missing ['g2']" in msg


def test_randomised_threshold_cell_is_the_tables_bin():
    """min_score 1 with the score table at [0, 1, 2, 3]: the cell is [1000, 2000) milli;
    min_score 2.5: the cell runs from 2500 to the next edge, 3000; at the last bin it has no
    top. Without a score table (repay 0.5) the cell is the score 1 exactly: [1000, 1001)."""
    for min_score, top in ((1, 2000), (2.5, 3000), (3, np.iinfo(np.int64).max)):
        sim = engine.build(build_scenario(_data(min_score=min_score, accept_at_min=0.5)))
        kind = sim.opportunities.kinds[0]
        assert (kind.cell_top == top).all() and (kind.accept == 0.5).all()
    sim = engine.build(build_scenario(_data(min_score=1, accept_at_min=0.5,
                                            loan={"repay": 0.5})))
    assert (sim.opportunities.kinds[0].cell_top == 1001).all()
    plain = engine.build(build_scenario(_data(min_score=1, accept_at_min=1.0)))
    assert plain.opportunities.kinds[0].accept is None  # the default: today's threshold


def test_solved_run_records_thresholds_that_match_the_solver_and_resumes_exactly():
    """A run with demographic-parity thresholds re-solved every 4 days: the day-0 thresholds
    in the daily table are what solve_thresholds gives for the day-0 histogram; they change
    only on days 0, 4, 8; a run resumed from a checkpoint of day 6 (between solves: the
    thresholds come from the snapshot) ends bit for bit like the run straight through; the
    snapshot has the thresholds under opportunities.threshold_*."""
    spec = build_scenario(_data(lender={"criterion": "demographic_parity", "every_days": 4}))
    result = api.run(spec)
    daily = result.daily.to_pandas()
    sim = engine.build(spec)
    start = engine.initial_state(sim)
    level = np.minimum(start.scores // MILLI, 3)
    group = sim.society.population.group
    counts = np.zeros((2, 4))
    np.add.at(counts, (group, level), 1)
    bins, accept = solve_thresholds(counts, REPAY, 1.0, 1.0, "demographic_parity")
    assert [daily[f"lending_loan_{g}_threshold_bin"][0] for g in ("g1", "g2")] == bins.tolist()
    assert [daily[f"lending_loan_{g}_accept"][0] for g in ("g1", "g2")] == \
        pytest.approx(accept.tolist())
    cols = [f"lending_loan_{g}_{w}" for g in ("g1", "g2") for w in ("threshold_bin", "accept")]
    changed = np.flatnonzero((daily[cols].diff().abs().sum(axis=1) > 0).to_numpy())
    assert set(changed.tolist()) <= {4, 8}

    straight = engine.run(sim)
    sim2 = engine.build(spec)
    half = engine.run(sim2, until=6)
    snap = half.snapshot()
    assert {"opportunities.threshold_bin.loan", "opportunities.threshold_accept.loan"} <= set(snap)
    assert engine.State.check_snapshot(snap, sim2) == []
    resumed = engine.run(sim2, engine.State.restore(snap, sim2))
    assert resumed.fingerprint() == straight.fingerprint()
    assert api.run(spec).manifest["result"]["fingerprint"] == \
        result.manifest["result"]["fingerprint"]


def test_runs_without_solved_thresholds_keep_no_threshold_state():
    """A fixed lender (metrics only) and a plain min_score keep the state as before: no
    threshold arrays in the snapshot (so fingerprints of existing scenarios do not move)."""
    for extra in ({"min_score": 2}, {"min_score": 2, "lender": {"gain": 1, "loss": 1}}):
        state = engine.initial_state(engine.build(build_scenario(_data(**extra))))
        assert not [k for k in state.snapshot() if "threshold" in k]


def test_schedule_applies_once_or_every_k_days():
    """rate 0 and schedule {first_day: 2}: every one of the 2,000 adults tries on day 2 and on
    no other day. {first_day: 1, every_days: 4} over 12 days: tries on days 1, 5, 9 only (loans
    of term 1 end the next day, so everyone is free to borrow again)."""
    once = api.run(build_scenario(_data(rate=0.0, schedule={"first_day": 2})))
    attempts = once.daily.to_pandas()["attempts"].to_numpy()
    assert attempts.tolist() == [0, 0, 2000] + [0] * 9
    every = api.run(build_scenario(_data(rate=0.0, schedule={"first_day": 1, "every_days": 4})))
    attempts = every.daily.to_pandas()["attempts"].to_numpy()
    assert np.flatnonzero(attempts).tolist() == [1, 5, 9]
    assert (attempts[[1, 5, 9]] == 2000).all()


def test_scheduled_tries_add_to_the_rate():
    """rate 1.0 plus schedule on day 0: day 0 has the rate's Poisson tries (about 2,000) plus
    2,000 scheduled ones; the run without the schedule has the same drawn tries (the schedule
    draws nothing), so the difference is exactly 2,000."""
    with_ = api.run(build_scenario(_data(schedule={"first_day": 0})))
    without = api.run(build_scenario(_data()))
    a = with_.daily.to_pandas()["attempts"][0]
    b = without.daily.to_pandas()["attempts"][0]
    assert a - b == 2000


# ------------------------------------------------------------------ metrics
class _Run:
    """A run with only a daily table (what metrics.lending reads)."""

    path = None
    manifest: dict = {}

    def __init__(self, daily: dict):
        self._daily = pa.table(daily)

    def table(self, name):
        if name != "daily":
            raise UserError("no table")
        return self._daily


def test_lending_metrics_by_hand():
    """Two days of one lender (categories A, B), written by hand:

    A: applicants 10 + 10, borrowers 4 + 6 -> selection rate 10 / 20 = 0.5 (Wilson interval
    of 10 in 20); repayment mass of applicants 8 + 8 = 16, of borrowers 5 + 7 = 12 -> TPR
    0.75; repaid 8, defaulted 2, gain 1 loss 1 -> profit 6; variance 1.5 + 2.5 = 4 -> sd 2,
    interval 6 ± 1.96 x 2; mean score 2.0 then 2.5 -> change +0.5.
    B: 5 + 5 applicants, 1 + 0 borrowers -> 0.1; TPR 0.5 / 4 = 0.125; mean 1.0 -> 0.75.
    "all": 11 of 30 -> 11 / 30."""
    def cols(cat, **v):
        return {f"lending_loan_{cat}_{k}": x for k, x in v.items()}

    daily = {"day": [0, 1],
             **cols("A", applicants=[10, 10], borrowers=[4, 6], repay_applicants=[8, 8],
                    repay_borrowers=[5, 7], repaid=[3, 5], defaulted=[1, 1], profit=[2, 4],
                    profit_expected=[2.0, 4.0], profit_variance=[1.5, 2.5],
                    mean_score=[2.0, 2.5]),
             **cols("B", applicants=[5, 5], borrowers=[1, 0], repay_applicants=[2, 2],
                    repay_borrowers=[0.5, 0], repaid=[0, 0], defaulted=[1, 0],
                    profit=[-1, 0], profit_expected=[-0.5, 0.0], profit_variance=[0.25, 0],
                    mean_score=[1.0, 0.75])}
    class WithCitizens(_Run):
        def table(self, name):
            if name == "citizens":
                return pa.table({"social_group": ["A", "B"]})
            return super().table(name)

    m = lending(WithCitizens(daily))["loan"]
    a, b, both = m["A"], m["B"], m["all"]
    assert a["selection_rate"] == 0.5
    assert (a["selection_rate_low"], a["selection_rate_high"]) == pytest.approx(wilson(10, 20))
    assert a["true_positive_rate"] == 0.75 and a["profit"] == 6 and a["profit_sd"] == 2
    assert a["profit_low"] == pytest.approx(6 - z_value() * 2)
    assert a["mean_score_change"] == pytest.approx(0.5)
    assert b["selection_rate"] == pytest.approx(0.1)
    assert b["true_positive_rate"] == pytest.approx(0.125)
    assert b["mean_score_change"] == pytest.approx(-0.25)
    assert both["selection_rate"] == pytest.approx(11 / 30)
    assert both["profit"] == 5 and both["profit_sd"] == pytest.approx(math.sqrt(4.25))


def test_lending_metrics_of_a_run():
    """A real run with a fixed lender (min_score 2): the metrics read back from its daily
    table agree with the opportunities table (borrowers = loans started), the selection rate
    lies in its interval, and nobody below bin 2 borrowed, so every loan earns at least
    u = 2 x 0.6 - 1 = 0.2 in expectation."""
    spec = build_scenario(_data(min_score=2, lender={"gain": 1, "loss": 1}))
    result = api.run(spec)
    m = lending(result, spec)["loan"]
    loans = result.table("opportunities").to_pandas()["loans"].sum()
    assert m["all"]["borrowers"] == loans
    for cat in ("g1", "g2"):
        row = m[cat]
        assert row["selection_rate_low"] <= row["selection_rate"] <= row["selection_rate_high"]
        assert row["repaid"] + row["defaulted"] == row["borrowers"]
    assert m["all"]["profit_expected"] >= 0.2 * m["all"]["borrowers"] - 1e-9  # u >= 0.2
    assert m == lending(result)["loan"]  # parsed from the citizens table's categories alike


def test_max_profit_lender_reproduces_the_lending_examples_fixed_threshold():
    """examples/lending.yaml lends at level 3 because u = 2p - 1 >= 0 from level 3 up (p =
    0.6, 0.65, 0.7, 0.7; level 2 has 0.45). A max-profit lender with gain 1 and loss 1 solves
    exactly that threshold every day (bins 3-6 pay, whoever is in them), so the run makes the
    same decisions: the same loans per day and group, and the same final scores. Its lending
    metrics say threshold bin 3 for both groups on every day."""
    spec = api.load("examples/lending.yaml").with_run(citizens=3000, days=30)
    data = spec.model_dump(mode="json", exclude_defaults=True)
    loan = data["opportunities"]["loan"]
    del loan["min_score"]
    loan["lender"] = {"gain": 1, "loss": 1, "criterion": "max_profit"}
    solved = api.run(build_scenario(data))
    fixed = api.run(spec)
    a, b = (r.table("opportunities").to_pandas() for r in (solved, fixed))
    assert a.equals(b)
    assert np.array_equal(solved.citizens["score"].to_numpy(), fixed.citizens["score"].to_numpy())
    daily = solved.daily.to_pandas()
    for g in ("group_1", "group_2"):
        assert (daily[f"lending_loan_{g}_threshold_bin"] == 3).all()
        assert (daily[f"lending_loan_{g}_accept"] == 1).all()


def test_two_dimensional_table_over_score_and_income():
    """A table over score x income: rows by income (by_at [0, 1000]), columns by score (at
    [0, 2]). Income below 1,000: p = 0 below score 2 and 1 from 2 up; income 1,000 and up:
    p = 1 everywhere. So every default is by a citizen with income below 1,000 (and score
    0 or 1 at the grant), nobody with income 1,000+ defaults, and both kinds of outcome
    happen among the lower incomes (scores 0-3 are all drawn)."""
    data = _data(loan={"term_days": 1, "repay": {
        "column": "score", "at": [0, 2], "by_column": "income", "by_at": [0, 1000],
        "probability": [[0, 1], [1, 1]]}})
    data["society"]["income"] = {"kind": "uniform", "low": 0, "high": 2000}
    result = api.run(build_scenario(data))
    obs = result.observations.to_pandas()
    income = result.citizens.to_pandas().set_index("citizen")["income"]
    outcome = obs.assign(income=income.reindex(obs["citizen"]).to_numpy())
    defaults = outcome[outcome["event"] == "loan_default"]
    repaid = outcome[outcome["event"] == "loan_repaid"]
    assert len(defaults) > 0 and (defaults["income"] < 1000).all()
    assert (repaid["income"] < 1000).any() and (repaid["income"] >= 1000).any()


def test_two_dimensional_table_is_checked():
    """by_column names a numeric column; rows match by_at; a solved lender refuses it."""
    table = {"column": "score", "at": [0, 2], "by_column": "incom", "by_at": [0, 1000],
             "probability": [[0, 1], [1, 1]]}
    msg = _refused(_data(loan={"repay": table}))
    assert "opportunities.loan.loan.repay.by_column" in msg
    assert "got 'incom'; expected a numeric column" in msg
    table["by_column"] = "income"
    msg = _refused(_data(loan={"repay": table}, lender={"criterion": "max_profit"}))
    assert "without by_column" in msg
    table["probability"] = [[0, 1]]
    assert "2 values of 'by_at' need as many lists" in _refused(_data(loan={"repay": table}))


def test_summary_and_sweeps_see_each_lenders_metrics_per_category():
    """summary() (what compare and sweeps print) carries the whole run's selection rate,
    true-positive rate, profit and mean score change per category and overall, equal to
    metrics.lending.lending's; rates within [0, 1]."""
    from panopticon.metrics.run import LENDING_SUMMARY, summary, summary_bounds

    result = api.run(build_scenario(_data(lender={"criterion": "equal_opportunity"})))
    found = lending(result)["loan"]
    flat = summary(result)
    for category in ("g1", "g2", "all"):
        for what in LENDING_SUMMARY:
            if what in found[category] and math.isfinite(found[category][what]):
                assert flat[f"lending_loan_{category}_{what}"] == found[category][what]
    assert summary_bounds("lending_loan_g1_selection_rate") == (0.0, 1.0)
    assert 0 <= flat["lending_loan_all_selection_rate"] <= 1
