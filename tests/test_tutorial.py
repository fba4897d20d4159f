"""The tutorial notebook (docs/tutorial.ipynb) runs from top to bottom as a reader would, and
its chart shows what its text says: biased cameras name the minority falsely more often."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "docs" / "tutorial.ipynb"


def test_the_tutorial_runs_and_its_chart_shows_the_biased_cameras_effect(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_CITIZENS", "4000")
    monkeypatch.setenv("TUTORIAL_DAYS", "60")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # after the reader's cells: what the chart is drawn from
    notebook.cells.append(nbformat.v4.new_code_cell(
        "print('CHART' + chart.data.to_json(orient='records'))"))
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    rows = json.loads(printed.split("CHART", 1)[1])
    rate = {(r["cameras"], r["social_group"]): r["per 1,000"] for r in rows}
    assert rate[("biased", "minority")] > rate[("fair", "minority")]
