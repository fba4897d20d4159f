"""Every problem the specification checks find is (key path, rule, value) and reads in one
style: ``KEY: got VALUE; expected RULE`` with ``; did you mean 'NAME'?`` where a known name is
close; a policy reference that cannot be resolved hides no other problem of the file."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.scenario import load_scenario
from panopticon.spec.checks import Problem
from panopticon.spec.files import closest, shown

runner = CliRunner()

SCENARIO = textwrap.dedent("""\
    schema_version: 1
    name: problems
    run: {citizens: 200, days: 5, seed: 1}
    behaviour:
      events:
        red_light: {rate: 0.01}
      deterrence:
        - {tiers: [D], events: [red_light], factor: 0.5}
    sensors:
      cameras:
        events: [red_light]
        misattribution: 0.01
    policy:
      use: reference
    """)

STYLE = re.compile(r"^got .+; expected .+?(; did you mean .+\?)?$", re.S)
"""A problem's message: what was found, the rule, and the closest names where there are any."""


def write(folder: Path, text: str) -> Path:
    path = folder / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def problems(folder: Path, text: str) -> dict[str, str]:
    """The problems of a scenario text by key: their messages."""
    with pytest.raises(UserError) as info:
        load_scenario(write(folder, text))
    return {p.path: p.message for p in info.value.problems}


# ------------------------------------------------------------------ the one style
def test_every_problem_names_path_rule_and_value():
    """A problem keeps where (the key path), the rule and the value apart; its message puts
    them in one sentence, the key in front."""
    problem = Problem(("sensors", "cameras", "coverage", "urbn"),
                      "a region of this society, one of: urban, rural", "urbn",
                      ("urban", "rural"))
    assert problem.key == "sensors.cameras.coverage.urbn"
    assert str(problem) == ("sensors.cameras.coverage.urbn: got 'urbn'; expected a region of "
                            "this society, one of: urban, rural; did you mean 'urban'?")
    assert Problem(("rules", 0, "points"), "a number from 0 to 1", 1.5).message == \
        "got 1.5; expected a number from 0 to 1"


def test_a_name_with_nothing_close_gets_no_did_you_mean():
    assert closest("zzzz", ["urban", "rural"]) == []
    assert Problem(("x",), "one of: urban, rural", "zzzz", ("urban", "rural")).message == \
        "got 'zzzz'; expected one of: urban, rural"


def test_a_name_sharing_its_first_word_with_a_known_one_is_close():
    """``red_lite`` is far from ``red_light`` by spelling but shares its first word."""
    assert "red_light" in closest("red_lite", ["red_light", "jaywalking"])


def test_a_missing_value_shows_as_nothing_and_a_long_one_is_cut():
    assert shown(None) == "nothing"
    assert len(shown("x" * 500)) == 60 and shown("x" * 500).endswith("...")
    assert shown(2 / 3) == "0.6666666667"


@given(path=st.lists(st.one_of(st.text(min_size=1, max_size=8).filter(str.isidentifier),
                               st.integers(0, 9)), min_size=1, max_size=4)
       .filter(lambda p: isinstance(p[0], str)),
       rule=st.text(min_size=1, max_size=40).filter(lambda r: r.strip() == r and r),
       value=st.one_of(st.none(), st.text(max_size=80), st.integers(), st.floats(),
                       st.booleans(), st.lists(st.text(max_size=5), max_size=4)),
       known=st.lists(st.text(min_size=1, max_size=10), max_size=5))
def test_every_problem_renders_in_the_one_style(path, rule, value, known):
    """Whatever the path, rule and value, a problem reads ``KEY: got VALUE; expected RULE``
    and, when it suggests names, ends with ``; did you mean 'NAME'?``."""
    problem = Problem(tuple(path), rule, value, tuple(known))
    assert str(problem) == f"{problem.key}: {problem.message}"
    assert problem.message.startswith(f"got {shown(value)}; expected {rule}")
    assert STYLE.match(problem.message), problem.message
    suggested = problem.message.removeprefix(f"got {shown(value)}; expected {rule}")
    assert suggested == "" or (suggested.startswith("; did you mean ")
                               and suggested.endswith("?"))


BROKEN = {  # id: (valid text, broken text, key path)
    "event_in_sensor": ("events: [red_light]\n", "events: [red_light, jaywalkin]\n",
                        "sensors.cameras.events[1]"),
    "tier": ("tiers: [D]", "tiers: [DD]", "behaviour.deterrence[0].tiers[0]"),
    "duplicate": ("events: [red_light]\n", "events: [red_light, red_light]\n",
                  "sensors.cameras.events[1]"),
    "coverage": ("    misattribution: 0.01", "    misattribution: 0.01\n"
                                            "    coverage: {urban: 0.5}",
                 "sensors.cameras.coverage"),
    "condition": ("red_light: {rate: 0.01}", "red_light: {rate: 0.01}\n"
                                             "  responses:\n"
                                             "    - {when: 'scroe < 600', events: [red_light],"
                                             " factor: 0.5}",
                  "behaviour.responses[0].when"),
    "lender": ("    misattribution: 0.01", "    misattribution: 0.01\n"
                                           "opportunities:\n"
                                           "  loan: {accept_at_min: 0.5}",
               "opportunities.loan.accept_at_min"),
}


