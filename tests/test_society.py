"""The synthetic society: a pure function of (spec, n, seed); shares, households and ties obey the spec."""

from __future__ import annotations

import math

import numpy as np
import pytest

from panopticon.scenario import FriendsSpec, SocietySpec, TiesSpec
from panopticon.society import generate_society
from panopticon.society.population import NO_PARTNER
from panopticon.society.sampling import draw
from panopticon.society.ties import CSR, cliques, from_pairs, small_world
from panopticon.spec import LogNormal, Normal

BIG = 200_000


@pytest.fixture(scope="module")
def big():
    """One default society of 200k citizens (about 0.5 s), shared by the share tests."""
    return generate_society(SocietySpec(), BIG, 5)


@pytest.fixture(scope="module")
def article():
    """The seed_article society spec (income by region) at 200k citizens."""
    from panopticon.scenario import load_preset

    spec = load_preset("seed_article").society
    return spec, generate_society(spec, BIG, 11)


def assert_valid_layer(layer: CSR, n: int) -> None:
    """CSR well formed, indices in range, no self ties, symmetric as a multiset of directed pairs."""
    assert layer.indptr.dtype == np.int32 and layer.indices.dtype == np.int32  # small layers
    assert layer.indptr.shape == (n + 1,)
    assert layer.indptr[0] == 0 and layer.indptr[-1] == len(layer.indices)
    assert np.all(np.diff(layer.indptr) >= 0)
    if len(layer.indices) == 0:
        return
    assert layer.indices.min() >= 0 and layer.indices.max() < n
    rows = np.repeat(np.arange(n, dtype=np.int64), layer.degree)
    cols = layer.indices.astype(np.int64)
    assert not np.any(rows == cols), "self tie"
    forward = np.sort(rows * n + cols)
    backward = np.sort(cols * n + rows)
    assert np.array_equal(forward, backward), "asymmetric layer"


# ----------------------------------------------------------------- purity


def test_society_is_pure_function_of_spec_n_seed():
    """generate_society(spec, n, seed) twice gives identical arrays; another seed gives another society."""
    spec = SocietySpec()
    a, b = generate_society(spec, 5000, 3), generate_society(spec, 5000, 3)
    c = generate_society(spec, 5000, 4)
    for name, col in a.population.columns().items():
        assert col.tobytes() == getattr(b.population, name).tobytes(), name
    assert a.population.labels == b.population.labels
    for layer in a.ties:
        assert a.ties[layer].indptr.tobytes() == b.ties[layer].indptr.tobytes()
        assert a.ties[layer].indices.tobytes() == b.ties[layer].indices.tobytes()
    assert a.population.age.tobytes() != c.population.age.tobytes()
    assert a.ties["friends"].indices.tobytes() != c.ties["friends"].indices.tobytes()


# ----------------------------------------------------------------- shares


