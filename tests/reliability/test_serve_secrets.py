"""Secrets of ``hag-agent serve``: its own API key and its backend's appear in none of its outputs.

The server runs against the fault server with a made-up backend key and a made-up key of its
own. Answers (whole and streamed), refusals (a wrong key, no key), a backend error, the metrics
and the server's whole log are searched for both keys; the fault server confirms the backend
key was sent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from integration.fault_server import FaultServer

from hag_agent.dev.server_process import ServerProcess, free_port, start_server

from .figures import FIGURES

SERVER_KEY = "hag-serve-key-5d1e8a7c3b9f40e2a6c1"
BACKEND_KEY = "sk-hagbackend-0c9b8a7f6e5d4c3b2a19"
BODY = {"model": "tiny", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}


def assert_no_key(where: str, text: str) -> None:
    for key in (SERVER_KEY, BACKEND_KEY):
        for part in (key, key[-16:]):
            assert part not in text, f"{where} shows a key ({part!r})"
    FIGURES["secrets, hag-agent serve"]["outputs searched"] += 1


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, FaultServer, Path]]:
    fault = FaultServer().start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAG_", "OPENAI_"))}
    env.update(
        HAG_SERVER_API_KEYS=SERVER_KEY,
        HAG_API_KEY=BACKEND_KEY,
        HAG_BASE_URL=fault.base_url,
        HAG_MODEL="tiny",
        HAG_MAX_TRIES="1",
    )
    command = [sys.executable, "-m", "hag_agent.cli", "serve", "--port", str(port)]
    log = tmp_path / "serve.log"
    server = start_server(
        [*command, "--backend", "vllm", "--proposer", "self"],
        port=port,
        health_path="/health",
        deadline=60,
        log_path=log,
        env=env,
    )
    yield server, fault, log
    server.stop()
    fault.stop()


def test_serve_never_shows_a_key(served: tuple[ServerProcess, FaultServer, Path]) -> None:
    server, fault, log = served
    root = server.base_url.removesuffix("/v1")
    auth = {"authorization": f"Bearer {SERVER_KEY}"}
    with httpx.Client(base_url=root, timeout=60) as client:
        answered = client.post("/v1/chat/completions", json=BODY, headers=auth)
        assert answered.status_code == 200, answered.text
        streamed = client.post("/v1/chat/completions", json={**BODY, "stream": True}, headers=auth)
        assert streamed.status_code == 200
        wrong = client.post(
            "/v1/chat/completions", json=BODY, headers={"authorization": "Bearer wrong-key-0000"}
        )
        missing = client.post("/v1/chat/completions", json=BODY)
        assert wrong.status_code == missing.status_code == 401
        fault.reset(["400"])
        failed = client.post("/v1/chat/completions", json=BODY, headers=auth)
        assert failed.status_code >= 400
        metrics = client.get("/metrics", headers=auth)
    assert any(r.headers.get("authorization") == f"Bearer {BACKEND_KEY}" for r in fault.requests)
    for where, response in [
        ("an answer", answered),
        ("a streamed answer", streamed),
        ("the refusal of a wrong key", wrong),
        ("the refusal of no key", missing),
        ("a backend error", failed),
        ("the metrics", metrics),
    ]:
        assert_no_key(where, f"{response.headers}\n{response.text}")
    server.stop()
    assert_no_key("the server's log", log.read_text(encoding="utf-8", errors="replace"))
