"""Behave and respond: what citizens really do each day, and how they adapt.

True events are a Poisson process per citizen and event type with rate ``rates[i, t]`` (events
per day). Drawing them type by type would cost one draw per citizen, type and day; instead each
citizen draws the total count ``K ~ Poisson(sum_t rates[i, t])`` from one uniform (almost always
0), and each of the K events picks its type in proportion to the rates. By the superposition
property of Poisson processes this is the same distribution, at ~1 hash per citizen-day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from panopticon.catalogue import EVENTS_BY_NAME
from panopticon.errors import UserError
from panopticon.kernels import offsets
from panopticon.rng import Stage, stream_key, uniform, uniforms
from panopticon.scenario import DeterrenceSpec, ScenarioSpec
from panopticon.society import Population
from panopticon.society.sampling import draw

MAX_EVENTS_PER_DAY = 60
"""Cap on one citizen's true events in a day. With total rates of at most :data:`MAX_RATE` the
chance of reaching it is below 1e-13 per citizen-day."""
MAX_RATE = 20.0
"""Largest total rate of true events per citizen-day a scenario may produce."""


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
    columns = {"sex": pop.sex, "region": pop.region, "group": pop.group,
               "residency": pop.residency, "occupation": pop.occupation}
    for t, name in enumerate(events):
        beh = spec.behaviour.events.get(name)
        if beh is None:
            continue  # observable (or scored) but nobody really does it here
        if beh.rate is None:
            rate = np.full(n, EVENTS_BY_NAME[name].rate_per_day)
        elif isinstance(beh.rate, int | float):
            rate = np.full(n, float(beh.rate))
        else:
            rate = draw(beh.rate, uniforms(stream_key(seed, Stage.RATES, 0, t), n))
        for attr, table in beh.multipliers.items():
            labels = pop.labels[attr]
            factor = np.ones(len(labels))
            for cat, x in table.items():
                factor[labels.index(cat)] = x
            rate = rate * factor[columns[attr]]
        for attr, bands in beh.bands.items():
            values = pop.age if attr == "age" else pop.income
            idx = np.searchsorted(np.asarray(bands.edges), values, side="right")
            rate = rate * np.asarray(bands.factors)[idx]
        rate[pop.age < beh.min_age] = 0.0
        rates[:, t] = np.maximum(rate, 0.0)
        if n and rates[:, t].max() > MAX_RATE:
            raise UserError(f"behaviour.events.{name}: some citizens' rate is "
                            f"{rates[:, t].max():.3g} events a day; at most {MAX_RATE:g} is "
                            "supported (rates are per citizen-day)")
    if n and rates.sum(axis=1).max() > MAX_RATE:
        raise UserError(f"behaviour.events: some citizens' rates add up to "
                        f"{rates.sum(axis=1).max():.3g} events a day; at most {MAX_RATE:g} "
                        "is supported (rates are per citizen-day)")
    return rates


@nb.njit(inline="always")
def _refresh(rates, i, total, cdf):
    """Citizen i's total rate and the Poisson CDF of their daily count at 0, 1 and 2, with the
    exact float steps of :func:`poisson_count` so that both give the same draw."""
    s = 0.0
    for t in range(rates.shape[1]):
        s += rates[i, t]
    total[i] = s
    p = np.exp(-s)
    cdf[0, i] = p
    p *= s / 1
    cdf[1, i] = cdf[0, i] + p
    p *= s / 2
    cdf[2, i] = cdf[1, i] + p


@nb.njit(parallel=True, cache=True, nogil=True)
def totals(rates, total, cdf):
    """Refresh every citizen's total rate (n,) and Poisson CDF at 0, 1, 2 (3, n), in place."""
    for i in nb.prange(rates.shape[0]):
        _refresh(rates, i, total, cdf)


@nb.njit(inline="always")
def poisson_count(u, p0, lam, cap):
    """Inverse-CDF Poisson draw given P(0) = p0 = exp(-lam); capped at ``cap``."""
    k = 0
    p = p0
    cdf = p0
    while u >= cdf and k < cap:
        k += 1
        p *= lam / k
        cdf += p
    return k


CHUNK = 1 << 12
"""Citizens per chunk of the event draw; chunks run in parallel and write their own slabs."""


