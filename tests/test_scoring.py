"""Score, associate, classify: integer milli-point changes, clamping, the pull toward ties, tiers, replay."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import build_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panopticon import engine
from panopticon.policy.runtime import PolicyRuntime
from panopticon.policy.schema import MAX_POINTS, MILLI, PolicySpec, to_milli
from panopticon.policy.scoring import CompiledPolicy, associate, classify
from panopticon.scenario import SocietySpec
from panopticon.sensors import Observations
from panopticon.society import generate_society
from panopticon.society.ties import CSR, from_pairs

EVENTS = ["late_loan_payment", "red_light", "jaywalking", "volunteering"]


def policy(**changes) -> CompiledPolicy:
    """Rules red_light -5, late_loan_payment -2, volunteering +3 (jaywalking unscored), start 100."""
    data = {"name": "p", "score": {"start": 100},
            "rules": [{"event": "red_light", "points": -5}, {"event": "late_loan_payment", "points": -2},
                      {"event": "volunteering", "points": 3}],
            "tiers": [{"name": "A", "min": 105}, {"name": "B", "min": 97}, {"name": "C", "min": 80},
                      {"name": "D"}]}
    data.update(changes)
    spec = PolicySpec.model_validate(data)
    compiled = CompiledPolicy.compile(spec)
    _SPECS[id(compiled)] = spec
    return compiled


_SPECS: dict[int, PolicySpec] = {}


def score(day, obs, pol, scores, false_points):
    """The rules of ``pol`` applied by a PolicyRuntime over a small generated population."""
    runtime = PolicyRuntime(_SPECS[id(pol)], EVENTS, generate_society(SocietySpec(), len(scores), 0)
                            .population, 0)
    return runtime.score(day, obs, pol, scores, false_points, classify(pol, scores))


def observations(citizen, event, is_true=None) -> Observations:
    m = len(citizen)
    ev = np.array([EVENTS.index(e) for e in event], dtype=np.int16)
    truth = np.ones(m, bool) if is_true is None else np.asarray(is_true, bool)
    return Observations(np.asarray(citizen, np.int32), ev, np.zeros(m, np.int8), truth,
                        np.asarray(citizen, np.int32))


# ----------------------------------------------------------------- score


def test_observed_rules_add_their_points():
    """A citizen observed for rules -5, -2 and +3 ends at start - 4; each change is a ledger row with its
    rule, delta in milli-points, run-wide observation id and truth; unscored events leave no row."""
    pol = policy()
    scores = np.full(3, 100_000, np.int64)
    false_points = np.zeros(3, np.int64)
    obs = observations([1, 1, 2, 1, 1], ["red_light", "late_loan_payment", "jaywalking", "volunteering",
                                         "jaywalking"], is_true=[True, False, True, True, True])
    rows = score(3, obs, pol, scores, false_points)
    assert scores.tolist() == [100_000, 96_000, 100_000]
    assert rows.citizen.tolist() == [1, 1, 1]
    assert [pol.rule_labels[r] for r in rows.rule] == ["red_light", "late_loan_payment", "volunteering"]
    assert rows.delta.tolist() == [-5000, -2000, 3000]
    assert rows.observation.tolist() == [(3 << 32) + o for o in (0, 1, 3)]  # run-wide ids, day 3
    assert rows.truth.tolist() == [1, 0, 1]
    assert false_points.tolist() == [0, -2000, 0]


def test_fractional_points_are_exact_milli_points():
    """Points with up to three decimals become exact integer milli-points (0.001 -> 1, -2.5 -> -2500)."""
    assert to_milli(0.001) == 1 and to_milli(-2.5) == -2500 and to_milli(1.1) == 1100
    with pytest.raises(ValueError):
        to_milli(0.0005)
    pol = policy(rules=[{"event": "red_light", "points": -0.001}, {"event": "volunteering", "points": 2.5}])
    scores = np.full(1, 100_000, np.int64)
    obs = observations([0] * 1000 + [0], ["red_light"] * 1000 + ["volunteering"])
    rows = score(0, obs, pol, scores, np.zeros(1, np.int64))
    assert scores[0] == 100_000 - 1000 + 2500
    assert rows.delta.sum() == 1500


def test_score_bounds_clamp_and_ledger_records_the_clamped_delta():
    """Scores stay within [min, max]; the ledger records the change actually applied, and a change
    clamped to nothing leaves no row."""
    pol = policy(score={"start": 100, "min": 0, "max": 110})
    scores = np.array([108_000, 3_000, 50_000], np.int64)
    false_points = np.zeros(3, np.int64)
    obs = observations([0, 0, 1, 1, 2], ["volunteering", "volunteering", "red_light", "late_loan_payment",
                                         "red_light"], is_true=[True, True, False, False, True])
    rows = score(0, obs, pol, scores, false_points)
    assert scores.tolist() == [110_000, 0, 45_000]
    assert rows.citizen.tolist() == [0, 1, 2]
    assert rows.delta.tolist() == [2000, -3000, -5000]
    assert rows.observation.tolist() == [0, 2, 4]
    assert false_points.tolist() == [0, -3000, 0]


# ----------------------------------------------------------------- associate


def _expected_pull(indptr, indices, scores, weight: Fraction, low, high):
    """Reference: weight * (mean of ties - score) rounded half up, clamped; reads the old scores."""
    out = []
    for i in range(len(scores)):
        nb = indices[indptr[i]:indptr[i + 1]]
        if len(nb) == 0:
            out.append(0)
            continue
        mean = Fraction(int(sum(int(scores[j]) for j in nb)), len(nb))
        delta = math.floor(weight * (mean - int(scores[i])) + Fraction(1, 2))
        out.append(min(max(int(scores[i]) + delta, low), high) - int(scores[i]))
    return out


def test_association_pull_is_weight_times_gap_rounded_to_nearest_milli_point_hand_worked():
    """The pull is weight * (mean of ties' scores - score) milli-points, rounded half up (so it
    has no drift either way), every citizen reading the scores from before the pull.

    Path 0-1-2 plus 3-4, 5 alone, weight 0.3, scores in milli-points:
      0: mean{1}=100_000 ; 0.3*(100_000-100_001) = -0.3 -> 0 (no ledger row)
      1: mean{0,2}=(100_001+99_998)/2=99_999.5 ; 0.3*(-0.5) = -0.15 -> 0
      2: mean{1}=100_000 ; 0.3*(+2) = 0.6 -> +1
      3: mean{4}=90_000 ; 0.3*(-20_000) = -6_000 ; 4: 0.3*(+20_000) = +6_000 ; 5: no ties -> 0.
    Two more on a pair 6-7: 0.5*(+1) = 0.5 -> +1 (half up) ; 0.5*(-1) = -0.5 -> 0.
    """
    pol = policy(association=[{"ties": "friends", "weight": 0.3, "every_days": 1}])
    ties = {"friends": from_pairs(6, np.array([0, 1, 3]), np.array([1, 2, 4]))}
    scores = np.array([100_001, 100_000, 99_998, 110_000, 90_000, 42], np.int64)
    rows = associate(0, pol, ties, scores)
    assert scores.tolist() == [100_001, 100_000, 99_999, 104_000, 96_000, 42]
    assert rows.citizen.tolist() == [2, 3, 4]
    assert rows.delta.tolist() == [1, -6000, 6000]
    assert rows.rule.tolist() == [pol.rule_labels.index("association:friends")] * 3
    assert rows.observation.tolist() == [-1] * 3 and rows.truth.tolist() == [-1] * 3
    half = policy(association=[{"ties": "friends", "weight": 0.5, "every_days": 1}])
    pair = {"friends": from_pairs(2, np.array([0]), np.array([1]))}
    scores = np.array([7, 8], np.int64)
    associate(0, half, pair, scores)
    assert scores.tolist() == [8, 8]


@pytest.mark.parametrize("weight", [0.05, 0.333333, 0.999999, 1.0, 0.000001])
def test_association_pull_matches_exact_rational_reference(weight):
    """On a random graph the pull equals the exact rational reference, rounded half up, clamped."""
    rng = np.random.default_rng(5)
    n = 300
    a, b = rng.integers(0, n, 900), rng.integers(0, n, 900)
    keep = a != b
    layer = from_pairs(n, a[keep], b[keep])
    pol = policy(score={"start": 100, "min": 0, "max": 200},
                 association=[{"ties": "friends", "weight": weight, "every_days": 1}])
    scores = rng.integers(0, 200_001, n).astype(np.int64)
    before = scores.copy()
    w = Fraction(round(weight * 1e6), 10**6)
    want = _expected_pull(layer.indptr, layer.indices, before, w, 0, 200_000)
    rows = associate(0, pol, {"friends": layer}, scores)
    assert (scores - before).tolist() == want
    assert np.array_equal(rows.citizen, np.flatnonzero(want))


def test_association_rules_due_the_same_day_apply_in_policy_order():
    """Two rules due the same day apply one after another: the second reads the first's result."""
    pol = policy(association=[{"ties": "friends", "weight": 0.5, "every_days": 2},
                              {"ties": "family", "weight": 0.5, "every_days": 1}])
    ties = {"friends": from_pairs(3, np.array([0]), np.array([1])),
            "family": from_pairs(3, np.array([1]), np.array([2]))}
    scores = np.array([0, 100_000, 50_000], np.int64)
    rows = associate(1, pol, ties, scores)  # day 1: both due
    # friends: 0 -> 0 + 0.5*100_000 = 50_000 ; 1 -> 100_000 - 50_000 = 50_000 ; 2 untouched
    # family (reads 1=50_000, 2=50_000): no change
    assert scores.tolist() == [50_000, 50_000, 50_000]
    assert rows.delta.tolist() == [50_000, -50_000]
    scores = np.array([0, 100_000, 50_000], np.int64)
    associate(0, pol, ties, scores)  # day 0: only family is due
    assert scores.tolist() == [0, 75_000, 75_000]


