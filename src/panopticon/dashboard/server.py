"""Serving the dashboard: check the address and the store, then run Streamlit's server in this
process (on 127.0.0.1 unless told otherwise), with usage statistics off so that no request
leaves the machine."""

from __future__ import annotations

import errno
import os
import socket
import threading
from pathlib import Path

from panopticon.dashboard import APP, STORE_ENV
from panopticon.errors import UserError

LOCAL = ("127.0.0.1", "localhost", "::1")


def check(store: Path, host: str, port: int) -> str:
    """The address the dashboard will serve, once the store is a folder and the port is free.

    Raises:
        UserError: a port out of range or in use, a host that cannot be bound, a missing store.
    """
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: a port is a number from 1 to 65535")
    if not store.exists():
        raise UserError(f"{store}: no run store there; make one with `panopticon run --out "
                        f"{store}` (or `mkdir {store}` to start from the dashboard's Explore "
                        "page)")
    if not store.is_dir():
        raise UserError(f"{store}: is a file; the run store must be a folder (see --out)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            s.bind((host, port))
    except socket.gaierror:
        raise UserError(f"--host {host}: not an address of this machine") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"--port {port}: in use on {host}; choose another with "
                            "--port") from None
        if exc.errno == errno.EACCES:
            raise UserError(f"--port {port}: not allowed (ports below 1024 need root); "
                            "choose one above 1024") from None
        raise UserError(f"--host {host} --port {port}: cannot serve there "
                        f"({exc.strerror})") from None
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def flags(host: str, port: int) -> dict:
    """Streamlit's server options: this address, no browser opened, no usage statistics,
    no development mode, files not watched (the app is installed code)."""
    return {"server.address": host, "server.port": port, "server.headless": True,
            "browser.gatherUsageStats": False, "global.developmentMode": False,
            "server.fileWatcherType": "none", "server.runOnSave": False,
            "client.toolbarMode": "minimal", "browser.serverAddress": host,
            "browser.serverPort": port, "logger.level": "warning",
            "global.showWarningOnDirectExecution": False}


def _warm() -> None:
    import importlib

    for name in ("panopticon.api", "panopticon.dashboard.knobs", "panopticon.dashboard.views",
                 "panopticon.dashboard.live", "panopticon.report.build", "altair"):
        importlib.import_module(name)


def serve(store: Path, host: str, port: int) -> None:
    """Serve the app until Ctrl-C (Streamlit's server, in this process)."""
    from streamlit.web import bootstrap

    # the pages' imports (the simulator, the scenario schema, Altair) load while the server
    # starts, not when the first browser asks for a page
    threading.Thread(target=_warm, name="panopticon-dashboard-warm", daemon=True).start()
    os.environ[STORE_ENV] = str(Path(store).resolve())
    options = {k.replace(".", "_"): v for k, v in flags(host, port).items()}
    bootstrap.load_config_options(flag_options=options)
    bootstrap.run(str(APP), False, [], options)
