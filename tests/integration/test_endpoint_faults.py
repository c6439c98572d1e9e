"""The OpenAI-compatible backend against real HTTP on 127.0.0.1 that misbehaves on purpose."""

from __future__ import annotations

import re
import time

import pytest
from langchain_core.messages import HumanMessage

from hag_agent import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    HAGRunnable,
    HyperParams,
)
from hag_agent.backends import GenerationRequest
from hag_agent.backends.base import DecisionRequest, OutputConstraint
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.classification import TaskChoice
from hag_agent.proposal import ProposalSchema

from .fault_server import FaultServer

PARAMS = HyperParams(
    temperature=0.3, top_p=0.8, top_k=7, min_p=0.05, repetition_penalty=1.3, max_tokens=33
)
MESSAGES = [HumanMessage("What is 2 + 2?")]
COMPACT = OutputConstraint.COMPACT_NUMERIC_OBJECT


def backend(server: FaultServer, **options: object) -> OpenAICompatibleBackend:
    settings = {
        "base_url": server.base_url,
        "model": "base",
        "timeout": 2.0,
        "max_tries": 3,
        "deadline": 10.0,
    }
    return OpenAICompatibleBackend(EndpointOptions(**{**settings, **options}))  # type: ignore[arg-type]


def test_every_sampling_value_is_sent_explicitly(fault_server: FaultServer) -> None:
    result = backend(fault_server).generate(GenerationRequest(MESSAGES, PARAMS, seed=11))
    assert result.text == "The answer is 4." and result.finish_reason == "stop"
    (request,) = fault_server.requests
    body = request.body
    assert request.path == "/v1/chat/completions" and body["model"] == "base"
    assert body["temperature"] == 0.3 and body["top_p"] == 0.8 and body["seed"] == 11
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 33
    # vLLM-only knobs travel in extra_body, which the client merges into the JSON body.
    assert body["top_k"] == 7 and body["min_p"] == 0.05 and body["repetition_penalty"] == 1.3
    assert "guided_json" not in body and body["logprobs"] is True
    assert request.headers.get("authorization") == "Bearer EMPTY"


def test_llamacpp_flavor_uses_its_own_penalty_name(fault_server: FaultServer) -> None:
    backend(fault_server, flavor="llama.cpp").generate(GenerationRequest(MESSAGES, PARAMS))
    body = fault_server.requests[0].body
    assert body["repeat_penalty"] == 1.3 and "repetition_penalty" not in body
    assert body["max_tokens"] == 33 and "max_completion_tokens" not in body
    assert "logprobs" not in body


def test_proposal_is_regex_decoded_by_the_proposer_model(fault_server: FaultServer) -> None:
    b = backend(fault_server, proposer_model="hag")
    decision = b.decide(
        DecisionRequest(
            MESSAGES, ProposalSchema, purpose="propose", constraint=COMPACT, max_tokens=50
        )
    )
    assert isinstance(decision.value, ProposalSchema), decision.error
    (request,) = fault_server.requests
    body = request.body
    assert body["model"] == "hag" and "response_format" not in body
    regex = body["structured_outputs"]["regex"]
    assert re.fullmatch(regex, decision.raw_text)
    assert not re.fullmatch(regex, decision.raw_text.replace(":", ": "))  # no whitespace
    assert not re.fullmatch(regex, decision.raw_text.replace("}", ',"seed":1}'))  # exact keys


def test_json_decisions_use_response_format_json_schema(fault_server: FaultServer) -> None:
    b = backend(fault_server, proposal_decoding="json")
    decision = b.decide(
        DecisionRequest(
            MESSAGES, ProposalSchema, purpose="propose", constraint=COMPACT, max_tokens=50
        )
    )
    assert isinstance(decision.value, ProposalSchema)
    (request,) = fault_server.requests
    body = request.body
    assert body["model"] == "base" and "guided_json" not in body
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == set(HyperParams.model_fields)
    assert schema["additionalProperties"] is False and body["temperature"] == 0.0
    b.decide(DecisionRequest(MESSAGES, TaskChoice, purpose="classify"))
    assert fault_server.requests[1].body["model"] == "base"


def test_the_caller_chooses_the_constraint(fault_server: FaultServer) -> None:
    """The proposal's schema alone, without the compact constraint, is decoded as json_schema."""
    b = backend(fault_server)
    b.decide(DecisionRequest(MESSAGES, ProposalSchema, purpose="propose", max_tokens=50))
    body = fault_server.requests[0].body
    assert "structured_outputs" not in body and body["response_format"]["type"] == "json_schema"


def test_openai_flavor_sends_only_what_openai_takes(fault_server: FaultServer) -> None:
    result = backend(fault_server, flavor="openai").generate(
        GenerationRequest(MESSAGES, PARAMS, seed=2)
    )
    assert result.text == "The answer is 4."
    body = fault_server.requests[0].body
    assert not {"top_k", "min_p", "repetition_penalty", "repeat_penalty", "logprobs"} & set(body)
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 33 and body["seed"] == 2
    decision = backend(fault_server, flavor="openai").decide(
        DecisionRequest(
            MESSAGES, ProposalSchema, purpose="propose", constraint=COMPACT, max_tokens=50
        )
    )
    assert isinstance(decision.value, ProposalSchema)
    body = fault_server.requests[1].body
    assert "structured_outputs" not in body and body["response_format"]["type"] == "json_schema"


