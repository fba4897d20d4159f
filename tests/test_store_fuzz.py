"""Any one corruption of a stored run is refused or leaves every answer as it was.

One small complete run is stored once; each example copies it to a fresh store, applies one
corruption drawn by hypothesis (a file truncated, deleted or overwritten in the middle, a
stray part, a manifest field edited, a Parquet value edited with or without re-sealing the
manifest's entry) and runs one command through the CLI. The rule, per command:

* never a traceback, and only the exit codes the command documents;
* a reader (compare, query, explain, report) exits 0 with exactly the untouched answer, or
  refuses with exit 2 and a message naming the damaged file or the run (a run folder whose
  manifest was deleted is no run: ``query`` finds no run in the store). A damage the cheap
  check of :func:`panopticon.store.local.open_checked` is documented to see (a listed file
  missing or of another size, a part the manifest does not list, a manifest that is not a
  run's) must be refused; one it is documented not to see (same-size bytes, a re-sealed
  edit, an edited manifest value) may change a reader's answer only if ``audit`` then says
  the run is not intact;
* ``audit`` exits 1 with findings or 2, or 0 with exactly the untouched report;
* ``runs`` never lists a run with visible damage as ``complete``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import build_scenario
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from panopticon import api
from panopticon.audit import audit
from panopticon.cli import app
from panopticon.store import local

runner = CliRunner()
QUERY = ("select (select count(*) from daily) as days, "
         "(select round(sum(mean_score), 6) from daily) as score, "
         "(select count(*) from ledger) as ledger, (select sum(delta_milli) from ledger) as delta, "
         "(select count(*) from events) as events, (select count(*) from citizens) as citizens")
COMMANDS = ("audit", "compare", "query", "explain", "report", "runs")
MANIFEST_FIELDS = ("seed", "days_completed", "status", "scenario_digest", "files entry",
                   "result.fingerprint", "rules order")
KINDS = ("truncate", "delete", "stray part", "overwrite", "manifest field", "edit parquet")
_examples = itertools.count()


def argv(command: str, root: Path, run_dir: Path) -> list[str]:
    """The command line of ``command`` against the run ``run_dir`` in the store ``root/runs``."""
    store = str(root / "runs")
    return {
        "audit": ["audit", str(run_dir), "--json"],
        "compare": ["compare", str(run_dir), str(run_dir), "--json"],
        "query": ["query", QUERY, "--out", store, "--json"],
        "explain": ["explain", str(run_dir), "-c", "3", "--json"],
        "report": ["report", str(run_dir), "--html", str(root / "report.html")],
        "runs": ["runs", "--out", store, "--json"],
    }[command]


def answer(command: str, root: Path, run_dir: Path, result) -> str | None:
    """What a command answered, with the store's path made neutral (None: nothing)."""
    if command == "report":
        path = root / "report.html"
        text = path.read_text(errors="replace") if path.exists() else None
    elif command == "runs":
        rows = json.loads(result.stdout)
        text = json.dumps([r["status"] for r in rows if r["run_id"] == run_dir.name])
    else:
        text = result.stdout
    return None if text is None else text.replace(str(root), "<ROOT>")


def invoke(command: str, root: Path, run_dir: Path):
    result = runner.invoke(app, argv(command, root, run_dir))
    return result, answer(command, root, run_dir, result) if result.exit_code == 0 else None


class Pristine(tuple):
    """(run folder, untouched answer of every command, files, editable Parquet cells)."""

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Pristine({self[0]})"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Pristine:
    """The stored run: (run folder, untouched answer of every command, files, editable
    Parquet cells)."""
    root = tmp_path_factory.mktemp("pristine")
    spec = build_scenario(run={"days": 12, "checkpoint_every": 5})
    run_dir = api.run(spec, out=root / "runs").path
    untouched = {}
    for command in COMMANDS:
        result, text = invoke(command, root, run_dir)
        assert result.exit_code == 0, (command, result.output)
        untouched[command] = text
    assert json.loads(untouched["audit"])["intact"]
    assert json.loads(untouched["runs"]) == ["complete"]
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")
                   if p.is_file() and p.name != ".lock")
    cells = []  # (part, column) of every part with rows and a column of an editable type
    for rel in files:
        if rel.endswith(".parquet"):
            table = pq.read_table(run_dir / rel)
            if table.num_rows:
                cells += [(rel, f.name) for f in table.schema if _editable(f.type)]
    return Pristine((run_dir, untouched, files, cells))


