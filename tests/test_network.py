"""Ties that answer to scores: rewiring by tier, the partner market, and network statistics."""

from __future__ import annotations

import math
from collections import Counter

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panopticon.rng import Stage, stream_key, uniforms, uniforms_at
from panopticon.society.network import partner_stats, rematch_partners, rewire, tie_stats
from panopticon.society.ties import CSR, empty, from_pairs, small_world

KEY = stream_key(20240611, Stage.TIES, 0, 99)


def layer_of(n: int, pairs: list[tuple[int, int]]) -> CSR:
    """A symmetric layer from undirected pairs, in the given order (rows need not be sorted)."""
    a = np.array([p[0] for p in pairs], dtype=np.int32)
    b = np.array([p[1] for p in pairs], dtype=np.int32)
    return from_pairs(n, a, b)


def tie_set(layer: CSR) -> Counter:
    """The layer's undirected ties as a multiset of (low, high) pairs."""
    rows = np.repeat(np.arange(layer.n), layer.degree)
    return Counter((int(min(r, c)), int(max(r, c))) for r, c in zip(rows, layer.indices, strict=True)
                   if r < c)


def simple(layer: CSR) -> CSR:
    """The layer without repeated ties (``small_world`` can draw the same tie twice)."""
    pairs = sorted(tie_set(layer))
    return layer_of(layer.n, pairs)


def assert_clean(layer: CSR, n: int) -> None:
    """Well-formed CSR, symmetric, no self ties, no duplicate ties, every row ascending."""
    assert layer.indptr.dtype == np.int32 and layer.indices.dtype == np.int32  # small layers
    assert layer.indptr.shape == (n + 1,) and layer.indptr[0] == 0
    assert layer.indptr[-1] == len(layer.indices)
    rows = np.repeat(np.arange(n, dtype=np.int64), layer.degree)
    cols = layer.indices.astype(np.int64)
    assert not np.any(rows == cols), "self tie"
    forward = np.sort(rows * n + cols)
    assert np.array_equal(forward, np.sort(cols * n + rows)), "asymmetric layer"
    assert len(np.unique(forward)) == len(forward), "duplicate tie"
    for i in range(n):
        assert np.all(np.diff(layer.neighbours(i)) > 0), f"row {i} not ascending"


# ----------------------------------------------------------------------------- rewire, by hand

# Six citizens; tiers 0 0 1 1 1 2; ties 0-3, 1-2, 4-5 (every citizen has exactly one tie, so the
# tie an acting citizen looks at is forced).
HAND_TIER = np.array([0, 0, 1, 1, 1, 2], dtype=np.uint8)
HAND_PAIRS = [(0, 3), (1, 2), (4, 5)]


def test_rewire_worse_moves_ties_to_own_tier_in_citizen_order():
    """probability 1, drop "worse": 0 (tier 0) drops 3 (tier 1) and can only pick 1 (tier-0
    members are {0, 1}); 1 drops 2 and can only pick 0, but 0 already tied to 1 today, so 1's
    proposal is skipped and 1 keeps 2; 2, 3 and 5 see a better tier and keep; 4 (tier 1) drops
    5 (tier 2) for 2 or 3 (tier 1, not 4 itself). Two ties move: {0-1, 1-2, 4-2 or 4-3}."""
    layer = layer_of(6, HAND_PAIRS)
    out, moved = rewire(layer, HAND_TIER, KEY, 1.0, "worse")
    assert_clean(out, 6)
    ties = set(tie_set(out))
    assert moved == 2
    assert {(0, 1), (1, 2)} <= ties and len(ties) == 3
    (new,) = ties - {(0, 1), (1, 2)}
    assert new in {(2, 4), (3, 4)}
    k = new[0]
    expected_degree = [1, 2, 1, 0, 1, 0]
    expected_degree[k] += 1
    assert out.degree.tolist() == expected_degree  # actors 0 and 4 keep 1; 3 and 5 lose 1
    assert out.n_ties == layer.n_ties


