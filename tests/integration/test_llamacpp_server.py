"""The OpenAI-compatible backend against llama.cpp's real server on 127.0.0.1."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from hag_agent import HAGRunnable, HyperParams, TaskKind
from hag_agent.backends import GenerationRequest
from hag_agent.backends.base import DecisionRequest
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.classification import TaskChoice
from hag_agent.dev.server_process import ServerProcess

PARAMS = HyperParams(
    temperature=1.0, top_p=0.95, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=30
)
PROMPT = [HumanMessage("Write one sentence about a dragon.")]


def backend(server: ServerProcess) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(
        EndpointOptions(
            base_url=f"{server.base_url}/v1", model="smollm2", flavor="llama.cpp", timeout=60
        )
    )


def test_seeded_generation(llamacpp_server: ServerProcess) -> None:
    result = backend(llamacpp_server).generate(GenerationRequest(PROMPT, PARAMS, seed=5))
    assert result.text.strip() and result.finish_reason in ("stop", "length")
    assert result.completion_tokens and result.prompt_tokens


def test_max_tokens_reaches_the_server(llamacpp_server: ServerProcess) -> None:
    result = backend(llamacpp_server).generate(
        GenerationRequest(
            [HumanMessage("Tell me a long story.")],
            PARAMS.model_copy(update={"max_tokens": 4}),
            seed=1,
        )
    )
    assert result.finish_reason == "length" and result.completion_tokens == 4


def test_structured_decision_through_the_server(llamacpp_server: ServerProcess) -> None:
    decision = backend(llamacpp_server).decide(
        DecisionRequest([HumanMessage("Classify: what is 2+2? Kinds: math, chat.")], TaskChoice)
    )
    assert decision.raw_text.strip().startswith("{"), decision.raw_text


def test_whole_graph_through_the_server(llamacpp_server: ServerProcess) -> None:
    runnable = HAGRunnable(
        backend="llamacpp-server",
        backend_options={"base_url": f"{llamacpp_server.base_url}/v1", "model": "smollm2"},
        classifier="llm",
        proposer="self",  # the proposal goes through the server too
        seed=3,
        params={"max_tokens": 48},
    )
    result = runnable.invoke("What is 12 + 30?")
    assert result.text.strip() and result.task in set(TaskKind)
    assert [e.node for e in result.trace][:3] == ["classify", "propose", "generate"]
    assert result.attempts[0].params.max_tokens == 48
    propose = next(e for e in result.trace if e.node == "propose")
    assert propose.data["proposer"] == "self" and "latency_s" in propose.data  # a real call
