"""What ``scope.exempt`` covers: one test per row of the table in docs/policies.md
("What exemption covers"), each on a small population worked by hand.

The scenarios are the tiny one of conftest (start 100, tiers A >= 101, B >= 95, C) with half
the citizens officials (rank >= 1) and ``scope.exempt: rank >= 1``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_scenario, policy_day

from panopticon import engine
from panopticon.governance import Insiders
from panopticon.kernels.scoring import rate_peers
from panopticon.policy.schema import PolicySpec
from panopticon.policy.scoring import CompiledPolicy, associate
from panopticon.society.network import rewire
from panopticon.society.ties import from_pairs

OFFICIALS = {"occupation": {"values": ["worker", "official"], "weights": [1, 1]}}
EXEMPT = {"exempt": "rank >= 1"}


def _start(society: dict | None = None, **policy):
    """The tiny scenario with officials exempt (policy keys replaced by ``policy``), its
    simulation and day-0 state, an exempt adult and a non-exempt adult."""
    policy = {"association": [], **policy, "scope": {**EXEMPT, **policy.get("scope", {})}}
    governance = policy.pop("governance", None)
    changes = {"society": {**OFFICIALS, **(society or {})}, "policy": policy}
    if governance:
        changes["governance"] = governance
    sim = engine.build(build_scenario(**changes))
    state = engine.initial_state(sim)
    pop = sim.society.population
    exempt = state.policy.exempt
    assert (exempt == (pop.rank >= 1)).all() and exempt.any()
    e = int(np.flatnonzero(exempt & (pop.age >= 18))[0])
    o = int(np.flatnonzero(~exempt & (pop.age >= 18))[0])
    return sim, state, e, o


def test_rules_never_score_exempt_citizens():
    """Rules: a red light costs 5 points and caps the grade at C for 30 days. Seen (falsely)
    running one, a non-exempt citizen goes 100 -> 95 and tier C with 5 false points; an exempt
    one stays at 100, tier B, no ledger row, no false points."""
    sim, state, e, o = _start(rules=[{"event": "red_light", "points": -5,
                                      "override": {"max_tier": "C", "days": 30}}])
    day = policy_day(sim, state, [(e, "red_light"), (o, "red_light")], is_true=False)
    assert state.scores[o] == 95_000 and state.false_points[o] == -5_000
    assert state.scores[e] == 100_000 and state.false_points[e] == 0
    assert e not in day.ledger["citizen"]
    names = sim.policy.tier_names
    assert (names[state.tier[o]], names[state.tier[e]]) == ("C", "B")


def test_lists_never_hold_exempt_citizens():
    """Lists: entered by an event (late payment) or by a condition (score <= 100, true of
    everyone on day 0): the non-exempt citizen is on both, the exempt one on neither."""
    sim, state, e, o = _start(lists=[
        {"name": "debtors", "kind": "blacklist", "enter_on": ["late_loan_payment"], "days": 10},
        {"name": "low", "kind": "blacklist", "enter_when": "score <= 100", "days": 10}])
    policy_day(sim, state, [(e, "late_loan_payment"), (o, "late_loan_payment")])
    listed = state.policy.until > 0
    assert listed[:, o].all() and not listed[:, e].any()
    assert not listed[:, state.policy.exempt].any()


def test_sanctions_never_deny_exempt_citizens():
    """Sanctions: 'score <= 100' denies flights to everyone at the start score, except the
    exempt."""
    sim, state, e, o = _start(sanctions=[{"when": "score <= 100", "deny": ["flights"]}])
    day = policy_day(sim, state)
    assert day.denied["flights"][o] and not day.denied["flights"][e]
    assert day.denied["flights"].sum() == (~state.policy.exempt).sum()


def test_perks_are_granted_to_exempt_citizens_whose_condition_holds():
    """Perks: 'score >= 100' grants a green channel to everyone at the start score, exempt
    citizens included (restrict grants yourself, e.g. 'and rank == 0')."""
    sim, state, e, o = _start(sanctions=[{"when": "score >= 100", "grant": ["green_channel"]}])
    day = policy_day(sim, state)
    assert day.granted["green_channel"][o] and day.granted["green_channel"][e]


def test_exempt_citizens_are_still_observed_and_counted():
    """Observations: an exempt citizen's red light is not scored, but it is remembered:
    count("red_light", 30) sees it (here it grants a perk)."""
    sim, state, e, o = _start(sanctions=[{"when": 'count("red_light", 30) > 0',
                                          "grant": ["green_channel"]}])
    day = policy_day(sim, state, [(e, "red_light")])
    assert state.scores[e] == 100_000 and day.granted["green_channel"][e]
    assert not day.granted["green_channel"][o]


def test_association_pull_never_moves_an_exempt_score_but_it_pulls_others():
    """Pull (weight 0.5): citizens 0 (exempt, 40), 1 (100) and 2 (100); ties 0-1 and 1-2.
    Citizen 1's ties average (40 + 100) / 2 = 70, so 1 goes to 100 + 0.5 x (70 - 100) = 85;
    citizen 2's tie is at 100: no change; citizen 0 would go to 70 but is exempt: stays 40."""
    compiled = CompiledPolicy.compile(PolicySpec.model_validate(
        {"name": "p", "association": [{"ties": "friends", "weight": 0.5, "every_days": 1}]}))
    scores = np.array([40_000, 100_000, 100_000], dtype=np.int64)
    layer = from_pairs(3, np.array([0, 1]), np.array([1, 2]))
    associate(0, compiled, {"friends": layer}, scores, np.array([True, False, False]))
    assert scores.tolist() == [40_000, 85_000, 100_000]
    # and the engine passes the exemption: officials start at 40 and stay there
    sim, state, e, o = _start(score={"start": "40 if rank >= 1 else 100", "min": 0, "max": 120},
                              association=[{"ties": "friends", "weight": 0.5, "every_days": 1}])
    policy_day(sim, state)
    exempt = state.policy.exempt
    assert (state.scores[exempt] == 40_000).all()
    assert (state.scores[~exempt] < 100_000).any()


