"""The day loop and the run record: determinism, resumability, the ledger chain, metrics and the store."""

from __future__ import annotations

import json

import numba
import numpy as np
import pyarrow as pa
import pytest
from conftest import build_scenario
from hypothesis import given, settings
from hypothesis import strategies as st

import panopticon
from panopticon import engine, ledger
from panopticon.api import open_run, resume
from panopticon.api import run as api_run
from panopticon.errors import UserError
from panopticon.metrics.daily import sum_and_median
from panopticon.scenario import load_preset, preset_names
from panopticon.store.local import read_manifest
from panopticon.store.query import connect

TABLES = ("daily", "events", "ledger", "observations", "citizens")


def _scenario(**run):
    """The tiny scenario with its run settings changed (default 1500 citizens, 14 days, checkpoint 5)."""
    settings = {"citizens": 1500, "days": 14, "seed": 7, "checkpoint_every": 5, **run}
    return build_scenario(run=settings)


def _assert_same_tables(a, b, names=TABLES):
    for name in names:
        ta, tb = a.table(name), b.table(name)
        assert ta.num_rows == tb.num_rows, name
        assert ta.to_pylist() == tb.to_pylist(), name


class _InterruptAfter:
    """A progress sink that presses Ctrl-C (raises KeyboardInterrupt) once ``day`` is done."""

    def __init__(self, day: int):
        self.stop = day

    def day(self, record, state):
        if record.day == self.stop:
            raise KeyboardInterrupt

    def checkpoint(self, state):
        pass


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One uninterrupted stored run of the tiny scenario (1500 citizens, 14 days)."""
    root = tmp_path_factory.mktemp("runs")
    return api_run(_scenario(), out=root), root


# ----------------------------------------------------------------- determinism


def test_same_scenario_and_seed_give_identical_runs():
    """The same scenario and seed give the same fingerprint and identical tables, row for row."""
    a, b = api_run(_scenario()), api_run(_scenario())
    assert a.manifest["result"] == b.manifest["result"]
    _assert_same_tables(a, b)
    assert a.ledger.num_rows > 0 and a.observations.num_rows > 0


def test_different_seed_gives_a_different_run():
    """Another seed gives another fingerprint, ledger head and ledger."""
    a, b = api_run(_scenario()), api_run(_scenario(), seed=8)
    assert a.manifest["result"]["fingerprint"] != b.manifest["result"]["fingerprint"]
    assert a.manifest["result"]["ledger_head"] != b.manifest["result"]["ledger_head"]
    assert a.ledger.to_pylist() != b.ledger.to_pylist()


def test_thread_count_does_not_change_the_run():
    """A run on 1 thread has the same fingerprint as one on 2 threads, and the caller's numba
    thread count is restored afterwards."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    before = numba.get_num_threads()
    spec = _scenario(citizens=20_000, days=8)
    prints = [engine.run(engine.build(spec), threads=t).fingerprint() for t in (1, 2)]
    assert prints[0] == prints[1]
    assert numba.get_num_threads() == before


def test_changing_rates_are_kept_in_four_bytes_and_checkpointed_as_kept():
    """The rates that change (deterrence, responses) take 4 bytes a citizen and event type,
    in the state and in its checkpoint; a checkpoint with 8-byte rates is refused by name."""
    sim = engine.build(load_preset("seed_article").with_run(citizens=2_000, days=3))
    state = engine.run(sim)
    dense = state.rates.dense
    assert dense.dtype == np.float32 and dense.shape[0] == 2_000
    assert np.flatnonzero(sim.adapting).size and (state.rates.where[sim.adapting] >= 0).all()
    snap = state.snapshot()
    assert snap["rates"].dtype == np.float32
    assert engine.State.check_snapshot(snap, sim) == []
    problems = engine.State.check_snapshot({**snap, "rates": snap["rates"].astype(float)}, sim)
    assert problems == [f"rates: float64 {dense.shape}, expected float32 with 2 dimensions"]


