"""The policy's memory: counters that conditions call, and their survival across checkpoints."""

from __future__ import annotations

import numpy as np
from conftest import build_scenario

from panopticon import engine
from panopticon.sensors import Observations

WINDOWED = {"policy": {"lists": [{"name": "watch", "kind": "blacklist",
                                  "enter_when": 'count("red_light", 3) >= 2', "days": 1}],
                       "sanctions": [{"when": 'days_since("red_light") <= 1', "deny": ["flights"]}]}}


def _obs(sim, citizens, event="red_light"):
    t = sim.events.index(event)
    c = np.asarray(citizens, np.int32)
    return Observations(c, np.full(len(c), t, np.int16), np.zeros(len(c), np.int8),
                        np.ones(len(c), bool), c)


def _day(sim, state, citizens):
    out = engine.apply_policy(sim, state, _obs(sim, citizens))
    state.day += 1
    return out


def test_count_covers_exactly_the_last_days_including_today():
    """count("red_light", 3) on day d counts observations on days d-2, d-1 and d: a citizen seen on
    days 0 and 2 has 2 on day 2, 1 on day 3 (day 0 left the window), 0 on day 5."""
    sim = engine.build(build_scenario(**WINDOWED))
    state = engine.initial_state(sim)
    counts = state.policy.window_counts[("red_light", 3)]
    seen = []
    for citizens in ([4], [], [4], [], [], []):
        _day(sim, state, citizens)
        seen.append(int(counts[4]))
    assert seen == [1, 1, 2, 1, 1, 0]


def test_conditions_read_the_counters_the_same_day():
    """Two red lights within three days put a citizen on the watch list that day; being seen
    yesterday or today denies flights (days_since <= 1), two days later it does not."""
    sim = engine.build(build_scenario(**WINDOWED))
    state = engine.initial_state(sim)
    assert not _day(sim, state, [9]).lists.citizen.size
    second = _day(sim, state, [9])
    assert 9 in second.lists.citizen.tolist()
    assert second.denied["flights"][9]
    _day(sim, state, [])
    later = _day(sim, state, [])
    assert not later.denied["flights"][9]


def test_counters_survive_a_checkpoint():
    """A state restored from a snapshot carries the same window counts and last-seen days, and
    the run continues bit for bit."""
    spec = build_scenario(**WINDOWED, run={"days": 12, "citizens": 400})
    sim = engine.build(spec)
    straight = engine.run(sim)
    state = engine.run(sim, until=5)
    restored = engine.State.restore(state.snapshot(), sim)
    np.testing.assert_array_equal(restored.policy.window_counts[("red_light", 3)],
                                  state.policy.window_counts[("red_light", 3)])
    np.testing.assert_array_equal(restored.policy.last_seen, state.policy.last_seen)
    assert engine.run(sim, restored).fingerprint() == straight.fingerprint()


def test_two_unnamed_rules_on_one_event_get_distinct_ledger_labels():
    """Two unnamed rules on red_light are 'red_light' and 'red_light#2' in the ledger (and their
    expiry rows 'expired:red_light' and 'expired:red_light#2')."""
    from panopticon.policy.schema import PolicySpec
    from panopticon.policy.scoring import CompiledPolicy

    spec = PolicySpec.model_validate({"name": "p", "rules": [
        {"event": "red_light", "points": -5}, {"event": "red_light", "points": -2}]})
    labels = CompiledPolicy.compile(spec).rule_labels
    assert labels[:4] == ("red_light", "red_light#2", "expired:red_light", "expired:red_light#2")


def test_validate_reads_a_policy_file_without_tiers_as_a_policy(tmp_path):
    """A policy file with rules but no tiers (and no schema_version) is validated as a policy."""
    from typer.testing import CliRunner

    from panopticon.cli import app

    path = tmp_path / "p.yaml"
    path.write_text("name: p\nrules:\n  - {event: red_light, points: -5}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0 and "valid policy" in result.stdout
