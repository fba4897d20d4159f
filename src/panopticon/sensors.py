"""Observe: data sources turn true events into observations, with misses and false ones.

Three kinds of error, each known to the lab and hidden from scoring:

* **misses**: a true event is seen with probability ``coverage[region] * detection``;
* **misattribution**: a seen event is pinned on the wrong citizen (face matching's false match),
  the victim drawn in proportion to the source's false-match multipliers (by group, sex, ...);
* **phantoms**: records of events nobody did (data entry, same-name and matching errors), at a
  rate per citizen-day scaled by the same multipliers and by coverage.

Multipliers depend only on a citizen's categories, so citizens are grouped into *profiles*
(one per combination of sex, region, group, residency, occupation). Per-profile tables keep the
daily kernels free of per-citizen float arrays: a profile code (uint16) per citizen is enough.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from panopticon import kernels
from panopticon.errors import UserError
from panopticon.rng import Stage, stream_key, uniforms
from panopticon.scenario import ScenarioSpec
from panopticon.society import Population
from panopticon.spec.scenario import MAX_PHANTOMS  # the limit the checks enforce, kept here by name

NOT_OBSERVED, OBSERVED, MISATTRIBUTED = (kernels.sensing.NOT_OBSERVED, kernels.sensing.OBSERVED,
                                         kernels.sensing.MISATTRIBUTED)
"""Status of a true event: missed, observed on its actor, pinned on someone else."""
NO_ACTOR = kernels.sensing.NO_ACTOR
"""True actor of a phantom observation."""
TALLY = ("true_events", "observed", "missed", "misattributed", "false_observations")
"""Rows of the daily tally, per event type: true events; records naming the actor; events no
source recorded; records of true events pinned on someone else; and false observations
(misattributions and phantoms) claiming it. With one source per event type (each event at most
one record) observed + missed + misattributed = true events; with several, observed and
misattributed count records (one event seen by two sources counts twice)."""
PHANTOMS_PER_BLOCK = 8.0
"""Expected phantoms per block and day; small enough for an exact inverse-CDF Poisson draw."""
ATTRS = ("sex", "region", "group", "residency", "occupation")
OTHER_SOURCE = 1
"""Sub-stream of :data:`Stage.OBSERVE` for source s when it is not an event's first source:
``OTHER_SOURCE + s`` (the first source draws from sub-stream 0, as with one source)."""
PATROL = 256
"""Sub-stream of :data:`Stage.OBSERVE` for source s's unit placements: ``PATROL + s``."""


@dataclass(frozen=True)
class Observations:
    """One day's observations, the input of scoring.

    Attributes:
        citizen: whom the record names, int32 (m,).
        event: event-type index, int16 (m,).
        source: data-source index, int8 (m,).
        is_true: whether the named citizen really did it, bool (m,) - hidden from scoring.
        true_actor: who really did it (-1 for a phantom), int32 (m,) - hidden from scoring.
    """

    citizen: np.ndarray
    event: np.ndarray
    source: np.ndarray
    is_true: np.ndarray
    true_actor: np.ndarray

    def __len__(self) -> int:
        return len(self.citizen)


