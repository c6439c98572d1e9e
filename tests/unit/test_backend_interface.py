"""The narrow backend interface: three coroutines, one sync shim, profiles, caller constraints."""

from __future__ import annotations

import ast
import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

import hag_agent
from hag_agent import ConfigurationError, HAGRunnable, HyperParams
from hag_agent.backends import (
    Backend,
    Capabilities,
    ChatModelBackend,
    Decision,
    DecisionRequest,
    Generation,
    GenerationRequest,
    OutputConstraint,
    as_backend,
)
from hag_agent.backends.base import engine_call, numeric_fields, parse_decision
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.backends.server_profiles import LLAMA_CPP_SERVER, OPENAI, PROFILES, VLLM
from hag_agent.classification import TaskChoice
from hag_agent.node_driver import DecideCall
from hag_agent.proposal import ProposalSchema
from hag_agent.testing import ScriptedChatModel

PROPOSAL = (
    '{"temperature":0.3,"top_p":0.9,"top_k":20,"min_p":0.0,"repetition_penalty":1.0,'
    '"max_tokens":16}'
)
PARAMS = HyperParams(
    temperature=0.3, top_p=0.8, top_k=7, min_p=0.05, repetition_penalty=1.3, max_tokens=33
)


class AsyncOnlyBackend(Backend):
    """What a plugin with an async engine writes: two coroutines that really suspend."""

    name = "async-only"
    capabilities = Capabilities()

    def __init__(self) -> None:
        self.constraints: list[OutputConstraint] = []
        self.loop_threads: set[int] = set()

    async def agenerate(self, request: GenerationRequest) -> Generation:
        await asyncio.sleep(0.001)
        self.loop_threads.add(threading.get_ident())
        return Generation(text=f"answer at temperature {request.params.temperature}")

    async def adecide(self, request: DecisionRequest) -> Decision:
        await asyncio.sleep(0.001)
        self.constraints.append(request.constraint)
        schema = request.schema
        return parse_decision(PROPOSAL if schema is ProposalSchema else "{}", schema, 0.0)


def test_the_interface_is_abstract() -> None:
    with pytest.raises(TypeError):
        Backend()  # type: ignore[abstract]


def test_an_async_only_backend_serves_sync_callers() -> None:
    backend = AsyncOnlyBackend()
    assert (
        backend.generate(GenerationRequest([HumanMessage("hi")], PARAMS)).text
        == "answer at temperature 0.3"
    )
    decision = backend.decide(DecisionRequest([HumanMessage("hi")], ProposalSchema))
    assert isinstance(decision.value, ProposalSchema)


async def test_a_sync_call_inside_a_running_loop_runs_on_another_thread() -> None:
    backend = AsyncOnlyBackend()
    result = backend.generate(
        GenerationRequest([HumanMessage("hi")], PARAMS)
    )  # a sync call from async code
    assert result.text and threading.get_ident() not in backend.loop_threads


async def test_an_async_only_backend_runs_the_graph_both_ways() -> None:
    backend = AsyncOnlyBackend()
    runnable = HAGRunnable(model=backend, proposer="self", critique=False)
    assert str(runnable.invoke("Write a poem")) == "answer at temperature 0.3"
    assert str(await runnable.ainvoke("Write a poem")) == "answer at temperature 0.3"
    # The propose node asks for the compact numeric object; nothing else does.
    assert backend.constraints == [OutputConstraint.COMPACT_NUMERIC_OBJECT] * 2


def test_decisions_default_to_the_json_schema() -> None:
    assert DecideCall("classify", "x", TaskChoice).constraint is OutputConstraint.JSON_SCHEMA


class Blocking(ChatModelBackend):
    """A native-sync backend whose engine call records the thread it ran on."""

    def __init__(self) -> None:
        super().__init__(ScriptedChatModel(default="ok"))
        self.threads: list[int] = []

    async def agenerate(self, request: GenerationRequest) -> Generation:
        await engine_call(lambda: self.threads.append(threading.get_ident()))
        return await super().agenerate(request)


async def test_native_sync_runs_in_place_for_sync_callers_and_off_loop_for_async() -> None:
    backend = Blocking()
    backend.generate(
        GenerationRequest([HumanMessage("hi")], PARAMS)
    )  # sync, even inside a running loop
    await backend.agenerate(GenerationRequest([HumanMessage("hi")], PARAMS))
    here = threading.get_ident()
    assert backend.threads[0] == here and backend.threads[1] != here