def test_guilt_by_association_never_charges_exempt_citizens():
    """Guilt by association (family, -20 per listed tie): a citizen's late payment lists them;
    their non-exempt family members lose 20, their exempt ones nothing."""
    sim, state, _, _ = _start(
        lists=[{"name": "debtors", "kind": "blacklist", "enter_on": ["late_loan_payment"],
                "days": 10}],
        association=[{"ties": "family", "listed": "debtors", "points": -20, "every_days": 1}])
    exempt, family = state.policy.exempt, sim.society.ties["family"]
    debtor = next(i for i in np.flatnonzero(~exempt) if exempt[family.neighbours(i)].any()
                  and (~exempt[family.neighbours(i)]).any())
    policy_day(sim, state, [(int(debtor), "late_loan_payment")])
    mates = family.neighbours(int(debtor))
    assert (state.scores[mates[exempt[mates]]] == 100_000).all()
    assert (state.scores[mates[~exempt[mates]]] == 80_000).all()


@pytest.mark.parametrize("formula", ["50 + 0 * age", "50"])
def test_a_formula_never_recomputes_exempt_citizens(formula):
    """Formula family, score = 50 every day: everyone goes to 50 on day 0 except the exempt.
    A constant formula (``50``) works like any other (it used to fail at run time)."""
    sim, state, e, o = _start(family="formula", rules=[],
                              score={"start": 100, "min": 0, "max": 120, "formula": formula,
                                     "every_days": 1})
    policy_day(sim, state)
    assert state.scores[o] == 50_000 and state.scores[e] == 100_000


