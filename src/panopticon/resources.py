"""Will a run fit in memory? An estimate of a run's peak memory, what the machine can give,
and the check that compares them before anything is allocated.

The estimate (:func:`estimate_peak_bytes`) is linear in citizens::

    peak = BASE + citizens * (state + 0.25 * days + rows * 104 * buffered days)

*state* is what the simulation holds per citizen whatever the length of the run: columns
(120 bytes), 4 per active event type, 6 per tie of mean degree (friends, work team, family),
10 per opportunity type, 40 with peer rating, 60 with a formula score. *rows* is the
expected observation, ledger and refusal rows per citizen-day (:func:`rows_per_citizen_day`,
from rates, detection, coverage, association pulls and peer ratings; within 0-25% above
what the presets produce).

Buffered days (:func:`buffered_days`): a stored run holds its records until they fill
``run.write_buffer_mb`` (at 24 bytes a row) or a checkpoint interval ends, whichever comes
first, then hands them to one background writer (``RunWriter`` in ``store/local.py``, whose
queue holds one write). A row then costs about 104 bytes at the peak: in the buffer being
filled, in the one being written, and in its tables and Parquet. So the records' share is
bounded by the buffer, however long the run and however many citizens a checkpoint interval
holds; at 10,000,000 citizens the buffer holds a few days.

Measurements: peak resident set (``/usr/bin/time``) of ``panopticon run --preset P
--citizens N --days D -q --force`` (stored), Python 3.11, Linux x86-64, 2 CPUs, 23 GB; one
thread below 500,000 citizens, two from 500,000; MB = 10^6 bytes; 2026-12-03, with float32
changing rates and a 64 MB write buffer.

=================  =====  =======  =======  =========  =========  ==========
preset             days   100,000  300,000  1,000,000  3,000,000  10,000,000
=================  =====  =======  =======  =========  =========  ==========
seed_article       5                        629        1,359
seed_article       30                       1,010                 3,725
seed_article       365    437               958
reference          30                       953                   3,369
reference          365             664      960
court_blacklist    5                                   1,033
nosedive           30                       976
nosedive           365                      1,022
rongcheng_points   365                      628
sesame_commercial  30                       664
suining_2010       365                      583
=================  =====  =======  =======  =========  =========  ==========

Against these the estimate is 1.00-1.54x the measured peak (the most for the 5-day runs,
whose peak is the set-up's, not the records'); it is never below. The constants were
fitted to these measurements (the estimate of the lean state before, with float64 rates
and a 256 MB buffer, was 1.04-1.52x the peaks then; the one before that about 1.9x above at
10,000,000 citizens).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from panopticon.errors import UserError
from panopticon.scenario import ScenarioSpec

BASE_BYTES = 420_000_000
"""Fixed cost of a run's process: interpreter, libraries, compiled kernels, small tables."""
PER_CITIZEN_BYTES = 120
"""Columns and state arrays every citizen has (scores, tiers, attributes, ...)."""
PER_EVENT_BYTES = 4
"""Per citizen and active event type: rates and tallies."""
PER_TIE_BYTES = 6
"""Per citizen and tie of mean degree (friends, work team, family): the tie lists."""
PER_OPPORTUNITY_BYTES = 10
"""Per citizen and opportunity type: rates, retries, loans."""
PEER_RATING_BYTES = 40
"""Per citizen when the policy rates peers (rating weights and sums)."""
FORMULA_BYTES = 60
"""Per citizen when the score is a formula (its evaluation)."""
HELD_ROW_BYTES = 24
"""A day record's row (observation, ledger or refusal) in the write buffer."""
ROW_PEAK_BYTES = 104
"""A buffered row's cost at the peak: the buffer filling, the one being written, its tables
and Parquet."""
PER_CITIZEN_DAY_BYTES = 0.25
"""Per citizen and day of the run: what grows with the days besides the rows (list
changes, per-day tables, allocator slack)."""
GB = 1e9


def buffered_days(spec: ScenarioSpec) -> float:
    """Days of records a stored run buffers before writing them: until they fill
    ``run.write_buffer_mb`` or a checkpoint interval ends (at least one day)."""
    day_bytes = rows_per_citizen_day(spec) * spec.run.citizens * HELD_ROW_BYTES
    fill = spec.run.write_buffer_mb * 1e6 / day_bytes if day_bytes > 0 else math.inf
    return min(spec.run.days, spec.run.checkpoint_every, max(1.0, fill))


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
    return state + PER_CITIZEN_DAY_BYTES * spec.run.days \
        + rows_per_citizen_day(spec) * ROW_PEAK_BYTES * buffered_days(spec)


def rows_per_citizen_day(spec: ScenarioSpec) -> float:
    """Expected observation, ledger and refusal rows per citizen and day (upper-ish: each
    source of an event at its best coverage, each making its own record; band factors at
    their mean)."""
    from panopticon.catalogue import catalogue_of

    library = catalogue_of(spec)  # the packaged entries and the scenario's own
    default = {e.name: e.rate_per_day for e in library.events.values()}
    seen: dict[str, float] = {}
    phantoms = 0.0
    for source in spec.sensors.values():
        reach = source.detection * _largest(source.coverage)
        for event in source.events:
            seen[event] = seen.get(event, 0.0) + reach  # each source records it apart
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
        known = library.opportunities.get(name)
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
