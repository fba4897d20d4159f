"""Shared building blocks of specification models: strict frozen models and distributions."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

MAX_NUMBER = 1e15
"""Largest magnitude of a number in a distribution, a weight, a rate, a multiplier or a factor,
and of any value a distribution may draw (checked where the scenario is validated). Far above
anything meaningful (an income of a quadrillion a month), and far enough inside float64 (and the
float32 incomes) that products and sums over two billion citizens stay finite: a weight of
1e308 made the weights' sum overflow and put every citizen in the last category."""
MIN_MASS = 1e-9
"""Least probability a truncated distribution must keep between its min and max. Below it the
draws could only sit at a bound (or be noise of rounding), whatever the mean or median says."""

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, le=MAX_NUMBER)]
Number = Annotated[float, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]
"""A finite number within ±:data:`MAX_NUMBER`."""


class Strict(BaseModel):
    """Frozen and strict: unknown keys are errors (typos are the commonest mistake), no inf or
    nan, and no silent conversions (``"100"`` is not a number, ``yes`` is not ``true``).
    Numbers that only mean something far below a bound have it (:data:`MAX_NUMBER`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class Constant(Strict):
    """Every citizen gets the same value."""

    kind: Literal["constant"]
    value: Number


def _standard_mass(z_lo: float, z_hi: float) -> float:
    """P(z_lo <= Z <= z_hi) for a standard normal Z, accurate far out in either tail (by erfc,
    where 1 - erf would round to 0)."""
    r = math.sqrt(2.0)
    if z_lo >= 0:
        return 0.5 * (math.erfc(z_lo / r) - math.erfc(z_hi / r))
    if z_hi <= 0:
        return 0.5 * (math.erfc(-z_hi / r) - math.erfc(-z_lo / r))
    return 1.0 - 0.5 * (math.erfc(-z_lo / r) + math.erfc(z_hi / r))


class _Bounded(Strict):
    """A distribution truncated to [min, max] (either may be left out). The bounds must keep at
    least :data:`MIN_MASS` of the probability between them: a normal of mean 40 truncated to
    [200, 300] has none there, and every draw would sit at 200."""

    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _bounds_ordered(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        if (self.min is not None or self.max is not None) and self.mass() < MIN_MASS:
            raise ValueError(
                f"min and max leave almost none of the distribution between them (probability "
                f"{self.mass():.2g}, at least {MIN_MASS:g} is needed): every citizen would be "
                f"drawn at a bound; {self._hint()}")
        return self

    def mass(self) -> float:
        """The probability the untruncated distribution gives to [min, max]."""
        raise NotImplementedError

    def _hint(self) -> str:
        return "move them toward the centre, or use kind: constant"


class Normal(_Bounded):
    """Normal distribution, truncated to [min, max] when given."""

    kind: Literal["normal"]
    mean: Number
    sd: Annotated[float, Field(gt=0, le=MAX_NUMBER)]

    def mass(self) -> float:  # noqa: D102
        def z(bound: float | None, default: float) -> float:
            return default if bound is None else (bound - self.mean) / self.sd
        return _standard_mass(z(self.min, -math.inf), z(self.max, math.inf))

    def _hint(self) -> str:
        return f"move them toward the mean ({self.mean:g}), or use kind: constant"


class LogNormal(_Bounded):
    """Log-normal distribution given by its median and the sd of the log (sigma)."""

    kind: Literal["lognormal"]
    median: Annotated[float, Field(gt=0, le=MAX_NUMBER)]
    sigma: NonNegative

    def mass(self) -> float:  # noqa: D102
        lo = -math.inf if self.min is None or self.min <= 0 else math.log(self.min)
        hi = math.inf if self.max is None else (math.log(self.max) if self.max > 0 else -math.inf)
        centre = math.log(self.median)
        if self.sigma == 0:  # all the probability at the median
            return 1.0 if lo <= centre <= hi else 0.0
        return _standard_mass((lo - centre) / self.sigma, (hi - centre) / self.sigma)

    def _hint(self) -> str:
        positive = " (a log-normal's values are positive)" if self.max is not None \
            and self.max <= 0 else ""
        return f"move them toward the median ({self.median:g}){positive}, or use kind: constant"


class Uniform(Strict):
    """Uniform on [low, high)."""

    kind: Literal["uniform"]
    low: Number
    high: Number

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must not be below low ({self.low})")
        return self


class Table(Strict):
    """An empirical table of categories: values with weights (normalised; need not sum to 1)."""

    kind: Literal["table"] = "table"
    values: Annotated[list[str | Number], Field(min_length=1)]
    weights: Annotated[list[NonNegative], Field(min_length=1)]
    """Each at most :data:`MAX_NUMBER`, so that their sum is finite."""

    @model_validator(mode="after")
    def _matching(self):
        if len(self.values) != len(self.weights):
            raise ValueError(
                f"values has {len(self.values)} entries but weights has {len(self.weights)}")
        if sum(self.weights) <= 0:
            raise ValueError("weights must not all be zero")
        if len({str(v) for v in self.values}) != len(self.values):
            raise ValueError("values must be distinct")
        return self

    def labels(self) -> list[str]:
        """The values as category names."""
        return [str(v) for v in self.values]


class NumericTable(Table):
    """An empirical table of numbers: each value drawn with its weight."""

    values: Annotated[list[Number], Field(min_length=1)]


def _kind(value: object) -> str | None:
    """The distribution kind; a mapping with ``values`` and no ``kind`` is a table."""
    if isinstance(value, dict):
        if "by" in value:
            return "ByCategory"
        return value.get("kind", "table" if "values" in value else None)
    return "ByCategory" if isinstance(value, ByCategory) else getattr(value, "kind", None)


_KIND_ERROR = dict(custom_error_type="distribution_kind",
                   custom_error_message="expected a distribution: a mapping with kind: constant, "
                                        "normal, lognormal, uniform or table")

Distribution = Annotated[
    Annotated[Constant, Tag("constant")] | Annotated[Normal, Tag("normal")]
    | Annotated[LogNormal, Tag("lognormal")] | Annotated[Uniform, Tag("uniform")]
    | Annotated[NumericTable, Tag("table")],
    Discriminator(_kind, **_KIND_ERROR)]
"""A numeric distribution, drawn once per citizen."""


class ByCategory(Strict):
    """A different distribution for each category of a citizen attribute (e.g. income by group)."""

    by: Literal["group", "sex", "region", "residency"]
    values: dict[str, Distribution]


PerCategory = Annotated[
    Annotated[Constant, Tag("constant")] | Annotated[Normal, Tag("normal")]
    | Annotated[LogNormal, Tag("lognormal")] | Annotated[Uniform, Tag("uniform")]
    | Annotated[NumericTable, Tag("table")] | Annotated[ByCategory, Tag("ByCategory")],
    Discriminator(_kind, **_KIND_ERROR)]
"""A numeric distribution, or one per category of an attribute (``by: group``, ...)."""
