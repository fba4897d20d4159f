"""`panopticon explain RUN --citizen ID`: one citizen's story, line by line, from a stored run.

The golden case is hand-built: a real stored run of a small scenario whose ledger, observation,
list and refusal parts (and the citizen's row) are replaced with rows written by the store's own
table builders, so that every line of the story is known in advance. Bad input exits 2 with a
message that names the run, the valid citizen range or the broken file.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import build_scenario, policy_day, reseal
from typer.testing import CliRunner

from panopticon import api, engine
from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.explain import explain, parse_citizen, tell
from panopticon.policy.runtime import LIST_CHANGES, ListChanges
from panopticon.sanctions import OpportunityDay, Refusals
from panopticon.sensors import Observations
from panopticon.store import local, tables

runner = CliRunner()

STORY = {
    "schema_version": 1,
    "name": "story",
    "run": {"citizens": 30, "days": 7, "seed": 5, "checkpoint_every": 3},
    "behaviour": {"events": {}, "deterrence": []},
    "sensors": {"cameras": {"events": ["red_light"]}, "civic": {"events": ["volunteering"]},
                "police": {"events": ["drunk_driving"]}},
    "opportunities": {"flight": {"rate": 0.01}},
    "policy": {
        "name": "story",
        "score": {"start": 100, "min": 0, "max": 150},
        "rules": [{"event": "red_light", "points": -50},
                  {"event": "volunteering", "points": 5, "expires_after_days": 2},
                  {"event": "drunk_driving", "points": 0,
                   "override": {"max_tier": "C", "days": 2}}],
        "tiers": [{"name": "A", "min": 100}, {"name": "B", "min": 60}, {"name": "C"}],
        "lists": [{"name": "traffic", "kind": "blacklist", "enter_on": ["red_light"], "days": 3}],
        "sanctions": [{"when": 'tier == "C"', "deny": ["flights"]}],
        "association": [{"ties": "friends", "weight": 0.1, "every_days": 3}],
    },
}
CITIZEN, OTHER = 9, 12


def obs_id(day: int, index: int) -> int:
    """The run-wide id of the day's ``index``-th observation."""
    return (day << 32) + index


# The hand-built days. Citizen 9 is named for citizen 12's red light (false, -50: tier A -> C,
# listed for 3 days, two wrongful flight refusals, one a retry that got through touts); a pull
# of +12.5 lifts them to B; they volunteer (+5, expiring after 2 days); a true drunk-driving
# record caps their grade at C for days 4-5 (a rightful refusal); on day 6 the cap has ended.
LEDGER = {  # day: [(citizen, rule, delta_milli, observation, truth)]
    1: [(CITIZEN, "red_light", -50_000, obs_id(1, 0), 0),
        (OTHER, "red_light", -50_000, obs_id(1, 1), 1)],
    2: [(CITIZEN, "association:friends", 12_500, -1, -1), (OTHER, "association:friends", 3_000, -1, -1)],
    3: [(CITIZEN, "volunteering", 5_000, obs_id(3, 0), 1)],
    4: [(CITIZEN, "drunk_driving", 0, obs_id(4, 0), 1)],
    5: [(CITIZEN, "expired:volunteering", -5_000, obs_id(3, 0), 1)],
}
OBSERVATIONS = {  # day: [(citizen named, event, source, is_true, true_actor)]
    1: [(CITIZEN, "red_light", "cameras", False, OTHER), (OTHER, "red_light", "cameras", True, OTHER)],
    3: [(CITIZEN, "volunteering", "civic", True, CITIZEN)],
    4: [(CITIZEN, "drunk_driving", "police", True, CITIZEN)],
}
LISTS = {  # day: [(citizen, change, observation)]
    1: [(CITIZEN, "entered", obs_id(1, 0)), (OTHER, "entered", obs_id(1, 1))],
    4: [(CITIZEN, "expired", -1), (OTHER, "expired", -1)],
}
REFUSALS = {  # day: [(citizen, wrongful, evaded, retry)]
    1: [(CITIZEN, True, False, False), (CITIZEN, True, True, True), (OTHER, False, False, False)],
    4: [(CITIZEN, False, False, False)],
}
ATTRIBUTES = {"age": 41, "sex": "male", "region": "rural", "social_group": "minority",
              "residency": "citizen", "occupation": "farmer", "score": 62.5, "tier": "B",
              "false_points": -50.0, "listed_traffic": False}
OTHER_STANDING = {"score": 53.0, "tier": "C", "false_points": 0.0, "listed_traffic": False}

