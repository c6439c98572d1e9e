"""The OpenAI-compatible server over a scripted model, in process (no sockets)."""

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hag_agent.errors import BackendError, BackendTimeoutError, BackendUnavailableError
from hag_agent.serve.admission import Admission, SlotStream
from hag_agent.serve.api_errors import APIError
from hag_agent.serve.app import create_app
from hag_agent.serve.auth import check_bearer
from hag_agent.serve.completions import ClientGone, until_disconnect
from hag_agent.serve.settings import ServerSettings
from hag_agent.testing import Reply, ScriptedChatModel

GOOD = "The sea is calm and blue today."
BAD = "REJECTED " * 40
USER = [{"role": "user", "content": "Say something about the sea"}]


def client(
    model: ScriptedChatModel | None = None, **settings: Any
) -> tuple[TestClient, ScriptedChatModel]:
    model = model or ScriptedChatModel(script={"generate": [GOOD]})
    run = {"proposer": "prior", **settings.pop("run_settings", {})}
    app = create_app(ServerSettings(run_settings=run, **settings), model=model)
    return TestClient(app), model


def chat(c: TestClient, **body: Any) -> httpx.Response:
    return c.post("/v1/chat/completions", json={"model": "hag-agent", "messages": USER, **body})


def events(response: httpx.Response) -> list[Any]:
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in data]


def streamed_text(response: httpx.Response) -> str:
    chunks = [e for e in events(response) if isinstance(e, dict) and e.get("choices")]
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in chunks)


# -- answers --------------------------------------------------------------------------------


def test_whole_completion_has_the_answer_the_hag_object_and_headers() -> None:
    c, _ = client()
    r = chat(c)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": GOOD}
    assert body["choices"][0]["finish_reason"] == "stop"
    hag = body["hag"]
    assert hag["task"] == r.headers["x-hag-task"]
    assert hag["params"]["temperature"]["source"] == "prior"
    assert hag["attempts"][0]["critique"]["verdict"] == "accept"
    assert (
        json.loads(r.headers["x-hag-params"])["max_tokens"] == hag["params"]["max_tokens"]["value"]
    )
    assert r.headers["x-hag-attempts"] == "1" and r.headers["x-hag-stop-reason"].startswith(
        "accepted"
    )


def test_a_rejected_attempt_is_never_sent_and_usage_counts_every_attempt() -> None:
    model = ScriptedChatModel(script={"generate": [BAD, GOOD]})
    c, _ = client(model)
    whole = chat(c).json()
    assert whole["choices"][0]["message"]["content"] == GOOD
    assert [a["critique"]["verdict"] for a in whole["hag"]["attempts"]] == ["retry", "accept"]
    # The scripted model reports 10 prompt tokens and one per word, for each attempt.
    assert whole["usage"]["prompt_tokens"] == 20
    assert whole["usage"]["completion_tokens"] == 40 + len(GOOD.split())
    assert "REJECTED" not in json.dumps(whole)

    c, _ = client(ScriptedChatModel(script={"generate": [BAD, GOOD]}))
    r = chat(c, stream=True)
    assert r.headers["x-hag-stream"] == "chosen"
    assert streamed_text(r) == GOOD and "REJECTED" not in r.text
    pieces = [
        e
        for e in events(r)
        if isinstance(e, dict) and e["choices"] and e["choices"][0]["delta"].get("content")
    ]
    assert len(pieces) == len(GOOD.split())  # token by token, as generated


def test_stream_is_live_when_one_attempt_is_all_there_can_be() -> None:
    c, _ = client(run_settings={"critique": False})
    r = chat(c, stream=True, stream_options={"include_usage": True})
    assert r.headers["x-hag-stream"] == "live"
    all_events = events(r)
    assert all_events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all_events[-1] == "[DONE]"
    usage_chunk = all_events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0
    last = all_events[-3]
    assert last["choices"][0]["finish_reason"] == "stop" and last["hag"]["stream"] == "live"
    assert streamed_text(r) == GOOD


