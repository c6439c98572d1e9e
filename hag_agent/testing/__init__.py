"""Test helpers for hag-agent and its plugins: a scripted fake model, the conformance suite.

`ScriptedChatModel` answers without a model or network (unit tests, the overhead benchmark).
Replies are scripted per call purpose (``classify``, ``propose``, ``generate``, ``judge``), read
from the call's ``hag:`` tag or, where langchain-core passes no tags, from the prompt template.
A reply may call tools (`Reply.tool_calls`); `ScriptedChatModel.bind_tools` binds them in
OpenAI's format, as the ``tools`` argument each call records.
A list is consumed in order and its last item repeats; a callable gets the messages and call
arguments. Every call is recorded. `ScriptedEmbeddingBackend` adds scripted embeddings.

`hag_agent.testing.conformance.BackendConformance` (needs pytest; imported only from there) is
the behaviour every backend owes hag-agent: a plugin author subclasses it in their own tests.
A front end: it may import any layer of hag_agent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from hag_agent.backends.base import Capabilities, Embedding
from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.data.search_records import SearchRecord
from hag_agent.hyperparameters import HyperParams
from hag_agent.prompt_templates import PROMPT_NAMES, load_template


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    text: str
    finish_reason: str = "stop"
    logprobs: list[float] | None = None
    error: Exception | None = None
    """Raised instead of answering, to script backend failures."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls answered (``{"name", "args", "id"}``), for a call that has tools bound."""


@dataclass
class RecordedCall:
    """What one call received."""

    purpose: str
    messages: list[BaseMessage]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _purpose_from_prompt(messages: list[BaseMessage]) -> str:
    """Recognise a decision call by its template's first fixed line; anything else is generation."""
    text = messages[-1].text if messages else ""
    for name in PROMPT_NAMES:
        lines = load_template(name).template.splitlines()
        marker = next(line for line in lines if line.strip() and "$" not in line and line != "---")
        if marker in text:
            return name
    return "generate"


ScriptItem = str | Reply | Callable[[list[BaseMessage], dict[str, Any]], "str | Reply"]


class ScriptedChatModel(BaseChatModel):
    """A chat model whose answers are scripted by call purpose."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: dict[str, list[ScriptItem]] = Field(default_factory=dict)
    """Replies by purpose; the last item of each list repeats."""
    default: ScriptItem = "ok"
    """Reply for a purpose with no script."""
    _calls: list[RecordedCall] = PrivateAttr(default_factory=list)
    _positions: dict[str, int] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call so far, in order."""
        return list(self._calls)

    def calls_for(self, purpose: str) -> list[RecordedCall]:
        """The calls made for one purpose."""
        return [c for c in self._calls if c.purpose == purpose]

    def _next(
        self, messages: list[BaseMessage], tags: Sequence[str], kwargs: dict[str, Any]
    ) -> Reply:
        purpose = next((t.split(":", 1)[1] for t in tags if t.startswith("hag:")), None)
        if purpose is None:
            # langchain-core's streaming path calls _stream without the run manager (no tags).
            purpose = _purpose_from_prompt(messages)
        with self._lock:
            self._calls.append(RecordedCall(purpose, list(messages), dict(kwargs)))
            items = self.script.get(purpose)
            if items:
                position = self._positions.get(purpose, 0)
                item = items[min(position, len(items) - 1)]
                self._positions[purpose] = position + 1
            else:
                item = self.default
        if callable(item) and not isinstance(item, Reply):
            item = item(list(messages), dict(kwargs))
        reply = item if isinstance(item, Reply) else Reply(text=str(item))
        if reply.error is not None:
            raise reply.error
        return reply

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in OpenAI's format (recorded with each call as ``tools``)."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _metadata(self, reply: Reply) -> dict[str, Any]:
        metadata: dict[str, Any] = {"finish_reason": reply.finish_reason}
        if reply.logprobs is not None:
            metadata["logprobs"] = {"content": [{"logprob": v} for v in reply.logprobs]}
        return metadata

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._next(messages, run_manager.tags if run_manager else [], kwargs)
        words = len(reply.text.split())
        message = AIMessage(
            content=reply.text,
            tool_calls=[_tool_call(call, i) for i, call in enumerate(reply.tool_calls)],
            response_metadata=self._metadata(reply),
            usage_metadata={"input_tokens": 10, "output_tokens": words, "total_tokens": 10 + words},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._next(messages, run_manager.tags if run_manager else [], kwargs)
        pieces = reply.text.split(" ")
        for i, piece in enumerate(pieces):
            token = piece if i == 0 else f" {piece}"
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        words = len(reply.text.split())
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": call["name"],
                        "args": json.dumps(call.get("args", {})),
                        "id": _tool_call(call, i)["id"],
                        "index": i,
                    }
                    for i, call in enumerate(reply.tool_calls)
                ],
                response_metadata=self._metadata(reply),
                usage_metadata={
                    "input_tokens": 10,
                    "output_tokens": words,
                    "total_tokens": 10 + words,
                },
                chunk_position="last",
            )
        )


def _tool_call(call: dict[str, Any], index: int) -> ToolCall:
    """A scripted tool call with its id (``call_<index>`` unless scripted)."""
    return ToolCall(
        name=call["name"], args=call.get("args", {}), id=call.get("id", f"call_{index}")
    )


class ScriptedEmbeddingBackend(ChatModelBackend):
    """A backend over a (scripted) chat model whose `aembed` gives known vectors.

    ``vectors`` maps a text to its vector (a mapping, or a callable that may raise a
    `BackendError` to script a failure). Every embedded text is recorded in ``embedded``.
    """

    name = "scripted-embeddings"
    capabilities = Capabilities(embeddings=True)

    def __init__(
        self,
        chat_model: BaseChatModel,
        vectors: Callable[[str], Sequence[float]] | dict[str, Sequence[float]],
        *,
        model: str | None = "scripted-embedder",
    ) -> None:
        """Wrap a chat model; ``model`` is what `embedding_model` reports."""
        super().__init__(chat_model)
        self.vectors = vectors
        self.model = model
        self.embedded: list[str] = []

    def embedding_model(self) -> str | None:
        """The scripted embedding model's name."""
        return self.model

    async def aembed(self, text: str, *, config: RunnableConfig | None = None) -> Embedding:
        """The scripted vector of ``text``."""
        self.embedded.append(text)
        vector = self.vectors(text) if callable(self.vectors) else self.vectors[text]
        return Embedding(vector=[float(v) for v in vector], model=self.model)


def search_record(case_id: str, task: str, prompt: str, params: HyperParams) -> SearchRecord:
    """A search record whose best configuration is ``params`` (other fields plausible)."""
    return SearchRecord(
        id=case_id,
        task=task,
        prompt=prompt,
        proposal=params.to_proposal_json(),
        params=params.model_dump(),
        score=1.0,
        default_score=0.5,
        prior_score=0.5,
        evaluations=1.0,
        budget=10,
        model_calls=2,
        completion_tokens=20,
        wall_s=0.1,
        samples=2,
        seed=0,
        evaluated=[],
    )
