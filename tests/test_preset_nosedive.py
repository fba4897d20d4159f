"""The peer-rating family and the nosedive preset (fiction): stars, rater weights, incidents."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from panopticon import api, engine, kernels
from panopticon.cli import app
from panopticon.rng import stream_key
from panopticon.scenario import load_preset
from panopticon.sensors import Observations
from panopticon.society.ties import from_pairs


def _rate_once(rater_score: int, opinion: float, boost_until: int = 0, boost: float = 1.0):
    """Citizen 0 rated only by citizen 1 (at ``rater_score`` milli-stars), no noise, 4 a day."""
    layer = from_pairs(2, np.array([0]), np.array([1]))
    scores = np.array([3000, rater_score], np.int64)
    sum_w, sum_wr = np.zeros(2, np.int64), np.zeros(2, np.int64)
    kernels.scoring.rate_peers(stream_key(1, 7, 0), layer.indptr, layer.indices, scores,
                               np.array([opinion, 3.0]), 4.0, 0.0, 2.0,
                               np.array([boost_until, 0], np.int64), boost, 0, np.zeros(2, bool),
                               sum_w, sum_wr)
    return sum_w[0], sum_wr[0]


def test_a_rating_weighs_the_square_of_the_raters_score_over_five():
    """A 5-star rater's rating weighs 1 (1e6 ppm), a 2.5-star rater's (2.5/5)^2 = 0.25."""
    w_top, wr_top = _rate_once(5000, 4.0)
    w_low, wr_low = _rate_once(2500, 4.0)
    k = w_top // 1_000_000
    assert k >= 1 and w_top == k * 1_000_000 and wr_top == k * 1_000_000 * 4000
    assert w_low == k * 250_000 and wr_low == k * 250_000 * 4000  # same draws, same count


def test_stars_are_whole_and_clipped_to_one_to_five():
    """An opinion of 7.2 stars gives 5-star ratings; -3 gives 1-star ratings."""
    w, wr = _rate_once(5000, 7.2)
    assert wr == w * 5000
    w, wr = _rate_once(5000, -3.0)
    assert wr == w * 1000


def test_after_an_incident_negative_ratings_weigh_double():
    """While the incident boost holds, a 2-star rating from a 5-star rater weighs 2 instead of 1; a
    4-star rating is not boosted."""
    w, _ = _rate_once(5000, 2.0)
    w_boost, _ = _rate_once(5000, 2.0, boost_until=1, boost=2.0)
    assert w_boost == 2 * w
    w_pos, _ = _rate_once(5000, 4.0, boost_until=1, boost=2.0)
    assert w_pos == w


def test_a_public_outburst_costs_an_official_star_and_starts_the_double_damage():
    """A planted public_outburst observation: the official deduction takes 1 star (1000 milli-stars)
    at once and sets the citizen's double-damage window for the next day."""
    spec = load_preset("nosedive").with_run(citizens=300, days=5)
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    i = 5
    before = state.scores.copy()
    t = sim.events.index("public_outburst")
    obs = Observations(np.array([i], np.int32), np.array([t], np.int16), np.zeros(1, np.int8),
                       np.ones(1, bool), np.array([i], np.int32))
    day = engine.apply_policy(sim, state, obs)
    rule = sim.policy.rule_labels.index("official_deduction")
    assert day.ledger["delta"][day.ledger["rule"] == rule].tolist() == [-1000]
    assert state.policy.boost_until[i] == 1
    ratings = sim.policy.rule_labels.index("ratings")
    moved = day.ledger["delta"][(day.ledger["citizen"] == i) & (day.ledger["rule"] == ratings)].sum()
    assert state.scores[i] == before[i] - 1000 + moved


def test_nosedive_runs_a_year_with_scores_within_one_to_five_stars():
    """10,000 citizens x 365 days: every score stays in [1, 5] stars and the underclass forms."""
    result = api.run("nosedive", citizens=10_000, days=365)
    scores = result.citizens.column("score").to_numpy()
    assert scores.min() >= 1.0 and scores.max() <= 5.0
    last = result.daily.slice(364).to_pylist()[0]
    assert last["share_underclass"] > 0
    assert abs(sum(v for k, v in last.items() if k.startswith("share_")) - 1) < 1e-9


def test_the_episodes_thresholds_are_all_met_in_a_year():
    """Calibration [A] of `opinion` (docs/presets/nosedive.md): the episode's thresholds
    (docs/sources.md#nosedive) all bite in a 10,000 x 365 run: some adults reach 4.5 (prime,
    the Pelican Cove discount) and 4.2 (priority rebooking), about half are at 4 or more (good
    standing; 35-65% here), and the underclass below 2.5 is small (0.5-6% of adults)."""
    result = api.run("nosedive", citizens=10_000, days=365)
    citizens = result.citizens.to_pandas()
    grown = citizens[citizens.age >= 18]
    last = result.daily.slice(364).to_pylist()[0]
    assert last["granted_housing_discount"] > 0 and last["granted_priority_rebooking"] > 0
    assert last["denied_flights"] > 0
    assert 0.35 < (grown.score >= 4.0).mean() < 0.65
    assert 0.005 < (grown.tier == "underclass").mean() < 0.06


def test_presets_table_labels_nosedive_as_fiction():
    """`panopticon presets` shows the nosedive preset's family as fiction."""
    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 0
    line = next(row for row in result.stdout.splitlines() if "nosedive" in row)
    assert "fiction" in line