def test_association_runs_only_when_day_plus_one_is_a_multiple_of_every_days():
    """An association rule with every_days=7 acts on days 6, 13, 20 (0-based) and on no other day."""
    pol = policy(association=[{"ties": "friends", "weight": 0.5, "every_days": 7}])
    ties = {"friends": from_pairs(2, np.array([0]), np.array([1]))}
    acted = []
    for day in range(21):
        scores = np.array([0, 64_000], np.int64)
        if len(associate(day, pol, ties, scores)):
            acted.append(day)
    assert acted == [6, 13, 20]


def test_association_respects_score_bounds():
    """A pull never takes a score outside [min, max]; the ledger has the clamped delta."""
    pol = policy(score={"start": 100, "min": 90, "max": 120},
                 association=[{"ties": "friends", "weight": 1.0, "every_days": 1}])
    layer = from_pairs(3, np.array([0, 0]), np.array([1, 2]))
    scores = np.array([95_000, 120_000, 120_000], np.int64)
    rows = associate(0, pol, {"friends": layer}, scores)
    assert scores.tolist() == [120_000, 95_000, 95_000]
    assert rows.delta.tolist() == [25_000, -25_000, -25_000]


@pytest.mark.parametrize("degree", [1, 7, 1000])
def test_association_is_exact_at_the_schemas_score_bounds(degree):
    """Scores may lie anywhere in ±MAX_POINTS (the schema's limit): with weight 1 a citizen at
    -MAX_POINTS whose ties all sit at +MAX_POINTS moves exactly to +MAX_POINTS, for any degree,
    and weight 0.999999 leaves it exactly 2*MAX_POINTS*1e-6 points short (no int64 overflow)."""
    top = int(MAX_POINTS) * MILLI
    ties = {"friends": from_pairs(degree + 1, np.zeros(degree, np.int64), np.arange(1, degree + 1))}
    for weight, expected in ((1.0, top), (0.999999, top - 2 * top // 1_000_000)):
        spec = PolicySpec.model_validate({
            "name": "wide", "score": {"start": 0, "min": -MAX_POINTS, "max": MAX_POINTS},
            "tiers": [{"name": "all"}],
            "association": [{"ties": "friends", "weight": weight, "every_days": 1}]})
        pol = CompiledPolicy.compile(spec)
        scores = np.full(degree + 1, top, np.int64)
        scores[0] = -top
        associate(0, pol, ties, scores)
        assert scores[0] == expected


def test_association_without_ties_changes_nothing():
    """A citizen with no ties in the layer is never pulled (empty CSR rows)."""
    pol = policy(association=[{"ties": "friends", "weight": 0.5, "every_days": 1}])
    layer = CSR(np.zeros(4, np.int64), np.zeros(0, np.int32))
    scores = np.array([1, 2, 3], np.int64)
    assert len(associate(0, pol, {"friends": layer}, scores)) == 0
    assert scores.tolist() == [1, 2, 3]


# ----------------------------------------------------------------- classify


def test_classify_puts_a_score_at_a_tier_min_into_that_tier():
    """A score equal to a tier's min is in that tier; one milli-point less is in the tier below."""
    pol = policy()  # A >= 105, B >= 97, C >= 80, D below
    scores = np.array([105_000, 104_999, 97_000, 96_999, 80_000, 79_999, 10**15, -10**15], np.int64)
    names = [pol.tier_names[t] for t in classify(pol, scores)]
    assert names == ["A", "B", "B", "C", "C", "D", "A", "D"]


def test_single_tier_policy_classifies_everyone_into_it():
    """With one tier (no min) everyone is in tier 0."""
    spec = PolicySpec.model_validate({"name": "one", "tiers": [{"name": "all"}]})
    pol = CompiledPolicy.compile(spec)
    assert classify(pol, np.array([-(10**15), 0, 10**15], np.int64)).tolist() == [0, 0, 0]


# ----------------------------------------------------------------- replay

points = st.integers(-20_000, 20_000).map(lambda m: m / 1000)


@st.composite
def scenarios(draw):
    start = draw(st.integers(50, 150))
    low = draw(st.one_of(st.none(), st.integers(0, start)))
    high = draw(st.one_of(st.none(), st.integers(start, 250)))
    assoc = draw(st.lists(st.fixed_dictionaries({
        "ties": st.sampled_from(["family", "friends", "work", "partner"]),
        "weight": st.integers(1, 1_000_000).map(lambda w: w / 1_000_000),
        "every_days": st.integers(1, 5)}), max_size=2))
    data = {
        "run": {"citizens": draw(st.integers(1, 250)), "days": draw(st.integers(1, 12)),
                "seed": draw(st.integers(0, 2**63 - 1)), "checkpoint_every": 5},
        "sensors": {"cameras": {"misattribution": draw(st.sampled_from([0.0, 0.1, 0.5])),
                                "phantom_rate": draw(st.sampled_from([0.0, 0.01, 0.1]))}},
        "policy": {"score": {"start": start, "min": low, "max": high},
                   "rules": [{"event": "red_light", "points": draw(points)},
                             {"event": "late_loan_payment", "points": draw(points)},
                             {"event": "volunteering", "points": draw(points)}],
                   "tiers": [{"name": "A", "min": start + 1}, {"name": "B", "min": start - 5}, {"name": "C"}],
                   "association": assoc},
    }
    return build_scenario(**data)


class _Recorder:
    def __init__(self):
        self.ledger, self.scores = [], []

    def day(self, record, state):
        self.ledger.append(record.ledger)
        self.scores.append(state.scores.copy())

    def checkpoint(self, state):
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=scenarios())
def test_ledger_replays_to_the_scores_exactly(spec):
    """start + the sum of a citizen's ledger deltas up to day d equals their score after day d, for every
    day and citizen, and no replayed score ever leaves [min, max]."""
    sim = engine.build(spec)
    rec = _Recorder()
    state = engine.run(sim, sink=rec)
    pol = sim.policy
    replay = engine.initial_state(sim).scores.copy()
    for day_rows, after in zip(rec.ledger, rec.scores, strict=True):
        for i, d in zip(day_rows["citizen"], day_rows["delta"], strict=True):
            assert d != 0
            replay[i] += d
            assert pol.low <= replay[i] <= pol.high
        assert np.array_equal(replay, after)
    assert np.array_equal(replay, state.scores)
    assert np.array_equal(state.tier, classify(pol, state.scores))


@settings(max_examples=60, deadline=None)
@given(floors=st.lists(st.integers(-10**12, 10**12), min_size=0, max_size=8, unique=True),
       scores=st.lists(st.integers(-10**15, 10**15), min_size=1, max_size=50))
def test_classify_finds_the_highest_tier_whose_min_is_reached(floors, scores):
    """Tier t is the first (highest) tier whose min the score reaches; below every min, the last tier."""
    mins = sorted(floors, reverse=True)
    spec = PolicySpec.model_validate({
        "name": "t", "tiers": [*({"name": f"T{k}", "min": m / MILLI} for k, m in enumerate(mins)),
                               {"name": "last"}]})
    pol = CompiledPolicy.compile(spec)
    got = classify(pol, np.asarray(scores, np.int64)).tolist()
    want = [next((k for k, m in enumerate(mins) if s >= m), len(mins)) for s in scores]
    assert got == want
