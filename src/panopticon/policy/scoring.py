"""Score, associate, classify: observations become integer score changes and tiers.

Scores are int64 milli-points. Every change is returned as ledger rows so the ledger is the
complete history: replaying it from the start score gives today's scores exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from panopticon import kernels
from panopticon.policy.schema import PolicySpec, to_milli
from panopticon.society.ties import CSR

PPM = kernels.scoring.PPM
"""Association weights are in parts per million."""
INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


ARRIVAL = "visitor arrival"
"""Ledger label of a visitor's return to the start score on arrival."""


@dataclass(frozen=True)
class CompiledPolicy:
    """A :class:`PolicySpec`'s score, tiers and association resolved to integers.

    Attributes:
        rule_labels: names of ledger rules: the policy's rules, then association rules, then
            ``expired:<rule>`` for each policy rule, then ``formula``, ``abroad``, ``ratings``
            and ``appeal upheld`` (an appeal reversed the citizen's false entries), then
            ``visitor arrival`` (a visitor starting afresh: only in scenarios with visitors),
            then one ``manual by official <id>`` per insider.
        first_expiry_rule: ledger id of ``expired:<rule 0>``. formula_rule: ledger id of
            ``formula``.
        low, high: score bounds in milli-points.
        tier_names: highest first. tier_floor_desc: tier mins (milli), highest first, k-1 of them.
        association: (rule id, tie layer, weight in ppm, every_days) per association rule.
    """

    rule_labels: tuple[str, ...]
    first_expiry_rule: int
    formula_rule: int
    low: int
    high: int
    tier_names: tuple[str, ...]
    tier_floor_desc: np.ndarray
    association: tuple[tuple[int, str, int, int], ...]

    @classmethod
    def compile(cls, policy: PolicySpec, manual: tuple[str, ...] = (),
                visitors: bool = False) -> CompiledPolicy:
        """Resolve labels, bounds and tier floors; ``manual``: labels of manual adjustments
        (one per insider), after every other label; ``visitors``: the scenario has visitors
        (their arrivals are ledger rows)."""
        labels = _distinct([r.label for r in policy.rules])
        rule_labels = list(labels)
        assoc = []
        for a in policy.association:  # listed-ties rules are the runtime's (it knows the lists)
            if a.listed is None:
                assoc.append((len(labels), a.ties, round(a.weight * PPM), a.every_days))
            labels.append(a.label)
        first_expiry = len(labels)
        labels += [f"expired:{label}" for label in rule_labels]
        labels += ["formula", "abroad", "ratings", "appeal upheld",
                   *([ARRIVAL] if visitors else []), *manual]
        labels = _distinct(labels)  # a stored ledger names rules by label: one per rule
        s = policy.score
        floors = [to_milli(t.min) for t in policy.tiers[:-1]]
        return cls(tuple(labels), first_expiry, labels.index("formula"),
                   INT64_MIN if s.min is None else to_milli(s.min),
                   INT64_MAX if s.max is None else to_milli(s.max),
                   tuple(policy.tier_names), np.asarray(floors, dtype=np.int64),
                   tuple(assoc))


@dataclass(frozen=True)
class LedgerRows:
    """Score changes of one stage of one day (columns of equal length m).

    Attributes:
        citizen: int32. rule: int16 rule id. delta: int64 milli-points actually applied.
        observation: int64 run-wide observation id, ``day * 2**32 + index in the day``
            (-1 = not from an observation).
        truth: int8, 1 = the observation was true, 0 = false, -1 = not from an observation.
    """

    citizen: np.ndarray
    rule: np.ndarray
    delta: np.ndarray
    observation: np.ndarray
    truth: np.ndarray

    def __len__(self) -> int:
        return len(self.citizen)

    @staticmethod
    def empty() -> LedgerRows:
        """No rows."""
        return _EMPTY

    @staticmethod
    def concat(parts: list[LedgerRows]) -> LedgerRows:
        """All rows of several stages, in order."""
        parts = [p for p in parts if len(p)] or parts[:1]
        if len(parts) == 1:
            return parts[0]
        return LedgerRows(*(np.concatenate([getattr(p, f) for p in parts])
                            for f in ("citizen", "rule", "delta", "observation", "truth")))


def _distinct(labels: list[str]) -> list[str]:
    """Ledger labels made unique: a second unnamed rule on ``red_light`` is ``red_light#2``."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def associate(day: int, policy: CompiledPolicy, ties: dict[str, CSR], scores: np.ndarray,
              frozen: np.ndarray | None = None, everyone: np.ndarray | None = None,
              first: int = 0) -> LedgerRows:
    """Pull scores toward ties' mean on the rules' schedule (day+1 a multiple of every_days).

    Each rule is synchronous: every citizen's pull reads the scores from before that rule.
    Several rules due the same day apply one after another, in policy order.

    A shard passes its citizens' ``scores`` and tie rows (citizens ``first`` on) and
    ``everyone``'s scores (every citizen's, as they stand before the first rule due), read
    for the ties; only one rule may then be due on a day.
    """
    parts = []
    for rule, layer, weight, every in policy.association:
        if (day + 1) % every:
            continue
        out = np.empty(len(scores), dtype=np.int64)
        csr = ties[layer]
        kernels.scoring.pull(csr.indptr, csr.indices, scores if everyone is None else everyone,
                             weight, policy.low, policy.high, out, np.int64(first))
        if frozen is not None:
            out[frozen] = 0  # exempt or frozen citizens are never pulled (they still pull)
        parts.append(apply_deltas(out, scores, rule))
    return LedgerRows.concat(parts) if parts else _EMPTY


def apply_deltas(delta: np.ndarray, scores: np.ndarray, rule: int) -> LedgerRows:
    """Add ``delta`` (int64 milli-points, shape (n,)) to the scores in place; the nonzero ones
    become ledger rows of ``rule``, not caused by an observation, in citizen order."""
    return LedgerRows(*kernels.scoring.apply_changes(delta, scores, rule))


def classify(policy: CompiledPolicy, scores: np.ndarray) -> np.ndarray:
    """Tier of each citizen (0 = highest), uint8 of shape (n,)."""
    return kernels.scoring.tiers(scores, policy.tier_floor_desc)


_EMPTY = LedgerRows(np.empty(0, np.int32), np.empty(0, np.int16), np.empty(0, np.int64),
                    np.empty(0, np.int64), np.empty(0, np.int8))