def test_a_stream_sends_the_proposal_in_its_headers() -> None:
    c, _ = client(run_settings={"critique": False})
    r = chat(c, stream=True, temperature=0.2)
    hag = events(r)[-2]["hag"]
    assert r.headers["x-hag-task"] == hag["task"]
    assert r.headers["x-hag-proposer"] == hag["proposer"] == "prior"
    # One attempt possible: the proposed configuration is the answer's.
    proposed = json.loads(r.headers["x-hag-proposed-params"])
    assert proposed == {key: entry["value"] for key, entry in hag["params"].items()}
    sources = json.loads(r.headers["x-hag-param-sources"])
    assert sources == {key: entry["source"] for key, entry in hag["params"].items()}
    assert sources["temperature"] == "client"

    c, _ = client(ScriptedChatModel(script={"generate": [BAD, GOOD]}))
    r = chat(c, stream=True)
    hag = events(r)[-2]["hag"]
    # With retries, the headers say what was proposed; the last chunk what was chosen.
    assert json.loads(r.headers["x-hag-proposed-params"]) == hag["attempts"][0]["params"]
    assert hag["attempts"][1]["params"] == {k: v["value"] for k, v in hag["params"].items()}
    assert hag["attempts"][0]["params"] != hag["attempts"][1]["params"]


def test_per_request_hag_options_reach_the_run() -> None:
    c, _ = client(ScriptedChatModel(script={"generate": [BAD, GOOD]}))
    body = chat(c, hag={"max_retries": 0, "task": "creative"}).json()
    assert body["hag"]["task"] == "creative" and len(body["hag"]["attempts"]) == 1
    assert body["hag"]["stop_reason"].startswith("retries exhausted")


def test_client_sampling_values_are_pinned_and_hag_params_win() -> None:
    c, model = client()
    body = chat(c, temperature=0.2, max_completion_tokens=50, hag={"params": {"top_p": 0.5}}).json()
    params = body["hag"]["params"]
    assert params["temperature"] == {"value": 0.2, "source": "client"}
    assert params["max_tokens"] == {"value": 50, "source": "client"}
    assert params["top_p"] == {"value": 0.5, "source": "pinned"}
    sent = model.calls_for("generate")[0].kwargs
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 50 and sent["top_p"] == 0.5


def test_ignore_policy_ignores_client_values_and_says_so() -> None:
    c, model = client(client_params="ignore")
    r = chat(c, temperature=0.2)
    assert r.json()["hag"]["ignored_client_params"] == ["temperature"]
    assert r.headers["x-hag-ignored-params"] == "temperature"
    assert model.calls_for("generate")[0].kwargs["temperature"] != 0.2


def test_conversation_goes_to_the_graph_as_it_is() -> None:
    c, model = client()
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Say something about the sea"}]},
    ]
    assert (
        c.post(
            "/v1/chat/completions", json={"model": "hag-agent", "messages": messages}
        ).status_code
        == 200
    )
    sent = model.calls_for("generate")[0].messages
    assert [m.type for m in sent] == ["system", "human", "ai", "human"]
    assert sent[0].text == "Be brief." and sent[-1].text == "Say something about the sea"


def test_usage_counts_the_judge() -> None:
    judge = '{"score": 9, "issues": [], "direction": "none"}'
    c, _ = client(
        ScriptedChatModel(script={"generate": [GOOD], "judge": [judge]}),
        run_settings={"critic": "judge"},
    )
    body = chat(c).json()
    decisions = body["hag"]["usage"]["decisions"]
    assert decisions["judge"]["calls"] == 1
    generated = body["hag"]["usage"]["attempts"][0]
    assert (
        body["usage"]["prompt_tokens"]
        == generated["prompt_tokens"] + decisions["judge"]["prompt_tokens"]
    )


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"stop": ["\n"]}, "stop"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": 10, "max_completion_tokens": 20}, "max_completion_tokens"),
        ({"hag": {"bogus": 1}}, "hag.bogus"),
        ({"hag": {"proposer": "nobody"}}, "hag.proposer"),
        ({"hag": {"max_retries": 99}}, "hag.max_retries"),
        ({"hag": {"params": {"top_p": 7}}}, "hag.params.top_p"),
        ({"frobnicate": True}, "frobnicate"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}, *USER]},
            "messages[0].role",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        ({"messages": []}, "messages"),
    ],
)
def test_what_hag_cannot_honour_is_a_400_naming_the_field(
    extra: dict[str, Any], param: str
) -> None:
    c, model = client()
    r = chat(c, **extra)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert not model.calls_for("generate")


