"""panopticon: a laboratory for social credit systems, run on synthetic societies.

The public API: :func:`load` a scenario (YAML path or preset name), :func:`run` it (in memory
or into a run store), :func:`open_run` a stored run, :func:`resume` an interrupted one.
"""

from panopticon.api import RunResult, load, open_run, resume, run
from panopticon.scenario import ScenarioSpec, load_scenario

__all__ = ["RunResult", "ScenarioSpec", "load", "load_scenario", "open_run", "resume", "run"]
