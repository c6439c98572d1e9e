"""``hag-agent serve`` in front of a faulty backend, and killed (SIGKILL) mid-request.

The server runs against the fault server with a short timeout and deadline. Every fault of
`test_transport_faults`, for good, for a whole answer and a streamed one: a whole answer must
be an HTTP error in OpenAI's format (502, 503 or 504) naming the cause, a stream must end with
an ``error`` event naming it, and whatever text a stream sent before must be a start of the
answer. Once, each fault must be retried into a whole, correct answer where
`test_transport_faults` says a streamed answer recovers: the server streams from its backend
for whole answers too, so a reset or a cut half way through the backend's answer is a 503
there as well, not retried. The requests run concurrently.

Then the server is killed with SIGKILL while a request waits on a slow backend: the client must
get a clean connection error (httpx's typed one), and a server started again on the same port
must answer.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from integration.fault_server import FaultServer, fault_tag

from hag_agent.dev.server_process import ServerProcess, free_port, start_server

from .figures import FIGURES
from .test_transport_faults import DEADLINE, FAULTS, REPLY, SLACK, TIMEOUT, Fault

STATUSES = {502, 503, 504}
SERVE_SLACK = SLACK + 1.5
"""The server's own share past the deadline, eight requests at once in one busy process."""


def start_serve(fault: FaultServer, port: int, log: Path) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAG_", "OPENAI_"))}
    env.update(
        HAG_BASE_URL=fault.base_url,
        HAG_MODEL="tiny",
        HAG_TIMEOUT=str(TIMEOUT),
        HAG_MAX_TRIES="3",
        HAG_DEADLINE=str(DEADLINE),
    )
    command = [sys.executable, "-m", "hag_agent.cli", "serve", "--port", str(port)]
    options = ["--backend", "vllm", "--proposer", "prior", "--no-critique"]
    return start_server(
        [*command, *options, "--max-concurrency", "64"],
        port=port,
        health_path="/health",
        deadline=90,
        log_path=log,
        env=env,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, FaultServer]]:
    fault = FaultServer(slow_seconds=3.0, trickle_seconds=0.2).start()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    server = start_serve(fault, free_port(), log)
    yield server, fault
    server.stop()
    fault.stop()


def ask(base_url: str, prompt: str, stream: bool) -> tuple[httpx.Response, str, float]:
    """One request; the response, the text it streamed (or answered), and its time."""
    body = {"model": "tiny", "messages": [{"role": "user", "content": prompt}], "stream": stream}
    start = time.monotonic()
    with httpx.Client(timeout=60) as client:
        response = client.post(f"{base_url}/v1/chat/completions", json=body)
    seconds = time.monotonic() - start
    if not stream or response.status_code != 200:
        text = response.json()["choices"][0]["message"]["content"] if response.is_success else ""
        return response, text, seconds
    events = [
        json.loads(line[6:])
        for line in response.text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
    text = "".join(
        choice["delta"].get("content") or ""
        for event in events
        for choice in event.get("choices", [])
    )
    return response, text, seconds


def error_message(response: httpx.Response) -> str:
    """The error the response carries: a stream's ``error`` event's, or its body's."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [
            json.loads(line[6:]) for line in response.text.splitlines() if line[:7] == "data: {"
        ]
        return next((str(e["error"]["message"]) for e in events if "error" in e), "")
    return str(response.json()["error"]["message"]) if response.status_code >= 400 else ""


def check(fault: Fault, stream: bool, once: bool, result: tuple[httpx.Response, str, float]) -> str:
    response, text, seconds = result
    case = (fault.name, stream, once, response.status_code, response.text[-600:])
    assert seconds <= DEADLINE + SERVE_SLACK, (case, seconds)
    assert REPLY.startswith(text.strip()), case  # no piece twice, none from elsewhere
    answered = response.status_code == 200 and not error_message(response)
    assert answered or not (once and fault.stream_recovers), case  # the server streams upstream
    if once and answered:
        assert text.strip() == REPLY, case
        assert "data: [DONE]" in response.text if stream else True, case
        # the second: the fault never reached the call as such (see test_transport_faults)
        return (
            "recovered" if fault.stream_recovers else "recovered, the fault came before any answer"
        )
    if not stream:
        assert response.status_code in STATUSES, case
    else:
        assert response.status_code == 200 and "data: [DONE]" not in response.text, case
    assert re.search(fault.cause, error_message(response)), case
    return "typed errors"


def test_every_fault_behind_serve_ends_in_an_answer_or_a_named_error(
    served: tuple[ServerProcess, FaultServer],
) -> None:
    server, _ = served
    tally = FIGURES["transport faults, hag-agent serve"]
    planned = [
        (fault, stream, once)
        for fault in FAULTS
        for stream in (False, True)
        for once in (True, False)
    ]

    def run(plan: tuple[Fault, bool, bool]) -> tuple[httpx.Response, str, float]:
        fault, stream, once = plan
        tag = fault_tag(fault.name, f"serve.{fault.name}.{stream}.{once}", 1 if once else None)
        return ask(server.base_url, f"What is 2 + 2? {tag}", stream)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for plan, result in zip(planned, pool.map(run, planned), strict=True):
            tally["faults injected"] += 1
            tally[check(*plan, result)] += 1
            tally["slowest, ms"] = max(tally["slowest, ms"], int(result[2] * 1000))
    tally["deadline, ms"] = int(DEADLINE * 1000)


def waiting(base_url: str, prompt: str, stream: bool, caught: list[BaseException]) -> None:
    """Ask, keeping the error a killed server gives the client."""
    try:
        ask(base_url, prompt, stream)
    except httpx.HTTPError as exc:  # what a client should get: a typed error
        caught.append(exc)


def test_serve_killed_mid_request_fails_cleanly_and_starts_again(tmp_path: Path) -> None:
    tally = FIGURES["crashes, hag-agent serve (kill -9 mid-request)"]
    fault = FaultServer(slow_seconds=30.0).start()
    port = free_port()
    server = start_serve(fault, port, tmp_path / "serve.log")
    try:
        for stream in (False, True):
            caught: list[BaseException] = []
            prompt = f"Slow, please {fault_tag('slow', f'kill{stream}')}"
            client = threading.Thread(
                target=waiting, args=(server.base_url, prompt, stream, caught)
            )
            client.start()
            while not any(f"kill{stream}" in json.dumps(r.body) for r in fault.requests):
                time.sleep(0.05)  # the request reached the backend: the server is mid-request
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
            client.join(timeout=30)
            assert not client.is_alive()
            assert len(caught) == 1, "the client got no error from a killed server"
            assert isinstance(caught[0], httpx.RemoteProtocolError | httpx.ReadError), caught
            tally["kills"] += 1
            tally["clean connection errors"] += 1
            server = start_serve(fault, port, tmp_path / "serve.log")
            response, text, _ = ask(server.base_url, "What is 2 + 2?", stream)
            assert response.status_code == 200 and text.strip() == REPLY
            tally["restarts that answered"] += 1
    finally:
        server.stop()
        fault.stop()