@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_every_check_reports_in_the_one_style(tmp_path, case):
    """Checks of every kind (names, duplicates, tables by category, conditions, lending)
    report ``got VALUE; expected RULE``."""
    old, new, key = case
    found = problems(tmp_path, SCENARIO.replace(old, new))
    assert key in found, found
    assert STYLE.match(found[key]), found[key]


# ------------------------------------------------------------------ did you mean
MISSPELLED = {  # id: (valid text, misspelled text, key path, the name meant)
    "scenario_key": ("misattribution: 0.01", "misatribution: 0.01",
                     "sensors.cameras.misatribution", "misattribution"),
    "event_in_sensor": ("events: [red_light]\n", "events: [red_lihgt]\n",
                        "sensors.cameras.events[0]", "red_light"),
    "tier": ("tiers: [D]", "tiers: [DD]", "behaviour.deterrence[0].tiers[0]", "D"),
    "source": ("  cameras:\n", "  camerass:\n", "sensors.camerass", "cameras"),
    "policy_preset": ("use: reference", "use: refrence", "policy.use", "reference"),
}


@pytest.mark.parametrize("case", MISSPELLED.values(), ids=MISSPELLED.keys())
def test_misspelled_names_get_a_did_you_mean(tmp_path, case):
    """A scenario key, an event in a sensor, a tier, a data source and a policy preset named
    by ``use``: each misspelling comes with the name it was meant to be."""
    old, new, key, meant = case
    found = problems(tmp_path, SCENARIO.replace(old, new))
    assert key in found, found
    assert f"did you mean '{meant}'" in found[key]


# ------------------------------------------------------------------ policy references
WRONG_REFERENCE = (SCENARIO.replace("use: reference", "use: rongcheng_pionts")
                   .replace("misattribution: 0.01", "misatribution: 0.01"))


def test_bad_policy_reference_does_not_hide_other_problems(tmp_path):
    """``use: rongcheng_pionts`` and a misspelled key elsewhere: one error gives both, each at
    its line, the reference with its did-you-mean."""
    file = write(tmp_path, WRONG_REFERENCE)
    with pytest.raises(UserError) as info:
        load_scenario(file)
    by_key = {p.path: p for p in info.value.problems}
    assert set(by_key) == {"policy.use", "sensors.cameras.misatribution"}
    use, typo = by_key["policy.use"], by_key["sensors.cameras.misatribution"]
    assert use.line == line_of(WRONG_REFERENCE, "use:")
    assert typo.line == line_of(WRONG_REFERENCE, "misatribution")
    assert use.message.startswith("got 'rongcheng_pionts'; expected a policy preset")
    assert use.message.endswith("did you mean 'rongcheng_points'?")
    assert "did you mean 'misattribution'?" in typo.message


def test_bad_policy_name_does_not_hide_name_checks_of_the_rest(tmp_path):
    """``policy: NAME`` misspelled and an unknown event in a sensor: both reported (the rest
    of the file is still checked, only without a policy)."""
    text = (SCENARIO.replace("policy:\n  use: reference\n", "policy: refrence\n")
            .replace("events: [red_light]\n", "events: [red_light, jaywalkin]\n"))
    found = problems(tmp_path, text)
    assert set(found) == {"policy", "sensors.cameras.events[1]"}
    assert found["policy"].endswith("did you mean 'reference'?")
    assert found["sensors.cameras.events[1]"].endswith("did you mean 'jaywalking'?")


def test_run_with_a_bad_policy_reference_exits_2_and_prints_every_problem(tmp_path):
    """The CLI prints both problems, each as FILE:LINE:COL: KEY: message, and exits 2."""
    file = write(tmp_path, WRONG_REFERENCE)
    result = runner.invoke(app, ["run", str(file)])
    assert result.exit_code == 2, result.output
    use_line = line_of(WRONG_REFERENCE, "use:")
    typo_line = line_of(WRONG_REFERENCE, "misatribution")
    assert f"{file}:{use_line}:" in result.stderr
    assert "policy.use: got 'rongcheng_pionts'; expected a policy preset" in result.stderr
    assert f"{file}:{typo_line}:5: sensors.cameras.misatribution:" in result.stderr
    assert "did you mean 'misattribution'?" in result.stderr
