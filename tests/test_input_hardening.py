"""Bad input is a clear user error (exit 2, file:line:col, key path, what was expected), never a
traceback, a hang or a silently wrong result; `validate` refuses exactly what `run` refuses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from panopticon.cli import app
from panopticon.errors import UserError
from panopticon.policy.conditions import Column, ConditionError, compile_condition
from panopticon.scenario import load_scenario, preset_path
from panopticon.specfile import MAX_FILE_BYTES, MAX_PROBLEMS

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
      cameras:
        events: [red_light]
        detection: 0.7
    policy: reference
    """)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Every test in its own folder, so no run store lands in the repository."""
    monkeypatch.chdir(tmp_path)


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    """Write ``text`` to ``folder/name`` and return the path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def where(text: str, needle: str) -> str:
    """``line:col`` (1-based) of the first ``needle`` in ``text``."""
    start = text.index(needle)
    before = text[:start]
    return f"{before.count(chr(10)) + 1}:{start - (before.rfind(chr(10)) + 1) + 1}"


def validate(path: Path):
    """`panopticon validate path` in process."""
    return runner.invoke(app, ["validate", str(path)])


def run(path: Path, store: Path):
    """`panopticon run path` in process, quietly, into ``store``."""
    return runner.invoke(app, ["run", str(path), "--out", str(store), "--quiet"])


def refused(result, *fragments: str) -> str:
    """Exit 2 with every fragment on stderr and no traceback; the error text."""
    shown = f"exit {result.exit_code} {result.exception!r}\nstderr:\n{result.stderr}"
    assert result.exit_code == 2, shown
    assert isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.output, shown
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} missing\n{shown}"
    return result.stderr


def with_society(society: str) -> str:
    """The good scenario with a ``society`` section (indented YAML lines)."""
    return GOOD + "society:\n" + textwrap.indent(textwrap.dedent(society), "  ")


# ------------------------------------------------------------------ extreme numbers


def test_overflowing_region_weights_are_refused_with_position(tmp_path):
    """Weights of 1e308 (whose sum overflows, which put everyone in the last region) are
    refused at the weight, saying the bound."""
    text = with_society("region: {values: [urban, rural], weights: [1.0e+308, 1.0e+308]}\n")
    file = write(tmp_path, text)
    refused(validate(file), f"{file}:{where(text, '1.0e+308')}: society.region.weights[0]:",
            "less than or equal to 1000000000000000", "1e+308")


def test_overflowing_income_median_is_refused_with_position(tmp_path):
    """An income median of 1e308 (infinite incomes) is refused at the median."""
    text = with_society("income: {kind: lognormal, median: 1.0e+308, sigma: 0.7}\n")
    file = write(tmp_path, text)
    refused(validate(file), f"{file}:{where(text, 'median')}: society.income.median:",
            "less than or equal to")


def test_income_whose_draws_overflow_is_refused_with_position(tmp_path):
    """A log-normal whose tail overflows (sigma 100) is refused at the distribution, saying what
    it can draw and how to bound it; with a max it is fine."""
    text = with_society("income: {kind: lognormal, median: 4000, sigma: 100}\n")
    file = write(tmp_path, text)
    refused(validate(file), f"{file}:{where(text, 'income')}: society.income:", "can draw values",
            "give it a min and max")
    bounded = text.replace("sigma: 100}", "sigma: 100, max: 100000}")
    assert validate(write(tmp_path, bounded, "bounded.yaml")).exit_code == 0


def test_overflowing_start_expression_is_refused_with_position(tmp_path):
    """score.start "1e308 * 10" (everyone put at the minimum) is refused at the key, with the
    column of the overflowing operator."""
    text = GOOD.replace("policy: reference", textwrap.dedent("""\
        policy:
          name: p
          score: {start: "1e308 * 10"}
          tiers: [{name: all}]
        """))
    file = write(tmp_path, text)
    refused(validate(file), f"{file}:{where(text, 'start')}: policy.score.start:", "column 1",
            "'*' can overflow")


def test_start_expression_beyond_the_score_range_is_refused_naming_the_columns(tmp_path):
    """A start score that some citizen's income would push past ±1e9 points (beyond int64
    milli-points) is refused, naming income's range; one within range is valid."""
    text = GOOD.replace("policy: reference", textwrap.dedent("""\
        policy:
          name: p
          score: {start: "income * 1e12"}
          tiers: [{name: all}]
        """))
    file = write(tmp_path, text)
    refused(validate(file), f"{file}:{where(text, 'start')}: policy.score.start:",
            "income from 0 to", "within ±1e+09 points")
    fine = text.replace("income * 1e12", "600 + min(income / 100, 100)")
    assert validate(write(tmp_path, fine, "fine.yaml")).exit_code == 0