@nb.njit(parallel=True, cache=True, nogil=True)
def _draw(key, rates, total, cdf, slab_first, citizen, event, seq, used):
    n, t_count = rates.shape
    for c in nb.prange(slab_first.shape[0] - 1):
        first, last = c * CHUNK, min(n, (c + 1) * CHUNK)
        # pass 1, branch-free: each citizen's count (capped at 3) and the list of active ones
        counts = np.empty(last - first, dtype=np.int64)
        for i in range(first, last):  # elementwise, so the compiler can vectorise it
            u = uniform(key, np.uint64(i) << np.uint64(8))
            counts[i - first] = (u >= cdf[0, i]) + (u >= cdf[1, i]) + (u >= cdf[2, i])
        active = np.empty(last - first, dtype=np.int64)
        n_active = 0
        for i in range(first, last):
            active[n_active] = i
            n_active += counts[i - first] > 0
        # pass 2: one slot per event of the active citizens (who and which of their events)
        m = slab_first[c]
        end = slab_first[c + 1]
        for a in range(n_active):
            i = active[a]
            k_i = counts[i - first]
            if k_i == 3:  # past the tabulated CDF: the full inversion
                u = uniform(key, np.uint64(i) << np.uint64(8))
                k_i = poisson_count(u, cdf[0, i], total[i], MAX_EVENTS_PER_DAY)
            if m + k_i > end:
                m = -1  # the slab is full: the caller draws again with exact sizes
                break
            for k in range(k_i):
                citizen[m] = i
                seq[m] = k
                m += 1
        if m < 0:
            used[c] = -1
            continue
        # pass 3, elementwise: each event's type, in proportion to the citizen's rates
        for e in range(slab_first[c], m):
            i = citizen[e]
            x = uniform(key, (np.uint64(i) << np.uint64(8)) + np.uint64(seq[e] + 1)) * total[i]
            t = 0  # the number of cumulative rates at or below x (branch-free)
            acc = 0.0
            for j in range(t_count - 1):
                acc += rates[i, j]
                t += acc <= x
            while rates[i, t] == 0.0 and t > 0:  # rounding landed on a zero-rate type
                t -= 1
            event[e] = t
        used[c] = m - slab_first[c]


def behave(seed: int, day: int, rates: np.ndarray, total: np.ndarray,
           cdf: np.ndarray) -> TrueEvents:
    """Draw one day's true events, in citizen order.

    Citizens are drawn in chunks, each into a slab sized for its expected count plus a wide
    margin (8 standard deviations); in the rare case a slab overflows, the chunk's exact count
    sizes the slab and the draw repeats. Either way the events are the same.

    Args:
        seed: run seed. day: simulated day.
        rates: (n, T) events per day. total: (n,) row sums. cdf: (3, n) Poisson CDF of each
            citizen's daily count at 0, 1 and 2 (see :func:`totals`).
    """
    key = stream_key(seed, Stage.BEHAVE, day)
    n = rates.shape[0]
    expected = np.add.reduceat(total, np.arange(0, n, CHUNK)) if n else np.zeros(0)
    size = (expected + 8 * np.sqrt(expected) + 64).astype(np.int64)
    while True:
        slab_first = offsets(size)
        cap = int(slab_first[-1])
        citizen = np.empty(cap, dtype=np.int32)
        event = np.empty(cap, dtype=np.int16)
        seq = np.empty(cap, dtype=np.int32)
        used = np.empty(len(size), dtype=np.int64)
        _draw(key, rates, total, cdf, slab_first, citizen, event, seq, used)
        if (used >= 0).all():
            break
        size = np.where(used >= 0, size, size * 4)
    m = _close_gaps(slab_first, used, citizen, event, seq)
    return TrueEvents(citizen[:m], event[:m], seq[:m])


@nb.njit(cache=True, nogil=True)
def _close_gaps(slab_first, used, citizen, event, seq):
    """Move the filled part of every slab down behind the previous one; returns the total."""
    m = 0
    for c in range(used.shape[0]):
        for j in range(slab_first[c], slab_first[c] + used[c]):
            citizen[m] = citizen[j]
            event[m] = event[j]
            seq[m] = seq[j]
            m += 1
    return m


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


@nb.njit(parallel=True, cache=True, nogil=True)
def _deter(rates, total, cdf, tier, tier_mask, event_mask, factor):
    n, t_count = rates.shape
    for i in nb.prange(n):
        if not tier_mask[tier[i]]:
            continue
        for t in range(t_count):
            if event_mask[t]:
                rates[i, t] *= factor
        _refresh(rates, i, total, cdf)


def respond(rules: list[Deterrence], tier: np.ndarray, rates: np.ndarray, total: np.ndarray,
            cdf: np.ndarray) -> None:
    """Deterrence: citizens in a sanctioned tier scale their rates of the named events (in place)."""
    for rule in rules:
        _deter(rates, total, cdf, tier, rule.tier_mask, rule.event_mask, rule.factor)
