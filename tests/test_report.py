"""`panopticon report`: one self-contained offline HTML page per set of runs, opening with
findings that state the metrics' numbers."""

from __future__ import annotations

import inspect
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import build_scenario
from typer.testing import CliRunner

import panopticon as pc
from panopticon.cli import app
from panopticon.metrics import run as metrics
from panopticon.metrics.run import TOO_FEW, compare_rates
from panopticon.report import SECTIONS, build_report, collect, facts_of, findings, run_labels
from panopticon.report import build as report_build
from panopticon.report.build import (
    TIER_SCHEME,
    WRONGLY_REFUSED,
    _impact_table,
    charts,
    javascript,
    tier_colours,
    who,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store with a full preset run (opportunities, behaviour, network; no appeals process;
    big enough for one supported disparity) and a tiny one without opportunities."""
    root = tmp_path_factory.mktemp("report-store")
    pc.run("seed_article", citizens=4000, days=90, seed=5, out=root)
    pc.run(build_scenario(), out=root)
    return root


def run_dir(store: Path, scenario: str) -> Path:
    return next(p for p in store.iterdir() if p.name.startswith(scenario + "-"))


@pytest.fixture(scope="module")
def page(store, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = runner.invoke(app, ["report", str(run_dir(store, "seed_article")), "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tiny_page(store, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report") / "tiny.html"
    result = runner.invoke(app, ["report", run_dir(store, "tiny").name, "--out", str(store),
                                 "--html", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


class _Refs(HTMLParser):
    """Every tag and every attribute that could make the browser fetch something."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action", "xlink:href") \
                    and value is not None:
                self.refs.append((tag, name, value))


class _Tables(HTMLParser):
    """Each <table>: its header cells and its body rows (cells per row)."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"th": 0, "rows": []})
        elif self.tables and tag == "th":
            self.tables[-1]["th"] += 1
        elif self.tables and tag == "tr" and "tbody" in self._in:
            self.tables[-1]["rows"].append(0)
        elif self.tables and tag == "td" and self.tables[-1]["rows"]:
            self.tables[-1]["rows"][-1] += 1
        self._in.append(tag)

    def handle_endtag(self, tag):
        while self._in and self._in.pop() != tag:
            pass


def refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


def tables(html: str) -> list[dict]:
    parser = _Tables()
    parser.feed(html.replace(javascript(), ""))
    return parser.tables


def sections(html: str) -> dict[str, str]:
    """Each section's HTML, by id."""
    return dict(re.findall(r'<section id="([a-z]+)">(.*?)</section>', html, flags=re.S))


def text(html: str) -> str:
    from html import unescape

    return unescape(re.sub(r"<[^>]+>", " ", html))


def shown_findings(html: str) -> list[str]:
    from html import unescape

    return [unescape(x) for x in re.findall(r"<li data-finding=\"[a-z_]+\">(.*?)</li>",
                                             sections(html)["findings"])]


RATIO = re.compile(r"(\d+\.\d+)× \(95% CI (\d+\.\d+)–(\d+\.\d+)\)")


