"""Will a run fit in memory? An estimate of a run's peak memory, what the machine can give,
and the check that compares them before anything is allocated.

The estimate (:func:`estimate_peak_bytes`) is linear in citizens::

    peak = BASE + citizens * (state + 0.25 * days + rows * (24 * days held + 95 * chunk))

*state* is what the simulation holds per citizen whatever the length of the run: columns
(320 bytes), 24 per active event type, 8 per tie of mean degree (friends, work team, family),
10 per opportunity type, 40 with peer rating, 60 with a formula score. *rows* is the
expected observation, ledger and refusal rows per citizen-day (:func:`rows_per_citizen_day`,
from rates, detection, coverage, association pulls and peer ratings; within 0-25% above
what the presets produce). A held row costs about 24 bytes; the checkpoint being turned into
tables and Parquet (``chunk`` = ``min(days, checkpoint_every)`` days) about 95 a row.

Days held: the run writer hands each ``checkpoint_every`` days of records to a background
writer whose queue is not bounded (``RunWriter.checkpoint`` in ``store/local.py``). When
writing is slower than the day loop, every day's records stay in memory until the end:
reference at 300,000 citizens had 5 checkpoints pending, none written, at day 150 (1.5 GB and
growing). The estimate assumes this worst case (:func:`days_held` is all the days); where the
writer keeps up, long runs peak lower than estimated (nosedive and seed_article, 365 days at
1,000,000 citizens: 2.1x and 1.9x).

Measurements: peak resident set (``/usr/bin/time -v``) of ``panopticon run --preset P
--citizens N --days D -q`` (stored), Python 3.11, Linux x86-64, 2 CPUs, 23 GB; one thread
below 500,000 citizens, two from 500,000; MB = 10^6 bytes.

=================  =====  =======  =======  =========  ==========
preset             days   100,000  300,000  1,000,000  3,000,000
=================  =====  =======  =======  =========  ==========
seed_article       5      429      645      1,382      3,404
seed_article       30     510      909      2,135
seed_article       90              996
seed_article       365    614      1,109    2,838
reference          5      377      514      1,013      2,199
reference          30     551               2,792
reference          365    1,094    2,338    8,134
city_incentive     5      375      508      928
city_incentive     30                       997
city_incentive     365                      1,197
court_blacklist    5      361      466      821        1,818
court_blacklist    30     362               817
court_blacklist    365    363               900
nosedive           5      389      543      1,116      2,506
nosedive           30     539               2,759
nosedive           365    609               4,084
rongcheng_points   5      386      526      1,009
rongcheng_points   30     382               1,013
rongcheng_points   365    412               1,112
sesame_commercial  5      384      519      980
sesame_commercial  30                       1,127
sesame_commercial  365                      1,243
suining_2010       5      384      514      961
suining_2010       30                       966
suining_2010       365                      1,009
=================  =====  =======  =======  =========  ==========

Fit: the fixed part (interpreter, numpy, numba and its compiled kernels, pyarrow) is
300-340 MB; per citizen at 5 days 500-1,020 bytes (slopes between 300,000 and 1,000,000).
Against these 58 measurements the estimate is 1.06-1.35x the measured peak, except the
5-day reference run at 3,000,000 (1.5x: the short run's peak is the setup's, not the
records') and the long runs whose writer kept up (1.4-2.1x); it is never below.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from panopticon.errors import UserError
from panopticon.scenario import ScenarioSpec

BASE_BYTES = 360_000_000
"""Fixed cost of a run's process: interpreter, libraries, compiled kernels, small tables."""
PER_CITIZEN_BYTES = 320
"""Columns and state arrays every citizen has (scores, tiers, attributes, ...)."""
PER_EVENT_BYTES = 24
"""Per citizen and active event type: rates, base rates, tallies."""
PER_TIE_BYTES = 8
"""Per citizen and tie of mean degree (friends, work team, family): the tie lists."""
PER_OPPORTUNITY_BYTES = 10
"""Per citizen and opportunity type: rates, retries, loans."""
PEER_RATING_BYTES = 40
"""Per citizen when the policy rates peers (rating weights and sums)."""
FORMULA_BYTES = 60
"""Per citizen when the score is a formula (its evaluation)."""
HELD_ROW_BYTES = 24
"""A day record's row (observation, ledger or refusal) held until written."""
WRITTEN_ROW_BYTES = 95
"""A row of the checkpoint being turned into tables and Parquet (the writer's peak)."""
PER_CITIZEN_DAY_BYTES = 0.25
"""Per citizen and day of the run: what grows with the days besides the rows (list
changes, per-day tables, allocator slack)."""
GB = 1e9


