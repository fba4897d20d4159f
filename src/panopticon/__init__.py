"""panopticon: a laboratory for social credit systems, run on synthetic societies.

The public API: :func:`load` a scenario (YAML path or preset name), :func:`run` it (in memory
or into a run store), :func:`open_run` a stored run, :func:`resume` an interrupted one.
"""

import os

# Numba's OpenMP worker threads spin about 300,000 times before sleeping. On a machine where
# another process holds a core, each parallel kernel then waits for a descheduled spinner and
# a day can take 3x longer than on one thread; a short spin keeps the parallel speed-up when
# the machine is idle and loses nothing when it is busy. A value the user set wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from panopticon.api import RunResult, load, open_run, resume, run  # noqa: E402
from panopticon.scenario import ScenarioSpec, load_scenario  # noqa: E402

__all__ = ["RunResult", "ScenarioSpec", "load", "load_scenario", "open_run", "resume", "run"]
