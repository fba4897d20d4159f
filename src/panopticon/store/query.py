"""DuckDB over every run under a root folder: views ``runs``, ``citizens`` and one per table
of :data:`panopticon.store.local.TABLES` (``daily``, ``events``, ``ledger``, ``observations``,
``lists``, ``opportunities``, ``refusals``, ``appeals``, ``manipulations``, ``behaviour``,
``network``, ``network_groups``, ``ledger_chain``, ``digests``), each with a ``run_id`` column.

A run's ``run_id`` is its folder's name under the root (how it is addressed on the command
line), in ``runs`` and in every table alike, also for a run copied or linked under another
name. The tables are exactly the files each run's manifest lists, given to DuckDB as Arrow
datasets built from explicit file lists: no path is ever written into SQL text or read as a
glob pattern, whatever characters the root or a run folder's name holds.

Other modules that hand a run's files to DuckDB's ``read_parquet`` pass them as a query
parameter through :func:`parquet_files`, which escapes the glob characters DuckDB would
otherwise expand in each path.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from panopticon.errors import UserError
from panopticon.store.local import TABLES, check_files, list_runs, table_parts

RUNS_COLUMNS = ("run_id", "status", "scenario", "seed", "citizens", "days", "days_completed",
                "created", "scenario_digest", "code_version", "path")
"""The columns of the ``runs`` view."""

READ_ONLY = (duckdb.StatementType.SELECT,)
"""Statement types :func:`read_only` lets through (``SELECT``, ``WITH``, ``FROM``, ``VALUES``,
``DESCRIBE``, ``SHOW``, ``SUMMARIZE`` all parse as ``SELECT``)."""
_KINDS = {"LOAD": "INSTALL or LOAD", "MULTI": "a statement that runs several (such as PIVOT)",
          "VARIABLE_SET": "SET VARIABLE", "COPY_DATABASE": "COPY FROM DATABASE",
          "MERGE_INTO": "MERGE INTO"}

_LOCKDOWN = (
    # DuckDB reads no file and no URL by itself any more: the views scan Arrow datasets.
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    # no Python variables of the calling frames as tables (only the registered views)
    "SET python_enable_replacements = false",
    # last: no later statement can change any of the above
    "SET lock_configuration = true",
)


def parquet_files(paths: Iterable[Path | str]) -> list[str]:
    """``paths`` as DuckDB's ``read_parquet`` must get them to read exactly those files:
    absolute, with the glob characters ``*``, ``?`` and ``[`` escaped as ``[*]``, ``[?]`` and
    ``[[]`` (DuckDB expands a glob in every entry of a file list). Pass the list as a query
    parameter (``read_parquet($files)``), never formatted into SQL text."""
    return ["".join(f"[{c}]" if c in "*?[" else c for c in str(Path(p).absolute()))
            for p in paths]


def connect(root: str | Path, unsafe: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over the runs under ``root``.

    ``runs`` lists every run (its manifest's main fields, ``run_id`` being the run folder's
    name); the table views hold the rows of every run that has that table, each row with the
    ``run_id`` of its run. A table no run has yet has no view.

    By default the connection is locked down once the views exist: DuckDB's own file and
    network access is off (no ``read_csv``/``read_parquet`` of other files, no ``COPY ... TO``,
    no ``ATTACH`` of a database file, no ``INSTALL``/``LOAD`` of extensions, no extension
    auto-loading, no Python variables as tables), and the configuration is locked, so SQL
    run on it cannot turn any of that back on. Run user SQL through :func:`read_only` to also
    allow only one read-only statement per call (what ``panopticon query`` does). With
    ``unsafe=True`` the connection is left as DuckDB makes it (full access, for a local user
    who wants to export or join other files; ``panopticon query --unsafe``).

    Raises:
        UserError: a run under ``root`` is damaged or its manifest is corrupt (named, with
            the problem), or one of its Parquet files is unreadable.

    Example:
        ``read_only(connect("runs"), "select run_id, max(mean_score) from daily group by 1")``
    """
    root = Path(root)
    manifests = list_runs(root)
    for m in manifests:
        if m.get("status") in ("corrupt", "damaged"):
            raise UserError(f"{m['path']}: run {m['run_id']!r} is {m['status']} ({m['note']}); "
                            f"`panopticon audit {m['path']}` says what is wrong; move it out of "
                            f"{root} to query the other runs")
    con = duckdb.connect()
    con.register("runs", runs_table(manifests))
    try:
        for table in TABLES:
            files = [(m["run_id"], p) for m in manifests
                     for p in table_parts(Path(m["path"]), table, m)]
            if files:
                con.register(table, _dataset(files))
        citizens = [(m["run_id"], Path(m["path"]) / "citizens.parquet") for m in manifests
                    if "citizens.parquet" in m["files"]]
        if citizens:
            con.register("citizens", _dataset(citizens))
    except UserError as exc:
        altered = altered_files(root)  # a file of the right size, altered: name it
        if altered:
            raise UserError(f"{altered[0]}: the run is damaged or tampered with (`panopticon "
                            f"audit` lists what is wrong); {exc}") from None
        raise
    if not unsafe:
        for setting in _LOCKDOWN:
            con.execute(setting)
    return con


def runs_table(manifests: list[dict]) -> pa.Table:
    """The ``runs`` view: :data:`RUNS_COLUMNS`, the fingerprint, then one column per setting
    any run records (a sweep's grid point: ``"sensors.cameras.misattribution"``, quoted in
    SQL), null for runs without it; a setting whose values mix types is text."""
    keys = sorted({k for m in manifests for k in (m.get("settings") or {})})
    columns = {k: pa.array([m.get(k) for m in manifests]) for k in RUNS_COLUMNS} if manifests \
        else {k: pa.array([], pa.string()) for k in RUNS_COLUMNS}
    columns["fingerprint"] = pa.array([(m.get("result") or {}).get("fingerprint")
                                       for m in manifests], pa.string())
    for key in keys:
        values = [(m.get("settings") or {}).get(key) for m in manifests]
        try:
            columns[key] = pa.array(values)
        except (pa.ArrowException, TypeError):
            columns[key] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(columns)


def altered_files(root: str | Path) -> list[str]:
    """Every file of a run under ``root`` that is not what its run wrote, by SHA-256 (what the
    cheap check of :func:`connect` cannot see: a file of the same size, altered): one line
    each, naming the file. Slow on a big store; for explaining a query that failed reading."""
    return [problem for m in list_runs(Path(root)) if m.get("status") not in ("corrupt",)
            for problem in check_files(Path(m["path"]), m, deep=True)]


def _dataset(files: list[tuple[str, Path]]) -> ds.Dataset:
    """One Arrow dataset over exactly ``files`` (run_id, path): a ``run_id`` column first (each
    file's own, as a constant of its fragment), then the union of the files' columns by name
    (a column a file lacks is null in its rows)."""
    schema = None
    for _, path in files:
        try:
            mine = pq.read_schema(path).remove_metadata()
        except (OSError, pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"{path}: corrupt or unreadable Parquet file "
                            f"({str(exc).splitlines()[0]})") from None
        try:
            schema = mine if schema is None else pa.unify_schemas(
                [schema, mine], promote_options="permissive")
        except (pa.ArrowException, TypeError) as exc:
            raise UserError(f"{path}: its columns disagree with the {path.parent.name} files "
                            f"before it ({str(exc).splitlines()[0]})") from None
    if "run_id" in schema.names:
        schema = schema.remove(schema.get_field_index("run_id"))
    schema = pa.schema([pa.field("run_id", pa.string(), nullable=False), *schema])
    return ds.FileSystemDataset.from_paths(
        [str(path.absolute()) for _, path in files], schema=schema,
        format=ds.ParquetFileFormat(), filesystem=pafs.LocalFileSystem(),
        partitions=[ds.field("run_id") == run_id for run_id, _ in files])


def read_only(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` on ``con`` if it is exactly one read-only query (a ``SELECT``, ``WITH``,
    ``FROM``, ``VALUES``, ``DESCRIBE``, ``SHOW`` or ``SUMMARIZE`` statement).

    Raises:
        UserError: no statement, more than one, or one of another kind (``COPY``, ``ATTACH``,
            ``INSTALL``, ``SET``, ``CREATE``, ``PRAGMA``, ``EXPLAIN``, ``PIVOT`` ...), named.
        duckdb.Error: SQL that does not parse, or a query that fails.
    """
    statements = con.extract_statements(sql)
    if not statements:
        raise UserError("no SQL statement given; query runs one read-only query (a SELECT)")
    if len(statements) > 1:
        raise UserError(f"query runs exactly one SQL statement, got {len(statements)}; run "
                        f"them one at a time (--unsafe lifts this)")
    kind = statements[0].type
    if kind not in READ_ONLY:
        name = _KINDS.get(kind.name, kind.name)
        raise UserError(f"query runs read-only queries (a SELECT) only, not {name} "
                        f"(--unsafe lifts this)")
    return con.sql(sql)
