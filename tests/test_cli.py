"""The command line: every command documents itself, user errors exit 2 with a message, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from panopticon import cli
from panopticon.cli import app
from panopticon.scenario import preset_names

runner = CliRunner()
PANOPTICON = Path(sys.executable).with_name("panopticon")

GOOD = textwrap.dedent("""\
    schema_version: 1
    name: tiny
    run:
      citizens: 200
      days: 3
      seed: 1
    behaviour:
      events:
        red_light: {rate: 0.01}
    sensors:
      cameras: {events: [red_light], detection: 0.7}
    policy: reference
    """)

BAD = {
    "typo": (GOOD.replace("  days: 3", "  dayz: 3"),
             ["bad.yaml:5:3: run.dayz:", "got 'dayz'; expected a known key here"]),
    "negative": (GOOD.replace("rate: 0.01", "rate: -1"),
                 ["bad.yaml:9:17: behaviour.events.red_light.rate:", "greater than or equal to 0"]),
    "word_for_number": (GOOD.replace("  seed: 1", "  seed: one"),
                        ["bad.yaml:6:3: run.seed:", "integer", "'one'"]),
    "alias": (GOOD.replace("name: tiny", "name: &n tiny\ndescription: *n"),
              ["bad.yaml:3:14:", "aliases"]),
    "empty": ("", ["bad.yaml", "empty"]),
    "syntax": (GOOD.replace("name: tiny", "name: tiny: x"), ["bad.yaml:2:11:", "not allowed"]),
    "duplicate": (GOOD + "name: again\n", ["bad.yaml:13:1: name:", "duplicate key"]),
    "schema_version": (GOOD.replace("schema_version: 1", "schema_version: 3"),
                       ["bad.yaml:1:1: schema_version:", "got 3"]),
    "no_schema_version": (GOOD.replace("schema_version: 1\n", ""),
                          ["bad.yaml:1:1: schema_version:", "required"]),
    "unknown_event": (GOOD.replace("red_light: {rate", "red_lite: {rate"),
                      ["bad.yaml:9:5: behaviour.events.red_lite:", "expected a known event type"]),
    "unknown_policy": (GOOD.replace("policy: reference", "policy: nope"),
                       ["bad.yaml:12:1: policy:", "got 'nope'; expected a policy preset"]),
    "list": ("- 1\n- 2\n", ["bad.yaml:1:1:", "expected a mapping", "list"]),
}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Run every test in its own folder, so the default run store never lands in the repository."""
    monkeypatch.chdir(tmp_path)


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    """Write ``text`` to ``folder/name`` and return the path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_user_error(result, *fragments: str) -> None:
    """Exit code 2, the fragments on stderr, no traceback and no escaped exception."""
    shown = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.exit_code == 2, shown
    assert isinstance(result.exception, SystemExit), f"{result.exception!r}\n{shown}"
    assert "Traceback" not in result.output, shown
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} missing\n{shown}"


def assert_ok(result) -> None:
    """Exit code 0 and no exception."""
    assert result.exit_code == 0, (f"exit {result.exit_code} {result.exception!r}\n"
                                   f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")


# ------------------------------------------------------------------ help


def test_top_level_help_lists_every_command():
    """`panopticon --help` exits 0 and lists every command."""
    result = runner.invoke(app, ["--help"])
    assert_ok(result)
    for command in ("run", "validate", "runs", "query", "presets", "events"):
        assert command in result.stdout


def test_no_arguments_shows_help():
    """`panopticon` with no arguments shows the usage instead of failing silently."""
    result = runner.invoke(app, [])
    assert "Usage" in result.output and "run" in result.output


@pytest.mark.parametrize(("command", "expected"), [
    ("run", ["--preset", "--citizens", "--days", "--seed", "--out", "--resume", "--json", "--quiet",
             "Scenario YAML file"]),
    ("validate", ["FILE", "Scenario or policy YAML file"]),
    ("runs", ["--out", "--json", "Run store folder"]),
    ("query", ["SQL", "--out", "--json", "daily"]),
    ("presets", ["NAME", "preset"]),
    ("events", ["--help", "event types"]),
])
def test_help_of_every_command_exits_0_and_describes_its_options(command, expected):
    """`COMMAND --help` exits 0 and describes the command's arguments and options."""
    result = runner.invoke(app, [command, "--help"])
    assert_ok(result)
    text = result.stdout
    for word in expected:
        assert word.lower() in text.lower(), f"{word!r} not in help of {command}:\n{text}"


