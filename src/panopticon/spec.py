"""Shared building blocks of specification models: strict frozen models and distributions."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class Strict(BaseModel):
    """Frozen; every unknown key is an error (typos are the commonest mistake); no inf or nan."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Constant(Strict):
    """Every citizen gets the same value."""

    kind: Literal["constant"]
    value: float


class Normal(Strict):
    """Normal distribution, optionally clipped to [min, max]."""

    kind: Literal["normal"]
    mean: float
    sd: Annotated[float, Field(gt=0)]
    min: float | None = None
    max: float | None = None


class LogNormal(Strict):
    """Log-normal distribution given by its median and the sd of the log (sigma)."""

    kind: Literal["lognormal"]
    median: Annotated[float, Field(gt=0)]
    sigma: NonNegative
    min: float | None = None
    max: float | None = None


class Uniform(Strict):
    """Uniform on [low, high)."""

    kind: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must not be below low ({self.low})")
        return self


class Table(Strict):
    """An empirical table: values with weights (need not sum to 1; they are normalised)."""

    kind: Literal["table"] = "table"
    values: Annotated[list[float | str], Field(min_length=1)]
    weights: Annotated[list[NonNegative], Field(min_length=1)]

    @model_validator(mode="after")
    def _matching(self):
        if len(self.values) != len(self.weights):
            raise ValueError(
                f"values has {len(self.values)} entries but weights has {len(self.weights)}")
        if not all(math.isfinite(w) for w in self.weights):
            raise ValueError("weights must be finite numbers")
        if sum(self.weights) <= 0:
            raise ValueError("weights must not all be zero")
        if len({str(v) for v in self.values}) != len(self.values):
            raise ValueError("values must be distinct")
        return self

    def labels(self) -> list[str]:
        """The values as category names."""
        return [str(v) for v in self.values]


Distribution = Annotated[Constant | Normal | LogNormal | Uniform | Table,
                         Field(discriminator="kind")]


class ByCategory(Strict):
    """A different distribution for each category of a citizen attribute (e.g. income by group)."""

    by: Literal["group", "sex", "region", "residency"]
    values: dict[str, Distribution]


def clip_bounds(dist) -> tuple[float | None, float | None]:
    """(min, max) of a distribution, None where unbounded."""
    return getattr(dist, "min", None), getattr(dist, "max", None)
