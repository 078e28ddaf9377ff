"""Connect to Ray once per process: a local cluster for the run, or the address given; one-line errors."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ProviderNotInstalledError
from .options import RayOptions

__all__ = ["connect"]


def connect(options: RayOptions) -> Any:
    """The ``ray`` module, initialised (an existing connection is reused)."""
    try:
        import ray
        import ray.data  # noqa: F401 - the executor's engine; a bare ray without [data] lacks it
    except ImportError:
        raise ProviderNotInstalledError(
            "the Ray executor needs Ray with Ray Data, which is not installed", install="pip install 'mmbridge[ray]'"
        ) from None
    if ray.is_initialized():
        return _fits(ray, options)
    if options.address not in (None, "auto", "local"):
        _reachable(options.address)  # ray.init waits minutes on an address where nothing listens
    try:
        ray.init(
            address=options.address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = options.address or "a local cluster"
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"cannot reach Ray at {where} ({type(exc).__name__}: {reason}); check --ray-address"
        ) from None
    if options.address in (None, "local"):  # a cluster of this process: its agents must end with it
        atexit.register(_end_local_cluster, ray, _descendants(os.getpid()))
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-dataset INFO lines
    logging.getLogger("ray.data._internal").setLevel(logging.ERROR)  # "progress bars disabled"
    ray.data.DataContext.get_current().enable_progress_bars = False  # the run's own bar counts the rows
    return _fits(ray, options)


def _fits(ray: Any, options: RayOptions) -> Any:
    """``ray``, once the pool's CPUs and GPUs are known to exist: Ray would otherwise wait for them forever."""
    has = ray.cluster_resources()
    for unit, each, option in (
        ("CPU", options.actor_cpus, "--actor-cpus"),
        ("GPU", options.actor_gpus, "--actor-gpus"),
    ):
        wanted = options.actors * each
        if wanted > has.get(unit, 0) + 1e-9:
            raise ConfigError(
                f"{options.actors} actors x {option} {each:g} need {wanted:g} {unit}s; the Ray cluster has "
                f"{has.get(unit, 0):g}: ask for fewer (--actors, {option})"
            )
    return ray


def _end_local_cluster(ray: Any, started: dict[int, str]) -> None:
    """Shut down the cluster this process started, then end what it left: Ray's dashboard and
    runtime-env agents, orphaned when their raylet ends first, otherwise linger for minutes.
    ``started``: the processes below this one once the cluster was up (pid: start time, so a pid
    the system has since given to another process is left alone)."""
    started = {**started, **_descendants(os.getpid())}
    ray.shutdown()
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        left = [pid for pid, since in started.items() if _start_time(pid) == since]
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal_number)
        deadline = time.monotonic() + 2
        while left and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the processes to exit, at most two seconds
            left = [pid for pid in left if _start_time(pid) == started[pid]]


def _start_time(pid: int) -> str | None:
    """When ``pid`` started (ticks since boot, from /proc), or None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` with its start time (Linux's /proc; nothing elsewhere)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {pid: since for pid in found if (since := _start_time(pid)) is not None}


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    target = address.split("://", 1)[-1].rstrip("/")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r}: give host:port (a head node's 6379) or ray://host:10001")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach Ray at {address} ({exc.strerror or type(exc).__name__}); "
            "check --ray-address, or leave it out to start a local cluster"
        ) from None