GOLDEN = [
    "citizen 9: age 41, male, region rural, group minority, residency citizen, occupation farmer; "
    "final score 62.5, tier B, false points -50, listed: none",
    "day 0  start    starts at 100 points, tier A",
    "day 1  score    red_light -50 -> 50; observation 4294967296: red_light by cameras, FALSE "
    "(citizen 12 did it)",
    "day 1  list     traffic: entered; observation 4294967296: red_light by cameras, FALSE "
    "(citizen 12 did it)",
    "day 1  tier     A -> C",
    "day 1  refusal  flight, wrongful: their true standing would have passed",
    "day 1  refusal  flight, a retry, wrongful: their true standing would have passed, "
    "evaded: got it anyway",
    "day 2  score    association:friends +12.5 -> 62.5",
    "day 2  tier     C -> B",
    "day 3  score    volunteering +5 -> 67.5; observation 12884901888: volunteering by civic, true",
    "day 4  score    drunk_driving +0 -> 67.5; observation 17179869184: drunk_driving by police, "
    "true; caps the tier at C through day 5",
    "day 4  list     traffic: expired",
    "day 4  tier     B -> C (capped by drunk_driving on day 4)",
    "day 4  refusal  flight",
    "day 5  score    expired:volunteering -5 -> 62.5; observation 12884901888: volunteering by "
    "civic, true",
    "day 6  tier     C -> B (the grade cap ended)",
    "summary: 5 score changes, 1 from false observations (-50 points); named in 3 observations, "
    "1 false; 4 tier changes; 2 list changes; 3 refusals, 2 wrongful, 1 evaded",
]


def _write_parts(run_dir, manifest: dict) -> None:
    """Replace the run's ledger, observations, lists and refusals parts with the hand-built
    days, written by the store's own table builders into the same part files."""
    rules, events, sources = manifest["rules"], manifest["events"], manifest["sources"]
    for table in ("ledger", "observations", "lists", "refusals"):
        for part in (run_dir / table).glob("part-*.parquet"):
            part.unlink()
    every = STORY["run"]["checkpoint_every"]
    for first in range(0, STORY["run"]["days"], every):
        days = list(range(first, min(first + every, STORY["run"]["days"])))
        name = f"part-{days[0]:05d}-{days[-1]:05d}.parquet"
        ledger = [{"citizen": np.asarray([r[0] for r in LEDGER.get(d, [])], np.int32),
                   "rule": np.asarray([rules.index(r[1]) for r in LEDGER.get(d, [])], np.int16),
                   "delta": np.asarray([r[2] for r in LEDGER.get(d, [])], np.int64),
                   "observation": np.asarray([r[3] for r in LEDGER.get(d, [])], np.int64),
                   "truth": np.asarray([r[4] for r in LEDGER.get(d, [])], np.int8)} for d in days]
        observations = [Observations(
            np.asarray([o[0] for o in OBSERVATIONS.get(d, [])], np.int32),
            np.asarray([events.index(o[1]) for o in OBSERVATIONS.get(d, [])], np.int16),
            np.asarray([sources.index(o[2]) for o in OBSERVATIONS.get(d, [])], np.int8),
            np.asarray([o[3] for o in OBSERVATIONS.get(d, [])], bool),
            np.asarray([o[4] for o in OBSERVATIONS.get(d, [])], np.int32)) for d in days]
        lists = [ListChanges(
            np.asarray([x[0] for x in LISTS.get(d, [])], np.int32),
            np.zeros(len(LISTS.get(d, [])), np.int16),
            np.asarray([LIST_CHANGES.index(x[1]) for x in LISTS.get(d, [])], np.int8),
            np.asarray([x[2] for x in LISTS.get(d, [])], np.int64)) for d in days]
        refusals = [OpportunityDay(np.zeros(0), Refusals(
            np.asarray([r[0] for r in REFUSALS.get(d, [])], np.int32),
            np.zeros(len(REFUSALS.get(d, [])), np.int16),
            *(np.asarray([r[k] for r in REFUSALS.get(d, [])], bool) for k in (1, 2, 3))))
            for d in days]
        built = {"ledger": tables.ledger_table(days, ledger, rules),
                 "observations": tables.observations_table(days, observations, events, sources),
                 "lists": tables.lists_table(days, lists, ["traffic"]),
                 "refusals": tables.refusals_table(days, refusals, ["flight"])}
        for table, data in built.items():
            local.write_parquet(data, run_dir / table / name)


