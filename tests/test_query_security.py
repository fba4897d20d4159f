"""`panopticon query` and the other readers hand DuckDB exactly the store's files, under one
run id per run, never a path as SQL text or as a glob pattern; `query` runs one read-only
statement over the store's runs only, unless --unsafe."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.store.query import connect, read_only

runner = CliRunner()

VIEWS = ("runs", "daily", "events", "ledger", "observations", "lists", "opportunities",
         "refusals", "appeals", "manipulations", "behaviour", "network", "network_groups",
         "ledger_chain", "citizens")
INJECTION = "o'brien\"); copy (select 42 as a) to 'pwned.csv'; --"
"""A run folder name that would write pwned.csv if it were formatted into SQL."""
DAYS = 5
FILLED = ("runs", "daily", "events", "ledger", "observations", "opportunities", "refusals",
          "behaviour", "ledger_chain", "citizens")
"""The views that have rows in the test run (the others may be empty)."""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Run every test in its own folder: a relative file a statement writes lands there."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """One small complete run (300 citizens, 5 days, with refusals) to copy into each test's
    store."""
    store = tmp_path_factory.mktemp("source")
    result = runner.invoke(app, ["run", "--preset", "seed_article", "--citizens", "300",
                                 "--days", str(DAYS), "--out", str(store), "--json", "-q"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["path"])


@pytest.fixture(scope="module")
def other(tmp_path_factory) -> Path:
    """Another run of the same scenario with another seed (other numbers)."""
    store = tmp_path_factory.mktemp("other")
    result = runner.invoke(app, ["run", "--preset", "seed_article", "--citizens", "300",
                                 "--days", str(DAYS), "--seed", "9", "--out", str(store),
                                 "--json", "-q"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["path"])


def place(source: Path, store: Path, name: str) -> Path:
    """A copy of the run ``source`` in ``store`` under the folder name ``name``."""
    store.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(source, store / name))


def query(sql: str, store: Path, *options: str):
    return runner.invoke(app, ["query", sql, "--out", str(store), "--json", *options])


def rows(sql: str, store: Path) -> list[dict]:
    result = query(sql, store)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result, *fragments: str) -> None:
    """Exit 2 with a message (no traceback), each fragment in it."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment.lower() in result.output.lower(), (fragment, result.output)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------ 1. glob characters
@pytest.mark.parametrize("store", ["s[1]", "s*", "s?"])
def test_glob_characters_in_out_read_exactly_that_store(source, tmp_path, store):
    """`--out s[1]` (or s*, s?) reads the runs of the folder with exactly that name, not those
    of s1 or of any other folder the name would match as a glob pattern."""
    stores = {name: tmp_path / name for name in ("s[1]", "s*", "s?", "s1", "sx")}
    for name, folder in stores.items():
        place(source, folder, f"run-in-{name}")
    own = f"run-in-{store}"
    for view in ("runs", "daily", "ledger", "citizens"):
        found = rows(f"select run_id, count(*) as n from {view} group by 1", stores[store])
        assert [r["run_id"] for r in found] == [own], view
    (daily,) = rows("select count(*) as n from daily", stores[store])
    assert daily["n"] == DAYS


