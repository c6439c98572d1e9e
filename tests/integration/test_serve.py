"""``hag-agent serve`` as a real process on 127.0.0.1, driven by the official OpenAI client
and LangChain's ChatOpenAI: in front of the embedded model, and in front of the fault server."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_openai import ChatOpenAI

from hag_agent.dev.server_process import ServerProcess, free_port, start_server

from .fault_server import FaultServer

QUIET = {"HAG_N_THREADS": "1", "HAG_N_THREADS_BATCH": "1"}
PROMPT = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
KEY = "test-key-1234"
LONG = "Write a long story."
"""With `UNBOUNDED` sampling, an answer that takes the small model minutes (a client leaves it)."""
UNBOUNDED = {"temperature": 2.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}
"""Sampling from the whole vocabulary: the end token is rarely drawn, and each token is slow."""


def serve(
    tmp: Path, *args: str, env: dict[str, str] | None = None, health_path: str = "/ready"
) -> ServerProcess:
    port = free_port()
    script = Path(sys.executable).with_name("hag-agent")
    command = [str(script), "serve", "--port", str(port), "--log-level", "info", *args]
    return start_server(
        command,
        port=port,
        health_path=health_path,
        deadline=120,
        log_path=tmp / "serve.log",
        env={**QUIET, **(env or {})},
    )


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = serve(tmp_path_factory.mktemp("serve"), "--api-key", KEY)
    yield server
    server.stop()


def metric(server: ServerProcess, line: str) -> float:
    """The value of one line of the server's Prometheus metrics (0 when absent)."""
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = [row for row in text.splitlines() if row.startswith(line + " ")]
    return float(found[0].removeprefix(line + " ")) if found else 0.0


def until_in_flight(server: ServerProcess) -> None:
    """Wait (30 s at most) until a request is in flight: a loaded machine may be slow to send it."""
    deadline = time.monotonic() + 30
    while metric(server, "hag_requests_in_flight") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)


def clients_gone(server: ServerProcess) -> float:
    """How many chat requests the server recorded as abandoned by their client."""
    return metric(server, 'hag_requests_total{endpoint="chat_completions",status="499"}')


def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=KEY, max_retries=0)