def test_rewire_different_also_drops_ties_to_better_tiers():
    """Citizens 0 (tier 1) and 1 (tier 0) are tied; 2 (tier 1) is alone. "worse": 0 sees a
    better tier and keeps; 1 dislikes 0 but no other tier-0 citizen exists, so nothing moves.
    "different": 0 dislikes 1 and ties to 2, the only other tier-1 citizen: tie 0-2 only."""
    layer = layer_of(3, [(0, 1)])
    tier = np.array([1, 0, 1], dtype=np.uint8)
    same, moved = rewire(layer, tier, KEY, 1.0, "worse")
    assert moved == 0 and set(tie_set(same)) == {(0, 1)}
    out, moved = rewire(layer, tier, KEY, 1.0, "different")
    assert moved == 1 and set(tie_set(out)) == {(0, 2)}
    assert out.degree.tolist() == [1, 0, 1]


def test_rewire_probability_zero_changes_nothing():
    """Nobody acts at probability 0: same ties, zero rewired (rows sorted, as always)."""
    layer = small_world(300, 6, 0.3, 5)
    tier = (uniforms(KEY, 300) * 3).astype(np.uint8)
    out, moved = rewire(layer, tier, KEY, 0.0, "different")
    assert moved == 0
    assert tie_set(out) == tie_set(layer)
    assert np.array_equal(out.indptr, layer.indptr)
    for i in range(300):
        assert np.array_equal(out.neighbours(i), np.sort(layer.neighbours(i)))


def test_rewire_worse_never_drops_a_tie_to_an_equal_or_better_tier():
    """Under "worse" every removed tie joins two tiers, its better end keeps its degree and
    its worse end loses; every new tie joins one tier. Checked on 20 days at probability 1."""
    layer = small_world(400, 8, 0.2, 9)
    tier = (uniforms(KEY, 400, slot=1) * 4).astype(np.uint8)
    for day in range(20):
        before = tie_set(layer)
        out, moved = rewire(layer, tier, stream_key(9, Stage.TIES, day, 99), 1.0, "worse")
        after = tie_set(out)
        removed = before - after
        added = after - before
        assert sum(removed.values()) == sum(added.values()) == moved
        assert all(tier[a] != tier[b] for a, b in removed)
        assert all(tier[a] == tier[b] for a, b in added)
        # citizens of the best tier present can only gain ties: nobody dislikes them
        best = tier == tier.min()
        assert np.all(out.degree[best] >= layer.degree[best])
        layer = out
    assert moved >= 0


def test_rewire_frozen_citizens_neither_act_nor_are_chosen():
    """With 0 frozen, 0 keeps its tie to 3 and 1 (whose only tier-0 candidate is 0) cannot move;
    4 still swaps 5 for 2 or 3. Freezing 2 and 3 as well leaves 4 without a candidate."""
    layer = layer_of(6, HAND_PAIRS)
    frozen = np.array([True, False, False, False, False, False])
    out, moved = rewire(layer, HAND_TIER, KEY, 1.0, "worse", frozen)
    ties = set(tie_set(out))
    assert moved == 1 and {(0, 3), (1, 2)} <= ties and ((2, 4) in ties or (3, 4) in ties)
    frozen[[2, 3]] = True
    out, moved = rewire(layer, HAND_TIER, KEY, 1.0, "worse", frozen)
    assert moved == 0 and set(tie_set(out)) == set(HAND_PAIRS)


def test_rewire_frozen_are_never_chosen_on_a_larger_layer():
    """Frozen citizens' degrees never rise (they are never k) and they never drop a tie."""
    layer = small_world(2000, 6, 0.2, 4)
    tier = (uniforms(KEY, 2000, slot=2) * 3).astype(np.uint8)
    frozen = uniforms(KEY, 2000, slot=3) < 0.3
    out, moved = rewire(layer, tier, KEY, 1.0, "different", frozen)
    assert moved > 100
    assert np.all(out.degree[frozen] <= layer.degree[frozen])
    for i in np.flatnonzero(frozen)[:200]:  # a frozen citizen's row only loses entries
        assert set(out.neighbours(i)) <= set(layer.neighbours(i))


