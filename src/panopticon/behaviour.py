"""Behave and respond: what citizens really do each day, and how they adapt.

True events are a Poisson process per citizen and event type with rate ``rates[i, t]`` (events
per day). Drawing them type by type would cost one draw per citizen, type and day; instead each
citizen draws the total count ``K ~ Poisson(sum_t rates[i, t])`` from one uniform (almost always
0), and each of the K events picks its type in proportion to the rates. By the superposition
property of Poisson processes this is the same distribution, at ~1 hash per citizen-day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from panopticon import kernels
from panopticon.catalogue import EVENTS_BY_NAME
from panopticon.errors import UserError
from panopticon.rng import Stage, stream_key, uniforms
from panopticon.scenario import DeterrenceSpec, ScenarioSpec
from panopticon.society import Population
from panopticon.society.sampling import draw

MAX_EVENTS_PER_DAY = kernels.behaviour.MAX_EVENTS_PER_DAY
"""Cap on one citizen's true events in a day. With total rates of at most :data:`MAX_RATE` the
chance of reaching it is below 1e-13 per citizen-day."""
OUTCOME_SEQ = 200
"""Draw counter of events added to the day (loan outcomes); behaviour's own are below 60."""
MAX_RATE = 20.0
"""Largest total rate of true events per citizen-day a scenario may produce."""
CHUNK = kernels.behaviour.CHUNK
"""Citizens per chunk of the event draw; chunks run in parallel, each writing its own events."""


@dataclass(frozen=True)
class TrueEvents:
    """What really happened on one day, in citizen order.

    Attributes:
        citizen: who did it, int32 of shape (m,).
        event: event-type index into the run's active events, int16 of shape (m,).
        seq: the event's number among that citizen's events of the day, int32 (a draw counter).
    """

    citizen: np.ndarray
    event: np.ndarray
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.citizen)


def initial_rates(spec: ScenarioSpec, events: list[str], pop: Population, seed: int) -> np.ndarray:
    """Each citizen's daily rate of each active event type from their traits.

    Returns:
        float64 array of shape (n, T): expected events per day.
    """
    n = pop.n
    rates = np.zeros((n, len(events)), dtype=np.float64)
    for t, name in enumerate(events):
        beh = spec.behaviour.events.get(name)
        if beh is None:
            continue  # observable (or scored) but nobody really does it here
        rates[:, t] = rate_from_traits(beh, EVENTS_BY_NAME[name].rate_per_day, pop,
                                       stream_key(seed, Stage.RATES, 0, t))
        if n and rates[:, t].max() > MAX_RATE:
            raise UserError(f"behaviour.events.{name}: some citizens' rate is "
                            f"{rates[:, t].max():.3g} events a day; at most {MAX_RATE:g} is "
                            "supported (rates are per citizen-day)")
    if n and rates.sum(axis=1).max() > MAX_RATE:
        raise UserError(f"behaviour.events: some citizens' rates add up to "
                        f"{rates.sum(axis=1).max():.3g} events a day; at most {MAX_RATE:g} "
                        "is supported (rates are per citizen-day)")
    return rates


def rate_from_traits(spec, default: float, pop: Population, key: np.uint64) -> np.ndarray:
    """Each citizen's rate (float64 (n,), per day) of one kind of behaviour or attempt.

    ``spec`` has ``rate`` (None: ``default``; a number; or a distribution drawn per citizen
    with ``key``), ``multipliers`` by category, ``bands`` of age or income, and ``min_age``.
    """
    n = pop.n
    if spec.rate is None:
        rate = np.full(n, float(default))
    elif isinstance(spec.rate, int | float):
        rate = np.full(n, float(spec.rate))
    else:
        rate = draw(spec.rate, uniforms(key, n))
    for attr, table in spec.multipliers.items():
        labels = pop.labels[attr]
        factor = np.ones(len(labels))
        for cat, x in table.items():
            factor[labels.index(cat)] = x
        rate = rate * factor[getattr(pop, attr)]
    for attr, bands in spec.bands.items():
        values = pop.age if attr == "age" else pop.income
        idx = np.searchsorted(np.asarray(bands.edges), values, side="right")
        rate = rate * np.asarray(bands.factors)[idx]
    rate[pop.age < spec.min_age] = 0.0
    return np.maximum(rate, 0.0)


def totals(rates: np.ndarray, total: np.ndarray, cdf: np.ndarray) -> None:
    """Refresh every citizen's total rate (n,) and Poisson CDF at 0, 1, 2 (3, n), in place,
    from ``rates`` (n, T) events per day."""
    kernels.behaviour.totals(rates, total, cdf)


def behave(seed: int, day: int, rates: np.ndarray, total: np.ndarray,
           cdf: np.ndarray) -> TrueEvents:
    """Draw one day's true events, in citizen order.

    Each citizen's count comes from one uniform (counter ``i << 8``); their k-th event's type
    from another (counter ``(i << 8) + k + 1``), so the events do not depend on the chunking
    or on the number of threads.

    Args:
        seed: run seed. day: simulated day.
        rates: (n, T) events per day. total: (n,) row sums. cdf: (3, n) Poisson CDF of each
            citizen's daily count at 0, 1 and 2 (see :func:`totals`).
    """
    return TrueEvents(*kernels.behaviour.draw_events(stream_key(seed, Stage.BEHAVE, day),
                                                  rates, total, cdf))