@pytest.mark.parametrize("command", ["run", "validate", "runs", "query", "presets", "events"])
def test_short_help_flag_works_for_every_command(command):
    """`COMMAND -h` is the same as --help."""
    result = runner.invoke(app, [command, "-h"])
    assert_ok(result)
    assert "Usage" in result.stdout


# ------------------------------------------------------------------ validate


def test_validate_good_scenario_exits_0_and_says_ok(tmp_path):
    """`validate` on a valid scenario exits 0 and says it is a valid scenario, with its name."""
    file = write(tmp_path, GOOD)
    result = runner.invoke(app, ["validate", str(file)])
    assert_ok(result)
    assert "ok" in result.stdout and "valid scenario" in result.stdout and "tiny" in result.stdout


def test_validate_good_policy_file_exits_0_and_says_policy(tmp_path):
    """`validate` on a policy file recognises it as a policy and exits 0."""
    from panopticon.scenario import policy_preset_path

    file = write(tmp_path, policy_preset_path("reference").read_text(), "policy.yaml")
    result = runner.invoke(app, ["validate", str(file)])
    assert_ok(result)
    assert "valid policy" in result.stdout


@pytest.mark.parametrize("case", sorted(BAD))
def test_validate_bad_file_exits_2_with_the_located_problem(tmp_path, case):
    """`validate` on a bad file exits 2 and prints file:line:col, the key path and the problem."""
    text, fragments = BAD[case]
    write(tmp_path, text, "bad.yaml")
    result = runner.invoke(app, ["validate", "bad.yaml"])
    assert_user_error(result, "error", *fragments)


def test_validate_reports_every_problem_of_a_file(tmp_path):
    """`validate` lists every problem of a file, each on its own line with its position."""
    text = GOOD.replace("  days: 3", "  dayz: 3").replace("  seed: 1", "  seed: -1")
    write(tmp_path, text, "bad.yaml")
    result = runner.invoke(app, ["validate", "bad.yaml"])
    assert_user_error(result, "bad.yaml:5:3: run.dayz:", "bad.yaml:6:3: run.seed:")


def test_validate_missing_file_exits_2_naming_it():
    """`validate` on a missing file exits 2 and names the file."""
    assert_user_error(runner.invoke(app, ["validate", "missing.yaml"]), "missing.yaml", "no such file")


def test_validate_folder_exits_2_naming_it(tmp_path):
    """`validate` on a folder exits 2 and says a YAML file was expected."""
    (tmp_path / "folder").mkdir()
    assert_user_error(runner.invoke(app, ["validate", "folder"]), "folder", "expected a YAML file")


def test_error_text_is_printed_literally_not_as_console_markup(tmp_path):
    """Brackets in a user's value are printed as they are, not read as console markup."""
    write(tmp_path, GOOD.replace("name: tiny", 'name: "[bold]x y"'), "bad.yaml")
    result = runner.invoke(app, ["validate", "bad.yaml"])
    assert_user_error(result, "'[bold]x y'")


def test_closing_tag_in_a_value_does_not_crash_the_error_printer(tmp_path):
    """A value containing ``[/]`` still gives exit 2 and a message, not a markup traceback."""
    write(tmp_path, GOOD.replace("name: tiny", 'name: "a[/]b"'), "bad.yaml")
    result = runner.invoke(app, ["validate", "bad.yaml"])
    assert_user_error(result, "bad.yaml:2:1: name:", "'a[/]b'")


def test_missing_file_with_brackets_in_its_name_is_named_exactly():
    """The file name in an error is printed exactly as given, even with brackets in it."""
    result = runner.invoke(app, ["validate", "[red]draft.yaml"])
    assert_user_error(result, "[red]draft.yaml", "no such file")


