"""Errors that say how to fix them: "did you mean" for a misspelled key at any depth and for an
unknown name, the YAML 1.1 ``1e-2`` trap, and ``panopticon validate --json``."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.scenario import (
    load_policy,
    load_preset,
    load_scenario,
    policy_preset_path,
    preset_path,
)

runner = CliRunner()

PRESET = preset_path("seed_article").read_text(encoding="utf-8")
POLICY = policy_preset_path("seed_article").read_text(encoding="utf-8")
SCENARIO = PRESET.replace("policy: seed_article",
                          "policy:\n" + textwrap.indent(POLICY, "  ", lambda line: True))
"""The seed_article preset with its policy written inline (so policy keys have positions)."""
assert SCENARIO != PRESET


def where(text: str, word: str) -> tuple[int, int]:
    """1-based line and column of the only occurrence of ``word`` in ``text``."""
    assert text.count(word) == 1, f"{word!r} occurs {text.count(word)} times"
    before = text[:text.index(word)]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def changed(text: str, old: str, new: str) -> str:
    """``text`` with the only occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def refused(path: Path, load=load_scenario) -> UserError:
    with pytest.raises(UserError) as info:
        load(path)
    return info.value


def problem(exc: UserError, key: str):
    """The one problem of ``exc`` at dotted ``key``."""
    found = [p for p in exc.problems if p.path == key]
    assert len(found) == 1, f"no single problem at {key!r} in\n{exc}"
    return found[0]


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


CAMERA_DETECTION = "    detection: 0.8                        # [A]\n    misattribution: 0.002"
"""The cameras' detection (the online source's is 0.8 as well), with the next line."""


def test_the_inline_seed_article_scenario_is_valid(tmp_path):
    """The starting point of the tests below is itself a valid scenario."""
    assert load_scenario(write(tmp_path, SCENARIO)).name == "seed_article"


# ------------------------------------------------------------------ misspelled keys

TYPOS = {  # id: (valid text, misspelled text, misspelled key, key path, suggestion)
    "top_level": ("\ndescription: >", "\ndescripton: >", "descripton", "descripton",
                  "description"),
    "society": ("  region: {values:", "  regoin: {values:", "regoin", "society.regoin",
                "region"),
    "sensor": ("    misattribution: 0.002", "    misatribution: 0.002", "misatribution",
               "sensors.cameras.misatribution", "misattribution"),
    "list_item": ("      limit: 0.3", "      limt: 0.3", "limt",
                  "behaviour.responses[0].limt", "limit"),
    "opportunity": ("    retry: 0.3 ", "    retyr: 0.3 ", "retyr", "opportunities.loan.retyr",
                    "retry"),
    "opportunity_loan": ("      term_days: 180", "      term_dayz: 180", "term_dayz",
                         "opportunities.loan.loan.term_dayz", "term_days"),
    "distribution_in_a_union": ("urban: {kind: lognormal, median: 4500",
                                "urban: {kind: lognormal, mediann: 4500", "mediann",
                                "society.income.values.urban.mediann", "median"),
    "repayment_table": ("repay: {column: income", "repay: {colum: income", "colum",
                        "opportunities.loan.loan.repay.colum", "column"),
    "policy_rule": ("    override: {max_tier: D, days: 730}",
                    "    overide: {max_tier: D, days: 730}", "overide",
                    "policy.rules[3].overide", "override"),
    "policy_rule_override": ("{max_tier: D, days: 730}", "{max_tier: D, dayz: 730}", "dayz",
                             "policy.rules[3].override.dayz", "days"),
    "unfriending": ("unfriending: {layer: friends,", "unfriending: {layr: friends,", "layr",
                    "behaviour.unfriending.layr", "layer"),
}


@pytest.mark.parametrize("typo", TYPOS.values(), ids=TYPOS.keys())
def test_misspelled_key_at_any_depth_suggests_the_valid_key(tmp_path, typo):
    """A misspelled key anywhere (top level, a section, a list item, a distribution inside a
    union, a policy rule) is refused at its line and column with its dotted key path and
    the closest valid key."""
    old, new, word, key, suggestion = typo
    text = changed(SCENARIO, old, new)
    file = write(tmp_path, text)
    found = problem(refused(file), key)
    assert (found.file, found.line, found.column) == (str(file), *where(text, word))
    assert found.message.startswith(f"got {key.rsplit('.', 1)[-1]!r}; expected a known key here")
    assert f"did you mean '{suggestion}'" in found.message
    assert f"{file}:{found.line}:{found.column}: {key}: got " in str(refused(file))


