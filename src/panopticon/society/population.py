"""The synthetic population as a struct of arrays: one array of length n per attribute.

Citizens are numbered household by household, and households region by region, so that family
and friendship ties sit close in memory (the weekly tie pass streams instead of jumping).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from panopticon.rng import Stage, stream_key, uniforms
from panopticon.scenario import ORIGIN_HOME, SocietySpec
from panopticon.society import ties as tie_layers
from panopticon.society.sampling import draw, draw_by, table_codes
from panopticon.society.ties import CSR

SEXES = ("female", "male")
NO_PARTNER = -1


@dataclass(frozen=True)
class Population:
    """Citizen attributes, each an array of shape (n,) indexed by citizen id.

    Attributes:
        age: years, uint8.
        sex: code into :data:`SEXES`, uint8.
        region, group, residency, occupation: codes into ``labels[column]``, uint8.
        income: yuan per month, float32 (0 for minors).
        rank: official rank, uint8 (0 = not an official).
        household: household id, int32 (households are contiguous runs of ids).
        partner: partner's citizen id, int32 (-1 = none).
        abroad: bool, a citizen living abroad (domestic sensors do not see them).
        children: minors in an adult's household, uint8 (0 for minors).
        labels: category names of each coded column.
        traits: the scenario's further numeric traits by name, float64 (n,) each.
        origin: with visitors, a code into ``labels["origin"]`` (0 = ``home``, every
            resident), uint8; None without visitors.
        visitors: how many of the citizens are visitor slots: the last ``visitors`` ids.
    """

    age: np.ndarray
    sex: np.ndarray
    region: np.ndarray
    group: np.ndarray
    residency: np.ndarray
    occupation: np.ndarray
    income: np.ndarray
    rank: np.ndarray
    household: np.ndarray
    partner: np.ndarray
    abroad: np.ndarray
    children: np.ndarray
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    traits: dict[str, np.ndarray] = field(default_factory=dict)
    origin: np.ndarray | None = None
    visitors: int = 0

    @property
    def n(self) -> int:
        """Number of citizens (residents and visitor slots)."""
        return len(self.age)

    @property
    def residents(self) -> int:
        """Number of residents: citizens ``0`` to ``residents - 1``; visitor slots follow."""
        return self.n - self.visitors

    CATEGORICAL = ("sex", "region", "group", "residency", "occupation")

    def columns(self) -> dict[str, np.ndarray]:
        """Every attribute by name."""
        names = ("age", "sex", "region", "group", "residency", "occupation", "income", "rank",
                 "household", "partner", "abroad", "children")
        origin = {} if self.origin is None else {"origin": self.origin}
        return {**{k: getattr(self, k) for k in names}, **origin, **self.traits}

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes."""
        return sum(v.nbytes for v in self.columns().values())


class TieLayers(Mapping[str, CSR]):
    """A society's tie layers by name, as generated. A run that replaces a layer (rewiring,
    the partner market) releases the generated one (:meth:`release`): when asked for again it
    is generated again, bit for bit (a layer is a pure function of the society spec, the
    population and the seed), so a run does not hold its largest layer twice."""

    def __init__(self, layers: dict[str, CSR], make: Callable[[str], CSR]):
        self._layers: dict[str, CSR | None] = dict(layers)
        self._make = make

    def __getitem__(self, name: str) -> CSR:
        layer = self._layers[name]
        if layer is None:
            layer = self._layers[name] = self._make(name)
        return layer

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def release(self, name: str) -> None:
        """Drop the generated layer ``name`` (made again when next asked for)."""
        self._layers[name] = None