def test_run_stopped_at_day_k_and_continued_equals_a_straight_run():
    """engine.run(until=k) then engine.run(state) gives the same state as a run straight through."""
    spec = _scenario()
    sim = engine.build(spec)
    straight = engine.run(sim)
    for k in (1, 6, 13):
        state = engine.run(engine.build(spec), until=k)
        assert state.day == k
        state = engine.run(engine.build(spec), state)
        assert state.day == 14
        assert state.fingerprint() == straight.fingerprint(), k


def test_snapshot_restore_continues_bit_for_bit():
    """A state snapshotted at day 6, restored, and run on equals the straight run (checkpoint fidelity)."""
    spec = _scenario()
    straight = engine.run(engine.build(spec))
    sim = engine.build(spec)
    state = engine.run(sim, until=6)
    restored = engine.State.restore(state.snapshot(), sim)
    assert restored.fingerprint() == state.fingerprint()
    assert engine.run(engine.build(spec), restored).fingerprint() == straight.fingerprint()


def test_in_memory_and_stored_runs_agree(stored):
    """A stored run and an in-memory run of the same scenario have the same result and tables."""
    run, _ = stored
    mem = api_run(_scenario())
    assert mem.manifest["result"] == run.manifest["result"]
    _assert_same_tables(mem, open_run(run.path))


# ----------------------------------------------------------------- interruption and resume


