"""Joining a Ray cluster, or starting a local one, for sweeps (``--engine ray``) and sharded
runs (``--shards``). Ray is imported only here and only when asked for."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from panopticon.errors import UserError


@contextmanager
def ray_session(address: str | None, cpus: int, what: str) -> Iterator[Any]:
    """The ``ray`` module, joined to the cluster at ``address`` (``auto``: the one ``ray
    start`` made here) or to a local cluster of ``cpus`` CPUs started here and shut down on
    leaving; a Ray already initialised in this process is used as it is. ``what`` names the
    option that asked for Ray in errors (``--engine ray``, ``--shards``)."""
    try:
        import ray
    except ImportError:
        raise UserError(f"{what} needs Ray: pip install 'ray>=2.9' (it is in panopticon's "
                        "dev extras)") from None
    started = not ray.is_initialized()
    if started:
        check_reachable(address)
        # Ray's notices (token authentication, a local instance started) are not the user's
        logging.getLogger("ray").setLevel(logging.ERROR)
        try:
            ray.init(address=address, num_cpus=None if address else cpus,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"--ray-address {address}: cannot join the Ray cluster: "
                            f"{exc}") from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Refuse a ``HOST:PORT`` nobody answers at, in seconds (Ray itself retries for minutes);
    ``auto``, ``ray://`` addresses and none at all are left to Ray."""
    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise UserError(f"--ray-address {address}: no Ray cluster answers there ({exc}); "
                        f"start one with `ray start --head` and give its address") from None
