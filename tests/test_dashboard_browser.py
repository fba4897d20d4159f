"""The dashboard in a real browser (Debian chromium driven by Playwright): `panopticon
dashboard` started on a free local port, a small scenario run from the Explore page, the
charts drawn, the run then opened on the Runs page (findings, charts, audit verdict), the run
stored, no console error, no request leaving the machine, and the server stopped. How fast
it starts and runs is measured by `benchmarks/dashboard.py`, not here.

Like the report's browser test, it fails (never skips) where chromium is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from panopticon.store.local import list_runs, read_scenario

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
LOCAL = ("127.0.0.1", "localhost")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(`apt-get install -y chromium`; `make test` does it as root)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def test_a_small_scenario_runs_from_the_explore_page_offline(browser, tmp_path):
    store = tmp_path / "runs"
    store.mkdir()
    port = free_port()
    exe = Path(sys.executable).with_name("panopticon")
    started = time.perf_counter()
    server = subprocess.Popen([str(exe), "dashboard", "--out", str(store), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def guard(route):
        url = urlparse(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname in LOCAL:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    try:
        address = f"http://127.0.0.1:{port}"
        line = server.stdout.readline()
        assert f"dashboard: {address}" in line, line
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        page.goto(f"{address}/?preset=seed_article&citizens=2000&days=30")
        page.get_by_role("button", name="Run").wait_for(timeout=30_000)
        # how long it took is measured by benchmarks/dashboard.py, not asserted here
        print(f"\ndashboard start-up (launch to the Explore page served): "
              f"{time.perf_counter() - started:.2f} s")

        page.get_by_role("button", name="Run").click()
        page.get_by_text("complete: 30 days stored").wait_for(timeout=60_000)
        # the page reruns as the run ends: wait for its charts to be drawn again, then count
        # scores, tiers, false observations, refusals by group
        page.wait_for_function(
            "() => { const c = [...document.querySelectorAll(\"[data-testid='stVegaLiteChart']\")];"
            " return c.length >= 4 && c.every(el => el.querySelector('canvas, svg')); }",
            timeout=60_000)
        assert page.locator("[data-testid='stVegaLiteChart']").count() == 4
        # the Runs page opens the stored run: the report's findings and charts are drawn
        page.get_by_text("Runs", exact=True).first.click()
        page.get_by_text("Findings").first.wait_for(timeout=60_000)
        page.wait_for_function(
            "() => { const c = [...document.querySelectorAll(\"[data-testid='stVegaLiteChart']\")];"
            " return c.filter(el => el.querySelector('canvas, svg')).length >= 5; }",
            timeout=60_000)
        assert page.get_by_text("verdict: intact").count() >= 1
        assert errors == [], errors
        assert outside == [], outside
    finally:
        page.close()
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    assert server.returncode is not None
    runs = list_runs(store)
    assert len(runs) == 1 and runs[0]["status"] == "complete"
    spec = read_scenario(Path(runs[0]["path"]), runs[0])
    assert (spec.name, spec.run.citizens, spec.run.days) == ("seed_article", 2000, 30)
