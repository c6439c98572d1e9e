"""Shared fixtures: every test is hermetic (no HAG_/OPENAI_ settings, no sockets but loopback)."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hag_agent.testing.extras import missing_extra, skip_reason

_ENV_PREFIXES = ("HAG_", "OPENAI_")


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:
        return True  # unix sockets and the like stay on this machine
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear hag-agent and OpenAI settings; refuse connections beyond loopback."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise OSError(f"hermetic test: connection to {address!r} refused (loopback only)")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise OSError(f"hermetic test: connection to {address!r} refused (loopback only)")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield


# -- tests that need an optional extra ------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_extra(name): skip, naming the extra and its missing packages, when it is absent",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """One policy for tests that need an extra: they skip, naming it and how to install it."""
    for marker in item.iter_markers("needs_extra"):
        extra = str(marker.args[0])
        missing = missing_extra(extra)
        if missing:
            pytest.skip(skip_reason(extra, missing))


# -- a third-party plug-in, installed for one test ------------------------------------------

InstallPlugin = Callable[[str, str, str, str], None]


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstallPlugin:
    """``install(module, source, group, entry)``: a module plus the metadata that declares its
    entry point (``entry`` is ``"name = module:attribute"``), importable for this test only."""

    def install(module: str, source: str, group: str, entry: str) -> None:
        (tmp_path / f"{module}.py").write_text(source, encoding="utf-8")
        dist = tmp_path / f"{module}-0.1.dist-info"
        dist.mkdir()
        name = module.replace("_", "-")
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
        monkeypatch.syspath_prepend(str(tmp_path))

    return install