def test_valid_file_with_brackets_in_its_name_is_named_exactly(tmp_path):
    """The ok message names the file exactly as given, even with brackets in it."""
    write(tmp_path, GOOD, "[v2]draft.yaml")
    result = runner.invoke(app, ["validate", "[v2]draft.yaml"])
    assert_ok(result)
    assert "[v2]draft.yaml" in result.stdout, result.stdout


# ------------------------------------------------------------------ run: refusals


def test_run_missing_scenario_file_exits_2_naming_it():
    """`run FILE` on a missing file exits 2 and names the file."""
    assert_user_error(runner.invoke(app, ["run", "nowhere.yaml", "-q"]), "nowhere.yaml", "no such file")


def test_run_invalid_scenario_exits_2_with_the_located_problem(tmp_path):
    """`run FILE` on an invalid file exits 2 with the same located problem as validate."""
    text, fragments = BAD["typo"]
    write(tmp_path, text, "bad.yaml")
    assert_user_error(runner.invoke(app, ["run", "bad.yaml", "-q"]), *fragments)


def test_run_unknown_preset_exits_2_listing_the_presets():
    """`run --preset nope` exits 2 and lists the presets."""
    result = runner.invoke(app, ["run", "--preset", "nope", "-q"])
    assert_user_error(result, "unknown preset 'nope'", "reference", "seed_article")


def test_a_misspelled_preset_gets_a_did_you_mean():
    result = runner.invoke(app, ["run", "--preset", "seed_artcle", "-q"])
    assert_user_error(result, "unknown preset 'seed_artcle' (did you mean 'seed_article'?)")


def test_run_with_file_and_preset_exits_2(tmp_path):
    """Giving both a scenario file and --preset exits 2 saying to give one."""
    file = write(tmp_path, GOOD)
    result = runner.invoke(app, ["run", str(file), "--preset", "reference", "-q"])
    assert_user_error(result, "not both")


def test_run_with_zero_citizens_exits_2_naming_citizens():
    """`--citizens 0` exits 2 with a message about citizens."""
    result = runner.invoke(app, ["run", "--preset", "reference", "--citizens", "0", "-q"])
    assert_user_error(result, "citizens", "greater than or equal to 1")


def test_run_with_zero_days_exits_2_naming_days():
    """`--days 0` exits 2 with a message about days."""
    result = runner.invoke(app, ["run", "--preset", "reference", "--days", "0", "-q"])
    assert_user_error(result, "days", "greater than or equal to 1")


def test_run_with_a_word_for_citizens_exits_2():
    """`--citizens many` is a usage error (exit 2) naming the option."""
    result = runner.invoke(app, ["run", "--preset", "reference", "--citizens", "many"])
    assert result.exit_code == 2
    assert "--citizens" in result.output and "Traceback" not in result.output


def test_run_resume_missing_folder_exits_2_naming_it():
    """`run --resume FOLDER` for a folder that does not exist exits 2 naming it."""
    assert_user_error(runner.invoke(app, ["run", "--resume", "gone", "-q"]), "gone", "no such run folder")


def test_run_resume_of_a_non_run_folder_exits_2(tmp_path):
    """`run --resume` on a folder without a manifest exits 2 saying it is not a run."""
    (tmp_path / "empty").mkdir()
    assert_user_error(runner.invoke(app, ["run", "--resume", "empty", "-q"]), "not a panopticon run")


@pytest.mark.parametrize("command", [["runs"], ["query", "select 1"],
                                     ["run", "--preset", "reference", "--citizens", "100", "--days",
                                      "2", "-q"]])
def test_store_that_is_a_file_exits_2(tmp_path, command):
    """`--out` naming a file instead of a folder exits 2 with a message, not a traceback."""
    write(tmp_path, "not a folder", "store")
    result = runner.invoke(app, [*command, "--out", "store"])
    assert_user_error(result, "store")