def test_interrupted_run_is_marked_and_resume_completes_it_identically(tmp_path, stored):
    """Ctrl-C after day 7 leaves status 'interrupted' (never 'complete') and no citizens table; resume()
    completes it with the straight run's fingerprint, ledger head and tables."""
    straight, _ = stored
    with pytest.raises(KeyboardInterrupt):
        api_run(_scenario(), out=tmp_path, progress=_InterruptAfter(7))
    (path,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = read_manifest(path)
    assert manifest["status"] == "interrupted"
    assert json.loads((path / "manifest.json").read_text())["status"] == "interrupted"
    assert manifest["days_completed"] == 5  # the last checkpoint
    assert "resume" in manifest["note"]
    assert "result" not in manifest
    assert not (path / "citizens.parquet").exists()
    with pytest.raises(UserError):
        open_run(path).table("citizens")
    resumed = resume(path)
    assert resumed.manifest["status"] == "complete"
    assert read_manifest(path)["status"] == "complete"
    assert resumed.manifest["days_completed"] == 14
    assert resumed.manifest["result"] == straight.manifest["result"]
    _assert_same_tables(open_run(path), open_run(straight.path))
    with pytest.raises(UserError):
        resume(path)  # already complete


def test_run_interrupted_before_its_first_checkpoint_is_never_complete(tmp_path, stored):
    """A run interrupted before its first checkpoint is marked 'interrupted', without citizens table;
    resume() completes it with the straight run's fingerprint or refuses with a UserError (never wrongly)."""
    straight, _ = stored
    with pytest.raises(KeyboardInterrupt):
        api_run(_scenario(), out=tmp_path, progress=_InterruptAfter(2))
    (path,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = read_manifest(path)
    assert manifest["status"] == "interrupted"
    assert manifest["days_completed"] == 0
    assert not (path / "citizens.parquet").exists()
    try:
        resumed = resume(path)
    except UserError:
        assert read_manifest(path)["status"] != "complete"
    else:
        assert resumed.manifest["result"] == straight.manifest["result"]
        _assert_same_tables(open_run(path), open_run(straight.path))


def test_interrupted_twice_resumes_identically(tmp_path, stored):
    """A run interrupted, resumed, interrupted again and resumed again still equals the straight run."""
    straight, _ = stored
    with pytest.raises(KeyboardInterrupt):
        api_run(_scenario(), out=tmp_path, progress=_InterruptAfter(6))
    (path,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    with pytest.raises(KeyboardInterrupt):
        resume(path, progress=_InterruptAfter(11))
    assert read_manifest(path)["status"] == "interrupted"
    assert read_manifest(path)["days_completed"] == 10
    resumed = resume(path)
    assert resumed.manifest["result"] == straight.manifest["result"]
    _assert_same_tables(open_run(path), open_run(straight.path))


# ----------------------------------------------------------------- ledger chain


def _recompute_head(manifest: dict, table: pa.Table, days: int) -> str:
    """Recompute the hash chain from a stored ledger table alone (rules by label, nulls as -1)."""
    rules = manifest["rules"]
    df = table.to_pandas()
    head = ledger.genesis(manifest["scenario_digest"], rules)
    for d in range(days):
        rows = df[df["day"] == d]
        truth = rows["observation_true"]
        columns = {
            "citizen": rows["citizen"].to_numpy(np.int32),
            "rule": np.array([rules.index(str(r)) for r in rows["rule"]], dtype=np.int16),
            "delta": rows["delta_milli"].to_numpy(np.int64),
            "observation": rows["observation"].fillna(-1).to_numpy(np.int64),
            "truth": np.array([-1 if t is None or t != t else int(bool(t)) for t in truth], np.int8),
        }
        head = ledger.chain(head, d, columns)
    return head.hex()


def test_ledger_chain_recomputed_from_store_equals_ledger_head(stored):
    """Rehashing the stored ledger table day by day from the genesis of the scenario digest gives the
    manifest's ledger_head; altering one delta gives another head."""
    run, _ = stored
    manifest = read_manifest(run.path)
    table = open_run(run.path).ledger
    assert _recompute_head(manifest, table, manifest["days"]) == manifest["result"]["ledger_head"]
    deltas = table.column("delta_milli").to_numpy().copy()
    deltas[len(deltas) // 2] += 1
    tampered = table.set_column(table.schema.get_field_index("delta_milli"), "delta_milli", pa.array(deltas))
    assert _recompute_head(manifest, tampered, manifest["days"]) != manifest["result"]["ledger_head"]


def test_ledger_genesis_depends_on_the_scenario_and_the_rule_names():
    """Two scenarios differing only in seed have different genesis heads (the ledger is bound to its run),
    and so do two orders of the same rule names (rows hash a rule by index, the genesis binds the names)."""
    rules = ["red_light", "volunteering"]
    assert ledger.genesis(_scenario().digest, rules) != ledger.genesis(_scenario(seed=8).digest, rules)
    assert ledger.genesis(_scenario().digest, rules) != ledger.genesis(_scenario().digest, rules[::-1])


def test_ledger_rows_point_to_their_observations(stored):
    """Every ledger row from an observation names that observation: same citizen, same truth, and the
    rule of the observation's event; the others are association rows with no observation."""
    run, _ = stored
    led = open_run(run.path).ledger.to_pandas()
    obs = open_run(run.path).observations.to_pandas().set_index("id")
    from_obs = led[led["observation"].notna()]
    assert len(from_obs) > 0
    o = obs.loc[from_obs["observation"].astype(np.int64)]
    assert np.array_equal(o["citizen"].to_numpy(), from_obs["citizen"].to_numpy())
    assert np.array_equal(o["is_true"].to_numpy(), from_obs["observation_true"].to_numpy(bool))
    assert np.array_equal(o["day"].to_numpy(), from_obs["day"].to_numpy())
    assert list(o["event"].astype(str)) == list(from_obs["rule"].astype(str))  # rules are named by event
    assoc = led[led["observation"].isna()]
    assert len(assoc) > 0
    assert set(assoc["rule"].astype(str)) == {"association:friends"}
    assert assoc["observation_true"].isna().all()
    assert set(assoc["day"] % 3) == {2}  # every_days 3: days 2, 5, 8, 11


def test_final_scores_replay_from_the_stored_ledger(stored):
    """Start score + the sum of each citizen's stored ledger deltas = the citizens table score."""
    run, _ = stored
    r = open_run(run.path)
    led = r.ledger.to_pandas()
    cit = r.citizens.to_pandas()
    replay = np.full(len(cit), 100_000, np.int64)
    np.add.at(replay, led["citizen"].to_numpy(), led["delta_milli"].to_numpy())
    assert np.array_equal(replay, np.round(cit["score"].to_numpy() * 1000).astype(np.int64))


# ----------------------------------------------------------------- daily metrics


def test_daily_metrics_are_consistent(stored):
    """Per day: observed_true + missed_events + misattributed == true_events; false_observations ==
    misattributed + phantoms; tier shares sum to 1; counts agree with the events, observations and
    ledger tables; mean score agrees with the citizens table."""
    run, _ = stored
    r = open_run(run.path)
    daily = r.daily.to_pandas()
    assert daily["day"].tolist() == list(range(14))
    assert (daily["observed_true"] + daily["missed_events"] + daily["misattributed"]
            == daily["true_events"]).all()
    assert (daily["false_observations"] == daily["misattributed"] + daily["phantoms"]).all()
    shares = daily[[c for c in daily.columns if c.startswith("share_")]]
    assert list(shares.columns) == ["share_A", "share_B", "share_C"]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert daily["misattributed"].sum() > 0 and daily["phantoms"].sum() > 0

    events = r.events.to_pandas().groupby("day")[
        ["true_events", "observed", "false_observations"]].sum()
    assert events["true_events"].tolist() == daily["true_events"].tolist()
    assert events["observed"].tolist() == daily["observed_true"].tolist()
    assert events["false_observations"].tolist() == daily["false_observations"].tolist()

    obs = r.observations.to_pandas()
    per_day = obs.groupby("day").agg(n=("id", "size"), true=("is_true", "sum"),
                                     phantom=("true_actor", lambda s: s.isna().sum()))
    per_day = per_day.reindex(range(14), fill_value=0)
    assert per_day["n"].tolist() == (daily["observed_true"] + daily["false_observations"]).tolist()
    assert per_day["true"].tolist() == daily["observed_true"].tolist()
    assert per_day["phantom"].tolist() == daily["phantoms"].tolist()
    victims = obs[~obs["is_true"]].groupby("day")["citizen"].nunique().reindex(range(14), fill_value=0)
    assert victims.tolist() == daily["citizens_false_today"].tolist()
    ever = [obs[(~obs["is_true"]) & (obs["day"] <= d)]["citizen"].nunique() for d in range(14)]
    assert ever == daily["citizens_ever_false"].tolist()

    led = r.ledger.to_pandas().groupby("day").size().reindex(range(14), fill_value=0)
    assert led.tolist() == daily["score_changes"].tolist()

    cit = r.citizens.to_pandas()
    assert daily["mean_score"].iloc[-1] == pytest.approx(cit["score"].mean(), abs=1e-9)
    assert daily["median_score"].iloc[-1] == pytest.approx(cit["score"].median(), abs=1e-9)
    last = daily.iloc[-1]
    for tier in ("A", "B", "C"):
        assert last[f"share_{tier}"] == pytest.approx((cit["tier"].astype(str) == tier).mean(), abs=1e-12)
    assert int(cit["ever_false"].sum()) == last["citizens_ever_false"]
    assert int((cit["false_points"] != 0).sum()) == last["citizens_false_standing"]


def test_manifest_records_the_run(stored):
    """A complete stored run's manifest has the scenario digest, seed, code version, days and result, and
    its scenario.json reloads to the same digest."""
    run, _ = stored
    m = read_manifest(run.path)
    spec = _scenario()
    assert m["status"] == "complete"
    assert m["scenario_digest"] == spec.digest
    assert m["seed"] == 7 and m["days_completed"] == 14 and m["citizens"] == 1500
    assert m["code_version"] == panopticon.api.code_version()
    assert set(m["result"]) == {"fingerprint", "state_fingerprint", "ledger_head", "content_head",
                                "citizens_digest"}
    reloaded = panopticon.ScenarioSpec.model_validate_json((run.path / "scenario.json").read_text())
    assert reloaded.digest == spec.digest


# ----------------------------------------------------------------- query


def test_duckdb_view_has_the_runs_daily_rows(stored):
    """connect(root) exposes the run's 14 daily rows (and its ledger and citizens) under its run_id."""
    run, root = stored
    con = connect(root)
    rid = run.path.name
    assert con.sql("select run_id, status from runs").fetchall() == [(rid, "complete")]
    days = con.sql(f"select day from daily where run_id = '{rid}' order by day").fetchall()
    assert [d for (d,) in days] == list(range(14))
    (n_ledger,) = con.execute(f"select count(*) from ledger where run_id = '{rid}'").fetchone()
    assert n_ledger == open_run(run.path).ledger.num_rows
    (n_cit,) = con.execute(f"select count(*) from citizens where run_id = '{rid}'").fetchone()
    assert n_cit == 1500



def test_duckdb_view_works_for_any_root_folder_name(tmp_path):
    """connect(root) works whatever the root folder is called, e.g. one with a quote and a space in it."""
    root = tmp_path / "o'brien runs"
    run = api_run(_scenario(citizens=300, days=6), out=root)
    con = connect(root)
    days = con.execute("select day from daily where run_id = ? order by day", [run.path.name]).fetchall()
    assert [d for (d,) in days] == list(range(6))

@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(-10**15, 10**15), min_size=1, max_size=60),
       spread=st.sampled_from([1, 3, 1000, 10**15]))
def test_median_score_metric_is_the_exact_median(values, spread):
    """The daily median (an integer kernel) equals numpy's median of the milli-point scores exactly."""
    x = (np.asarray(values, np.int64) % spread) if spread < 10**15 else np.asarray(values, np.int64)
    assert sum_and_median(x) == (int(x.sum()), float(np.median(x)))


@pytest.mark.parametrize("preset", preset_names())
def test_presets_survive_the_scenario_json_round_trip(preset):
    """A preset written as scenario.json and read back has the same digest (so resume() rebuilds it)."""
    spec = load_preset(preset)
    back = panopticon.ScenarioSpec.model_validate_json(json.dumps(spec.model_dump(mode="json"), indent=2))
    assert back.digest == spec.digest


@pytest.mark.parametrize("preset", preset_names())
def test_presets_run_with_consistent_metrics_and_replayable_ledger(preset):
    """Each preset runs (3000 citizens, 10 days): daily identities hold and the ledger replays the scores."""
    r = api_run(preset, citizens=3000, days=10)
    daily = r.daily.to_pandas()
    assert (daily["observed_true"] + daily["missed_events"] + daily["misattributed"]
            == daily["true_events"]).all()
    assert (daily["false_observations"] == daily["misattributed"] + daily["phantoms"]).all()
    shares = daily[[c for c in daily.columns if c.startswith("share_")]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-12)
    sim = engine.build(load_preset(preset).with_run(citizens=3000, days=10))
    replay = engine.initial_state(sim).scores.copy()  # the start may be an expression
    led = r.ledger.to_pandas()
    np.add.at(replay, led["citizen"].to_numpy(), led["delta_milli"].to_numpy())
    cit = r.citizens.to_pandas()
    assert np.array_equal(replay, np.round(cit["score"].to_numpy() * 1000).astype(np.int64))


@pytest.mark.parametrize("preset", ["court_blacklist", "rongcheng_points", "nosedive"])
def test_resumed_policy_memory_gives_the_straight_run(tmp_path, preset):
    """Lists, expiry queues, overrides and peer-rating sums survive Ctrl-C and resume: the resumed
    run has the fingerprint and the list changes of a run straight through."""
    spec = load_preset(preset).with_run(citizens=3000, days=40, checkpoint_every=15)
    straight = api_run(spec, out=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        api_run(spec, out=tmp_path / "b", progress=_InterruptAfter(22))
    resumed = resume(next((tmp_path / "b").iterdir()))
    assert resumed.manifest["result"]["fingerprint"] == straight.manifest["result"]["fingerprint"]
    assert resumed.lists.equals(straight.lists)


def test_the_summary_labels_whole_run_totals_final_state_and_the_last_day(stored):
    """`summary()` gives what happened over every day as totals (the sum of the daily table's
    counts, never the last day's), the standing at the end as the final state, and the last
    day's counts only under ``last_day``; a citizen refused twice counts once."""
    run, _ = stored
    daily = run.daily.to_pandas()
    summary = run.summary()
    whole, final, last = summary["whole_run"], summary["final_state"], summary["last_day"]
    for name in ("true_events", "false_observations", "score_changes"):
        assert whole[name] == daily[name].sum() > daily[name].iloc[-1]
        assert last[name] == daily[name].iloc[-1] and name not in final
    assert final["mean_score"] == daily["mean_score"].iloc[-1] and "mean_score" not in whole
    assert last["day"] == final["day"] == 13
    if "refused" in whole:
        refusals = run.table("refusals").to_pandas()
        assert whole["citizens_refused"] == refusals.citizen.nunique() <= whole["refused"]