def test_openai_client_whole_answer(embedded_server: ServerProcess) -> None:
    raw = client(embedded_server).chat.completions.with_raw_response.create(
        model="hag-agent",
        messages=PROMPT,  # type: ignore[arg-type]
        max_tokens=32,
        seed=1,
        extra_body={"hag": {"max_retries": 1}},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    hag = completion.model_extra["hag"]  # type: ignore[index]
    assert hag["params"]["max_tokens"] == {"value": 32, "source": "client"}
    assert 1 <= len(hag["attempts"]) <= 2
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-hag-task"] == hag["task"]


def test_openai_client_streams_the_chosen_attempt(embedded_server: ServerProcess) -> None:
    raw = client(embedded_server).chat.completions.with_raw_response.create(
        model="hag-agent",
        messages=PROMPT,  # type: ignore[arg-type]
        max_tokens=32,
        seed=1,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    pieces = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert text and len(pieces) > 1  # token by token, not one final lump
    last = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    hag = last.model_extra["hag"]  # type: ignore[index]
    assert hag["stream"] == "chosen" == raw.headers["x-hag-stream"]
    # The headers, sent before the first token, say what the proposal decided.
    assert raw.headers["x-hag-task"] == hag["task"]
    assert raw.headers["x-hag-proposer"] == hag["proposer"]
    assert json.loads(raw.headers["x-hag-proposed-params"]) == hag["attempts"][0]["params"]
    assert json.loads(raw.headers["x-hag-param-sources"])["max_tokens"] == "client"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    # The same request, whole: the streamed text is the answer the run chose.
    whole = client(embedded_server).chat.completions.create(
        model="hag-agent",
        messages=PROMPT,
        max_tokens=32,
        seed=1,  # type: ignore[arg-type]
    )
    assert whole.choices[0].message.content == text


def test_async_client_and_a_refusal(embedded_server: ServerProcess) -> None:
    async def go() -> str:
        async with openai.AsyncOpenAI(
            base_url=f"{embedded_server.base_url}/v1", api_key=KEY, max_retries=0
        ) as aclient:
            with pytest.raises(openai.BadRequestError) as refused:
                await aclient.chat.completions.create(
                    model="hag-agent",
                    messages=PROMPT,
                    n=2,  # type: ignore[arg-type]
                )
            assert "n=2" in refused.value.message
            completion = await aclient.chat.completions.create(
                model="hag-agent",
                messages=PROMPT,  # type: ignore[arg-type]
                max_tokens=24,
                extra_body={"hag": {"critique": False}},
            )
            return completion.choices[0].message.content or ""

    assert asyncio.run(go())


def test_wrong_key_is_refused(embedded_server: ServerProcess) -> None:
    bad = openai.OpenAI(base_url=f"{embedded_server.base_url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        bad.models.list()
    assert KEY not in str(refused.value) and "nope" not in str(refused.value)
    assert [m.id for m in client(embedded_server).models.list()] == ["hag-agent"]
    assert KEY not in embedded_server.log_tail(1_000_000)


def test_langchain_chat_openai_invoke_and_stream(embedded_server: ServerProcess) -> None:
    model = ChatOpenAI(
        model="hag-agent",
        base_url=f"{embedded_server.base_url}/v1",
        api_key=KEY,  # type: ignore[arg-type]
        max_retries=0,
        max_tokens=24,
        extra_body={"hag": {"critique": False}},
    )
    messages = [("system", "You are terse."), ("user", "Name a colour.")]
    answer = model.invoke(messages)
    assert answer.text and answer.usage_metadata and answer.usage_metadata["output_tokens"] > 0
    pieces = [chunk.text for chunk in model.stream(messages)]
    assert "".join(pieces) and len([p for p in pieces if p]) > 1


def leave_then_ask(server: ServerProcess, leave: Callable[[dict[str, Any]], None]) -> None:
    """``leave`` starts a long generation and drops its client; the model must be free again.

    The next request is answered in seconds (the long one would hold the model for minutes),
    and the server counted one request whose client went away.
    """
    long_body = {
        "model": "hag-agent",
        "messages": [{"role": "user", "content": LONG}],
        "max_tokens": 1500,
        "seed": 1,
        "hag": {"critique": False, "params": UNBOUNDED},
    }
    gone_before = clients_gone(server)
    leave(long_body)
    start = time.monotonic()
    short = (
        client(server)
        .with_options(timeout=20)
        .chat.completions.create(
            model="hag-agent",
            messages=PROMPT,  # type: ignore[arg-type]
            max_tokens=8,
            extra_body={"hag": {"critique": False}},
        )
    )
    assert short.choices[0].message.content
    # 1500 tokens take minutes here; a short answer after a freed engine takes seconds.
    assert time.monotonic() - start < 15
    assert clients_gone(server) == gone_before + 1


def test_a_client_that_leaves_frees_the_model(embedded_server: ServerProcess) -> None:
    """A stream closed early stops its generation: the next request does not wait for it."""

    def read_a_little_then_leave(body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{embedded_server.base_url}/v1/chat/completions",
            data=json.dumps({**body, "stream": True}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            seen = 0
            for line in response:
                seen += line.startswith(b"data: ")
                if seen >= 4:
                    break

    leave_then_ask(embedded_server, read_a_little_then_leave)


def test_a_whole_answer_whose_client_left_frees_the_model(embedded_server: ServerProcess) -> None:
    """A client that gives up on a whole (not streamed) answer cancels its generation too."""
    import http.client

    def give_up_waiting(body: dict[str, Any]) -> None:
        host, port = embedded_server.base_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=2)
        connection.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
        )
        with pytest.raises(TimeoutError):
            answer = connection.getresponse()  # 1500 tokens take minutes: gone before it
            raise AssertionError(f"answered {answer.status}: {answer.read()[:300]!r}")
        connection.close()

    leave_then_ask(embedded_server, give_up_waiting)


def test_sigterm_drains_a_request_in_flight(tmp_path: Path) -> None:
    server = serve(tmp_path, "--no-critique")
    try:
        results: list[str] = []

        def ask() -> None:
            completion = openai.OpenAI(
                base_url=f"{server.base_url}/v1", api_key="none", max_retries=0
            ).chat.completions.create(
                model="hag-agent",
                messages=PROMPT,
                max_tokens=24,  # type: ignore[arg-type]
            )
            results.append(completion.choices[0].message.content or "")

        worker = threading.Thread(target=ask)
        worker.start()
        until_in_flight(server)
        server.process.send_signal(signal.SIGTERM)
        worker.join(60)
        assert results and results[0]
        # uvicorn exits by the signal it caught, once every request is answered.
        assert server.process.wait(30) in (0, -signal.SIGTERM)
        assert "Finished server process" in server.log_tail()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [("500", 502), ("drop", 503), ("slow", 504), ("429", 503)],
)
def test_upstream_faults_get_gateway_statuses(
    fault_server: FaultServer, tmp_path: Path, behaviour: str, status: int
) -> None:
    fault_server.slow_seconds = 3.0
    server = serve(
        tmp_path,
        "--base-url",
        fault_server.base_url,
        "--model",
        "m",
        env={"HAG_TIMEOUT": "1", "HAG_MAX_TRIES": "2", "HAG_DEADLINE": "4"},
        health_path="/health",  # the fault server answers no model list
    )
    try:
        fault_server.reset([behaviour])
        request = urllib.request.Request(
            f"{server.base_url}/v1/chat/completions",
            data=json.dumps({"model": "m", "messages": PROMPT}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(request, timeout=60)
        assert failed.value.code == status
        error = json.loads(failed.value.read())["error"]
        assert "the model backend failed" in error["message"]
    finally:
        server.stop()


def processes_in(server: ServerProcess) -> int:
    """How many live processes the server's process group has."""
    count = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        count += int(fields[2]) == server.process.pid and fields[0] != "Z"
    return count


def test_workers_add_up_their_metrics_and_drain(fault_server: FaultServer, tmp_path: Path) -> None:
    """With --workers 2, /metrics tells the totals of both, whichever answers; SIGTERM ends both."""
    server = serve(
        tmp_path,
        "--workers",
        "2",
        "--base-url",
        fault_server.base_url,
        "--model",
        "m",
        health_path="/health",
    )
    try:
        assert processes_in(server) >= 3  # the supervisor and its two workers
        fault_server.reset(["ok"])
        body = json.dumps({"model": "m", "messages": PROMPT, "hag": {"max_retries": 0}}).encode()

        def ask() -> str:
            request = urllib.request.Request(
                f"{server.base_url}/v1/chat/completions",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                return str(json.loads(response.read())["choices"][0]["message"]["content"])

        for _ in range(12):  # new connections: the two workers take them as they come
            assert ask()
        line = 'hag_requests_total{endpoint="chat_completions",status="200"}'
        assert {metric(server, line) for _ in range(12)} == {12.0}
        # SIGTERM with a request in flight: its worker finishes it, then both exit.
        fault_server.slow_seconds = 2.0
        fault_server.reset(["slow"])
        answers: list[str] = []
        worker = threading.Thread(target=lambda: answers.append(ask()))
        worker.start()
        until_in_flight(server)
        server.process.send_signal(signal.SIGTERM)
        worker.join(60)
        assert [a.strip() for a in answers] == [fault_server.reply_text]
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        server.stop()


def test_only_a_stream_streams_from_the_upstream(fault_server: FaultServer, tmp_path: Path) -> None:
    """A whole answer's tokens are read by nobody: its upstream call is not streamed (cheaper,
    and closing the request still stops it); a stream's is."""
    server = serve(
        tmp_path, "--base-url", fault_server.base_url, "--model", "m", health_path="/health"
    )
    try:
        hag = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0)
        once = {"model": "m", "messages": PROMPT, "extra_body": {"hag": {"max_retries": 0}}}
        fault_server.reset(["ok"])
        whole = hag.chat.completions.create(**once)  # type: ignore[call-overload]
        assert (whole.choices[0].message.content or "").strip() == fault_server.reply_text
        (call,) = fault_server.requests
        assert not call.body.get("stream")
        fault_server.reset(["ok"])
        chunks = list(hag.chat.completions.create(**once, stream=True))  # type: ignore[call-overload]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip() == fault_server.reply_text
        (call,) = fault_server.requests
        assert call.body.get("stream") is True
    finally:
        server.stop()


def test_serve_help_and_bad_settings() -> None:
    script = Path(sys.executable).with_name("hag-agent")
    done = subprocess.run([str(script), "serve", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--max-concurrency" in done.stdout
    bad = subprocess.run(
        [str(script), "serve", "--max-concurrency", "0"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "max_concurrency" in bad.stderr


def test_passthrough_forwards_what_hag_cannot_honour(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    server = serve(
        tmp_path,
        "--base-url",
        fault_server.base_url,
        "--model",
        "m",
        "--model-name",
        "hag",
        "--passthrough",
        health_path="/health",
    )
    try:
        fault_server.reset(["ok"])
        tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        raw = openai.OpenAI(
            base_url=f"{server.base_url}/v1", api_key="none", max_retries=0
        ).chat.completions.with_raw_response.create(
            model="hag",
            messages=PROMPT,  # type: ignore[arg-type]
            tools=tools,  # type: ignore[arg-type]
            extra_body={"hag": {"max_retries": 0}},
        )
        assert raw.headers["x-hag-applied"] == "false"
        assert raw.headers["x-hag-passthrough"] == "tools"
        assert raw.parse().choices[0].message.content == fault_server.reply_text
        (forwarded,) = fault_server.requests
        assert forwarded.body["tools"] == tools and forwarded.body["model"] == "m"
        assert "hag" not in forwarded.body
        fault_server.reset(["ok"])
        stream = openai.OpenAI(
            base_url=f"{server.base_url}/v1", api_key="none", max_retries=0
        ).chat.completions.create(
            model="hag",
            messages=PROMPT,  # type: ignore[arg-type]
            n=2,
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.strip() == fault_server.reply_text
    finally:
        server.stop()


def test_in_front_of_llamacpp_server(llamacpp_server: ServerProcess, tmp_path: Path) -> None:
    """A real OpenAI-compatible upstream: ready when it lists its models, answers streamed."""
    server = serve(
        tmp_path,
        "--backend",
        "llamacpp-server",
        "--base-url",
        f"{llamacpp_server.base_url}/v1",
        "--model",
        "smollm2",
        env={"HAG_TIMEOUT": "120", "HAG_DEADLINE": "240"},
    )
    try:
        hag = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0)
        assert [m.id for m in hag.models.list()] == ["smollm2"]
        whole = hag.chat.completions.create(
            model="smollm2",
            messages=PROMPT,  # type: ignore[arg-type]
            max_tokens=24,
            seed=3,
            extra_body={"hag": {"max_retries": 0}},
        )
        assert whole.choices[0].message.content
        assert whole.model_extra["hag"]["params"]["max_tokens"]["value"] == 24  # type: ignore[index]
        stream = hag.chat.completions.create(
            model="smollm2",
            messages=PROMPT,  # type: ignore[arg-type]
            max_tokens=24,
            seed=3,
            stream=True,
            extra_body={"hag": {"max_retries": 0}},
        )
        chunks = list(stream)
        pieces = [
            c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
        ]
        assert len(pieces) > 1 and chunks[-1].model_extra["hag"]["stream"] == "live"  # type: ignore[index]
    finally:
        server.stop()


def test_in_front_of_vllm(vllm_server: ServerProcess, tmp_path: Path) -> None:
    """The mission's production shape: HAG served in front of a vLLM endpoint, the `self`
    proposer deciding on vLLM, the openai client and ChatOpenAI on the other side."""
    server = serve(
        tmp_path,
        "--base-url",
        f"{vllm_server.base_url}/v1",
        "--model",
        "tiny",
        "--proposer",
        "self",
        env={"HAG_TIMEOUT": "120", "HAG_DEADLINE": "240"},
    )
    try:
        hag = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0)
        assert [m.id for m in hag.models.list()] == ["tiny"]
        raw = hag.chat.completions.with_raw_response.create(
            model="tiny",
            messages=[
                {"role": "system", "content": "You answer briefly."},
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "Another one?"},
            ],
            max_tokens=12,
            seed=4,
            extra_body={"hag": {"max_retries": 0}},
        )
        whole = raw.parse()
        meta = whole.model_extra["hag"]  # type: ignore[index]
        # The proposal ran on vLLM (the random model's values are bounded or fall back), and
        # the client's max_tokens was pinned over it.
        assert meta["proposer"] == "self"
        assert meta["params"]["max_tokens"] == {"value": 12, "source": "client"}
        assert whole.usage is not None and whole.usage.completion_tokens > 0
        assert whole.usage.total_tokens > whole.usage.completion_tokens
        assert raw.headers["x-hag-task"] == meta["task"]
        chat = ChatOpenAI(
            base_url=f"{server.base_url}/v1", api_key="none", model="tiny", max_retries=0
        )
        pieces = [
            chunk.content
            for chunk in chat.stream(
                "Say something.", max_tokens=12, extra_body={"hag": {"max_retries": 0}}
            )
            if chunk.content
        ]
        assert len(pieces) > 1  # streamed token by token, not one lump at the end
    finally:
        server.stop()