def test_peer_ratings_never_rate_exempt_citizens_who_still_rate_others():
    """Peer ratings: citizens 0 (exempt) and 1, tied; 20 ratings a day, no noise, opinion 3.5
    (4 stars), both at 5 stars (weight 1 each). Citizen 0 receives nothing; citizen 1 is rated
    by 0 only: every rating weighs 1 (10^6 ppm) and gives 4 stars."""
    layer = from_pairs(2, np.array([0]), np.array([1]))
    sum_w, sum_wr = np.zeros(2, np.int64), np.zeros(2, np.int64)
    rate_peers(np.uint64(12345), layer.indptr, layer.indices, np.array([5000, 5000], np.int64),
               np.array([3.5, 3.5]), 20.0, 0.0, 2.0, np.zeros(2, np.int32), 1.0, 0,
               np.array([True, False]), sum_w, sum_wr)
    assert sum_w[0] == 0 and sum_wr[0] == 0
    ratings = sum_w[1] // 1_000_000
    assert ratings > 0 and sum_w[1] == ratings * 1_000_000
    assert sum_wr[1] == ratings * 1_000_000 * 4 * 1000


def test_abroad_penalty_and_decay_never_touch_exempt_citizens():
    """Citizens abroad lose 7 points a day (penalty): a non-exempt one goes 100 -> 93 on day 0,
    an exempt one stays at 100."""
    sim, state, _, _ = _start(society={"abroad_share": 0.5},
                              scope={"abroad": {"mode": "penalty", "points": 7, "every_days": 1}})
    abroad, exempt = sim.society.population.abroad, state.policy.exempt
    assert (abroad & exempt).any() and (abroad & ~exempt).any()
    policy_day(sim, state)
    assert (state.scores[abroad & exempt] == 100_000).all()
    assert (state.scores[abroad & ~exempt] == 93_000).all()


def test_insiders_never_edit_exempt_citizens():
    """Insiders: one lowers anyone (no targets) by 15, one raises cronies by 15 and one deletes
    cronies' deductions, each every day with a reach of everyone. After day 0 every exempt
    citizen is at 100; non-exempt citizens were lowered."""
    insiders = [{"attack": "lower_targets", "officials": 1, "reach": 100_000, "every_days": 1,
                 "points": 15},
                {"attack": "raise_cronies", "officials": 2, "reach": 100_000, "every_days": 1,
                 "points": 15},
                {"attack": "delete_entries", "officials": 2, "reach": 100_000, "every_days": 1,
                 "points": 15}]
    sim, state, e, o = _start(governance={"insiders": insiders})
    day = policy_day(sim, state)
    exempt = state.policy.exempt
    assert (state.scores[exempt] == 100_000).all()
    assert len(day.manipulations.citizen) and not exempt[day.manipulations.citizen].any()
    assert (state.scores[~exempt] != 100_000).any()
    assert isinstance(sim.insiders, Insiders)


def test_unfriending_exempt_citizens_neither_act_nor_are_chosen_but_may_be_dropped():
    """Unfriending (probability 1, drop worse): citizens 0 (exempt) and 2 are in tier 0 and
    tied to 1 (tier 1, worse); 3-9 are tier 0 with no ties. 2 drops 1 for one of 3-9; 0 does
    not act and keeps 1; nobody ties to 0."""
    tier = np.array([0, 1, 0, 0, 0, 0, 0, 0, 0, 0], np.uint8)
    frozen = np.zeros(10, bool)
    frozen[0] = True
    layer, moved = rewire(from_pairs(10, np.array([0, 2]), np.array([1, 1])), tier,
                          np.uint64(99), 1.0, "worse", frozen)
    assert moved == 1
    assert layer.neighbours(0).tolist() == [1]
    assert layer.neighbours(1).tolist() == [0]
    (k,) = layer.neighbours(2).tolist()
    assert 3 <= k <= 9


def test_exempt_citizens_have_the_tier_of_their_start_score():
    """Tier, deterrence, responses, partners: officials start at 90 (tier C: below B's 95) and
    keep it; deterrence of tier C (red lights x 0.9) reads that tier like anyone's."""
    sim, state, e, o = _start(score={"start": "90 if rank >= 1 else 100", "min": 0, "max": 120})
    policy_day(sim, state)
    names = sim.policy.tier_names
    assert (names[state.tier[e]], names[state.tier[o]]) == ("C", "B")
    assert (state.tier[state.policy.exempt] == names.index("C")).all()
