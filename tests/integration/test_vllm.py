"""The vLLM tier: conformance and the whole graph against a real vLLM server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request

import httpx
import pytest
from langchain_core.messages import HumanMessage

from hag_agent import BackendError, HAGRunnable, HyperParams, TaskKind
from hag_agent.backends import GenerationRequest
from hag_agent.backends.base import DecisionRequest
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.classification import TaskChoice
from hag_agent.dev.server_process import ServerProcess
from hag_agent.dev.vllm_server import BLOCK_SIZE, EngineCounters, engine_counters
from hag_agent.testing.conformance import BackendConformance


def endpoint(server: ServerProcess, **options: object) -> OpenAICompatibleBackend:
    settings = {"base_url": f"{server.base_url}/v1", "model": "tiny", "timeout": 120}
    return OpenAICompatibleBackend(EndpointOptions(**{**settings, **options}))  # type: ignore[arg-type]


class TestVLLMConformance(BackendConformance):
    @pytest.fixture
    def backend(self, vllm_server: ServerProcess) -> OpenAICompatibleBackend:
        return endpoint(vllm_server)


def test_server_is_vllm(vllm_server: ServerProcess) -> None:
    with urllib.request.urlopen(f"{vllm_server.base_url}/version", timeout=10) as response:
        assert json.load(response)["version"]
    with urllib.request.urlopen(f"{vllm_server.base_url}/v1/models", timeout=10) as response:
        assert [m["id"] for m in json.load(response)["data"]] == ["tiny"]


def test_logprobs_reach_the_attempt(vllm_server: ServerProcess) -> None:
    params = HyperParams(
        temperature=0.5, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=8
    )
    result = endpoint(vllm_server).generate(GenerationRequest([("user", "hello")], params, seed=1))  # type: ignore[list-item]
    assert result.mean_logprob is not None and result.mean_logprob <= 0


def test_structured_decision_is_constrained_and_never_raises(vllm_server: ServerProcess) -> None:
    """json_schema keeps the answer on the schema's path; a random model may still pad it with
    whitespace until max_tokens, which must come back as a recorded error, not an exception."""
    for seed_prompt in ("classify: 2+2", "classify: write a poem", "classify: hello"):
        decision = endpoint(vllm_server).decide(
            DecisionRequest([("user", seed_prompt)], TaskChoice, max_tokens=40)  # type: ignore[list-item]
        )
        assert decision.raw_text.startswith('{"task"'), decision.raw_text
        assert isinstance(decision.value, TaskChoice) or decision.error


def test_out_of_range_value_is_vllms_400_as_our_error(vllm_server: ServerProcess) -> None:
    bad = HyperParams.model_construct(
        temperature=1.0, top_p=5.0, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=8
    )
    with pytest.raises(BackendError) as info:
        endpoint(vllm_server).generate(GenerationRequest([("user", "hi")], bad))  # type: ignore[list-item]
    assert info.value.status == 400 and "top_p" in info.value.body


def test_whole_graph_against_vllm(vllm_server: ServerProcess) -> None:
    """Every node on the server: LLM classifier, self proposal, judge, and retries."""
    runnable = HAGRunnable(
        backend="vllm",
        backend_options={"base_url": f"{vllm_server.base_url}/v1", "model": "tiny", "timeout": 120},
        classifier="llm",
        proposer="self",
        critic="judge",
        max_retries=2,
        accept_threshold=1.0,  # a random model never earns a perfect score: exercise the retries
        seed=4,
        params={"max_tokens": 24},
    )
    result = runnable.invoke("What is 6 times 7?")
    nodes = [event.node for event in result.trace]
    assert nodes[:4] == ["classify", "propose", "generate", "critique"]
    assert result.trace[0].message.startswith("llm:")  # vLLM's json_schema kept the answer valid
    assert result.task in set(TaskKind)
    assert result.trace[1].data["raw"].startswith("{")  # json_schema-constrained proposal
    assert len(result.attempts) >= 2 and "adjust" in nodes
    for attempt in result.attempts:
        assert attempt.critique is not None
        # The judge ran on the server; a random model's verdict may be unusable: then recorded.
        assert (
            attempt.critique.source == "signals+judge"
            or "judge fallback" in attempt.critique.source
        )
        assert attempt.params.max_tokens == 24 and attempt.completion_tokens
    judged = [e for e in result.trace if e.node == "critique"]
    assert all(e.data["raw"].startswith("{") for e in judged)
    keys = [a.params.key() for a in result.attempts]
    assert len(set(keys)) == len(keys)
    assert result.text == result.attempts[result.best_attempt or 0].output


async def test_proposer_model_name_is_used(vllm_server: ServerProcess) -> None:
    b = endpoint(vllm_server, proposer_model="no-such-adapter")
    with pytest.raises(BackendError) as info:
        await b.adecide(DecisionRequest([("user", "x")], TaskChoice, purpose="propose"))  # type: ignore[list-item]
    assert info.value.status == 404 and "no-such-adapter" in info.value.body


def test_regex_proposal_is_exactly_the_compact_object(vllm_server: ServerProcess) -> None:
    """Even a random model's proposal comes back whole: the keys are fixed, numbers bounded."""
    from hag_agent.backends.base import OutputConstraint, numeric_fields
    from hag_agent.backends.openai_compatible import object_regex
    from hag_agent.proposal import ProposalSchema

    keys = numeric_fields(ProposalSchema)
    for prompt in ("Write a poem about rain.", "What is 6 times 7?", "Translate 'cat' to French."):
        decision = endpoint(vllm_server).decide(
            DecisionRequest(
                [("user", prompt)],  # type: ignore[list-item]
                ProposalSchema,
                purpose="propose",
                constraint=OutputConstraint.COMPACT_NUMERIC_OBJECT,
            )
        )
        assert re.fullmatch(object_regex(keys), decision.raw_text), decision.raw_text
        assert isinstance(decision.value, ProposalSchema), decision.error


