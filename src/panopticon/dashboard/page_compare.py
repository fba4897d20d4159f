"""The compare page (see :mod:`panopticon.dashboard.pages`)."""

from panopticon.dashboard.pages import compare

compare()
