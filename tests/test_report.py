"""`panopticon report`: one self-contained offline HTML page per set of runs."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import build_scenario
from typer.testing import CliRunner

import panopticon as pc
from panopticon.cli import app
from panopticon.report import SECTIONS, build_report
from panopticon.report.build import _impact_frame, _impact_table, javascript

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store with a full preset run (opportunities, behaviour, network) and a tiny one
    without opportunities (nor appeals)."""
    root = tmp_path_factory.mktemp("report-store")
    pc.run("seed_article", citizens=1500, days=30, seed=3, out=root)
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


class _Refs(HTMLParser):
    """Every tag and every attribute that could make the browser fetch something."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []
        self.sections: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action", "xlink:href") \
                    and value is not None:
                self.refs.append((tag, name, value))


def refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


def sections(html: str) -> dict[str, str]:
    """Each section's HTML, by id."""
    return dict(re.findall(r'<section id="([a-z]+)">(.*?)</section>', html, flags=re.S))


def test_the_page_is_one_html_document_with_the_javascript_inlined_once(page):
    assert page.startswith("<!DOCTYPE html>")
    assert page.count(javascript()) == 1
    outside_js = page.replace(javascript(), "")
    assert outside_js.count("<html") == 1 and outside_js.count("</html>") == 1
    assert page.count("window.vegaEmbed=") == 1
    # the embed script calls vegaEmbed once per chart, in a loop over the specs
    assert page.count("vegaEmbed(el, specs[id]") == 1


def test_every_section_has_its_heading_and_content(page):
    found = sections(page)
    assert [sid for sid, _ in SECTIONS] == list(found)
    for sid, heading in SECTIONS:
        body = found[sid]
        assert f"<h2>{heading.replace(chr(39), '&#x27;')}</h2>" in body
        assert len(re.sub(r"<[^>]+>", "", body)) > len(heading) + 20 \
            or '<div class="chart"' in body, sid
        # the preset run has every table (its appeals table is empty: no appeals configured)
        assert "not in this run" not in body.replace("appeals</td><td>not in this run", ""), sid


def test_every_chart_has_a_div_and_a_spec(page):
    divs = re.findall(r'<div class="chart" id="(chart-[a-z]+)"', page)
    assert set(divs) >= {"chart-scores", "chart-tiers", "chart-refusals", "chart-disparity",
                         "chart-behaviour", "chart-assortativity", "chart-components"}
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
    assert "seed_article" in found["scenario"] and "1,500 citizens" in found["scenario"]
    assert "seed 3" in found["scenario"] and "15 rules" in found["scenario"]
    last = result.daily.to_pylist()[-1]
    assert f"{last['mean_score']:,.1f}" in found["headline"]
    false_obs = sum(result.daily.column("false_observations").to_pylist())
    assert f"<td>false observations (all days)</td><td>{false_obs:,}</td>" in found["headline"]


def test_audit_and_stories_come_from_the_run(store, page):
    found = sections(page)
    assert "<td>hash chain</td><td>intact</td>" in found["audit"]
    assert found["stories"].count('<div class="story">') >= 2
    assert "a citizen picked at random" in found["stories"]
    assert "summary:" in found["stories"]


def test_a_run_without_opportunities_or_appeals_says_so(store, tmp_path):
    out = tmp_path / "tiny.html"
    result = runner.invoke(app, ["report", run_dir(store, "tiny").name, "--out", str(store),
                                 "--html", str(out)])
    assert result.exit_code == 0, result.output
    found = sections(out.read_text())
    assert "not in this run" in found["refusals"]
    assert '<div class="chart" id="chart-refusals"' not in found["refusals"]
    assert "appeals</td><td>not in this run" in found["audit"]
    for sid, _ in SECTIONS:
        assert sid in found


def test_two_runs_side_by_side(store, tmp_path):
    a, b = run_dir(store, "seed_article"), run_dir(store, "tiny")
    out = tmp_path / "two.html"
    result = runner.invoke(app, ["report", str(a), str(b), "--html", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.count(javascript()) == 1
    found = sections(html)
    for sid in ("scenario", "refusals", "disparity", "audit", "stories"):
        assert found[sid].count('<div class="run">') == 2, sid
        assert a.name in found[sid] and b.name in found[sid], sid
    header = re.search(r"<thead>(.*?)</thead>", found["headline"]).group(1)
    assert a.name in header and b.name in header
    # the charts colour or facet by run
    assert '"run"' in html and a.name in html.split("var specs = ")[1]


def test_the_same_run_twice_gets_two_labels(store):
    a = run_dir(store, "tiny")
    html = build_report([a, a])
    assert f"<h3>{a.name}</h3>" in html and f"<h3>{a.name}&#x27;</h3>" in html


def test_charts_are_written_as_png_and_svg(store, tmp_path):
    charts = tmp_path / "charts"
    result = runner.invoke(app, ["report", str(run_dir(store, "seed_article")),
                                 "--html", str(tmp_path / "r.html"), "--charts", str(charts)])
    assert result.exit_code == 0, result.output
    names = {p.stem for p in charts.iterdir()}
    assert {"scores", "tiers", "refusals", "disparity", "behaviour", "assortativity",
            "components"} <= names
    for name in names:
        assert (charts / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (charts / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<svg") and "</svg>" in svg


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


def test_four_fifths_rule_by_hand():
    """The table renders what metrics.run.disparate_impact computes (one implementation):
    30 of 200 harmed against 15 of 300 is 3× (Katz 1.66-5.43, past 1.25: flagged); a value
    with 48 citizens is too few to judge; an undefined ratio is never shown as infinite."""
    from panopticon.metrics.run import compare_rates

    counts = {"a": (15, 300), "b": (30, 200), "c": (3, 48)}
    row = compare_rates(counts, {"a": 300, "b": 200, "c": 48}, "harm")
    frame = _impact_frame({k: {"citizens": counts[k][1], "refused": row[k]} for k in counts})
    html = _impact_table("group", frame)
    cells = dict(re.findall(r"<tr><td>([a-c])</td>(.*?)</tr>", html))
    assert "reference" in cells["a"]
    assert "⚑ 3.00× (1.66–5.43)" in cells["b"] and cells["b"].endswith("<td>ever refused</td>")
    assert "too few to judge" in cells["c"] and "⚑" not in cells["c"]
    assert "15.0% <small>(10.7%–20.6%)</small>" in cells["b"]  # Wilson, 30 of 200
    assert "∞" not in html and "inf" not in html


def test_disparity_shows_every_categorical_attribute(page):
    found = sections(page)["disparity"]
    for attr in ("group", "sex", "region", "residency", "occupation", "rank", "children"):
        assert f"<h4>by {attr}</h4>" in found, attr
    assert "Not compared, one value only: abroad" in found
    # 1,500 citizens: few resident foreigners, so they are too few to judge, not flagged
    foreigners = re.search(r"<tr><td>resident_foreigner</td>(.*?)</tr>", found).group(1)
    assert "too few to judge" in foreigners and "⚑" not in foreigners
    assert "∞" not in found and "95%" in found
