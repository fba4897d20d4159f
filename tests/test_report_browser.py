"""The report in a real browser (Debian chromium driven by Playwright, pages from file://
only): every section populated, every chart drawn, no script error and no request leaving
the page; tables that fit a 1280 px screen and scroll inside their own box on a 390 px phone,
which never scrolls sideways; findings that state the run's numbers.

`make test` installs chromium (through apt, as root), so this test runs wherever the suite
does; where chromium is missing it fails with a message saying how to install it, rather than
skipping (a test that cannot fail is a defect).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import panopticon as pc
from panopticon.cli import app
from panopticon.metrics import run as metrics
from panopticon.report import SECTIONS
from panopticon.report.build import who

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium tries to reach Google's hosts at start.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
CHARTS = {"harms", "scores", "tiers", "tiers_by", "refusals", "disparity", "behaviour",
          "assortativity", "components"}
RATIO = re.compile(r"^(.+?) were (\d+\.\d+)× \(95% CI (\d+\.\d+)–(\d+\.\d+)\) as likely as (.+?) "
                   r"to be falsely named")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(`apt-get install -y chromium`; `make test` does it as root)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: pip install -e '.[dev]'",
                    pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser-store")
    return {"a": pc.run("seed_article", citizens=4000, days=90, seed=5, out=root).path,
            "b": pc.run("seed_article", citizens=1000, days=20, seed=6, out=root).path}


@pytest.fixture(scope="module")
def reports(stored, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("browser-reports")
    runner = CliRunner()
    pages = {}
    for name, runs in (("one", [stored["a"]]), ("two", [stored["a"], stored["b"]])):
        page = out / f"{name}.html"
        result = runner.invoke(app, ["report", *map(str, runs), "--html", str(page)])
        assert result.exit_code == 0, result.output
        pages[name] = page
    return pages


def open_report(browser, path: Path, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url)
            if not r.url.startswith(("file://", "data:")) else None)
    page.goto(path.as_uri())
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart')].every("
        "el => el.dataset.rendered === 'true' || el.textContent.includes('failed'))",
        timeout=30_000)
    return page, errors, requests


@pytest.mark.parametrize("which", ["one", "two"])
def test_the_report_renders_offline_without_errors(browser, reports, which):
    page, errors, requests = open_report(browser, reports[which])
    try:
        assert errors == [], errors
        assert requests == [], requests
        for sid, heading in SECTIONS:
            section = page.locator(f"section#{sid}")
            assert section.count() == 1, sid
            assert section.locator("h2").inner_text() == heading
            text = section.inner_text()
            charts = section.locator(".chart").count()
            assert len(text) > len(heading) + 20 or charts, f"{sid} is empty"
        drawn = page.eval_on_selector_all(
            ".chart", "els => els.map(el => [el.dataset.chart, el.dataset.rendered === 'true', "
                      "el.querySelectorAll('svg, canvas').length])")
        assert {name for name, _, _ in drawn} == CHARTS
        for name, rendered, marks in drawn:
            assert rendered and marks >= 1, f"chart {name} was not drawn"
        # a drawn chart has real marks, not an empty frame
        assert page.locator("#chart-scores svg path").count() > 1
        if which == "two":
            assert page.locator("section#headline thead th").count() == 3
            assert page.locator("section#stories .run").count() == 2
    finally:
        page.close()


# Each table: is it in its own box, does that box scroll sideways, does the table fit it, and
# each header cell's box against the table's box and the window.
TABLES = """() => [...document.querySelectorAll('table')].map(t => {
  const box = t.closest('.table-wrap');
  const b = box ? box.getBoundingClientRect() : null;
  return {
    section: t.closest('section').id,
    boxed: !!box,
    scrolls: box ? ['auto', 'scroll'].includes(getComputedStyle(box).overflowX) : false,
    fits: box ? t.getBoundingClientRect().width <= box.clientWidth + 1 : false,
    box: b ? [b.left, b.right] : null,
    heads: [...t.querySelectorAll('th')].map(th => {
      const r = th.getBoundingClientRect();
      return {text: th.innerText, left: r.left, right: r.right, width: r.width,
              clipped: th.scrollWidth > th.clientWidth + 1};
    }),
  };
})"""


@pytest.mark.parametrize("which", ["one", "two"])
def test_at_1280_px_every_table_fits_and_every_column_header_is_visible(browser, reports,
                                                                        which):
    page, errors, _ = open_report(browser, reports[which], 1280)
    try:
        assert errors == []
        width = page.evaluate("document.documentElement.clientWidth")
        found = page.evaluate(TABLES)
        assert found
        for t in found:
            # never overflowing its container unscrollably: in a sideways-scrolling box
            assert t["boxed"] and t["scrolls"], t["section"]
            # and at 1280 px no column is lost: the table fits, every header in view
            assert t["fits"], t["section"]
            left, right = t["box"]
            assert 0 <= left and right <= width + 1, t["section"]
            for th in t["heads"]:
                assert th["width"] > 0 and not th["clipped"], (t["section"], th["text"])
                assert left - 1 <= th["left"] and th["right"] <= right + 1, \
                    (t["section"], th["text"])
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        page.close()


@pytest.mark.parametrize("which", ["one", "two"])
def test_at_390_px_the_page_never_scrolls_sideways(browser, reports, which):
    page, errors, _ = open_report(browser, reports[which], 390)
    try:
        assert errors == []
        width = page.evaluate("document.documentElement.clientWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.evaluate("document.body.scrollWidth") <= width
        for t in page.evaluate(TABLES):  # wide tables scroll inside their own box
            assert t["boxed"] and t["scrolls"] and t["box"][1] <= width + 1, t["section"]
        boxes = page.eval_on_selector_all(
            ".chart, pre, ol.findings, h1", "els => els.map(el => "
            "[el.id || el.tagName, el.getBoundingClientRect().right])")
        for name, right in boxes:
            assert right <= width + 1, name
        # the charts were sized to the phone: small multiples in one column
        drawn = page.eval_on_selector_all(
            ".chart svg", "els => els.map(el => el.getBoundingClientRect().width)")
        assert drawn and max(drawn) <= width
    finally:
        page.close()


def test_the_findings_shown_state_the_runs_numbers(browser, reports, stored):
    """Read the metrics from the API, find them in the rendered sentences."""
    result = pc.open_run(stored["a"])
    whole = result.summary()["whole_run"]
    wrong = metrics.wrongful(result)
    impact = metrics.disparate_impact_all(result)
    page, errors, _ = open_report(browser, reports["one"])
    try:
        items = page.locator("section#findings ol.findings li").all_inner_texts()
    finally:
        page.close()
    assert 3 <= len(items) <= 6
    k = whole["citizens_wrongly_refused"]
    assert items[0].startswith("No citizen was wrongly refused" if k == 0 else f"{k:,} citizen")
    assert f"{whole['refused']:,} refusals" in items[0]
    assert f"{whole['citizens_refused']:,} citizens" in items[0]
    assert items[1].startswith(f"{int(wrong['citizens_ever_false']):,} citizens ")
    assert f"{int(wrong['false_observations']):,} false observations" in items[1]
    stated = [m for m in map(RATIO.match, items) if m]
    assert stated, items
    for m in stated:
        a, ratio, low, high, b = m.groups()
        matches = [(attr, cat, cats[ref]) for attr, cats in impact.items()
                   for cat in cats for ref in cats
                   if who(attr, cat).lower() == a.lower() and who(attr, ref) == b]
        assert len(matches) == 1, m.group(0)
        attr, cat, _ = matches[0]
        r = impact[attr][cat]["falsely_named"]
        assert r["status"] not in ("too few to judge", "reference") and r["ratio_low"] > 1
        for shown, value in ((ratio, r["ratio"]), (low, r["ratio_low"]),
                             (high, r["ratio_high"])):
            decimals = len(shown.split(".")[1])
            assert abs(float(shown) - value) <= 0.5 * 10 ** -decimals + 1e-12