def test_neutral_values_of_unapplied_fields_are_accepted() -> None:
    c, _ = client()
    r = chat(
        c,
        n=1,
        logprobs=False,
        presence_penalty=0,
        tools=[],
        response_format={"type": "text"},
        user="u1",
    )
    assert r.status_code == 200


def test_unknown_model_is_404_and_models_lists_the_served_ones() -> None:
    c, _ = client(other_models=("other",))
    assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["hag-agent", "other"]
    r = c.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_prompt_over_max_prompt_chars_is_400_before_any_call() -> None:
    c, model = client(run_settings={"max_prompt_chars": 10})
    r = chat(c, stream=True)
    assert r.status_code == 400 and r.json()["error"]["code"] == "prompt_too_long"
    assert not model.calls


# -- guards ---------------------------------------------------------------------------------


def test_api_keys_are_required_and_never_echoed() -> None:
    c, _ = client(api_keys=("s3cret-key", "other-key"))
    r = chat(c)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    wrong = c.post(
        "/v1/chat/completions",
        json={"model": "hag-agent", "messages": USER},
        headers={"Authorization": "Bearer s3cret-kez"},
    )
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    ok = c.post(
        "/v1/chat/completions",
        json={"model": "hag-agent", "messages": USER},
        headers={"Authorization": "Bearer other-key"},
    )
    assert ok.status_code == 200
    assert c.get("/health").status_code == 200  # service routes stay open


def test_check_bearer() -> None:
    check_bearer(None, [])
    check_bearer("Bearer k", [b"k"])
    for given in (None, "k", "Basic k", "Bearer kk", "Bearer "):
        with pytest.raises(APIError) as caught:
            check_bearer(given, [b"k"])
        assert caught.value.status == 401


def test_body_over_the_limit_is_413() -> None:
    c, model = client(max_body_bytes=2048)
    big = [{"role": "user", "content": "x" * 5000}]
    r = c.post("/v1/chat/completions", json={"model": "hag-agent", "messages": big})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunked() -> Any:
        yield json.dumps({"model": "hag-agent", "messages": big}).encode()

    r = c.post(
        "/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert not model.calls


def test_admission_refuses_past_the_limit() -> None:
    admission = Admission(limit=1, retry_after_s=3)
    admission.enter()
    with pytest.raises(APIError) as caught:
        admission.enter()
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "3"
    admission.leave()
    admission.enter()


async def test_more_requests_than_max_concurrency_get_429() -> None:
    release = threading.Event()

    def slow(messages: Any, kwargs: Any) -> str:
        release.wait(10)
        return GOOD

    model = ScriptedChatModel(script={"generate": [slow]})
    app = create_app(
        ServerSettings(run_settings={"proposer": "prior"}, max_concurrency=1), model=model
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        body = {"model": "hag-agent", "messages": USER}
        first = asyncio.create_task(http.post("/v1/chat/completions", json=body))
        while not model.calls:
            await asyncio.sleep(0.01)
        second = await http.post("/v1/chat/completions", json=body)
        assert second.status_code == 429 and second.headers["retry-after"] == "1"
        release.set()
        assert (await first).status_code == 200
        assert (await http.post("/v1/chat/completions", json=body)).status_code == 200


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BackendTimeoutError("upstream timed out"), 504),
        (BackendUnavailableError("upstream refused"), 503),
        (BackendError("upstream busy", status=429), 503),
        (BackendError("upstream broke", status=500, body="boom"), 502),
    ],
)
def test_backend_failures_map_to_gateway_statuses(error: BackendError, status: int) -> None:
    c, _ = client(ScriptedChatModel(script={"generate": [Reply("", error=error)]}))
    r = chat(c)
    assert r.status_code == status
    assert "the model backend failed" in r.json()["error"]["message"]
    streamed = chat(c, stream=True)
    assert streamed.status_code == 200  # the stream had started: its last event is the error
    last = events(streamed)[-1]
    assert "error" in last and "the model backend failed" in last["error"]["message"]