def _write_citizens(run_dir) -> None:
    """Give citizens 9 and 12 the hand-built attributes and final standing."""
    frame = pq.read_table(run_dir / "citizens.parquet").to_pandas()
    for citizen, values in ((CITIZEN, ATTRIBUTES), (OTHER, OTHER_STANDING)):
        for column, value in values.items():
            if hasattr(frame[column], "cat") and value not in frame[column].cat.categories:
                frame[column] = frame[column].cat.add_categories([value])
            frame.loc[citizen, column] = value
    local.write_parquet(pa.Table.from_pandas(frame, preserve_index=False),
                        run_dir / "citizens.parquet")


@pytest.fixture(scope="module")
def golden_store(tmp_path_factory):
    """A store holding the hand-built run: (store folder, run folder)."""
    store = tmp_path_factory.mktemp("store")
    result = api.run(build_scenario(STORY), out=store)
    _write_parts(result.path, result.manifest)
    _write_citizens(result.path)
    reseal(result.path)  # the hand-built rows stand in for the simulated ones
    return store, result.path


@pytest.fixture
def golden_copy(golden_store, tmp_path):
    """A copy of the hand-built run, free to break: (store folder, run folder)."""
    _, run_dir = golden_store
    store = tmp_path / "store"
    shutil.copytree(run_dir, store / run_dir.name)
    return store, store / run_dir.name


def invoke(*argv: str):
    return runner.invoke(app, ["explain", *argv])


def assert_exit_2(result, *fragments: str) -> None:
    """Exit code 2, each fragment in the message, no traceback."""
    shown = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.exit_code == 2, shown
    assert isinstance(result.exception, SystemExit), f"{result.exception!r}\n{shown}"
    assert "Traceback" not in result.output, shown
    message = " ".join(result.stderr.split())  # rich wraps long lines
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing\n{shown}"


# ------------------------------------------------------------------ the story


def test_story_of_the_hand_built_citizen_matches_line_by_line(golden_store):
    """Every score change with its rule, observation and truth and the running score after it;
    list changes; tier changes (one capped by a grade override, one when the cap ends); every
    refusal; the summary. Exactly the expected lines, in day order."""
    _, run_dir = golden_store
    story = explain(run_dir, CITIZEN)
    assert story.text_lines() == GOLDEN
    assert story.notes == ()


def test_story_reads_only_the_citizens_rows_not_whole_tables(golden_store, monkeypatch):
    """The stored story filters by citizen in DuckDB: loading a whole table is never needed."""
    _, run_dir = golden_store

    def refuse(*args, **kwargs):
        raise AssertionError("a whole table was loaded")

    monkeypatch.setattr(local, "read_table", refuse)
    assert explain(run_dir, CITIZEN).text_lines() == GOLDEN


def test_another_citizens_story_has_only_their_rows(golden_store):
    """Citizen 12's true red light, their pull, listing and rightful refusal; nothing of 9's."""
    _, run_dir = golden_store
    story = explain(run_dir, OTHER)
    assert story.notes == ()
    lines = [(x.day, x.kind, x.text) for x in story.lines]
    assert [(d, k) for d, k, _ in lines] == [(0, "start"), (1, "score"), (1, "list"), (1, "tier"),
                                             (1, "refusal"), (2, "score"), (4, "list")]
    assert lines[1][2] == ("red_light -50 -> 50; observation 4294967297: red_light by cameras, "
                           "true")
    assert lines[4][2] == "flight"


