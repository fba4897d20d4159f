"""examples/lending.yaml: the lending environment of ml-fairness-gym (D'Amour et al., FAT* 2020).

Seven credit-score levels 0..6 repay with (0.1, 0.2, 0.45, 0.6, 0.65, 0.7, 0.7); group_1 starts
at levels (0, .1, .1, .2, .3, .3, 0), group_2 at (.1, .1, .2, .3, .3, 0, 0); a max-utility lender
lends at level 3 and up; a repaid loan moves the borrower one level up, a default one down.
See docs/examples/lending.md.

One run of the example as written (20,000 citizens, 100 days, seed 27) is shared by the tests;
the numbers it gives are compared with what the rules imply, within 3 standard errors where
they are random.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from panopticon import api, engine

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lending.yaml"
PANOPTICON = Path(sys.executable).with_name("panopticon")
REPAY = np.array([0.1, 0.2, 0.45, 0.6, 0.65, 0.7, 0.7])
START = {"group_1": np.array([0.0, 0.1, 0.1, 0.2, 0.3, 0.3, 0.0]),
         "group_2": np.array([0.1, 0.1, 0.2, 0.3, 0.3, 0.0, 0.0])}
THRESHOLD = 3
MILLI = 1000
APPLY = 1 - math.exp(-1.0)
"""Chance that a citizen applies on a given day: attempts are Poisson with mean ``rate`` 1.0."""


@pytest.fixture(scope="module")
def spec():
    return api.load(EXAMPLE)


@pytest.fixture(scope="module")
def result(spec):
    return api.run(spec)


@pytest.fixture(scope="module")
def citizens(result):
    return result.citizens.to_pandas()


@pytest.fixture(scope="module")
def day0_scores(spec):
    """Every citizen's score on day 0, before anything happens (milli-points)."""
    return engine.initial_state(engine.build(spec)).scores.copy()


@pytest.fixture(scope="module")
def trajectory(result, spec, day0_scores):
    """(n, days) int64: every citizen's score at the end of every day, replayed from the start
    scores and the ledger (at most one ledger row per citizen and day: one loan at a time)."""
    ledger = result.ledger
    n, days = spec.run.citizens, spec.run.days
    day = ledger["day"].to_numpy()
    citizen = ledger["citizen"].to_numpy()
    assert len(np.unique(day.astype(np.int64) * n + citizen)) == len(day)
    delta = np.zeros((n, days), dtype=np.int64)
    delta[citizen, day] = ledger["delta_milli"].to_numpy()
    return day0_scores[:, None] + np.cumsum(delta, axis=1)


def before(trajectory, day0_scores, day, citizen):
    """Scores at the start of ``day`` (the end of the day before) of ``citizen``."""
    prev = np.where(day > 0, day - 1, 0)
    return np.where(day > 0, trajectory[citizen, prev], day0_scores[citizen])


