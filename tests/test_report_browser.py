"""The report in a real browser (Debian chromium driven by Playwright): every section
populated, every chart drawn, no script error and no request leaving the page.

`make test` installs chromium (through apt, as root), so this test runs wherever the suite
does; where chromium is missing it fails with a message saying how to install it, rather than
skipping (a test that cannot fail is a defect).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import panopticon as pc
from panopticon.cli import app
from panopticon.report import SECTIONS

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium tries to reach Google's hosts at start.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
CHARTS = {"scores", "tiers", "refusals", "disparity", "behaviour", "assortativity", "components"}


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
def reports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser-store")
    a = pc.run("seed_article", citizens=1500, days=30, seed=5, out=root).path
    b = pc.run("seed_article", citizens=1000, days=20, seed=6, out=root).path
    out = tmp_path_factory.mktemp("browser-reports")
    runner = CliRunner()
    pages = {}
    for name, runs in (("one", [a]), ("two", [a, b])):
        page = out / f"{name}.html"
        result = runner.invoke(app, ["report", *map(str, runs), "--html", str(page)])
        assert result.exit_code == 0, result.output
        pages[name] = page
    return pages


def open_report(browser, path: Path):
    page = browser.new_page()
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
            assert "not in this run" not in text.replace("appeals\tnot in this run", ""), sid
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