@dataclass(frozen=True)
class SensorModel:
    """The scenario's sources compiled to small tables.

    Attributes:
        names: source names, index = source id.
        source_of_event: (T,) int8 the first source that sees each event type, -1 where none
            does.
        sources_of_event: (T, K) int8 every source that sees each event type, in scenario
            order, padded with -1 (K: the most sources of one type, at least 1).
        detect: (S, R) probability that a true event in region r is observed.
        misattribution: (S,) probability that an observed event names the wrong citizen.
        profile: (n,) uint16 profile code of each citizen.
        profile_members: (n,) int32 citizens sorted by profile; ``profile_starts`` (P+1,).
        victim_cdf: (S, P) cumulative share of false matches landing on each profile.
        phantom_lambda: (P,) expected phantoms per citizen-day for each profile.
        block_first, block_len, block_profile: (B,) blocks of same-profile citizens (runs of
            ``profile_members``) over which phantoms are drawn together (see :func:`observe`).
        phantom_cdf: (P, S) cumulative share of each source in a profile's phantoms.
        phantom_events: flat event ids of each source's phantom events; ``phantom_starts`` (S+1,).
        coverage: (S, R) share of each region within each source's reach (may be reallocated).
        detection: (S,) chance that a covered event is recorded.
        weight: (S, P) false-match multiplier of each profile; phantom_rate: (S,).
        profile_region: (P,) region code of each profile; region_size: (R,) citizens.
    """

    names: tuple[str, ...]
    source_of_event: np.ndarray
    sources_of_event: np.ndarray
    detect: np.ndarray
    misattribution: np.ndarray
    profile: np.ndarray
    profile_members: np.ndarray
    profile_starts: np.ndarray
    victim_cdf: np.ndarray
    phantom_lambda: np.ndarray
    block_first: np.ndarray
    block_len: np.ndarray
    block_profile: np.ndarray
    phantom_cdf: np.ndarray
    phantom_events: np.ndarray
    phantom_starts: np.ndarray
    coverage: np.ndarray
    detection: np.ndarray
    weight: np.ndarray
    phantom_rate: np.ndarray
    profile_region: np.ndarray
    region_size: np.ndarray


def profiles(pop: Population) -> tuple[np.ndarray, list[dict[str, int]]]:
    """Each citizen's profile code and the category codes of every profile that occurs."""
    sizes = [len(pop.labels[a]) for a in ATTRS]
    code = np.zeros(pop.n, dtype=np.int64)
    for a, size in zip(ATTRS, sizes, strict=True):
        code = code * size + getattr(pop, a).astype(np.int64)
    used, profile = np.unique(code, return_inverse=True)
    described = []
    for c in used:
        parts = {}
        for a, size in zip(reversed(ATTRS), reversed(sizes), strict=True):
            parts[a] = int(c % size)
            c //= size
        described.append(parts)
    return profile.astype(np.uint16 if len(used) < 65536 else np.uint32), described


def compile_sensors(spec: ScenarioSpec, events: list[str], pop: Population) -> SensorModel:
    """Build the sensor tables for a population."""
    names = tuple(spec.sensors)
    n_s, n_r = len(names), len(pop.labels["region"])
    seen_by: list[list[int]] = [[] for _ in events]
    coverage = np.zeros((max(n_s, 1), n_r))
    detection = np.zeros(max(n_s, 1))
    misattribution = np.zeros(max(n_s, 1))
    phantom_rate = np.zeros(max(n_s, 1))
    profile, described = profiles(pop)
    n_p = len(described)
    weight = np.ones((max(n_s, 1), n_p))
    flat: list[int] = []
    starts = [0]
    for s, src in enumerate(spec.sensors.values()):
        for e in src.events:
            if e in events and s not in seen_by[events.index(e)]:
                seen_by[events.index(e)].append(s)
        cov = src.coverage
        coverage[s] = [cov.get(r, 0.0) if isinstance(cov, dict) else cov
                       for r in pop.labels["region"]]
        detection[s] = src.detection
        misattribution[s] = src.misattribution
        phantom_rate[s] = src.phantom_rate
        for p, cats in enumerate(described):
            w = 1.0
            for attr, table in src.false_match_multipliers.items():
                w *= table.get(pop.labels[attr][cats[attr]], 1.0)
            weight[s, p] = w
        flat += [events.index(e) for e in src.invented_events if e in events]
        starts.append(len(flat))
    counts = np.bincount(profile, minlength=n_p).astype(np.float64)
    mass = weight * counts
    victim_cdf = np.cumsum(mass, axis=1) / np.maximum(mass.sum(axis=1, keepdims=True), 1e-300)
    order = np.argsort(profile, kind="stable").astype(np.int32)
    pstarts = np.zeros(n_p + 1, dtype=np.int64)
    np.cumsum(counts.astype(np.int64), out=pstarts[1:])
    profile_region = np.asarray([cats["region"] for cats in described], dtype=np.int64)
    empty = np.zeros(0)
    region_size = np.bincount(pop.region, minlength=n_r).astype(np.int64)
    check_floors(spec, coverage, region_size)
    sources_of_event = np.full((len(events), max([1, *map(len, seen_by)])), -1, dtype=np.int8)
    for t, sources in enumerate(seen_by):
        sources_of_event[t, :len(sources)] = sources
    model = SensorModel(names, sources_of_event[:, 0].copy(), sources_of_event, empty,
                        misattribution, profile, order, pstarts,
                        victim_cdf, empty, empty, empty, empty, empty,
                        np.asarray(flat, dtype=np.int16), np.asarray(starts, dtype=np.int64),
                        coverage, detection, weight, phantom_rate, profile_region, region_size)
    return with_coverage(model, coverage)


