"""Real parts for integration tests: the embedded model, llama.cpp's server, a fault server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.backends.llama_cpp_chat import default_model_path

from .fault_server import FaultServer
from .processes import ServerProcess, free_port, start_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def embedded() -> EmbeddedBackend:
    backend = EmbeddedBackend(EmbeddedOptions(n_threads=1))
    backend.load()
    return backend


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """llama.cpp's OpenAI-compatible server with the embedded default model."""
    port = free_port()
    log = Path(tmp_path_factory.mktemp("llamacpp")) / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(default_model_path()),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_ctx",
        "2048",
    ]
    server = start_server(command, port=port, health_path="/v1/models", deadline=90, log_path=log)
    yield server
    server.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the server log to a failing test that used a server."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and "llamacpp_server" in getattr(item, "fixturenames", ()):
        server = item.funcargs.get("llamacpp_server")  # type: ignore[attr-defined]
        if isinstance(server, ServerProcess):
            report.sections.append(("llama.cpp server log", server.log_tail()))