def test_json_gives_the_same_story_as_data(golden_store):
    """`--json`: the run, the citizen's attributes, one entry per story line with its fields
    (rule, points, running score, the observation and its truth, override, tiers, list,
    refusal flags) and the summary."""
    store, run_dir = golden_store
    result = invoke(run_dir.name, "--citizen", str(CITIZEN), "--out", str(store), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["run_id"] == run_dir.name and data["citizen"] == CITIZEN
    assert {k: data["attributes"][k] for k in ATTRIBUTES} == ATTRIBUTES
    assert data["start_score"] == 100.0
    lines = data["lines"]
    assert [x["text"] for x in lines] == [g.split("  ", 2)[-1].strip() for g in GOLDEN[1:-1]]
    assert [(x["day"], x["kind"]) for x in lines] == [
        (0, "start"), (1, "score"), (1, "list"), (1, "tier"), (1, "refusal"), (1, "refusal"),
        (2, "score"), (2, "tier"), (3, "score"), (4, "score"), (4, "list"), (4, "tier"),
        (4, "refusal"), (5, "score"), (6, "tier")]
    assert lines[1] == {
        "day": 1, "kind": "score", "rule": "red_light", "delta": -50.0, "score": 50.0,
        "observation": {"id": obs_id(1, 0), "true": False, "event": "red_light",
                        "source": "cameras", "true_actor": OTHER},
        "text": lines[1]["text"]}
    assert lines[6]["observation"] is None and lines[6]["delta"] == 12.5
    assert lines[9]["override"] == {"max_tier": "C", "until_day": 5}
    assert lines[11] | {"text": ""} == {"day": 4, "kind": "tier", "from": "B", "to": "C",
                                        "capped_by": "drunk_driving on day 4", "text": ""}
    assert lines[2]["list"] == "traffic" and lines[2]["change"] == "entered"
    assert lines[2]["observation"]["true"] is False
    assert {k: lines[5][k] for k in ("opportunity", "wrongful", "evaded", "retry")} == {
        "opportunity": "flight", "wrongful": True, "evaded": True, "retry": True}
    assert data["summary"] == {
        "score_changes": 5, "from_false_observations": 1, "points_from_false_observations": -50.0,
        "observations": 3, "false_observations": 1, "tier_changes": 4, "list_changes": 2,
        "refusals": 3, "wrongful_refusals": 2, "evaded_refusals": 1, "appeals_filed": 0,
        "appeals_upheld": 0, "final_score": 62.5,
        "final_tier": "B"}
    assert data["notes"] == []


def test_rich_output_shows_the_lines_and_the_summary(golden_store):
    """Without --json: exit 0, the header, the lines and the summary on stdout."""
    store, run_dir = golden_store
    result = invoke(str(run_dir), "-c", str(CITIZEN))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    for fragment in ("citizen 9:", "traffic: entered", "capped by drunk_driving", "summary:",
                     "3 refusals, 2 wrongful"):
        assert fragment in text, text


def test_run_is_found_by_its_folder_or_by_its_id_in_the_store(golden_store):
    """A run folder path works from anywhere; a bare run id is looked up under --out."""
    store, run_dir = golden_store
    by_path = invoke(str(run_dir), "-c", "9", "--json")
    by_id = invoke(run_dir.name, "-c", "9", "--json", "--out", str(store))
    assert by_path.exit_code == by_id.exit_code == 0
    assert json.loads(by_path.stdout) == json.loads(by_id.stdout)


# ------------------------------------------------------------------ tiers as the engine has them


def test_derived_tiers_match_the_engines_day_by_day_with_overlapping_grade_caps():
    """Drive the engine's policy day by day with planted observations (red lights capping the
    grade at B for 10 days, drunk driving at C for 2: where caps overlap the worse tier holds
    for the longer time), tell the story from the ledger rows it wrote, and compare the story's
    tier on every day with the engine's."""
    rules = [*STORY["policy"]["rules"], {"event": "red_light", "name": "red_light_grade",
                                         "override": {"max_tier": "B", "days": 10}}]
    spec = build_scenario(STORY, run={"citizens": 30, "days": 40}, policy={"rules": rules})
    sim = engine.build(spec)
    state = engine.initial_state(sim)
    plan = {0: ["volunteering"], 1: ["drunk_driving"], 2: ["volunteering"], 4: ["red_light"],
            5: ["drunk_driving"], 6: ["drunk_driving", "volunteering"], 9: ["volunteering"] * 4,
            12: ["volunteering"] * 3, 13: ["drunk_driving"], 20: ["red_light"], 21: ["volunteering"]}
    ledger, observations, engine_tier = [], [], []
    for day in range(spec.run.days):
        planted = [(CITIZEN, e) for e in plan.get(day, [])]
        out = policy_day(sim, state, planted)
        rows = out.ledger
        for k in np.flatnonzero(rows["citizen"] == CITIZEN):
            o, t = int(rows["observation"][k]), int(rows["truth"][k])
            ledger.append({"day": day, "rule": sim.policy.rule_labels[rows["rule"][k]],
                           "delta_milli": int(rows["delta"][k]),
                           "observation": o if o >= 0 else None,
                           "observation_true": None if t < 0 else bool(t)})
        observations += [{"id": obs_id(day, i), "day": day, "event": e, "source": "civic",
                          "is_true": True, "true_actor": CITIZEN} for i, (_, e) in enumerate(planted)]
        engine_tier.append(sim.policy.tier_names[state.tier[CITIZEN]])
    attributes = {"score": state.scores[CITIZEN] / 1000, "tier": engine_tier[-1],
                  "false_points": 0.0}
    story = tell(CITIZEN, attributes, spec.policy, list(sim.policy.rule_labels), ledger,
                 observations, [], [], spec.run.days)
    told, tier = [], story.lines[0].data["tier"]
    changes = {x.day: x.data["to"] for x in story.lines if x.kind == "tier"}
    for day in range(spec.run.days):
        tier = changes.get(day, tier)
        told.append(tier)
    assert told == engine_tier
    assert len(set(engine_tier)) == 3 and any("capped by" in x.text for x in story.lines)
    assert story.notes == ()


def test_a_real_runs_stories_replay_to_the_stored_final_standing(tmp_path, tiny_data):
    """A stored tiny run with random events, errors, a grade override and a list: for every
    citizen the running score ends at the stored score, the derived tier is the stored tier
    and the points from false observations are the stored false_points (no notes); the story
    of the same run kept in memory is the same."""
    tiny_data["policy"]["rules"].append(
        {"event": "red_light", "name": "red_light_cap", "override": {"max_tier": "C", "days": 4}})
    tiny_data["policy"]["lists"] = [{"name": "late", "kind": "blacklist",
                                     "enter_on": ["late_loan_payment"], "days": 5}]
    spec = build_scenario(tiny_data)
    stored = api.run(spec, out=tmp_path)
    memory = api.run(spec)
    citizens = stored.citizens.to_pandas()
    capped = 0
    for i in range(0, spec.run.citizens, 3):
        story = explain(stored.path, i)
        assert story.notes == (), (i, story.notes)
        scores = [x.data["score"] for x in story.lines if "score" in x.data]
        assert scores[-1] == pytest.approx(citizens.score[i], abs=1e-9)
        capped += any("capped by" in x.text for x in story.lines)
        if i % 30 == 0:
            a, b = story.to_dict(), explain(memory, i, scenario=spec).to_dict()
            assert {**a, "run_id": None} == b
    assert capped > 0


# ------------------------------------------------------------------ bad input: exit 2


def test_unknown_run_id_or_path_exits_2_naming_it(golden_store, tmp_path):
    store, _ = golden_store
    assert_exit_2(invoke("no-such-run", "-c", "1", "--out", str(store)), "no run 'no-such-run'")
    assert_exit_2(invoke(str(tmp_path / "gone"), "-c", "1"), "gone")


@pytest.mark.parametrize("citizen", ["abc", "1.5", "", "nine"])
def test_citizen_id_that_is_not_an_integer_exits_2_naming_the_valid_range(golden_store, citizen):
    _, run_dir = golden_store
    assert_exit_2(invoke(str(run_dir), "--citizen", citizen), "not an integer",
                  "citizens of this run are 0 to 29")


@pytest.mark.parametrize("citizen", ["30", "-1", "1000000"])
def test_citizen_id_out_of_range_exits_2_naming_the_valid_range(golden_store, citizen):
    _, run_dir = golden_store
    assert_exit_2(invoke(str(run_dir), "--citizen", citizen), f"no citizen {int(citizen)}",
                  "citizens of this run are 0 to 29")


def test_parse_citizen_accepts_the_range_ends():
    assert parse_citizen("0", 30) == 0 and parse_citizen(" 29 ", 30) == 29
    with pytest.raises(UserError, match="0 to 29"):
        parse_citizen("30", 30)


@pytest.mark.parametrize("table", ["ledger", "observations", "lists", "refusals"])
def test_corrupt_parquet_part_exits_2_naming_the_file(golden_copy, table):
    """Garbage in place of one part of any table the story reads: exit 2 naming that file."""
    _, run_dir = golden_copy
    part = run_dir / table / "part-00003-00005.parquet"
    part.write_bytes(b"PAR1 this is not a parquet file" * 10)
    assert_exit_2(invoke(str(run_dir), "-c", str(CITIZEN)), str(part), "corrupt")


def test_truncated_parquet_part_exits_2_naming_the_file(golden_copy):
    _, run_dir = golden_copy
    part = run_dir / "ledger" / "part-00000-00002.parquet"
    part.write_bytes(part.read_bytes()[:-200])
    assert_exit_2(invoke(str(run_dir), "-c", str(CITIZEN)), str(part))


def test_corrupt_citizens_table_exits_2_naming_the_file(golden_copy):
    _, run_dir = golden_copy
    (run_dir / "citizens.parquet").write_bytes(b"not parquet")
    assert_exit_2(invoke(str(run_dir), "-c", "3"), str(run_dir / "citizens.parquet"), "corrupt")


def test_missing_parquet_part_exits_2_naming_the_file(golden_copy):
    """One table lacks a part the others have: named exactly."""
    _, run_dir = golden_copy
    part = run_dir / "lists" / "part-00003-00005.parquet"
    part.unlink()
    assert_exit_2(invoke(str(run_dir), "-c", str(CITIZEN)), str(part), "missing")


def test_missing_last_part_of_every_table_exits_2_naming_the_day(golden_copy):
    """Every table lacks days 6-6: the gap is named by its first day."""
    _, run_dir = golden_copy
    from panopticon.explain import STORY_TABLES

    for table in STORY_TABLES:
        (run_dir / table / "part-00006-00006.parquet").unlink()
    assert_exit_2(invoke(str(run_dir), "-c", str(CITIZEN)), "part-00006-00006.parquet: missing")
    reseal(run_dir)  # even if the manifest is rewritten to match, the gap is named
    assert_exit_2(invoke(str(run_dir), "-c", str(CITIZEN)), "missing Parquet part for day 6")


@pytest.mark.parametrize("name", ["citizens.parquet", "scenario.json"])
def test_missing_citizens_table_or_scenario_exits_2_naming_it(golden_copy, name):
    _, run_dir = golden_copy
    (run_dir / name).unlink()
    assert_exit_2(invoke(str(run_dir), "-c", "3"), str(run_dir / name), "missing")


def test_missing_manifest_exits_2_naming_it(golden_copy):
    store, run_dir = golden_copy
    (run_dir / "manifest.json").unlink()
    assert_exit_2(invoke(str(run_dir), "-c", "3"), str(run_dir / "manifest.json"))
    assert_exit_2(invoke(run_dir.name, "-c", "3", "--out", str(store)), "manifest.json")


def test_corrupt_manifest_exits_2_naming_it(golden_copy):
    _, run_dir = golden_copy
    (run_dir / "manifest.json").write_text("{ not json")
    assert_exit_2(invoke(str(run_dir), "-c", "3"), str(run_dir / "manifest.json"),
                  "corrupt manifest")


def test_a_run_that_did_not_complete_exits_2_saying_so(golden_copy):
    _, run_dir = golden_copy
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.update(status="interrupted", days_completed=3)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert_exit_2(invoke(str(run_dir), "-c", "3"), "'interrupted'", "--resume")


def test_missing_citizen_option_exits_2():
    result = invoke("some-run")
    assert result.exit_code == 2 and "--citizen" in result.output


def test_help_describes_the_options():
    result = runner.invoke(app, ["explain", "--help"])
    assert result.exit_code == 0
    for word in ("--citizen", "--json", "--out", "RUN", "story"):
        assert word.lower() in result.stdout.lower(), result.stdout


def test_the_installed_command_exits_2_without_a_traceback(golden_store):
    """The real executable, a citizen out of range: exit 2, the range on stderr."""
    import subprocess
    import sys
    from pathlib import Path

    _, run_dir = golden_store
    proc = subprocess.run([str(Path(sys.executable).with_name("panopticon")), "explain",
                           str(run_dir), "--citizen", "31"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "0 to 29" in proc.stderr


def test_a_won_appeal_is_part_of_the_story(tmp_path):
    """A citizen named by false red lights appeals and wins: the story tells the filing, the
    decision with its wait, and the 'appeal upheld' change that gives the false points back
    (so the false points in the summary add up to zero)."""
    from test_appeals import MISNAMED

    spec = build_scenario(MISNAMED, governance={"appeals": {"rate": 1.0, "capacity": 100,
                                                        "success": 1.0}})
    result = api.run(spec, out=tmp_path)
    appeals = result.table("appeals").to_pandas()
    who = int(appeals[appeals.outcome == "upheld"].citizen.iloc[0])
    story = explain(result.path, who)
    kinds = [(line.kind, line.text) for line in story.lines]
    filed = next(k for k, (kind, text) in enumerate(kinds) if text == "appeal filed")
    upheld = next(k for k, (kind, text) in enumerate(kinds)
                  if text.startswith("appeal upheld after"))
    assert filed < upheld
    assert any(text.startswith("appeal upheld +") for _, text in kinds[upheld:])
    assert story.summary["appeals_filed"] >= 1 and story.summary["appeals_upheld"] >= 1
