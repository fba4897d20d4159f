"""The kernel seam (see :mod:`panopticon.kernels`): every compiled kernel lives in
``panopticon.kernels``, one module per stage; nothing else imports Numba; domain modules reach
kernels through the package when they call them, never through names of their own; every
kernel documents its arrays.

Each test is named after the rule it checks.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import numba.core.dispatcher
import pytest

import panopticon
from panopticon import kernels

SRC = Path(panopticon.__file__).parent
KERNELS = "panopticon.kernels"
NOT_YET: dict[str, str] = {}
"""Modules outside the package still allowed to import Numba, with why (path below
``src/panopticon``). An entry that no longer imports Numba fails the test: remove it then."""


def _modules() -> list:
    names = ["panopticon"] + [m.name for m in pkgutil.walk_packages(panopticon.__path__,
                                                                    "panopticon.")]
    return [importlib.import_module(name) for name in names]


def _dispatchers(namespace: dict) -> dict:
    return {name: value for name, value in namespace.items()
            if isinstance(value, numba.core.dispatcher.Dispatcher)}


def _in_kernels(name: str) -> bool:
    return name == KERNELS or name.startswith(KERNELS + ".")


def test_every_numba_dispatcher_lives_in_panopticon_kernels():
    outside = []
    for module in _modules():
        places = [(module.__name__, vars(module))]
        places += [(f"{module.__name__}.{k}", vars(v)) for k, v in vars(module).items()
                   if isinstance(v, type) and v.__module__ == module.__name__]
        for where, namespace in places:
            for name, d in _dispatchers(namespace).items():
                if not _in_kernels(d.py_func.__module__):
                    outside.append(f"{where}.{name} (defined in {d.py_func.__module__})")
    assert not outside, "compiled kernels outside panopticon.kernels: " + ", ".join(outside)


def test_domain_modules_bind_no_kernel_and_reach_kernels_at_call_time():
    """Outside the package no module-level name is a kernel: domain code calls
    ``kernels.<stage>.<function>`` when it runs, so another backend's module is the one used."""
    bound = [f"{m.__name__}.{name}" for m in _modules() if not _in_kernels(m.__name__)
             for name in _dispatchers(vars(m))]
    assert not bound, "kernels bound to domain names (call kernels.<stage>.<f> instead): " \
        + ", ".join(bound)


def _imports_numba(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            continue
        if any(n == "numba" or n.startswith("numba.") for n in names):
            lines.append(node.lineno)
    return lines


def test_no_module_outside_the_kernels_package_imports_numba():
    offenders, still_needed = [], set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("kernels/"):
            continue
        lines = _imports_numba(path)
        if lines and rel in NOT_YET:
            still_needed.add(rel)
        elif lines:
            offenders.append(f"{rel}:{','.join(map(str, lines))}")
    assert not offenders, "Numba imported outside panopticon.kernels: " + ", ".join(offenders)
    stale = set(NOT_YET) - still_needed
    assert not stale, f"no longer import Numba, remove from NOT_YET: {sorted(stale)}"


def test_no_numba_decorator_outside_the_kernels_package():
    """Not even through another name: no ``njit``/``jit``/``vectorize`` decorator or call."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("kernels/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = node.attr if isinstance(node, ast.Attribute) else \
                node.id if isinstance(node, ast.Name) else None
            if name in ("njit", "jit", "vectorize", "guvectorize", "prange"):
                found.append(f"{rel}:{node.lineno} {name}")
    assert not found, ", ".join(found)


def test_the_kernels_package_has_one_module_per_stage():
    modules = {m.name for m in pkgutil.iter_modules(kernels.__path__)}
    assert modules == set(kernels.STAGES) | {"threads"}
    for stage in kernels.STAGES:
        assert _dispatchers(vars(getattr(kernels, stage))), f"kernels.{stage} has no kernel"


@pytest.mark.parametrize("kernel", kernels.dispatchers(),
                         ids=lambda d: f"{d.__module__.removeprefix(KERNELS + '.')}.{d.__name__}")
def test_each_kernel_has_a_docstring(kernel):
    doc = kernel.py_func.__doc__ or ""
    assert len(doc.strip()) >= 20, f"{kernel.__module__}.{kernel.__name__} has no docstring"


def test_each_kernel_is_cached_on_disk_unless_it_is_an_inlined_building_block():
    """``cache=True`` on every kernel called from Python (compiled once per machine); only
    ``inline="always"`` helpers, compiled into their callers, may go without."""
    uncached = [f"{d.__module__}.{d.__name__}" for d in kernels.dispatchers()
                if type(d._cache).__name__ == "NullCache"
                and d.targetoptions.get("inline", "never") != "always"]
    assert not uncached, "kernels without cache=True: " + ", ".join(uncached)


def test_kernels_dispatchers_lists_every_kernel_of_the_stage_modules():
    listed = {(d.__module__, d.__name__) for d in kernels.dispatchers()}
    defined = {(d.py_func.__module__, d.__name__) for stage in kernels.STAGES
               for d in _dispatchers(vars(getattr(kernels, stage))).values()}
    assert listed == defined and len(listed) >= 40
