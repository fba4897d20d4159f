"""Metrics of a finished run: pure functions of its stored tables (no simulation, no writing).

Every function takes a run (:class:`panopticon.api.RunResult`, stored or in memory, or any
object with ``table(name)``, ``manifest`` and ``path``) and reads only the small tables
(``daily``, ``opportunities``, ``refusals``, ``citizens``, ``behaviour``, ``network``,
``appeals``, ``manipulations``), never the ledger unless a policy's start score is an
expression (see :func:`mobility`). Stored runs are read column by column from Parquet.

A table a run does not have (or that is empty) makes the metrics built on it absent: the
functions return ``None`` or an empty dict, and :func:`summary` leaves those keys out. A
corrupt file raises :class:`panopticon.errors.UserError`. docs/metrics.md lists every metric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from panopticon.errors import UserError
from panopticon.metrics.intervals import LEVEL, katz_ratio, rate
from panopticon.store.tables import stored_name

ATTRIBUTES = ("social_group", "sex", "region", "residency")
"""Citizen attributes whose categories disparate impact compares by default."""

FOUR_FIFTHS = 0.8
"""The US EEOC "four-fifths rule" of adverse impact: a category whose favourable-outcome rate
is below this share of the most favoured category's (or whose harm rate is above 1 / 0.8 =
1.25 times the least harmed category's) is below four fifths; it is flagged when the 95%
interval of that impact ratio lies wholly below it too."""

VALENCE_LABEL = {-1: "misconduct", 0: "legitimate", 1: "rewarded"}


# ---------------------------------------------------------------------------- reading tables


def read(result: Any, name: str, columns: list[str] | None = None) -> pa.Table | None:
    """One of a run's tables (only ``columns`` if given), or None if the run has none or it is
    empty. Stored runs are read straight from their Parquet parts."""
    path = getattr(result, "path", None)
    if path is None:
        try:
            table = result.table(name)
        except (UserError, KeyError):
            return None
        if columns is not None:
            if any(c not in table.column_names for c in columns):
                return None
            table = table.select(columns)
        return table if table.num_rows else None
    path = Path(path)
    files = _files(path, name)
    if not files:
        return None
    try:
        parts = []
        for f in files:
            names = pq.read_schema(f).names
            if columns is not None and any(c not in names for c in columns):
                return None
            parts.append(pq.read_table(f, columns=columns))
        table = pa.concat_tables(parts, promote_options="default")
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise UserError(f"{path}/{name}: corrupt or unreadable Parquet file "
                        f"({str(exc).splitlines()[0]})") from None
    return table if table.num_rows else None


def _files(path: Path, name: str) -> list[Path]:
    """The files of a stored run's table that its manifest lists (the run checked first)."""
    from panopticon.store.local import open_checked, table_parts

    manifest = open_checked(path)
    if name == "citizens":
        return [path / "citizens.parquet"] if "citizens.parquet" in manifest["files"] else []
    return table_parts(path, name, manifest)