# ------------------------------------------------------------------ run, runs, query on a real run


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One small reference run stored with --json: (store folder, CliRunner result)."""
    store = tmp_path_factory.mktemp("store")
    result = runner.invoke(app, ["run", "--preset", "reference", "--citizens", "500", "--days", "5",
                                 "--out", str(store), "--json", "-q"])
    return store, result


def _summary(stored) -> dict:
    _, result = stored
    assert_ok(result)
    return json.loads(result.stdout)


def test_run_json_prints_summary_with_mean_score_and_stored_path(stored):
    """`run --json` exits 0 and prints JSON with mean_score and the path it stored the run in."""
    store, _ = stored
    summary = _summary(stored)
    assert isinstance(summary["final_state"]["mean_score"], float)
    assert summary["citizens"] == 500 and summary["days"] == 5
    path = Path(summary["path"])
    assert path.parent == store and path.is_dir()


def test_run_folder_has_a_complete_manifest(stored):
    """The stored run folder has manifest.json with status complete and all days done."""
    manifest = json.loads((Path(_summary(stored)["path"]) / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["days_completed"] == manifest["days"] == 5
    assert manifest["run_id"] == _summary(stored)["run_id"]


def test_runs_json_lists_the_stored_run_as_complete(stored):
    """`runs --out STORE --json` lists the run with status complete."""
    store, _ = stored
    run_id = _summary(stored)["run_id"]
    result = runner.invoke(app, ["runs", "--out", str(store), "--json"])
    assert_ok(result)
    listed = {m["run_id"]: m for m in json.loads(result.stdout)}
    assert listed[run_id]["status"] == "complete"


def test_runs_table_shows_the_whole_run_id_in_an_80_column_terminal(stored, monkeypatch):
    """`runs` shows each run id in full (it is what --resume and queries need), even at 80 columns."""
    store, _ = stored
    monkeypatch.setattr(cli, "out", Console(width=80))
    run_id = _summary(stored)["run_id"]
    result = runner.invoke(app, ["runs", "--out", str(store)])
    assert_ok(result)
    assert "complete" in result.stdout
    assert run_id in result.stdout, result.stdout


def test_runs_on_an_empty_store_says_there_are_none(tmp_path):
    """`runs` on a store without runs exits 0 and says there are none yet."""
    result = runner.invoke(app, ["runs", "--out", str(tmp_path / "none")])
    assert_ok(result)
    assert "no runs" in result.stdout


def test_query_counts_the_daily_rows(stored):
    """`query "select count(*) from daily"` exits 0 and counts one row per day."""
    store, _ = stored
    result = runner.invoke(app, ["query", "select count(*) as n from daily", "--out", str(store),
                                 "--json"])
    assert_ok(result)
    assert json.loads(result.stdout) == [{"n": 5}]
    table = runner.invoke(app, ["query", "select count(*) from daily", "--out", str(store)])
    assert_ok(table)
    assert "5" in table.stdout


def test_query_bad_sql_exits_2_with_the_database_message(stored):
    """A query with invalid SQL exits 2 with the database's one-line message."""
    store, _ = stored
    result = runner.invoke(app, ["query", "selec nothing", "--out", str(store)])
    assert_user_error(result, "query failed", "syntax error")


def test_query_unknown_table_exits_2(stored):
    """A query of a table that does not exist exits 2 naming it."""
    store, _ = stored
    assert_user_error(runner.invoke(app, ["query", "select * from nope", "--out", str(store)]),
                      "query failed", "nope")


def test_resume_of_a_complete_run_exits_2(stored):
    """`run --resume` on a complete run exits 2 saying it is already complete."""
    path = _summary(stored)["path"]
    assert_user_error(runner.invoke(app, ["run", "--resume", path, "-q"]), "already complete")


def test_resume_with_overrides_exits_2(stored):
    """`run --resume` with a preset or overrides exits 2: a resumed run continues as it was."""
    path = _summary(stored)["path"]
    result = runner.invoke(app, ["run", "--resume", path, "--days", "9", "-q"])
    assert_user_error(result, "--resume")


# ------------------------------------------------------------------ presets and events