def days_held(spec: ScenarioSpec) -> int:
    """Days of records a run may hold at once: all of them (the writer's queue is not
    bounded; see the module docstring)."""
    return spec.run.days


# ---------------------------------------------------------------- the estimate
def estimate_peak_bytes(spec: ScenarioSpec) -> int:
    """Estimated peak resident memory of running ``spec`` (stored), in bytes: an upper-ish
    bound, linear in ``run.citizens`` (see the module docstring for the measurements)."""
    return BASE_BYTES + math.ceil(spec.run.citizens * per_citizen_bytes(spec))


def per_citizen_bytes(spec: ScenarioSpec) -> float:
    """The estimate's cost of one citizen: state plus day records."""
    ties = spec.society.ties
    degree = ties.friends.mean_degree + (ties.work.team_size - 1) + (2 if ties.family else 0)
    policy = spec.policy
    state = (PER_CITIZEN_BYTES + PER_EVENT_BYTES * len(spec.active_events())
             + PER_TIE_BYTES * degree + PER_OPPORTUNITY_BYTES * len(spec.opportunities)
             + (PEER_RATING_BYTES if policy.peer_rating is not None else 0)
             + (FORMULA_BYTES if policy.score.formula is not None else 0))
    rows = rows_per_citizen_day(spec)
    chunk = min(spec.run.days, spec.run.checkpoint_every)
    return state + PER_CITIZEN_DAY_BYTES * spec.run.days \
        + rows * (HELD_ROW_BYTES * days_held(spec) + WRITTEN_ROW_BYTES * chunk)


def rows_per_citizen_day(spec: ScenarioSpec) -> float:
    """Expected observation, ledger and refusal rows per citizen and day (upper-ish: each
    event's best source at its best coverage; band factors at their mean)."""
    from panopticon.catalogue import EVENT_TYPES, OPPORTUNITIES_BY_NAME

    default = {e.name: e.rate_per_day for e in EVENT_TYPES}
    seen: dict[str, float] = {}
    phantoms = 0.0
    for source in spec.sensors.values():
        reach = source.detection * _largest(source.coverage)
        for event in source.events:
            seen[event] = max(seen.get(event, 0.0), reach)
        phantoms += source.phantom_rate * _largest(source.coverage)
    scored = {rule.event for rule in spec.policy.rules}
    observations = ledger = phantoms
    for name, how in spec.behaviour.events.items():
        rate = default.get(name, 0.0) if how.rate is None else _mean(how.rate)
        rate *= _multiplier(spec, how.multipliers) * _band_mean(how.bands) \
            * (1 - _under_age(spec, how.min_age))
        observations += rate * seen.get(name, 0.0)
        ledger += rate * seen.get(name, 0.0) if name in scored else 0.0
    policy = spec.policy
    ledger += sum(1 / a.every_days for a in policy.association)
    if policy.peer_rating is not None:
        ledger += 1 - math.exp(-policy.peer_rating.ratings_per_day)
    if policy.score.formula is not None:
        ledger += 1 / policy.score.every_days
    tries = 0.0  # refusals (at most one row per try) and loan outcomes
    for name, opp in spec.opportunities.items():
        known = OPPORTUNITIES_BY_NAME.get(name)
        rate = (known.rate_per_day if known else 0.0) if opp.rate is None else _mean(opp.rate)
        tries += rate * _multiplier(spec, opp.multipliers) * _band_mean(opp.bands) \
            * (1 - _under_age(spec, opp.min_age))
    return observations + ledger + tries


CHILD_SHARE = 0.24
"""Share of citizens under 18 with the default households (measured: 0.214 under 16, 0.240
under 18); children's ages taken as uniform."""


def _under_age(spec: ScenarioSpec, age: float) -> float:
    """Share of citizens younger than ``age`` (adults' ages by the society's normal, or
    mean 43, sd 15)."""
    if age <= 18:
        return CHILD_SHARE * max(age, 0.0) / 18
    adult = spec.society.adult_age
    mean, sd = (adult.mean, adult.sd) if getattr(adult, "kind", None) == "normal" else (43, 15)
    return CHILD_SHARE + (1 - CHILD_SHARE) * 0.5 * (1 + math.erf((age - mean) / sd / math.sqrt(2)))


def _band_mean(bands: dict) -> float:
    return math.prod(sum(b.factors) / len(b.factors) for b in bands.values()) if bands else 1.0


def _largest(value) -> float:
    return max(value.values(), default=0.0) if isinstance(value, dict) else float(value)


