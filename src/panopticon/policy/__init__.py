"""Policies: what the system scores and how (schema, presets, scoring)."""

from panopticon.policy.schema import PolicySpec

__all__ = ["PolicySpec"]