def test_scenario_validates():
    """`panopticon validate examples/lending.yaml` accepts the file (exit 0) and the spec is
    what the environment needs: start score = the level trait, bounds 0..6, threshold 3,
    one-day loans repaid by the level table."""
    out = subprocess.run([str(PANOPTICON), "validate", str(EXAMPLE)], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout and "(lending)" in out.stdout
    spec = api.load(EXAMPLE)
    assert (spec.policy.score.start, spec.policy.score.min, spec.policy.score.max) == \
        ("level", 0, 6)
    loan = spec.opportunities["loan"]
    assert loan.min_score == THRESHOLD
    assert loan.loan.repay.column == "score"
    assert loan.loan.repay.at == [0, 1, 2, 3, 4, 5, 6]
    assert loan.loan.repay.probability == list(REPAY)


def test_every_citizen_is_an_adult_who_applies(result, spec, citizens):
    """One-person households and no children: every citizen is 18 or older (children could not
    borrow: the loan's min_age is 18), and every citizen applies at rate 1.0 a day. Attempts
    are Poisson with mean 1 per citizen-day, so day 0 has 20,000 +- 3 x sqrt(20,000) = 424."""
    assert citizens["age"].min() >= 18
    assert (citizens["children"] == 0).all()
    sim = engine.build(spec)
    assert np.all(sim.opportunities.rates == 1.0)
    opp = result.table("opportunities").to_pandas()
    day0 = opp[opp["day"] == 0]["attempts"].sum()
    n = spec.run.citizens
    assert abs(day0 - n) < 3 * math.sqrt(n)


def test_starting_repayment_rates_are_0590_and_0495(spec, citizens, day0_scores):
    """Starting repayment rate of a group = sum over levels of P(level | group) x P(repay | level).

    group_1: .1 x .2 + .1 x .45 + .2 x .6 + .3 x .65 + .3 x .7
           = .02 + .045 + .12 + .195 + .21 = 0.590
    group_2: .1 x .1 + .1 x .2 + .2 x .45 + .3 x .6 + .3 x .65
           = .01 + .02 + .09 + .18 + .195 = 0.495

    The run's day-0 scores (= each citizen's level trait) mapped through the table average to
    these within 3 standard errors: with ~10,000 citizens a group and a per-citizen SD of about
    0.15 (group_1) and 0.19 (group_2), SE is about 0.0015 and 0.0019.
    """
    traits = spec.society.traits["level"].values
    for group, weights in START.items():
        table = traits[group]
        assert table.values == [0, 1, 2, 3, 4, 5, 6]
        assert np.allclose(np.asarray(table.weights), weights)
        exact = float(np.dot(np.asarray(table.weights) / sum(table.weights), REPAY))
        assert exact == pytest.approx({"group_1": 0.590, "group_2": 0.495}[group], abs=1e-12)

    assert np.array_equal(day0_scores, (citizens["level"].to_numpy() * MILLI).astype(np.int64))
    for group, weights in START.items():  # levels of weight 0 never occur
        drawn = day0_scores[(citizens["social_group"] == group).to_numpy()] // MILLI
        assert set(np.unique(drawn)) == set(np.flatnonzero(weights))
    p = REPAY[day0_scores // MILLI]
    for group, expected in (("group_1", 0.590), ("group_2", 0.495)):
        mine = p[(citizens["social_group"] == group).to_numpy()]
        se = mine.std(ddof=1) / math.sqrt(len(mine))
        assert abs(mine.mean() - expected) < 3 * se, (group, mine.mean(), se)


def test_levels_below_threshold_never_change(result, citizens, trajectory, day0_scores):
    """The lender never lends below level 3, and only loan outcomes move scores, so a citizen
    who starts at 0, 1 or 2 ends where they started and has no ledger row; every ledger row is
    the outcome of a loan granted the day before at level 3 or more; every refusal is of a
    citizen below 3 at the time (gates read the score at the end of the day)."""
    level = citizens["level"].to_numpy()
    score = citizens["score"].to_numpy()
    low = level < THRESHOLD
    assert low.sum() > 0
    assert np.array_equal(score[low], level[low])
    assert np.all(trajectory[low] == (level[low] * MILLI).astype(np.int64)[:, None])

    ledger = result.ledger
    day = ledger["day"].to_numpy()
    who = ledger["citizen"].to_numpy()
    assert not np.isin(who, np.flatnonzero(low)).any()
    assert (day >= 1).all()  # a loan of day d ends on day d + 1
    at_loan = before(trajectory, day0_scores, day, who)
    assert (at_loan >= THRESHOLD * MILLI).all()

    refusals = result.table("refusals")
    r_day = refusals["day"].to_numpy()
    r_who = refusals["citizen"].to_numpy()
    assert len(r_day) > 0
    assert (trajectory[r_who, r_day] < THRESHOLD * MILLI).all()
    assert not refusals["wrongful"].to_numpy().any()


def test_repaid_moves_up_one_default_down_one_within_0_and_6(result, citizens, trajectory,
                                                               day0_scores):
    """Rules ``loan_repaid: +1`` and ``loan_default: -1`` on scores bounded to [0, 6]: every
    ledger row is +1000 milli for a repayment and -1000 for a default, caused by a true
    observation. Scores stay in [0, 6] all run. Borrowers are at 3 or more, so a default never
    meets the floor; a repayment at 6 is clamped to no change and leaves no ledger row: every
    observed outcome without a row is a repayment by a citizen at 6. Replaying the ledger from
    the start scores gives the final scores."""
    ledger = result.ledger.to_pandas()
    repaid = ledger["rule"] == "loan_repaid"
    assert set(ledger["rule"]) == {"loan_repaid", "loan_default"}
    assert (ledger.loc[repaid, "delta_milli"] == MILLI).all()
    assert (ledger.loc[~repaid, "delta_milli"] == -MILLI).all()
    assert ledger["observation_true"].all()

    assert trajectory.min() >= 0 and trajectory.max() <= 6 * MILLI
    assert np.array_equal(trajectory[:, -1], (citizens["score"].to_numpy() * MILLI).astype(int))

    obs = result.observations.to_pandas()
    assert obs["is_true"].all()
    scored = obs["id"].isin(ledger["observation"])
    unscored = obs[~scored]
    assert len(unscored) > 0
    assert (unscored["event"] == "loan_repaid").all()
    at = before(trajectory, day0_scores, unscored["day"].to_numpy(),
                unscored["citizen"].to_numpy())
    assert (at == 6 * MILLI).all()
    both = obs[scored].merge(ledger, left_on="id", right_on="observation")
    assert (both["event"].astype(str) == both["rule"].astype(str)).all()


def test_group_outcomes_diverge(spec, citizens):
    """Under the max-utility lender the two groups' scores move differently (and both fall).

    Why: level 2 is absorbing. A borrower at 3 who defaults lands at 2, where the lender never
    lends again, while nobody below 3 ever moves. So in the long run everyone who starts at 3+
    ends at 2: group_1's mean would change by .2 x (2-3) + .3 x (2-4) + .3 x (2-5) = -1.7
    levels and group_2's by .3 x (2-3) + .3 x (2-4) = -0.9. group_1 has more to lose: 80% of it
    is exposed to lending (60% of group_2), and from higher levels.

    After 100 days the chain is part-way there. Each day a citizen at 3+ applies with
    probability q = 1 - e^-1 = 0.632 and the outcome lands the next day, so the final level is
    99 steps of the chain P(l -> l+1) = q p_l, P(l -> l-1) = q (1 - p_l) (6 -> 6 on repayment),
    staying put otherwise, and levels 0..2 fixed. From the groups' start weights that gives
    mean changes of -0.753 (group_1) and -0.313 (group_2). The test compares each group's mean
    final score with the chain's expectation given each citizen's own start level, within 3
    standard errors, and asserts the sign: group_1 falls more than group_2, both fall.
    """
    chain = np.eye(7)
    for lvl in range(THRESHOLD, 7):
        chain[lvl] = 0.0
        chain[lvl, min(lvl + 1, 6)] += APPLY * REPAY[lvl]
        chain[lvl, lvl - 1] += APPLY * (1 - REPAY[lvl])
        chain[lvl, lvl] += 1 - APPLY
    steps = np.linalg.matrix_power(chain, spec.run.days - 1)
    levels = np.arange(7.0)
    mean_by_start = steps @ levels
    var_by_start = steps @ levels**2 - mean_by_start**2
    for group, weights in START.items():  # the numbers quoted above
        expected = float(weights @ steps @ levels - weights @ levels)
        assert expected == pytest.approx({"group_1": -0.753, "group_2": -0.313}[group],
                                         abs=5e-4)

    change = {}
    for group in START:
        mine = citizens[citizens["social_group"] == group]
        start = mine["level"].to_numpy().astype(int)
        final = mine["score"].to_numpy()
        se = math.sqrt(var_by_start[start].sum()) / len(start)
        assert abs(final.mean() - mean_by_start[start].mean()) < 3 * se, (group, se)
        change[group] = final.mean() - start.mean()
        # the share the lender still serves falls too
        assert (final >= THRESHOLD).mean() < (start >= THRESHOLD).mean()
    assert change["group_1"] < change["group_2"] < 0, change


def test_loans_started_equal_loans_column_and_outcomes_a_term_later(result, spec):
    """A loan started on day d (term_days 1) ends on day d + 1 as exactly one true
    ``loan_repaid`` or ``loan_default``. So the opportunities table's ``loans`` (summed over
    groups) equals the daily ``loans`` and the outcome events of the next day; day 0 has no
    outcomes, and the loans of the last day end after the run."""
    term = spec.opportunities["loan"].loan.term_days
    assert term == 1
    days = spec.run.days
    opp = result.table("opportunities").to_pandas()
    assert set(opp["opportunity"]) == {"loan"}
    started = opp.groupby("day")["loans"].sum().reindex(range(days), fill_value=0).to_numpy()
    daily = result.daily.to_pandas().set_index("day")["loans"].reindex(range(days)).to_numpy()
    assert np.array_equal(started, daily)
    assert (started > 0).all()
    assert np.array_equal(opp["attempts"], opp["refused"] + opp["granted"])
    assert (opp["loans"] <= opp["granted"]).all()

    events = result.events.to_pandas()
    outcomes = events[events["event"].isin(["loan_repaid", "loan_default"])]
    ended = outcomes.groupby("day")["true_events"].sum().reindex(range(days), fill_value=0).to_numpy()
    assert ended[0] == 0
    assert np.array_equal(ended[term:], started[:days - term])


def test_only_loan_outcomes_happen(result):
    """No behaviour but loan outcomes: the run's event types are loan_repaid and loan_default,
    every observation is true and observed (detection 1, no errors), and nothing is listed."""
    events = result.events.to_pandas()
    assert set(events["event"].astype(str)) == {"loan_repaid", "loan_default"}
    assert (events["missed"] == 0).all() and (events["false_observations"] == 0).all()
    assert (events["observed"] == events["true_events"]).all()
    behaviour = result.table("behaviour").to_pandas()
    assert set(behaviour["event"].astype(str)) == {"loan_repaid", "loan_default"}
    assert result.observations.num_rows == int(events["true_events"].sum())
    assert result.lists.num_rows == 0
    assert result.daily["false_observations"].to_numpy().sum() == 0
