"""The command line: the only module that touches argv, environment variables and the console.

Every user error (bad file, unknown run, invalid option) prints a clear message and exits with
code 2; no tracebacks. Ctrl-C during a run marks the run ``interrupted`` and exits with 130.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from panopticon.errors import RunInterrupted, UserError


class _FlagsShownAsFlags:
    """Help shows a boolean flag (--json, --quiet, --help, ...) as the bare flag, not `<bool>`."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_bool_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class _Command(_FlagsShownAsFlags, typer.core.TyperCommand):
    pass


class _Group(_FlagsShownAsFlags, typer.core.TyperGroup):
    pass


app = typer.Typer(
    help="panopticon: a laboratory for social credit systems, run on synthetic societies.\n\n"
         "Shell completion: `panopticon --install-completion` installs it for the current "
         "shell; `panopticon --show-completion` prints it to copy.",
    cls=_Group, no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console()
err = Console(stderr=True)
DEFAULT_STORE = Path("runs")


def _version(value: bool) -> None:
    if value:
        from panopticon.api import code_version

        print(f"panopticon {code_version()}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the installed panopticon version and exit.")] = False,
) -> None:
    # what the library logs (e.g. that a run is compiling kernels) is printed above the
    # progress bar, in yellow, on stderr
    log = logging.getLogger("panopticon")
    if not any(isinstance(h, _ConsoleLog) for h in log.handlers):
        log.addHandler(_ConsoleLog())
        log.propagate = False


class _ConsoleLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        err.print(Text(record.getMessage(), style="yellow"), highlight=False, soft_wrap=True)


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (also inside dicts and lists) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return _finite(value.tolist())
    return value


def _print_json(value: Any) -> None:
    """Print ``value`` as strict JSON (RFC 8259): NaN and infinities become null."""
    print(json.dumps(_finite(value), indent=2, default=str, allow_nan=False))


def _print_table(table: Table) -> None:
    """Print a table without breaking a word: every column is at least as wide as its longest
    word (a name to copy is one word) and the rest of the width goes to the columns that wrap.
    Piped, the table is as wide as that needs; in a narrower terminal, rich folds what it must."""
    options = out.options.update(max_width=100_000)
    ranges = []
    for column in table.columns:
        sizes = [Measurement.get(out, options, cell) for cell in (column.header, *column.cells)]
        high = max(column.min_width or 0, *(m.maximum for m in sizes))
        low = high if column.no_wrap else max(column.min_width or 0, *(m.minimum for m in sizes))
        ranges.append((low, high))
    extra = len(ranges) * (table.padding[1] + table.padding[3])
    if table.box:
        extra += len(ranges) - 1 + (2 if table.show_edge else 0)
    need = sum(low for low, _ in ranges) + extra
    width = out.width if out.is_terminal else max(out.width, need)
    if not ranges or need > width:  # a narrow terminal: break long words rather than cut them
        for column in table.columns:
            column.overflow = "fold"
        out.print(table)
        return
    widths = [low for low, _ in ranges]
    room = width - need
    while room > 0:  # widen, a character at a time, the column furthest from its full width
        short, k = max((ranges[k][1] - w, k) for k, w in enumerate(widths))
        if short <= 0:
            break
        widths[k] += 1
        room -= 1
    for column, w in zip(table.columns, widths, strict=True):
        column.width = w
    (out if width <= out.width else Console(width=width, file=out.file)).print(table)


def _name_column(table: Table, header: str, names, **kwargs) -> None:
    """Add a column of names a user copies: never wrapped, cut or ellipsized."""
    width = max([len(header), *(len(str(n)) for n in names)])
    table.add_column(header, no_wrap=True, overflow="fold", min_width=width, **kwargs)


def _interrupted(exc) -> None:
    """A sweep (or a study's sweep) stopped by Ctrl-C: say what was kept, exit 130."""
    err.print(Text("\ninterrupted", style="yellow") + Text(f": {exc.describe()}"),
              highlight=False, soft_wrap=True)
    raise typer.Exit(130) from None


def _fail(exc: UserError) -> None:
    err.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


class _Bar:
    """A rich progress bar as a run sink."""

    def __init__(self, progress: Progress, task, days: int):
        self.progress, self.task, self.days = progress, task, days

    def day(self, record, state):
        m = record.metrics
        self.progress.update(self.task, completed=record.day + 1,
                             description=f"day {record.day + 1}/{self.days}  "
                                         f"mean score {m['mean_score']:.1f}")

    def checkpoint(self, state):
        pass


def _progress(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, disable=quiet, transient=True)


def _summary_table(summary: dict) -> Table:
    """The run's summary in two labelled sections: totals over the whole run, and the state
    at the end of the last day."""
    days = summary["days"]
    table = Table(title=f"{summary['scenario']} — {summary['citizens']:,} citizens, "
                        f"{days} days, seed {summary['seed']}", show_header=False)
    sections = ((f"whole run (days 0-{days - 1}), totals", summary["whole_run"]),
                (f"final state (end of day {days - 1})",
                 {k: v for k, v in summary["final_state"].items() if k != "day"}))
    names = [title for title, _ in sections] + [k for _, v in sections for k in v]
    table.add_column("metric", style="bold", no_wrap=True, min_width=max(map(len, names)))
    table.add_column("value", justify="right", no_wrap=True)

    def value(k: str, v) -> str:
        if isinstance(v, float):
            return f"{v:.1%}" if k.startswith("share_") else f"{v:,.2f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    for title, values in sections:
        table.add_row(Text(title, style="underline"), "")
        for k, v in values.items():
            if v is not None and not (isinstance(v, float) and v != v):
                table.add_row(k.replace("_", " "), value(k, v))
    t = summary.get("timings", {})
    if t:
        table.caption = "time: " + "  ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items())
    return table


