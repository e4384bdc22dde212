"""Start a local Ray on loopback, or join a cluster after a bounded reachability check."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from embedlab.errors import BackendUnavailableError, ClusterError

LOCAL_NODE_IP = "127.0.0.1"
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> Any:
    """Import ray, or raise :class:`BackendUnavailableError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(f"Ray is not installed: pip install 'embedlab[ray]' ({exc})") from exc
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray address, or None for ``auto`` / ``local`` (nothing to probe)."""
    bare = address.split("://", 1)[1] if "://" in address else address
    if bare in ("auto", "local", ""):
        return None
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Open (and close) a TCP connection to the address's head node within ``timeout_s`` seconds.

    Raises:
        ClusterError: malformed address, refused, unroutable or timed out, naming the address.
    """
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({reason} within {timeout_s:g} s); "
            "check the head node's address and port, or leave out the address to start a local Ray"
        ) from exc


def ensure_ray(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Make sure this process is connected to Ray. Returns True when this call started or joined it.

    Already connected (e.g. a test driver or a notebook that called ``ray.init``): reuse it, return False.
    Without ``address``: a local single-node Ray bound to 127.0.0.1 with ``num_cpus`` CPUs (default: all),
    no dashboard. With ``address``: the head is probed first (bounded, see :func:`check_reachable`).

    Raises:
        ClusterError: unreachable address, or Ray failed to start / connect.
        BackendUnavailableError: Ray is not installed.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address is None:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                num_gpus=num_gpus,
                include_dashboard=False,
                _node_ip_address=LOCAL_NODE_IP,
                **quiet,
            )
        else:
            check_reachable(address)
            ray.init(address=address, **quiet)
    except ClusterError:
        raise
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ClusterError(f"cannot start or join {where}: {exc}") from exc
    return True
