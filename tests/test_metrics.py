"""Run metrics on hand-built tables, checked against values worked out by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from conftest import FakeRun

import panopticon as pc
from panopticon.errors import UserError
from panopticon.metrics import run as m
from panopticon.metrics.intervals import wilson


def spec(start, tiers):
    policy = SimpleNamespace(score=SimpleNamespace(start=start),
                             tiers=[SimpleNamespace(name=n, min=lo) for n, lo in tiers],
                             tier_names=[n for n, _ in tiers])
    return SimpleNamespace(policy=policy)


DAILY = {"day": [0, 1, 2], "mean_score": [100.0, 99.0, 98.0], "median_score": [100.0, 100.0, 99.0],
         "share_A": [1.0, 0.75, 0.5], "share_B": [0.0, 0.25, 0.5],
         "observed_true": [10, 20, 30], "false_observations": [1, 2, 6],
         "citizens_ever_false": [1, 2, 2], "citizens_false_standing": [1, 1, 2],
         "citizens_wrongly_sanctioned": [0, 3, 1],
         "attempts": [10, 10, 20], "refused": [2, 3, 5], "wrongful_refusals": [0, 1, 1],
         "evaded": [0, 0, 1]}
CITIZENS = {"citizen": [0, 1, 2, 3], "social_group": ["x", "x", "y", "y"], "sex": ["f", "m", "f", "m"],
            "score": [100.0, 110.0, 90.0, 100.0], "tier": ["A", "A", "B", "B"],
            "ever_false": [False, False, True, False]}


# ------------------------------------------------------------------------------------- gini

def test_gini_hand_worked():
    # x = 1,2,3,4: sum|xi-xj| over ordered pairs = 2*(1+2+3+1+2+1) = 20; 20/(2*16*2.5) = 0.25
    assert m.gini([1, 2, 3, 4]) == pytest.approx(0.25)
    assert m.gini([5, 5, 5]) == 0.0
    assert m.gini([0, 0, 0, 10]) == pytest.approx(0.75)  # 6*10/(2*16*2.5)
    # negatives are shifted by the minimum: -1,0,1,2 -> 0,1,2,3: sum = 20, mean 1.5 -> 20/48
    assert m.gini([-1, 0, 1, 2]) == pytest.approx(20 / 48)
    assert m.gini([]) == 0.0 and m.gini([0, 0]) == 0.0


def test_gini_matches_the_double_sum():
    import numpy as np

    x = np.random.default_rng(1).gamma(2.0, size=200)
    double = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert m.gini(x) == pytest.approx(double)


# ---------------------------------------------------------------------- distribution, tiers

def test_score_distribution_and_tier_shares():
    run = FakeRun({"tiers": ["A", "B"]}, daily=DAILY, citizens=CITIZENS)
    assert m.score_distribution(run) == {"day": [0, 1, 2], "mean_score": [100.0, 99.0, 98.0],
                                         "median_score": [100.0, 100.0, 99.0]}
    assert m.tier_shares(run) == {"day": [0, 1, 2], "A": [1.0, 0.75, 0.5], "B": [0.0, 0.25, 0.5]}
    # final scores 100,110,90,100: sum|diff| = 2*(10+10+0+20+10+10) = 120; 120/(2*16*100)
    assert m.final_gini(run) == pytest.approx(120 / 3200)


# ------------------------------------------------------------------------------- mobility

def test_mobility_numeric_start():
    run = FakeRun(citizens=CITIZENS)
    moves = m.mobility(run, spec(100, [("A", 100), ("B", None)]))
    # everyone starts at 100 = tier A; two end in A, two in B
    assert moves["counts"] == [[2, 2], [0, 0]]
    assert moves["shares"][0] == [0.5, 0.5] and all(math.isnan(x) for x in moves["shares"][1])
    assert (moves["up"], moves["down"], moves["stayed"]) == (0.0, 0.5, 0.5)


def test_mobility_expression_start_uses_the_ledger():
    ledger = {"citizen": [0, 0, 2, 3], "delta_milli": [-5000, -5000, 10000, 1000]}
    run = FakeRun(citizens=CITIZENS, ledger=ledger)
    moves = m.mobility(run, spec("100 + income", [("A", 100), ("B", None)]))
    # start = score - ledger sum: 110 (A), 110 (A), 80 (B), 99 (B); end A, A, B, B
    assert moves["counts"] == [[2, 0], [0, 2]]
    assert moves["stayed"] == 1.0


def test_tier_of():
    import numpy as np

    got = m.tier_of(np.array([120.0, 100.0, 99.9, -5.0]), [110, 100, None])
    assert got.tolist() == [0, 1, 2, 2]


def test_mobility_absent_without_a_scenario():
    assert m.mobility(FakeRun(citizens=CITIZENS)) is None


# ---------------------------------------------------------------------- opportunities

def test_opportunity_outcomes():
    opp = {"day": [0, 0, 1, 1], "opportunity": ["flight", "loan", "flight", "loan"],
           "social_group": ["x", "x", "y", "y"], "attempts": [10, 4, 10, 0], "retries": [0, 1, 0, 0],
           "refused": [4, 2, 1, 0], "wrongful": [1, 0, 1, 0], "evaded": [0, 1, 0, 0],
           "granted": [6, 2, 9, 0], "loans": [0, 1, 0, 0]}
    got = m.opportunity_outcomes(FakeRun(opportunities=opp))
    assert got["flight"]["attempts"] == 20 and got["flight"]["refused"] == 5
    assert got["flight"]["refusal_rate"] == 0.25          # 5 / 20
    assert got["flight"]["wrongful_share"] == 0.4         # 2 / 5
    assert got["flight"]["evasion_rate"] == 0.0
    assert got["loan"]["refusal_rate"] == 0.5             # 2 / 4
    assert got["loan"]["evasion_rate"] == 0.5             # 1 / 2
    assert m.opportunity_outcomes(FakeRun()) == {}


# ----------------------------------------------------------------------------- wrongful

def test_wrongful_from_daily():
    opp = {"attempts": [1]}
    got = m.wrongful(FakeRun({"citizens": 4}, daily=DAILY, opportunities=opp))
    assert got["false_observations"] == 9                 # 1 + 2 + 6
    assert got["observations"] == 69                      # 60 true + 9 false
    assert got["false_observation_share"] == pytest.approx(9 / 69)
    assert got["citizens_ever_false"] == 2 and got["share_ever_false"] == 0.5
    assert got["citizens_false_standing"] == 2
    assert got["citizens_wrongly_sanctioned"] == 1 and got["citizens_wrongly_sanctioned_max"] == 3
    assert got["share_wrongly_sanctioned"] == 0.25
    assert (got["attempts"], got["refusals"], got["wrongful_refusals"]) == (40, 10, 2)
    assert got["refusal_rate"] == 0.25 and got["wrongful_refusal_share"] == 0.2
    assert got["evaded"] == 1


def test_wrongful_without_opportunities_has_no_refusal_keys():
    got = m.wrongful(FakeRun({"citizens": 4}, daily=DAILY))
    assert "refusals" not in got and "false_observations" in got


# --------------------------------------------------------------------- disparate impact

def test_disparate_impact_by_group():
    citizens = {"citizen": list(range(10)), "social_group": ["x"] * 5 + ["y"] * 5,
                "ever_false": [False] * 5 + [True, True, False, False, False]}
    # x: citizens 0 and 1 refused (1 twice), none wrongfully; y: 5,6,7,8 refused, 5 and 6 wrongly
    refusals = {"citizen": [0, 1, 1, 5, 6, 7, 8], "wrongful": [False, False, False, True, True,
                                                              False, False]}
    run = FakeRun(citizens=citizens, refusals=refusals)
    got = m.disparate_impact(run, "group", min_citizens=1, min_events=1)
    x, y = got["x"], got["y"]
    assert x["citizens"] == 5 and x["refused"]["rate"] == 0.4     # 2 of 5
    assert y["refused"]["rate"] == 0.8 and y["refused"]["events"] == 4
    assert (y["refused"]["low"], y["refused"]["high"]) == pytest.approx(wilson(4, 5))
    assert x["refused"]["status"] == "reference" and y["refused"]["reference"] == "x"
    # ratio 0.8 / 0.4 = 2; Katz SE = sqrt(1/4 - 1/5 + 1/2 - 1/5) = sqrt(0.35) = 0.591608:
    # 2 · e^(±1.159528) = (0.6273, 6.3769); impact 1/2, its interval straddles 0.8
    assert y["refused"]["ratio"] == pytest.approx(2.0)
    assert (y["refused"]["ratio_low"], y["refused"]["ratio_high"]) == pytest.approx(
        (0.627267, 6.376871), abs=1e-6)
    assert y["refused"]["impact"] == pytest.approx(0.5)
    assert not y["refused"]["flag"] and y["refused"]["status"] == m.UNCLEAR
    # wrongful: 0 of 5 against 2 of 5: undefined ratio (never infinite), only a lower bound
    w = y["wrongly_refused"]
    assert w["rate"] == 0.4 and w["ratio"] is None and w["ratio_high"] is None
    assert w["ratio_low"] == pytest.approx(0.298738, abs=1e-6) and w["impact"] == 0.0
    assert y["falsely_named"]["rate"] == 0.4 and x["falsely_named"]["rate"] == 0
    # no sanctioned column in these refusals, no tiers: those measures are absent
    assert "sanctioned" not in y and "top_tier" not in y
    # by default 5 citizens are too few to judge: nothing is flagged
    default = m.disparate_impact(run, "group")
    assert {r["status"] for row in default.values() for r in row.values()
            if isinstance(r, dict)} == {"too few to judge"}


def test_disparate_impact_without_refusals_has_false_rates_only():
    got = m.disparate_impact(FakeRun(citizens=CITIZENS), "sex")
    # f: citizens 0, 2 -> one ever false = 1/2; m: none
    assert got["f"]["falsely_named"]["rate"] == 0.5 and got["m"]["falsely_named"]["rate"] == 0
    assert "refused" not in got["f"]
    assert m.disparate_impact(FakeRun(citizens=CITIZENS), "region") == {}
    assert set(m.disparate_impact_all(FakeRun(citizens=CITIZENS))) == {"social_group", "sex"}
    assert set(m.disparate_impact_all(FakeRun(citizens=CITIZENS), "sex")) == {"sex"}


def test_disparate_impact_by_any_column_and_numeric_bins():
    import numpy as np

    n = 1000
    rng = np.random.default_rng(5)
    age = rng.integers(0, 90, n)
    citizens = {"citizen": list(range(n)), "age": age.astype("uint8"),
                "income": rng.gamma(2.0, 1000.0, n), "abroad": rng.random(n) < 0.1,
                "rank": rng.integers(0, 3, n).astype("uint8"),
                "tier": ["A"] * 300 + ["B"] * 700, "ever_false": age >= 60}
    run = FakeRun({"tiers": ["A", "B"]}, citizens=citizens)
    assert m.attributes(run) == ["age", "income", "abroad", "rank"]
    assert m.categorical_attributes(run) == ["abroad", "rank"]
    by_age = m.disparate_impact(run, "age", bins=5)
    assert len(by_age) == 5 and sum(r["citizens"] for r in by_age.values()) == n
    labels = list(by_age)
    assert labels[0].startswith("[0, ") and labels[-1].endswith("89]")
    # ever_false marks the over-60s: the oldest bin is harmed against a bin with none
    oldest = by_age[labels[-1]]["falsely_named"]
    assert oldest["flag"] and oldest["ratio"] is None and oldest["ratio_low"] > 1.25
    assert by_age[oldest["reference"]]["falsely_named"]["rate"] == 0
    assert by_age[labels[0]]["top_tier"]["kind"] == "favourable"
    assert set(m.disparate_impact(run, "abroad")) == {"False", "True"}
    assert set(m.disparate_impact(run, "rank")) == {"0", "1", "2"}
    assert len(m.disparate_impact(run, "income", bins=4)) == 4
    assert m.disparate_impact(run, "citizen") == {}
    assert set(m.disparate_impact_all(run, m.attributes(run))) == {"age", "income", "abroad",
                                                                    "rank"}


def test_refusals_count_among_citizens_old_enough_to_try():
    """Minors never try an opportunity: they are not in the refusal rates (nor a reference
    with rate 0); the false-naming rate counts everybody."""
    citizens = {"citizen": list(range(400)), "age": [10] * 200 + [30] * 200,
                "occupation": ["minor"] * 200 + ["worker"] * 100 + ["farmer"] * 100,
                "ever_false": [False] * 400}
    refusals = {"citizen": list(range(200, 240)) + list(range(300, 330)),
                "wrongful": [False] * 70}
    got = m.disparate_impact(FakeRun(citizens=citizens, refusals=refusals), "occupation")
    assert got["minor"]["refused"]["trials"] == 0 and got["minor"]["refused"]["rate"] is None
    assert got["farmer"]["refused"]["status"] == "reference"      # 30 of 100
    assert got["worker"]["refused"]["rate"] == 0.4                # 40 of 100
    assert got["minor"]["falsely_named"]["trials"] == 200


def test_opportunity_measures_by_group():
    citizens = {"citizen": list(range(300)), "social_group": ["a"] * 200 + ["b"] * 100}
    opp = {"day": [0, 0, 0, 0], "opportunity": ["flight", "deposit_free_rental"] * 2,
           "social_group": ["a", "a", "b", "b"], "attempts": [100, 50, 100, 50],
           "refused": [10, 5, 40, 30]}
    got = m.disparate_impact(FakeRun(citizens=citizens, opportunities=opp), "group")
    # granted: a (135 of 150) the reference, b 80 of 150: impact 0.593, flagged
    assert got["a"]["granted"]["rate"] == pytest.approx(0.9)
    assert got["b"]["granted"]["impact"] == pytest.approx(80 / 135)
    assert got["b"]["granted"]["flag"]
    # deposit-free rental needs a perk: a 45 of 50, b 20 of 50
    assert got["b"]["perks_granted"]["rate"] == 0.4
    assert got["b"]["perks_granted"]["impact"] == pytest.approx(0.4 / 0.9)
    assert "granted" not in m.disparate_impact(FakeRun(citizens={**citizens, "sex": ["f"] * 300},
                                                    opportunities=opp), "sex")["f"]


# ------------------------------------------------------------------------------ behaviour

def test_behaviour_change():
    nan = float("nan")
    rows = {"day": [0, 0, 1, 1, 2, 2, 3, 3] * 2,
            "event": ["drunk_driving"] * 8 + ["critical_post"] * 8,
            "social_group": ["x", "y"] * 8,
            "true_events": [4, 2, 3, 1, 1, 1, 0, 2] + [1, 1, 1, 1, 0, 0, 1, 0],
            "expected": [1.0, 1.0, nan, nan, nan, nan, 0.6, 0.2] + [2.0, 2.0] + [nan] * 4 +
                        [1.0, 1.0],
            "baseline": [1.0, 1.0, nan, nan, nan, nan, 1.0, 1.0] + [2.0, 2.0] + [nan] * 4 +
                        [2.0, 2.0]}
    got = m.behaviour_change(FakeRun(behaviour=rows), window=2)
    dd, cp = got["drunk_driving"], got["critical_post"]
    assert dd["change"] == pytest.approx(0.8 / 2 - 1)             # last survey day 3
    assert cp["change"] == pytest.approx(2 / 4 - 1)
    # window 2: days 0-1 vs 2-3: drunk driving (4+2+3+1)/2 = 5 -> (1+1+0+2)/2 = 2
    assert (dd["true_start"], dd["true_end"]) == (5.0, 2.0)
    assert dd["true_change"] == pytest.approx(-0.6)
    assert dd["valence"] == -1 and dd["kind"] == "misconduct"
    assert cp["valence"] == 0 and cp["kind"] == "legitimate"
    assert m.behaviour_change(FakeRun()) == {}


# -------------------------------------------------------------------------------- network

def test_network_change():
    rows = {"day": [0, 0, 9, 9], "layer": ["friends", "work", "friends", "work"],
            "mean_degree": [10.0, 4.0, 8.0, 4.0], "isolated_share": [0.0, 0.1, 0.05, 0.1],
            "tier_assortativity": [0.0, 0.1, 0.3, 0.1], "score_correlation": [0.0] * 4,
            "components": [1.0, 50.0, 3.0, 50.0], "largest_component_share": [1.0, 0.2, 0.9, 0.2]}
    got = m.network_change(FakeRun(network=rows))
    f = got["friends"]
    assert (f["first_day"], f["last_day"]) == (0, 9)
    assert f["mean_degree_change"] == -2.0 and f["tier_assortativity_last"] == 0.3
    assert f["fragmentation_first"] == 0.0 and f["fragmentation_last"] == pytest.approx(0.1)
    assert f["components_change"] == 2.0
    assert got["work"]["mean_degree_change"] == 0.0


# ---------------------------------------------------------------------------------- appeals

def test_appeals_and_manipulations():
    rows = {"day": [1, 2, 3, 5, 6], "citizen": [0, 1, 2, 0, 1],
            "outcome": ["filed", "filed", "filed", "upheld", "rejected"], "waited": [0, 0, 0, 4, 6]}
    got = m.appeals(FakeRun(appeals=rows))
    assert (got["filed"], got["upheld"], got["rejected"], got["decided"]) == (3, 1, 1, 2)
    assert got["backlog"] == 1 and got["upheld_share"] == 0.5 and got["mean_wait"] == 5.0
    man = {"day": [1, 2, 3], "citizen": [4, 4, 5], "official": [0, 0, 1],
           "attack": ["lower_targets", "lower_targets", "raise_cronies"],
           "delta_milli": [-50000, -20000, 30000], "logged": [True, False, True]}
    got = m.manipulations(FakeRun(manipulations=man))
    assert got["lower_targets"] == {"actions": 2, "citizens": 1, "logged": 1, "points": -70.0}
    assert got["raise_cronies"]["points"] == 30.0
    assert m.appeals(FakeRun()) == {} and m.manipulations(FakeRun()) == {}


# ---------------------------------------------------------------------------------- summary

def test_summary_of_hand_built_run():
    refusals = {"citizen": [2, 2, 3], "wrongful": [True, False, False]}
    run = FakeRun({"tiers": ["A", "B"], "citizens": 4}, daily=DAILY, citizens=CITIZENS,
               refusals=refusals, opportunities={"attempts": [1]})
    s = m.summary(run, spec(100, [("A", 100), ("B", None)]))
    assert s["mean_score"] == 98.0 and s["median_score"] == 99.0
    assert s["share_A"] == 0.5 and s["gini"] == pytest.approx(120 / 3200)
    assert s["mobility_down"] == 0.5
    assert s["refusals"] == 10 and s["wrongful_refusals"] == 2
    # 2 citizens a group are too few to judge: no four-fifths numbers at all
    assert "worst_four_fifths" not in s and "four_fifths_flags" not in s
    assert all(isinstance(v, float) and math.isfinite(v) for v in s.values())


def test_summary_with_no_tables_is_empty_not_an_error():
    assert m.summary(FakeRun()) == {}


# ----------------------------------------------------------------------- real runs, stored

def test_summary_same_for_stored_and_memory(tmp_path):
    stored = pc.run("seed_article", citizens=600, days=20, seed=3, out=tmp_path)
    memory = pc.run("seed_article", citizens=600, days=20, seed=3)
    a, b = m.summary(stored), m.summary(memory, m._spec(stored, None))
    assert a == pytest.approx(b)
    for key in ("mean_score", "gini", "share_wrongly_sanctioned", "refusals",
                "wrongful_refusals", "false_observations", "mobility_stayed"):
        assert key in a
    # a run without opportunities has no refusal metrics, and no error
    court = m.summary(pc.run(pc.load("court_blacklist").set("opportunities", {}), citizens=300,
                             days=5, out=tmp_path))
    assert "refusals" not in court and "mean_score" in court


def test_corrupt_table_is_a_user_error(tmp_path):
    run = pc.run("seed_article", citizens=300, days=5, seed=1, out=tmp_path)
    (run.path / "citizens.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="corrupt"):
        m.summary(pc.open_run(run.path))