def _counters_after(server: ServerProcess, before: EngineCounters, queried: int) -> EngineCounters:
    """The counters' change once the server has counted at least ``queried`` more tokens."""
    deadline = time.monotonic() + 5  # the API process updates its counters as outputs arrive
    while True:
        change = engine_counters(server.base_url) - before
        if change.queries >= queried or time.monotonic() > deadline:
            return change
        time.sleep(0.1)


def test_a_proposal_finds_its_task_kinds_instructions_cached(vllm_server: ServerProcess) -> None:
    """A proposal prompt starts with its task kind's instructions and example, the same for every
    request of that kind, so the second turn's proposal hits vLLM's prefix cache for them."""
    backend = endpoint(vllm_server)
    hag = HAGRunnable(
        model=backend,
        classifier="rules",
        proposer="self",
        critique=False,
        seed=5,
        params={"max_tokens": 8},
    )
    # Unique from their first token, so nothing but the instructions can be shared.
    first, second = (
        f"Case {time.time_ns()}: Summarise the notes on the tides and the moon." for _ in range(2)
    )
    hag.invoke(first)
    before = engine_counters(vllm_server.base_url)
    result = hag.invoke(second)
    (answer,) = result.attempts
    assert answer.prompt_tokens
    turn = _counters_after(vllm_server, before, 2 * answer.prompt_tokens)
    # The instructions (about 100 tokens of the tiny model's) fill at least two whole blocks.
    assert turn.hits >= 2 * BLOCK_SIZE
    # A request of its own finds nothing cached: the hits above were the instructions.
    before = engine_counters(vllm_server.base_url)
    params = HyperParams(
        temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=1
    )
    fresh = f"Case {time.time_ns()}: " + "Another note on the tides. " * 8
    backend.generate(GenerationRequest([HumanMessage(fresh)], params))
    alone = _counters_after(vllm_server, before, 3 * BLOCK_SIZE)
    assert alone.queries >= 3 * BLOCK_SIZE and alone.hits == 0


def test_concurrent_seeded_requests_longer_than_an_engine_step(vllm_server: ServerProcess) -> None:
    """60 seeded requests of ~250 prompt tokens at once: more than one engine step prefills.

    With chunked prefill, vLLM 0.32 (CPU build) rewound a split prompt's seeded generator, which
    a CPU generator cannot do: the engine died and every request got a 500.
    """

    async def one(client: httpx.AsyncClient, i: int) -> int:
        body = {
            "model": "tiny",
            "messages": [{"role": "user", "content": f"{i} " + "heads tails " * 60}],
            "max_tokens": 4,
            "temperature": 1.0,
            "seed": i,
        }
        reply = await client.post(f"{vllm_server.base_url}/v1/chat/completions", json=body)
        return reply.status_code

    async def all_at_once() -> list[int]:
        async with httpx.AsyncClient(timeout=120) as client:
            return list(await asyncio.gather(*(one(client, i) for i in range(60))))

    assert asyncio.run(all_at_once()) == [200] * 60
    with urllib.request.urlopen(f"{vllm_server.base_url}/health", timeout=10) as response:
        assert response.status == 200
