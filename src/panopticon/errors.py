"""Errors a user can fix. The CLI turns these into a clear message and exit code 2."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file.

    Attributes:
        file: path of the file, as given.
        line: 1-based line (0 when unknown).
        column: 1-based column (0 when unknown).
        path: dotted key path, e.g. ``policy.tiers[2].min``.
        message: what was expected and what was found.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column}"
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"

    def to_dict(self) -> dict:
        """The problem as JSON data: ``line``, ``column`` and ``key`` are null when unknown."""
        return {"line": self.line or None, "column": self.column or None,
                "key": self.path or None, "message": self.message}


class UserError(Exception):
    """Bad input from the user: a missing file, an invalid scenario, an unknown run."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems = list(problems or [])
        super().__init__(message)

    @property
    def summary(self) -> str:
        """The message without the problems (``invalid scenario``)."""
        return super().__str__()

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  {p}" for p in self.problems)

    def to_dicts(self) -> list[dict]:
        """Every problem as JSON data (see :meth:`Problem.to_dict`); an error without listed
        problems (a missing file) is one problem with its message and no position."""
        if self.problems:
            return [p.to_dict() for p in self.problems]
        return [{"line": None, "column": None, "key": None, "message": self.summary}]


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a stored run: the run folder is marked ``interrupted`` and can be resumed
    (or, with ``complete``, the signal came during the final write and the run completed)."""

    def __init__(self, path, days_completed: int, complete: bool = False):
        self.path = path
        self.days_completed = days_completed
        self.complete = complete
        """The signal came during the final write, which finished: the run is complete."""
        super().__init__(f"interrupted after the run was completed in {path}" if complete else
                         f"interrupted; {days_completed} days are checkpointed in {path}")


class ShardFailed(Exception):
    """A shard's Ray worker died or failed during a sharded run (``panopticon.shards``): the
    run stops at its last checkpoint, marked failed."""
