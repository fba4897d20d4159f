"""Kernels are compiled once per machine, ahead by `panopticon compile` (which `make run` and
`make test` call after installing), and a run that has to compile says so before it starts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from panopticon import tuning
from panopticon.cli import app

BIN = Path(sys.executable).parent


def _fresh_cache(tmp_path: Path) -> dict:
    return {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}


def test_a_machine_without_cached_code_has_every_cached_kernel_uncompiled(tmp_path):
    count = subprocess.run(
        [sys.executable, "-c", "import panopticon.engine, panopticon.tuning as t; "
                               "print(len(t.uncompiled_kernels()), len(t.kernels()))"],
        env=_fresh_cache(tmp_path), capture_output=True, text=True, check=True)
    uncompiled, kernels = map(int, count.stdout.split())
    assert kernels >= 40 and uncompiled >= kernels - 5  # the few uncached are inlined helpers


def test_compile_leaves_nothing_for_the_first_run_to_compile(tmp_path):
    env = _fresh_cache(tmp_path)
    done = subprocess.run([BIN / "panopticon", "compile"], env=env, capture_output=True,
                          text=True, check=True, cwd=tmp_path)
    assert "compiled now" in done.stdout
    run = subprocess.run([BIN / "panopticon", "run", "--citizens", "2000", "--days", "20",
                          "-o", str(tmp_path / "runs"), "--quiet"],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "compiling" not in run.stderr


def test_a_run_that_must_compile_says_so_before_it_starts(monkeypatch, tmp_path):
    monkeypatch.setattr(tuning, "uncompiled_kernels", lambda: ["k"] * 40)
    result = CliRunner().invoke(app, ["run", "--citizens", "500", "--days", "3",
                                      "-o", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "compiling 40 kernels for this machine" in result.stderr
    assert "panopticon compile" in result.stderr


def test_a_run_with_compiled_kernels_says_nothing_about_compiling(monkeypatch, tmp_path):
    """Nor about one kernel only an unusual scenario reaches: seconds, not a minute."""
    monkeypatch.setattr(tuning, "uncompiled_kernels", lambda: ["k"])
    result = CliRunner().invoke(app, ["run", "--citizens", "500", "--days", "3",
                                      "-o", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "compiling" not in result.stderr


def test_the_api_logs_the_compiling_notice_on_the_panopticon_logger(monkeypatch, caplog):
    import panopticon as pc

    monkeypatch.setattr(tuning, "uncompiled_kernels", lambda: ["k"] * 40)
    logger = logging.getLogger("panopticon")
    monkeypatch.setattr(logger, "propagate", True)  # the CLI may have routed it to its console
    with caplog.at_level(logging.WARNING, logger="panopticon"):
        pc.run("seed_article", citizens=300, days=2)
    assert any("compiling 40 kernels" in r.getMessage() for r in caplog.records)


def test_cached_code_is_dropped_when_any_kernel_source_changed(tmp_path):
    """Numba checks a cached kernel only against its own file; a kernel that inlined a
    building block from another stage module would run stale code after that module was
    edited. The digest of every kernel source beside the cache drops it all."""
    script = """
from pathlib import Path
from panopticon import kernels
folder = {Path(d._cache._cache_path) for d in kernels.dispatchers()
          if hasattr(d._cache, "_cache_path")}.pop()
folder.mkdir(parents=True, exist_ok=True)
stale = folder / "scoring.tiers-1.py311.nbi"
stale.write_bytes(b"stale")
(folder / "panopticon-kernels.sha256").write_text("the digest of older sources")
print(kernels.refresh_cache(), stale.exists(), kernels.refresh_cache())
"""
    done = subprocess.run([sys.executable, "-c", script], env=_fresh_cache(tmp_path),
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False", "False"]