# ----------------------------------------------------------------------------- corruptions
def _editable(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return any(is_(kind) for is_ in (pa.types.is_integer, pa.types.is_floating,
                                     pa.types.is_boolean, pa.types.is_string,
                                     pa.types.is_large_string))


def _other(value, kind: pa.DataType, choices: list):
    """A plausible value of ``kind`` other than ``value``."""
    if pa.types.is_dictionary(kind):
        others = [c for c in choices if c is not None and c != value]
        return others[0] if others else f"{value}x"
    if pa.types.is_boolean(kind):
        return not value
    if pa.types.is_integer(kind):
        value = 0 if value is None else value
        return value - 1 if value + 1 > (2 ** (kind.bit_width - (0 if pa.types.is_unsigned_integer(
            kind) else 1)) - 1) else value + 1
    if pa.types.is_floating(kind):
        return 0.0 if value is None or value != value else value + 1.0
    return f"{value or ''}x"


def edit_cell(path: Path, column: str, row: int) -> str:
    """Change one value of a Parquet file and rewrite it as the store writes parts."""
    table = pq.read_table(path)
    field = table.schema.field(column)
    values = table.column(column).to_pylist()
    row %= len(values)
    old = values[row]
    values[row] = _other(old, field.type, list(dict.fromkeys(values)))
    if pa.types.is_dictionary(field.type):
        array = pa.array(values, pa.string()).dictionary_encode().cast(field.type)
    else:
        array = pa.array(values, field.type)
    table = table.set_column(table.schema.get_field_index(column), field, array)
    path.write_bytes(local.parquet_bytes(table))
    return f"{column}[{row}]: {old!r} -> {values[row]!r}"


def reseal_entry(run_dir: Path, rel: str) -> None:
    """Play an attacker who records the edited file's new size and SHA-256 in the manifest."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    data = (run_dir / rel).read_bytes()
    manifest["files"][rel] = [len(data), hashlib.sha256(data).hexdigest()]
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))


def edit_manifest(run_dir: Path, field: str, data) -> str:
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
    if field == "seed":
        manifest["seed"] = data.draw(st.integers(0, 2**31).filter(lambda s: s != manifest["seed"]))
        what = manifest["seed"]
    elif field == "days_completed":
        manifest["days_completed"] = what = data.draw(st.integers(0, manifest["days"] - 1))
    elif field == "status":
        manifest["status"] = what = data.draw(st.sampled_from(["interrupted", "failed", "running"]))
    elif field == "scenario_digest":
        manifest["scenario_digest"] = what = data.draw(hex64)
    elif field == "result.fingerprint":
        manifest["result"]["fingerprint"] = what = data.draw(hex64)
    elif field == "rules order":
        n = len(manifest["rules"])
        i, j = data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
        rules = manifest["rules"]
        rules[i], rules[j] = rules[j], rules[i]
        what = f"swap {rules[j]} and {rules[i]}"
    else:  # files entry
        rel = data.draw(st.sampled_from(sorted(manifest["files"])))
        size, sha = manifest["files"][rel]
        how = data.draw(st.sampled_from(["size", "sha256", "both", "removed"]))
        if how == "removed":
            del manifest["files"][rel]
        else:
            if how in ("size", "both"):
                size = max(0, size + data.draw(st.integers(-500, 500).filter(bool)))
            if how in ("sha256", "both"):
                sha = data.draw(hex64.filter(lambda h: h != sha))
            manifest["files"][rel] = [size, sha]
        what = f"{rel}: {how}"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return f"{field} -> {what}"


def corrupt(run_dir: Path, files: list[str], cells: list[tuple[str, str]], data) -> tuple[str, str]:
    """Apply one drawn corruption; returns (what was done, the damaged file's name)."""
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    if kind == "manifest field":
        field = data.draw(st.sampled_from(MANIFEST_FIELDS), label="field")
        return f"manifest {edit_manifest(run_dir, field, data)}", "manifest.json"
    if kind == "edit parquet":
        rel, column = data.draw(st.sampled_from(cells), label="cell")
        what = edit_cell(run_dir / rel, column, data.draw(st.integers(0, 10**6)))
        resealed = data.draw(st.booleans(), label="resealed")
        if resealed:
            reseal_entry(run_dir, rel)
        return f"{rel}: edited {what}{' (resealed)' if resealed else ''}", Path(rel).name
    if kind == "stray part":
        rel = data.draw(st.sampled_from([f for f in files if "/" in f]), label="part")
        folder = (run_dir / rel).parent
        lo = data.draw(st.integers(0, 20))
        name = f"part-{lo:05d}-{lo + data.draw(st.integers(0, 6)):05d}.parquet"
        if (folder / name).exists():
            name = f"part-{lo + 100:05d}-{lo + 100:05d}.parquet"
        shutil.copy(run_dir / rel, folder / name)
        return f"{rel} copied to {folder.name}/{name}", name
    rel = data.draw(st.sampled_from(files), label="file")
    path = run_dir / rel
    size = path.stat().st_size
    if kind == "delete":
        path.unlink()
        return f"{rel}: deleted", path.name
    if kind == "truncate":
        keep = data.draw(st.integers(0, size - 1), label="keep")
        path.write_bytes(path.read_bytes()[:keep])
        return f"{rel}: truncated to {keep} of {size} bytes", path.name
    raw = bytearray(path.read_bytes())  # overwrite: same size, other bytes
    at = data.draw(st.integers(size // 4, max(size // 4, 3 * size // 4 - 1)), label="at")
    new = data.draw(st.binary(min_size=1, max_size=min(16, size - at)), label="bytes")
    if bytes(raw[at:at + len(new)]) == new:
        new = bytes(b ^ 0xFF for b in new)
    raw[at:at + len(new)] = new
    path.write_bytes(bytes(raw))
    return f"{rel}: {len(new)} bytes overwritten at {at} of {size}", path.name


def visible(run_dir: Path) -> bool:
    """Whether the damage is one the cheap check is documented to see (module docstring of
    panopticon.store.local), restated here independently of its code."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_bytes().decode("utf-8"))
        files = manifest["files"]
        for rel, (size, _) in files.items():
            if not (run_dir / rel).is_file() or (run_dir / rel).stat().st_size != size:
                return True
    except (OSError, ValueError, KeyError, TypeError):
        return True
    unlisted = [f"{t}/{p.name}" for t in local.TABLES if (run_dir / t).is_dir()
                for p in (run_dir / t).iterdir() if f"{t}/{p.name}" not in files]
    return bool(unlisted) or "citizens.parquet" not in files or \
        manifest.get("checkpoint", {}).get("file") not in files


# ----------------------------------------------------------------------------- the rule
def check_rule(command: str, root: Path, run_dir: Path, untouched: dict, damaged: str,
               result, text: str | None) -> None:
    """Assert the module docstring's rule for one command's result on a damaged run."""
    output = result.output.replace("\n", "")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{command} raised {result.exception!r}:\n{result.output}")
    assert "Traceback" not in result.output, result.output
    seen = visible(run_dir)
    if command == "runs":
        assert result.exit_code == 0, result.output
        status = json.loads(text)
        assert not (seen and "complete" in status), (
            f"`runs` lists a run with visible damage as {status}")
        return
    if command == "audit":
        assert result.exit_code in (0, 1, 2), result.output
        if result.exit_code == 1:
            assert json.loads(result.stdout)["findings"], result.output
        elif result.exit_code == 0:
            assert text == untouched["audit"], (
                f"audit exits 0 with another report than the untouched run's:\n{text}")
        return
    assert result.exit_code in (0, 2), (command, result.exit_code, result.output)
    if command == "query" and not (run_dir / "manifest.json").exists():
        # a folder without a manifest is no run (a run killed before its first manifest leaves
        # one): the store has no run left, so no table to query
        assert result.exit_code == 2, result.output
        return
    if result.exit_code == 2:
        assert "error:" in output and (run_dir.name in output or damaged in output), (
            f"{command} refuses without naming the run or {damaged}: {result.output}")
        return
    if text == untouched[command]:
        return
    assert not seen, (f"{command} exits 0 with another answer than the untouched run's, for "
                      f"damage its cheap check is meant to refuse:\n{text[:2000]}")
    report = audit(run_dir)
    assert not report["intact"], (
        f"{command} exits 0 with another answer and `audit` calls the run intact:\n{text[:2000]}")


@pytest.mark.parametrize("command", COMMANDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: it takes minutes
@given(data=st.data())
def test_every_corruption_is_refused_or_leaves_the_answer_unchanged(pristine, tmp_path, command,
                                                                    data):
    source, untouched, files, cells = pristine
    root = tmp_path / f"example-{next(_examples)}"
    run_dir = Path(shutil.copytree(source, root / "runs" / source.name))
    try:
        what, damaged = corrupt(run_dir, files, cells, data)
        note(f"corruption: {what}; visible to the cheap check: {visible(run_dir)}")
        result, text = invoke(command, root, run_dir)
        note(f"{command}: exit {result.exit_code}\n{result.output[:3000]}")
        check_rule(command, root, run_dir, untouched, damaged, result, text)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_untouched_copy_gives_the_untouched_answers(pristine, tmp_path):
    """The baseline of the property test: a plain copy of the run answers exactly as the
    run itself, and the audit calls it intact."""
    source, untouched, _, _ = pristine
    run_dir = Path(shutil.copytree(source, tmp_path / "runs" / source.name))
    for command in COMMANDS:
        result, text = invoke(command, tmp_path, run_dir)
        assert result.exit_code == 0, (command, result.output)
        assert text == untouched[command], command


# ----------------------------------------------------------------------------- corrupt manifest
@pytest.mark.parametrize("content", [b"\xff\xfe\x00 not utf-8", b"[1, 2, 3]", b"{\"status\": \"complete\"",
                                     b""])
def test_a_corrupt_manifest_is_listed_as_corrupt_and_the_rest_of_the_store_still_answers(
        pristine, tmp_path, content):
    """Two runs, one with a manifest that is not a run's: `runs` lists it as corrupt beside
    the good one, and `query` either refuses naming the corrupt run (exit 2) or answers over
    the good run alone with a warning naming it; never over rows of the corrupt run."""
    source, untouched, _, _ = pristine
    good = Path(shutil.copytree(source, tmp_path / "runs" / source.name))
    bad = Path(shutil.copytree(source, tmp_path / "runs" / "broken"))
    (bad / "manifest.json").write_bytes(content)
    result = runner.invoke(app, ["runs", "--out", str(tmp_path / "runs"), "--json"])
    assert result.exit_code == 0 and result.exception is None, result.output
    status = {r["run_id"]: r["status"] for r in json.loads(result.stdout)}
    assert status == {good.name: "complete", bad.name: "corrupt"}
    result = runner.invoke(app, ["query", QUERY, "--out", str(tmp_path / "runs"), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 2), result.output
    assert "broken" in result.output, f"query does not name the corrupt run: {result.output}"
    if result.exit_code == 0:
        assert result.stdout.replace(str(tmp_path), "<ROOT>") == untouched["query"], (
            f"query answers over the corrupt run's rows too:\n{result.stdout}")


# ----------------------------------------------------------------------------- found by the fuzz
def _copy(pristine, tmp_path: Path) -> Path:
    source = pristine[0]
    return Path(shutil.copytree(source, tmp_path / "runs" / source.name))


def _check_every_command(pristine, tmp_path: Path, run_dir: Path, damaged: str,
                         commands=COMMANDS) -> None:
    for command in commands:
        result, text = invoke(command, tmp_path, run_dir)
        check_rule(command, tmp_path, run_dir, pristine[1], damaged, result, text)


@pytest.mark.parametrize("broken", ["thrift", "decompress"])
def test_a_part_that_no_longer_decodes_is_refused_naming_it(pristine, tmp_path, broken):
    """One byte of a ledger part flipped (same size, so only the SHA-256 sees it) where a page
    header (thrift) or a page's compressed data no longer decodes: every reader that reads
    the ledger refuses naming the part or the run (query too: its SQL sums a ledger column),
    the audit finds it."""
    run_dir = _copy(pristine, tmp_path)
    part = run_dir / "ledger" / "part-00005-00009.parquet"
    data = part.read_bytes()
    for at in range(len(data) // 4, 3 * len(data) // 4):
        flipped = bytearray(data)
        flipped[at] ^= 0xFF
        part.write_bytes(bytes(flipped))
        try:
            pq.read_table(part)
        except (OSError, pa.ArrowException) as exc:
            if broken in str(exc).lower():
                break
    else:
        pytest.fail(f"no byte of the part breaks it with a {broken} error")
    _check_every_command(pristine, tmp_path, run_dir, part.name)
    every_column = ["query", "select count(*) as n, sum(hash(l)) as h from ledger l", "--out",
                    str(run_dir.parent), "--json"]
    result = runner.invoke(app, every_column)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    part.write_bytes(data)
    untouched = runner.invoke(app, every_column)
    assert untouched.exit_code == 0, untouched.output
    if result.exit_code == 0:
        assert result.stdout == untouched.stdout
    else:
        message = result.output.replace("\n", "")
        assert result.exit_code == 2 and (part.name in message or run_dir.name in message), (
            f"query of every ledger column refuses without naming the part or the run: "
            f"{result.output}")


def test_a_part_rewritten_with_another_column_type_is_refused_not_a_traceback(pristine, tmp_path):
    """An appeals part whose dictionary column `outcome` is rewritten as plain strings (the
    manifest re-sealed): no command raises; readers answer as before or refuse."""
    run_dir = _copy(pristine, tmp_path)
    part = run_dir / "appeals" / "part-00005-00009.parquet"
    table = pq.read_table(part)
    field = table.schema.get_field_index("outcome")
    assert pa.types.is_dictionary(table.schema.field(field).type)
    table = table.set_column(field, "outcome", table.column("outcome").cast(pa.string()))
    part.write_bytes(local.parquet_bytes(table))
    reseal_entry(run_dir, f"appeals/{part.name}")
    _check_every_command(pristine, tmp_path, run_dir, part.name)


def test_a_column_name_that_is_not_utf8_is_refused_not_a_traceback(pristine, tmp_path):
    """One byte of a column's name in a network part's footer made invalid UTF-8 (same
    size): no command raises; readers answer as before or refuse naming the part or run."""
    run_dir = _copy(pristine, tmp_path)
    part = run_dir / "network" / "part-00005-00009.parquet"
    raw = bytearray(part.read_bytes())
    name = b"score_correlation"
    at = [i for i in range(len(raw)) if raw[i:i + len(name)] == name]
    assert at
    for i in at:
        raw[i + len(name) - 3] = 0xCC
    part.write_bytes(bytes(raw))
    _check_every_command(pristine, tmp_path, run_dir, part.name)


@pytest.mark.parametrize("status", ["interrupted", "failed", "running"])
def test_relabelling_a_complete_run_is_found_by_the_audit(pristine, tmp_path, status):
    """A complete run (all its days, its citizens table and result) whose manifest says
    `interrupted`, `failed` or `running`: the audit must not call it intact with another
    report than the run's, and a reader whose answer changes must have the audit object."""
    run_dir = _copy(pristine, tmp_path)
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["status"] = status
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    _check_every_command(pristine, tmp_path, run_dir, "manifest.json")