def add_events(true: TrueEvents, citizen: np.ndarray, event: np.ndarray) -> TrueEvents:
    """The day's events with more true events (e.g. loan outcomes) merged in, in citizen
    order. Their draw counter is ``OUTCOME_SEQ + event`` so sensors draw for them afresh."""
    if not len(citizen):
        return true
    all_citizens = np.concatenate([true.citizen, citizen.astype(np.int32)])
    order = np.argsort(all_citizens, kind="stable")
    seq = (OUTCOME_SEQ + event).astype(np.int32)
    return TrueEvents(all_citizens[order], np.concatenate([true.event, event])[order],
                      np.concatenate([true.seq, seq])[order])


@dataclass(frozen=True)
class Deterrence:
    """Compiled :class:`DeterrenceSpec`: tier mask (n_tiers,), event mask (T,), daily factor."""

    tier_mask: np.ndarray
    event_mask: np.ndarray
    factor: float

    @classmethod
    def compile(cls, spec: DeterrenceSpec, tiers: list[str], events: list[str]) -> Deterrence:
        """Resolve names to masks."""
        tier_mask = np.isin(np.asarray(tiers), spec.tiers)
        event_mask = np.isin(np.asarray(events), spec.events)
        return cls(tier_mask, event_mask, spec.factor)


def respond(rules: list[Deterrence], tier: np.ndarray, rates: np.ndarray, total: np.ndarray,
            cdf: np.ndarray) -> None:
    """Deterrence: citizens in a sanctioned tier scale their rates of the named events (in place)."""
    for rule in rules:
        kernels.behaviour.deter(rates, total, cdf, tier, rule.tier_mask, rule.event_mask,
                                rule.factor)


@dataclass(frozen=True)
class Responses:
    """The scenario's ``behaviour.responses``, compiled (R responses, T events).

    Attributes:
        paths: condition path of each response's ``when`` (evaluated by the policy runtime).
        scale: indices of the factor responses; factor, limit: (R,) float64 (limit 0: none).
        apply: (R, T) bool, the events each response changes.
        setting: indices of the rate responses; rate: (R,) float64 events a day.
        base_column: (T,) int64 column of each event in the base rates (-1: not kept).
    """

    paths: tuple[str, ...]
    scale: tuple[int, ...]
    setting: tuple[int, ...]
    factor: np.ndarray
    limit: np.ndarray
    rate: np.ndarray
    apply: np.ndarray
    base_column: np.ndarray

    @classmethod
    def compile(cls, specs: list, events: list[str]) -> Responses:
        """Resolve event names; keep base rates only for events a limit or a rate needs."""
        r_count, t_count = len(specs), len(events)
        apply = np.zeros((r_count, t_count), dtype=np.bool_)
        for r, spec in enumerate(specs):
            apply[r, [events.index(e) for e in spec.events]] = True
        needs_base = np.zeros(t_count, dtype=bool)
        for r, spec in enumerate(specs):
            if spec.rate is not None or spec.limit is not None:
                needs_base |= apply[r]
        base_column = np.full(t_count, -1, dtype=np.int64)
        base_column[needs_base] = np.arange(int(needs_base.sum()))
        return cls(tuple(f"behaviour.responses[{r}].when" for r in range(r_count)),
                   tuple(r for r, s in enumerate(specs) if s.factor is not None),
                   tuple(r for r, s in enumerate(specs) if s.rate is not None),
                   np.asarray([s.factor or 1.0 for s in specs], dtype=np.float64),
                   np.asarray([s.limit or 0.0 for s in specs], dtype=np.float64),
                   np.asarray([s.rate or 0.0 for s in specs], dtype=np.float64),
                   apply, base_column)

    @property
    def keeps_base(self) -> bool:
        """Whether any response needs the starting rates."""
        return bool((self.base_column >= 0).any())

    def base(self, rates: np.ndarray) -> np.ndarray:
        """The starting rates a limit or a rate response needs, (n, C) float64."""
        return np.ascontiguousarray(rates[:, self.base_column >= 0])


def adapt(responses: Responses, masks: list[np.ndarray], rates: np.ndarray, total: np.ndarray,
          cdf: np.ndarray, base: np.ndarray) -> None:
    """Apply the responses in order (in place). ``masks``: whom each response's ``when``
    holds for today, bool (n,) per response."""
    for r in responses.scale:
        kernels.behaviour.scale_rates(rates, total, cdf, masks[r],
                                      np.flatnonzero(responses.apply[r]), responses.factor[r],
                                      responses.limit[r], base, responses.base_column)
    if responses.setting:
        idx = list(responses.setting)
        kernels.behaviour.set_rates(rates, total, cdf, np.stack([masks[r] for r in idx]),
                                    responses.apply[idx], responses.rate[idx], base,
                                    responses.base_column)