def _col(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.to_numpy(zero_copy_only=False)


def _tiers(result: Any) -> list[str]:
    tiers = (getattr(result, "manifest", None) or {}).get("tiers")
    if tiers:
        return list(tiers)
    daily = read(result, "daily")
    return [c[len("share_"):] for c in daily.column_names if c.startswith("share_")] \
        if daily is not None else []


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# ---------------------------------------------------------------- 1. scores, tiers, inequality


def gini(values: Any) -> float:
    """Gini coefficient of ``values`` shifted to be non-negative.

    With ``x = values - min(values)`` when the minimum is negative (else ``x = values``):
    ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x))``, computed from the sorted values as
    ``G = sum_i (2 i - n - 1) x_(i) / (n^2 mean(x))`` (i = 1..n). 0: everyone equal; close
    to 1: one citizen holds everything. 0 for an empty input or when all values are 0.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0:
        return 0.0
    if x[0] < 0:
        x = x - x[0]
    total = x.sum()
    if total == 0:
        return 0.0
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def score_distribution(result: Any) -> dict[str, list] | None:
    """Mean and median score by day (from ``daily``): columns ``day``, ``mean_score``,
    ``median_score`` (points, at the end of each day)."""
    daily = read(result, "daily", ["day", "mean_score", "median_score"])
    return None if daily is None else daily.to_pydict()


def tier_shares(result: Any) -> dict[str, list] | None:
    """Share of citizens in each tier by day (from ``daily``): ``day`` and one column per tier
    (highest first), each ``citizens in the tier / citizens``."""
    daily = read(result, "daily")
    if daily is None:
        return None
    tiers = [t for t in _tiers(result) if f"share_{t}" in daily.column_names]
    return {"day": daily.column("day").to_pylist(),
            **{t: daily.column(f"share_{t}").to_pylist() for t in tiers}}


def final_gini(result: Any) -> float | None:
    """:func:`gini` of the final scores (``citizens.score``)."""
    citizens = read(result, "citizens", ["score"])
    return None if citizens is None else gini(_col(citizens, "score"))


# ------------------------------------------------------------------------------ 2. mobility


def _spec(result: Any, spec: Any) -> Any:
    if spec is not None:
        return spec
    path, manifest = getattr(result, "path", None), getattr(result, "manifest", None)
    if path is None or manifest is None or not (Path(path) / "scenario.json").exists():
        return None
    from panopticon.store.local import read_scenario

    return read_scenario(Path(path), manifest)  # the store's one reader: checked, one message


def tier_of(scores: np.ndarray, floors: list[float | None]) -> np.ndarray:
    """Tier index (0 = highest) of each score: the first tier, highest first, whose ``min``
    the score reaches; a tier without ``min`` takes every score (the lowest tier)."""
    out = np.full(len(scores), len(floors) - 1, dtype=np.int64)
    assigned = np.zeros(len(scores), dtype=bool)
    for k, floor in enumerate(floors):
        hit = ~assigned & (True if floor is None else scores >= floor)
        out[hit] = k
        assigned |= hit
    return out


def _ledger_sums(result: Any, n: int) -> np.ndarray:
    """Each citizen's total score change in points (sum of ledger deltas / 1000)."""
    path = getattr(result, "path", None)
    sums = np.zeros(n, dtype=np.float64)
    if path is not None:
        files = _files(Path(path), "ledger")
        if not files:
            return sums
        import duckdb

        from panopticon.store.query import parquet_files

        try:
            rows = duckdb.connect().execute(
                "select citizen, sum(delta_milli) from read_parquet($f) group by citizen",
                {"f": parquet_files(files)}).fetchnumpy()
        except duckdb.Error as exc:
            raise UserError(f"{path}/ledger: cannot read ({str(exc).splitlines()[0]})") from None
        citizen, total = rows["citizen"], rows[list(rows)[1]]
    else:
        ledger = read(result, "ledger", ["citizen", "delta_milli"])
        if ledger is None:
            return sums
        grouped = ledger.group_by("citizen").aggregate([("delta_milli", "sum")])
        citizen, total = _col(grouped, "citizen"), _col(grouped, "delta_milli_sum")
    sums[np.asarray(citizen, dtype=np.int64)] = np.asarray(total, dtype=np.float64) / 1000
    return sums


def mobility(result: Any, spec: Any = None) -> dict | None:
    """Transition matrix from each citizen's start tier to their final tier.

    Start tier: the tier of the policy's ``score.start`` when it is a number (every citizen
    starts there); when it is an expression, of ``citizens.score - sum of the citizen's ledger
    deltas`` (the start score the ledger implies). Tier bounds come from the run's scenario
    (``scenario.json`` of a stored run, or ``spec``); final tier is ``citizens.tier``.

    Returns ``tiers`` (highest first), ``counts[s][e]`` (citizens starting in tier s and ending
    in e), ``shares[s][e] = counts[s][e] / sum_e counts[s][e]`` (row shares; NaN for an empty
    row), and ``up``/``down``/``stayed``: share of all citizens ending above, below, in their
    start tier. None without a scenario or a citizens table.
    """
    spec = _spec(result, spec)
    citizens = read(result, "citizens", ["score", "tier"])
    if spec is None or citizens is None:
        return None
    tiers = list(spec.policy.tier_names)
    floors = [t.min for t in spec.policy.tiers]
    final = _tier_codes(citizens, tiers)
    n = citizens.num_rows
    start_value = spec.policy.score.start
    if isinstance(start_value, int | float):
        start = tier_of(np.full(n, float(start_value)), floors)
    else:
        start = tier_of(_col(citizens, "score") - _ledger_sums(result, n), floors)
    k = len(tiers)
    counts = np.bincount(start * k + final, minlength=k * k).reshape(k, k)
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = counts / rows
    return {"tiers": tiers, "counts": counts.tolist(), "shares": shares.tolist(),
            "up": float((final < start).mean()) if n else math.nan,
            "down": float((final > start).mean()) if n else math.nan,
            "stayed": float((final == start).mean()) if n else math.nan}


def _tier_codes(citizens: pa.Table, tiers: list[str]) -> np.ndarray:
    column = citizens.column("tier").combine_chunks()
    if pa.types.is_dictionary(column.type):
        labels = column.dictionary.to_pylist()
        remap = np.array([tiers.index(x) for x in labels], dtype=np.int64)
        return remap[column.indices.to_numpy(zero_copy_only=False)]
    return np.array([tiers.index(t) for t in column.to_pylist()], dtype=np.int64)


# ------------------------------------------------------------------ 3. sanctions and perks


def opportunity_outcomes(result: Any) -> dict[str, dict[str, float]]:
    """Per opportunity (from ``opportunities``, summed over days and groups): ``attempts``,
    ``refused``, ``wrongful``, ``evaded``, ``granted``, ``retries``, and

    - ``refusal_rate = refused / attempts``
    - ``wrongful_share = wrongful / refused`` (refusals the true standing would not have caused)
    - ``evasion_rate = evaded / refused`` (refused, but succeeded anyway)

    Empty when the run has no opportunities."""
    table = read(result, "opportunities")
    if table is None:
        return {}
    measures = ["attempts", "retries", "refused", "wrongful", "evaded", "granted"]
    measures = [m for m in measures if m in table.column_names]
    table = table.select(["opportunity", *measures])
    table = table.set_column(0, "opportunity", _as_string(table.column("opportunity")))
    grouped = table.group_by("opportunity").aggregate([(m, "sum") for m in measures])
    out: dict[str, dict[str, float]] = {}
    for row in grouped.to_pylist():
        d = {m: float(row[f"{m}_sum"]) for m in measures}
        if not d.get("attempts"):
            continue
        d["refusal_rate"] = _ratio(d["refused"], d["attempts"])
        d["wrongful_share"] = _ratio(d["wrongful"], d["refused"])
        d["evasion_rate"] = _ratio(d["evaded"], d["refused"])
        out[row["opportunity"]] = d
    return dict(sorted(out.items()))


def _as_string(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


# ------------------------------------------------------ 4. wrongful observations and sanctions


def wrongful(result: Any) -> dict[str, float]:
    """Errors and their damage, from ``daily`` (sums over days unless said):

    - ``false_observations``: observations naming someone for an event they did not commit
    - ``observations = observed_true + false_observations``;
      ``false_observation_share = false_observations / observations``
    - ``citizens_ever_false``: citizens named falsely at least once (last day);
      ``share_ever_false`` = that / citizens
    - ``citizens_false_standing``: citizens whose score differs because of false observations
      (last day)
    - ``citizens_wrongly_sanctioned``: citizens under a sanction their true record would not
      have brought (last day) and ``citizens_wrongly_sanctioned_max`` (over days);
      ``share_wrongly_sanctioned`` = last day's / citizens;
      ``citizen_days_wrongly_sanctioned``: the daily counts summed over the days (each day a
      citizen spent under such a sanction counts once)
    - ``refusals``, ``wrongful_refusals`` (refused attempts the true standing would have
      allowed), ``wrongful_refusal_share = wrongful_refusals / refusals``
    """
    daily = read(result, "daily")
    if daily is None:
        return {}
    cols = set(daily.column_names)
    last = {c: daily.column(c)[-1].as_py() for c in cols}
    n = _citizen_count(result)
    out: dict[str, float] = {}
    if "false_observations" in cols:
        false = float(pc.sum(daily.column("false_observations")).as_py() or 0)
        out["false_observations"] = false
        if "observed_true" in cols:
            obs = false + float(pc.sum(daily.column("observed_true")).as_py() or 0)
            out["observations"] = obs
            out["false_observation_share"] = _ratio(false, obs)
    for c in ("citizens_ever_false", "citizens_false_standing"):
        if c in cols:
            out[c] = float(last[c])
    if "citizens_ever_false" in cols and n:
        out["share_ever_false"] = out["citizens_ever_false"] / n
    if "citizens_wrongly_sanctioned" in cols:
        out["citizens_wrongly_sanctioned"] = float(last["citizens_wrongly_sanctioned"])
        out["citizens_wrongly_sanctioned_max"] = float(
            pc.max(daily.column("citizens_wrongly_sanctioned")).as_py())
        out["citizen_days_wrongly_sanctioned"] = float(
            pc.sum(daily.column("citizens_wrongly_sanctioned")).as_py() or 0)
        if n:
            out["share_wrongly_sanctioned"] = out["citizens_wrongly_sanctioned"] / n
    if "refused" in cols and read(result, "opportunities", ["attempts"]) is not None:
        out["attempts"] = float(pc.sum(daily.column("attempts")).as_py() or 0)
        out["refusals"] = float(pc.sum(daily.column("refused")).as_py() or 0)
        out["refusal_rate"] = _ratio(out["refusals"], out["attempts"])
        out["wrongful_refusals"] = float(pc.sum(daily.column("wrongful_refusals")).as_py() or 0)
        out["wrongful_refusal_share"] = _ratio(out["wrongful_refusals"], out["refusals"])
        if "evaded" in cols:
            out["evaded"] = float(pc.sum(daily.column("evaded")).as_py() or 0)
    return out


def _citizen_count(result: Any) -> int:
    n = (getattr(result, "manifest", None) or {}).get("citizens")
    if n:
        return int(n)
    citizens = read(result, "citizens", ["citizen"])
    return 0 if citizens is None else citizens.num_rows


# ----------------------------------------------------------------------- 5. disparate impact

HARMS: dict[str, str] = {
    "refused": "refused an opportunity at least once",
    "wrongly_refused": "refused at least once where the true record would not have been",
    "sanctioned": "refused at least once because a sanction blocked it",
    "falsely_named": "named in a false observation at least once (citizens.ever_false)",
}
"""Harm measures (per citizen; a higher rate is worse): name -> what counts as an event."""

FAVOURABLE: dict[str, str] = {
    "top_tier": "in the highest tier at the end of the run",
    "granted": "attempts granted (attempts - refused; per attempt, by group only)",
    "perks_granted": "attempts at opportunities that need a perk, granted (by group only)",
}
"""Favourable-outcome measures (a lower rate is worse): name -> what counts as an event."""

MIN_CITIZENS = 100
"""Default smallest category judged by the four-fifths test (smaller: "too few to judge")."""

MIN_EVENTS = 10
"""Default fewest events (the category's and its reference's together) for a judgement."""

BINS = 5
"""Default number of quantile bins of a numeric trait."""

MAX_LEVELS = 12
"""A numeric column with at most this many distinct values is treated as categories."""

NOT_ATTRIBUTES = ("citizen", "household", "partner", "score", "tier", "false_points",
                  "ever_false")
"""Citizens columns that are identifiers or outcomes, not attributes to compare by (nor
are the ``listed_*`` columns: being on a list at the end is an outcome)."""

TOO_FEW, REFERENCE = "too few to judge", "reference"
FLAGGED, UNCLEAR, WITHIN = "adverse impact", "below 4/5, CI includes 4/5", "within 4/5"


def _citizen_columns(result: Any) -> list[str]:
    """The columns of the run's citizens table (none without one)."""
    path = getattr(result, "path", None)
    if path is None:
        try:
            return list(result.table("citizens").column_names)
        except (UserError, KeyError):
            return []
    files = _files(Path(path), "citizens")
    if not files:
        return []
    try:
        return list(pq.read_schema(files[0]).names)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise UserError(f"{path}/citizens: corrupt or unreadable Parquet file "
                        f"({str(exc).splitlines()[0]})") from None


def attributes(result: Any, numeric: bool = True) -> list[str]:
    """The citizens columns disparate impact can compare by: every column but identifiers and
    outcomes (:data:`NOT_ATTRIBUTES`). With ``numeric=False`` only the categorical ones (see
    :func:`categorical_attributes`)."""
    cols = [c for c in _citizen_columns(result)
            if c not in NOT_ATTRIBUTES and not c.startswith("listed_")]  # listed: an outcome
    return cols if numeric else [c for c in cols if _is_categorical(result, c)]


def categorical_attributes(result: Any) -> list[str]:
    """The categorical citizens columns (text, dictionary or boolean type, or whole numbers
    with at most :data:`MAX_LEVELS` values, such as ``rank``), identifiers, outcomes and tie
    counts (``*_ties``) left out: what the report compares by."""
    return attributes(result, numeric=False)


def _is_categorical(result: Any, column: str) -> bool:
    if column.endswith("_ties"):
        return False
    table = read(result, "citizens", [column])
    if table is None:
        return False
    kind = table.schema.field(column).type
    if pa.types.is_dictionary(kind) or pa.types.is_string(kind) or pa.types.is_large_string(
            kind) or pa.types.is_boolean(kind):
        return True
    return pa.types.is_integer(kind) and len(pc.unique(table.column(column))) <= MAX_LEVELS


def _categories(values: np.ndarray, kind: pa.DataType, bins: int | None
                ) -> tuple[list[str], np.ndarray]:
    """Category labels (in order) and each citizen's category index. Text, dictionary and
    boolean columns, and numbers with at most :data:`MAX_LEVELS` values, are categories;
    other numbers fall into ``bins`` quantile bins (``[lo, hi)``, the last ``[lo, hi]``)."""
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if numeric and bins:
        x = values.astype(np.float64)
        finite = ~np.isnan(x)
        if len(np.unique(x[finite])) > MAX_LEVELS:
            edges = np.unique(np.quantile(x[finite], np.linspace(0, 1, bins + 1)))
            k = len(edges) - 1
            code = np.clip(np.searchsorted(edges[1:-1], x, side="right"), 0, k - 1)
            for digits in (4, 6, 9, 17):  # enough digits to tell the edges apart
                shown = [f"{e:.{digits}g}" for e in edges]
                if len(set(shown)) == len(edges):
                    break
            labels = [f"[{shown[i]}, {shown[i + 1]}" + (")" if i < k - 1 else "]")
                      for i in range(k)]
            if not finite.all():
                code[~finite] = k
                labels.append("missing")
            return labels, code
    if numeric:
        cats, code = np.unique(values, return_inverse=True)
        return [f"{c:g}" if isinstance(c, float) else str(c) for c in cats.tolist()], code
    cats, code = np.unique(values.astype(str), return_inverse=True)
    return [str(c) for c in cats], code


def _outcomes(result: Any, spec: Any = None
              ) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per measure the run has: each citizen's outcome (bool (n,)) and who counts (bool (n,),
    or None for everyone). Refusals count among citizens old enough to try an opportunity
    (:func:`_can_try`); the rest among all citizens."""
    cols = set(_citizen_columns(result))
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    refusals = read(result, "refusals", ["citizen", "wrongful"])
    base = read(result, "citizens", ["citizen"]) if cols else None
    n = 0 if base is None else base.num_rows
    if refusals is not None and n:
        can_try = _can_try(result, spec, cols)
        who = _col(refusals, "citizen").astype(np.int64)
        for name, mask in (("refused", None), ("wrongly_refused", "wrongful")):
            flag = np.zeros(n, dtype=bool)
            flag[who if mask is None else who[_col(refusals, mask).astype(bool)]] = True
            out[name] = (flag, can_try)
        sanctioned = read(result, "refusals", ["citizen", "sanctioned"])
        if sanctioned is not None:
            flag = np.zeros(n, dtype=bool)
            flag[_col(sanctioned, "citizen").astype(np.int64)[
                _col(sanctioned, "sanctioned").astype(bool)]] = True
            out["sanctioned"] = (flag, can_try)
    if "ever_false" in cols:
        out["falsely_named"] = (_col(read(result, "citizens", ["ever_false"]),
                                     "ever_false").astype(bool), None)
    tiers = _tiers(result)
    if "tier" in cols and tiers:
        tier = _col(read(result, "citizens", ["tier"]), "tier").astype(str)
        out["top_tier"] = (tier == tiers[0], None)
    return out


def _can_try(result: Any, spec: Any, cols: set[str]) -> np.ndarray | None:
    """Citizens at least the youngest ``min_age`` of the scenario's opportunities (the
    default, 18, when the run's scenario is unknown); None without an ``age`` column."""
    if "age" not in cols:
        return None
    from panopticon.scenario import OpportunitySpec

    try:
        spec = _spec(result, spec)
    except UserError:
        spec = None
    ages = [o.min_age for o in (getattr(spec, "opportunities", None) or {}).values()]
    youngest = min(ages) if ages else OpportunitySpec.model_fields["min_age"].default
    return _col(read(result, "citizens", ["age"]), "age").astype(np.float64) >= youngest


def _attempts_by_group(result: Any, spec: Any) -> dict[str, dict[str, tuple[float, float]]]:
    """``granted`` and ``perks_granted`` per group: (attempts granted, attempts), from the
    ``opportunities`` table (which counts by group only)."""
    table = read(result, "opportunities", ["opportunity", "social_group", "attempts", "refused"])
    if table is None:
        return {}
    opp = _col(table, "opportunity").astype(str)
    group = _col(table, "social_group").astype(str)
    attempts = _col(table, "attempts").astype(np.float64)
    granted = attempts - _col(table, "refused").astype(np.float64)
    perks = np.isin(opp, sorted(_perk_opportunities(result, spec, set(opp))))
    out: dict[str, dict[str, tuple[float, float]]] = {"granted": {}, "perks_granted": {}}
    for g in sorted(set(group)):
        mine = group == g
        out["granted"][g] = (float(granted[mine].sum()), float(attempts[mine].sum()))
        if perks.any():
            out["perks_granted"][g] = (float(granted[mine & perks].sum()),
                                       float(attempts[mine & perks].sum()))
    return {k: v for k, v in out.items() if v}


def _perk_opportunities(result: Any, spec: Any, names: set[str]) -> set[str]:
    """The opportunities that need a perk: the scenario's ``needs`` (else the catalogue's)."""
    from panopticon.catalogue import catalogue_of

    try:
        spec = _spec(result, spec)
    except UserError:
        spec = None
    given = getattr(spec, "opportunities", None) or {}
    catalogued = catalogue_of(spec).opportunities  # packaged, then the scenario's own
    out = set()
    for name in names:
        needs = getattr(given.get(name), "needs", None)
        if needs is None and name in catalogued:
            needs = catalogued[name].needs
        if needs:
            out.add(name)
    return out


def compare_rates(counts: dict[str, tuple[float, float]], size: dict[str, float], kind: str,
                  min_citizens: int = MIN_CITIZENS, min_events: int = MIN_EVENTS,
                  level: float = LEVEL) -> dict[str, dict[str, Any]]:
    """The four-fifths test of one measure across categories, with intervals.

    Args:
        counts: category -> (events, trials): citizens (or attempts) with the outcome, and
            citizens (or attempts) of the category.
        size: category -> citizens counted (what ``min_citizens`` is checked against).
        kind: ``"harm"`` (a higher rate is worse) or ``"favourable"``.

    Returns category -> ``events``, ``trials``, ``rate = events / trials`` with its Wilson
    interval ``low``/``high``; ``reference`` (the least-harmed, or most-favoured, category
    with at least ``min_citizens`` citizens); ``ratio = rate / reference rate`` with its Katz
    interval ``ratio_low``/``ratio_high`` (None where undefined: never infinite); ``impact``,
    the four-fifths impact ratio (harm: reference rate / rate; favourable: rate / reference
    rate; 1 = as well off as the reference) with ``impact_low``/``impact_high``;
    ``excludes`` (the impact interval lies wholly on one side of :data:`FOUR_FIFTHS`; None
    when not judged); ``flag`` (impact and its whole interval below :data:`FOUR_FIFTHS`) and
    ``status``: ``reference``, ``too few to judge`` (under ``min_citizens`` citizens, or
    under ``min_events`` events in the category and the reference together), ``adverse
    impact`` (flagged), ``below 4/5, CI includes 4/5`` or ``within 4/5``.
    """
    harm = kind == "harm"
    out: dict[str, dict[str, Any]] = {}
    for c, (x, n) in counts.items():
        row: dict[str, Any] = {"kind": kind, "events": float(x), "trials": float(n),
                               "rate": None, "low": None, "high": None}
        if n > 0:
            row["rate"], row["low"], row["high"] = rate(x, n, level)
        out[c] = row
    eligible = [c for c, r in out.items()
                if r["trials"] > 0 and size.get(c, 0) >= min_citizens]

    def order(c: str) -> tuple[float, float]:  # ties: the larger category
        return (out[c]["rate"], -out[c]["trials"] if harm else out[c]["trials"])

    ref = (min if harm else max)(eligible, key=order, default=None)
    for c, row in out.items():
        row.update(reference=ref, ratio=None, ratio_low=None, ratio_high=None, impact=None,
                   impact_low=None, impact_high=None, excludes=None, flag=False,
                   status=TOO_FEW)
        if ref is None or row["trials"] == 0:
            continue
        if c == ref:
            row.update(ratio=1.0, impact=1.0, status=REFERENCE)
            continue
        x, n, xr, nr = row["events"], row["trials"], out[ref]["events"], out[ref]["trials"]
        row["ratio"], row["ratio_low"], row["ratio_high"] = katz_ratio(x, n, xr, nr, level)
        row["impact"], row["impact_low"], row["impact_high"] = (
            katz_ratio(xr, nr, x, n, level) if harm else
            (row["ratio"], row["ratio_low"], row["ratio_high"]))
        if size.get(c, 0) < min_citizens or x + xr < min_events or row["impact"] is None:
            continue
        high, low = row["impact_high"], row["impact_low"]
        row["excludes"] = (high is not None and high < FOUR_FIFTHS) or \
            (low is not None and low > FOUR_FIFTHS)
        row["flag"] = row["impact"] < FOUR_FIFTHS and high is not None and high < FOUR_FIFTHS
        row["status"] = FLAGGED if row["flag"] else \
            UNCLEAR if row["impact"] < FOUR_FIFTHS else WITHIN
    return out


def disparate_impact(result: Any, attribute: str, *, min_citizens: int = MIN_CITIZENS,
                     min_events: int = MIN_EVENTS, bins: int | None = BINS,
                     level: float = LEVEL, spec: Any = None) -> dict[str, dict[str, Any]]:
    """Harms and favourable outcomes per category of any citizens column, with the
    four-fifths test and confidence intervals (see :func:`compare_rates`).

    ``attribute`` is any column of ``citizens`` (``group`` means ``social_group``): text,
    dictionary and boolean columns (and whole numbers with at most :data:`MAX_LEVELS`
    values) by category; other numbers in ``bins`` quantile bins (``None``: every value a
    category).

    Returns category -> ``citizens`` (N_c) and, per measure the run has, the dict of
    :func:`compare_rates`. Harms (:data:`HARMS`; citizens with the event over the category's
    citizens): ``refused``, ``wrongly_refused``, ``sanctioned`` (from ``refusals``; counted
    among citizens old enough to try an opportunity), ``falsely_named``
    (``citizens.ever_false``). Favourable (:data:`FAVOURABLE`): ``top_tier`` (final tier is
    the highest); for ``attribute="social_group"`` also ``granted`` and ``perks_granted`` (per
    attempt, from ``opportunities``: attempts - refused over attempts, all opportunities or
    those that need a perk). Categories with under ``min_citizens`` citizens counted (default
    :data:`MIN_CITIZENS`), or comparisons with under ``min_events`` events (default
    :data:`MIN_EVENTS`), are ``too few to judge``, never flagged. Empty when the citizens
    table lacks the attribute. docs/metrics.md gives the formulas and references.
    """
    return _impact(result, attribute, _outcomes(result, spec), None, min_citizens,
                   min_events, bins, level, spec)


def _impact(result: Any, attribute: str, outcomes: dict[str, tuple],
            attempts: dict | None, min_citizens: int, min_events: int, bins: int | None,
            level: float, spec: Any) -> dict[str, dict[str, Any]]:
    attribute = stored_name(attribute)
    citizens = read(result, "citizens", [attribute])
    if citizens is None or attribute == "citizen":
        return {}
    labels, code = _categories(_col(citizens, attribute), citizens.schema.field(
        attribute).type, bins)
    k = len(labels)
    size = np.bincount(code, minlength=k).astype(np.float64)
    sizes = {c: float(size[i]) for i, c in enumerate(labels)}
    out: dict[str, dict[str, Any]] = {c: {"citizens": sizes[c]} for c in labels}
    measures: dict[str, tuple[str, dict[str, tuple[float, float]]]] = {}
    population: dict[str, dict[str, float]] = {}
    for name, (flag, counts) in outcomes.items():
        events = np.bincount(code[flag if counts is None else flag & counts], minlength=k)
        trials = size if counts is None else np.bincount(code[counts], minlength=k)
        population[name] = {c: float(trials[i]) for i, c in enumerate(labels)}
        measures[name] = ("harm" if name in HARMS else "favourable",
                          {c: (float(events[i]), float(trials[i]))
                           for i, c in enumerate(labels)})
    if attribute == "social_group":
        if attempts is None:
            attempts = _attempts_by_group(result, spec)
        for name, by_group in attempts.items():
            measures[name] = ("favourable",
                              {c: by_group.get(c, (0.0, 0.0)) for c in labels})
    order = [*HARMS, *FAVOURABLE]
    for name in sorted(measures, key=order.index):
        kind, counts = measures[name]
        for c, row in compare_rates(counts, population.get(name, sizes), kind, min_citizens,
                                    min_events, level).items():
            out[c][name] = row
    return out


def disparate_impact_all(result: Any, attributes: str | Sequence[str] = ATTRIBUTES, *,
                         min_citizens: int = MIN_CITIZENS, min_events: int = MIN_EVENTS,
                         bins: int | None = BINS, level: float = LEVEL, spec: Any = None
                         ) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`disparate_impact` for each of ``attributes`` (a column name or several; default
    :data:`ATTRIBUTES`) that the run's citizens have: attribute -> category -> row. Pass
    :func:`categorical_attributes` (or :func:`attributes`) of the run for every column."""
    if isinstance(attributes, str):
        attributes = [attributes]
    cols = set(_citizen_columns(result))
    wanted = [a for a in map(stored_name, attributes) if a in cols]
    if not wanted:
        return {}
    outcomes = _outcomes(result, spec)
    attempts = _attempts_by_group(result, spec) if "social_group" in wanted else {}
    out = {}
    for attribute in wanted:
        d = _impact(result, attribute, outcomes, attempts, min_citizens, min_events, bins,
                    level, spec)
        if d:
            out[attribute] = d
    return out


def _comparisons(impact: dict[str, dict[str, dict[str, Any]]]):
    """Every (attribute, category, measure, row) judged by the four-fifths test."""
    for attribute, cats in impact.items():
        for category, row in cats.items():
            for name, r in row.items():
                if isinstance(r, dict) and r["status"] not in (TOO_FEW, REFERENCE):
                    yield attribute, category, name, r


# ------------------------------------------------------------------- 6. behaviour change


def behaviour_change(result: Any, window: int = 7, spec: Any = None
                     ) -> dict[str, dict[str, float]]:
    """Per event type, how behaviour moved (from ``behaviour``, summed over groups):

    - ``change = sum(expected) / sum(baseline) - 1`` on the last survey day (a day where
      ``expected`` is not null): the day's modelled rate against the starting rates.
      Below 0: fewer such acts (deterrence for misconduct, chilling for legitimate acts).
    - ``true_start``, ``true_end``: mean true events per day over the first and the last
      ``window`` days (``min(window, days // 2)``, at least 1), and
      ``true_change = true_end / true_start - 1`` (NaN when true_start is 0).
    - ``valence`` from the catalogue: -1 penalised misconduct, 0 a legitimate act some
      systems penalise (a fall is *chilling*), +1 rewarded; ``kind`` is its label. A
      scenario's own event types take theirs from its ``catalogue`` section (``spec``, else
      the stored run's scenario; NaN and ``?`` for an in-memory run without ``spec``).

    Empty without a behaviour table."""
    from panopticon.catalogue import catalogue_of

    try:
        catalogued = catalogue_of(_spec(result, spec)).events
    except UserError:
        catalogued = catalogue_of(None).events

    table = read(result, "behaviour", ["day", "event", "true_events", "expected", "baseline"])
    if table is None:
        return {}
    day = _col(table, "day").astype(np.int64)
    event = _col(table, "event").astype(str)
    true = _col(table, "true_events").astype(np.float64)
    expected = _col(table, "expected").astype(np.float64)
    baseline = _col(table, "baseline").astype(np.float64)
    surveyed = ~np.isnan(expected)
    last_survey = int(day[surveyed].max()) if surveyed.any() else None
    first_day, last_day = int(day.min()), int(day.max())
    w = max(1, min(window, (last_day - first_day + 1) // 2))
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(event):
        m = event == name
        d: dict[str, Any] = {}
        if last_survey is not None:
            s = m & (day == last_survey) & surveyed
            d["change"] = _ratio(float(expected[s].sum()), float(baseline[s].sum())) - 1 \
                if baseline[s].sum() else math.nan
        start = float(true[m & (day < first_day + w)].sum()) / w
        end = float(true[m & (day > last_day - w)].sum()) / w
        d["true_start"], d["true_end"] = start, end
        d["true_change"] = end / start - 1 if start else math.nan
        entry = catalogued.get(name)
        d["valence"] = float(entry.valence) if entry else math.nan
        d["kind"] = VALENCE_LABEL.get(entry.valence, "?") if entry else "?"
        out[name] = d
    return out


# ------------------------------------------------------------------------- 7. network


NETWORK_FIELDS = ("mean_degree", "isolated_share", "tier_assortativity", "components",
                  "largest_component_share")


def network_change(result: Any) -> dict[str, dict[str, float]]:
    """Per tie layer, first and last survey day (from ``network``): ``<stat>_first``,
    ``<stat>_last`` and ``<stat>_change = last - first`` for ``mean_degree``,
    ``isolated_share``, ``tier_assortativity`` (Newman's assortativity of ties by tier:
    1 = ties only within a tier), ``components``, ``largest_component_share`` and
    ``fragmentation = 1 - largest_component_share``. Empty without a network table."""
    table = read(result, "network")
    if table is None:
        return {}
    rows = table.to_pylist()
    out: dict[str, dict[str, float]] = {}
    for layer in dict.fromkeys(r["layer"] for r in rows):
        mine = sorted((r for r in rows if r["layer"] == layer), key=lambda r: r["day"])
        first, last = dict(mine[0]), dict(mine[-1])
        for r in (first, last):
            r["fragmentation"] = 1 - r["largest_component_share"]
        d = {"first_day": float(first["day"]), "last_day": float(last["day"])}
        for f in (*NETWORK_FIELDS, "fragmentation"):
            if f in first and first[f] is not None and last[f] is not None:
                d[f"{f}_first"], d[f"{f}_last"] = float(first[f]), float(last[f])
                d[f"{f}_change"] = float(last[f]) - float(first[f])
        out[layer] = d
    return out


# ------------------------------------------------------------------ 8. appeals and audit


def appeals(result: Any) -> dict[str, float]:
    """Appeals (from ``appeals``): ``filed``, ``upheld``, ``rejected`` (rows of each outcome),
    ``decided = upheld + rejected``, ``upheld_share = upheld / decided``,
    ``backlog = filed - decided`` (waiting at the end), ``mean_wait``: mean ``waited`` days of
    the decided ones. Empty when no appeal was filed."""
    table = read(result, "appeals", ["outcome", "waited"])
    if table is None:
        return {}
    outcome = _col(table, "outcome").astype(str)
    waited = _col(table, "waited").astype(np.float64)
    filed = float((outcome == "filed").sum())
    upheld = float((outcome == "upheld").sum())
    rejected = float((outcome == "rejected").sum())
    decided = upheld + rejected
    dec = outcome != "filed"
    return {"filed": filed, "upheld": upheld, "rejected": rejected, "decided": decided,
            "upheld_share": _ratio(upheld, decided), "backlog": filed - decided,
            "mean_wait": float(waited[dec].mean()) if dec.any() else math.nan}


REVIEW_FLOWS = ("entered", "confirmed", "dismissed", "false_caught", "true_dismissed",
                "false_confirmed")
"""Review counts :func:`review` sums over the days (daily ``reviews_<name>``)."""


def review(result: Any) -> dict[str, float]:
    """A review before sanctions (``governance.review``, from ``daily``): cases ``entered``,
    ``confirmed``, ``dismissed``, ``false_caught`` (false cases dismissed),
    ``true_dismissed`` (true cases dismissed), ``false_confirmed`` (false cases confirmed:
    sanctions a reviewer let through), summed over the days; ``backlog`` (waiting at the end)
    and ``mean_wait`` (days, over every decision). Empty without a review."""
    daily = read(result, "daily")
    if daily is None or "reviews_confirmed" not in daily.column_names:
        return {}
    out = {k: float(pc.sum(daily.column(f"reviews_{k}")).as_py() or 0) for k in REVIEW_FLOWS}
    out["backlog"] = float(daily.column("review_backlog")[-1].as_py())
    decided = _col(daily, "reviews_confirmed") + _col(daily, "reviews_dismissed")
    wait = _col(daily, "review_wait_days").astype(np.float64)
    out["mean_wait"] = float((wait[decided > 0] * decided[decided > 0]).sum() / decided.sum()) \
        if decided.sum() else math.nan
    return out


def manipulations(result: Any) -> dict[str, dict[str, float]]:
    """Insider manipulations per attack (from ``manipulations``): ``actions`` (rows),
    ``citizens`` (distinct targets), ``logged`` (rows shown as manual adjustments),
    ``points = sum(delta_milli) / 1000``. Empty when there were none."""
    table = read(result, "manipulations", ["citizen", "attack", "delta_milli", "logged"])
    if table is None:
        return {}
    attack = _col(table, "attack").astype(str)
    citizen = _col(table, "citizen")
    delta = _col(table, "delta_milli").astype(np.float64)
    logged = _col(table, "logged").astype(bool)
    out = {}
    for a in sorted(set(attack)):
        m = attack == a
        out[a] = {"actions": float(m.sum()), "citizens": float(len(np.unique(citizen[m]))),
                  "logged": float(logged[m].sum()), "points": float(delta[m].sum() / 1000)}
    return out


# -------------------------------------------------------------------------- 9. summary


def summary(result: Any, spec: Any = None) -> dict[str, float]:
    """Headline numbers of a run as a flat ``name -> float`` dict (for ``compare`` and sweeps).

    Keys (each absent when its table is): ``mean_score``, ``median_score`` (last day),
    ``gini`` (final scores), ``share_<tier>`` (last day), ``mobility_up`` / ``_down`` /
    ``_stayed``; the keys of :func:`wrongful`; from :func:`disparate_impact_all` (default
    attributes and thresholds), over the comparisons judged (not the reference, not too few
    to judge): ``worst_four_fifths`` (lowest impact ratio), ``four_fifths_below`` (how many
    impact ratios are below 0.8), ``four_fifths_flags`` (how many of those have their whole
    95% interval below 0.8), ``max_refused_ratio``, ``max_wrongful_ratio``,
    ``max_sanctioned_ratio`` and ``max_false_ratio`` (highest defined ratio of each harm's
    rate to the least harmed category's);
    ``behaviour_change_<event>`` (:func:`behaviour_change`'s ``change``, else
    ``true_change``); ``tier_assortativity_<layer>``, ``mean_degree_<layer>`` and
    ``fragmentation_<layer>`` (last survey); ``appeals_<figure>``; ``review_<figure>``
    (:func:`review`);
    ``manipulations_<attack>``; with a lender, ``lending_<opportunity>_<category>_<what>``
    (:data:`LENDING_SUMMARY`, whole run). Undefined values (a ratio over 0, NaN, infinity) are left
    out. Never raises for a missing table.
    """
    out: dict[str, float] = {}
    dist = score_distribution(result)
    if dist is not None:
        out["mean_score"] = float(dist["mean_score"][-1])
        out["median_score"] = float(dist["median_score"][-1])
    g = final_gini(result)
    if g is not None:
        out["gini"] = g
    shares = tier_shares(result)
    if shares is not None:
        for t, v in shares.items():
            if t != "day" and v:
                out[f"share_{t}"] = float(v[-1])
    moves = mobility(result, spec)
    if moves is not None:
        for k in ("up", "down", "stayed"):
            out[f"mobility_{k}"] = moves[k]
    out.update(wrongful(result))
    judged = list(_comparisons(disparate_impact_all(result, spec=spec)))
    impacts = [r["impact"] for *_, r in judged]
    if impacts:
        out["worst_four_fifths"] = min(impacts)
        out["four_fifths_below"] = float(sum(v < FOUR_FIFTHS for v in impacts))
        out["four_fifths_flags"] = float(sum(r["flag"] for *_, r in judged))
    for measure, key in (("refused", "max_refused_ratio"), ("falsely_named", "max_false_ratio"),
                         ("wrongly_refused", "max_wrongful_ratio"),
                         ("sanctioned", "max_sanctioned_ratio")):
        ratios = [r["ratio"] for _, _, name, r in judged
                  if name == measure and r["ratio"] is not None]
        if ratios:
            out[key] = max(ratios)
    for event, d in behaviour_change(result, spec=spec).items():
        value = d.get("change", math.nan)
        if math.isnan(value):
            value = d["true_change"]
        if not math.isnan(value):
            out[f"behaviour_change_{event}"] = float(value)
    for layer, d in network_change(result).items():
        for f in ("tier_assortativity", "mean_degree", "fragmentation"):
            v = d.get(f"{f}_last")
            if v is not None and not math.isnan(v):
                out[f"{f}_{layer}"] = v
    for k, v in appeals(result).items():
        if not math.isnan(v):
            out[f"appeals_{k}"] = v
    for k, v in review(result).items():
        if not math.isnan(v):
            out[f"review_{k}"] = v
    for attack, d in manipulations(result).items():
        out[f"manipulations_{attack}"] = d["actions"]
    from panopticon.metrics.lending import lending  # it reads through this module

    for opp, by_category in lending(result, spec).items():
        for category, d in by_category.items():
            for what in LENDING_SUMMARY:
                if what in d:
                    out[f"lending_{opp}_{category}_{what}"] = d[what]
    return {k: float(v) for k, v in out.items() if math.isfinite(v)}


LENDING_SUMMARY = ("selection_rate", "true_positive_rate", "profit", "mean_score_change")
"""What :func:`summary` takes of :func:`panopticon.metrics.lending.lending`, per lender and
category (and ``all``), whole run."""


SUMMARY_BOUNDS: tuple[tuple[tuple[str, ...], tuple[float | None, float | None]], ...] = (
    (("gini", "share_*", "*_share", "*_rate", "mobility_*", "fragmentation_*",
      "worst_four_fifths"), (0.0, 1.0)),
    (("tier_assortativity_*",), (-1.0, 1.0)),
    (("behaviour_change_*",), (-1.0, None)),
    (("false_observations", "observations", "citizens_*", "attempts", "refusals",
      "wrongful_refusals", "evaded", "four_fifths_*", "max_*_ratio", "mean_degree_*",
      "appeals_*", "review_*", "manipulations_*", "citizen_days_*"), (0.0, None)),
)
"""The range of each :func:`summary` key (shell patterns, first match wins): shares and
rates in [0, 1], assortativity in [-1, 1], behaviour change at least -1, counts and ratios at
least 0. Scores and anything else: unbounded."""


def summary_bounds(name: str) -> tuple[float | None, float | None]:
    """``(lower, upper)`` of a :func:`summary` key (None: unbounded), from
    :data:`SUMMARY_BOUNDS`; sweeps keep their confidence intervals within them."""
    from fnmatch import fnmatchcase

    for patterns, bounds in SUMMARY_BOUNDS:
        if any(fnmatchcase(name, p) for p in patterns):
            return bounds
    return None, None


def to_json(obj: Any) -> str:
    """JSON of a metric's result (NaN and infinity written as null)."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x
    return json.dumps(clean(obj), indent=2)