def with_coverage(model: SensorModel, coverage: np.ndarray) -> SensorModel:
    """The model with each source's coverage by region replaced ((S, R) shares): detection
    chances and phantom tables follow (phantoms scale with coverage)."""
    detect = coverage * model.detection[:, None]
    phantom = model.phantom_rate[:, None] * model.weight * coverage[:, model.profile_region]
    lam = phantom.sum(axis=0)
    if lam.max(initial=0.0) > MAX_PHANTOMS:
        raise UserError(f"sensors: phantom_rate times false_match_multipliers gives some "
                        f"citizens {lam.max():.3g} phantom records a day; at most "
                        f"{MAX_PHANTOMS:g} is supported")
    phantom_cdf = (np.cumsum(phantom, axis=0) / np.maximum(lam, 1e-300)).T.copy()
    # Blocks of same-profile citizens with at most PHANTOMS_PER_BLOCK expected phantoms a day:
    # a day's phantoms cost O(blocks + phantoms) instead of one draw per citizen.
    pstarts = model.profile_starts
    n_p = len(pstarts) - 1
    members = np.diff(pstarts)
    size = np.where(lam > 0, np.clip(PHANTOMS_PER_BLOCK // np.maximum(lam, 1e-12), 1, members), 0)
    n_blocks = np.where(size > 0, -(-members // np.maximum(size, 1)), 0).astype(np.int64)
    block_profile = np.repeat(np.arange(n_p, dtype=np.int32), n_blocks)
    within = np.arange(len(block_profile)) - np.repeat(np.cumsum(n_blocks) - n_blocks, n_blocks)
    block_size = size[block_profile].astype(np.int64)
    block_first = pstarts[block_profile] + within * block_size
    block_len = np.minimum(block_size, pstarts[block_profile + 1] - block_first)
    return replace(model, coverage=coverage, detect=detect, phantom_lambda=lam,
                   block_first=block_first, block_len=block_len, block_profile=block_profile,
                   phantom_cdf=phantom_cdf)


def reallocate(coverage: np.ndarray, heat: np.ndarray, region_size: np.ndarray,
               floor: float, exponent: float = 1.0) -> np.ndarray:
    """One source's coverage re-divided among regions in proportion to where it recorded
    observations (the predictive-policing loop), keeping its budget of covered citizens
    exactly.

    Args:
        coverage: (R,) today's shares. heat: (R,) recent observations per region (decayed).
        region_size: (R,) citizens per region. floor: least coverage any region keeps; at
            most the budget's mean coverage (see :func:`check_floors`).
        exponent: shares follow heat ** exponent: 1 is proportional (an urn: the initial
            split is kept up to chance, never corrected), above 1 favours the hot spot (runs
            away toward it), below 1 evens out.

    Returns:
        (R,) new shares in [floor, 1] (``floor`` for a region without citizens): every region
        first keeps ``floor`` of its citizens covered; the rest of the budget
        B = sum(coverage x size) goes in proportion to heat, a region's share capped at 1 with
        what it cannot use passed on to the others (water-filling), and what the regions with
        records cannot take at all to the others in proportion to their room. The budget is
        exactly B after any number of reallocations. Without any observations the coverage
        is unchanged; a region with no records keeps only ``floor`` (with floor 0 it is never
        watched again, so it never records again).
    """
    if heat.sum() <= 0:
        return coverage
    size = np.asarray(region_size, dtype=np.float64)
    budget = float((coverage * size).sum())
    kept = floor * size
    room = size - kept
    weight = (heat / heat.max()) ** exponent  # scaled first: a large heat ** 10 stays finite
    extra = _water_fill(max(budget - float(kept.sum()), 0.0), weight, room)
    return np.where(size > 0, (kept + extra) / np.maximum(size, 1.0), floor)


def stream_records(seen: np.ndarray, coverage: np.ndarray, streams: list[int],
                   weighting: str = "none") -> np.ndarray:
    """The records that drive one source's reallocation today, per region.

    Args:
        seen: (S, R) today's records per source and region (of the citizen named).
        coverage: (S, R) the coverage the records were made under (today's, before any
            reallocation). streams: the sources whose records count (``reallocate.from``).
        weighting: ``none`` (each record counts 1) or ``inverse_coverage`` (a record of
            source q in region r counts ``1 / coverage[q, r]``; records made where that
            coverage is 0, only ever false matches from elsewhere, count nothing).

    Returns:
        (R,) the sum over the streams (an int64 array when unweighted, as the records are).
    """
    rows = seen[streams]
    if weighting == "inverse_coverage":
        cov = coverage[streams]
        rows = np.divide(rows, cov, out=np.zeros(cov.shape), where=cov > 0)
    return rows.sum(axis=0) if len(streams) > 1 else rows[0]


def prior_counts(prior: float | dict[str, float], regions: list[str]) -> np.ndarray:
    """(R,) ``reallocate.prior`` per region: one number for every region, or per region
    (regions not named get 0)."""
    if isinstance(prior, dict):
        return np.asarray([float(prior.get(r, 0.0)) for r in regions])
    return np.full(len(regions), float(prior))


def place_units(key: np.uint64, heat: np.ndarray, region_size: np.ndarray, units: int,
                unit_coverage: float, exponent: float = 1.0) -> np.ndarray | None:
    """Discrete allocation: ``units`` patrol units, each placed in a region drawn from the
    shares, give each region ``min(1, units there x unit_coverage)`` coverage.

    The shares are ``heat ** exponent`` over the regions with citizens, normalised. Unit u
    draws ``uniform(key, u)`` and goes to the first region whose cumulative share exceeds it
    (keyed by day, source and unit: the placement does not depend on anything else).

    Args:
        key: the stream of this source and day. heat: (R,) decayed records plus prior.
        region_size: (R,) citizens per region (a region without citizens gets no unit).

    Returns:
        (R,) coverage, or None where no region has heat (the coverage then stays).
    """
    weight = np.where(np.asarray(region_size) > 0, heat, 0.0)
    if weight.max(initial=0.0) <= 0:
        return None
    share = (weight / weight.max()) ** exponent
    share = np.where(weight > 0, share, 0.0)  # 0 ** 0 is 1: no heat, no unit
    cdf = np.cumsum(share) / share.sum()
    cdf[int(np.flatnonzero(share)[-1]):] = 1.0
    u = uniforms(key, units)
    placed = np.bincount(np.searchsorted(cdf, u, side="right"), minlength=len(heat))
    return np.minimum(placed[:len(heat)] * unit_coverage, 1.0)


def _water_fill(amount: float, weight: np.ndarray, room: np.ndarray) -> np.ndarray:
    """``amount`` divided in proportion to ``weight`` with no one given more than their
    ``room``; what those with weight cannot take goes to the rest in proportion to room.
    Returns (R,) float64 summing to min(amount, sum(room))."""
    out = np.zeros(len(room), dtype=np.float64)
    for w in (np.asarray(weight, dtype=np.float64), room):
        active = (w > 0) & (out < room)
        while amount > 0 and active.any():  # each round fills at least one, or ends
            # scaled by the largest first: weights far below it (even subnormal) still
            # split the amount with no part lost to rounding
            part = np.where(active, w, 0.0) / w[active].max()
            share = amount * part / part.sum()
            full = active & (out + share >= room)
            if not full.any():
                out += share
                return out
            amount -= float((room[full] - out[full]).sum())
            out[full] = room[full]
            active &= ~full
    return out


def check_floors(spec: ScenarioSpec, coverage: np.ndarray, region_size: np.ndarray) -> None:
    """A reallocating source's ``floor`` must fit in its budget: every region covered at
    least ``floor`` takes ``floor x citizens``, at most the budget of covered citizens."""
    for s, (name, src) in enumerate(spec.sensors.items()):
        if src.reallocate is None or src.reallocate.floor == 0:
            continue
        citizens = float(region_size.sum())
        budget = float((coverage[s] * region_size).sum())
        need = src.reallocate.floor * citizens
        if need > budget * (1 + 1e-12):
            raise UserError(
                f"sensors.{name}.reallocate.floor: {src.reallocate.floor:g} of every region "
                f"is {need:,.0f} covered citizens, more than the source's budget of "
                f"{budget:,.0f} (its coverage, {budget / max(citizens, 1):.4g} of citizens on "
                f"average); the floor can be at most that average")


def observe(seed: int, day: int, true: TrueEvents, model: SensorModel,  # noqa: F821
            region: np.ndarray, abroad: np.ndarray) -> tuple[Observations, np.ndarray, np.ndarray]:
    """Turn one day's true events into observations. Events of citizens living abroad
    (``abroad``, bool (n,)) are not seen by domestic sources; phantoms can still name them.

    An event type seen by several sources is recorded by each independently (its own
    detection, misattribution and draws, keyed by citizen, event and source): one event can
    give several records, one per source.

    Returns:
        The observations (true ones in event order, an event's records in the order of its
        sources, then phantoms by profile block); the status of every true event (0 missed by
        every source, 1 observed on its actor by some source, 2 recorded only on someone
        else), int8 (m,); and the tally, int64 (5, T) (rows :data:`TALLY`): per event type the
        true events, the records naming the actor, the events no source recorded, the records
        of true events naming someone else, and the false records claiming that event
        (those and the phantoms). With one source per type a record is an event.
    """
    # Phantoms: a Poisson count per block of same-profile citizens, each phantom on a uniformly
    # drawn member. Spreading Poisson(lam * len) uniformly over a block gives every member an
    # independent Poisson(lam) count: the same distribution as one draw per citizen.
    pkey = stream_key(seed, Stage.PHANTOM, day)
    counts = np.empty(len(model.block_first), dtype=np.int32)
    kernels.sensing.phantom_count(pkey, model.phantom_lambda, model.block_first,
                                  model.block_len, model.block_profile, counts)
    first = kernels.arrays.offsets(counts)
    k = int(first[-1])
    p_cit = np.empty(k, dtype=np.int32)
    p_evt = np.empty(k, dtype=np.int16)
    p_src = np.empty(k, dtype=np.int8)
    kernels.sensing.phantom_fill(pkey, model.profile_members, model.block_first,
                                 model.block_len, model.block_profile, model.phantom_cdf,
                                 model.phantom_events, model.phantom_starts, counts, first,
                                 p_cit, p_evt, p_src)
    keys = np.zeros(max(len(model.names), 1), dtype=np.uint64)
    if model.sources_of_event.shape[1] > 1:  # a source that is not an event's first
        keys[:len(model.names)] = [stream_key(seed, Stage.OBSERVE, day, OTHER_SOURCE + s)
                                   for s in range(len(model.names))]
    status, tally, *columns = kernels.sensing.observe(
        stream_key(seed, Stage.OBSERVE, day), keys, true.citizen, true.event, true.seq, region,
        abroad, model.sources_of_event, model.detect, model.misattribution, model.victim_cdf,
        model.profile_members, model.profile_starts, p_cit, p_evt, p_src,
        len(model.source_of_event))
    return Observations(*columns), status, tally
