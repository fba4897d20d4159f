"""Bad scenario files get a clear UserError naming file, line, column, key path, expected and found."""

from __future__ import annotations

import copy
import math
import string
import tempfile
import textwrap
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from panopticon.errors import Problem, UserError
from panopticon.scenario import (
    ScenarioSpec,
    load_policy,
    load_preset,
    load_scenario,
    policy_preset_names,
    policy_preset_path,
    preset_names,
    preset_path,
    scenario_from_data,
)
from panopticon.specfile import read_yaml

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
      deterrence:
        - {tiers: [D], events: [red_light], factor: 0.98}
    sensors:
      cameras:
        events: [red_light]
        detection: 0.7
    policy: reference
    """)

INLINE_POLICY = textwrap.dedent("""\
    schema_version: 1
    name: tiny
    run:
      citizens: 200
      days: 3
    policy:
      name: p
      rules:
        - {event: red_light, points: -5}
        - {event: jaywalking, points: POINTS}
      tiers:
        - {name: A, min: MIN_A}
        - {name: B, min: MIN_B}
        - {name: C}
    """)


def inline_policy(points: str = "1", min_a: str = "950", min_b: str = "900") -> str:
    """The inline-policy scenario with the placeholders filled in."""
    return (INLINE_POLICY.replace("POINTS", points).replace("MIN_A", min_a)
            .replace("MIN_B", min_b))


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    """Write ``text`` to a file in ``tmp_path`` and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def where(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the ``nth`` occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    before = text[:start]
    return before.count("\n") + 1, start - (before.rfind("\n") + 1) + 1


def refused(path: Path) -> UserError:
    """The UserError that loading ``path`` raises (fails the test if it loads)."""
    with pytest.raises(UserError) as info:
        load_scenario(path)
    return info.value


def problem_at(exc: UserError, file: Path, path: str, line: int, column: int | None = None,
               *fragments: str) -> Problem:
    """The problem reported for ``path``, checked for file, line, column and message fragments.

    Also checks that the rendered error (what the CLI prints) shows ``file:line:col: path:``.
    """
    matches = [p for p in exc.problems if p.path == path]
    assert matches, f"no problem reported for {path!r}; got:\n{exc}"
    p = matches[0]
    assert p.file == str(file), str(exc)
    assert p.line == line, f"{path}: expected line {line}, got {p.line}\n{exc}"
    if column is not None:
        assert p.column == column, f"{path}: expected column {column}, got {p.column}\n{exc}"
    for fragment in fragments:
        assert fragment in p.message, f"{fragment!r} not in {p.message!r}"
    assert f"{file}:{p.line}:{p.column}: {path}: " in str(exc), str(exc)
    return p


# ------------------------------------------------------------------ the good cases


def test_good_scenario_loads(tmp_path):
    """A well-formed scenario file loads into a ScenarioSpec with its values."""
    spec = load_scenario(write(tmp_path, GOOD))
    assert spec.name == "tiny" and spec.run.citizens == 200 and spec.run.days == 3


@pytest.mark.parametrize("name", preset_names())
def test_every_packaged_scenario_preset_loads(name):
    """Every packaged scenario preset is a valid scenario named after its file."""
    assert load_preset(name).name == name


@pytest.mark.parametrize("name", policy_preset_names())
def test_every_packaged_policy_preset_loads(name):
    """Every packaged policy preset is a valid policy file."""
    assert load_policy(policy_preset_path(name)).name == name


def test_presets_are_found():
    """The package ships at least the reference and seed_article presets."""
    assert {"reference", "seed_article"} <= set(preset_names())


# ------------------------------------------------------------------ typos and wrong values


def test_unknown_key_under_run_is_reported_with_line_and_path(tmp_path):
    """A typo'd key under run is refused with its line, column and dotted path."""
    text = GOOD.replace("  citizens: 200", "  citizns: 200")
    file = write(tmp_path, text)
    line, col = where(text, "citizns")
    problem_at(refused(file), file, "run.citizns", line, col, "expected a known key here")


def test_unknown_key_under_a_sensor_is_reported_with_line_and_path(tmp_path):
    """A typo'd key under a sensor is refused with its line, column and dotted path."""
    text = GOOD.replace("    detection: 0.7", "    detecton: 0.7")
    file = write(tmp_path, text)
    line, col = where(text, "detecton")
    problem_at(refused(file), file, "sensors.cameras.detecton", line, col, "expected a known key here")


def test_negative_rate_is_reported_saying_it_must_not_be_negative(tmp_path):
    """A negative rate is refused at its line, saying it must be >= 0 and showing the value."""
    text = GOOD.replace("rate: 0.01", "rate: -0.5")
    file = write(tmp_path, text)
    line, col = where(text, "rate")
    problem_at(refused(file), file, "behaviour.events.red_light.rate", line, col,
               "greater than or equal to 0", "-0.5")


def test_negative_rate_is_reported_once_without_union_jargon(tmp_path):
    """A bad number in a number-or-distribution key gives one clear message, not one per union arm."""
    text = GOOD.replace("rate: 0.01", "rate: -0.5")
    exc = refused(write(tmp_path, text))
    mine = [p for p in exc.problems if p.path == "behaviour.events.red_light.rate"]
    assert len(mine) == 1, f"one problem expected for the rate; got:\n{exc}"
    assert "dictionary or object to extract fields" not in str(exc), str(exc)


def test_string_where_a_number_belongs_says_integer_expected_and_shows_it(tmp_path):
    """A word where a whole number belongs is refused, saying an integer was expected and what was found."""
    text = GOOD.replace("  days: 3", "  days: three")
    file = write(tmp_path, text)
    line, col = where(text, "days")
    problem_at(refused(file), file, "run.days", line, col, "integer", "'three'")


def test_zero_citizens_is_refused_at_its_line(tmp_path):
    """citizens: 0 is refused at its line, saying it must be at least 1."""
    text = GOOD.replace("citizens: 200", "citizens: 0")
    file = write(tmp_path, text)
    line, col = where(text, "citizens")
    problem_at(refused(file), file, "run.citizens", line, col, "greater than or equal to 1", "0")


def test_with_run_refuses_negative_citizens():
    """Overriding run settings with citizens=-1 raises UserError naming citizens."""
    spec = load_preset("reference")
    with pytest.raises(UserError) as info:
        spec.with_run(citizens=-1)
    assert "citizens" in str(info.value)
    assert "greater than or equal to 1" in str(info.value)


def test_with_run_accepts_valid_overrides():
    """Overriding run settings with valid values returns a copy with them and keeps the rest."""
    spec = load_preset("reference")
    small = spec.with_run(citizens=500, days=5)
    assert (small.run.citizens, small.run.days, small.run.seed) == (500, 5, spec.run.seed)
    assert spec.run.citizens == 100000


# ------------------------------------------------------------------ YAML-level refusals


def test_yaml_alias_bomb_is_refused_at_the_first_alias(tmp_path):
    """A billion-laughs alias bomb is refused (not expanded) at the first alias's line and column."""
    text = textwrap.dedent("""\
        a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
        h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
        i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
        """)
    file = write(tmp_path, text)
    exc = refused(file)
    line, col = where(text, "*a")
    assert len(exc.problems) == 1
    p = exc.problems[0]
    assert (p.file, p.line, p.column) == (str(file), line, col), str(exc)
    assert "aliases" in p.message
    assert f"{file}:{line}:{col}:" in str(exc)


def test_single_alias_is_refused_with_its_position(tmp_path):
    """Even one harmless-looking alias is refused, with its line and column."""
    text = GOOD.replace("name: tiny", "name: &n tiny\ndescription: *n")
    file = write(tmp_path, text)
    exc = refused(file)
    line, col = where(text, "*n")
    assert (exc.problems[0].line, exc.problems[0].column) == (line, col), str(exc)
    assert "aliases" in str(exc)


def test_empty_file_is_refused_naming_the_file(tmp_path):
    """An empty file is refused, naming the file and saying a mapping was expected."""
    file = write(tmp_path, "")
    exc = refused(file)
    assert str(file) in str(exc) and "empty" in str(exc) and "mapping" in str(exc)


def test_comment_only_file_is_refused_as_empty(tmp_path):
    """A file with only comments is refused as empty, naming the file."""
    file = write(tmp_path, "# nothing here yet\n\n")
    exc = refused(file)
    assert str(file) in str(exc) and "empty" in str(exc)


def test_missing_file_is_refused_naming_the_file(tmp_path):
    """A file that does not exist is refused, naming it and saying it does not exist."""
    file = tmp_path / "nope.yaml"
    exc = refused(file)
    assert str(file) in str(exc) and "no such file" in str(exc)


def test_folder_instead_of_file_is_refused_naming_it(tmp_path):
    """A folder given as a scenario is refused, naming it and saying a YAML file was expected."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    exc = refused(folder)
    assert str(folder) in str(exc) and "folder" in str(exc) and "YAML file" in str(exc)


def test_non_utf8_file_is_refused_naming_the_file(tmp_path):
    """A file that is not UTF-8 text is refused, naming it."""
    file = tmp_path / "binary.yaml"
    file.write_bytes(b"\xff\xfe\x00\x01name: x\n")
    exc = refused(file)
    assert str(file) in str(exc) and "UTF-8" in str(exc)


def test_invalid_yaml_syntax_is_reported_at_its_line(tmp_path):
    """A YAML syntax error is reported with file, the line and column where it is."""
    text = GOOD.replace("name: tiny", "name: tiny: x")
    file = write(tmp_path, text)
    exc = refused(file)
    line, col = where(text, ": x")
    assert len(exc.problems) == 1, str(exc)
    p = exc.problems[0]
    assert (p.file, p.line, p.column) == (str(file), line, col), str(exc)
    assert "not allowed" in p.message
    assert f"{file}:{line}:{col}:" in str(exc)


def test_bad_indentation_is_reported_at_its_line(tmp_path):
    """A key indented wrongly is reported at the line it is on."""
    text = GOOD.replace("  days: 3", " days: 3")
    file = write(tmp_path, text)
    exc = refused(file)
    line, _ = where(text, " days: 3")
    assert exc.problems and exc.problems[0].line == line, str(exc)
    assert f"{file}:{line}:" in str(exc)


def test_duplicate_key_is_reported_at_its_second_occurrence(tmp_path):
    """A key given twice in one mapping is refused at the second one, with its path."""
    text = GOOD.replace("  days: 3", "  days: 3\n  citizens: 300")
    file = write(tmp_path, text)
    line, col = where(text, "citizens", nth=1)
    problem_at(refused(file), file, "run.citizens", line, col, "duplicate key")


def test_duplicate_top_level_key_is_reported(tmp_path):
    """A top-level key given twice is refused at the second one, with its name."""
    text = GOOD + "name: again\n"
    file = write(tmp_path, text)
    line, col = where(text, "name: again")
    problem_at(refused(file), file, "name", line, col, "duplicate key")


def test_unknown_yaml_tag_is_a_user_error(tmp_path):
    """A YAML tag the safe loader does not know (e.g. !!python/object) is a UserError at its line."""
    text = GOOD.replace("name: tiny", "name: !!python/object:os.system tiny")
    file = write(tmp_path, text)
    line, _ = where(text, "!!python")
    exc = refused(file)
    assert exc.problems and exc.problems[0].line == line, str(exc)
    assert str(file) in str(exc)


def test_custom_yaml_tag_is_a_user_error(tmp_path):
    """A local YAML tag such as !foo is a UserError naming the file and line."""
    text = GOOD.replace("name: tiny", "name: !foo tiny")
    file = write(tmp_path, text)
    line, _ = where(text, "!foo")
    exc = refused(file)
    assert exc.problems and exc.problems[0].line == line, str(exc)


def test_deeply_nested_yaml_is_a_user_error(tmp_path):
    """A small file of deeply nested brackets is refused as a UserError, not a RecursionError."""
    file = write(tmp_path, "schema_version: 1\nname: x\npolicy: " + "[" * 3000 + "]" * 3000 + "\n")
    exc = refused(file)
    assert str(file) in str(exc)


def test_non_mapping_top_level_is_refused_saying_a_mapping_was_expected(tmp_path):
    """A list at the top level is refused at line 1, saying a mapping was expected and a list found."""
    file = write(tmp_path, "- schema_version: 1\n- name: tiny\n")
    exc = refused(file)
    assert len(exc.problems) == 1
    p = exc.problems[0]
    assert (p.file, p.line, p.column) == (str(file), 1, 1)
    assert "mapping" in p.message and "list" in p.message


def test_scalar_top_level_is_refused_saying_a_mapping_was_expected(tmp_path):
    """A bare word as the whole file is refused, saying a mapping was expected."""
    file = write(tmp_path, "hello\n")
    exc = refused(file)
    assert "mapping" in str(exc) and "str" in str(exc) and str(file) in str(exc)


def test_non_word_keys_are_refused_at_their_line(tmp_path):
    """A key that is a list (``? [a]``) is refused at its line."""
    text = GOOD + "? [a, b]\n: 1\n"
    file = write(tmp_path, text)
    exc = refused(file)
    line, _ = where(text, "? [a")
    assert any(p.line == line and "keys" in p.message for p in exc.problems), str(exc)


# ------------------------------------------------------------------ schema_version


@pytest.mark.parametrize("version", ["2", "0", "'1'", "v1"])
def test_wrong_schema_version_is_refused_naming_the_supported_one(tmp_path, version):
    """A schema_version other than 1 is refused at its line, saying 1 is read and what was found."""
    text = GOOD.replace("schema_version: 1", f"schema_version: {version}")
    file = write(tmp_path, text)
    line, col = where(text, "schema_version")
    p = problem_at(refused(file), file, "schema_version", line, col, "1")
    assert "got" in p.message


def test_boolean_schema_version_is_refused(tmp_path):
    """schema_version: true is not version 1 and is refused."""
    text = GOOD.replace("schema_version: 1", "schema_version: true")
    file = write(tmp_path, text)
    with pytest.raises(UserError) as info:
        spec = load_scenario(file)
        pytest.fail(f"schema_version: true was accepted as {spec.schema_version!r}")
    problem_at(info.value, file, "schema_version", 1, 1)


def test_missing_schema_version_is_reported_as_a_required_key(tmp_path):
    """A scenario without schema_version is refused, naming the key as required."""
    text = GOOD.replace("schema_version: 1\n", "")
    file = write(tmp_path, text)
    problem_at(refused(file), file, "schema_version", 1, 1, "required")


# ------------------------------------------------------------------ cross-references


def test_unknown_event_type_is_reported_with_a_suggestion(tmp_path):
    """An unknown event type is refused at its key with a did-you-mean and a pointer to `events`."""
    text = GOOD.replace("red_light: {rate", "red_lite: {rate")
    file = write(tmp_path, text)
    line, col = where(text, "red_lite")
    problem_at(refused(file), file, "behaviour.events.red_lite", line, col,
               "got 'red_lite'; expected a known event type", "did you mean 'red_light'?",
               "panopticon events")


def test_unknown_event_in_a_sensor_list_is_reported_at_its_item(tmp_path):
    """An unknown event inside a sensor's events list is refused at the list item."""
    text = GOOD.replace("events: [red_light]\n", "events: [red_light, jaywalkin]\n")
    file = write(tmp_path, text)
    line, col = where(text, "jaywalkin")
    problem_at(refused(file), file, "sensors.cameras.events[1]", line, col,
               "got 'jaywalkin'; expected a known event type")


def test_unknown_tier_in_deterrence_is_reported_with_the_known_tiers(tmp_path):
    """A deterrence tier the policy lacks is refused at the list item, listing the policy's tiers."""
    text = GOOD.replace("tiers: [D]", "tiers: [Z]")
    file = write(tmp_path, text)
    line, col = where(text, "Z]")
    problem_at(refused(file), file, "behaviour.deterrence[0].tiers[0]", line, col,
               "got 'Z'; expected a tier of the policy", "one of: A, B, C, D")


def test_unknown_policy_preset_is_reported_with_the_known_presets(tmp_path):
    """policy: NAME that is no preset is refused at the policy key, listing the presets."""
    text = GOOD.replace("policy: reference", "policy: nope")
    file = write(tmp_path, text)
    line, col = where(text, "policy")
    problem_at(refused(file), file, "policy", line, col, "got 'nope'; expected a policy preset",
               "reference", "seed_article")


def test_policy_preset_name_with_a_path_is_an_unknown_preset(tmp_path):
    """policy: ../../scenarios/reference is not a preset name and is refused as an unknown preset."""
    text = GOOD.replace("policy: reference", "policy: ../../scenarios/reference")
    file = write(tmp_path, text)
    line, col = where(text, "policy")
    problem_at(refused(file), file, "policy", line, col, "expected a policy preset")


def test_unknown_data_source_is_reported_with_the_known_sources(tmp_path):
    """A sensor that is no known data source is refused at its key, listing the known ones."""
    text = GOOD.replace("  cameras:\n", "  camras:\n")
    file = write(tmp_path, text)
    line, col = where(text, "camras")
    problem_at(refused(file), file, "sensors.camras", line, col, "expected a known data source",
               "cameras")


# ------------------------------------------------------------------ policy rules


def test_tier_mins_not_decreasing_is_reported_at_the_tiers(tmp_path):
    """Tier mins that do not strictly decrease are refused at policy.tiers, showing the mins."""
    text = inline_policy(min_a="900", min_b="950")
    file = write(tmp_path, text)
    line, col = where(text, "tiers")
    problem_at(refused(file), file, "policy.tiers", line, col, "decrease", "900", "950")


def test_tier_mins_not_decreasing_is_refused_with_the_mins(tmp_path):
    """Tier mins that do not strictly decrease are refused, saying so and showing the mins."""
    exc = refused(write(tmp_path, inline_policy(min_a="900", min_b="950")))
    assert "strictly decrease" in str(exc) and "[900.0, 950.0]" in str(exc), str(exc)


def test_points_with_more_than_3_decimals_are_reported_at_the_rule(tmp_path):
    """Rule points finer than a thousandth are refused at policy.rules[i].points, showing the value."""
    text = inline_policy(points="1.2345")
    file = write(tmp_path, text)
    line, col = where(text, "points: 1.2345")
    problem_at(refused(file), file, "policy.rules[1].points", line, col, "3 decimals", "1.2345")


def test_points_with_3_decimals_are_accepted(tmp_path):
    """Rule points with exactly three decimals are accepted."""
    spec = load_scenario(write(tmp_path, inline_policy(points="1.234")))
    assert spec.policy.rules[1].points == 1.234


@pytest.mark.parametrize("value", [".inf", "-.inf", "1e400"])
def test_infinite_points_are_a_user_error(tmp_path, value):
    """Infinite rule points are refused as a UserError at the rule, not an OverflowError."""
    text = inline_policy(points=value)
    file = write(tmp_path, text)
    line, _ = where(text, f"points: {value}")
    problem_at(refused(file), file, "policy.rules[1].points", line)


def test_infinite_score_start_is_a_user_error(tmp_path):
    """An infinite score start is refused as a UserError, not an OverflowError."""
    text = inline_policy().replace("  rules:", "  score: {start: .inf}\n  rules:")
    exc = refused(write(tmp_path, text))
    assert "policy.score" in str(exc)


@pytest.mark.parametrize("key", ["households:\n    size", "official_rank"])
def test_infinite_whole_number_tables_are_a_user_error(tmp_path, key):
    """An infinite household size or official rank is refused as a UserError, not an OverflowError."""
    text = GOOD.replace("run:", f"society:\n  {key}: {{values: [.inf], weights: [1]}}\nrun:")
    exc = refused(write(tmp_path, text))
    assert "society" in str(exc)


# ------------------------------------------------------------------ several problems at once


def test_several_errors_are_reported_together_each_with_its_line(tmp_path):
    """Every schema problem in a file is reported in one error, each at its own line."""
    text = textwrap.dedent("""\
        schema_version: 1
        name: tiny
        run:
          citizns: 200
          days: -3
          seed: abc
        sensors:
          cameras:
            events: [red_light]
            detecton: 0.7
        policy: reference
        """)
    file = write(tmp_path, text)
    exc = refused(file)
    problem_at(exc, file, "run.citizns", *where(text, "citizns"), "expected a known key here")
    problem_at(exc, file, "run.days", *where(text, "days"), "greater than or equal to 1", "-3")
    problem_at(exc, file, "run.seed", *where(text, "seed"), "integer", "'abc'")
    problem_at(exc, file, "sensors.cameras.detecton", *where(text, "detecton"), "expected a known key here")
    assert len({p.line for p in exc.problems}) == 4


def test_several_reference_errors_are_reported_together(tmp_path):
    """An unknown event and an unknown tier in one file are both reported, each at its line."""
    text = GOOD.replace("red_light: {rate", "red_lite: {rate").replace("tiers: [D]", "tiers: [Z]")
    file = write(tmp_path, text)
    exc = refused(file)
    problem_at(exc, file, "behaviour.events.red_lite", *where(text, "red_lite"),
               "expected a known event type")
    problem_at(exc, file, "behaviour.deterrence[0].tiers[0]", *where(text, "Z]"),
               "expected a tier of the policy")


def test_schema_and_reference_errors_are_reported_together(tmp_path):
    """A typo'd key and an unknown event type in one file are both reported in the same error."""
    text = GOOD.replace("  citizens: 200", "  citizns: 200").replace("red_light: {rate",
                                                                    "red_lite: {rate")
    file = write(tmp_path, text)
    exc = refused(file)
    problem_at(exc, file, "run.citizns", *where(text, "citizns"), "expected a known key here")
    problem_at(exc, file, "behaviour.events.red_lite", *where(text, "red_lite"),
               "expected a known event type")


# ------------------------------------------------------------------ invariants


def _plain_word(key: str) -> bool:
    try:
        return yaml.safe_load(key) == key
    except yaml.YAMLError:
        return False


@settings(max_examples=60, deadline=None)
@given(key=st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=20)
       .filter(lambda k: k not in ScenarioSpec.model_fields and _plain_word(k)))
