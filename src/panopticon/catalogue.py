"""The catalogue of behaviour a social credit system scores, and the data sources that see it.

Each event type is one kind of true behaviour (``true_*`` in the data flow) with the domain it
belongs to, the data source that usually records it, and a default daily rate per adult. The
rates are modelling assumptions [A] chosen to give plausible yearly frequencies; scenarios
override them. Valence says whether the documented systems treat the act as bad (-1), good (+1)
or whether it is legitimate but penalised in some systems (0: speech, some purchases).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from panopticon.spec.types import Strict


@dataclass(frozen=True)
class EventType:
    """One kind of true behaviour.

    Attributes:
        name: identifier used in scenarios and policies.
        domain: finance, traffic, purchases, speech or prosocial.
        source: default data source that records it.
        rate_per_day: default expected events per citizen-day [A].
        valence: -1 penalised misconduct, +1 rewarded, 0 legitimate act some systems penalise.
        description: plain words for reports.
    """

    name: str
    domain: str
    source: str
    rate_per_day: float
    valence: int
    description: str


SOURCES: dict[str, str] = {
    "cameras": "public cameras with face matching (traffic, street conduct)",
    "payments": "bank, card and retail payment records",
    "courts": "court judgments and enforcement records",
    "online": "monitoring of posts and messages on online platforms",
    "police": "police reports and administrative penalty records",
    "civic": "civil-affairs and volunteering registries (honours, donations)",
    # docs/sources.md#location-tracking and #gait-recognition
    "location": "phone location and transit-card records: presence at places, travel "
                "between regions",
    "gait": "gait and body recognition on camera footage: a second camera channel that "
            "needs no face",
}

EVENT_TYPES: tuple[EventType, ...] = (
    # finance
    EventType("late_loan_payment", "finance", "payments", 1 / 400, -1,
              "a loan or credit-card instalment paid late"),
    EventType("loan_default", "finance", "payments", 1 / 8000, -1, "a loan written off as unpaid"),
    EventType("loan_repaid", "finance", "payments", 0.0, 1,
              "a loan repaid in full (an outcome of a granted loan, see opportunities)"),
    EventType("utility_arrears", "finance", "payments", 1 / 600, -1,
              "water, power, gas or heating bill left unpaid"),
    EventType("court_judgment_default", "finance", "courts", 1 / 20000, -1,
              "failing to perform a court judgment despite the means to pay"),
    # traffic
    EventType("red_light", "traffic", "cameras", 1 / 250, -1, "running a red light"),
    EventType("jaywalking", "traffic", "cameras", 1 / 60, -1, "crossing against the signal"),
    EventType("drunk_driving", "traffic", "police", 1 / 15000, -1, "driving under the influence"),
    # purchases
    EventType("alcohol_purchase", "purchases", "payments", 1 / 14, 0, "buying alcohol"),
    EventType("cigarette_purchase", "purchases", "payments", 1 / 5, 0, "buying cigarettes"),
    EventType("antidepressant_purchase", "purchases", "payments", 1 / 300, 0,
              "buying antidepressants"),
    EventType("baby_products_purchase", "purchases", "payments", 1 / 40, 1,
              "buying nappies or baby products"),
    EventType("cleaning_products_purchase", "purchases", "payments", 1 / 20, 1,
              "buying cleaning products"),
    EventType("video_game_hours", "purchases", "payments", 1 / 8, 0,
              "a day with several hours of paid video games"),
    # online speech
    EventType("critical_post", "speech", "online", 1 / 200, 0,
              "a post criticising officials or policy"),
    EventType("spreading_rumours", "speech", "online", 1 / 2000, 0,
              "a post the authorities label a rumour"),
    EventType("petition", "speech", "civic", 1 / 3000, 0,
              "a petition or complaint to higher authorities (letters and visits)"),
    EventType("public_outburst", "speech", "cameras", 1 / 1000, 0,
              "losing one's temper in public, filmed or seen by bystanders"),
    # pro-social
    EventType("volunteering", "prosocial", "civic", 1 / 90, 1, "a day of registered volunteering"),
    EventType("blood_donation", "prosocial", "civic", 1 / 700, 1, "a blood donation"),
    EventType("heroic_act", "prosocial", "police", 1 / 200000, 1,
              "an act recognised as heroic or righteous"),
    # performance (what takes a debtor off the court list)
    EventType("debt_repaid", "finance", "courts", 0.0, 1,
              "a judgment debt paid or settled (performance)"),
    # added later: always after the entries above, so that existing runs keep their order
    # (a run's event types are its active ones in this order; docs/sources.md)
    EventType("healthy_food_purchase", "purchases", "payments", 1 / 7, 1,
              "buying fruit, vegetables or other food a scheme counts as healthy"),
    EventType("petition_office_visit", "speech", "location", 1 / 5000, 0,
              "being present at a petition (letters-and-visits) office"),
    EventType("protest_attendance", "speech", "location", 1 / 5000, 0,
              "being present at a protest or unauthorised gathering"),
    EventType("interregional_travel", "mobility", "location", 1 / 30, 0,
              "a trip to another region (phone and transit-card records)"),
)

EVENTS_BY_NAME: dict[str, EventType] = {e.name: e for e in EVENT_TYPES}
EVENT_NAMES: tuple[str, ...] = tuple(EVENTS_BY_NAME)


SANCTIONS: dict[str, str] = {
    # SPC consumption restrictions, Art. 3, and the 2016 joint-punishment Opinions
    # (docs/sources.md#court-blacklist-sanctions)
    "flights": "buying air tickets",
    "soft_sleeper_trains": "soft-sleeper berths and better ship berths",
    "high_speed_rail": "G-series high-speed train seats, first class on other EMU trains",
    "star_hotels": "star-rated hotels, nightclubs, golf courses",
    "property_purchase": "buying property or renovating luxuriously",
    "non_essential_vehicles": "buying non-essential vehicles",
    "holidays": "travel and holidays",
    "private_schools": "children at high-fee private schools",
    "high_premium_insurance": "high-premium insurance and wealth products",
    "outbound_group_tours": "outbound group tours through travel agencies",
    "exit_ban": "leaving the country",
    "executive_posts": "serving as a company executive or legal representative",
    "loans": "bank loans",
    "civil_service_jobs": "civil-service and state-enterprise posts",
    "public_naming": "name published on the list",
    # local point schemes (docs/sources.md#city-scores)
    "village_candidacy": "standing in village-committee elections",
    "business_licence": "obtaining a business licence",
    "community_assistance": "community assistance",
    "honours_and_subsidies": "honours, subsidies and some permits",
    "strict_supervision": "stricter supervision and inspections",
}
"""Joint sanctions a policy may deny (documented names; docs/sources.md#court-blacklist-sanctions)."""

PERKS: dict[str, str] = {
    "green_channel": "green channels: faster, simplified procedures",
    "deposit_free_rental": "renting (bikes, flats, power banks) without a deposit",
    "deposit_free_bikes": "public bikes without a deposit",
    "heating_discount": "discounts on heating and utilities",
    "better_loan_terms": "better loan terms",
    "visa_fast_track": "visa applications without bank statements",
    "free_parking_extension": "longer free roadside parking",
    "parking_discount": "discounted parking",
    "transit_discount": "discounted buses and metro",
    "hospital_deposit_waiver": "no hospital deposit",
    "priority_promotion": "priority in recruitment and promotion",
    "priority_school_entry": "priority in school entry",
    "housing_discount": "discounted housing",
    "priority_rebooking": "priority rebooking of flights",
}
"""Perks a policy may grant to the 'trustworthy' (documented names; docs/sources.md#city-scores)."""


@dataclass(frozen=True)
class OpportunityType:
    """One thing citizens try, which a policy's sanctions can block or its perks open.

    Attributes:
        name: identifier used in scenarios.
        blocked_by: sanctions (:data:`SANCTIONS`) that refuse it; refused if any is denied.
        needs: perks (:data:`PERKS`) it requires; refused unless every one is granted.
        rate_per_day: default chance that an eligible citizen tries it on a given day [A].
        who: which citizens try it (a condition on fixed attributes), or None for every adult.
        description: plain words for reports.
    """

    name: str
    blocked_by: tuple[str, ...]
    needs: tuple[str, ...]
    rate_per_day: float
    who: str | None
    description: str


OPPORTUNITY_TYPES: tuple[OpportunityType, ...] = (
    # the joint-punishment gates (docs/sources.md#court-blacklist-sanctions); rates are assumptions [A]
    OpportunityType("loan", ("loans",), (), 1 / 730, None, "applying for a bank loan"),
    OpportunityType("flight", ("flights",), (), 1 / 180, None, "buying an air ticket"),
    OpportunityType("high_speed_train", ("high_speed_rail",), (), 1 / 60, None,
                    "buying a high-speed (G-series) train seat"),
    OpportunityType("star_hotel", ("star_hotels",), (), 1 / 365, None,
                    "booking a night in a star-rated hotel"),
    OpportunityType("travel_abroad", ("exit_ban", "outbound_group_tours"), (), 1 / 1000, None,
                    "leaving the country for travel"),
    OpportunityType("flat_purchase", ("property_purchase",), (), 1 / 7300, None,
                    "buying a flat"),
    OpportunityType("civil_service_post", ("civil_service_jobs",), (), 1 / 3650, "age < 45",
                    "applying for a civil-service or state-enterprise post"),
    OpportunityType("executive_post", ("executive_posts",), (), 1 / 7300, None,
                    "becoming a company executive or legal representative"),
    OpportunityType("school_place", ("private_schools",), (), 1 / 365, "children > 0",
                    "enrolling a child in a (private) school: the child's place follows the "
                    "parent's standing"),
    # perks (docs/sources.md#city-scores)
    OpportunityType("deposit_free_rental", (), ("deposit_free_rental",), 1 / 90, None,
                    "renting a flat, bike or power bank without a deposit"),
)

OPPORTUNITIES_BY_NAME: dict[str, OpportunityType] = {o.name: o for o in OPPORTUNITY_TYPES}


# ---------------------------------------------------------------- a scenario's own entries
NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
"""What a scenario's own entry may be called: lower-case letters, digits and underscores."""

VALENCES: dict[str, int] = {"misconduct": -1, "legitimate": 0, "rewarded": 1}
"""Valence words a scenario may write instead of -1, 0, 1."""

MAX_DEFAULT_RATE = 20.0
"""The largest default rate an entry may have (events or tries per citizen-day): what a run
supports (``behaviour.MAX_RATE``, ``sanctions.MAX_TRIES``)."""

_Rate = Annotated[float, Field(ge=0, le=MAX_DEFAULT_RATE)]
_Text = Annotated[str, Field(max_length=500)]


class EventEntry(Strict):
    """A scenario's own event type: the fields of :class:`EventType` (its name is the key)."""

    domain: Annotated[str, Field(pattern=NAME.pattern)]
    source: str
    rate_per_day: _Rate = 0.0
    valence: Literal[-1, 0, 1, "misconduct", "legitimate", "rewarded"]
    description: _Text = ""

    def entry(self, name: str) -> EventType:
        valence = VALENCES[self.valence] if isinstance(self.valence, str) else self.valence
        return EventType(name, self.domain, self.source, float(self.rate_per_day), valence,
                         self.description)


class NamedEntry(Strict):
    """A scenario's own data source, sanction or perk: a name (the key) and plain words."""

    description: _Text = ""


class OpportunityEntry(Strict):
    """A scenario's own opportunity: the fields of :class:`OpportunityType` (its name is the
    key); at least one of ``blocked_by`` and ``needs``."""

    blocked_by: list[str] = []
    needs: list[str] = []
    rate_per_day: _Rate = 0.0
    who: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    description: _Text = ""

    @model_validator(mode="after")
    def _gated(self):
        if not self.blocked_by and not self.needs:
            raise ValueError("an opportunity needs blocked_by (sanctions that refuse it) or "
                             "needs (perks it requires)")
        return self

    def entry(self, name: str) -> OpportunityType:
        return OpportunityType(name, tuple(self.blocked_by), tuple(self.needs),
                               float(self.rate_per_day), self.who, self.description)


class CatalogueSpec(Strict):
    """The scenario section ``catalogue``: entries of its own, added after the packaged ones
    (which cannot be redefined). Empty by default: the packaged catalogue alone."""

    events: dict[str, EventEntry] = {}
    sources: dict[str, NamedEntry] = {}
    sanctions: dict[str, NamedEntry] = {}
    perks: dict[str, NamedEntry] = {}
    opportunities: dict[str, OpportunityEntry] = {}


KINDS = ("events", "sources", "sanctions", "perks", "opportunities")
_WHAT = {"events": "event type", "sources": "data source", "sanctions": "sanction",
         "perks": "perk", "opportunities": "opportunity"}


@dataclass(frozen=True)
class Catalogue:
    """A resolved catalogue: the packaged entries, then a scenario's own, by name (read-only
    mappings, in that order). ``own[kind]`` names the scenario's own entries of each kind
    (``events``, ``sources``, ``sanctions``, ``perks``, ``opportunities``).

    Never a module global that scenarios change: each scenario resolves its own
    (:func:`catalogue_of`), so one scenario's entries never reach another's."""

    events: Mapping[str, EventType]
    sources: Mapping[str, str]
    sanctions: Mapping[str, str]
    perks: Mapping[str, str]
    opportunities: Mapping[str, OpportunityType]
    own: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: MappingProxyType({k: frozenset() for k in KINDS}))

    def extended(self, spec: CatalogueSpec) -> Catalogue:
        """This catalogue plus ``spec``'s entries (after this one's). A name this catalogue
        already has keeps its entry here (:mod:`panopticon.spec.checks` reports the clash)."""
        added: dict[str, dict[str, Any]] = {
            "events": {n: e.entry(n) for n, e in spec.events.items()},
            "sources": {n: e.description for n, e in spec.sources.items()},
            "sanctions": {n: e.description for n, e in spec.sanctions.items()},
            "perks": {n: e.description for n, e in spec.perks.items()},
            "opportunities": {n: e.entry(n) for n, e in spec.opportunities.items()}}
        tables, own = {}, {}
        for kind in KINDS:
            mine = getattr(self, kind)
            new = {n: v for n, v in added[kind].items() if n not in mine}
            tables[kind] = MappingProxyType({**mine, **new})
            own[kind] = self.own[kind] | frozenset(new)
        return Catalogue(**tables, own=MappingProxyType(own))


PACKAGED = Catalogue(MappingProxyType(EVENTS_BY_NAME), MappingProxyType(SOURCES),
                     MappingProxyType(SANCTIONS), MappingProxyType(PERKS),
                     MappingProxyType(OPPORTUNITIES_BY_NAME))
"""The packaged catalogue: the default library every scenario starts from."""


@functools.lru_cache(maxsize=64)
def _extended(canonical: str) -> Catalogue:
    return PACKAGED.extended(CatalogueSpec.model_validate_json(canonical))


def catalogue_of(spec: Any) -> Catalogue:
    """The catalogue a scenario (or its ``catalogue`` section) sees: the packaged one plus
    its own entries; the packaged one for None or a scenario without entries of its own."""
    section = spec if isinstance(spec, CatalogueSpec) else getattr(spec, "catalogue", None)
    if not isinstance(section, CatalogueSpec) or section == CatalogueSpec():
        return PACKAGED
    return _extended(section.model_dump_json())
