"""Metrics: pure functions of daily records and state snapshots (no I/O).

Modules: :mod:`~panopticon.metrics.daily` (each day's numbers), :mod:`~panopticon.metrics.run`
(a finished run's metrics and summary), :mod:`~panopticon.metrics.lending` (lenders'
selection rates, true-positive rates, profit and score changes per category),
:mod:`~panopticon.metrics.intervals` and :mod:`~panopticon.metrics.describe`.
"""
