"""The seed_article preset does what docs/presets/seed_article.md says: its lowest tier carries
the court list's joint punishments, a court finding of default puts a citizen there for two
years, and those citizens are refused flights, trains, school places and exits.

The first test plants observations and feeds them through the real policy code path
(``engine.apply_policy``); the others run the preset.
"""

from __future__ import annotations

import pytest
from conftest import adults, policy_day, start_preset, tier_name

from panopticon import api
from panopticon.scenario import load_preset, scenario_from_data

D_BANS = ("flights", "high_speed_rail", "star_hotels", "loans", "private_schools",
          "civil_service_jobs", "exit_ban")
# A year of court findings at twenty times the preset's rate (6.5e-6 a day): refusals per
# citizen in tier D do not depend on how many are there, so the run below measures them in
# seconds; everything else is the preset's.
BOOSTED_FINDINGS = 0.00013


def test_a_court_finding_puts_a_citizen_in_tier_d_for_730_days_with_the_court_lists_bans():
    """Rule: court_judgment_default -50 points and `override: {max_tier: D, days: 730}`.
    At 950 points the citizen's grade would be B, but the override holds them in D, denied the
    seven D sanctions, from the day of the finding (day 0) to day 729; on day 730 the grade
    follows the points again and the bans are lifted."""
    sim, state = start_preset("seed_article", citizens=300, days=800)
    i = adults(sim, 1)[0]
    first = policy_day(sim, state, [(i, "court_judgment_default")])
    assert state.scores[i] == 950_000 and tier_name(sim, state, i) == "D"
    assert all(first.denied[b][i] for b in D_BANS)
    for _ in range(728):  # days 1-728
        policy_day(sim, state)
    last = policy_day(sim, state)  # day 729
    assert tier_name(sim, state, i) == "D" and last.denied["flights"][i]
    after = policy_day(sim, state)  # day 730
    assert tier_name(sim, state, i) != "D"
    assert not any(after.denied[b][i] for b in D_BANS)


def _run(citizens: int, findings: float | None = None):
    spec = load_preset("seed_article").with_run(citizens=citizens, days=365, seed=2026)
    if findings is not None:
        data = spec.model_dump(mode="json")
        data["behaviour"]["events"]["court_judgment_default"]["rate"] = findings
        spec = scenario_from_data(data, {}, "<test>")
    return api.run(spec)


@pytest.fixture(scope="module")
def boosted():
    """50,000 citizens x 365 days with twenty times the rate of court findings (~900 person-
    years in D, about 50 spells of refused air tickets)."""
    return _run(50_000, BOOSTED_FINDINGS)


def test_lowest_tier_citizens_are_refused_flights_trains_school_places_and_exits(boosted):
    """Rule: `sanctions: when tier == "D"` deny flights, high_speed_rail, star_hotels,
    private_schools and exit_ban, which gate the opportunities flight, high_speed_train,
    star_hotel, school_place and travel_abroad. Each is refused to someone, and only to
    citizens with a court finding in the 730 days before (the only way into D in a year:
    see docs/presets/seed_article.md)."""
    refusals = boosted.table("refusals").to_pandas()
    obs = boosted.table("observations").to_pandas()
    found = obs[obs.event == "court_judgment_default"].groupby("citizen").day.min()
    gated = refusals[refusals.opportunity.isin(
        ["flight", "high_speed_train", "star_hotel", "school_place", "travel_abroad"])]
    assert set(gated.opportunity) == {"flight", "high_speed_train", "star_hotel",
                                      "school_place", "travel_abroad"}
    first_finding = found.reindex(gated.citizen).to_numpy()
    assert (first_finding <= gated.day.to_numpy()).all()  # NaN (never found) fails too


def test_blocked_tickets_per_tier_d_person_year_are_in_the_court_lists_band(boosted):
    """Calibration [D] (docs/sources.md#derived-court-blocked-per-listed), as in
    court_blacklist: tier D, which carries the list's bans, is refused 0.45-0.72 air tickets
    and 0.16-0.20 high-speed rail tickets per person a year; bands widened for sampling noise
    (air refusals come in spells of ~9; seeds 1-3 and 2026 give 0.43-0.63 and 0.15-0.20)
    to 0.3-1.0 and 0.1-0.3."""
    daily = boosted.daily.to_pandas()
    person_years = (daily["share_D"] * 50_000).sum() / 365
    refusals = boosted.table("refusals").to_pandas()
    assert 0.3 < (refusals.opportunity == "flight").sum() / person_years < 1.0
    assert 0.1 < (refusals.opportunity == "high_speed_train").sum() / person_years < 0.3


def test_a_default_year_puts_about_as_many_adults_in_d_as_a_year_of_court_listings():
    """Calibration [D] (docs/sources.md#derived-court-listing-rate): the court list takes in
    0.24-0.30% of adults a year; at the preset's own rates (50,000 citizens x 365 days) the
    share of adults in D at the end of the year is 0.15-0.40%, and nobody reaches D by points
    alone (every D citizen has a court finding)."""
    result = _run(50_000)
    citizens = result.citizens.to_pandas()
    grown = citizens[citizens.age >= 18]
    in_d = grown[grown.tier == "D"]
    assert 0.0015 < len(in_d) / len(grown) < 0.004
    obs = result.table("observations").to_pandas()
    found = set(obs.loc[obs.event == "court_judgment_default", "citizen"])
    assert set(in_d.citizen) <= found