def test_misspelled_key_under_governance_appeals_suggests_the_valid_key(tmp_path):
    """governance.appeals.capacty: did you mean 'capacity'?"""
    text = SCENARIO + "governance:\n  appeals: {rate: 0.01, capacty: 10}\n"
    file = write(tmp_path, text)
    found = problem(refused(file), "governance.appeals.capacty")
    assert (found.line, found.column) == where(text, "capacty")
    assert "did you mean 'capacity'?" in found.message


def test_misspelled_key_in_a_policy_file_suggests_the_valid_key(tmp_path):
    """In a policy file the path starts at the policy: rules[3].overide."""
    text = changed(POLICY, "    override: {max_tier: D, days: 730}",
                   "    overide: {max_tier: D, days: 730}")
    file = write(tmp_path, text, "policy.yaml")
    found = problem(refused(file, load_policy), "rules[3].overide")
    assert (found.line, found.column) == where(text, "overide")
    assert "did you mean 'override'?" in found.message


def test_unknown_key_with_nothing_close_lists_the_keys_there(tmp_path):
    """With no close spelling the message lists the keys that location takes."""
    text = changed(SCENARIO, "    misattribution: 0.002", "    zzzzzz: 0.002")
    found = problem(refused(write(tmp_path, text)), "sensors.cameras.zzzzzz")
    assert found.message.startswith("got 'zzzzzz'; expected a known key here, one of: events, coverage")
    assert "misattribution" in found.message


def test_misspelled_key_given_to_set_suggests_the_valid_key():
    """ScenarioSpec.set with a misspelled leaf says which key was meant."""
    with pytest.raises(UserError, match=r"sensors\.cameras\.misatribution: got 'misatribution'; "
                                        r"expected a known key here; did you mean "
                                        r"'misattribution'\?"):
        load_preset("seed_article").set("sensors.cameras.misatribution", 0.1)


# ------------------------------------------------------------------ unknown names

NAMES = {  # id: (valid text, misspelled text, key path, message fragment)
    "event": ("    jaywalking: {multipliers", "    jaywalkin: {multipliers",
              "behaviour.events.jaywalkin", "got 'jaywalkin'; expected a known event type (see "
                                            "`panopticon events`); did you mean 'jaywalking'?"),
    "source": ("  civic:\n    events: [volunteering", "  civc:\n    events: [volunteering",
               "sensors.civc", "got 'civc'; expected a known data source, one of: "
               "cameras, civic, courts"),
    "tier": ("    - tiers: [B, C, D]", "    - tiers: [B, C, DD]",
             "behaviour.deterrence[0].tiers[2]", "got 'DD'; expected a tier of the policy, one of: AAA, "
             "AA, A, B, C, D; did you mean 'D'?"),
    "region": ("coverage: {urban: 0.6, rural: 0.15}", "coverage: {urbn: 0.6, rural: 0.15}",
               "sensors.cameras.coverage.urbn", "got 'urbn'; expected a region of this society, one "
               "of: urban, rural; did you mean 'urban'?"),
    "category": ("region: {rural: 0.5}", "region: {rurl: 0.5}",
                 "behaviour.events.red_light.multipliers.region.rurl",
                 "got 'rurl'; expected a region of this society, one of: urban, "
                 "rural; did you mean 'rural'?"),
    "column": ("repay: {column: income", "repay: {column: incme",
               "opportunities.loan.loan.repay.column",
               "got 'incme'; expected a numeric column, one of: age, income, "
               "rank, children, score; did you mean 'income'?"),
    "opportunity": ("  flight: {rate: 0.00019", "  flights: {rate: 0.00019",
                    "opportunities.flights", "got 'flights'; expected an opportunity from "
                                             "`panopticon opportunities`"),
    "sanction": ("    deny: [flights, high_speed_rail", "    deny: [flight, high_speed_rail",
                 "policy.sanctions[0].deny[0]", "got 'flight'; expected a known sanction; did you "
                                                "mean 'flights'"),
    "attribute": ("region: {rural: 0.5}", "regoin: {rural: 0.5}",
                  "behaviour.events.red_light.multipliers.regoin", "did you mean 'region'?"),
    "distribution_kind": ("rural: {kind: lognormal", "rural: {kind: lognormall",
                          "society.income.values.rural",
                          "got 'lognormall'; expected a distribution: a mapping with kind: constant, "
                          "normal, lognormal, uniform or table; did you mean 'lognormal'"),
    "list_kind": ("ties: friends, weight: 0.05", "ties: frends, weight: 0.05",
                  "policy.association[0].ties", "did you mean 'friends'?"),
}


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_unknown_name_suggests_the_closest_known_name(tmp_path, name):
    """An unknown event, source, tier, category, column, opportunity, sanction, attribute
    or kind is refused at its position with the closest known names."""
    old, new, key, fragment = name
    text = changed(SCENARIO, old, new)
    found = problem(refused(write(tmp_path, text)), key)
    assert found.line > 0
    assert fragment in found.message


