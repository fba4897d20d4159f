"""Ties that answer to scores: rewiring by tier, a daily partner market, and network statistics.

Where it sits in the data flow: after the policy has assigned tiers for the day, ``rewire`` lets
citizens drop ties to citizens of a disliked tier and tie instead to someone of their own tier
(Holme & Newman 2006, "Nonequilibrium phase transition in the coevolution of networks and
opinions", with the tier as the opinion), and ``rematch_partners`` runs the partner market with
scores as the currency. ``tie_stats`` and ``partner_stats`` summarise the result for records.

Everything here is pure compute: arrays in, new arrays out, no I/O. Per-citizen work runs in
the kernels of :mod:`panopticon.kernels.network` and every random number is a counter-based
draw (``rng.uniform(key, counter)``), so results are the same bit for bit whatever the thread
count or the order in which citizens are visited. Parallel loops write only the outputs of
their own iteration; where one citizen's change can collide with another's, proposals are
applied serially in citizen order.

Tie layers are symmetric CSR (:class:`panopticon.society.ties.CSR`). Layers returned by
:func:`rewire` have every row in ascending order.
"""

from __future__ import annotations

import math

import numpy as np

from panopticon import kernels
from panopticon.rng import uniforms_at
from panopticon.society.ties import CSR

NO_PARTNER = -1
DROP_RULES = ("worse", "different")


# ----------------------------------------------------------------------------- rewiring


def rewire(layer: CSR, tier: np.ndarray, key: np.uint64, probability: float, drop: str,
           frozen: np.ndarray | None = None) -> tuple[CSR, int]:
    """One day of "unfriending": citizens swap a tie to a disliked tier for one within their own.

    Holme & Newman (2006) rewiring with the tier as the opinion. Each citizen i with at least
    one tie acts with ``probability`` (draw at counter ``i << 8``). An acting citizen looks at
    one tie, j, chosen uniformly (counter ``(i << 8) + 1``). If j is disliked (``drop="worse"``:
    ``tier[j] > tier[i]``; ``drop="different"``: ``tier[j] != tier[i]``), i drops j and ties to
    a citizen k drawn uniformly from i's tier (counters ``(i << 8) + 2 + a``, a < 8) with
    k != i, k not frozen and k not tied to i; if all 8 draws fail, i keeps j.

    Proposals are computed from the day-start layer and applied in citizen order; a proposal is
    skipped if the tie i-j was already dropped today (by j) or the tie i-k already added (by k).
    Each swap leaves i's degree unchanged; j loses one tie, k gains one. The result is
    symmetric with no self ties and no new duplicate ties (a duplicate already in ``layer``
    is kept), and every row comes out sorted ascending even when the input rows were not.
    O(n + E).

    Args:
        layer: symmetric tie layer over n citizens (no self ties).
        tier: (n,) uint8 tier per citizen, 0 = best tier (a higher index is worse).
        key: the day's random stream key (``rng.stream_key``).
        probability: chance per citizen per day of acting, in [0, 1].
        drop: ``"worse"`` or ``"different"``, which neighbours a citizen dislikes.
        frozen: optional (n,) bool; frozen citizens neither act nor are chosen as k (they can
            still be dropped). None = nobody frozen.

    Returns:
        (new layer, number of ties rewired today).
    """
    if drop not in DROP_RULES:
        raise ValueError(f"drop must be one of {DROP_RULES}; got {drop!r}")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1]; got {probability}")
    n = layer.n
    tier = np.ascontiguousarray(tier, dtype=np.uint8)
    if tier.shape != (n,):
        raise ValueError(f"tier must have shape ({n},); got {tier.shape}")
    if frozen is None:
        frozen = np.zeros(n, dtype=np.bool_)
    frozen = np.ascontiguousarray(frozen, dtype=np.bool_)
    if frozen.shape != (n,):
        raise ValueError(f"frozen must have shape ({n},); got {frozen.shape}")
    n_tiers = int(tier.max()) + 1 if n else 1
    net = kernels.network
    members, starts = net.tier_groups(tier, frozen, n_tiers)
    drop_pos, new_tie = net.propose(layer.indptr, layer.indices, tier, frozen, members, starts,
                                    np.uint64(key), float(probability), drop == "worse")
    del members  # 4 bytes a citizen, not needed while the new layer is built
    new_indptr, touched, events, n_rewired = net.resolve(layer.indptr, layer.indices, drop_pos,
                                                         new_tie)
    indices = net.fill_rows(layer.indptr, layer.indices, drop_pos, new_tie, new_indptr, touched,
                            events)
    return CSR(new_indptr, indices), int(n_rewired)


