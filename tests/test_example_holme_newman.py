"""examples/holme_newman*.yaml: the coevolution of networks and opinions (Holme & Newman, Phys.
Rev. E 74, 056108, 2006), with score bands (tiers) as the opinions.

5,000 citizens whose only ties are a random friendship graph of mean degree 10, nine opinions
(tiers o0..o8, score bands [k, k + 1)), start scores uniform on [0, 9). Rewiring is
``behaviour.unfriending`` (drop a friend of another tier, befriend a random citizen of one's
own); conformity is an association pull on friends. ``holme_newman.yaml``: rewiring dominates
(probability 0.5 a day against a pull of 0.05 once a week). ``holme_newman_conformity.yaml``:
conformity dominates (0.01 a day against a pull of 0.5 every day). See
docs/examples/holme_newman.md.

One run of each file as written (200 days, seed 2006) is shared by the tests. The margins were
measured over seeds 0-99 of each file (numbers in the docstrings); the assertions hold for
every one of them, not only for seed 2006, except the 3-SD check of the starting tier sizes,
which a fair draw misses in about 2% of seeds (seed 36 of 0-99).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from panopticon import api, engine

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REWIRING = EXAMPLES / "holme_newman.yaml"
CONFORMITY = EXAMPLES / "holme_newman_conformity.yaml"
PANOPTICON = Path(sys.executable).with_name("panopticon")
TIERS = [f"o{k}" for k in range(8, -1, -1)]
"""Tier names, best first: o<k> holds the scores in [k, k + 1)."""
MEAN_DEGREE = 10


@pytest.fixture(scope="module")
def rewiring_spec():
    return api.load(REWIRING)


@pytest.fixture(scope="module")
def conformity_spec():
    return api.load(CONFORMITY)


@pytest.fixture(scope="module")
def rewiring(rewiring_spec):
    return api.run(rewiring_spec)


@pytest.fixture(scope="module")
def conformity(conformity_spec):
    return api.run(conformity_spec)


def friends(result):
    """The friends rows of the network table, one per survey day, in day order."""
    net = result.table("network").to_pandas()
    return net[net["layer"] == "friends"].sort_values("day").reset_index(drop=True)


def tiers_present(citizens) -> int:
    return int((citizens["tier"].value_counts() > 0).sum())


def test_scenarios_validate_and_differ_only_in_the_two_rates(rewiring_spec, conformity_spec):
    """`panopticon validate` accepts both files (exit 0). Both are the model as described: start
    score = the opinion trait (uniform on [0, 9)), nine tiers of width 1, unfriending on friends
    with drop ``different``, one pull rule on friends; apart from the name and description they
    differ only in the unfriending probability (0.5 / 0.01) and the pull (0.05 every 7 days /
    0.5 every day), as the page says."""
    for path, name in ((REWIRING, "holme_newman"), (CONFORMITY, "holme_newman_conformity")):
        out = subprocess.run([str(PANOPTICON), "validate", str(path)], capture_output=True,
                             text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert "ok" in out.stdout and f"({name})" in " ".join(out.stdout.split())
    for spec in (rewiring_spec, conformity_spec):
        assert spec.policy.score.start == "opinion"
        assert spec.policy.tier_names == TIERS
        assert [t.min for t in spec.policy.tiers] == [8, 7, 6, 5, 4, 3, 2, 1, None]
        assert spec.policy.rules == [] and spec.sensors == {} and spec.behaviour.events == {}
        assert spec.behaviour.unfriending.layer == "friends"
        assert spec.behaviour.unfriending.drop == "different"
        (pull,) = spec.policy.association
        assert pull.ties == "friends"
        trait = spec.society.traits["opinion"]
        assert (trait.kind, trait.low, trait.high) == ("uniform", 0, 9)
    assert (rewiring_spec.behaviour.unfriending.probability,
            conformity_spec.behaviour.unfriending.probability) == (0.5, 0.01)
    assert (rewiring_spec.policy.association[0].weight,
            rewiring_spec.policy.association[0].every_days) == (0.05, 7)
    assert (conformity_spec.policy.association[0].weight,
            conformity_spec.policy.association[0].every_days) == (0.5, 1)

    def rest(spec):
        data = spec.model_dump(mode="json")
        del data["name"], data["description"]
        data["behaviour"]["unfriending"]["probability"] = None
        data["policy"]["association"] = None
        return data

    assert rest(rewiring_spec) == rest(conformity_spec)


def test_friends_are_the_only_ties_and_opinions_start_uniform(rewiring, rewiring_spec):
    """Households of one, no family layer and work teams of one leave the family, work and
    partner layers empty on every survey, so only friends can pull or be rewired. Each of the
    nine tiers starts with 5,000 / 9 = 555.6 citizens, binomial SD sqrt(5000 x 1/9 x 8/9) =
    22.2: all within 3 SD. The start score is the opinion trait in milli-points."""
    net = rewiring.table("network").to_pandas()
    others = net[net["layer"] != "friends"]
    assert set(others["layer"]) == {"family", "work", "partner"}
    assert (others["mean_degree"] == 0).all() and (others["isolated_share"] == 1).all()

    citizens = rewiring.citizens.to_pandas()
    n = rewiring_spec.run.citizens
    assert len(citizens) == n
    day0 = engine.initial_state(engine.build(rewiring_spec))
    assert np.array_equal(day0.scores, np.round(citizens["opinion"].to_numpy() * 1000))
    counts = np.bincount(day0.tier, minlength=9)
    assert abs(counts - n / 9).max() < 3 * math.sqrt(n * (1 / 9) * (8 / 9)), counts


def test_when_rewiring_dominates_the_network_splits_into_one_group_per_opinion(rewiring):
    """Rewiring 0.5 a day against a pull of about 0.05 / 7 = 0.007 a day. A tie between two
    tiers is looked at by either end with probability about 2 x 0.5 / 10 = 0.1 a day, and
    dropped when looked at, while every new tie joins one tier; the ~8/9 x 25,000 = 22,000
    cross ties fall as 22,000 x exp(-0.1 t), to under one by day ~100. A tier's own ties then
    form a random graph of ~555 citizens with mean degree ~10, connected with near certainty.
    A pull toward friends who are all in one's own band keeps the score in that band, so the
    split is final: one component per tier, each holding ~1/9 of the citizens, assortativity
    exactly 1, and the scores keep nearly their starting spread (SD of U(0, 9) = 2.60).

    Measured over seeds 0-99: 9 components and 9 tiers left in every run, largest component
    0.117-0.129, tier_assortativity 1, nobody isolated, score SD 2.40-2.49.
    """
    last = friends(rewiring).iloc[-1]
    citizens = rewiring.citizens.to_pandas()
    present = tiers_present(citizens)
    assert present == 9
    assert last["components"] >= present
    assert last["largest_component_share"] < 0.2
    assert last["tier_assortativity"] == pytest.approx(1.0, abs=1e-9)
    assert last["isolated_share"] == 0
    assert citizens["score"].std() > 2.3


def test_when_conformity_dominates_opinions_reach_consensus_on_one_component(conformity,
                                                                              conformity_spec):
    """A daily pull of half the way to the friends' mean on a random graph of mean degree 10
    shrinks every disagreement by a factor of at most about 1 - 0.5 x (1 - 2 x sqrt(9) / 10)
    = 0.8 a day, so the spread of U(0, 9) (SD 2.60) is gone within weeks, down to the
    milli-point rounding; the few early rewirings (0.01 a day) keep every citizen's own number
    of ties, and cannot split a network that agrees. The pull conserves sum_i degree_i x
    score_i on a fixed graph (each tie moves its two ends by equal and opposite weighted
    amounts), so the consensus is the degree-weighted mean of the starting opinions, ~4.5,
    inside tier o4 = [4, 5).

    Measured over seeds 0-99: one component holding every citizen, one tier left, score SD at
    most 0.0011, consensus 4.42-4.60, within 0.002 of the degree-weighted mean of the starting
    opinions.
    """
    net = friends(conformity)
    last = net.iloc[-1]
    assert (net["components"] == 1).all()
    assert last["largest_component_share"] >= 0.99
    citizens = conformity.citizens.to_pandas()
    assert tiers_present(citizens) == 1
    assert (citizens["tier"] == "o4").all()
    assert citizens["opinion"].std() > 2.5
    assert citizens["score"].std() < 0.01
    assert citizens["score"].max() - citizens["score"].min() < 0.01
    ties = engine.build(conformity_spec).society.ties["friends"]
    weighted = float(np.dot(ties.degree, citizens["opinion"].to_numpy()) / ties.degree.sum())
    assert citizens["score"].mean() == pytest.approx(weighted, abs=0.005)
    shares = conformity.daily.to_pandas()[[f"share_{t}" for t in TIERS]]
    assert (shares.iloc[30:] > 0).sum(axis=1).max() == 1  # one tier from day 30 on


def test_rewiring_conserves_the_number_of_ties(rewiring, conformity, rewiring_spec):
    """A rewiring swaps i's tie to j for a tie to k: i keeps its number of ties, j loses one, k
    gains one, so the directed entries (2 x 5,000 x 10 / 2 x 2 = 50,000) never change and the
    mean degree is exactly 10 on every survey, in both regimes, though the rewiring regime
    moves ~24,000 ties. The small-world generator with rewire 1.0 draws every far end
    independently, so a pair can be drawn twice (about M^2 / N^2 = 25 of M = 25,000 pairs on
    N = 5,000); the layer keeps such a duplicate as two entries and rewiring never creates a new
    one (k is never already tied to i), so duplicates do not change the count either. The final
    layer is symmetric, without self ties, and has at most the duplicates it started with."""
    for result in (rewiring, conformity):
        net = friends(result)
        assert (net["mean_degree"] == MEAN_DEGREE).all()
        citizens = result.citizens.to_pandas()
        assert citizens["friends_ties"].sum() == rewiring_spec.run.citizens * MEAN_DEGREE
    assert rewiring.daily.to_pandas()["ties_rewired"].sum() > 20_000
    assert conformity.daily.to_pandas()["ties_rewired"].sum() > 0

    sim = engine.build(rewiring_spec)
    start = sim.society.ties["friends"]
    end = engine.run(sim).ties["friends"]

    def pairs(layer):
        rows = np.repeat(np.arange(layer.n, dtype=np.int64), np.diff(layer.indptr))
        return rows, layer.indices.astype(np.int64)

    def duplicates(layer):
        rows, cols = pairs(layer)
        return layer.n_ties - len(np.unique(rows * layer.n + cols))

    assert start.n_ties == end.n_ties == rewiring_spec.run.citizens * MEAN_DEGREE
    assert 0 < duplicates(start) < 200
    assert duplicates(end) <= duplicates(start)
    rows, cols = pairs(end)
    assert not (rows == cols).any()
    assert np.array_equal(np.sort(rows * end.n + cols), np.sort(cols * end.n + rows))


def test_fragmentation_grows_over_time_when_rewiring_dominates(rewiring):
    """Ties between tiers disappear and every new tie joins one tier, so the network only comes
    apart: from one component holding everyone on day 0 to one per tier at the end, the last
    survey having the most components and the smallest largest component, while
    tier_assortativity climbs from ~0.1 (after day 0's ~2,000 rewirings: 5,000 x 0.5 x 8/9 =
    2,222 expected) to 1. Once every tie joins one tier nobody has a friend to drop: rewiring
    stops for good. Two groups can join again for a while, though: while a few ties still cross
    a band, the weekly pull can carry a citizen across the band edge, and their ties then bridge
    two groups until rewired. So the count is not strictly monotone; it falls at most once, by
    one.

    Measured over seeds 0-99: the network first splits between days 79 and 99 and has nine
    components by day 169 at the latest (seed 2006: by day 109, no rewiring after day 103);
    components never fall in 99 runs and fall once, 7 -> 6, in one (seed 55); the largest
    component grows back in two (seed 55 by 0.116 of the citizens, seed 98 by one citizen).
    """
    net = friends(rewiring)
    components = net["components"].to_numpy()
    largest = net["largest_component_share"].to_numpy()
    first, last = net.iloc[0], net.iloc[-1]
    assert list(net["day"][:3]) == [0, 9, 19] and net["day"].iloc[-1] == 199
    assert components[0] == 1 and largest[0] == 1
    assert components[-1] >= components[0] + 8
    assert components[-1] == components.max() and largest[-1] == largest.min()
    falls = np.diff(components)[np.diff(components) < 0]
    assert len(falls) <= 1 and (falls >= -1).all()
    assert first["tier_assortativity"] < 0.2
    assert last["tier_assortativity"] > first["tier_assortativity"]
    rewired = rewiring.daily.to_pandas()["ties_rewired"].to_numpy()
    assert 1000 < rewired[0] < 3000
    assert (rewired[-20:] == 0).all()
