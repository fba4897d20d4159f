"""Policies by reference: ``policy: {use: NAME_OR_PATH, set: {dotted.key: value}}`` in a
scenario, resolved to the full policy before anything else sees it (so a stored run and its
digest are those of the policy written out), with errors at the scenario's line and key."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

import panopticon as pc
from panopticon.errors import UserError
from panopticon.scenario import load_scenario, policy_preset_path, scenario_from_data

HEAD = textwrap.dedent("""\
    schema_version: 1
    name: by_reference
    run: {citizens: 400, days: 12, seed: 5}
    """)

USED = textwrap.dedent("""\
    policy:
      use: rongcheng_points
      set:
        rules.0.points: -77
        score.start: 950
    """)


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def where(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` in ``text``."""
    return text[:text.index(needle)].count("\n") + 1


def refused(path: Path) -> UserError:
    with pytest.raises(UserError) as info:
        load_scenario(path)
    return info.value


def only(exc: UserError, key: str):
    found = [p for p in exc.problems if p.path == key]
    assert found, f"no problem at {key!r}:\n{exc}"
    return found[0]


def pasted(tmp_path: Path) -> Path:
    """The same scenario with rongcheng_points pasted and the same two values edited by hand."""
    policy = yaml.safe_load(policy_preset_path("rongcheng_points").read_text())
    policy["rules"][0]["points"] = -77
    policy["score"]["start"] = 950
    return write(tmp_path, HEAD + yaml.safe_dump({"policy": policy}, sort_keys=False),
                 "pasted.yaml")


def test_use_with_set_is_the_preset_with_the_values_changed(tmp_path):
    """use: rongcheng_points, set rules.0.points -77 and score.start 950: the preset's policy
    with those two values, everything else as the preset says."""
    spec = load_scenario(write(tmp_path, HEAD + USED))
    preset = pc.load("rongcheng_points").policy
    assert spec.policy.rules[0].points == -77 and spec.policy.score.start == 950
    assert spec.policy.rules[1:] == preset.rules[1:]
    assert spec.policy.tiers == preset.tiers and spec.policy.name == preset.name


def test_use_and_the_pasted_policy_have_one_digest_one_fingerprint_one_scenario_json(tmp_path):
    """A run from use/set and one from the pasted policy with the same values are the same
    run: same scenario digest, same fingerprint, byte-identical stored scenario.json, which
    holds the full resolved policy (no use, no set)."""
    by_ref = load_scenario(write(tmp_path, HEAD + USED))
    by_hand = load_scenario(pasted(tmp_path))
    assert by_ref.digest == by_hand.digest
    a = pc.run(by_ref, out=tmp_path / "runs")
    b = pc.run(by_hand, out=tmp_path / "runs")
    assert a.manifest["result"]["fingerprint"] == b.manifest["result"]["fingerprint"]
    stored = (a.path / "scenario.json").read_text()
    assert stored == (b.path / "scenario.json").read_text()
    policy = json.loads(stored)["policy"]
    assert "use" not in policy and "set" not in policy
    assert policy["rules"][0]["points"] == -77 and len(policy["rules"]) > 1
    again = pc.run(scenario_from_data(json.loads(stored), {}, "scenario.json"))
    assert again.manifest["result"]["fingerprint"] == a.manifest["result"]["fingerprint"]


def test_use_alone_is_the_policy_preset_by_name(tmp_path):
    """policy: {use: NAME} without set is exactly policy: NAME."""
    a = load_scenario(write(tmp_path, HEAD + "policy: {use: seed_article}\n", "a.yaml"))
    b = load_scenario(write(tmp_path, HEAD + "policy: seed_article\n", "b.yaml"))
    assert a.digest == b.digest


def test_use_a_policy_file_relative_to_the_scenario_folder(tmp_path):
    """use: ../policies/mine.yaml is read from the scenario file's folder, not the cwd."""
    write(tmp_path, textwrap.dedent("""\
        name: mine
        rules: [{event: red_light, points: -5}, {event: jaywalking, points: -2}]
        tiers: [{name: A, min: 1000}, {name: B}]
        """), "policies/mine.yaml")
    spec = load_scenario(write(tmp_path, HEAD + textwrap.dedent("""\
        policy:
          use: ../policies/mine.yaml
          set: {rules.1.points: -3, tiers.1.name: C}
        """), "scenarios/s.yaml"))
    assert [r.points for r in spec.policy.rules] == [-5, -3]
    assert spec.policy.tier_names == ["A", "C"]


def test_set_reaches_keys_the_used_policy_leaves_to_their_defaults(tmp_path):
    """rongcheng_points has no scope: set scope.exempt still works (defaults are written out
    before set), and the result is the preset with that exemption."""
    spec = load_scenario(write(tmp_path, HEAD + "policy:\n  use: rongcheng_points\n"
                                                "  set: {scope.exempt: 'rank >= 3'}\n"))
    assert spec.policy.scope.exempt == "rank >= 3"
    assert spec.policy.rules == pc.load("rongcheng_points").policy.rules


def test_a_set_value_may_replace_a_whole_list_item_or_mapping(tmp_path):
    """set rules.0 to a mapping replaces the whole rule (no merge); score to a mapping replaces
    the score block."""
    spec = load_scenario(write(tmp_path, HEAD + textwrap.dedent("""\
        policy:
          use: rongcheng_points
          set:
            rules.0: {event: red_light, points: -1}
            score: {start: 900, min: 0, max: 1200}
        """)))
    assert spec.policy.rules[0].event == "red_light" and spec.policy.rules[0].points == -1
    assert spec.policy.rules[0].name is None
    assert (spec.policy.score.start, spec.policy.score.min) == (900, 0)