# ----------------------------------------------------------------------------- partner market


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two float64 vectors; NaN when either has no variance."""
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    if sxx == 0.0 or syy == 0.0:
        return math.nan
    return float(dx @ dy) / math.sqrt(sxx * syy)


def _market_order(ids: np.ndarray, scores: np.ndarray, key: np.uint64,
                  assortativity: float) -> np.ndarray:
    """One sex's market entrants in matching order: ascending ``a * r + (1 - a) * v``.

    r is the score rank scaled to [0, 1] with 0 = highest score (equal scores: lower id first),
    so at high assortativity the best-scored women meet the best-scored men and the
    lowest-scored people of the longer side stay single. v is the uniform at ``(i << 8) + 2``.
    """
    m = len(ids)
    if m == 0:
        return ids
    by_score = np.lexsort((ids, -scores[ids]))  # descending score, then ascending id
    rank = np.empty(m, dtype=np.float64)
    rank[by_score] = np.arange(m, dtype=np.float64) / max(m - 1, 1)
    v = uniforms_at(key, (ids.astype(np.uint64) << np.uint64(8)) + np.uint64(2))
    order_key = assortativity * rank + (1.0 - assortativity) * v
    return ids[np.lexsort((ids, order_key))]


def rematch_partners(partner: np.ndarray, scores: np.ndarray, sex: np.ndarray, eligible: np.ndarray,
                     key: np.uint64, breakup: float, meet: float,
                     assortativity: float) -> tuple[np.ndarray, int, int]:
    """One day of the partner market: some couples break up, some singles pair off by score.

    Each couple, handled once by its lower id i, breaks up with probability ``breakup`` (draw at
    ``i << 8``). Then each eligible single i (including those who just broke up) enters the
    market with probability ``meet`` (draw at ``(i << 8) + 1``). Women and men in the market are
    each ordered by ``assortativity * r + (1 - assortativity) * v`` (r: score rank among that
    sex's entrants scaled to [0, 1], 0 = highest score, equal scores by id; v: the uniform at
    ``(i << 8) + 2``), and the k-th woman is matched with the k-th man; the longer side's extra
    entrants stay single. assortativity 0 is random matching, 1 is perfectly score-sorted.

    Args:
        partner: (n,) int32 partner id, -1 = none; symmetric (``partner[partner[i]] == i``).
        scores: (n,) int64 scores in milli-points.
        sex: (n,) uint8, 0 = woman, 1 = man (``population.SEXES``).
        eligible: (n,) bool, who may enter the market (e.g. adults at home).
        key: the day's random stream key.
        breakup: chance per couple per day of breaking up, in [0, 1].
        meet: chance per eligible single per day of entering the market, in [0, 1].
        assortativity: weight of score rank against chance in the matching order, in [0, 1].

    Returns:
        (new partner array int32 (n,), couples broken up, couples formed).
    """
    for name, value in (("breakup", breakup), ("meet", meet), ("assortativity", assortativity)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]; got {value}")
    out = np.array(partner, dtype=np.int32, copy=True)
    n = len(out)
    for name, arr in (("scores", scores), ("sex", sex), ("eligible", eligible)):
        if np.shape(arr) != (n,):
            raise ValueError(f"{name} must have shape ({n},); got {np.shape(arr)}")
    scores = np.asarray(scores)
    ids = np.arange(n, dtype=np.int64)
    has = np.flatnonzero(out >= 0)
    if np.any(out >= n) or np.any(out[out[has]] != has) or np.any(out[has] == has):
        raise ValueError("partner must be symmetric (partner[partner[i]] == i) with no self partner")
    counters = ids.astype(np.uint64) << np.uint64(8)

    lower = np.flatnonzero(out > ids)  # each couple once, by its lower id
    u_break = uniforms_at(key, counters[lower])
    broken = lower[u_break < breakup]
    out[out[broken]] = NO_PARTNER
    out[broken] = NO_PARTNER

    single = np.flatnonzero((out == NO_PARTNER) & np.asarray(eligible, dtype=bool))
    entrants = single[uniforms_at(key, counters[single] + np.uint64(1)) < meet]
    sex_of = np.asarray(sex)[entrants]
    women = _market_order(entrants[sex_of == 0], scores, key, assortativity)
    men = _market_order(entrants[sex_of == 1], scores, key, assortativity)
    pairs = min(len(women), len(men))
    out[women[:pairs]] = men[:pairs]
    out[men[:pairs]] = women[:pairs]
    return out, int(len(broken)), int(pairs)


# ----------------------------------------------------------------------------- statistics


def fragmentation(layer: CSR) -> tuple[int, int, int]:
    """(components among citizens with a tie, size of the largest, citizens without a tie):
    the part of :func:`tie_stats` that depends on the ties alone (callers may cache it)."""
    degree = layer.degree
    if layer.n and degree.max() <= 1:  # couples (the partner layer): no search needed
        pairs = layer.n_ties // 2
        return pairs, 2 if pairs else 0, layer.n - layer.n_ties
    n_components, largest, isolated = kernels.network.components(layer.indptr, layer.indices)
    return int(n_components), int(largest), int(isolated)


def tie_stats(layer: CSR, tier: np.ndarray, n_tiers: int, scores: np.ndarray,
              shape: tuple[int, int, int] | None = None) -> dict[str, float]:
    """Summary of one tie layer: density, isolation, sorting by tier and score, fragmentation.

    Args:
        layer: symmetric tie layer over n citizens.
        tier: (n,) uint8 tier per citizen, values below ``n_tiers``.
        n_tiers: number of tiers.
        scores: (n,) int64 scores in milli-points.
        shape: :func:`fragmentation` of the layer if already known.

    Returns:
        ``mean_degree``: directed entries / n (ties per citizen).
        ``isolated_share``: share of citizens with no tie.
        ``tier_assortativity``: Newman's (2003, "Mixing patterns in networks") categorical
        assortativity r = (sum_t e_tt - sum_t a_t b_t) / (1 - sum_t a_t b_t), where e_st is
        the share of entries from tier s to tier t and a, b its row and column sums (1 = ties
        only within tiers, 0 = as if random, negative = ties mostly across tiers); NaN
        without ties or when all entries join one tier.
        ``score_correlation``: Pearson correlation of scores[row] and scores[col] over the
        entries; NaN without ties or variance.
        ``components``: connected components among citizens with at least one tie.
        ``largest_component_share``: size of the largest component / n.
    """
    n = layer.n
    tier = np.ascontiguousarray(tier, dtype=np.uint8)
    if tier.shape != (n,) or np.shape(scores) != (n,):
        raise ValueError(f"tier and scores must have shape ({n},)")
    if n and int(tier.max()) >= n_tiers:
        raise ValueError(f"tier values must be below n_tiers={n_tiers}; got {int(tier.max())}")
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    same, a, b, sxx, syy, sxy = kernels.network.entry_moments(layer.indptr, layer.indices, tier,
                                                              n_tiers, scores)
    n_components, largest, isolated = fragmentation(layer) if shape is None else shape

    e = layer.n_ties
    # exact integer arithmetic on counts: sum_t e_tt = same / E, a_t = A_t / E, b_t = B_t / E,
    # so r = (E * same - sum_t A_t B_t) / (E^2 - sum_t A_t B_t)
    ab = sum(int(x) * int(y) for x, y in zip(a, b, strict=True))
    denominator = e * e - ab
    assortativity = (e * int(same) - ab) / denominator if e and denominator else math.nan
    correlation = sxy / math.sqrt(sxx * syy) if sxx > 0.0 and syy > 0.0 else math.nan
    return {
        "mean_degree": e / n if n else math.nan,
        "isolated_share": isolated / n if n else math.nan,
        "tier_assortativity": float(assortativity),
        "score_correlation": float(correlation),
        "components": float(n_components),
        "largest_component_share": largest / n if n else math.nan,
    }


def partner_stats(partner: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """How many are partnered and how alike partners' scores are.

    Args:
        partner: (n,) int32 partner id, -1 = none; symmetric.
        scores: (n,) int64 scores in milli-points.

    Returns:
        ``partnered_share``: share of citizens with a partner.
        ``partner_score_correlation``: Pearson correlation of partners' scores, each couple
        counted in both orders (so it is symmetric); NaN with fewer than 2 couples or no
        variance.
    """
    partner = np.asarray(partner)
    n = len(partner)
    has = np.flatnonzero(partner >= 0)
    share = len(has) / n if n else math.nan
    if len(has) < 4:  # fewer than 2 couples
        return {"partnered_share": share, "partner_score_correlation": math.nan}
    x = np.asarray(scores, dtype=np.float64)
    return {"partnered_share": share,
            "partner_score_correlation": _pearson(x[has], x[partner[has]])}


def group_stats(layer: CSR, tier: np.ndarray, group: np.ndarray, n_groups: int
                ) -> dict[str, np.ndarray]:
    """Ties of each group's members, float64 (G,) each: ``mean_degree`` (ties per member),
    ``isolated_share`` (members without a tie) and ``same_tier_share`` (share of their ties
    to someone of their own tier; NaN without ties)."""
    members, entries, same, alone = kernels.network.by_group(layer.indptr, layer.indices, tier,
                                                             group, n_groups)
    count = np.maximum(members, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        same_share = np.where(entries > 0, same / np.maximum(entries, 1), np.nan)
    return {"mean_degree": entries / count, "isolated_share": alone / count,
            "same_tier_share": same_share}
