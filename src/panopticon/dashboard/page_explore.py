"""The explore page (see :mod:`panopticon.dashboard.pages`)."""

from panopticon.dashboard.pages import explore

explore()
