"""The runs page (see :mod:`panopticon.dashboard.pages`)."""

from panopticon.dashboard.pages import runs

runs()