def _shares(codes: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(codes, minlength=k) / len(codes)


def test_household_level_attribute_shares_match_spec_tables(big):
    """Region, group and residency shares of citizens match the spec's tables (n=200k).

    These are drawn per household (~77k of them); citizen shares then have a standard error of
    about sqrt(p(1-p)/77k) * 1.5 (cluster effect) <= 0.0027, so 0.012 is > 4 s.e. (0.0015 for
    the 0.2-0.3% residency categories, whose s.e. is ~0.0003).
    """
    spec, pop = SocietySpec(), big.population
    for column, tol in (("region", 0.012), ("group", 0.012), ("residency", 0.0015)):
        table = getattr(spec, column)
        want = np.asarray(table.weights) / sum(table.weights)
        got = _shares(getattr(pop, column), len(want))
        assert pop.labels[column] == tuple(table.labels())
        np.testing.assert_allclose(got, want, atol=tol, err_msg=column)


def test_household_sizes_match_spec_table(big):
    """Households' sizes follow households.size (only the last household may be cut short)."""
    table = SocietySpec().households.size
    sizes = np.bincount(big.population.household)
    assert sizes.sum() == BIG and sizes.min() >= 1
    values = [int(v) for v in table.values]
    got = np.array([np.count_nonzero(sizes == v) for v in values]) / len(sizes)
    want = np.asarray(table.weights) / sum(table.weights)
    # ~77k households: s.e. <= sqrt(.25/77k) = 0.0018; tolerance 0.01 is > 5 s.e.
    np.testing.assert_allclose(got, want, atol=0.01)
    assert np.count_nonzero(~np.isin(sizes, values)) <= 1  # only the truncated last household


def test_occupation_shares_among_working_age_match_spec(big):
    """Among citizens aged 18..retirement_age-1 the occupation shares are the spec's table (n~120k,
    s.e. <= 0.0015, tolerance 0.01); the extra categories 'minor' and 'retired' never appear there."""
    spec, pop = SocietySpec(), big.population
    working = (pop.age >= 18) & (pop.age < spec.retirement_age)
    k = len(spec.occupation.values)
    got = _shares(pop.occupation[working], k + 2)
    want = np.asarray(spec.occupation.weights) / sum(spec.occupation.weights)
    np.testing.assert_allclose(got[:k], want, atol=0.01)
    assert got[k] == 0 and got[k + 1] == 0


def test_official_rank_shares_match_spec(big):
    """Officials (and only officials) have a rank > 0, with shares from official_rank (n~3.5k officials,
    s.e. <= 0.0085, tolerance 0.04)."""
    spec, pop = SocietySpec(), big.population
    official = pop.occupation == pop.labels["occupation"].index("official")
    assert np.all(pop.rank[~official] == 0)
    assert np.all(pop.rank[official] >= 1)
    ranks = [int(v) for v in spec.official_rank.values]
    got = np.array([np.mean(pop.rank[official] == r) for r in ranks])
    want = np.asarray(spec.official_rank.weights) / sum(spec.official_rank.weights)
    np.testing.assert_allclose(got, want, atol=0.04)


def test_female_share_matches_spec_default(big):
    """The share of women is female_share (0.49); s.e. ~0.0011 at 200k, tolerance 0.006."""
    assert abs(np.mean(big.population.sex == 0) - 0.49) < 0.006


def test_female_share_matches_spec_when_not_half():
    """female_share is the share of women in the society also when far from 1/2 (0.3 here).

    200k citizens: s.e. ~0.0011 (clustered by household ~0.0015); tolerance 0.01.
    """
    pop = generate_society(SocietySpec(female_share=0.3), BIG, 8).population
    assert abs(np.mean(pop.sex == 0) - 0.3) < 0.01


def test_adult_income_median_matches_lognormal_median(big):
    """Adults' income is lognormal(median 4000, sigma 0.7): median within 2%, sd of log within 0.02
    (s.e. of the log-median ~0.003, of the log-sd ~0.0013 at ~150k adults)."""
    pop = big.population
    adult = pop.age >= 18
    assert abs(np.median(pop.income[adult]) / 4000 - 1) < 0.02
    log_sd = np.std(np.log(pop.income[adult]))
    assert abs(log_sd - 0.7) < 0.02


def test_income_by_category_uses_each_category_distribution(article):
    """Income 'by: region' gives urban adults median 4500 and rural adults median 1800 (within 3%)."""
    spec, soc = article
    pop = soc.population
    adult = pop.age >= 18
    for label, median in (("urban", 4500), ("rural", 1800)):
        mask = adult & (pop.region == pop.labels["region"].index(label))
        assert abs(np.median(pop.income[mask]) / median - 1) < 0.03, label


# ----------------------------------------------------------------- households


def test_households_are_contiguous_id_runs(big):
    """Household ids are 0..H-1 and each household is one contiguous run of citizen ids, in id order."""
    h = big.population.household
    assert h[0] == 0
    steps = np.diff(h.astype(np.int64))
    assert np.all((steps == 0) | (steps == 1))
    assert h[-1] == len(np.unique(h)) - 1


def test_households_share_region_group_residency_and_are_ordered_by_region(big):
    """Members of a household share region, group and residency; households run region by region."""
    pop = big.population
    starts = np.flatnonzero(np.r_[True, np.diff(pop.household) != 0])
    for col in ("region", "group", "residency"):
        values = getattr(pop, col)
        assert np.array_equal(values, np.repeat(values[starts], np.diff(np.r_[starts, pop.n]))), col
    assert np.all(np.diff(pop.region.astype(np.int64)) >= 0)


def test_partners_are_mutual_same_household_opposite_sex_adults(big):
    """Partner links are mutual, within one household, between a man and a woman, both adults."""
    pop = big.population
    has = np.flatnonzero(pop.partner != NO_PARTNER)
    assert len(has) > 0
    p = pop.partner[has]
    assert np.all(pop.partner[p] == has)
    assert np.all(p != has)
    assert np.all(pop.household[p] == pop.household[has])
    assert np.all(pop.sex[p] != pop.sex[has])
    assert np.all(pop.age[has] >= 18)
    # partnered share of households of size >= 2 is households.partnered (0.75); ~50k such households
    sizes = np.bincount(pop.household)
    multi = np.flatnonzero(sizes >= 2)
    partnered = np.zeros(len(sizes), bool)
    partnered[pop.household[has]] = True
    assert abs(partnered[multi].mean() - 0.75) < 0.01


def test_partner_layer_is_exactly_the_partner_column(big):
    """The 'partner' tie layer holds exactly one tie per partnered citizen: their partner."""
    pop, layer = big.population, big.ties["partner"]
    deg = layer.degree
    assert np.array_equal(deg, (pop.partner != NO_PARTNER).astype(np.int64))
    has = np.flatnonzero(deg)
    assert np.array_equal(layer.indices, pop.partner[has])


def test_family_layer_ties_everyone_in_a_household(big):
    """The 'family' layer is the household clique: degree = household size - 1, all within household."""
    pop, layer = big.population, big.ties["family"]
    sizes = np.bincount(pop.household)
    assert np.array_equal(layer.degree, sizes[pop.household] - 1)
    rows = np.repeat(np.arange(pop.n), layer.degree)
    assert np.all(pop.household[layer.indices] == pop.household[rows])


def test_minors_have_occupation_minor_and_no_income(big):
    """Citizens under 18 (and only they) have occupation 'minor' and income 0; retirees are 'retired'."""
    pop = big.population
    occ = pop.labels["occupation"]
    minor = pop.age < 18
    assert minor.any()
    assert np.array_equal(pop.occupation == occ.index("minor"), minor)
    assert np.all(pop.income[minor] == 0)
    assert np.all(pop.income >= 0)
    assert np.array_equal(pop.occupation == occ.index("retired"), pop.age >= 65)
    assert np.all(pop.income[~minor] > 0)


def test_household_heads_are_adults(big):
    """The first member of every household (its head) is an adult."""
    pop = big.population
    heads = np.flatnonzero(np.r_[True, np.diff(pop.household) != 0])
    assert np.all(pop.age[heads] >= 18)


# ----------------------------------------------------------------- ties


def test_every_tie_layer_is_symmetric_without_self_ties(big):
    """Every layer (family, partner, friends, work) is symmetric, self-tie free and in range."""
    assert set(big.ties) == {"family", "partner", "friends", "work"}
    for name, layer in big.ties.items():
        assert layer.n == BIG, name
        assert_valid_layer(layer, BIG)


def test_small_world_mean_degree_equals_mean_degree(big):
    """The friends layer's mean degree is exactly mean_degree (10): n * mean_degree / 2 ties."""
    assert big.ties["friends"].n_ties == BIG * 10
    for d in (2, 4, 20):
        sw = small_world(3001, d, 0.3, 1)
        assert sw.n_ties == 3001 * d
        assert_valid_layer(sw, 3001)


def test_small_world_without_rewiring_is_the_ring_lattice():
    """rewire=0 gives the ring lattice: i is tied to i±1..i±k/2 (mod n) and nothing else."""
    n, d = 50, 6
    sw = small_world(n, d, 0.0, 9)
    for i in range(n):
        reach = range(1, d // 2 + 1)
        want = sorted({(i + j) % n for j in reach} | {(i - j) % n for j in reach})
        assert sorted(sw.neighbours(i).tolist()) == want


def test_small_world_rewires_the_configured_share():
    """Each lattice tie's far end is rewired with probability ``rewire`` (0.2): among 100k lattice ties
    the share longer than the lattice reach is 0.2 * (1 - 2*half/(n-1)) within 5 s.e. (s.e. ~0.0013)."""
    n, half, rewire = 20_000, 5, 0.2
    sw = small_world(n, 2 * half, rewire, 4)
    # A lattice tie spans ring distance 1..half. A rewired end lands back within that distance with
    # probability 2*half/(n-1), so the share of entries spanning more than `half` is the rewired share.
    rows = np.repeat(np.arange(n), sw.degree)
    dist = np.abs(rows - sw.indices.astype(np.int64))
    dist = np.minimum(dist, n - dist)
    moved = np.mean(dist > half)
    want = rewire * (1 - 2 * half / (n - 1))
    se = math.sqrt(rewire * (1 - rewire) / (n * half))
    assert abs(moved - want) < 5 * se


def test_work_teams_are_cliques_of_working_adults(big):
    """Only working citizens (not minor, retired or unemployed) have work ties; team degree < team_size."""
    pop, layer = big.population, big.ties["work"]
    occ = pop.labels["occupation"]
    idle = np.isin(pop.occupation, [occ.index(x) for x in ("minor", "retired", "unemployed")])
    assert np.all(layer.degree[idle] == 0)
    assert np.all(layer.degree[~idle] <= SocietySpec().ties.work.team_size - 1)
    assert np.mean(layer.degree[~idle] == 7) > 0.99


def test_from_pairs_and_cliques_hand_worked():
    """from_pairs and cliques on a hand-made example give the expected rows."""
    layer = from_pairs(4, np.array([0, 2]), np.array([1, 3]))
    assert [layer.neighbours(i).tolist() for i in range(4)] == [[1], [0], [3], [2]]
    cl = cliques(6, np.array([5, 0, 3, 1, 4]), np.array([0, 3, 5]))  # groups {5,0,3} and {1,4}
    assert sorted(cl.neighbours(0).tolist()) == [3, 5]
    assert sorted(cl.neighbours(5).tolist()) == [0, 3]
    assert cl.neighbours(1).tolist() == [4]
    assert cl.neighbours(2).tolist() == []
    assert_valid_layer(cl, 6)


# ----------------------------------------------------------------- truncation


def test_truncated_normal_age_never_piles_up_at_its_bound():
    """adult_age normal(mean 18, sd 15, min 18) truncates: the share aged exactly 18 is the density
    of a half-normal over [18, 19), 2*(Phi(1/15)-1/2) = 0.053, not the ~0.5 a clip would give."""
    spec = SocietySpec(adult_age=Normal(kind="normal", mean=18, sd=15, min=18, max=90))
    pop = generate_society(spec, 100_000, 2).population
    adults = pop.age[pop.occupation != pop.labels["occupation"].index("minor")]
    assert adults.min() >= 18
    share_18 = np.mean(adults == 18)
    want = 2 * (0.5 * (1 + math.erf(1 / 15 / math.sqrt(2))) - 0.5)
    assert abs(share_18 - want) < 0.01
    assert np.mean(adults == 19) > 0.8 * share_18


@pytest.mark.parametrize("dist", [
    Normal(kind="normal", mean=0, sd=1, min=-0.5, max=2.0),
    Normal(kind="normal", mean=10, sd=3, min=12),
    LogNormal(kind="lognormal", median=100, sigma=1.0, min=50, max=400),
])
def test_bounded_distributions_truncate_and_never_pile_up(dist):
    """Bounded normal/log-normal draws stay in [min, max] with no atom at a bound: the share within
    0.1% of the range of each bound is < 1% (an atom from clipping would hold >10%)."""
    u = (np.arange(200_000) + 0.5) / 200_000
    x = draw(dist, u)
    lo = dist.min
    hi = dist.max if dist.max is not None else x.max()
    assert x.min() >= lo and x.max() <= hi
    width = (hi - lo) * 0.001
    assert np.mean(x <= lo + width) < 0.01
    if dist.max is not None:
        assert np.mean(x >= hi - width) < 0.01
    assert np.all(np.diff(x) >= 0)  # inverse CDF: monotone in u


# ----------------------------------------------------------------- tiny societies


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_tiny_societies_work(n):
    """generate_society works for n = 1, 2, 3, ...: right length, valid layers, valid partners."""
    spec = SocietySpec(ties=TiesSpec(friends=FriendsSpec(mean_degree=10, rewire=0.5)))
    for seed in range(20):
        soc = generate_society(spec, n, seed)
        pop = soc.population
        assert soc.n == n
        for col in pop.columns().values():
            assert col.shape == (n,)
        for layer in soc.ties.values():
            assert_valid_layer(layer, n)
        has = pop.partner >= 0
        assert np.all(pop.partner[pop.partner[has]] == np.flatnonzero(has))
        assert pop.household[0] == 0