def test_500_is_retried_then_succeeds(fault_server: FaultServer) -> None:
    fault_server.reset(["500", "500", "ok"])
    result = backend(fault_server).generate(GenerationRequest(MESSAGES, PARAMS))
    assert result.text == "The answer is 4." and len(fault_server.requests) == 3


def test_500_until_tries_run_out_is_a_typed_error(fault_server: FaultServer) -> None:
    fault_server.reset(["500"])
    with pytest.raises(BackendError) as info:
        backend(fault_server, max_tries=3).generate(GenerationRequest(MESSAGES, PARAMS))
    assert info.value.status == 500 and "engine crashed" in info.value.body
    assert "after 3 tries" in str(info.value) and len(fault_server.requests) == 3


def test_429_waits_for_retry_after(fault_server: FaultServer) -> None:
    fault_server.reset(["429", "ok"])
    fault_server.retry_after = "1"
    start = time.monotonic()
    backend(fault_server).generate(GenerationRequest(MESSAGES, PARAMS))
    first, second = fault_server.requests
    assert second.at - first.at >= 0.95
    assert time.monotonic() - start < 5


def test_400_is_not_retried(fault_server: FaultServer) -> None:
    fault_server.reset(["400"])
    with pytest.raises(BackendError) as info:
        backend(fault_server).generate(GenerationRequest(MESSAGES, PARAMS))
    assert info.value.status == 400 and "top_p" in info.value.body
    assert len(fault_server.requests) == 1


def test_slow_response_times_out(fault_server: FaultServer) -> None:
    fault_server.reset(["slow"])
    fault_server.slow_seconds = 3
    start = time.monotonic()
    with pytest.raises(BackendTimeoutError, match="timed out after 2 tries"):
        backend(fault_server, timeout=0.5, max_tries=2).generate(
            GenerationRequest(MESSAGES, PARAMS)
        )
    assert time.monotonic() - start < 3


def test_deadline_bounds_all_tries(fault_server: FaultServer) -> None:
    fault_server.reset(["500"])
    start = time.monotonic()
    with pytest.raises(BackendError):
        backend(fault_server, max_tries=20, deadline=1.5).generate(
            GenerationRequest(MESSAGES, PARAMS)
        )
    assert time.monotonic() - start < 3.5
    assert 2 <= len(fault_server.requests) < 20


def test_dropped_connection_is_retried(fault_server: FaultServer) -> None:
    fault_server.reset(["drop", "ok"])
    assert (
        backend(fault_server).generate(GenerationRequest(MESSAGES, PARAMS)).text
        == "The answer is 4."
    )
    assert len(fault_server.requests) == 2


def test_dropped_connections_end_in_unavailable(fault_server: FaultServer) -> None:
    fault_server.reset(["drop"])
    with pytest.raises(BackendUnavailableError):
        backend(fault_server, max_tries=2).generate(GenerationRequest(MESSAGES, PARAMS))


def test_non_json_body_is_a_typed_error(fault_server: FaultServer) -> None:
    fault_server.reset(["nonjson"])
    with pytest.raises(BackendError) as info:
        backend(fault_server, max_tries=1).generate(GenerationRequest(MESSAGES, PARAMS))
    assert "Bad Gateway" in info.value.body or "Bad Gateway" in str(info.value)


def test_nothing_listening_is_unavailable() -> None:
    from hag_agent.dev.server_process import free_port

    options = EndpointOptions(
        base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", max_tries=2, deadline=5
    )
    with pytest.raises(BackendUnavailableError, match="unreachable after 2 tries"):
        OpenAICompatibleBackend(options).generate(GenerationRequest(MESSAGES, PARAMS))


def test_graph_keeps_first_attempt_when_the_server_dies(fault_server: FaultServer) -> None:
    fault_server.reply_text = "the the the the the the the the the the the the the the"
    fault_server.reset(["ok", "ok", "500"])  # the proposal, the first answer, then only 500s
    runnable = HAGRunnable(
        proposer="self",
        backend="vllm",
        backend_options={
            "base_url": fault_server.base_url,
            "model": "base",
            "max_tries": 2,
            "deadline": 5,
        },
    )
    result = runnable.invoke("Say something about cats")
    assert len(result.attempts) == 2 and result.attempts[1].error
    assert "500" in result.attempts[1].error
    assert result.text == fault_server.reply_text and result.best_attempt == 0


async def test_async_path_retries_too(fault_server: FaultServer) -> None:
    fault_server.reset(["500", "ok"])
    result = await backend(fault_server).agenerate(GenerationRequest(MESSAGES, PARAMS))
    assert result.text == "The answer is 4." and len(fault_server.requests) == 2


def test_missing_base_url_is_a_configuration_error() -> None:
    from hag_agent import ConfigurationError

    with pytest.raises(ConfigurationError, match="HAG_BASE_URL"):
        HAGRunnable(backend="vllm").invoke("hi")


def test_environment_configures_the_endpoint(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAG_BACKEND", "vllm")
    monkeypatch.setenv("HAG_BASE_URL", fault_server.base_url)
    monkeypatch.setenv("HAG_MODEL", "from-env")
    monkeypatch.setenv("HAG_API_KEY", "sekret")
    HAGRunnable(proposer="prior").invoke("hello")
    request = fault_server.requests[0]
    assert request.body["model"] == "from-env"
    assert request.headers.get("authorization") == "Bearer sekret"
