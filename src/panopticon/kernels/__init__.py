"""The compiled kernels: every piece of per-citizen number crunching, behind one seam.

The domain modules (``behaviour``, ``sensors``, ``policy``, ``sanctions``, ``governance``,
``society``, ``metrics``) build their arrays, call kernels, and wrap the results in their own
types. This package is the only place that knows how the kernels are compiled.

Contract
--------
* **One module per stage of the simulated day**, plus two of shared primitives:

  ==================  ===========================================================
  ``random``          counter-based draws: ``mix64``, ``bits``, ``uniform``, ``poisson_count``
  ``arrays``          ``offsets`` (exclusive prefix sum with total), ``distinct_rows``
                      (a table's rows, each kept once)
  ``ties``            building tie layers (``from_pairs``, ``cliques``,
                      ``small_world_pairs``) and sums over a citizen's ties
                      (``tie_sum``, ``ties_sum``, ``ties_mean``)
  ``behaviour``       true events and adapting rates (``totals``, ``draw_events``,
                      ``deter``, ``scale_rates``, ``set_rates``)
  ``sensing``         observations and phantoms (``observe``, ``phantom_count``,
                      ``phantom_fill``)
  ``scoring``         policy rules, lists, tiers, association, peer ratings
                      (``apply_rules``, ``enter_lists``, ``tiers``, ``pull``,
                      ``apply_changes``, ``reverse``, ``rate_peers``)
  ``opportunities``   attempts at the gates (``count_tries``, ``fill_tries``)
  ``governance``      insiders' edits (``add_in_order``)
  ``network``         rewiring and layer statistics (``tier_groups``, ``propose``,
                      ``resolve``, ``fill_rows``, ``entry_moments``, ``components``,
                      ``by_group``)
  ``tally``           the day's counts (``sum_median_nonzero``, ``count_codes``,
                      ``sum_by_group``, ``count_by_group``)
  ==================  ===========================================================

  ``threads`` sets how many threads the parallel kernels use.
* **The function names are the interface.** A kernel takes NumPy arrays and scalars and
  returns arrays or scalars (or fills arrays it is given): no domain objects, no I/O, no
  hidden state. Its docstring gives every argument's shape, dtype and unit. The integer codes
  and limits a kernel is compiled with (``sensing.OBSERVED``, ``scoring.NEVER``,
  ``behaviour.CHUNK``, ...) live in its stage module; domain modules import those by name.
* **Domain code calls kernels at call time**, as ``kernels.<stage>.<function>(...)`` after
  ``from panopticon import kernels``, and never binds a kernel to a name of its own. A second
  implementation of the same functions (a GPU backend) can then take the place of a stage
  module without any change to domain code; results must stay bit for bit the same
  (``tests/test_golden.py``).
* **No Numba outside this package.** Kernels are Numba ``@njit`` functions compiled with
  ``cache=True`` (machine code cached next to each stage module); functions marked
  ``inline="always"`` are building blocks for other kernels. ``tests/test_kernel_seam.py``
  checks these rules.
"""

from panopticon.kernels import (
    arrays,
    behaviour,
    governance,
    network,
    opportunities,
    random,
    scoring,
    sensing,
    tally,
    threads,
    ties,
)

STAGES = ("random", "arrays", "ties", "behaviour", "sensing", "scoring", "opportunities",
          "governance", "network", "tally")
"""The kernel modules, in the order a day uses them (shared primitives first)."""

__all__ = ["STAGES", "arrays", "behaviour", "governance", "network", "opportunities", "random",
           "scoring", "sensing", "tally", "threads", "ties"]


def dispatchers() -> list:
    """Every compiled kernel of the stage modules (Numba dispatchers), by module and name."""
    from numba.core.dispatcher import Dispatcher

    found = {id(v): v for name in STAGES for v in vars(globals()[name]).values()
             if isinstance(v, Dispatcher) and v.__module__ == f"{__name__}.{name}"}
    return sorted(found.values(), key=lambda d: (d.__module__, d.__qualname__))


def uncompiled() -> list[str]:
    """The kernels with no machine code cached for this CPU, as ``module.name``: the next
    run compiles them. Reads Numba's cache index, which is not a public interface: a kernel
    whose index cannot be read (an inlined helper has none) counts as compiled, so the worst
    case is a missing notice."""
    missing = []
    for d in dispatchers():
        try:
            magic = d.targetctx.codegen().magic_tuple()
            cached = any(key[1] == magic for key in d._cache._cache_file._load_index())
        except Exception:  # noqa: BLE001 - no cache, or a changed Numba internal
            cached = True
        if not cached:
            missing.append(f"{d.__module__}.{d.__qualname__}")
    return missing


def refresh_cache() -> bool:
    """Drop the cached machine code when any kernel source changed since it was compiled;
    True when it did.

    Numba checks a cached kernel only against its own file, but kernels compile the inline
    building blocks of other stage modules (``random.bits``, ``ties.tie_sum``) into
    themselves: after an edit of one of those, the others would keep running the old code.
    A digest of every stage module's source, kept beside the cache, catches that. Called
    when a run starts (``tuning.configure``), before any kernel is loaded from the cache."""
    import hashlib
    from pathlib import Path

    folders = {Path(d._cache._cache_path) for d in dispatchers()
               if hasattr(d._cache, "_cache_path")}
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    stamp = digest.hexdigest()
    changed = False
    for folder in folders:
        mark = folder / "panopticon-kernels.sha256"
        try:
            if mark.is_file() and mark.read_text() == stamp:
                continue
            for cached in (*folder.glob("*.nbi"), *folder.glob("*.nbc")):
                cached.unlink(missing_ok=True)
            folder.mkdir(parents=True, exist_ok=True)
            mark.write_text(stamp)
            changed = True
        except OSError:  # a read-only install: its files do not change either
            continue
    return changed
