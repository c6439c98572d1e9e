"""Connecting to Ray for a search run: an existing cluster by address, or a local one in process.

Ray is an optional package (the ``scale`` extra) and is imported here, on first use only, so
``import hag_agent`` never loads it. A run that finds Ray already initialised (the caller's own
``ray.init``) uses that connection and leaves it open; otherwise it connects, or starts Ray in
this process with a bounded number of CPUs, and shuts it down afterwards.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from hag_agent.errors import ConfigurationError

ENVIRONMENT_PREFIX = "HAG_"
"""Variables with this prefix go to the workers, which build their backend as the driver would."""


def import_ray() -> ModuleType:
    """The ``ray`` module.

    Raises:
        ConfigurationError: When Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise ConfigurationError(
            "--executor ray needs Ray: pip install 'hag-agent[scale]'"
        ) from None
    return ray


def hag_environment() -> dict[str, str]:
    """This process's ``HAG_*`` variables (backend options, threads) for the workers."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENVIRONMENT_PREFIX)}


def local_cpus(requested: int | None) -> int:
    """CPUs for a Ray started in process: ``requested``, at most this machine's cores."""
    cores = os.cpu_count() or 1
    return max(1, min(requested or cores, cores))


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at a ``HOST:PORT`` address (Ray itself retries for minutes).

    Other forms (``auto``, ``ray://...``) are left to Ray.

    Raises:
        ConfigurationError: When a TCP connection to ``HOST:PORT`` fails.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "/" in address:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigurationError(f"no Ray cluster answers at {address}: {exc}") from None


@contextmanager
def ray_connection(address: str | None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, connected for the duration of the block.

    Args:
        address: A running cluster's address (``HOST:PORT``, or ``auto``); None starts Ray in
            this process with `local_cpus` of ``num_cpus``.
        num_cpus: The CPUs of a Ray started here (ignored with ``address``).

    Raises:
        ConfigurationError: When Ray is missing or the cluster cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is not None:
        check_reachable(address)
    runtime_env = {"env_vars": hag_environment()}
    # Workers' output would break the driver's progress bar; their failures come back as errors.
    common = {"runtime_env": runtime_env, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address is None:
            ray.init(num_cpus=local_cpus(num_cpus), include_dashboard=False, **common)
        else:
            ray.init(address=address, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local Ray"
        raise ConfigurationError(f"cannot start or reach Ray at {where}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


__all__ = ["check_reachable", "hag_environment", "import_ray", "local_cpus", "ray_connection"]
