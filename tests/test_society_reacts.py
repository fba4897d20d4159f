"""The society reacts through its ties: unfriending toward one's own tier and a partner
market, run inside the day loop; measured in the network table; resumable bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_scenario

from panopticon import api, engine

REACTING = {
    "behaviour": {"unfriending": {"layer": "friends", "probability": 0.2, "drop": "worse"},
                  "partners": {"breakup": 0.01, "meet": 0.05, "assortativity": 1.0}},
    "run": {"citizens": 2_000, "days": 40, "seed": 11, "checkpoint_every": 10,
            "survey_every": 10},
}


def _worse_share(csr, tier) -> float:
    """Share of friend-tie entries pointing to a worse tier than the citizen's own."""
    rows = np.repeat(np.arange(csr.n), csr.degree)
    return float((tier[csr.indices] > tier[rows]).mean())


def _symmetric(csr) -> bool:
    rows = np.repeat(np.arange(csr.n), csr.degree)
    forward = set(zip(rows.tolist(), csr.indices.tolist(), strict=True))
    return all((b, a) in forward for a, b in forward)


def test_unfriending_moves_ties_away_from_worse_tiers_and_keeps_ties_symmetric(tiny_data):
    """Fixed standings (scores drawn from a trait, nothing scored): with 'worse', a citizen
    who looks at a tie to a lower tier replaces it by one to their own tier. Each look picks
    one of ~10 ties, so the share w of ties pointing down falls by about w/10 per look:
    after 40 days with 20% acting daily (8 looks) to about 0.9^8 = 0.43 of its start. The
    layer stays symmetric and keeps its number of ties (a swap removes one, adds one)."""
    data = {**tiny_data, "behaviour": {"events": {}}, "sensors": {}}
    spec = build_scenario(data, **REACTING, society={"traits": {
        "standing": {"kind": "uniform", "low": 90, "high": 110}}},
        policy={"score": {"start": "standing"}, "rules": [], "association": []})
    sim = engine.build(spec)
    start = engine.initial_state(sim)
    before = _worse_share(start.ties["friends"], start.tier)
    end = engine.run(sim)
    assert (end.tier == start.tier).all()
    friends = end.ties["friends"]
    assert friends.n_ties == sim.society.ties["friends"].n_ties
    assert _symmetric(friends)
    assert before > 0.2
    assert 0.3 * before < _worse_share(friends, end.tier) < 0.6 * before


def test_partner_market_keeps_partners_symmetric_and_the_partner_layer_in_step(tiny_data):
    """Couples break and form: partner[partner[i]] == i for every partnered citizen, nobody
    is their own partner, and the 'partner' tie layer lists exactly the current couples."""
    sim = engine.build(build_scenario(tiny_data, **REACTING))
    state = engine.run(sim)
    partner = state.partner
    has = np.flatnonzero(partner >= 0)
    assert (partner[partner[has]] == has).all() and (partner[has] != has).all()
    layer = state.ties["partner"]
    assert (layer.degree == (partner >= 0)).all()
    assert (layer.indices == partner[has]).all()


def test_network_is_surveyed_on_schedule_and_daily_counts_are_recorded(tiny_data):
    """survey_every 10 over 40 days: the network table has days 0, 9, 19, 29, 39 for each
    layer; the daily table counts rewired ties and couples every day."""
    result = api.run(build_scenario(tiny_data, **REACTING))
    net = result.table("network").to_pandas()
    assert sorted(net.day.unique()) == [0, 9, 19, 29, 39]
    assert set(net.layer) == {"family", "friends", "work", "partner"}
    daily = result.daily.to_pandas()
    assert daily.ties_rewired.sum() > 0
    assert daily.couples_formed.sum() > 0 and daily.couples_broken.sum() > 0


def test_run_with_changing_ties_resumes_bit_identically(tiny_data):
    """Stopping after day 17 and resuming from the checkpointed state (ties and partners
    included) gives the same fingerprint as running straight through."""
    sim = engine.build(build_scenario(tiny_data, **REACTING))
    straight = engine.run(sim).fingerprint()
    half = engine.run(sim, until=17)
    resumed = engine.run(sim, engine.State.restore(half.snapshot(), sim))
    assert resumed.fingerprint() == straight


def test_changing_ties_give_the_same_bits_on_one_and_two_threads(tiny_data):
    """Rewiring and the partner market never depend on the number of threads."""
    sim = engine.build(build_scenario(tiny_data, **REACTING))
    assert engine.run(sim, threads=1).fingerprint() == engine.run(sim, threads=2).fingerprint()


def test_checkpoints_keep_only_the_tie_layers_that_changed(tiny_data):
    """Layers as generated come back from the seed; a checkpoint stores only those that
    unfriending or the partner market replaced (friends and partner here)."""
    reacting = engine.run(engine.build(build_scenario(tiny_data, **REACTING)), until=3)
    assert {k for k in reacting.snapshot() if k.startswith("ties.")} == {
        "ties.friends.indptr", "ties.friends.indices", "ties.partner.indptr",
        "ties.partner.indices"}
    still = engine.run(engine.build(build_scenario(tiny_data)), until=3)
    assert not any(k.startswith("ties.") for k in still.snapshot())


def test_network_groups_report_each_groups_ties_on_survey_days(tiny_data):
    """Per survey day, layer and group: members' mean degree, share without ties and share of
    ties within their own tier, equal to the same counts done entry by entry in NumPy."""
    spec = build_scenario(tiny_data, **REACTING)
    groups = api.run(spec).table("network_groups").to_pandas()
    assert sorted(groups.day.unique()) == [0, 9, 19, 29, 39]
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    engine.step(sim, state)  # day 0, surveyed at its end
    friends = state.ties["friends"]
    rows = np.repeat(np.arange(friends.n), friends.degree)
    same = state.tier[friends.indices] == state.tier[rows]
    day0 = groups[(groups.day == 0) & (groups.layer == "friends")].set_index("social_group")
    for code, name in enumerate(sim.society.population.labels["group"]):
        members = sim.society.population.group == code
        mine = members[rows]
        assert day0.loc[name, "mean_degree"] == pytest.approx(mine.sum() / members.sum())
        assert day0.loc[name, "same_tier_share"] == pytest.approx(same[mine].mean())
        assert day0.loc[name, "isolated_share"] == (friends.degree[members] == 0).mean()
