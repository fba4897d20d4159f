"""The benchmark reference model (docs/presets/reference.md) written the way a Mesa 3 user would.

One :class:`Citizen` agent per citizen, activated in random order each day with
``model.agents.shuffle_do``; the weekly pull toward ties is synchronous (every citizen reads the
scores from before the pull, then all apply); scores are plain floats. Nothing here imports
panopticon: this is the independent implementation that panopticon's ``reference`` preset is
checked and timed against.

A day (``ReferenceModel.step``; ``model.steps`` counts days from 1):

1. every citizen draws its true events, Poisson(rate) per behaviour type, keeps each with
   probability 0.7 (observed) and adds the points of the observed ones to its score; with
   probability 0.001 it also makes the sensors emit one false event of a random bad type
   (0 or 1), pinned on a uniformly drawn citizen;
2. on days 7, 14, ...: ``score += 0.05 * (mean score of ties - score)``, synchronously;
3. every citizen takes its tier from its score; citizens in D scale their bad rates by 0.98;
4. the day's mean score and tier shares are collected (``mesa.DataCollector``).

Run as a script for one timed run: ``python benchmarks/reference_mesa.py --citizens 10000``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import mesa
import numpy as np

START = 1000.0
POINTS = np.array([-5.0, -2.0, 1.0, 3.0])
"""Points per observed event of behaviour type 0..3 (types 0 and 1 are bad)."""
BAD_TYPES = np.array([0, 1])
RATE_LOW, RATE_HIGH = 0.01, 0.2
DETECTION = 0.7
FALSE_EVENT_P = 0.001
MEAN_DEGREE, REWIRE = 10, 0.1
PULL_WEIGHT, PULL_EVERY = 0.05, 7
TIERS = (("A", 1050.0), ("B", 970.0), ("C", 850.0), ("D", -np.inf))
DETERRED_TIER, DETERRENCE = "D", 0.98


def small_world_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Undirected ties (a[e], b[e]) of a Watts-Strogatz small world.

    A ring lattice of mean degree :data:`MEAN_DEGREE` (each citizen tied to the next
    ``MEAN_DEGREE // 2`` along the ring); each lattice tie's far end is rewired with probability
    :data:`REWIRE` to a uniformly drawn citizen other than the near end. As in the reference
    model, a rewired tie may repeat an existing one (it then counts twice in the mean).
    """
    half = min(MEAN_DEGREE // 2, (n - 1) // 2)
    if n < 2 or half < 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a = np.repeat(np.arange(n), half)
    b = (a + np.tile(np.arange(1, half + 1), n)) % n
    rewired = rng.random(len(a)) < REWIRE
    far = rng.integers(0, n - 1, size=int(rewired.sum()))
    b[rewired] = far + (far >= a[rewired])  # uniform over everyone but the near end
    return a, b


class Citizen(mesa.Agent):
    """One citizen: a score, a tier, four daily behaviour rates and a list of ties."""

    def __init__(self, model: ReferenceModel, rates: np.ndarray) -> None:
        super().__init__(model)
        self.rates = np.array(rates, dtype=np.float64)
        self.score = START
        self.tier = tier_of(START)
        self.ties: list[Citizen] = []
        self.pulled = START

    def behave(self) -> None:
        """Today's true events; the observed ones score, and the sensors may invent one."""
        rng = self.model.rng
        counts = rng.poisson(self.rates)
        if counts.any():
            self.score += float(rng.binomial(counts, DETECTION) @ POINTS)
        if self.random.random() < FALSE_EVENT_P:
            victim = self.random.choice(self.model.citizens)
            victim.score += float(POINTS[BAD_TYPES[self.random.randrange(len(BAD_TYPES))]])

    def compute_pull(self) -> None:
        """First half of the synchronous pull: the new score from the ties' current scores."""
        if self.ties:
            mean = sum(t.score for t in self.ties) / len(self.ties)
            self.pulled = self.score + PULL_WEIGHT * (mean - self.score)
        else:
            self.pulled = self.score

    def apply_pull(self) -> None:
        """Second half of the synchronous pull."""
        self.score = self.pulled

    def classify_and_respond(self) -> None:
        """End of day: take the tier; deterrence in tier D."""
        self.tier = tier_of(self.score)
        if self.tier == DETERRED_TIER:
            self.rates[BAD_TYPES] *= DETERRENCE


def tier_of(score: float) -> str:
    """The tier of a score."""
    for name, floor in TIERS:
        if score >= floor:
            return name
    raise AssertionError("the last tier takes every score")


def tier_shares(model: ReferenceModel) -> dict[str, float]:
    """Share of citizens in each tier."""
    counts = Counter(model.agents.get("tier"))
    return {name: counts[name] / len(model.citizens) for name, _ in TIERS}


class ReferenceModel(mesa.Model):
    """The reference model: ``n`` citizens on a small world; one ``step`` is one day."""

    def __init__(self, n: int, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        rates = self.rng.uniform(RATE_LOW, RATE_HIGH, size=(n, len(POINTS)))
        self.citizens: list[Citizen] = list(Citizen.create_agents(self, n, rates=list(rates)))
        a, b = small_world_pairs(n, self.rng)
        for i, j in zip(a.tolist(), b.tolist(), strict=True):
            self.citizens[i].ties.append(self.citizens[j])
            self.citizens[j].ties.append(self.citizens[i])
        self.datacollector = mesa.DataCollector(model_reporters={
            "mean_score": lambda m: m.agents.agg("score", np.mean),
            "tier_shares": tier_shares,
        })

    def step(self) -> None:
        """One day."""
        self.agents.shuffle_do("behave")
        if self.steps % PULL_EVERY == 0:
            self.agents.do("compute_pull")
            self.agents.do("apply_pull")
        self.agents.do("classify_and_respond")
        self.datacollector.collect(self)


def run_mesa(n: int, days: int, seed: int) -> dict:
    """Build and run the model.

    Returns:
        ``mean_score``, ``score_sd`` (across citizens), ``shares`` (tier -> fraction) at the end,
        ``setup_s`` (building the model) and ``loop_s`` (the day loop), wall seconds.
    """
    t0 = time.perf_counter()
    model = ReferenceModel(n, seed=seed)
    t1 = time.perf_counter()
    for _ in range(days):
        model.step()
    t2 = time.perf_counter()
    scores = np.asarray(model.agents.get("score"))
    return {"mean_score": float(scores.mean()), "score_sd": float(scores.std()),
            "shares": tier_shares(model), "setup_s": t1 - t0, "loop_s": t2 - t1}


def main() -> None:
    """One run, printed as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--citizens", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run_mesa(args.citizens, args.days, args.seed)))


if __name__ == "__main__":
    main()