def test_rewire_rejects_unknown_drop_rule():
    """drop must be "worse" or "different"; probability must lie in [0, 1]."""
    layer = layer_of(2, [(0, 1)])
    with pytest.raises(ValueError, match="drop"):
        rewire(layer, np.zeros(2, np.uint8), KEY, 0.5, "lower")
    with pytest.raises(ValueError, match="probability"):
        rewire(layer, np.zeros(2, np.uint8), KEY, 1.5, "worse")


# ----------------------------------------------------------------------------- rewire, properties


def _u(key: np.uint64, counter: int) -> float:
    return float(uniforms_at(key, np.array([counter], dtype=np.uint64))[0])


def reference_rewire(layer: CSR, tier, key, probability, drop, frozen):
    """The rules of :func:`rewire`, written out in plain Python (slow, obvious)."""
    n = layer.n
    proposals = {}
    for i in range(n):
        row = [int(c) for c in layer.neighbours(i)]
        if not row or frozen[i]:
            continue
        base = i << 8
        if not _u(key, base) < probability:
            continue
        j = row[int(_u(key, base + 1) * len(row))]
        disliked = tier[j] > tier[i] if drop == "worse" else tier[j] != tier[i]
        if not disliked:
            continue
        candidates = [c for c in range(n) if tier[c] == tier[i] and not frozen[c]]
        for a in range(8):
            k = candidates[int(_u(key, base + 2 + a) * len(candidates))]
            if k != i and k not in row:
                proposals[i] = (j, k)
                break
    ties = tie_set(layer)
    applied = {}
    for i in sorted(proposals):
        j, k = proposals[i]
        if j in applied and applied[j][0] == i:
            continue  # j dropped i earlier today
        if k in applied and applied[k][1] == i:
            continue  # k tied to i earlier today
        applied[i] = (j, k)
        ties[(min(i, j), max(i, j))] -= 1
        ties[(min(i, k), max(i, k))] += 1
    return +ties, applied


@st.composite
def small_layers(draw):
    """A random simple layer (pairs in random order, so rows start unsorted) with tiers."""
    n = draw(st.integers(2, 14))
    all_pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    pairs = draw(st.lists(st.sampled_from(all_pairs), unique=True, max_size=len(all_pairs)))
    pairs = [(b, a) if draw(st.booleans()) else (a, b) for a, b in pairs]
    tier = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.uint8)
    frozen = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return layer_of(n, pairs), tier, frozen


@settings(max_examples=150, deadline=None)
@given(case=small_layers(), probability=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
       drop=st.sampled_from(["worse", "different"]), seed=st.integers(0, 2**32),
       use_frozen=st.booleans())
def test_rewire_keeps_layer_simple_and_matches_the_rules(case, probability, drop, seed, use_frozen):
    """On random layers: symmetric, no self or duplicate ties, rows ascending, total entries
    unchanged, an actor's own swap leaves its degree unchanged (degrees move only by -1 per
    time dropped and +1 per time chosen), the exact ties of the plain-Python rules, and the
    same result on 1 and 2 Numba threads."""
    layer, tier, frozen = case
    frozen = frozen if use_frozen else np.zeros(layer.n, dtype=bool)
    key = stream_key(seed, Stage.TIES, 3, 99)
    out, moved = rewire(layer, tier, key, probability, drop, frozen if use_frozen else None)
    assert_clean(out, layer.n)
    assert out.n_ties == layer.n_ties
    expected, applied = reference_rewire(layer, tier, key, probability, drop, frozen)
    assert tie_set(out) == expected
    assert moved == len(applied)
    # an actor swaps one tie for another (net 0); each j loses one tie, each k gains one
    change = np.zeros(layer.n, dtype=np.int64)
    for j, k in applied.values():
        change[j] -= 1
        change[k] += 1
    assert np.array_equal(out.degree - layer.degree, change)
    if numba.config.NUMBA_NUM_THREADS >= 2:
        previous = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            one = rewire(layer, tier, key, probability, drop, frozen)
            numba.set_num_threads(2)
            two = rewire(layer, tier, key, probability, drop, frozen)
        finally:
            numba.set_num_threads(previous)
        assert one[1] == two[1] == moved
        assert np.array_equal(one[0].indptr, two[0].indptr)
        assert np.array_equal(one[0].indices, two[0].indices)
        assert np.array_equal(one[0].indices, out.indices)


