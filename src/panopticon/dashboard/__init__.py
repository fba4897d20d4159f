"""The live dashboard: ``panopticon dashboard`` serves a Streamlit app on this machine.

Three pages: **Explore** (pick a scenario, move its knobs, run it and watch the charts as
days complete; every run is stored like any other and reproducible from its YAML), **Runs**
(browse the store, open a run: the report's charts, harms by any attribute with their
intervals, the audit verdict, a citizen's story) and **Compare** (runs side by side, or a
stored sweep: a metric against the swept setting with its confidence band).

The dashboard calls the same API as the command line (:mod:`panopticon.api`, the metrics,
report, explain, audit and sweeps modules); it reads the store without writing to it (only a
run started on the Explore page adds a run, through :func:`panopticon.run`), and offers no
SQL. Nothing outside this package imports it except the ``dashboard`` command, lazily. The
logic (which knobs a scenario has, applying them, the live run) lives in plain modules
(:mod:`.knobs`, :mod:`.live`, :mod:`.views`) that work without Streamlit.
"""

from pathlib import Path

APP = Path(__file__).with_name("app.py")
"""The Streamlit script (``streamlit run`` takes a file)."""

STORE_ENV = "PANOPTICON_DASHBOARD_STORE"
"""The environment variable that tells the app which run store to read (set by the command)."""