def close(shown: str, value: float) -> bool:
    """``shown`` is ``value`` rounded to as many decimals as it has."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown) - value) <= 0.5 * 10 ** -decimals + 1e-12


# --------------------------------------------------------------------------- the page


def test_the_page_is_one_html_document_with_the_javascript_inlined_once(page):
    assert page.startswith("<!DOCTYPE html>")
    assert page.count(javascript()) == 1
    outside_js = page.replace(javascript(), "")
    assert outside_js.count("<html") == 1 and outside_js.count("</html>") == 1
    assert page.count("window.vegaEmbed=") == 1
    # the embed script calls vegaEmbed once per chart, in one function over the specs
    assert page.count("vegaEmbed(el, spec") == 1


def test_every_section_has_its_heading_and_content(page):
    found = sections(page)
    assert [sid for sid, _ in SECTIONS] == list(found)
    assert list(found)[0] == "findings"  # findings first
    for sid, heading in SECTIONS:
        body = found[sid]
        assert f"<h2>{heading.replace(chr(39), '&#x27;')}</h2>" in body
        assert len(re.sub(r"<[^>]+>", "", body)) > len(heading) + 20 \
            or '<div class="chart"' in body, sid


def test_every_chart_has_a_div_and_a_spec(page):
    divs = re.findall(r'<div class="chart" id="(chart-[a-z_]+)"', page)
    assert set(divs) >= {"chart-harms", "chart-scores", "chart-tiers", "chart-tiers_by",
                         "chart-refusals", "chart-disparity", "chart-behaviour",
                         "chart-assortativity", "chart-components"}
    for d in divs:
        assert f'"{d}":{{' in page


def test_no_reference_leaves_the_page(page):
    parsed = refs(page)
    assert {"script", "style"} <= set(parsed.tags)
    assert "link" not in parsed.tags and "img" not in parsed.tags and "iframe" not in parsed.tags
    # the only references are the navigation's own anchors
    assert parsed.refs and all(v.startswith("#") for _, _, v in parsed.refs), parsed.refs
    outside_js = page.replace(javascript(), "")
    assert not re.search(r"https?://", outside_js), re.findall(r"https?://\S{0,40}", outside_js)
    assert "@import" not in page and "@font-face" not in page
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", outside_js)
    # the bundle's few addresses are strings it never fetches (XML namespaces, editor links)
    for url in re.findall(r"https?://[^\s\"'`)]+", javascript()):
        assert url.startswith(("http://www.w3.org/", "https://vega.github.io/",
                               "https://github.com/vega/")), url


def test_the_scenario_and_headline_numbers_are_the_runs(store, page):
    result = pc.open_run(run_dir(store, "seed_article"))
    found = sections(page)
    assert "seed_article" in found["scenario"] and "4,000 citizens" in found["scenario"]
    assert "seed 5" in found["scenario"] and "15 rules" in found["scenario"]
    assert "no appeals process" in found["scenario"]
    last = result.daily.to_pylist()[-1]
    assert f"{last['mean_score']:,.1f}" in found["headline"]
    false_obs = sum(result.daily.column("false_observations").to_pylist())
    assert f"<td>false observations (whole run)</td><td>{false_obs:,}</td>" in found["headline"]
    ever = metrics.wrongful(result)["citizens_ever_false"]
    per = report_build.per_thousand(ever / 4000)
    assert (f"<td>citizens ever falsely named (whole run)</td><td>{int(ever):,} "
            f"({per} per 1,000)</td>") in found["headline"]


def test_citizens_refused_under_a_sanction_and_for_a_perk_not_granted_are_shown_apart(
        store, page):
    """Punishments and withheld rewards are different harms: the headline gives the citizens
    refused for each reason, as the refusals table has them."""
    result = pc.open_run(run_dir(store, "seed_article"))
    refusals = result.table("refusals").to_pandas()
    whole = result.summary()["whole_run"]
    headline = sections(page)["headline"]
    for reason, words in (("sanctioned", "under a sanction"),
                          ("no_perk", "for a perk not granted")):
        count = refusals.citizen[refusals[reason]].nunique()
        assert whole[f"citizens_refused_{reason}"] == count
        assert f"<td>… of them {words} (whole run)</td><td>{count:,}" in headline
    assert whole["citizens_refused_no_perk"] > 0 and whole["citizens_refused_sanctioned"] > 0


# --------------------------------------------------------------------------- findings


def test_findings_state_the_numbers_of_the_metrics(store):
    """Each finding's numbers are the metrics' (API summary, wrongful, disparate impact,
    behaviour change) and its sentence states them, rounded as shown."""
    result = pc.open_run(run_dir(store, "seed_article"))
    run = collect([result.path])[0]
    out = findings(facts_of(run))
    assert 3 <= len(out) <= 6
    kinds = [f.kind for f in out]
    assert kinds[:2] == ["wrongly_refused", "falsely_named"] and "disparity" in kinds

    whole = result.summary()["whole_run"]
    wrongly = out[0]
    assert wrongly.numbers["citizens_wrongly_refused"] == whole["citizens_wrongly_refused"]
    assert wrongly.numbers["refusals"] == whole["refused"]
    assert f"{whole['refused']:,} refusals" in wrongly.text
    assert f"{whole['citizens_refused']:,} citizens" in wrongly.text
    assert "over the whole run (90 days)" in wrongly.text
    if whole["citizens_wrongly_refused"] == 0:
        assert wrongly.text.startswith("No citizen was wrongly refused")
    else:
        assert wrongly.text.startswith(f"{whole['citizens_wrongly_refused']:,} citizen")

    w = metrics.wrongful(result)
    named = out[1]
    assert named.numbers["citizens_ever_false"] == w["citizens_ever_false"]
    assert named.text.startswith(f"{int(w['citizens_ever_false']):,} citizens "
                                 f"({report_build.per_thousand(w['share_ever_false'])} per 1,000)")
    assert f"{int(w['false_observations']):,} false observations" in named.text

    impact = metrics.disparate_impact_all(result)
    for f in out:
        if f.kind != "disparity":
            continue
        n = f.numbers
        r = impact[n["attribute"]][n["category"]][n["measure"]]
        assert r["status"] not in (TOO_FEW, "reference")
        for key in ("ratio", "ratio_low", "ratio_high", "rate", "events", "trials"):
            assert n[key] == r[key], key
        assert n["reference"] == r["reference"]
        assert r["ratio_low"] > 1  # the interval supports the disparity stated
        ratio, low, high = RATIO.search(f.text).groups()
        assert close(ratio, r["ratio"]) and close(low, r["ratio_low"]) \
            and close(high, r["ratio_high"])
        said = f.text.lower()
        assert said.startswith(who(n["attribute"], n["category"]).lower())
        assert f"as likely as {who(n['attribute'], n['reference'])}" in said
        assert report_build.per_thousand(r["rate"]) + " per 1,000" in f.text

    change = metrics.behaviour_change(result)
    behaviour = next(f for f in out if f.kind == "behaviour")
    for event, value in behaviour.numbers["events"].items():
        assert value == change[event]["change"]
        assert f"{event.replace('_', ' ')} (" in behaviour.text
        assert f"{abs(value):.1%}" in behaviour.text


def harm_row(counts: dict[str, tuple[int, int]]) -> dict:
    """A disparity dict (as disparate_impact_all's) of one harm by group."""
    rows = compare_rates(counts, {k: n for k, (_, n) in counts.items()}, "harm")
    return {"social_group": {k: {"citizens": n, "falsely_named": rows[k]}
                             for k, (_, n) in counts.items()}}


def test_no_finding_for_a_group_too_few_to_judge():
    """48 citizens with 20 harmed against 15 of 3,000: an interval far above 1, but too few
    citizens to judge, so no sentence names them; a ratio whose interval includes 1 is not
    stated either; the one supported disparity is."""
    counts = {"majority": (15, 3000), "minority": (30, 2000), "tiny": (20, 48),
              "middle": (10, 1500)}
    disparity = harm_row(counts)
    rows = disparity["social_group"]
    assert rows["tiny"]["falsely_named"]["status"] == TOO_FEW
    assert rows["tiny"]["falsely_named"]["ratio_low"] > 1
    assert rows["middle"]["falsely_named"]["ratio_low"] < 1 < rows["middle"]["falsely_named"][
        "ratio"]
    facts = {"citizens": 6548, "days": 30, "opportunities": False, "disparity": disparity}
    out = findings(facts)
    said = " ".join(f.text for f in out)
    assert "tiny" not in said and "middle" not in said
    stated = [f for f in out if f.kind == "disparity"]
    assert [f.numbers["category"] for f in stated] == ["minority"]
    assert stated[0].text.startswith("Minority citizens were 3.0× (95% CI")

    # nothing supported: "no clear difference", never a ratio
    out = findings({**facts, "disparity": harm_row({"majority": (15, 3000), "tiny": (20, 48),
                                                    "middle": (10, 1500)})})
    assert [f.kind for f in out if "differ" in f.kind] == ["no_clear_difference"]
    assert not any(RATIO.search(f.text) for f in out)


def test_the_findings_shown_are_the_generators(store, page):
    result = pc.open_run(run_dir(store, "seed_article"))
    out = findings(facts_of(collect([result.path])[0]))
    assert shown_findings(page) == [f.text for f in out]


# --------------------------------------------------------------------------- wording


def test_one_definition_of_wrongly_refused(page, tiny_page):
    """A refusal is wrongful when the gates would not have refused on the citizen's true
    standing: said once, no other wording anywhere."""
    for html in (page, tiny_page):
        words = text(html.replace(javascript(), ""))
        assert words.count(WRONGLY_REFUSED) == 1
        for variant in ("because of a false observation", "true record would not have been",
                        "refused where their true", "would have been allowed"):
            assert variant not in words, variant
    assert "gates would not have refused the citizen on their true standing" in WRONGLY_REFUSED


# --------------------------------------------------------------------------- layout


def test_no_empty_tables_in_a_run_without_appeals(store, page, tiny_page):
    """No <table> without a header and a row; a section without data says why in one
    sentence (the preset has no appeals process; the tiny run no opportunities)."""
    for html in (page, tiny_page):
        found = tables(html)
        assert found
        for t in found:
            assert t["th"] >= 1 and t["rows"] and all(t["rows"]), t
        audit = text(sections(html)["audit"])
        assert "No appeals: this scenario has no appeals process." in audit
        assert "Appeals (whole run)" not in audit
    refusals = text(sections(tiny_page)["refusals"])
    assert "No refusals: this scenario has no opportunities" in refusals
    assert "<table" not in sections(tiny_page)["refusals"]
    assert '<div class="chart" id="chart-refusals"' not in sections(tiny_page)["refusals"]
    # every table sits in its own scrolling box
    outside_js = page.replace(javascript(), "")
    assert outside_js.count("<table") == outside_js.count('<div class="table-wrap"><table')


# --------------------------------------------------------------------------- labels


def test_runs_are_labelled_by_scenario_and_the_settings_that_differ(tmp_path):
    def manifest(scenario, seed=1, settings=None, citizens=400, days=14):
        return {"scenario": scenario, "seed": seed, "citizens": citizens, "days": days,
                "settings": settings or {}, "run_id": f"{scenario}-s{seed}-x"}

    key = "sensors.cameras.misattribution"
    assert run_labels([manifest("a", settings={key: 0.02}), manifest("a", settings={key: 0.1})]
                      ) == ["a · misattribution=0.02", "a · misattribution=0.1"]
    assert run_labels([manifest("a", seed=1), manifest("a", seed=2)]) == ["a · seed=1",
                                                                        "a · seed=2"]
    assert run_labels([manifest("a"), manifest("b", seed=9)]) == ["a", "b"]
    assert run_labels([manifest("a"), manifest("a")]) == ["a", "a #2"]
    assert run_labels([manifest("a", settings={"x.rate": 1, "y.rate": 2}),
                       manifest("a", settings={"x.rate": 3, "y.rate": 4})]
                      ) == ["a · x.rate=1 · y.rate=2", "a · x.rate=3 · y.rate=4"]

    # real runs with recorded sweep settings: the page labels them so, the run id is small print
    paths = []
    for rate in (0.02, 0.1):
        spec = build_scenario(sensors={"cameras": {"misattribution": rate}})
        paths.append(pc.run(spec, out=tmp_path, settings={key: rate}).path)
    html = build_report(paths)
    found = sections(html)
    heads = re.findall(r"<h3>(.*?)</h3>", found["findings"])
    assert heads == ["tiny · misattribution=0.02", "tiny · misattribution=0.1"]
    for p in paths:
        assert p.name not in "".join(re.findall(r"<h[1-4]>.*?</h[1-4]>", html))
        assert f'<p class="details">run {p.name} ·' in found["findings"]
    header = re.search(r"<thead>(.*?)</thead>", found["headline"]).group(1)
    assert "tiny · misattribution=0.02" in header and "tiny · misattribution=0.1" in header


def test_two_runs_side_by_side(store, tmp_path):
    a, b = run_dir(store, "seed_article"), run_dir(store, "tiny")
    out = tmp_path / "two.html"
    result = runner.invoke(app, ["report", str(a), str(b), "--html", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.count(javascript()) == 1
    found = sections(html)
    for sid in ("findings", "scenario", "refusals", "disparity", "audit", "stories"):
        assert len(re.findall(r'<div class="run( wide)?">', found[sid])) == 2, sid
        assert "<h3>seed_article</h3>" in found[sid] and "<h3>tiny</h3>" in found[sid], sid
    header = re.search(r"<thead>(.*?)</thead>", found["headline"]).group(1)
    assert "seed_article" in header and "tiny" in header and a.name not in header
    # the charts colour or facet by run label
    assert '"run"' in html and '"seed_article"' in html.split("var specs = ")[1]


def test_the_same_run_twice_gets_two_labels(store):
    a = run_dir(store, "tiny")
    html = build_report([a, a])
    assert "<h3>tiny</h3>" in html and "<h3>tiny #2</h3>" in html


# --------------------------------------------------------------------------- charts


def test_tier_colours_run_from_best_to_worst(store):
    """Every chart that colours by tier uses the policy's tiers, best first, with colours of
    one sequential scheme in that order (never categorical defaults)."""
    for k in range(1, 14):
        colours = tier_colours(k)
        assert len(colours) == k
        if k <= len(TIER_SCHEME):
            places = [TIER_SCHEME.index(c) for c in colours]
            assert places == sorted(places) and len(set(places)) == k
            assert places[0] == 0 and (k == 1 or places[-1] == len(TIER_SCHEME) - 1)
    run = collect([run_dir(store, "seed_article")])[0]
    tiers = pc.open_run(run.path).manifest["tiers"]
    assert run.tiers == tiers == ["AAA", "AA", "A", "B", "C", "D"]

    found = []

    def walk(node):
        if isinstance(node, dict):
            colour = node.get("color")
            if isinstance(colour, dict) and colour.get("field") == "tier":
                found.append(colour)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    specs = charts([run])
    for name in ("tiers", "tiers_by"):
        walk(specs[name][1])
    assert len(found) == 2
    for colour in found:
        assert colour["scale"]["domain"] == tiers
        assert colour["scale"]["range"] == tier_colours(len(tiers))
        assert colour["sort"] == tiers


def test_harms_are_per_1000_citizens_each_on_its_own_scale(store):
    run = collect([run_dir(store, "seed_article")])[0]
    specs = charts([run])
    for name in ("harms", "disparity"):
        spec = specs[name][1]
        assert "facet" in spec and spec["columns"] == 2, name
        axis = "y" if name == "harms" else "x"
        assert spec["resolve"]["scale"][axis] == "independent", name
        assert spec["spec"]["layer" if name == "disparity" else "encoding"], name
    data = next(iter(specs["harms"][1]["datasets"].values()))
    ever = [d for d in data if d["harm"] == "citizens ever falsely named"][-1]
    assert ever["per_1000"] == pytest.approx(ever["count"] / 4000 * 1000)


def test_charts_are_written_as_png_and_svg(store, tmp_path):
    charts_dir = tmp_path / "charts"
    result = runner.invoke(app, ["report", str(run_dir(store, "seed_article")),
                                 "--html", str(tmp_path / "r.html"), "--charts",
                                 str(charts_dir)])
    assert result.exit_code == 0, result.output
    names = {p.stem for p in charts_dir.iterdir()}
    assert {"harms", "scores", "tiers", "tiers_by", "refusals", "disparity", "behaviour",
            "assortativity", "components"} <= names
    for name in names:
        assert (charts_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (charts_dir / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<svg") and "</svg>" in svg


# --------------------------------------------------------------------------- stories


def test_stories_are_narratives_with_the_log_behind_them(store, page):
    from panopticon.explain import explain

    found = sections(page)["stories"]
    stories = re.findall(r'<div class="story"><h4>(.*?)</h4><p>(.*?)</p><details><summary>'
                         r"(.*?)</summary><pre>(.*?)</pre></details></div>", found, flags=re.S)
    assert len(stories) >= 2
    assert any(h == "A citizen picked at random" for h, *_ in stories)
    for _, narrative, _, log in stories:
        citizen = int(re.match(r"Citizen ([\d,]+), ", narrative).group(1).replace(",", ""))
        story = explain(run_dir(store, "seed_article"), citizen)
        assert f"-year-old {story.attributes['social_group']} " in narrative
        assert "By the end of day 89" in narrative
        assert text(log).strip().splitlines() == story.text_lines()


# --------------------------------------------------------------------------- one reader


def test_the_report_reads_only_through_the_store_api_and_metrics():
    """No globbing, SQL or disparity and tier arithmetic of its own."""
    source = inspect.getsource(report_build)
    for own in ("duckdb", "read_parquet", ".glob(", "_sql(", "def _parts", "def _table(",
                "def _tiers(", "compare_rates", "katz", "wilson("):
        assert own not in source, own
    assert "metrics.disparate_impact_all(" in source and "open_run(" in source


# --------------------------------------------------------------------------- errors


def test_unknown_run_exits_2_naming_it(store, tmp_path):
    result = runner.invoke(app, ["report", "no-such-run", "--out", str(store),
                                 "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "no run 'no-such-run'" in result.output
    assert not (tmp_path / "r.html").exists()


def test_no_run_given_exits_2(tmp_path):
    assert runner.invoke(app, ["report", "--html", str(tmp_path / "r.html")]).exit_code == 2


@pytest.fixture
def tiny_copy(store, tmp_path) -> Path:
    return Path(shutil.copytree(run_dir(store, "tiny"), tmp_path / "tiny-copy"))


@pytest.mark.parametrize("part", ["daily", "ledger", "refusals_or_citizens"])
def test_corrupt_files_exit_2_naming_the_file(tiny_copy, tmp_path, part):
    if part == "refusals_or_citizens":
        target = tiny_copy / "citizens.parquet"
    else:
        target = sorted((tiny_copy / part).glob("part-*.parquet"))[0]
    target.write_bytes(b"not parquet at all")
    result = runner.invoke(app, ["report", str(tiny_copy), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert target.parent.name in result.output or target.name in result.output


def test_corrupt_manifest_or_scenario_exit_2(tiny_copy, tmp_path):
    (tiny_copy / "scenario.json").write_text("{ not json")
    result = runner.invoke(app, ["report", str(tiny_copy), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "scenario.json" in result.output
    (tiny_copy / "manifest.json").write_text("{ not json")
    result = runner.invoke(app, ["report", str(tiny_copy), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "manifest.json" in result.output


# --------------------------------------------------------------------------- disparity tables


def test_four_fifths_rule_by_hand():
    """The table renders what metrics.run.compare_rates computes (one implementation):
    30 of 200 harmed against 15 of 300 is 3× (Katz 1.66-5.43, past 1.25: flagged); a value
    with 48 citizens is too few to judge; an undefined ratio is never shown as infinite."""
    counts = {"a": (15, 300), "b": (30, 200), "c": (3, 48)}
    row = compare_rates(counts, {"a": 300, "b": 200, "c": 48}, "harm")
    cats = {k: {"citizens": counts[k][1], "refused": row[k]} for k in counts}
    html = _impact_table("social_group", cats)
    assert "<th>group</th>" in html
    cells = dict(re.findall(r"<tr><td>([a-c])</td>(.*?)</tr>", html))
    assert "reference" in cells["a"]
    assert "⚑ 3.00× (1.66–5.43)" in cells["b"]
    assert "too few to judge" in cells["c"] and "⚑" not in cells["c"]
    assert "150 <small>(107–206)</small>" in cells["b"]  # Wilson, 30 of 200, per 1,000
    assert "∞" not in html and "inf" not in html


def test_disparity_shows_every_categorical_attribute(page):
    found = sections(page)["disparity"]
    for attr in ("group", "sex", "region", "residency", "occupation", "rank", "children"):
        assert f"<h4>by {attr}</h4>" in found, attr
    assert "Not compared, one value only: abroad" in found
    # 4,000 citizens: few resident foreigners, so they are too few to judge, not flagged
    foreigners = re.search(r"<tr><td>resident_foreigner</td>(.*?)</tr>", found).group(1)
    assert "too few to judge" in foreigners and "⚑" not in foreigners
    assert "∞" not in found and "95%" in found


@pytest.mark.parametrize("share, text", [(0.254, "25.4%"), (0.01, "1.0%"), (0.000129, "0.013%"),
                                         (0.0, "0.0%"), (0.0049, "0.49%"), (1.0, "100.0%"),
                                         (99_796 / 99_806, "99.99%")])
def test_a_nonzero_share_is_never_written_as_zero_percent(share, text):
    """8 wrongful refusals of 61,906 read '(0.0%)': now '(0.013%)'; nor is a share below 1
    written as 100% (99,796 of 99,806 caught read '100%')."""
    assert report_build.percent(share) == text
