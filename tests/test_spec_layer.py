"""The specification layer (panopticon.spec) stands on its own: no module of it imports the
runtime, at import time or later in a function, so that the runtime can import it without
an import cycle."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(importlib.util.find_spec("panopticon").submodule_search_locations[0])
SPEC_MODULES = sorted(f"panopticon.spec.{p.stem}" if p.stem != "__init__" else "panopticon.spec"
                      for p in (SRC / "spec").glob("*.py"))
RUNTIME = ("panopticon.engine", "panopticon.behaviour", "panopticon.sensors",
           "panopticon.sanctions", "panopticon.policy.runtime", "panopticon.policy.scoring",
           "panopticon.society", "panopticon.governance", "panopticon.ledger",
           "panopticon.metrics", "panopticon.api", "panopticon.sweeps", "panopticon.tuning",
           "panopticon.store", "panopticon.report", "panopticon.dashboard",
           "panopticon.explain", "panopticon.audit", "panopticon.cli")
"""Modules of the runtime (and what is built on it): the specification imports none."""
RANDOM_STREAMS = ("panopticon.spec.checks", "panopticon.spec.loader")
"""The only spec modules that may load the kernels: the limit checks draw from the run's own
random streams (:mod:`panopticon.rng`, a leaf that imports only its kernels)."""

# the package's __init__ imports the whole public API (and so the runtime): a stand-in
# package lets the import show only what the spec module itself pulls in
_PROBE = """
import importlib, json, sys, types
pkg = types.ModuleType("panopticon")
pkg.__path__ = [{src!r}]
sys.modules["panopticon"] = pkg
importlib.import_module({name!r})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("panopticon."))))
"""


def _is_runtime(module: str) -> bool:
    return any(module == r or module.startswith(r + ".") for r in RUNTIME)


def test_there_are_spec_modules():
    assert {"panopticon.spec", "panopticon.spec.scenario", "panopticon.spec.checks",
            "panopticon.spec.loader", "panopticon.spec.policy"} <= set(SPEC_MODULES)


@pytest.mark.parametrize("name", SPEC_MODULES)
def test_importing_a_spec_module_loads_no_runtime(name):
    out = subprocess.run([sys.executable, "-c", _PROBE.format(src=str(SRC), name=name)],
                         capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert name in loaded or name == "panopticon"
    assert [m for m in loaded if _is_runtime(m)] == []
    if name not in RANDOM_STREAMS:
        assert [m for m in loaded if m.startswith("panopticon.kernels")] == []


def _imports(path: Path, module: str) -> set[str]:
    """Every panopticon module ``path`` imports, at the top or inside functions (not in
    ``if TYPE_CHECKING:`` blocks, which never run)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("panopticon")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("panopticon"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


@pytest.mark.parametrize("name", SPEC_MODULES)
def test_spec_modules_never_import_the_runtime(name):
    """Not even lazily, inside a function (the old way round the cycle)."""
    path = SRC / "spec" / ("__init__.py" if name == "panopticon.spec"
                           else f"{name.rpartition('.')[2]}.py")
    assert sorted(m for m in _imports(path, name) if _is_runtime(m)) == []


def test_no_import_cycle_through_the_spec_layer():
    """The import graph of the whole package, lazy imports included, has no cycle through a
    spec module or the modules that re-export it."""
    modules = {}
    for p in SRC.rglob("*.py"):
        parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = p

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {m: {r for x in _imports(p, m) if (r := resolve(x)) and r != m}
             for m, p in modules.items()}
    watched = [m for m in modules if m.startswith("panopticon.spec") or m in (
        "panopticon.scenario", "panopticon.specfile", "panopticon.policy.schema",
        "panopticon.society.sampling", "panopticon.catalogue")]
    for start in watched:  # can start reach itself?
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m == start:
                pytest.fail(f"import cycle through {start}")
            if m not in seen and m != "panopticon":  # the package __init__ is the public API
                seen.add(m)
                todo += graph.get(m, ())
