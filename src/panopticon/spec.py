"""Shared building blocks of specification models: strict frozen models and distributions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class Strict(BaseModel):
    """Frozen and strict: unknown keys are errors (typos are the commonest mistake), no inf or
    nan, and no silent conversions (``"100"`` is not a number, ``yes`` is not ``true``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class Constant(Strict):
    """Every citizen gets the same value."""

    kind: Literal["constant"]
    value: float


class _Bounded(Strict):
    """A distribution truncated to [min, max] (either may be left out)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds_ordered(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class Normal(_Bounded):
    """Normal distribution, truncated to [min, max] when given."""

    kind: Literal["normal"]
    mean: float
    sd: Annotated[float, Field(gt=0)]


class LogNormal(_Bounded):
    """Log-normal distribution given by its median and the sd of the log (sigma)."""

    kind: Literal["lognormal"]
    median: Annotated[float, Field(gt=0)]
    sigma: NonNegative


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
    """An empirical table of categories: values with weights (normalised; need not sum to 1)."""

    kind: Literal["table"] = "table"
    values: Annotated[list[str | float], Field(min_length=1)]
    weights: Annotated[list[NonNegative], Field(min_length=1)]

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

    values: Annotated[list[float], Field(min_length=1)]


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
