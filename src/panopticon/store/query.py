"""DuckDB over every run under a root folder: views ``runs``, ``citizens`` and one per table
of :data:`panopticon.store.local.TABLES` (``daily``, ``events``, ``ledger``, ``observations``,
``lists``, ``opportunities``, ``refusals``, ``behaviour``, ``network``), each with a ``run_id``
column."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from panopticon.store.local import TABLES, list_runs


def connect(root: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over the runs under ``root`` (read-only use).

    Example:
        ``connect("runs").sql("select run_id, max(mean_score) from daily group by run_id")``
    """
    root = Path(root)
    con = duckdb.connect()
    manifests = list_runs(root)
    keep = ("run_id", "status", "scenario", "seed", "citizens", "days", "days_completed",
            "created", "scenario_digest", "code_version", "path")
    runs = pa.Table.from_pylist([{k: m.get(k) for k in keep} for m in manifests]) if manifests \
        else pa.table({k: pa.array([], pa.string()) for k in keep})
    con.register("runs_arrow", runs)
    con.execute("create view runs as select * from runs_arrow")
    def literal(path: Path) -> str:
        return "'" + str(path).replace("'", "''") + "'"

    rid = "regexp_extract(filename, '([^/\\\\]+)[/\\\\][a-z]+[/\\\\]part-[0-9-]+\\.parquet$', 1)"
    for table in TABLES:
        if list(root.glob(f"*/{table}/part-*.parquet")):
            pattern = literal(root / "*" / table / "part-*.parquet")
            con.execute(f"create view {table} as select {rid} as run_id, * exclude (filename) "
                        f"from read_parquet({pattern}, filename=true, union_by_name=true)")
    if list(root.glob("*/citizens.parquet")):
        pattern = literal(root / "*" / "citizens.parquet")
        cid = "regexp_extract(filename, '([^/\\\\]+)[/\\\\]citizens\\.parquet$', 1)"
        con.execute(f"create view citizens as select {cid} as run_id, * exclude (filename) "
                    f"from read_parquet({pattern}, filename=true, union_by_name=true)")
    return con