@app.command()
def run(
    scenario: Annotated[Path | None, typer.Argument(
        help="Scenario YAML file (default: the seed_article preset).", show_default=False)] = None,
    preset: Annotated[str | None, typer.Option(
        "--preset", "-p", help="Run a packaged scenario preset by name (see `presets`).")] = None,
    citizens: Annotated[int | None, typer.Option(help="Override the number of citizens.")] = None,
    days: Annotated[int | None, typer.Option(help="Override the number of days.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o",
                                          help="Run store folder.")] = DEFAULT_STORE,
    resume: Annotated[Path | None, typer.Option(
        help="Continue an interrupted run folder from its last checkpoint.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    threads: Annotated[int | None, typer.Option(
        min=1, help="CPU threads (default: 1 below 500,000 citizens, else all). Results do "
                    "not depend on it.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Run even if the run's estimated peak memory exceeds what the "
                        "machine has available.")] = False,
    shards: Annotated[int | None, typer.Option(
        min=1, help="Split the citizens into this many shards, each a Ray actor (a local "
                    "cluster unless --ray-address). Results do not depend on it. See "
                    "docs/scale.md for the scenarios it runs.", show_default=False)] = None,
    ray_address: Annotated[str | None, typer.Option(
        help="With --shards: the Ray cluster to run on (HOST:PORT, or 'auto' for the one "
             "`ray start` made on this machine).", show_default=False)] = None,
) -> None:
    """Run a scenario for its days and store it; print a summary and where it was stored."""
    import panopticon as pc
    from panopticon.resources import check_memory

    try:
        if resume is not None:
            if any(x is not None for x in (scenario, preset, citizens, days, seed)):
                raise UserError("--resume continues a stored run as it was; "
                                "give no scenario, preset or overrides with it")
            from panopticon.store.local import read_manifest, read_scenario

            if not resume.is_dir():
                raise UserError(f"{resume}: no such run folder")
            manifest = read_manifest(resume)
            check_memory(read_scenario(resume, manifest), force=force)
            total = manifest["days"]
        else:
            if scenario is not None and preset is not None:
                raise UserError("give a scenario file or --preset, not both")
            spec = pc.load_scenario(scenario) if scenario is not None else \
                pc.load(preset or "seed_article")
            spec = spec.with_run(citizens=citizens, days=days, seed=seed)
            check_memory(spec, force=force)
            total = spec.run.days
        with _progress(quiet or as_json) as progress:
            task = progress.add_task("setting up", total=total)
            bar = _Bar(progress, task, total)
            if resume is not None:
                result = pc.resume(resume, progress=bar, threads=threads, shards=shards,
                                   ray_address=ray_address)
            else:
                result = pc.run(spec, out=out_dir, progress=bar, threads=threads,
                                shards=shards, ray_address=ray_address)
    except UserError as exc:
        _fail(exc)
    except RunInterrupted as exc:
        if exc.complete:
            err.print(Text("\ninterrupted", style="yellow") + Text(
                f" during the final write, which finished: {exc.path} is complete"),
                highlight=False)
        else:
            err.print(Text("\ninterrupted", style="yellow") + Text(
                f": {exc.path} is marked 'interrupted' with {exc.days_completed} days "
                f"checkpointed; continue it with\n  panopticon run --resume {exc.path}"),
                highlight=False)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        err.print("\n[yellow]interrupted[/] before the run store was created; nothing was written")
        raise typer.Exit(130) from None
    try:
        summary = result.summary()
        if as_json:
            _print_json(summary)
            return
        out.print(_summary_table(summary))
        out.print(Text("fingerprint ") + Text(str(summary["fingerprint"])), highlight=False)
        out.print(Text("stored in ") + Text(str(result.path), style="bold"))
    except KeyboardInterrupt:
        err.print(Text("\ninterrupted", style="yellow") + Text(
            f" after the run was completed: it is stored in {result.path}"), highlight=False)
        raise typer.Exit(130) from None


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Scenario or policy YAML file.")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON: valid, kind and name, or every problem "
                       "with its line, column and key (exit code 2).")] = False,
) -> None:
    """Check a scenario (or policy) file with exactly the code `run` uses; list every problem."""
    from panopticon.scenario import load_policy, scenario_from_data
    from panopticon.specfile import read_yaml

    try:
        data, positions = read_yaml(file)
        policy_keys = {"tiers", "rules", "family", "lists", "sanctions", "score", "association"}
        is_policy = isinstance(data, dict) and "schema_version" not in data \
            and bool(policy_keys & set(data))
        # a scenario: what load_scenario (and so `run`) does with the file, read only once;
        # this includes the limits `run` would otherwise only meet when it builds the society
        spec = load_policy(file) if is_policy else scenario_from_data(data, positions, str(file))
    except UserError as exc:
        if not as_json:
            _fail(exc)
        _print_json({"file": str(file), "valid": False, "summary": exc.summary,
                     "errors": exc.to_dicts()})
        raise typer.Exit(2) from None
    kind = "policy" if is_policy else "scenario"
    if as_json:
        _print_json({"file": str(file), "valid": True, "kind": kind, "name": spec.name})
        return
    out.print(Text("ok", style="green") + Text(f": {file} is a valid {kind} ({spec.name})"),
              highlight=False)


