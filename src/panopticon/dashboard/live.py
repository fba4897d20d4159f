"""A run started from the dashboard: :func:`panopticon.run` (or :func:`panopticon.resume`) in
a background thread, storing the run like any other, with a progress sink that keeps each
day's headline numbers for the live charts and a stop that ends the run at the end of a day
as Ctrl-C does on the command line: the run is marked ``interrupted`` at its last checkpoint,
and ``panopticon run --resume`` (or the page's Resume) finishes it bit-identically.

No Streamlit here: the page polls :attr:`LiveRun.rows` while the thread runs.
"""

from __future__ import annotations

import atexit
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from panopticon.errors import RunInterrupted, UserError

#: daily numbers the live charts draw (plus every ``share_<tier>``)
KEEP = ("day", "mean_score", "median_score", "false_observations", "citizens_false_today",
        "citizens_ever_false", "refused", "wrongful_refusals", "attempts")

RUNNING, COMPLETE, INTERRUPTED, FAILED, STOPPED = (
    "running", "complete", "interrupted", "failed", "stopped before storing")

_ALL: list[LiveRun] = []


class _Sink:
    """The run's progress sink: keeps the day's numbers, then stops if asked."""

    def __init__(self, job: LiveRun):
        self.job = job

    def day(self, record, state) -> None:
        job = self.job
        m = record.metrics
        row = {k: m[k] for k in KEEP if k in m}
        row.update({k: v for k, v in m.items() if k.startswith("share_")})
        opp = record.opportunities
        if opp is not None and job.groups:
            from panopticon.sanctions import MEASURES

            counts = np.asarray(opp.counts).reshape(len(MEASURES), -1, len(job.groups)).sum(axis=1)
            for j, name in enumerate(MEASURES):
                if name in ("attempts", "refused", "wrongful"):
                    for g, label in enumerate(job.groups):
                        row[f"{name}:{label}"] = int(counts[j, g])
        job.rows.append(row)  # appending to a list is atomic: the page reads it meanwhile
        job.days_done = record.day + 1
        if job.stop_requested.is_set():
            raise KeyboardInterrupt  # the API marks the run interrupted at its checkpoint

    def checkpoint(self, state) -> None:
        pass


class LiveRun:
    """One run in a background thread.

    Attributes:
        rows: one dict per day done (see :data:`KEEP`; ``refused:<group>``,
            ``wrongful:<group>`` and ``attempts:<group>`` per group when the scenario has
            opportunities).
        status: ``running``, then ``complete``, ``interrupted``, ``failed`` or ``stopped
            before storing``. path: the run folder once known. error: what went wrong.
        days: days in all; days_done: days simulated so far (this session).
    """

    def __init__(self, spec: Any = None, store: str | Path | None = None,
                 settings: dict | None = None, resume: str | Path | None = None,
                 threads: int | None = None):
        from panopticon.store.local import read_manifest, read_scenario

        if (spec is None) == (resume is None):
            raise ValueError("give a scenario to run or a run folder to resume")
        self.resume_path = Path(resume) if resume is not None else None
        if self.resume_path is not None:
            if not self.resume_path.is_dir():
                raise UserError(f"{resume}: no such run folder")
            manifest = read_manifest(self.resume_path)
            spec = read_scenario(self.resume_path, manifest)
            self.first_day = int(manifest.get("days_completed") or 0)
        else:
            self.first_day = 0
        self.spec, self.store, self.settings, self.threads = spec, store, settings, threads
        self.groups = list(spec.society.group.labels()) if spec.opportunities else []
        self.tiers = list(spec.policy.tier_names)
        self.days = spec.run.days
        self.rows: list[dict] = []
        self.days_done = 0
        self.status = RUNNING
        self.path: Path | None = self.resume_path
        self.error: str | None = None
        self.seconds: float | None = None
        self.stop_requested = threading.Event()
        self._thread = threading.Thread(target=self._main, name="panopticon-live-run",
                                        daemon=True)

    def start(self) -> LiveRun:
        from panopticon.resources import check_memory

        check_memory(self.spec)
        _ALL.append(self)
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def _main(self) -> None:
        import panopticon as pc

        sink = _Sink(self)
        try:
            if self.resume_path is not None:
                result = pc.resume(self.resume_path, progress=sink, threads=self.threads)
            else:
                result = pc.run(self.spec, out=self.store, progress=sink, threads=self.threads,
                                settings=self.settings)
            self.path, self.status = result.path, COMPLETE
        except RunInterrupted as exc:
            self.path = Path(exc.path)
            self.status = COMPLETE if exc.complete else INTERRUPTED
        except KeyboardInterrupt:
            self.status = STOPPED
        except UserError as exc:
            self.status, self.error = FAILED, str(exc)
        except Exception as exc:  # the API marked the run failed; say why on the page
            self.status, self.error = FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            self.seconds = time.perf_counter() - self.started

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop at the end of the current day (the run stays resumable)."""
        self.stop_requested.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread; whether it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


@atexit.register
def _stop_all() -> None:
    """When the server stops, runs still going stop at the end of their day, interrupted and
    resumable, rather than being cut off in the middle of a write."""
    for job in _ALL:
        job.stop()
    for job in _ALL:
        job.wait(60)