def test_rewire_hub_dropped_by_many_matches_the_rules():
    """Hub 0 (tier 0) with 120 leaves (tier 1) plus a ring among the leaves: under "different"
    at probability 1 many leaves drop the hub in one day (a long row losing many entries at
    once) and the result still equals the plain-Python rules, with the hub's row ascending."""
    n = 121
    pairs = [(0, i) for i in range(n - 1, 0, -1)] + [(i, i % (n - 1) + 1) for i in range(1, n)]
    layer = layer_of(n, pairs)
    tier = np.array([0] + [1] * (n - 1), dtype=np.uint8)
    frozen = np.zeros(n, dtype=bool)
    out, moved = rewire(layer, tier, KEY, 1.0, "different")
    assert_clean(out, n)
    expected, applied = reference_rewire(layer, tier, KEY, 1.0, "different", frozen)
    assert tie_set(out) == expected and moved == len(applied)
    assert layer.degree[0] - out.degree[0] > 30


@pytest.mark.parametrize("probability", [0.004, 0.6])
def test_rewire_quiet_and_busy_days_match_the_rules(probability):
    """3000 citizens, 4 tiers: a quiet day (few swaps, kept as a sorted event list) and a busy
    day (many swaps, grouped by a counting sort) both give the plain-Python rules' ties."""
    layer = simple(small_world(3000, 6, 0.2, 8))
    tier = (uniforms(KEY, 3000, slot=5) * 4).astype(np.uint8)
    frozen = np.zeros(3000, dtype=bool)
    out, moved = rewire(layer, tier, KEY, probability, "different")
    assert_clean(out, 3000)
    expected, applied = reference_rewire(layer, tier, KEY, probability, "different", frozen)
    assert tie_set(out) == expected and moved == len(applied) > 0


def test_rewire_drops_one_copy_of_a_duplicate_tie_it_was_given():
    """A layer given with tie 0-1 twice (tiers 0 and 1) and citizen 2 (tier 0) alone: under
    "worse" 0 drops one copy of 0-1 and ties to 2, its only candidate; 1 sees a better tier
    and keeps. Both rows lose exactly one copy, so the layer stays symmetric."""
    layer = layer_of(3, [(0, 1), (1, 0)])
    out, moved = rewire(layer, np.array([0, 1, 0], np.uint8), KEY, 1.0, "worse")
    assert moved == 1 and tie_set(out) == Counter({(0, 1): 1, (0, 2): 1})
    assert out.neighbours(0).tolist() == [1, 2] and out.neighbours(1).tolist() == [0]


