"""The command line's finish: --version, shell completion, tables that never cut a name, --json on
every listing, query --csv, strict JSON, one meaning of -o, boolean options shown as flags."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from rich.console import Console
from typer.testing import CliRunner

from panopticon import cli
from panopticon.api import code_version
from panopticon.catalogue import EVENT_TYPES, OPPORTUNITY_TYPES
from panopticon.cli import app
from panopticon.scenario import preset_names

runner = CliRunner()
PANOPTICON = Path(sys.executable).with_name("panopticon")
COMMANDS = typer.main.get_command(app).commands


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Run every test in its own folder, so the default run store never lands in the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A run store with two small reference runs (seeds 1 and 2)."""
    root = tmp_path_factory.mktemp("polish-store")
    for seed in ("1", "2"):
        result = runner.invoke(app, ["run", "--preset", "reference", "--citizens", "300",
                                     "--days", "3", "--seed", seed, "-o", str(root), "--json", "-q"])
        assert result.exit_code == 0, result.output
    return root


def run_ids(store: Path) -> list[str]:
    result = runner.invoke(app, ["runs", "-o", str(store), "--json"])
    assert result.exit_code == 0, result.output
    return [m["run_id"] for m in json.loads(result.stdout)]


def piped(*args: str, columns: int = 80, cwd: Path | None = None) -> str:
    """Run the installed `panopticon` with its stdout a pipe (not a terminal) and COLUMNS set."""
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run([str(PANOPTICON), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_whole_on_one_line(text: str, names) -> None:
    """Every name appears, not cut and not ellipsized, on one line of ``text``."""
    lines = text.splitlines()
    for name in names:
        pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        assert any(pattern.search(line) for line in lines), f"{name!r} not whole on a line:\n{text}"
    assert "…" not in text, text


def strict_loads(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------ 1. --version


def test_version_prints_the_installed_version_and_exits_0():
    """`panopticon --version` prints panopticon.api.code_version() and exits 0, in process and as
    the installed command."""
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert code_version() in result.stdout
    assert code_version() in piped("--version")


# ------------------------------------------------------------------ 2. shell completion


def test_shell_completion_is_available_and_documented_in_the_top_level_help():
    """--install-completion and --show-completion are in the top-level help, and the shown
    script completes the command names."""
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    script = subprocess.run([str(PANOPTICON), "--show-completion", "bash"], capture_output=True,
                            text=True, env=env, timeout=60, check=False)
    assert script.returncode == 0, script.stderr
    assert "_PANOPTICON_COMPLETE" in script.stdout
    env = {**os.environ, "_PANOPTICON_COMPLETE": "complete_bash", "COMP_WORDS": "panopticon ev",
           "COMP_CWORD": "1"}
    words = subprocess.run([str(PANOPTICON)], capture_output=True, text=True, env=env,
                           timeout=60, check=False)
    assert "events" in words.stdout.split()


# ------------------------------------------------------------------ 3. names never cut


@pytest.mark.parametrize(("command", "names"), [
    ("events", [e.name for e in EVENT_TYPES]),
    ("opportunities", [o.name for o in OPPORTUNITY_TYPES]),
    ("presets", preset_names()),
])
def test_tables_never_cut_names_when_piped_at_80_columns(command, names):
    """`panopticon events | cat` at COLUMNS=80 shows every event (opportunity, preset) name in
    full on one line; nothing is ellipsized."""
    assert_whole_on_one_line(piped(command), names)


def test_tables_never_cut_names_of_runs_metrics_and_query_columns(store):
    """Run ids in `runs`, metric names in `compare` and column names in `query` are whole when
    piped at 80 columns."""
    ids = run_ids(store)
    assert_whole_on_one_line(piped("runs", "-o", str(store)), ids)
    metrics = json.loads(piped("compare", *ids, "-o", str(store), "--json"))["metrics"]
    assert_whole_on_one_line(piped("compare", *ids, "-o", str(store)),
                             [m.replace("_", " ") for m in metrics])
    columns = [f"a_rather_long_column_name_number_{k}" for k in range(6)]
    sql = "SELECT run_id, " + ", ".join(f"{k} AS {c}" for k, c in enumerate(columns)) + \
          " FROM runs"
    assert_whole_on_one_line(piped("query", sql, "-o", str(store)), [*columns, *ids])


@pytest.mark.parametrize(("command", "names"), [
    ("events", [e.name for e in EVENT_TYPES]),
    ("opportunities", [o.name for o in OPPORTUNITY_TYPES]),
    ("presets", preset_names()),
])
def test_tables_never_cut_names_in_an_80_column_terminal(command, names, monkeypatch):
    """In a terminal of 80 columns, names are whole on one line and nothing is ellipsized."""
    monkeypatch.setattr(cli, "out", Console(width=80, force_terminal=True, color_system=None))
    result = runner.invoke(app, [command])
    assert result.exit_code == 0, result.output
    assert_whole_on_one_line(result.stdout, names)


# ------------------------------------------------------------------ 4. --json on every listing


def test_json_on_every_listing_command():
    """presets, events and opportunities --json print a JSON list of objects with the table's
    fields."""
    listing = {}
    for command in ("presets", "events", "opportunities"):
        result = runner.invoke(app, [command, "--json"])
        assert result.exit_code == 0, result.output
        listing[command] = strict_loads(result.stdout)
        assert isinstance(listing[command], list)
    assert [p["name"] for p in listing["presets"]] == preset_names()
    assert {"name", "family", "fiction", "description"} <= set(listing["presets"][0])
    assert [e["event"] for e in listing["events"]] == [e.name for e in EVENT_TYPES]
    assert set(listing["events"][0]) == {"event", "domain", "source", "rate_per_year",
                                         "description"}
    for shown, event in zip(listing["events"], EVENT_TYPES, strict=True):
        assert math.isclose(shown["rate_per_year"], event.rate_per_day * 365)
    assert [o["opportunity"] for o in listing["opportunities"]] == \
        [o.name for o in OPPORTUNITY_TYPES]
    assert set(listing["opportunities"][0]) == {"opportunity", "blocked_by", "needs", "who",
                                                "tries_per_year", "description"}
    assert isinstance(listing["opportunities"][0]["blocked_by"], list)


def test_json_on_every_listing_command_runs(store):
    """`runs --json` lists the stored runs."""
    assert len(run_ids(store)) == 2


def test_json_on_every_listing_command_presets_with_a_name_is_a_user_error():
    """`presets NAME --json` is refused with exit 2 (`presets show NAME` prints YAML)."""
    result = runner.invoke(app, ["presets", "reference", "--json"])
    assert result.exit_code == 2 and "--json" in result.stderr


# ------------------------------------------------------------------ 5. query --csv


def test_query_csv_prints_a_header_and_every_row(store):
    """`query --csv` prints the result as CSV: the header, then every row."""
    result = runner.invoke(app, ["query", "SELECT run_id, day, mean_score FROM daily "
                                          "ORDER BY run_id, day", "-o", str(store), "--csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["run_id", "day", "mean_score"]
    assert len(rows) == 1 + 2 * 3
    assert {r[0] for r in rows[1:]} == set(run_ids(store))
    assert [r[1] for r in rows[1:4]] == ["0", "1", "2"]


def test_query_csv_quotes_and_refuses_json_with_it():
    """Values with commas are quoted; --csv with --json is a user error (exit 2)."""
    result = runner.invoke(app, ["query", "SELECT 'a,b' AS x, NULL AS y", "--csv"])
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [["x", "y"], ["a,b", ""]]
    result = runner.invoke(app, ["query", "SELECT 1", "--csv", "--json"])
    assert result.exit_code == 2 and "not both" in result.stderr


# ------------------------------------------------------------------ 6. strict JSON


def test_strict_json_everywhere_nan_and_infinity_become_null():
    """The one JSON printer turns NaN and infinities (also numpy's, also nested) into null."""
    import numpy as np

    result = runner.invoke(app, ["query", "SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, "
                                          "'-inf'::DOUBLE AS c, 2.5::DOUBLE AS d", "--json"])
    assert result.exit_code == 0, result.output
    assert strict_loads(result.stdout) == [{"a": None, "b": None, "c": None, "d": 2.5}]
    assert cli._finite({"x": [float("nan"), np.float32("inf"), np.float64(1.5), (1, np.nan)],
                        "y": np.array([1.0, np.inf])}) == \
        {"x": [None, None, 1.5, [1, None]], "y": [1.0, None]}


def test_strict_json_everywhere_every_command_prints_through_the_helper(store):
    """No command calls json.dumps itself: every JSON goes through the strict helper; the JSON
    of run, runs, compare, explain, audit and query parses strictly."""
    source = Path(cli.__file__).read_text()
    assert source.count("json.dumps(") == 1 and "allow_nan=False" in source
    ids = run_ids(store)
    for args in (["runs"], ["compare", *ids], ["explain", ids[0], "-c", "1"], ["audit", ids[0]],
                 ["query", "SELECT * FROM daily"]):
        result = runner.invoke(app, [*args, "-o", str(store), "--json"])
        assert result.exit_code == 0, (args, result.output)
        strict_loads(result.stdout)


# ------------------------------------------------------------------ 7. one meaning of -o


def test_o_means_the_run_store_in_every_command():
    """Wherever there is a -o, it is --out, the run store; report writes its page with --html
    (and keeps --output as a hidden alias)."""
    with_o = [name for name, cmd in COMMANDS.items()
              for p in cmd.params if "-o" in p.opts]
    assert set(with_o) >= {"run", "runs", "query", "audit", "explain", "report", "compare",
                           "sweep"}
    for name, cmd in COMMANDS.items():
        for p in cmd.params:
            if "-o" in p.opts:
                assert p.opts == ["--out", "-o"] or set(p.opts) == {"--out", "-o"}, name
                assert p.name in ("out_dir", "store"), (name, p.name)
    report = {o: p for p in COMMANDS["report"].params for o in p.opts}
    assert "--html" in report and report["--output"].hidden
    help_text = runner.invoke(app, ["report", "--help"], env={"COLUMNS": "120"}).stdout
    assert "--html" in help_text and "--output" not in help_text


def test_o_means_the_run_store_in_report(store, tmp_path):
    """`report RUN_ID -o STORE --html PAGE` finds the run in STORE and writes PAGE; the old
    `--output PAGE` still works with a warning; `-o PAGE.html` says to use --html."""
    run_id = run_ids(store)[0]
    page = tmp_path / "page.html"
    result = runner.invoke(app, ["report", run_id, "-o", str(store), "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert page.read_text().lstrip().lower().startswith("<!doctype html")
    old = tmp_path / "old.html"
    result = runner.invoke(app, ["report", run_id, "--out", str(store), "--output", str(old)])
    assert result.exit_code == 0, result.output
    assert old.exists() and "deprecated" in result.stderr
    result = runner.invoke(app, ["report", run_id, "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "--html" in result.stderr
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ 8. flags shown as flags


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_boolean_flags_shown_as_flags_in_every_help(command):
    """Every command's --help exits 0, has a one-line summary, and shows each boolean option as
    a bare flag: no `--x/--no-x`, no `<bool>` value."""
    args = [command, "--help"] if command else ["--help"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    assert "<bool>" not in result.stdout and "--no-" not in result.stdout, result.stdout
    if command:
        cmd = COMMANDS[command]
        summary = (cmd.short_help or cmd.help or "").strip().split("\n\n")[0]
        assert summary and "\n" not in summary, (command, summary)
        flags = [p for p in cmd.params if getattr(p, "is_bool_flag", False)]
        for p in flags:
            assert not p.secondary_opts, (command, p.opts)
            for opt in p.opts:
                assert opt in result.stdout, (command, opt)


def test_boolean_flags_shown_as_flags_take_no_value():
    """A flag given a value is a usage error (exit 2), not a value to parse."""
    result = runner.invoke(app, ["events", "--json=yes"])
    assert result.exit_code == 2