async def test_a_client_that_leaves_cancels_the_work() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    class Gone:
        async def is_disconnected(self) -> bool:
            return True

    with pytest.raises(ClientGone):
        await until_disconnect(Gone(), forever())  # type: ignore[arg-type]
    assert cancelled.is_set()


# -- service routes -------------------------------------------------------------------------


def test_health_ready_metrics_and_schema() -> None:
    c, _ = client()
    with c:  # runs the lifespan: the readiness probe starts
        assert c.get("/health").json() == {"status": "ok"}
        chat(c, temperature=0.3)
        chat(c, n=3)
        for _ in range(50):
            ready = c.get("/ready")
            if ready.status_code == 200:
                break
        assert ready.json()["ready"] is True
        text = c.get("/metrics").text
    assert 'hag_requests_total{endpoint="chat_completions",status="200"} 1.0' in text
    assert 'hag_requests_total{endpoint="chat_completions",status="400"} 1.0' in text
    assert "hag_attempts_count 1.0" in text
    assert 'hag_chosen_temperature_sum{task="chat"} 0.3' in text
    schema = c.get("/openapi.json").json()
    assert "/v1/chat/completions" in schema["paths"]
    assert "HagOptions" in json.dumps(schema)


def stream_completions(model: ScriptedChatModel) -> Any:
    from hag_agent.runnable import HAGRunnable
    from hag_agent.serve.completions import Completions
    from hag_agent.serve.metrics import ServerMetrics

    settings = ServerSettings(run_settings={"proposer": "prior"})
    return Completions(
        settings, HAGRunnable(model=model, proposer="prior"), Admission(1, 1), ServerMetrics()
    )


class Gone:
    """A request whose client has gone."""

    async def is_disconnected(self) -> bool:
        return True


GONE_COUNT = 'hag_requests_total{endpoint="chat_completions",status="499"} 1.0'


async def test_a_stream_whose_client_left_stops_its_run() -> None:
    from hag_agent.serve.protocol import ChatCompletionRequest

    model = ScriptedChatModel(script={"generate": [GOOD]})
    completions = stream_completions(model)
    body = ChatCompletionRequest(model="hag-agent", messages=USER, stream=True)  # type: ignore[arg-type]
    plan, mode = completions.prepare(body)
    parts = completions.turn(plan, mode)
    sent = [event async for event in completions.stream(body, plan, Gone(), 0.0, parts)]  # type: ignore[arg-type]
    assert sent == []  # gone at the first node: nothing written
    assert not model.calls_for("generate")  # the run stopped at its first node
    assert GONE_COUNT in completions.metrics.exposition().decode()


async def test_a_stream_whose_client_left_before_it_opened_stops_its_run() -> None:
    from hag_agent.serve.protocol import ChatCompletionRequest

    model = ScriptedChatModel(script={"generate": [GOOD]})
    completions = stream_completions(model)
    body = ChatCompletionRequest(model="hag-agent", messages=USER, stream=True)  # type: ignore[arg-type]
    with pytest.raises(ClientGone):
        await completions.handle(body, Gone())  # type: ignore[arg-type]
    assert not model.calls_for("generate")  # the run stopped at its first node
    assert GONE_COUNT in completions.metrics.exposition().decode()
    assert completions.admission.in_flight == 0  # the slot is given back


def test_passthrough_needs_an_upstream() -> None:
    c, _ = client(passthrough=True)
    r = chat(c, n=2)
    assert r.status_code == 400 and "needs an endpoint backend" in r.json()["error"]["message"]