def test_condition_arithmetic_that_can_overflow_is_refused_and_ranges_are_kept():
    """The expression language refuses arithmetic that overflows with bounded inputs, keeps
    the range of every number expression, and leaves divisions by near-0 unbounded."""
    cols = {"income": Column("number", span=(0.0, 1e6)), "age": Column("number", span=(0, 120)),
            "x": Column("number")}

    def span(text: str) -> tuple[float, float]:
        return compile_condition(text, cols, {}, expect="number").span

    for text, column in [("1e308 * 10", 1), ("income + 1e308 * 10", 10), ("income * 1e303", 1)]:
        with pytest.raises(ConditionError, match="can overflow") as info:
            span(text)
        assert info.value.column == column, text
    assert span("600 + income / 100") == (600.0, 10600.0)
    assert span("clip(income, 0, 50)") == (0.0, 50.0)
    assert span("abs(age - 60)") == (0.0, 60.0)
    assert span("1 if age > 5 else 2") == (1.0, 2.0)
    assert span("1000 / (age + 1)") == (1000 / 121, 1000.0)
    assert span("1000 / income") == (-np.inf, np.inf)
    assert span("x * 1e308") == (-np.inf, np.inf)  # unknown column: nothing to refuse


def test_unbounded_days_and_score_thresholds_are_refused_with_position(tmp_path):
    """A rule window day beyond any run, and a lender's min_score beyond the scores' range
    (both overflowed int64 when the run built its tables), are refused at the key."""
    text = GOOD.replace("policy: reference", textwrap.dedent("""\
        opportunities:
          loan: {min_score: 1.0e+308}
        policy:
          name: p
          rules: [{event: red_light, points: -5, active: {from_day: 100000000000000000000000}}]
          tiers: [{name: all}]
        """))
    file = write(tmp_path, text)
    refused(validate(file), f"{file}:{where(text, 'from_day')}: policy.rules[0].active.from_day:",
            "less than or equal to 36500",
            f"{file}:{where(text, 'min_score')}: opportunities.loan.min_score:")


# ------------------------------------------------------------------ validate == run


REFUSED_BY_RUN = {
    "rate_above_twenty": (GOOD.replace("rate: 0.01", "rate: 25"),
                          "behaviour.events.red_light.rate:", "at most 20"),
    "phantom_overflow": (GOOD.replace("detection: 0.7", textwrap.dedent("""\
                                 detection: 0.7
                                     phantom_rate: 5
                                     false_match_multipliers: {group: {minority: 1000}}""")),
                         "sensors.cameras.phantom_rate:", "phantom records a day"),
    "impossible_truncated_distribution": (
        with_society("adult_age: {kind: normal, mean: 40, sd: 1, min: 100, max: 110}\n"),
        "society.adult_age:", "leave almost none of the distribution"),
    "tries_above_twenty": (GOOD + textwrap.dedent("""\
        opportunities:
          flight: {rate: 12, multipliers: {sex: {male: 2.0}}}
        """), "opportunities.flight.rate:", "times a day"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BY_RUN))
def test_validate_and_run_refuse_the_same_files_with_the_same_message(tmp_path, case):
    """What `run` refuses when it builds the society (rates above 20 a day, phantom overflow,
    truncations with no probability, attempts above 20 a day), `validate` refuses too, with
    the same located message; and run writes no run."""
    text, path, fragment = REFUSED_BY_RUN[case]
    file = write(tmp_path, text)
    said = refused(validate(file), f"{file}:", path, fragment)
    store = tmp_path / "runs"
    assert refused(run(file, store)) == said
    assert not store.exists() or not any(store.iterdir())


def test_rate_bounds_use_the_runs_own_draws(tmp_path):
    """A distributed rate without a max is refused exactly when the run's own draws exceed
    20: the bound validation computes equals the largest rate the run draws."""
    from panopticon import engine
    from panopticon.behaviour import initial_rates
    from panopticon.scenario import scenario_from_data

    def spec_with(median: float):
        data = {"schema_version": 1, "name": "t", "run": {"citizens": 3000, "seed": 5},
                "behaviour": {"events": {"red_light": {
                    "rate": {"kind": "lognormal", "median": median, "sigma": 1.5},
                    "min_age": 0}}},
                "policy": "reference"}
        return scenario_from_data(data, {}, "<test>")

    sim = engine.build(spec_with(0.01))
    events = list(sim.events)
    largest = initial_rates(sim.scenario, events, sim.society.population,
                            sim.scenario.run.seed)[:, events.index("red_light")].max()
    # scale the median so that the largest drawn rate is just above, then just below, 20
    spec_with(0.01 * 19.9 / largest)
    with pytest.raises(UserError, match="behaviour.events.red_light.rate"):
        spec_with(0.01 * 20.1 / largest)


def test_seed_and_citizens_overrides_are_checked_like_the_file(tmp_path):
    """run.citizens and run.seed change who is drawn: an override that would give rates above
    20 a day is refused naming the rate, before anything runs."""
    text = GOOD.replace("rate: 0.01", "rate: {kind: lognormal, median: 0.02, sigma: 1.5}")
    spec = load_scenario(write(tmp_path, text))
    with pytest.raises(UserError, match="behaviour.events.red_light.rate"):
        spec.with_run(citizens=1_000_000)


