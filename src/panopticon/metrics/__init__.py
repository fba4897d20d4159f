"""Metrics: pure functions of daily records and state snapshots (no I/O)."""