@app.command()
def runs(
    store: Annotated[Path, typer.Option("--out", "-o", help="Run store folder.")] = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List stored runs, newest first, with their status (complete, interrupted, ...)."""
    from panopticon.store.local import list_runs

    try:
        manifests = list_runs(store)
    except UserError as exc:
        _fail(exc)
    if as_json:
        _print_json(manifests)
        return
    if not manifests:
        out.print(f"no runs in {store}/ yet; try `panopticon run`")
        return
    table = Table(title=f"runs in {store}/")
    _name_column(table, "run", [m.get("run_id", "?") for m in manifests])
    table.add_column("status", no_wrap=True, min_width=11)
    for col in ("scenario", "citizens", "days", "seed", "fingerprint"):
        table.add_column(col, overflow="fold")
    colour = {"complete": "green", "interrupted": "yellow", "running": "cyan"}
    for m in manifests:
        status = m.get("status", "?")
        done = f"{m.get('days_completed', '?')}/{m.get('days', '?')}"
        table.add_row(Text(m.get("run_id", "?")), Text(status, style=colour.get(status, "red")),
                      str(m.get("scenario", "")), f"{m.get('citizens', 0):,}", done,
                      str(m.get("seed", "")), (m.get("result") or {}).get("fingerprint", "")[:12])
    _print_table(table)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SQL query over views runs, daily, events, "
                                            "ledger, observations, lists, opportunities, "
                                            "refusals, appeals, manipulations, behaviour, "
                                            "network, network_groups, ledger_chain, citizens "
                                            "(each has run_id, the run folder's name).")],
    store: Annotated[Path, typer.Option("--out", "-o", help="Run store folder.")] = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option(
        "--csv", help="Print the result as CSV: a header line, then every row.")] = False,
    unsafe: Annotated[bool, typer.Option(
        "--unsafe", help="Lift the restrictions: any number and kind of statements, and "
                         "DuckDB's full file, network and extension access (COPY, ATTACH, "
                         "read_csv of other files, INSTALL). Only for SQL you trust.")] = False,
) -> None:
    """Query every stored run at once with DuckDB SQL.

    By default the SQL must be exactly one read-only query (SELECT, WITH, FROM, DESCRIBE,
    SHOW, SUMMARIZE), and it can read only the store's runs, through the views: no other
    files, no COPY, ATTACH, INSTALL or SET. --unsafe lifts this.
    """
    import duckdb

    from panopticon.store.query import connect, read_only

    try:
        if as_json and as_csv:
            raise UserError("give --json or --csv, not both")
        con = connect(store, unsafe=unsafe)
        result = con.sql(sql) if unsafe else read_only(con, sql)
        if result is None:
            return
        table = result.to_arrow_table()
    except UserError as exc:
        _fail(exc)
    except duckdb.Error as exc:
        hint = " (query reads only the store's runs, through its views; --unsafe lifts this)" \
            if isinstance(exc, duckdb.PermissionException) else ""
        if isinstance(exc, (duckdb.IOException, duckdb.InvalidInputException)):
            from panopticon.store.query import altered_files

            altered = altered_files(store)  # a file of the right size, altered: name it
            if altered:
                hint = f"; {altered[0]}: the run is damaged or tampered with " \
                       f"(`panopticon audit` lists what is wrong)"
        _fail(UserError(f"query failed: {str(exc).splitlines()[0]}{hint}"))
    if as_json:
        _print_json(table.to_pylist())
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(table.column_names)
        writer.writerows(row.values() for row in table.to_pylist())
        return
    view = Table()
    for name in table.column_names:
        view.add_column(name, min_width=len(name), overflow="fold")
    for row in table.to_pylist()[:200]:
        view.add_row(*(f"{v:,.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    _print_table(view)
    if table.num_rows > 200:
        out.print(f"... {table.num_rows - 200} more rows (use --json, --csv or LIMIT)")


@app.command()
def presets(
    words: Annotated[list[str] | None, typer.Argument(
        help="`show NAME` (or just NAME) prints that preset's YAML.", show_default=False,
        metavar="[show] [NAME]")] = None,
    policy: Annotated[bool, typer.Option(
        "--policy", help="With a NAME: print the policy preset instead of the scenario.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the list as JSON (name, family, fiction, description).")] = False,
) -> None:
    """List the packaged presets (name, family, what it models), or print one to copy and edit."""
    from panopticon.scenario import load_preset, policy_preset_path, preset_names, preset_path

    words = list(words or [])
    if words[:1] == ["show"]:
        words = words[1:]
        if not words:
            _fail(UserError("`presets show` needs a preset NAME; see `panopticon presets`"))
    if len(words) > 1:
        _fail(UserError(f"one preset at a time; got {' '.join(words)}"))
    if words and as_json:
        _fail(UserError("--json lists the presets; `presets show NAME` prints one as YAML"))
    if words:
        try:
            spec = load_preset(words[0])
        except UserError as exc:
            _fail(exc)
        path = policy_preset_path(spec.policy.name) if policy else preset_path(words[0])
        if not path.exists():
            _fail(UserError(f"{words[0]}: its policy is written inline in the scenario"))
        print(path.read_text(), end="")
        return
    rows = []
    for preset in preset_names():
        spec = load_preset(preset)
        rows.append({"name": preset, "family": spec.policy.family,
                     "fiction": bool(spec.policy.fiction),
                     "description": " ".join(spec.description.split())})
    if as_json:
        _print_json(rows)
        return
    table = Table(title="presets (`panopticon run --preset NAME`, `panopticon presets show NAME`)")
    _name_column(table, "name", [r["name"] for r in rows], style="bold")
    table.add_column("family", no_wrap=True)
    table.add_column("what it models")
    for r in rows:
        label = f"{r['family']} (fiction)" if r["fiction"] else r["family"]
        table.add_row(r["name"], label, r["description"])
    _print_table(table)


_CATALOGUE_SCENARIO = typer.Option(
    "--scenario", "-s", metavar="FILE",
    help="Also list a scenario's own entries (its `catalogue` section), marked `scenario`: "
         "a YAML file or a preset name.")


def _library(scenario: str | None):
    """The packaged catalogue, or a scenario's (packaged entries, then its own); exits 2 on
    a scenario that does not load."""
    import panopticon as pc
    from panopticon.catalogue import PACKAGED

    if scenario is None:
        return PACKAGED
    try:
        return pc.load(scenario).library
    except UserError as exc:
        _fail(exc)


@app.command()
def events(
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the list as JSON (event, domain, source, rate_per_year, "
                       "description; with --scenario also valence and origin).")] = False,
    scenario: Annotated[str | None, _CATALOGUE_SCENARIO] = None,
) -> None:
    """List the behaviour catalogue: event types, their domain, source and default rate."""
    library = _library(scenario)
    mine, kinds = library.own["events"], {-1: "misconduct", 0: "legitimate", 1: "rewarded"}

    def origin(name: str, kind: str = "events") -> str:
        return "scenario" if name in library.own[kind] else "packaged"

    if as_json:
        _print_json([{"event": e.name, "domain": e.domain, "source": e.source,
                      "rate_per_year": float(f"{e.rate_per_day * 365:.12g}"),
                      "description": e.description,
                      **({"valence": e.valence, "origin": origin(e.name)} if scenario else {})}
                     for e in library.events.values()])
        return
    table = Table(title="event types" + (f" ({len(mine)} of the scenario's own)"
                                         if scenario else ""))
    _name_column(table, "event", list(library.events))
    columns = ("domain", "source", "default rate / yr", "what it is")
    for col in (*columns, *(("valence", "from") if scenario else ())):
        table.add_column(col)
    for e in library.events.values():
        table.add_row(e.name, e.domain, e.source, f"{e.rate_per_day * 365:.3g}", e.description,
                      *((kinds[e.valence], origin(e.name)) if scenario else ()))
    _print_table(table)
    out.print("sources: " + "; ".join(
        f"[bold]{k}[/] {v}" + (" (scenario)" if k in library.own["sources"] else "")
        for k, v in library.sources.items()))


@app.command(short_help="Check that a stored run is whole and untampered (exit 0 if intact, "
                        "1 if not).")
def audit(
    run: Annotated[str, typer.Argument(help="Run folder or run id (see `panopticon runs`).")],
    store: Annotated[Path, typer.Option("--out", "-o", help="Run store folder.")] = DEFAULT_STORE,
    replay: Annotated[bool, typer.Option(
        "--replay", help="Also simulate the run again and compare every table, every ledger "
                         "row, the final scores and the fingerprint.")] = False,
    expect: Annotated[str | None, typer.Option(
        "--expect", help="The fingerprint you kept when the run was made (`panopticon runs "
                         "--json`): the run's must be this one.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check that a stored run is whole and untampered: every file against its recorded size
    and SHA-256, the manifest against the scenario, every day's rows of every table against
    their digests, the ledger's hash chain day by day, the fingerprint (and with --replay a
    fresh simulation). Exit code 0 if intact, 1 with what was found, 2 for bad input. See
    docs/audit.md for what this guarantees."""
    from panopticon.audit import audit as run_audit
    from panopticon.store.local import find_run

    try:
        report = run_audit(find_run(run, store), full=replay, expect=expect)
    except UserError as exc:
        _fail(exc)
    if as_json:
        _print_json(report)
        raise typer.Exit(0 if report["intact"] else 1)
    out.print(f"{report['run']}: {report['days_checked']} days checked")
    out.print("verdict: " + ("[green]intact[/]" if report["intact"] else "[red]NOT intact[/]"))
    out.print("ledger hash chain: " + {True: "[green]intact[/]", False: "[red]broken[/]",
                                       None: "[red]not checked[/] (see below)"}[
                                          report["chain_intact"]])
    if replay:
        out.print("replay: " + ("[green]every table and row as simulated[/]"
                                if report["replay_matches"] else "[red]differs[/]"))
    shown = [*report["findings"], *report.get("replay_findings", [])]
    for f in shown[:50]:
        out.print(Text("  ") + Text(f["kind"], style="red") + Text(f" {f['detail']}"),
                  highlight=False)
    if len(shown) > 50:
        out.print(f"  ... {len(shown) - 50} more (see --json)")
    if report["unexplained"] is not None:
        officials = sorted({m["official"] for m in report["manual"]})
        out.print(f"manual adjustments: {len(report['manual'])}"
                  + (f" by officials {', '.join(officials[:10])}" if officials else ""))
        out.print(f"scores the ledger does not explain: {len(report['unexplained'])}")
        out.print(f"rule entries off their rule's points: {len(report['deviations'])}")
    for attack, found in report["insider_actions_found"].items():
        out.print(f"  insider {attack}: {found['caught']} of {found['actions']} actions "
                  f"found ({found['share']:.0%})")
    raise typer.Exit(0 if report["intact"] else 1)


@app.command()
def explain(
    run: Annotated[str, typer.Argument(help="Run folder or run id (see `panopticon runs`).")],
    citizen: Annotated[str, typer.Option(
        "--citizen", "-c", help="The citizen's id, from 0 to the run's citizens - 1.",
        show_default=False)],
    store: Annotated[Path, typer.Option("--out", "-o", help="Run store folder.")] = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the story as JSON.")] = False,
) -> None:
    """Tell one citizen's story from a stored run.

    Every score change with its rule and the observation behind it (true or false), tier and
    list changes, every refused opportunity.
    """
    from panopticon.explain import explain as tell
    from panopticon.explain import locate

    try:
        story = tell(locate(run, store), citizen)
    except UserError as exc:
        _fail(exc)
    if as_json:
        _print_json(story.to_dict())
        return
    out.print(Text(story.header(), style="bold"), highlight=False)
    table = Table(title=f"run {story.run_id}", title_justify="left")
    table.add_column("day", justify="right", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("story")
    colour = {"start": "bold", "score": "", "tier": "cyan", "list": "yellow", "refusal": "magenta"}
    for line in story.lines:
        style = "red" if line.alarm else colour.get(line.kind, "")
        table.add_row(str(line.day), Text(line.kind, style=style), Text(line.text, style=style))
    out.print(table)
    out.print(Text("summary: ", style="bold") + Text(story.summary_text()), highlight=False)
    for note in story.notes:
        out.print(Text("note: ", style="yellow") + Text(note), highlight=False)


def _the_sweep(refs: list[str], store: Path, mixed: str, instead: str) -> list[str]:
    """The one sweep among ``refs`` (as a list), or none: runs only. Mixing sweeps with runs,
    or giving two sweeps, is a user error."""
    from panopticon.sweeps import is_sweep_ref

    sweeps = [r for r in refs if is_sweep_ref(r, store)]
    if sweeps and len(sweeps) < len(refs):
        others = [r for r in refs if r not in sweeps]
        raise UserError(f"{mixed}: {', '.join(sweeps)} "
                        f"{'is a sweep' if len(sweeps) == 1 else 'are sweeps'}, "
                        f"{', '.join(others)} {'is a run' if len(others) == 1 else 'are runs'}"
                        f"; {instead}")
    if len(sweeps) > 1:
        raise UserError(f"one sweep at a time: got {', '.join(sweeps)}")
    return sweeps


@app.command()
def report(
    runs: Annotated[list[str], typer.Argument(
        help="Run folders or run ids (see `panopticon runs`); several are shown side by side. "
             "Or one sweep: its report file, its id (the file name without .json, in the "
             "store) or latest-sweep.", metavar="RUN... | SWEEP", show_default=False)],
    html: Annotated[Path, typer.Option(
        "--html", help="The HTML file to write.")] = Path("report.html"),
    store: Annotated[Path, typer.Option("--out", "-o", help="Run store folder.")] = DEFAULT_STORE,
    charts: Annotated[Path | None, typer.Option(
        "--charts", help="Also write every chart as PNG and SVG into this folder.",
        show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", hidden=True, help="Deprecated: --html.")] = None,
) -> None:
    """Write one self-contained HTML report of one or several runs, or of a sweep.

    For runs it shows the scenario, headline numbers, charts, refusals, disparate impact,
    behaviour and network change, the audit and citizens' stories. For a sweep: what was
    swept, its seeds and runs, and every metric against the swept setting (mean and 95%
    interval over the replicates). It works offline: no request leaves the page.
    """
    from panopticon.report import write_report

    try:
        if output is not None:
            err.print("warning: --output is deprecated; write the page with --html PATH",
                      style="yellow", highlight=False)
            html = output
        if store.suffix.lower() in (".html", ".htm"):
            raise UserError(f"-o/--out is the run store, not the page: to write {store}, "
                            f"use --html {store}")
        sweeps = _the_sweep(runs, store, "cannot mix sweeps and runs in one report",
                            "report the sweep alone (its page shows its runs), or the runs")
        if sweeps:
            from panopticon.report.sweep import write_sweep_report

            path = write_sweep_report(sweeps[0], html, store, charts_dir=charts)
        else:
            path = write_report(runs, html, store, charts_dir=charts)
    except UserError as exc:
        _fail(exc)
    out.print(Text("report: ") + Text(str(path), style="bold"), highlight=False)
    if charts is not None:
        out.print(Text("charts: ") + Text(str(charts), style="bold"), highlight=False)


@app.command()
def compare(
    refs: Annotated[list[str], typer.Argument(
        help="Two or more run folders or run ids (see `panopticon runs`); the first is the "
             "baseline. Or one sweep: its report file, its id (the file name without .json, "
             "in the store) or latest-sweep.", metavar="RUN_A RUN_B [RUN ...] | SWEEP",
        show_default=False)],
    store: Annotated[Path, typer.Option("--out", "-o", help="Run store folder.")] = DEFAULT_STORE,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="A metric to show (repeat for several; default: every one for runs, "
                         "the headline six for a sweep).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare stored runs side by side: headline metrics and differences from the first.

    With a sweep: one row per grid point, each metric as mean [95% interval] over its
    replicates. The metrics are described in docs/metrics.md.
    """
    import panopticon as pc
    from panopticon.metrics.describe import check_names, describe
    from panopticon.metrics.run import summary
    from panopticon.store.local import find_run
    from panopticon.sweeps import (
        default_metrics,
        load_sweep,
        point_rows,
        sweep_metrics,
    )

    try:
        sweeps = _the_sweep(refs, store, "cannot compare sweeps and runs together",
                            "give one sweep, or two or more runs")
        if sweeps:
            sweep = load_sweep(sweeps[0], store)
            available = sweep_metrics(sweep)
            chosen = check_names(metric, available, " in this sweep") if metric else \
                default_metrics(available)
    except UserError as exc:
        _fail(exc)
    if sweeps:
        keys = list(sweep["settings"])
        rows = point_rows(sweep, chosen)
        complete = sum(r["runs_complete"] for r in rows)
        if as_json:
            _print_json({"sweep": sweep["id"], "file": sweep["file"],
                         "scenario": sweep["scenario"], "replicates": sweep["replicates"],
                         "settings": sweep["settings"], "metrics": chosen,
                         "descriptions": {m: dict(zip(("description", "scope"), describe(m),
                                                      strict=True)) for m in chosen},
                         "runs": len(sweep["runs"]), "runs_complete": complete,
                         "points": rows})
            return

        def interval(name: str, m: dict | None) -> str:
            if m is None:
                return "-"
            pct = name.startswith(("share_", "mobility_", "fragmentation_")) or \
                name.endswith(("_share", "_rate"))

            def f(v: float) -> str:
                return f"{v:.1%}" if pct else f"{v:,.4g}"

            if not (math.isfinite(m["ci_low"]) and math.isfinite(m["ci_high"])):
                return f"{f(m['mean'])} (n={m['n']}, no interval)"
            return f"{f(m['mean'])} [{f(m['ci_low'])}, {f(m['ci_high'])}]"

        out.print(Text(f"sweep {sweep['id']}", style="bold") + Text(
            f" ({sweep['scenario']}, {len(rows)} grid points × {sweep['replicates']} "
            f"replicates, {complete} of {len(sweep['runs'])} runs complete)"),
                  highlight=False, soft_wrap=True)
        table = Table(title="mean [95% interval] over the replicates")

        def label(v: Any) -> str:  # as written in --set: true, not True
            return {True: "true", False: "false", None: "null"}.get(v, str(v)) \
                if isinstance(v, bool) or v is None else str(v)

        for k in keys:
            _name_column(table, k, [label(r["point"][k]) for r in rows], style="bold")
        for m in chosen:
            table.add_column(m, justify="right", no_wrap=True)
        if complete < len(sweep["runs"]):
            table.add_column("runs", justify="right")
        for r in rows:
            cells = [label(r["point"][k]) for k in keys]
            cells += [interval(m, r["metrics"][m]) for m in chosen]
            if complete < len(sweep["runs"]):
                cells.append(f"{r['runs_complete']}/{r['runs']}")
            table.add_row(*cells)
        _print_table(table)
        for m in chosen:
            text, scope = describe(m)
            out.print(Text(f"  {m}: ", style="dim") + Text(text + (f" ({scope})" if scope
                                                                    else "")),
                      highlight=False, soft_wrap=True)
        return
    try:
        if len(refs) < 2:
            raise UserError("compare needs at least two runs, e.g. "
                            "`panopticon compare RUN_A RUN_B`, or one sweep")
        results = [pc.open_run(find_run(ref, store)) for ref in refs]
        for ref, r in zip(refs, results, strict=True):
            if r.manifest.get("status") != "complete":
                raise UserError(f"{ref}: the run is {r.manifest.get('status')!r}, not complete; "
                                f"finish it with `panopticon run --resume {r.path}`")
        summaries = [summary(r) for r in results]
        names = list(dict.fromkeys(k for s in summaries for k in s))
        if metric:
            names = check_names(metric, names, " in these runs")
    except UserError as exc:
        _fail(exc)
    base = summaries[0]
    runs = [{"run": r.manifest.get("run_id") or str(r.path), "path": str(r.path),
             "scenario": r.manifest.get("scenario"), "seed": r.manifest.get("seed"),
             "citizens": r.manifest.get("citizens"), "days": r.manifest.get("days_completed"),
             "summary": {k: s[k] for k in names if k in s} if metric else s,
             "difference": {k: s[k] - base[k] for k in names if k in s and k in base}}
            for r, s in zip(results, summaries, strict=True)]
    if as_json:
        _print_json({"metrics": names, "baseline": runs[0]["run"], "runs": runs})
        return
    letters = [chr(ord("A") + k) if k < 26 else f"R{k + 1}" for k in range(len(runs))]
    for letter, r in zip(letters, runs, strict=True):
        out.print(Text(f"{letter}: ", style="bold") + Text(
            f"{r['run']} ({r['scenario']}, seed {r['seed']}, {r['citizens']:,} citizens, "
            f"{r['days']} days)"), highlight=False)
    table = Table(title="differences against A")
    _name_column(table, "metric", [name.replace("_", " ") for name in names], style="bold")
    for k, letter in enumerate(letters):
        table.add_column(letter, justify="right")
        if k:
            table.add_column(f"{letter} − A", justify="right")

    def fmt(name: str, v: float | None, diff: bool = False) -> Text:
        if v is None:
            return Text("-", style="dim")
        text = (f"{v:+.1%}" if diff else f"{v:.1%}") if name.startswith("share_") else \
            (f"{v:+,.4g}" if diff else f"{v:,.4g}")
        style = "" if not diff else ("dim" if v == 0 else "cyan")
        return Text(text, style=style)

    for name in names:
        cells = []
        for k, r in enumerate(runs):
            cells.append(fmt(name, r["summary"].get(name)))
            if k:
                cells.append(fmt(name, r["difference"].get(name), diff=True))
        table.add_row(name.replace("_", " "), *cells)
    _print_table(table)


@app.command()
def sweep(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML file or preset name.")],
    settings: Annotated[list[str], typer.Option(
        "--set", help="KEY=V1,V2,...: a dotted scenario key and the values to try "
                      "(repeat for a grid), e.g. sensors.cameras.misattribution=0,0.01.")],
    replicates: Annotated[int, typer.Option(
        min=1, help="Runs per grid point (seeds run.seed, run.seed + 1, ...).")] = 3,
    workers: Annotated[int, typer.Option(
        min=1, help="Parallel processes (at most one per run and one per CPU).")] = 1,
    citizens: Annotated[int | None, typer.Option(help="Override the number of citizens.")] = None,
    days: Annotated[int | None, typer.Option(help="Override the number of days.")] = None,
    store: Annotated[Path, typer.Option("--out", "-o", help="Run store folder.")] = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="A metric to print (repeat for several; default: mean_score, gini, "
                         "share_wrongly_sanctioned, wrongful_refusals, refusals, "
                         "false_observations, those the runs have). The report file and "
                         "--json keep every metric.", show_default=False)] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Run even if the runs' estimated memory exceeds what is available.")
    ] = False,
    engine: Annotated[str, typer.Option(
        "--engine", help="processes: a pool on this machine; ray: each run a Ray task (on "
                         "a local cluster of --workers CPUs, or the cluster at "
                         "--ray-address).")] = "processes",
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="A Ray cluster to run on (e.g. auto, or HOST:6379); its nodes "
                              "must see the store folder under the same path.",
        show_default=False)] = None,
) -> None:
    """Run a scenario over a grid of settings x replicates, in parallel processes or on Ray.

    Every run is stored; each grid point's metrics are printed with 95% confidence intervals.
    Ctrl-C stops it (exit 130), saying which runs are stored and which are not complete.
    `panopticon compare SWEEP` and `panopticon report SWEEP` show a stored sweep again.
    """
    import panopticon as pc
    from panopticon.metrics.describe import check_names
    from panopticon.sweeps import (
        Setting,
        SweepInterrupted,
        default_metrics,
        known_metrics,
        run_sweep,
        save,
    )

    try:
        base = pc.load(scenario).with_run(citizens=citizens, days=days)
        grid_settings = [Setting.parse(s) for s in settings]
        chosen = check_names(metric, known_metrics(base, grid_settings)) if metric else None
        with _progress(as_json) as progress:
            task = progress.add_task("sweeping", total=None)
            report = run_sweep(base, grid_settings, replicates, store, workers,
                               lambda done, total: progress.update(task, completed=done,
                                                                   total=total), force=force,
                               engine=engine, ray_address=ray_address)
        path = save(report, store)
    except UserError as exc:
        _fail(exc)
    except SweepInterrupted as exc:
        _interrupted(exc)
    except KeyboardInterrupt:
        err.print(f"\n[yellow]interrupted[/]: no sweep report was written (runs already "
                  f"stored stay in {store}/)", highlight=False)
        raise typer.Exit(130) from None
    if as_json:
        _print_json(report)
        return
    keys = [s.key for s in grid_settings]
    for point in report["points"]:
        names = chosen or default_metrics(point["metrics"])
        table = Table(title=", ".join(f"{k}={point['point'][k]}" for k in keys))
        _name_column(table, "metric", names)
        for col in ("mean", "95% CI", "n"):
            table.add_column(col)
        for m in names:
            v = point["metrics"].get(m)
            if v is None:
                table.add_row(m, "-", "not measured in these runs", "0")
                continue
            table.add_row(m, f"{v['mean']:.4g}", f"{v['ci_low']:.4g} to {v['ci_high']:.4g}",
                          str(v["n"]))
        _print_table(table)
    out.print(f"{len(report['runs'])} runs stored in {store}/; report: {path}")
    out.print(Text(f"see it again: panopticon compare {path.stem} -o {store}\n"
                   f"              panopticon report {path.stem} -o {store} --html sweep.html"),
              highlight=False, soft_wrap=True)


def _study_help() -> str:
    from panopticon.studies import STUDIES

    exist = "\n\n".join(f"  {name}: {text}" for name, text in STUDIES.items())
    return (
        "Run one of panopticon's studies: the experiment that answers one question, at a "
        "scale where the answer is stable.\n\n"
        "It runs the study's grid of settings x replicates in --workers processes (every run "
        "stored under --store/NAME/, with a sweep report), then writes OUT/NAME.md (the page: "
        "question, design, the answer in sentences generated from the runs' numbers with 95% "
        "intervals, charts, sources, how to rerun), OUT/NAME.html (an offline report with a "
        "chart per metric), OUT/NAME.json (the numbers the page was written from) and "
        "OUT/NAME/*.svg (the page's charts). NAME 'all' runs every study. `make studies` "
        "runs them all at full scale.\n\n"
        f"The studies:\n\n{exist}\n\n"
        "Scales: tiny (seconds; for the tests), small (a few minutes), full (the published "
        "pages: mistakes and oversight run 1,000,000 citizens; see each page for how long it "
        "took).")


@app.command(help=_study_help(), short_help="Run a study (one of the questions panopticon "
             "answers by experiment) and write its page and report.")
def study(
    name: Annotated[str, typer.Argument(help="The study (see below), or 'all'.")],
    scale: Annotated[str, typer.Option(
        "--scale", help="tiny, small or full (the published pages).")] = "full",
    out_dir: Annotated[Path, typer.Option(
        "--out", "-o", help="Folder for the page, its report, numbers and charts.")
    ] = Path("docs/studies"),
    store: Annotated[Path, typer.Option(
        "--store", help="Run store: the runs go to STORE/NAME/.")] = Path("runs/studies"),
    workers: Annotated[int | None, typer.Option(
        min=1, help="Parallel processes (default: one per CPU).", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    from panopticon.studies import STUDIES, get, run_study
    from panopticon.sweeps import SweepInterrupted

    try:
        names = list(STUDIES) if name == "all" else [name]
        studies = [get(n) for n in names]
        for s in studies:
            s.scale(scale)
        for s in studies:
            run_study(s, scale, out_dir, store, workers,
                      None if quiet else (lambda msg: err.print(msg, highlight=False)))
            out.print(f"{s.name}: {out_dir / (s.name + '.md')}, "
                      f"{out_dir / (s.name + '.html')}")
    except UserError as exc:
        _fail(exc)
    except SweepInterrupted as exc:
        _interrupted(exc)
    except KeyboardInterrupt:
        err.print("\n[yellow]interrupted[/]: no page was written", highlight=False)
        raise typer.Exit(130) from None


@app.command()
def dashboard(
    store: Annotated[Path, typer.Option("--out", "-o", help="Run store folder.")] = DEFAULT_STORE,
    port: Annotated[int, typer.Option("--port", help="The port to serve on.")] = 8501,
    host: Annotated[str, typer.Option(
        "--host", help="The address to serve on. Anything but 127.0.0.1 or localhost lets "
                       "other machines in (a warning says so).")] = "127.0.0.1",
) -> None:
    """Start the live dashboard (a Streamlit app) on this machine and print its address.

    Pages: Explore (pick a preset or a scenario file, move the knobs that matter, run it and
    watch scores, tiers, false observations and refusals by group as days complete; Stop
    leaves a resumable run; every run is stored and its YAML can be downloaded), Runs (open a
    stored run: the report's charts, harms by any attribute with 95% intervals, the audit
    verdict, a citizen's story by id or by clicking a point) and Compare and sweeps (runs side
    by side with the settings that differ, or a stored sweep's metric against the swept
    setting with its confidence band). It reads the store and never offers SQL. Ctrl-C stops
    it; a run still going stops at the end of its day, interrupted and resumable.
    """
    from panopticon.dashboard.server import LOCAL, check, serve

    try:
        address = check(store, host, port)
    except UserError as exc:
        _fail(exc)
    if host not in LOCAL:
        err.print(Text("warning: ", style="bold yellow") + Text(
            f"serving on {host}, not only on this machine: anyone who can reach it can read "
            f"every run in {store}/ and start runs"), highlight=False, soft_wrap=True)
    out.print(Text("dashboard: ") + Text(address, style="bold") + Text(
        f"  (store {store}/; Ctrl-C stops it)"), highlight=False, soft_wrap=True)
    serve(store, host, port)


@app.command(name="compile")
def compile_kernels() -> None:
    """Compile the kernels for this machine now, not in the first run (about a minute).

    `make run` and `make test` do it after installing.
    """
    from panopticon.tuning import warm_up

    with err.status("compiling kernels: each preset runs briefly in memory"):
        done = warm_up()
    out.print(f"{done['kernels']} kernels, {done['compiled']} compiled now, in "
              f"{done['seconds']:.0f} s")
    if done["uncompiled"]:
        out.print(Text(f"{len(done['uncompiled'])} that these short runs did not call are "
                       f"compiled by the first run that does (seconds each): "
                       f"{', '.join(done['uncompiled'])}", style="dim"))


@app.command()
def opportunities(
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the list as JSON (opportunity, blocked_by, needs, who, "
                       "tries_per_year, description; with --scenario also origin).")] = False,
    scenario: Annotated[str | None, _CATALOGUE_SCENARIO] = None,
) -> None:
    """List the opportunity catalogue: what citizens try, what blocks it, default rate."""
    library = _library(scenario)
    mine = library.own["opportunities"]

    def origin(name: str) -> tuple[str, ...]:
        return ("scenario" if name in mine else "packaged",) if scenario else ()

    if as_json:
        _print_json([{"opportunity": o.name, "blocked_by": list(o.blocked_by),
                      "needs": list(o.needs), "who": o.who or "adults",
                      "tries_per_year": float(f"{o.rate_per_day * 365:.12g}"),
                      "description": o.description,
                      **({"origin": origin(o.name)[0]} if scenario else {})}
                     for o in library.opportunities.values()])
        return
    table = Table(title="opportunities (scenario key `opportunities`)")
    _name_column(table, "opportunity", list(library.opportunities))
    for col in ("blocked by (sanctions)", "needs (perks)", "who",
                "default tries / yr", "what it is", *(("from",) if scenario else ())):
        table.add_column(col)
    for o in library.opportunities.values():
        table.add_row(o.name, ", ".join(o.blocked_by) or "-", ", ".join(o.needs) or "-",
                      o.who or "adults", f"{o.rate_per_day * 365:.3g}", o.description,
                      *origin(o.name))
    _print_table(table)
    if scenario and (library.own["sanctions"] or library.own["perks"]):
        out.print("the scenario's own sanctions: " + (", ".join(sorted(
            library.own["sanctions"])) or "none") + "; perks: " + (", ".join(sorted(
                library.own["perks"])) or "none"))


# keep this after the last command: every command shows its boolean options as bare flags
for _info in app.registered_commands:
    if _info.cls in (None, typer.core.TyperCommand):
        _info.cls = _Command


def main() -> None:
    """Entry point of the ``panopticon`` command."""
    try:
        app()
    except UserError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
