"""ChatHAG on the real embedded model: LangChain's standard integration tests, and streaming.

SmolLM2-135M in process, on one thread each for generating and reading prompts (other
llama.cpp processes may share the machine). One retry and short answers keep the suite short.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langchain_tests.integration_tests import ChatModelIntegrationTests
from pydantic import BaseModel, Field

from hag_agent import ChatHAG
from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions


@cache
def embedded() -> EmbeddedBackend:
    # One backend for the module: its engine loads once (llama.cpp caches it per process).
    return EmbeddedBackend(EmbeddedOptions(n_threads=1, n_threads_batch=1))


class TestChatHAGEmbedded(ChatModelIntegrationTests):
    """The standard suite; what it skips, and why.

    - ``test_agent_loop``: SmolLM2-135M, free to answer or to call a tool (``tool_choice``
      auto), answers without the tool; the loop with a forced first call is
      `test_a_react_agent_loop_on_the_real_model`, and the unit tests run one on a scripted model.
    - ``test_unicode_tool_call_integration``: the grammar-held call is made, but SmolLM2-135M
      writes ``"{}"`` for the company name it should copy, even with 200 tokens of room; that
      Unicode arguments come through unescaped is tested on the reply parser (unit tests).
    - JSON mode (``method="json_mode"`` with the format asked by the prompt only): the suite's
      default for models that do not declare it; ChatHAG constrains JSON by the schema.
    - Images, audio, PDF: the suite's defaults (a text model).
    - Model override: a ``model`` argument chooses nothing in ChatHAG; the backend object it
      wraps decides which model answers.
    """

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatHAG

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": embedded(), "max_retries": 1, "max_tokens": 40}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # Dropped: ``timeout`` and ``api_key``, which ChatHAG has not (the backend's apply).
        dropped = {"timeout", "api_key"}
        return {k: v for k, v in super().standard_chat_model_params.items() if k not in dropped}

    @property
    def supports_model_override(self) -> bool:
        return False

    @pytest.mark.xfail(reason="a 135M model does not choose to call the tool; see the docstring")
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(reason="a 135M model does not copy the name; see the docstring")
    def test_unicode_tool_call_integration(self, model: BaseChatModel) -> None:
        super().test_unicode_tool_call_integration(model)


def test_streaming_gives_the_answer_tokens_of_a_real_model() -> None:
    chat = ChatHAG(model=embedded(), critique=False, max_tokens=24, seed=3)
    chunks = list(chat.stream("Write one sentence about the sea."))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 3  # tokens as generated, not one final chunk
    total: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    answer = chat.invoke("Write one sentence about the sea.")
    assert total.text == answer.text  # seeded: the same answer either way
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] > 0
    assert total.response_metadata["hag"]["params"]["max_tokens"]["source"] == "pinned"


class Joke(BaseModel):
    setup: str = Field(description="the question")
    punchline: str = Field(description="the answer")


def test_structured_output_on_the_real_model() -> None:
    chat = ChatHAG(model=embedded(), max_tokens=80, seed=1)
    raw = chat.with_structured_output(Joke, include_raw=True).invoke("Tell me a joke about cats")
    assert isinstance(raw, dict) and raw["parsing_error"] is None
    assert isinstance(raw["parsed"], Joke)  # llama.cpp's grammar: schema-shaped JSON
    attempt = raw["raw"].response_metadata["hag"]["attempts"][0]
    assert attempt["critique"]["source"] == "output schema"
    assert attempt["sources"]["temperature"] in ("prior", "model", "learned")  # still chosen


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_a_react_agent_loop_on_the_real_model() -> None:
    with warnings.catch_warnings():  # create_react_agent moved to langchain, not installed here
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    chat = ChatHAG(model=embedded(), max_retries=1, max_tokens=60, seed=1)

    def model(state: dict[str, Any], runtime: Any) -> Any:
        # A forced first call (a 135M model does not choose one), then an answer in text.
        first = state["messages"][-1].type == "human"
        return chat.bind_tools([add], tool_choice="any" if first else "none")

    agent = create_react_agent(model, [add])
    messages = agent.invoke({"messages": [HumanMessage("What is 2 + 3?")]})["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    call = messages[1].tool_calls[0]
    assert call["name"] == "add" and messages[2].content == str(add.invoke(call["args"]))
    assert messages[1].response_metadata["hag"]["attempts"][0]["critique"]["source"] == "tool calls"
    assert messages[3].text and not messages[3].tool_calls