def test_adult_age_by_category_is_refused_not_a_traceback(tmp_path):
    """Ages by category, which the population cannot draw, are refused at the key."""
    text = with_society("""\
        adult_age:
          by: group
          values:
            majority: {kind: normal, mean: 40, sd: 10}
            minority: {kind: normal, mean: 30, sd: 10}
        """)
    file = write(tmp_path, text)
    refused(validate(file), f"{file}:{where(text, 'adult_age')}: society.adult_age:",
            "not supported")


def test_ten_million_citizens_validate_in_seconds(tmp_path):
    """A preset scaled to 10 million citizens validates quickly (no population is built)."""
    text = preset_path("seed_article").read_text(encoding="utf-8")
    text = text.replace("citizens:", "citizens: 10000000 #", 1)
    started = time.monotonic()
    result = validate(write(tmp_path, text))
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 30


# ------------------------------------------------------------------ size and shape of files


def test_many_unknown_keys_are_refused_quickly_listing_the_first(tmp_path):
    """20,000 unknown keys (about 0.5 MB) are refused in seconds, listing the first problems
    with their positions and counting the rest."""
    lines = ["schema_version: 1", "name: big", "policy: reference", "society:"]
    lines += [f"  unknown_key_{i}: {i}" for i in range(20_000)]
    file = write(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    said = refused(validate(file), f"{file}:5:3: society.unknown_key_0: got 'unknown_key_0'; "
                                   "expected a known key here",
                   "more problems")
    assert time.monotonic() - started < 30
    assert said.count("expected a known key here") < MAX_PROBLEMS + 1


def test_many_duplicate_keys_are_refused_quickly(tmp_path):
    """20,000 repeats of one key are refused in seconds as duplicates, with positions."""
    file = write(tmp_path, GOOD + "".join(f"name: n{i}\n" for i in range(20_000)))
    started = time.monotonic()
    refused(validate(file), f"{file}:15:1: name: duplicate key", "more problems")
    assert time.monotonic() - started < 30


def test_integer_literal_with_too_many_digits_is_refused_with_position(tmp_path):
    """A 5,000-digit integer (beyond Python's conversion limit) is a located error."""
    text = GOOD.replace("seed: 1", "seed: " + "9" * 5000)
    file = write(tmp_path, text)
    refused(validate(file), f"{file}:{where(text, '9999')}: run.seed:", "more digits")


def test_file_larger_than_the_limit_is_refused(tmp_path):
    """A file over the size limit is refused naming the limit."""
    file = write(tmp_path, GOOD + "#" * MAX_FILE_BYTES + "\n")
    refused(validate(file), str(file), f"larger than {MAX_FILE_BYTES} bytes")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_device_files_are_refused_without_reading_them():
    """/dev/zero (endless) is refused at once as a device, not read."""
    refused(validate(Path("/dev/zero")), "/dev/zero: is a device; expected a YAML file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_without_a_writer_is_refused_without_hanging(tmp_path):
    """A FIFO nobody writes to is refused at once (a subprocess, so a hang fails the test)."""
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    done = subprocess.run([str(PANOPTICON), "validate", str(fifo)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "is a FIFO" in done.stderr and "Traceback" not in done.stderr


def test_text_file_that_is_not_a_scenario_is_refused_without_echoing_its_lines(tmp_path):
    """A text file of `key: value` lines that is no scenario says what was expected and
    quotes none of its lines, keys or values."""
    secrets = ["Database password", "hunter2 and more", "Internal host", "10.1.2.3"]
    text = f"{secrets[0]}: {secrets[1]}\n{secrets[2]}: {secrets[3]}\n"
    said = refused(validate(write(tmp_path, text, "notes.txt")), "not a panopticon scenario",
                   "expected a mapping of keys to values")
    assert not any(s in said for s in secrets), said


def test_passwd_like_file_is_refused_without_echoing_its_lines(tmp_path):
    """An /etc/passwd-like file is refused saying what kind of file was expected, quoting
    none of its lines."""
    lines = ["root:x:0:0:root:/root:/bin/bash", "alice:x:1000:1000:Alice:/home/alice:/bin/sh"]
    said = refused(validate(write(tmp_path, "\n".join(lines) + "\n", "passwd")),
                   "expected a mapping of keys to values", "scenario")
    assert not any(part in said for part in ("bin/bash", "alice", "Alice", "x:0:0", "/home"))


def test_binary_file_is_refused_as_not_text_without_echoing_bytes(tmp_path):
    """A binary file is refused as not UTF-8 text, without the codec's quote of its bytes."""
    file = tmp_path / "image.png"
    file.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    said = refused(validate(file), f"{file}: not UTF-8 text", "expected a YAML scenario")
    assert "0x89" not in said and "position" not in said