def test_forwarded_body_drops_hag_and_names_the_upstream_model() -> None:
    from hag_agent.serve.passthrough import Upstream, forwarded_body

    upstream = Upstream("http://127.0.0.1:1/v1", "k", "real-model")
    raw = json.dumps({"model": "hag-agent", "tools": [{"x": 1}], "hag": {"max_retries": 0}})
    assert json.loads(forwarded_body(raw.encode(), "hag-agent", upstream)) == {
        "model": "real-model",
        "tools": [{"x": 1}],
    }


def test_serve_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from click.testing import CliRunner

    from hag_agent.cli.serve_command import serve

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the serve extra were missing
    done = CliRunner().invoke(serve, ["--port", "0"])
    assert done.exit_code == 2 and "pip install 'hag-agent[serve]'" in done.output


def test_serve_settings_errors_are_usage_errors() -> None:
    from click.testing import CliRunner

    from hag_agent.cli.serve_command import serve

    done = CliRunner().invoke(serve, ["--max-body-bytes", "10"])
    assert done.exit_code == 2 and "max_body_bytes" in done.output


def test_serve_reads_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import hag_agent.cli.serve_command as command

    seen: list[ServerSettings] = []
    monkeypatch.setattr(command, "_run", lambda settings, log_level: seen.append(settings))
    monkeypatch.setenv("HAG_SERVER_API_KEYS", "key-one,key-two")
    done = CliRunner().invoke(command.serve, ["--client-params", "ignore", "--max-retries", "0"])
    assert done.exit_code == 0, done.output
    (settings,) = seen
    assert settings.key_values() == [b"key-one", b"key-two"]
    assert "key-one" not in repr(settings)  # secrets stay out of reprs and logs
    assert settings.client_params == "ignore" and settings.run_settings == {"max_retries": 0}


def test_a_refused_passthrough_gives_its_slot_back() -> None:
    c, _ = client(passthrough=True, max_concurrency=1)
    for _ in range(3):  # each refusal frees the one slot for the next request
        assert chat(c, n=2).status_code == 400
    assert chat(c).status_code == 200
    r = chat(c, stream=True)
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"


async def test_a_stream_whose_client_left_before_its_first_byte_closes_its_run() -> None:
    """The run behind a stream starts before the response; the response closes it anyway."""
    closed: list[bool] = []

    async def run() -> Any:
        try:
            yield "proposal"
            await asyncio.sleep(3600)  # a generation nobody will read
        finally:
            closed.append(True)

    turn = run()
    await turn.__anext__()  # started, as a stream's opening leaves it

    async def body() -> Any:
        yield "never sent"

    released: list[bool] = []
    response = SlotStream(body(), release=lambda: released.append(True), run=turn)

    async def receive() -> dict[str, str]:
        return {"type": "http.disconnect"}  # gone before the first byte

    async def send(message: Any) -> None:
        pass

    await response({"type": "http", "asgi": {"spec_version": "2.3"}}, receive, send)
    assert closed == [True] and released == [True]


def test_workers_get_their_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from hag_agent.errors import ConfigurationError
    from hag_agent.serve.workers import (
        SETTINGS_VARIABLE,
        app_from_environment,
        worker_environment,
    )

    endpoint = {"base_url": "http://127.0.0.1:1/v1", "model": "m"}
    settings = ServerSettings(
        api_keys=("key-one", "key-two"),  # type: ignore[arg-type]
        run_settings={"backend": "vllm", "backend_options": endpoint},
    )
    environment = worker_environment(settings, str(tmp_path))
    assert "key-one" not in environment[SETTINGS_VARIABLE]  # keys travel apart
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    worker = TestClient(app_from_environment())
    answer = worker.get("/v1/models", headers={"Authorization": "Bearer key-two"})
    assert answer.status_code == 200 and [m["id"] for m in answer.json()["data"]] == ["m"]
    assert worker.get("/v1/models").status_code == 401
    with pytest.raises(ConfigurationError, match="comma"):
        worker_environment(ServerSettings(api_keys=("a,b",)), str(tmp_path))  # type: ignore[arg-type]
