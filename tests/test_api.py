"""The Python API as a notebook user meets it: importing changes nothing, a stored run opens by
its id, progress can be a plain function."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import build_scenario

from panopticon import api
from panopticon.errors import UserError


def test_importing_panopticon_leaves_the_process_as_it_was():
    """No environment variable is set and no allocator setting is changed by `import
    panopticon`; the first run applies them (GOMP_SPINCOUNT appears then)."""
    code = ("import os; before = dict(os.environ); import panopticon as pc; "
            "assert dict(os.environ) == before, 'import changed the environment'; "
            "from conftest import build_scenario; pc.run(build_scenario(), days=2); "
            "print(os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=__import__("pathlib").Path(__file__).parent, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "10000"


def test_a_stored_run_opens_by_its_id_under_the_store(tmp_path):
    stored = api.run(build_scenario(), days=3, out=tmp_path / "runs")
    by_id = api.open_run(stored.path.name, store=tmp_path / "runs")
    assert by_id.path == stored.path and by_id.daily.num_rows == 3
    with pytest.raises(UserError, match="no run 'nope'"):
        api.open_run("nope", store=tmp_path / "runs")


def test_progress_may_be_a_plain_function_of_days_done_and_days_in_all():
    seen = []
    api.run(build_scenario(), days=4, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with pytest.raises(UserError, match="progress must be"):
        api.run(build_scenario(), days=1, progress=42)


def test_sweep_returns_one_row_per_run_with_a_column_per_setting_and_metric(tmp_path):
    """What Mesa's batch_run users expect: a DataFrame to group by the settings; each run's
    manifest records its setting, and the runs view has it as a column."""
    import panopticon as pc
    from panopticon.store.query import connect

    frame = pc.sweep(build_scenario(), {"sensors.cameras.misattribution": [0.0, 0.2]},
                     replicates=2, out=tmp_path / "runs", days=3)
    assert len(frame) == 4 and set(frame["status"]) == {"complete"}
    assert sorted(frame["sensors.cameras.misattribution"]) == [0.0, 0.0, 0.2, 0.2]
    assert {"replicate", "seed", "run_id", "mean_score"} <= set(frame.columns)
    means = frame.groupby("sensors.cameras.misattribution")["false_observations"].mean()
    assert means[0.2] > means[0.0]
    rows = connect(tmp_path / "runs").sql(
        'select "sensors.cameras.misattribution" as m, count(*) as n from runs group by 1 '
        "order by 1").fetchall()
    assert rows == [(0.0, 2), (0.2, 2)]


def test_a_scenario_changed_by_key_gets_exactly_the_checks_a_file_gets():
    """`set` returns a validated copy (the original unchanged); a camera watching an event
    that does not exist, an unknown key or a misspelt parent is refused, as in a file."""
    base = build_scenario()
    changed = base.set("sensors.cameras.misattribution", 0.02)
    assert changed.sensors["cameras"].misattribution == 0.02
    assert base.sensors["cameras"].misattribution == 0.05
    assert base.set("policy.rules.0.points", -7).policy.rules[0].points == -7
    with pytest.raises(UserError, match="no_such_event"):
        base.set("sensors.cameras.events", ["no_such_event"])
    with pytest.raises(UserError, match="misattributon"):
        base.set("sensors.cameras.misattributon", 0.1)
    with pytest.raises(UserError, match="did you mean 'sensors'"):
        base.set("sensor.cameras.misattribution", 0.1)