def test_a_native_sync_backend_that_waits_on_the_loop_is_a_clear_error() -> None:
    class Waits(Blocking):
        async def agenerate(self, request: GenerationRequest) -> Generation:
            await asyncio.sleep(0)
            return Generation(text="never")

    with pytest.raises(RuntimeError, match="engine_call"):
        Waits().generate(GenerationRequest([HumanMessage("hi")], PARAMS))


def test_chat_model_backend_sync_path_calls_invoke_in_this_thread() -> None:
    model = ScriptedChatModel(script={"generate": ["done"]})
    backend = as_backend(model)
    assert isinstance(backend, ChatModelBackend)
    assert backend.generate(GenerationRequest([HumanMessage("hi")], PARAMS)).text == "done"
    assert model.calls[0].kwargs["temperature"] == 0.3
    with pytest.raises(ConfigurationError):
        as_backend("not a model")


def test_compact_numeric_object_needs_a_flat_numeric_schema() -> None:
    assert numeric_fields(ProposalSchema) == {
        "temperature": "float",
        "top_p": "float",
        "top_k": "int",
        "min_p": "float",
        "repetition_penalty": "float",
        "max_tokens": "int",
    }
    with pytest.raises(ConfigurationError, match=r"TaskChoice\.task"):
        numeric_fields(TaskChoice)


class Tiny(BaseModel):
    x: int


@pytest.mark.parametrize(
    ("profile", "body"),
    [
        (VLLM, {"top_k": 7, "min_p": 0.05, "repetition_penalty": 1.3}),
        (LLAMA_CPP_SERVER, {"top_k": 7, "min_p": 0.05, "repeat_penalty": 1.3, "max_tokens": 33}),
        (OPENAI, {}),
    ],
)
def test_each_profile_says_what_goes_in_the_body(profile: Any, body: dict[str, Any]) -> None:
    assert profile.sampler_body(PARAMS) == body


def test_profiles_request_structured_output_their_way() -> None:
    assert VLLM.response_format(Tiny)["response_format"]["type"] == "json_schema"
    assert LLAMA_CPP_SERVER.response_format(Tiny)["response_format"]["type"] == "json_object"
    plain = VLLM.__class__(backend_name="x", capabilities=Capabilities(structured_output="prompt"))
    assert plain.response_format(Tiny) == {}
    assert set(PROFILES) == {"vllm", "llama.cpp", "openai"}


def test_the_endpoint_takes_its_dialect_from_the_profile() -> None:
    options = EndpointOptions(base_url="http://127.0.0.1:9/v1", model="m", flavor="llama.cpp")
    backend = OpenAICompatibleBackend(options)
    assert (
        backend.name == "llamacpp-server" and backend.capabilities is LLAMA_CPP_SERVER.capabilities
    )
    kwargs = backend.call_kwargs(PARAMS, seed=None)
    assert "max_tokens" not in kwargs and kwargs["extra_body"]["max_tokens"] == 33
    compact = backend.decision_kwargs(ProposalSchema, OutputConstraint.COMPACT_NUMERIC_OBJECT, 50)
    assert compact["extra_body"]["response_format"]["type"] == "json_object"  # no regex there
    vllm = OpenAICompatibleBackend(options, profile=VLLM)
    regex = vllm.decision_kwargs(ProposalSchema, OutputConstraint.COMPACT_NUMERIC_OBJECT, 50)
    assert "regex" in regex["extra_body"]["structured_outputs"]
    json = vllm.decision_kwargs(ProposalSchema, OutputConstraint.JSON_SCHEMA, 50)
    assert "structured_outputs" not in json["extra_body"]


def test_no_module_imports_langgraph_internals() -> None:
    root = Path(hag_agent.__file__).parent
    private = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(name.startswith("langgraph._internal") for name in names):
                private.append(str(path.relative_to(root)))
    assert private == []


def test_a_compact_numeric_object_is_refused_for_another_schema_before_any_backend() -> None:
    from hag_agent.classification import TaskChoice

    with pytest.raises(ConfigurationError, match="not a required number"):
        DecisionRequest(
            [HumanMessage("hi")], TaskChoice, constraint=OutputConstraint.COMPACT_NUMERIC_OBJECT
        )