def test_presets_lists_reference_and_seed_article():
    """`presets` exits 0 and lists the reference and seed_article presets."""
    result = runner.invoke(app, ["presets"])
    assert_ok(result)
    assert "reference" in result.stdout and "seed_article" in result.stdout


@pytest.mark.parametrize("name", ["reference", "seed_article"])
def test_presets_name_prints_yaml_that_validates(tmp_path, name):
    """`presets NAME` prints YAML that, written to a file, validates as that scenario."""
    result = runner.invoke(app, ["presets", name])
    assert_ok(result)
    file = write(tmp_path, result.stdout, "copy.yaml")
    check = runner.invoke(app, ["validate", str(file)])
    assert_ok(check)
    assert f"({name})" in check.stdout


@pytest.mark.parametrize("name", preset_names())
def test_presets_show_prints_the_scenario_and_its_policy_ready_to_edit(tmp_path, name):
    """`presets show NAME` prints the scenario and `--policy` its policy preset; edited copies
    (the policy inlined into the scenario) validate and keep the family shown in the table."""
    scenario = runner.invoke(app, ["presets", "show", name])
    policy = runner.invoke(app, ["presets", "show", name, "--policy"])
    assert_ok(scenario)
    assert_ok(policy)
    data = yaml.safe_load(scenario.stdout)
    data["policy"] = yaml.safe_load(policy.stdout)
    file = write(tmp_path, yaml.safe_dump(data), "edited.yaml")
    assert_ok(runner.invoke(app, ["validate", str(file)]))
    family = data["policy"].get("family", "points")
    listing = runner.invoke(app, ["presets"])
    assert family in listing.stdout


def test_presets_unknown_name_exits_2():
    """`presets nope` exits 2 listing the presets."""
    assert_user_error(runner.invoke(app, ["presets", "nope"]), "unknown preset 'nope'", "reference")


def test_events_lists_the_catalogue():
    """`events` exits 0 and lists event types and sources."""
    result = runner.invoke(app, ["events"])
    assert_ok(result)
    assert "red_light" in result.stdout and "cameras" in result.stdout


# ------------------------------------------------------------------ the real executable


@pytest.mark.parametrize(("name", "argv", "files", "fragment"), [
    ("bad_file", ["validate", "bad.yaml"], {"bad.yaml": BAD["typo"][0]}, "run.dayz"),
    ("unknown_preset", ["run", "--preset", "nope", "-q"], {}, "unknown preset"),
    ("zero_citizens", ["run", "--preset", "reference", "--citizens", "0", "-q"], {}, "citizens"),
    ("missing_file", ["run", "missing.yaml", "-q"], {}, "missing.yaml"),
    ("infinite_points", ["validate", "bad.yaml"],
     {"bad.yaml": GOOD.replace("policy: reference", "policy:\n  name: p\n  rules:\n"
                               "    - {event: red_light, points: .inf}\n  tiers:\n    - {name: A}\n")},
     "points"),
    ("deep_nesting", ["validate", "bad.yaml"], {"bad.yaml": "a: " + "[" * 3000 + "]" * 3000}, "bad.yaml"),
    ("yaml_tag", ["validate", "bad.yaml"], {"bad.yaml": GOOD.replace("name: tiny", "name: !foo x")},
     "bad.yaml"),
])
def test_executable_exits_2_on_user_errors_without_a_traceback(tmp_path, name, argv, files, fragment):
    """The installed `panopticon` exits 2 on a user error, says what is wrong, and prints no traceback."""
    for file, text in files.items():
        write(tmp_path, text, file)
    proc = subprocess.run([str(PANOPTICON), *argv], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    shown = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, shown
    assert proc.returncode == 2, shown
    assert fragment in proc.stderr, shown


def test_executable_validate_ok_exits_0(tmp_path):
    """The installed `panopticon validate` exits 0 on a valid file, with nothing on stderr."""
    write(tmp_path, GOOD)
    proc = subprocess.run([str(PANOPTICON), "validate", "scenario.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "valid scenario" in proc.stdout