def test_any_unknown_top_level_key_is_refused_naming_that_key(key):
    """Any unknown top-level key is refused, naming the key at the line it is on."""
    text = GOOD + f"{key}: 1\n"
    with tempfile.TemporaryDirectory() as tmp:
        file = write(Path(tmp), text)
        with pytest.raises(UserError) as info:
            load_scenario(file)
        problem_at(info.value, file, key, text.count("\n"), 1, "expected a known key here")


def _models(annotation, out: set) -> set:
    """Every pydantic model reachable from a type annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in out:
        out.add(annotation)
        for field in annotation.model_fields.values():
            _models(field.annotation, out)
    for arg in typing.get_args(annotation):
        _models(arg, out)
    return out


def _field_names() -> list[str]:
    """Every key name the scenario schema knows, to steer generated data into deep validation."""
    names = {name for model in _models(ScenarioSpec, set()) for name in model.model_fields}
    return sorted(names | {"normal", "lognormal", "uniform", "table", "constant", "reference",
                           "red_light", "cameras", "friends", "urban", "D"})


FIELDS = _field_names()
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(FIELDS),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8))
yaml_data = st.recursive(
    scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(keys, kids, max_size=5)),
    max_leaves=25,
)
scenario_like = st.fixed_dictionaries(
    {"schema_version": st.just(1), "name": st.just("fuzz"),
     "policy": st.one_of(st.just("reference"), yaml_data)},
    optional={k: yaml_data for k in ("run", "society", "behaviour", "sensors", "description")},
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(yaml_data, scenario_like))
def test_arbitrary_yaml_data_only_raises_user_error(data):
    """Whatever YAML-able data a file holds, loading it returns a scenario or raises UserError only."""
    text = yaml.safe_dump(data, allow_unicode=True)
    with tempfile.TemporaryDirectory() as tmp:
        file = write(Path(tmp), text)
        try:
            load_scenario(file)
        except UserError as exc:
            assert str(exc)


HOSTILE = [math.inf, -math.inf, math.nan, 1e308, -1e308, 10**30, -(10**30), -1, 0, 0.5, "",
           "x", None, True, [], {}, [1], {"kind": "normal"}]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _replace(data, path, value):
    out = copy.deepcopy(data)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize("name", preset_names())
def test_no_single_hostile_value_in_a_preset_escapes_as_a_traceback(name):
    """Replacing any one value of a preset by a hostile value (inf, nan, huge, wrong type) gives
    a valid scenario or a UserError, never another exception."""
    data, positions = read_yaml(preset_path(name))
    if isinstance(data.get("policy"), str):
        data["policy"], _ = read_yaml(policy_preset_path(data["policy"]))
    escaped = []
    for path in list(_paths(data))[1:]:
        for value in HOSTILE:
            try:
                scenario_from_data(_replace(data, path, value), positions, f"{name}.yaml")
            except UserError:
                pass
            except Exception as exc:  # noqa: BLE001 - the point is that nothing else escapes
                escaped.append(f"{'.'.join(map(str, path))} = {value!r}: {type(exc).__name__}: {exc}")
    assert not escaped, f"{len(escaped)} non-UserError exceptions, e.g.\n" + "\n".join(escaped[:15])