@pytest.mark.parametrize(("name", "decoy"), [("r[1]", "r1"), ("r*", "rz"), ("r?x", "rzx")])
def test_glob_characters_in_a_run_folder_name_read_exactly_that_run(source, other, tmp_path,
                                                                    name, decoy):
    """A run folder named r[1] (or r*, r?x) beside another run its name matches as a glob
    pattern (r1, rz, rzx) is read by query, explain, compare and report from its own files
    only: each answers as for the same run under a plain name."""
    run = place(source, tmp_path / "runs", name)
    place(other, tmp_path / "runs", decoy)
    plain = place(source, tmp_path / "plain", "plain")
    assert rows("select run_id, count(*) as n from daily group by 1 order by 1", run.parent) == \
        sorted([{"run_id": name, "n": DAYS}, {"run_id": decoy, "n": DAYS}],
               key=lambda r: r["run_id"])
    for args in (["explain", "{}", "-c", "3", "--json"], ["compare", "{}", "{}", "--json"]):
        answers = []
        for folder in (run, plain):
            result = runner.invoke(app, [a.replace("{}", str(folder)) for a in args])
            assert result.exit_code == 0, (args, result.output)
            answers.append(result.stdout.replace(str(folder), "<RUN>"))
        assert answers[0] == answers[1], args
    from panopticon.report.build import collect

    (got,), (want,) = collect([run]), collect([plain])
    assert got.wrongly_refused == want.wrongly_refused
    assert got.disparity.keys() == want.disparity.keys()
    for attr, frame in want.disparity.items():
        assert got.disparity[attr].equals(frame), attr
    assert got.stories == want.stories
    result = runner.invoke(app, ["report", str(run), "--html", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ 2. one run id
def test_copied_and_symlinked_runs_have_their_folder_name_as_run_id_in_every_view(
        source, tmp_path):
    """A run, a copy of it and a symbolic link to it are three runs, each with its folder's
    name as run_id in `runs` and in every table view alike (what users type to address it)."""
    store = tmp_path / "runs"
    original = place(source, store, source.name)
    place(source, store, "my-copy")
    (store / "linked").symlink_to(original, target_is_directory=True)
    names = {source.name, "my-copy", "linked"}
    for view in VIEWS:
        found = {r["run_id"] for r in rows(f"select distinct run_id from {view}", store)}
        assert found == names or (view not in FILLED and not found), (view, found)
    joined = rows("select r.run_id, count(*) as n from daily d join runs r using (run_id) "
                  "group by 1", store)
    assert {r["run_id"]: r["n"] for r in joined} == dict.fromkeys(names, DAYS)
    con = connect(store)
    ids = {r for (r,) in con.sql("select run_id from runs").fetchall()}
    assert ids == {r for (r,) in con.sql("select distinct run_id from citizens").fetchall()}


# ------------------------------------------------------------------ 3. injection
def test_injection_via_run_folder_name_cannot_write_files_or_fail(source, tmp_path):
    """A run folder whose name holds quotes and a `copy ... to 'pwned.csv'` statement is read
    like any other by query (every view), explain, compare and report: they exit 0 and write
    no file but the report."""
    run = place(source, tmp_path / "runs", INJECTION)
    before = files_under(tmp_path)
    for view in VIEWS:
        found = rows(f"select distinct run_id from {view}", run.parent)
        assert found == [{"run_id": INJECTION}] or (view not in FILLED and not found), view
    for args in (["explain", str(run), "-c", "3", "--json"],
                 ["compare", str(run), str(run), "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    assert files_under(tmp_path) == before
    result = runner.invoke(app, ["report", str(run), "--html", "report.html"])
    assert result.exit_code == 0, result.output
    assert files_under(tmp_path) == before | {tmp_path / "report.html"}
    assert not list(tmp_path.rglob("pwned*"))
    from panopticon.report.build import collect

    (data,) = collect([run])
    assert data.disparity and data.stories  # the DuckDB reads did run over the files


# ------------------------------------------------------------------ 4. read only, store only
@pytest.fixture
def store(source, tmp_path) -> Path:
    place(source, tmp_path / "runs", source.name)
    return tmp_path / "runs"


def test_reading_etc_passwd_is_refused(store):
    """read_csv, read_text and glob of a file outside the store are refused, naming --unsafe."""
    for sql in ("select * from read_csv('/etc/passwd')", "select * from read_text('/etc/passwd')",
                "select * from glob('/etc/*')"):
        result = query(sql, store)
        refused(result, "permission", "--unsafe")
        assert "root:" not in result.output


def test_reading_store_files_by_path_is_refused(store):
    """Only the views read the store: a path to its Parquet files is refused too (it would
    read parts its manifest does not list)."""
    refused(query(f"select count(*) from read_parquet('{store}/*/daily/*.parquet')", store),
            "permission")


def test_copy_is_refused(store, tmp_path):
    """COPY ... TO is refused and writes nothing."""
    for sql in ("copy daily to 'out.csv'", "copy (select 1) to 'out.csv'"):
        refused(query(sql, store), "copy", "--unsafe")
    assert not (tmp_path / "out.csv").exists()


def test_attach_is_refused(store, tmp_path):
    """ATTACH is refused and creates no database file."""
    refused(query("attach 'other.db' as other", store), "attach", "--unsafe")
    assert not (tmp_path / "other.db").exists()


def test_install_is_refused(store):
    """INSTALL and LOAD of an extension are refused."""
    refused(query("install httpfs", store), "install", "--unsafe")
    refused(query("load httpfs", store), "load")


def test_two_statements_are_refused(store, tmp_path):
    """Exactly one statement per call: two are refused, even if the first is a SELECT."""
    refused(query("select 1; select 2", store), "one SQL statement", "2")
    refused(query("select 1; copy daily to 'out.csv'", store), "one SQL statement")
    assert not (tmp_path / "out.csv").exists()


def test_set_is_refused_and_the_configuration_is_locked(store):
    """SET is refused by `query`; on the API's connection itself the lockdown cannot be
    lifted either (the configuration is locked)."""
    refused(query("set enable_external_access = true", store), "SET")
    con = connect(store)
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error, match="disabled"):
        con.sql("select * from read_csv('/etc/passwd')").fetchall()
    with pytest.raises(UserError, match="SET"):
        read_only(con, "reset enable_external_access")
    assert read_only(con, "select count(*) from daily").fetchall() == [(DAYS,)]


def test_read_only_queries_still_work(store, source):
    """A SELECT, WITH, DESCRIBE, SHOW and SUMMARIZE still answer over the views."""
    assert rows("with d as (select * from daily) select count(*) as n from d", store) == \
        [{"n": DAYS}]
    assert {"run_id", "day"} <= {r["column_name"] for r in rows("describe daily", store)}
    assert set(VIEWS) <= {r["name"] for r in rows("show tables", store)}
    assert rows("summarize citizens", store)


def test_unsafe_allows_read_csv_of_a_local_temp_file(store, tmp_path):
    """--unsafe lifts the restrictions: read_csv of a local file, and two statements."""
    (tmp_path / "extra.csv").write_text("a,b\n1,x\n2,y\n")
    sql = f"select sum(a)::int as total from read_csv('{tmp_path / 'extra.csv'}')"
    refused(query(sql, store), "permission")
    result = query(sql, store, "--unsafe")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"total": 3}]
    result = query("create table t as select 5 as v; select v from t", store, "--unsafe")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"v": 5}]


def test_unsafe_is_documented_in_the_help():
    """`query --help` names --unsafe and what it lifts."""
    result = runner.invoke(app, ["query", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--unsafe" in text and "COPY" in text and "read-only" in text


def test_symlink_outside_the_store_keeps_its_own_name(source, tmp_path):
    """A run linked into the store from elsewhere is read through the link, under the
    link's name (and the lockdown does not stop the views reading it)."""
    elsewhere = place(source, tmp_path / "elsewhere", "original")
    store = tmp_path / "runs"
    store.mkdir()
    os.symlink(elsewhere, store / "via-link")
    assert rows("select run_id, count(*) as n from daily group by 1", store) == \
        [{"run_id": "via-link", "n": DAYS}]