def test_unknown_list_named_by_association_suggests_the_list(tmp_path):
    """association.listed names a list that does not exist: the closest list is suggested."""
    text = textwrap.dedent("""\
        name: p
        family: list
        lists:
          - {name: watch, kind: blacklist, enter_on: [red_light]}
        association:
          - {ties: friends, listed: wach, points: -5}
        """)
    exc = refused(write(tmp_path, text, "policy.yaml"), load_policy)
    assert "association names list 'wach' (did you mean watch?)" in str(exc)


# ------------------------------------------------------------------ 1e-2 is text in YAML 1.1

EXPONENTS = {  # id: (valid text, with an exponent without a dot, key path, message)
    "sensor": (CAMERA_DETECTION, "    detection: 1e-2\n    misattribution: 0.002",
               "sensors.cameras.detection",
               "expected a number; YAML 1.1 reads 1e-2 (no dot) as text: write 1.0e-2 or 0.01"),
    "distribution_in_a_union": (
        "urban: {kind: lognormal, median: 4500, sigma: 0.7}",
        "urban: {kind: lognormal, median: 4500, sigma: 7e-1}",
        "society.income.values.urban.sigma",
        "expected a number; YAML 1.1 reads 7e-1 (no dot) as text: write 7.0e-1 or 0.7"),
    "number_or_distribution": (
        "rate: {kind: lognormal, median: 0.01, sigma: 1.5, max: 1}", "rate: 3E-2",
        "behaviour.events.alcohol_purchase.rate",
        "expected a number; YAML 1.1 reads 3E-2 (no dot) as text: write 3.0E-2 or 0.03"),
    "policy_list_item": ("weight: 0.05, every_days: 7", "weight: 5e-2, every_days: 7",
                         "policy.association[0].weight",
                         "YAML 1.1 reads 5e-2 (no dot) as text: write 5.0e-2 or 0.05"),
    "whole_number": ("  citizens: 100000", "  citizens: 1e5", "run.citizens",
                     "expected a whole number; YAML 1.1 reads 1e5 (no dot) as text: write "
                     "100000"),
}


@pytest.mark.parametrize("case", EXPONENTS.values(), ids=EXPONENTS.keys())
def test_exponent_without_a_dot_says_yaml_reads_it_as_text(tmp_path, case):
    """``1e-2`` is text to YAML 1.1: where a number is expected, at any depth, the error says
    so and what to write (docs/scenarios.md, File rules)."""
    old, new, key, message = case
    text = changed(SCENARIO, old, new)
    found = problem(refused(write(tmp_path, text)), key)
    assert found.line == where(text, new.strip())[0]
    assert message in found.message


def test_exponent_without_a_dot_given_to_set_says_what_to_write():
    """ScenarioSpec.set(key, "1e-2") (``--set key=1e-2`` reads it the same way) is refused
    with the same hint."""
    with pytest.raises(UserError, match=re.escape(
            "sensors.cameras.misattribution: got '1e-2'; expected a number; YAML 1.1 reads "
            "1e-2 (no dot) as text: write 1.0e-2 or 0.01")):
        load_preset("seed_article").set("sensors.cameras.misattribution", "1e-2")


