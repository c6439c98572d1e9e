"""Secrets: an API key given to hag-agent appears in none of its outputs.

`hag-agent run` and the library talk to local OpenAI-compatible servers with a made-up key,
on success and on errors (a 400, a 500 after its retries, a refused connection, and a server
that echoes the key back in its error body, as some gateways do). Every output is searched for
the key: stdout and stderr with ``--trace``, ``--json`` and ``--trace-out``, the trace file, the
error messages, the result's JSON, the runnable's repr and every log record at DEBUG. Each
check also confirms the key did reach the server, so a test that never sent it cannot pass.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from integration.fault_server import FaultServer

from hag_agent import BackendError, HAGRunnable
from hag_agent.dev.server_process import free_port

from .figures import FIGURES

KEY = "sk-hagtest-7f3a9c1e5b2d4086aa1fce93b0d7e6f2"
KEY_PARTS = (KEY, KEY[3:], KEY[-16:])
"""The key, without its prefix, and its tail: a partial leak counts too."""


def assert_no_key(where: str, text: str) -> None:
    for part in KEY_PARTS:
        assert part not in text, f"{where} shows the API key ({part!r})"
    FIGURES["secrets"]["outputs searched"] += 1


def saw_key(server: FaultServer) -> bool:
    return any(r.headers.get("authorization") == f"Bearer {KEY}" for r in server.requests)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    fault = FaultServer().start()
    yield fault
    fault.stop()


class _EchoKey(BaseHTTPRequestHandler):
    """Answers every request 401, quoting the Authorization header it got (as some gateways do)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        auth = self.headers.get("authorization", "")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {auth[7:]}"}})
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def echo_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _EchoKey)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def hag_run(base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``hag-agent run`` on an endpoint, the key given the usual way (its environment variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAG_", "OPENAI_"))}
    env.update(
        HAG_API_KEY=KEY,
        HAG_BASE_URL=base_url,
        HAG_MODEL="tiny",
        HAG_MAX_TRIES="2",
        HAG_DEADLINE="10",
        HAG_TIMEOUT="5",
    )
    command = [sys.executable, "-m", "hag_agent.cli", "run", "What is 2 + 2?", "--backend", "vllm"]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "flags", [["--trace"], ["--json"], ["--trace", "--proposer", "self", "--classifier", "llm"]]
)
def test_cli_outputs_never_show_the_key(
    server: FaultServer, tmp_path: Path, flags: list[str]
) -> None:
    trace_file = tmp_path / "run.json"
    done = hag_run(server.base_url, *flags, "--trace-out", str(trace_file))
    assert done.returncode == 0, done.stderr
    assert saw_key(server)
    assert_no_key("stdout", done.stdout)
    assert_no_key("stderr", done.stderr)
    assert_no_key("the trace file", trace_file.read_text(encoding="utf-8"))


@pytest.mark.parametrize("fault", ["400", "500"])
def test_cli_errors_never_show_the_key(server: FaultServer, fault: str) -> None:
    server.reset([fault])
    done = hag_run(server.base_url, "--trace", "--json")
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert saw_key(server)
    assert_no_key("stdout", done.stdout)
    assert_no_key("stderr", done.stderr)


def test_cli_error_on_a_refused_connection_never_shows_the_key() -> None:
    done = hag_run(f"http://127.0.0.1:{free_port()}/v1", "--trace")
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert_no_key("stdout", done.stdout)
    assert_no_key("stderr", done.stderr)


def test_a_server_that_echoes_the_key_does_not_get_it_printed(echo_url: str) -> None:
    done = hag_run(echo_url, "--trace", "--json")
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert "Incorrect API key provided" in done.stderr  # the server's message is still shown
    assert_no_key("stderr", done.stderr)
    assert_no_key("stdout", done.stdout)


def _runnable(base_url: str) -> HAGRunnable:
    return HAGRunnable(
        backend="vllm",
        backend_options={"base_url": base_url, "model": "tiny", "api_key": KEY, "max_tries": 1},
        proposer="self",
    )


def test_library_results_and_errors_never_show_the_key(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, openai's and httpx's request logs included
    hag = _runnable(server.base_url)
    result = hag.invoke("What is 2 + 2?")
    assert saw_key(server)
    assert_no_key("the result's JSON", json.dumps(result.to_json_dict()))
    assert_no_key("the result's repr", repr(result))
    assert_no_key("the runnable's repr", repr(hag))
    assert_no_key("the run context", repr(hag.run_context()))
    server.reset(["400"])
    with pytest.raises(BackendError) as raised:
        hag.invoke("What is 2 + 2?")
    assert_no_key("the error", f"{raised.value} {raised.value!r}")
    assert caplog.records, "nothing was logged: the log check would prove nothing"
    assert_no_key("the logs (DEBUG)", caplog.text)


def test_library_error_from_an_echoing_server_never_shows_the_key(echo_url: str) -> None:
    with pytest.raises(BackendError) as raised:
        _runnable(echo_url).invoke("What is 2 + 2?")
    assert "Incorrect API key provided" in str(raised.value)
    assert_no_key("the error", f"{raised.value} {raised.value!r}")