def test_unknown_preset_name_is_reported_at_use_with_did_you_mean(tmp_path):
    text = HEAD + "policy:\n  use: rongchen_points\n"
    file = write(tmp_path, text)
    p = only(refused(file), "policy.use")
    assert (p.file, p.line) == (str(file), where(text, "use:"))
    assert "got 'rongchen_points'; expected a policy preset" in p.message
    assert "did you mean 'rongcheng_points'" in p.message


def test_unknown_preset_name_in_the_short_form_has_did_you_mean_too(tmp_path):
    text = HEAD + "policy: seed_articel\n"
    p = only(refused(write(tmp_path, text)), "policy")
    assert "did you mean 'seed_article'" in p.message


def test_missing_policy_file_is_reported_at_use_naming_the_path(tmp_path):
    text = HEAD + "policy:\n  use: nothere.yaml\n"
    file = write(tmp_path, text)
    p = only(refused(file), "policy.use")
    assert p.line == where(text, "use:")
    assert "no such policy file" in p.message and str(tmp_path / "nothere.yaml") in p.message


def test_a_scenario_file_is_not_a_policy_file(tmp_path):
    write(tmp_path, HEAD + "policy: seed_article\n", "other.yaml")
    p = only(refused(write(tmp_path, HEAD + "policy: {use: other.yaml}\n")), "policy.use")
    assert "is a scenario" in p.message


def test_misspelled_set_key_is_reported_at_its_line_with_did_you_mean(tmp_path):
    """A set key naming nothing: the problem is at the set entry, key policy.set.<key>."""
    text = HEAD + "policy:\n  use: rongcheng_points\n  set:\n    rulez.0.points: -5\n"
    file = write(tmp_path, text)
    p = only(refused(file), "policy.set.rulez.0.points")
    assert (p.file, p.line, p.column) == (str(file), where(text, "rulez"), 5)
    assert "the policy has no 'rulez'" in p.message and "did you mean 'rules'" in p.message
    assert f"{file}:{p.line}:5: policy.set.rulez.0.points: " in str(refused(file))


def test_list_index_out_of_range_is_reported_at_its_set_entry(tmp_path):
    text = HEAD + "policy:\n  use: rongcheng_points\n  set:\n    rules.99.points: -5\n"
    p = only(refused(write(tmp_path, text)), "policy.set.rules.99.points")
    assert p.line == where(text, "rules.99") and "not an index of a list" in p.message


def test_a_bad_value_or_leaf_key_set_is_reported_at_the_set_entry(tmp_path):
    """A new leaf key (rules.0.pints) and a bad value are checked by the validator; their
    problems are at the set entries that wrote them, named by the resolved key."""
    text = HEAD + ("policy:\n  use: rongcheng_points\n  set:\n    rules.0.pints: 3\n"
                   "    score.every_days: 0\n")
    exc = refused(write(tmp_path, text))
    p = only(exc, "policy.rules[0].pints")
    assert p.line == where(text, "rules.0.pints") and "did you mean 'points'" in p.message
    q = only(exc, "policy.score.every_days")
    assert q.line == where(text, "score.every_days")


def test_a_key_of_the_scenario_prefixed_by_policy_gets_a_hint(tmp_path):
    """Written as on the command line (policy.rules.0.points), the key gets the fix."""
    text = HEAD + "policy:\n  use: rongcheng_points\n  set: {policy.name: x}\n"
    p = only(refused(write(tmp_path, text)), "policy.set.policy.name")
    assert "relative to the policy" in p.message and "'name'" in p.message


def test_keys_other_than_use_and_set_are_refused_with_did_you_mean(tmp_path):
    text = HEAD + "policy:\n  use: rongcheng_points\n  sett: {name: x}\n"
    p = only(refused(write(tmp_path, text)), "policy.sett")
    assert p.line == where(text, "sett") and "did you mean 'set'" in p.message


def test_set_without_use_is_refused(tmp_path):
    text = HEAD + "policy:\n  set: {name: x}\n"
    p = only(refused(write(tmp_path, text)), "policy")
    assert "'use' is missing" in p.message


def test_a_problem_in_the_used_policy_names_where_that_policy_wrote_it(tmp_path):
    """A policy file whose condition does not fit the scenario: reported at the scenario's
    use line, saying the used file and line."""
    write(tmp_path, textwrap.dedent("""\
        name: mine
        rules: [{event: red_light, points: -5}]
        tiers: [{name: A, min: 1000}, {name: B}]
        sanctions:
          - {when: 'tier == "Z"', deny: [flights]}
        """), "mine.yaml")
    text = HEAD + "policy: {use: mine.yaml}\n"
    p = only(refused(write(tmp_path, text)), "policy.sanctions[0].when")
    assert p.line == where(text, "policy:")
    assert f"in the used policy: {tmp_path / 'mine.yaml'}:5" in p.message


def test_a_file_path_needs_a_scenario_read_from_a_file():
    """Scenario data not read from a file (an upload, a test) cannot name a policy file."""
    data = yaml.safe_load(HEAD + "policy: {use: /etc/passwd}\n")
    with pytest.raises(UserError) as info:
        scenario_from_data(data, {}, "<dashboard>")
    assert "needs a scenario read from a file" in str(info.value)


def test_validate_accepts_a_scenario_by_reference(tmp_path):
    """`panopticon validate` checks use/set exactly as run loads it."""
    from typer.testing import CliRunner

    from panopticon.cli import app

    good = write(tmp_path, HEAD + USED)
    result = CliRunner().invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    bad = write(tmp_path, HEAD + "policy:\n  use: rongcheng_points\n  set: {rulez.0: 1}\n",
                "bad.yaml")
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2 and "policy.set.rulez.0" in result.output