def test_exponent_hint_matches_the_documented_file_rule():
    """The docs' file rules give the same advice the message gives."""
    docs = (Path(__file__).parents[1] / "docs" / "scenarios.md").read_text(encoding="utf-8")
    assert "YAML 1.1 reads `1e-5` (no dot) as text: write `1.0e-5`" in docs


def test_text_that_is_not_an_exponent_gets_no_yaml_hint(tmp_path):
    """A word where a number belongs is just a wrong type: no exponent hint."""
    text = changed(SCENARIO, CAMERA_DETECTION, "    detection: high\n    misattribution: 0.002")
    found = problem(refused(write(tmp_path, text)), "sensors.cameras.detection")
    assert "YAML 1.1" not in found.message
    assert "'high'" in found.message


# ------------------------------------------------------------------ validate --json


def test_validate_json_on_a_valid_scenario_prints_valid_true_and_exits_0(tmp_path):
    """`validate --json` on a valid scenario prints its kind and name, exit code 0."""
    file = write(tmp_path, SCENARIO)
    result = runner.invoke(app, ["validate", "--json", str(file)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"file": str(file), "valid": True, "kind": "scenario",
                                         "name": "seed_article"}


def test_validate_json_on_a_valid_policy_prints_kind_policy_and_exits_0(tmp_path):
    """A policy file is recognised as one."""
    file = write(tmp_path, POLICY, "policy.yaml")
    result = runner.invoke(app, ["validate", "--json", str(file)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"file": str(file), "valid": True, "kind": "policy",
                                         "name": "seed_article"}


def test_validate_json_on_an_invalid_file_lists_every_problem_and_exits_2(tmp_path):
    """`validate --json` on an invalid scenario prints valid false and every problem with its
    line, column, key and message (the lines of the typos), exit code 2; the human output
    lists the same problems."""
    text = changed(SCENARIO, CAMERA_DETECTION, "    detection: 1e-2\n    misattribution: 0.002")
    text = changed(text, "    misattribution: 0.002", "    misatribution: 0.002")
    text = changed(text, "      limit: 0.3", "      limt: 0.3")
    file = write(tmp_path, text)
    result = runner.invoke(app, ["validate", "--json", str(file)])
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert report["file"] == str(file) and report["valid"] is False
    by_key = {e["key"]: e for e in report["errors"]}
    assert set(by_key) == {"sensors.cameras.misatribution", "behaviour.responses[0].limt",
                           "sensors.cameras.detection"}
    assert all(set(e) == {"line", "column", "key", "message"} for e in report["errors"])
    for key, word in (("sensors.cameras.misatribution", "misatribution"),
                      ("behaviour.responses[0].limt", "limt")):
        assert (by_key[key]["line"], by_key[key]["column"]) == where(text, word)
    assert by_key["sensors.cameras.detection"]["line"] == where(text, "detection: 1e-2")[0]
    assert "did you mean 'misattribution'?" in by_key["sensors.cameras.misatribution"]["message"]
    assert "write 1.0e-2 or 0.01" in by_key["sensors.cameras.detection"]["message"]

    human = runner.invoke(app, ["validate", str(file)])
    assert human.exit_code == 2
    listed = [line.strip() for line in human.stderr.splitlines()[1:] if line.strip()]
    assert listed == [f"{file}:{e['line']}:{e['column']}: {e['key']}: {e['message']}"
                      for e in report["errors"]]


def test_validate_json_on_invalid_yaml_gives_the_position(tmp_path):
    """A YAML syntax error is one problem with its line and column and no key."""
    file = write(tmp_path, "schema_version: 1\nname: tiny: x\n")
    result = runner.invoke(app, ["validate", "--json", str(file)])
    assert result.exit_code == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert (error["line"], error["column"], error["key"]) == (2, 11, None)


def test_validate_json_on_a_missing_file_is_one_problem_without_position(tmp_path):
    """An error without a position (no such file) is still strict JSON, exit code 2."""
    result = runner.invoke(app, ["validate", "--json", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    (error,) = report["errors"]
    assert error["line"] is None and "no such file" in error["message"]
