"""How fast the dashboard starts and how fast an interactive run goes, in a real browser.

Starts `panopticon dashboard` on a free local port (a temporary store), then measures, over
``--repeat`` launches: the server answering its health check, and the Explore page drawn in
Debian's chromium (launch to the Run button shown); then, once, a 20,000-citizen year of
``seed_article`` from the Run button to "complete". The issue's target: start-up under 5 s
with compiled kernels cached, an interactive 20,000-citizen year in seconds.

    .venv/bin/python benchmarks/dashboard.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(store: Path, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("panopticon")
    return subprocess.Popen([str(exe), "dashboard", "--out", str(store), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGINT)
    server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--citizens", type=int, default=20_000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        store = Path(tmp)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        health, drawn = [], []
        for _ in range(args.repeat):
            port = free_port()
            t0 = time.perf_counter()
            server = launch(store, port)
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                           timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.02)
            health.append(time.perf_counter() - t0)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/?preset=seed_article"
                      f"&citizens={args.citizens}&days=365")
            page.get_by_role("button", name="Run").wait_for(timeout=60_000)
            drawn.append(time.perf_counter() - t0)
            last = page, server
            if len(drawn) < args.repeat:
                page.close()
                stop(server)
        page, server = last
        t0 = time.perf_counter()
        page.get_by_role("button", name="Run").click()
        page.get_by_text("complete: 365 days stored").wait_for(timeout=600_000)
        year = time.perf_counter() - t0
        page.close()
        stop(server)
        browser.close()
    print(f"server answering:        median {statistics.median(health):.2f} s "
          f"(min {min(health):.2f}, max {max(health):.2f}, {args.repeat} launches)")
    print(f"Explore page drawn:      median {statistics.median(drawn):.2f} s "
          f"(min {min(drawn):.2f}, max {max(drawn):.2f}); target under 5 s")
    print(f"{args.citizens:,} citizens x 365 days from Run to complete: {year:.1f} s")


if __name__ == "__main__":
    main()