def test_rewire_and_tie_stats_same_for_any_thread_count():
    """20k citizens, 5 days at probability 0.5: bit-identical layers and statistics on 1 and 2
    threads."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 Numba threads")
    start = small_world(20_000, 8, 0.2, 3)
    tier = (uniforms(KEY, 20_000, slot=4) * 4).astype(np.uint8)
    scores = (uniforms(KEY, 20_000, slot=6) * 1e6).astype(np.int64) - 300_000 * tier.astype(np.int64)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            layer = start
            for day in range(5):
                layer, _ = rewire(layer, tier, stream_key(3, Stage.TIES, day, 99), 0.5, "different")
            results.append((layer, tie_stats(layer, tier, 4, scores)))
    finally:
        numba.set_num_threads(previous)
    (one, stats_one), (two, stats_two) = results
    assert np.array_equal(one.indptr, two.indptr)
    assert np.array_equal(one.indices, two.indices)
    assert stats_one == stats_two  # exact float equality, not approx


def test_rewiring_by_difference_sorts_and_fragments_the_network(seed):
    """Holme & Newman (2006): repeated "different" rewiring removes every cross-tier tie on a
    1000-citizen small world with 3 random tiers: tier assortativity goes from about 0 to
    exactly 1 and the one component splits into at least one per tier (holds for seeds 0-99;
    the last cross-tier ties go after about 65 days, so 120 are run)."""
    layer = small_world(1000, 6, 0.1, seed)
    tier = (uniforms(stream_key(seed, Stage.TIES, 0, 98), 1000) * 3).astype(np.uint8)
    scores = np.zeros(1000, dtype=np.int64)
    before = tie_stats(layer, tier, 3, scores)
    assert abs(before["tier_assortativity"]) < 0.1 and before["components"] == 1
    for day in range(1, 121):
        layer, _ = rewire(layer, tier, stream_key(seed, Stage.TIES, day, 99), 0.5, "different")
    after = tie_stats(layer, tier, 3, scores)
    assert after["tier_assortativity"] == 1.0
    assert after["components"] >= 3
    assert after["mean_degree"] == before["mean_degree"]  # rewiring conserves ties


# ----------------------------------------------------------------------------- partner market


def test_rematch_assortativity_one_pairs_by_score_rank():
    """assortativity 1, meet 1, breakup 0. Women 0, 1, 2 score 500, 900, 700: order 1, 2, 0.
    Men 3 and 4 both score 300: equal scores go by id, order 3, 4. So 1-3 and 2-4 pair and
    woman 0 stays single. Woman 5 (score 1000) is not eligible; couple 6-7 stays together."""
    partner = np.array([-1, -1, -1, -1, -1, -1, 7, 6], dtype=np.int32)
    scores = np.array([500, 900, 700, 300, 300, 1000, 0, 0], dtype=np.int64)
    sex = np.array([0, 0, 0, 1, 1, 0, 0, 1], dtype=np.uint8)
    eligible = np.array([True, True, True, True, True, False, True, True])
    out, broken, formed = rematch_partners(partner, scores, sex, eligible, KEY, 0.0, 1.0, 1.0)
    assert out.tolist() == [-1, 3, 4, 1, 2, -1, 7, 6]
    assert (broken, formed) == (0, 2)
    assert partner.tolist() == [-1, -1, -1, -1, -1, -1, 7, 6]  # input untouched


def test_rematch_rejects_an_asymmetric_partner_array():
    """partner[partner[i]] must be i: 0 -> 1 but 1 -> 2 is refused."""
    with pytest.raises(ValueError, match="symmetric"):
        rematch_partners(np.array([1, 2, 1], np.int32), np.zeros(3), np.array([0, 1, 0], np.uint8),
                         np.ones(3, bool), KEY, 0.0, 1.0, 0.5)


@pytest.fixture(scope="module")
def market():
    """4000 citizens, sex and scores drawn at random, all eligible and single."""
    n = 4000
    key = stream_key(11, Stage.TIES, 0, 97)
    sex = (uniforms(key, n, slot=0) < 0.5).astype(np.uint8)
    scores = (uniforms(key, n, slot=1) * 1_000_000).astype(np.int64)
    return np.full(n, -1, dtype=np.int32), scores, sex, np.ones(n, dtype=bool)


def assert_couples_valid(partner: np.ndarray, sex: np.ndarray) -> None:
    """Symmetric, nobody partnered to themselves, every couple one woman and one man."""
    has = np.flatnonzero(partner >= 0)
    assert np.all(partner[partner[has]] == has)
    assert np.all(partner[has] != has)
    assert np.all(sex[has] != sex[partner[has]])


def test_rematch_gives_symmetric_woman_man_couples(market):
    """Day 1 matches from all-single; day 2 breaks some couples and forms others; both valid,
    and the counts add up to the change in couples."""
    partner, scores, sex, eligible = market
    day1, broken, formed = rematch_partners(partner, scores, sex, eligible, KEY, 0.0, 0.6, 0.5)
    assert_couples_valid(day1, sex)
    assert broken == 0 and formed == np.count_nonzero(day1 >= 0) // 2 > 500
    key2 = stream_key(11, Stage.TIES, 2, 97)
    day2, broken, formed = rematch_partners(day1, scores, sex, eligible, key2, 0.3, 0.6, 0.5)
    assert_couples_valid(day2, sex)
    assert broken > 0 and formed > 0
    assert np.count_nonzero(day2 >= 0) // 2 == np.count_nonzero(day1 >= 0) // 2 - broken + formed


def test_rematch_breakup_one_breaks_every_couple_and_meet_zero_forms_none(market):
    """breakup 1 breaks all couples; with meet 0 nobody re-pairs, from any start."""
    partner, scores, sex, eligible = market
    day1, _, formed = rematch_partners(partner, scores, sex, eligible, KEY, 0.0, 1.0, 0.0)
    out, broken, formed_again = rematch_partners(day1, scores, sex, eligible, KEY, 1.0, 0.0, 0.0)
    assert broken == formed and formed_again == 0
    assert np.all(out == -1)
    out, broken, formed = rematch_partners(partner, scores, sex, eligible, KEY, 0.0, 0.0, 1.0)
    assert (broken, formed) == (0, 0) and np.all(out == -1)


def test_rematch_assortativity_raises_partner_score_correlation(market):
    """Everyone enters: assortativity 1 pairs by rank (correlation near 1), 0 at random
    (near 0)."""
    partner, scores, sex, eligible = market
    sorted_, _, _ = rematch_partners(partner, scores, sex, eligible, KEY, 0.0, 1.0, 1.0)
    random_, _, _ = rematch_partners(partner, scores, sex, eligible, KEY, 0.0, 1.0, 0.0)
    high = partner_stats(sorted_, scores)["partner_score_correlation"]
    low = partner_stats(random_, scores)["partner_score_correlation"]
    assert high > 0.95 and abs(low) < 0.1 and high > low


# ----------------------------------------------------------------------------- statistics


def test_tie_stats_path_with_isolated_citizen():
    """Path 0-1-2-3 and isolated 4: 6 entries / 5 citizens = 1.2 ties each, 1 of 5 isolated,
    one component of 4 citizens = 0.8 of the population."""
    stats = tie_stats(layer_of(5, [(0, 1), (1, 2), (2, 3)]), np.zeros(5, np.uint8), 1,
                      np.zeros(5, np.int64))
    assert stats["mean_degree"] == pytest.approx(6 / 5)
    assert stats["isolated_share"] == pytest.approx(0.2)
    assert stats["components"] == 1
    assert stats["largest_component_share"] == pytest.approx(0.8)
    assert math.isnan(stats["tier_assortativity"])  # every entry joins tier 0: undefined
    assert math.isnan(stats["score_correlation"])  # no variance


def test_tie_stats_two_triangles_of_one_tier_each_are_perfectly_assortative():
    """Triangles {0,1,2} (tier 0) and {3,4,5} (tier 1): 12 entries, e = [[1/2, 0], [0, 1/2]],
    a = b = (1/2, 1/2), so r = (1 - 1/2) / (1 - 1/2) = 1; two components of 3, share 0.5."""
    layer = layer_of(6, [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)])
    stats = tie_stats(layer, np.array([0, 0, 0, 1, 1, 1], np.uint8), 2, np.arange(6))
    assert stats["tier_assortativity"] == 1.0
    assert stats["components"] == 2
    assert stats["largest_component_share"] == 0.5


def test_tie_stats_bipartite_star_is_perfectly_disassortative():
    """Hub 0 (tier 0) tied to 1, 2, 3 (tier 1): 6 entries, all across, e = [[0, 1/2], [1/2, 0]],
    a = b = (1/2, 1/2), so r = (0 - 1/2) / (1 - 1/2) = -1."""
    layer = layer_of(4, [(0, 1), (0, 2), (0, 3)])
    stats = tie_stats(layer, np.array([0, 1, 1, 1], np.uint8), 2, np.zeros(4, np.int64))
    assert stats["tier_assortativity"] == -1.0
    assert stats["components"] == 1 and stats["largest_component_share"] == 1.0


def test_tie_stats_score_correlation_is_pearson_over_entries():
    """score_correlation equals numpy.corrcoef of (scores[row], scores[col]) over all entries."""
    layer = small_world(500, 6, 0.3, 2)
    key = stream_key(2, Stage.TIES, 0, 96)
    scores = (uniforms(key, 500) * 100_000).astype(np.int64)
    scores = scores + np.arange(500) * 2000  # neighbours on the ring have similar scores
    tier = (uniforms(key, 500, slot=1) * 3).astype(np.uint8)
    rows = np.repeat(np.arange(500), layer.degree)
    expected = np.corrcoef(scores[rows], scores[layer.indices])[0, 1]
    stats = tie_stats(layer, tier, 3, scores)
    assert stats["score_correlation"] == pytest.approx(expected, abs=1e-12)
    assert stats["score_correlation"] > 0.5


def test_tie_stats_of_an_empty_layer():
    """No ties: mean degree 0, everyone isolated, no components, coefficients undefined."""
    stats = tie_stats(empty(3), np.zeros(3, np.uint8), 1, np.arange(3))
    assert stats["mean_degree"] == 0 and stats["isolated_share"] == 1
    assert stats["components"] == 0 and stats["largest_component_share"] == 0
    assert math.isnan(stats["tier_assortativity"]) and math.isnan(stats["score_correlation"])


def test_partner_stats_by_hand():
    """Couples 0-1 (scores 1, 2) and 2-3 (3, 5), citizen 4 single: share 4/5. Both orders:
    x = (1, 2, 3, 5), y = (2, 1, 5, 3), means 2.75; sum dx*dy = 3.75, sum dx^2 = 8.75,
    so r = 3.75 / 8.75 = 3/7."""
    stats = partner_stats(np.array([1, 0, 3, 2, -1], np.int32), np.array([1, 2, 3, 5, 100]))
    assert stats["partnered_share"] == pytest.approx(0.8)
    assert stats["partner_score_correlation"] == pytest.approx(3 / 7)


def test_partner_stats_needs_two_couples():
    """One couple gives no correlation (NaN); nobody partnered gives share 0."""
    one = partner_stats(np.array([1, 0, -1], np.int32), np.array([1, 2, 3]))
    assert one["partnered_share"] == pytest.approx(2 / 3)
    assert math.isnan(one["partner_score_correlation"])
    none = partner_stats(np.full(4, -1, np.int32), np.arange(4))
    assert none["partnered_share"] == 0 and math.isnan(none["partner_score_correlation"])


def test_fragmentation_of_couples_needs_no_search():
    """A layer of couples (degree at most 1): each couple is one component of 2; the same
    answer as the union-find (0-1, 2-3 and 5 alone of 6 -> 2 components, largest 2, 2 alone)."""
    from panopticon.kernels.network import components
    from panopticon.society.network import fragmentation

    layer = from_pairs(6, np.asarray([0, 2]), np.asarray([1, 3]))
    assert fragmentation(layer) == (2, 2, 2)
    assert tuple(int(x) for x in components(layer.indptr, layer.indices)) == (2, 2, 2)