@dataclass(frozen=True)
class Society:
    """Population plus tie layers (``family``, ``friends``, ``work``, ``partner``)."""

    population: Population
    ties: Mapping[str, CSR]

    @property
    def n(self) -> int:
        """Number of citizens."""
        return self.population.n

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes."""
        return self.population.nbytes + sum(t.nbytes for t in self.ties.values())


def _households(spec: SocietySpec, n: int, seed: int) -> np.ndarray:
    """Household sizes (int64) summing exactly to n; the last household may be cut short."""
    sizes_table = np.asarray([int(v) for v in spec.households.size.values])
    w = np.asarray(spec.households.size.weights, dtype=np.float64)
    mean = float((sizes_table * w).sum() / w.sum())
    m = int(n / mean * 1.2) + 16
    offset = 0
    chunks = []
    total = 0
    while total < n:
        u = uniforms(stream_key(seed, Stage.SOCIETY, 0, 0), m, offset=offset)
        sizes = sizes_table[table_codes(spec.households.size, u)]
        chunks.append(sizes)
        total += int(sizes.sum())
        offset += m
    sizes = np.concatenate(chunks)
    cum = np.cumsum(sizes)
    h = int(np.searchsorted(cum, n)) + 1
    sizes = sizes[:h].copy()
    sizes[-1] -= int(cum[h - 1] - n)
    return sizes


def generate_society(spec: SocietySpec, n: int, seed: int) -> Society:
    """A synthetic society of ``n`` citizens, a pure function of (spec, n, seed).

    Memory: about 30 bytes per citizen of attributes plus 4 bytes per directed tie
    (about 150 bytes per citizen with the default layers).
    """
    def u(sub: int, size: int) -> np.ndarray:
        return uniforms(stream_key(seed, Stage.SOCIETY, 0, sub), size)

    sizes = _households(spec, n, seed)
    n_h = len(sizes)
    region_h = table_codes(spec.region, u(1, n_h)).astype(np.uint8)
    order = np.argsort(region_h, kind="stable")  # households region by region
    sizes, region_h = sizes[order], region_h[order]
    group_h = table_codes(spec.group, u(2, n_h)).astype(np.uint8)
    residency_h = table_codes(spec.residency, u(3, n_h)).astype(np.uint8)
    partnered_h = (u(4, n_h) < spec.households.partnered) & (sizes >= 2)

    household = np.repeat(np.arange(n_h, dtype=np.int32), sizes)
    starts = np.zeros(n_h + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    pos = np.arange(n, dtype=np.int64) - starts[household]
    is_partner = (pos == 1) & partnered_h[household]
    is_child = (pos >= 1) & ~is_partner & (u(5, n) < spec.households.child_share)

    adult_age = draw(spec.adult_age, u(6, n))
    child_age = np.floor(u(8, n) * 18.0)
    age = np.where(is_child, child_age, np.floor(adult_age)).clip(0, 120).astype(np.uint8)

    # Couples are one woman and one man; everyone else is a woman with the probability that
    # makes the whole population's share of women equal female_share.
    n_couples = int(partnered_h.sum())
    singles_share = (spec.female_share * n - n_couples) / max(n - 2 * n_couples, 1)
    drawn_sex = (u(9, n) >= min(max(singles_share, 0.0), 1.0)).astype(np.uint8)
    sex = np.where(is_partner, 1 - drawn_sex[starts[household]], drawn_sex).astype(np.uint8)

    region = region_h[household]
    group = group_h[household]
    residency = residency_h[household]

    labels: dict[str, tuple[str, ...]] = {
        "sex": SEXES,
        "region": tuple(spec.region.labels()),
        "group": tuple(spec.group.labels()),
        "residency": tuple(spec.residency.labels()),
        "occupation": (*spec.occupation.labels(), "minor", "retired"),
    }
    minor_code = len(labels["occupation"]) - 2
    occupation = table_codes(spec.occupation, u(10, n)).astype(np.uint8)
    occupation[age < 18] = minor_code
    occupation[age >= spec.retirement_age] = minor_code + 1

    columns = {"sex": sex, "region": region, "group": group, "residency": residency}
    income = draw_by(spec.income, u(11, n), columns,
                     {k: list(v) for k, v in labels.items()})
    income = np.where(age < 18, 0.0, np.maximum(income, 0.0)).astype(np.float32)

    rank = np.zeros(n, dtype=np.uint8)
    if "official" in labels["occupation"]:
        is_official = occupation == labels["occupation"].index("official")
        ranks = np.asarray([int(v) for v in spec.official_rank.values], dtype=np.uint8)
        rank[is_official] = ranks[table_codes(spec.official_rank, u(13, n)[is_official])]

    partner = np.full(n, NO_PARTNER, dtype=np.int32)
    heads = starts[:-1][partnered_h]
    partner[heads] = heads + 1
    partner[heads + 1] = heads

    is_citizen = residency == labels["residency"].index("citizen") \
        if "citizen" in labels["residency"] else np.zeros(n, dtype=bool)
    abroad = is_citizen & (age >= 18) & (u(14, n) < spec.abroad_share)
    minors = np.bincount(household, weights=age < 18, minlength=n_h)
    children = np.where(age < 18, 0, np.minimum(minors[household], 255)).astype(np.uint8)
    str_labels = {k: list(v) for k, v in labels.items()}
    traits = {name: draw_by(dist, u(100 + j, n), columns, str_labels)
              for j, (name, dist) in enumerate(spec.traits.items())}
    population = Population(age=age, sex=sex, region=region, group=group, residency=residency,
                            occupation=occupation, income=income, rank=rank, household=household,
                            partner=partner, abroad=abroad, children=children, labels=labels,
                            traits=traits)
    layers = {name: _layer(name, spec, population, seed, starts) for name in LAYERS}
    if spec.visitors is None:
        return Society(population, TieLayers(layers, lambda name: _layer(name, spec, population,
                                                                         seed)))
    full = _with_visitors(spec, population, n_h, seed)
    pool = spec.visitors.pool
    return Society(full, TieLayers(
        {name: _pad(layer, pool) for name, layer in layers.items()},
        lambda name: _pad(_layer(name, spec, population, seed), pool)))


def _pad(layer: CSR, extra: int) -> CSR:
    """``layer`` with ``extra`` citizens without ties appended."""
    indptr = np.concatenate([layer.indptr, np.full(extra, layer.indptr[-1],
                                                   dtype=layer.indptr.dtype)])
    return CSR(indptr, layer.indices)


def _with_visitors(spec: SocietySpec, res: Population, n_h: int, seed: int) -> Population:
    """The residents followed by ``spec.visitors.pool`` visitor slots, each drawn once from its
    own streams (keyed by slot): origin, then age, sex, region, group, occupation, income and
    traits like residents'; residency ``tourist``, no household (one of their own), partner,
    children or rank."""
    vis = spec.visitors
    assert vis is not None
    m, n = vis.pool, res.n

    def u(sub: int) -> np.ndarray:
        return uniforms(stream_key(seed, Stage.SOCIETY, 0, 200 + sub), m)

    origin_labels = (ORIGIN_HOME, *vis.origins.labels())
    origin = (table_codes(vis.origins, u(0)) + 1).astype(np.uint8)
    age = np.floor(draw(spec.adult_age, u(1))).clip(0, 120).astype(np.uint8)
    sex = (u(2) >= spec.female_share).astype(np.uint8)
    region = table_codes(spec.region, u(3)).astype(np.uint8)
    group = table_codes(spec.group, u(4)).astype(np.uint8)
    labels = res.labels
    residency = np.full(m, labels["residency"].index("tourist"), dtype=np.uint8)
    minor_code = len(labels["occupation"]) - 2
    occupation = table_codes(spec.occupation, u(5)).astype(np.uint8)
    occupation[age < 18] = minor_code
    occupation[age >= spec.retirement_age] = minor_code + 1
    if isinstance(vis.income, dict):
        income = np.empty(m, dtype=np.float64)
        uu = u(6)
        for code, name in enumerate(vis.origins.labels(), start=1):
            mine = origin == code
            income[mine] = draw(vis.income[name], uu[mine])
    else:
        income = draw(vis.income, u(6))
    income = np.where(age < 18, 0.0, np.maximum(income, 0.0)).astype(np.float32)
    columns = {"sex": sex, "region": region, "group": group, "residency": residency}
    str_labels = {k: list(v) for k, v in labels.items()}
    traits = {name: np.concatenate([res.traits[name], draw_by(dist, u(100 + j), columns,
                                                              str_labels)])
              for j, (name, dist) in enumerate(spec.traits.items())}

    def cat(a: np.ndarray, b: np.ndarray | int, dtype=None) -> np.ndarray:
        b = np.full(m, b, dtype=a.dtype) if isinstance(b, int | bool) else b
        return np.concatenate([a, b.astype(dtype or a.dtype)])

    return Population(
        age=cat(res.age, age), sex=cat(res.sex, sex), region=cat(res.region, region),
        group=cat(res.group, group), residency=cat(res.residency, residency),
        occupation=cat(res.occupation, occupation), income=cat(res.income, income),
        rank=cat(res.rank, 0), household=cat(res.household, np.arange(n_h, n_h + m)),
        partner=cat(res.partner, NO_PARTNER), abroad=cat(res.abroad, False),
        children=cat(res.children, 0), labels={**labels, "origin": origin_labels},
        traits=traits, origin=cat(np.zeros(n, dtype=np.uint8), origin), visitors=m)


LAYERS = ("family", "partner", "friends", "work")
"""The tie layers of a society, in order."""


def _layer(name: str, spec: SocietySpec, pop: Population, seed: int,
           starts: np.ndarray | None = None) -> CSR:
    """One tie layer (``starts``: household boundaries, else from ``pop.household``)."""
    n = pop.n
    if name == "family":
        if not spec.ties.family:
            return tie_layers.empty(n)
        if starts is None:  # households are contiguous runs of ids
            starts = np.zeros(int(pop.household[-1]) + 2 if n else 1, dtype=np.int64)
            np.cumsum(np.bincount(pop.household), out=starts[1:])
        return tie_layers.cliques(n, np.arange(n), starts)
    if name == "partner":
        has = pop.partner >= 0
        a = np.flatnonzero(has & (np.arange(n) < pop.partner))
        return tie_layers.from_pairs(n, a, pop.partner[a])
    if name == "friends":
        return tie_layers.small_world(n, spec.ties.friends.mean_degree,
                                      spec.ties.friends.rewire, seed)
    occ = pop.labels["occupation"]
    idle = {occ.index(x) for x in ("minor", "retired", "unemployed") if x in occ}
    working = np.flatnonzero(~np.isin(pop.occupation, list(idle)))
    # Shuffle workers within blocks of 4096 neighbours: teams mix households but stay local.
    key = uniforms(stream_key(seed, Stage.TIES, 0, 2), len(working))
    workers = working[np.lexsort((key, working // 4096))]
    size = spec.ties.work.team_size
    team_starts = np.append(np.arange(0, len(workers), size), len(workers))
    return tie_layers.cliques(n, workers, team_starts)
