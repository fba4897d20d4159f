"""The report: one self-contained, offline HTML page about one or several stored runs.

```python
from panopticon.report import build_report, write_charts
html = build_report(["runs/seed_article-s2026-..."])       # a str: the whole page
write_charts(["runs/..."], "charts/")                        # each chart as PNG and SVG
```
"""

from panopticon.report.build import SECTIONS, build_report, collect, write_charts, write_report

__all__ = ["SECTIONS", "build_report", "collect", "write_charts", "write_report"]