def _mean(rate) -> float:
    """The mean of a rate: a number or a distribution (clipped to its max, roughly)."""
    if isinstance(rate, int | float):
        return float(rate)
    kind = rate.kind
    if kind == "constant":
        return rate.value
    if kind == "uniform":
        return (rate.low + rate.high) / 2
    if kind == "table":
        return sum(float(v) * w for v, w in zip(rate.values, rate.weights, strict=True)) \
            / sum(rate.weights)
    mean = rate.mean if kind == "normal" else rate.median * math.exp(rate.sigma ** 2 / 2)
    if rate.max is not None:
        mean = min(mean, rate.max)
    return max(mean, 0.0)


def _multiplier(spec: ScenarioSpec, multipliers: dict) -> float:
    """The population mean of a product of per-category multipliers (attributes taken as
    independent); a category the society's tables do not weigh (``minor``, ``retired``)
    counts at its factor if that is larger than the mean."""
    society = spec.society
    shares = {"sex": {"female": society.female_share, "male": 1 - society.female_share}}
    for attribute in ("region", "group", "residency", "occupation"):
        table = getattr(society, attribute)
        total = sum(table.weights)
        shares[attribute] = {label: w / total
                             for label, w in zip(table.labels(), table.weights, strict=True)}
    out = 1.0
    for attribute, factors in multipliers.items():
        weights = shares.get(attribute, {})
        mean = sum(w * factors.get(c, 1.0) for c, w in weights.items()) if weights else 1.0
        out *= max([mean] + [f for c, f in factors.items() if c not in weights])
    return out


# ---------------------------------------------------------------- the machine
def available_bytes() -> int:
    """Memory this process can have now: ``MemAvailable`` of ``/proc/meminfo`` (else the
    machine's total memory), capped by the room a cgroup memory limit leaves (v2
    ``memory.max`` of this process's group or any above it, less what the group uses
    besides reclaimable cache; v1 ``memory.limit_in_bytes``)."""
    free = _meminfo_available()
    if free is None:
        try:
            free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic systems
            free = 0
    room = cgroup_room()
    if room is not None and (not free or room < free):
        return room
    return free


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) > 1 and parts[1].isdigit() else None
    return None


def cgroup_room(root: Path = Path("/sys/fs/cgroup"),
                proc_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """Bytes the tightest cgroup memory limit over this process still allows, or None
    without a limit."""
    rooms = []
    for folder in _own_groups(root, proc_cgroup):
        limit = _read_int(folder / "memory.max")
        if limit is not None:
            rooms.append(max(0, limit - _used(folder, "memory.current", "anon")))
    v1 = root / "memory"
    limit = _read_int(v1 / "memory.limit_in_bytes")
    if limit is not None and limit < 1 << 60:  # v1 says "no limit" with a huge number
        rooms.append(max(0, limit - _used(v1, "memory.usage_in_bytes", "rss")))
    return min(rooms) if rooms else None


def _own_groups(root: Path, proc_cgroup: Path) -> list[Path]:
    """This process's cgroup (v2) folder and those above it, up to ``root``."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    rel = next((line[3:].strip().strip("/") for line in lines if line.startswith("0::")), "")
    folders = [root]
    for part in [p for p in rel.split("/") if p]:
        folders.append(folders[-1] / part)
    return [f for f in folders if f.is_dir()]


def _used(folder: Path, current: str, stat_key: str) -> int:
    """What a cgroup uses that it cannot give back: ``stat_key`` (anonymous memory) of
    ``memory.stat``, else the ``current`` total."""
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == stat_key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return _read_int(folder / current) or 0


def _read_int(path: Path) -> int | None:
    """An integer file's value; None if missing, unreadable or ``max``."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# ---------------------------------------------------------------- the check
def check_memory(spec: ScenarioSpec, force: bool = False, *, runs: int = 1) -> None:
    """Refuse to start ``runs`` concurrent runs of ``spec`` (a sweep's workers) when their
    estimated peak memory exceeds what the machine has available, unless ``force``.

    Raises:
        UserError: naming the estimate and the memory available, in GB, and ``--force``.
    """
    if force:
        return
    need = estimate_peak_bytes(spec) * runs
    have = available_bytes()
    if have and need > have:
        what = f"{runs} concurrent runs" if runs > 1 else "this run"
        each = f" ({estimate_peak_bytes(spec) / GB:.1f} GB each)" if runs > 1 else ""
        raise UserError(
            f"{what} of {spec.name} with {spec.run.citizens:,} citizens and "
            f"{spec.run.days:,} days would need about {need / GB:.1f} GB of memory{each}, "
            f"but {have / GB:.1f} GB is available; use fewer citizens"
            f"{' or workers' if runs > 1 else ''} or days, or --force to run it anyway")
