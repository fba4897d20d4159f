"""The report: one self-contained, offline HTML page about one or several stored runs.

```python
from panopticon.report import build_report, write_charts
html = build_report(["runs/seed_article-s2026-..."])       # a str: the whole page
write_charts(["runs/..."], "charts/")                        # each chart as PNG and SVG
```

:func:`findings` turns a run's numbers (:func:`facts_of`) into the sentences the page opens
with; :func:`run_labels` names runs by scenario and the settings that differ.
"""

from panopticon.report.build import (
    SECTIONS,
    build_report,
    collect,
    facts_of,
    findings,
    run_labels,
    write_charts,
    write_report,
)

__all__ = ["SECTIONS", "build_report", "collect", "facts_of", "findings", "run_labels",
           "write_charts", "write_report"]
