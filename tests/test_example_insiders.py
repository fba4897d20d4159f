"""examples/insiders.yaml: appeals and insider attacks on a points system with sanctions.

One stored run of the example as written (4,000 citizens, 120 days, seed 11) is shared by the
tests, with its audit report; the same scenario without ``governance.appeals`` is run once in
memory for the comparison. See docs/examples/insiders.md for the numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from panopticon import api
from panopticon.audit import audit
from panopticon.cli import app
from panopticon.governance import ATTACKS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "insiders.yaml"
PANOPTICON = Path(sys.executable).with_name("panopticon")
LOGGED = ("lower_targets", "raise_cronies")
"""The attacks that leave a ledger row (a manual adjustment by the official)."""


@pytest.fixture(scope="module")
def spec():
    return api.load(EXAMPLE)


@pytest.fixture(scope="module")
def result(spec, tmp_path_factory):
    return api.run(spec, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def report(result):
    return audit(result.path)


@pytest.fixture(scope="module")
def done(result):
    return result.table("manipulations").to_pandas()


@pytest.fixture(scope="module")
def without_appeals(spec):
    """The same scenario and seed without appeals (insiders and sensors as before)."""
    governance = spec.governance.model_copy(update={"appeals": None})
    return api.run(spec.model_copy(update={"governance": governance}))


def test_example_validates(spec):
    """`panopticon validate examples/insiders.yaml` accepts it; it is a points policy with
    sanctions, appeals, and one insider of each of the four attacks, the critics as targets."""
    out = subprocess.run([str(PANOPTICON), "validate", str(EXAMPLE)], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "(insiders)" in out.stdout
    assert spec.policy.family == "points" and spec.policy.sanctions
    assert spec.governance.appeals is not None
    assert sorted(i.attack for i in spec.governance.insiders) == sorted(ATTACKS)
    lower = next(i for i in spec.governance.insiders if i.attack == "lower_targets")
    assert "critical_post" in lower.targets


def test_insiders_act_in_all_four_ways(result, done, spec):
    """The manipulations table (the lab's record) holds actions of every attack; logged ones
    are exactly the lowered targets and raised cronies; targets lose and cronies gain the
    configured points (unless a bound stops them), deletions give points back."""
    assert set(done.attack.astype(str)) == set(ATTACKS)
    assert (done.logged == done.attack.isin(LOGGED)).all()
    points = {i.attack: i.points * 1000 for i in spec.governance.insiders}
    lower = done[done.attack == "lower_targets"].delta_milli
    raise_ = done[done.attack == "raise_cronies"].delta_milli
    assert ((lower < 0) & (lower >= -points["lower_targets"])).all()
    assert ((raise_ > 0) & (raise_ <= points["raise_cronies"])).all()
    deleted = done[done.attack == "delete_entries"].delta_milli
    assert ((deleted > 0) & (deleted <= points["delete_entries"])).all()
    assert (done[done.attack == "edit_rules"].delta_milli <= 0).all()
    edits = done[done.attack == "edit_rules"]
    assert edits.day.min() >= 59  # the rural rule is edited from (1-based) day 60 on
    daily = result.daily.to_pandas()
    assert daily.manipulations.sum() == len(done)


def test_audit_finds_every_logged_attack_and_a_share_of_the_others(result, report, done):
    """The chain holds (the insiders wrote through the system); every manual adjustment is
    listed with its official, so the logged attacks are found in full; silent deletions and
    edited rules get a share between 0 and 1, each counted against the lab's record. The CLI
    exits 1: the ledger does not explain some scores and some rows are off their points."""
    assert report["chain_intact"]
    logged = done[done.logged]
    assert len(report["manual"]) == len(logged)
    assert {m["official"] for m in report["manual"]} == {str(o) for o in logged.official}
    found = report["insider_actions_found"]
    assert set(found) == set(ATTACKS)
    for attack in ATTACKS:
        assert found[attack]["actions"] == int((done.attack == attack).sum()) > 0
        assert 0 <= found[attack]["caught"] <= found[attack]["actions"]
        assert 0.0 <= found[attack]["share"] <= 1.0
    for attack in LOGGED:
        assert found[attack]["caught"] == found[attack]["actions"]
        assert found[attack]["share"] == 1.0
    deleted = set(done[done.attack == "delete_entries"].citizen)
    assert {u["citizen"] for u in report["unexplained"]} == deleted
    assert found["edit_rules"]["share"] > 0.9  # hidden only where a score stopped at 60
    assert all(d["rule"] in ("red_light", "jaywalking", "late_loan_payment")
               and d["delta"] == 2 * d["points"] for d in report["deviations"])
    cli = CliRunner().invoke(app, ["audit", str(result.path), "--json"])
    assert cli.exit_code == 1
    assert json.loads(cli.stdout)["insider_actions_found"] == json.loads(json.dumps(found))


def test_appeals_backlog_and_waits_are_non_negative_and_add_up(result):
    """Every day's backlog and mean wait are non-negative; the backlog is the filings so far
    less the decisions so far; every decision waited at least a day (filed one day, decided
    at the start of a later one), and a capacity of 1 a day decides at most one."""
    daily = result.daily.to_pandas()
    appeals = result.table("appeals").to_pandas()
    assert (daily.appeal_backlog >= 0).all()
    waits = daily.appeal_wait_days.dropna()
    assert len(waits) and (waits >= 0).all()
    decided = daily.appeals_upheld + daily.appeals_rejected
    assert np.array_equal(daily.appeal_backlog, (daily.appeals_filed - decided).cumsum())
    assert (decided <= 1).all()
    decisions = appeals[appeals.outcome != "filed"]
    assert (decisions.waited >= 1).all()
    assert (appeals[appeals.outcome == "filed"].waited == 0).all()


def test_upheld_appeals_leave_fewer_citizens_standing_wrongly(result, without_appeals):
    """Same scenario and seed, with and without appeals: upheld appeals reverse false points
    (ledger rule ``appeal upheld``), so fewer citizens stand wrongly at the end and fewer
    citizen-days are wrongly sanctioned. (This policy has no lists: standing wrongly is
    having false points.)"""
    daily = result.daily.to_pandas()
    other = without_appeals.daily.to_pandas()
    assert daily.appeals_upheld.sum() > 0
    ledger = result.ledger.to_pandas()
    assert 0 < (ledger.rule == "appeal upheld").sum() <= daily.appeals_upheld.sum()
    assert (ledger[ledger.rule == "appeal upheld"].delta_milli > 0).all()
    wrong = (result.citizens.to_pandas().false_points != 0).sum()
    wrong_without = (without_appeals.citizens.to_pandas().false_points != 0).sum()
    assert wrong == daily.citizens_false_standing.iloc[-1]
    assert wrong < wrong_without == other.citizens_false_standing.iloc[-1]
    assert daily.citizens_wrongly_sanctioned.sum() < other.citizens_wrongly_sanctioned.sum()
