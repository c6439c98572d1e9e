"""`HAGRunnable`: the HAG graph as a LangChain Runnable, for use in LCEL chains.

Input: a string, a prompt value, a list of messages, or a dict with ``prompt`` (or ``messages``)
plus per-call settings (any `HAGContext` field, e.g. ``{"prompt": ..., "max_retries": 0}``).
Output: a `HAGResult`, an `AIMessage` whose content is the answer and which carries the task,
the final params, every attempt and the trace; so ``prompt | HAGRunnable(...) | StrOutputParser()``
works. ``stream`` yields `AIMessageChunk`s: the answer's tokens, and node events as empty chunks
whose ``additional_kwargs["hag_events"]`` lists them (lists concatenate when chunks are added).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    convert_to_messages,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import ensure_config
from langgraph.types import Durability, StreamMode
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from hag_agent.context import HAGContext, resolve_context
from hag_agent.errors import HAGInputError
from hag_agent.graph import CompiledHAGGraph, build_graph
from hag_agent.graph import graph as default_graph
from hag_agent.hyperparameters import HyperParams
from hag_agent.nodes import last_human_text
from hag_agent.proposing import proposer_for
from hag_agent.redaction import masked_options
from hag_agent.state import Attempt, TraceEvent
from hag_agent.tasks import TaskKind

HAGInput = str | PromptValue | BaseMessage | Sequence[Any] | Mapping[str, Any]

_PROMPT_KEYS = ("prompt", "messages", "input", "question")
_STREAM_MODES: list[StreamMode] = ["messages", "updates", "values"]
_EVENT_MODES: list[StreamMode] = ["updates", "values"]
"""Without ``messages`` LangGraph attaches no token handler, so the model is not streamed."""


class HAGResult(AIMessage):
    """The answer as an AIMessage, with everything the run decided attached."""

    task: TaskKind | None = None
    """The task kind the run settled on."""
    params: HyperParams | None = None
    """The configuration of the chosen attempt."""
    attempts: list[Attempt] = Field(default_factory=list)
    """Every attempt, in order."""
    best_attempt: int | None = None
    """Index of the chosen attempt."""
    stop_reason: str = ""
    """Why the loop ended."""
    trace: list[TraceEvent] = Field(default_factory=list)
    """Every decision and fallback, in order."""

    @property
    def answer(self) -> str:
        """The answer text."""
        return self.text

    @property
    def completion_tokens(self) -> int | None:
        """Tokens generated over every attempt, or None when no attempt reported a count."""
        counts = [a.completion_tokens for a in self.attempts if a.completion_tokens is not None]
        return sum(counts) if counts else None

    def __str__(self) -> str:
        return self.text

    def to_json_dict(self) -> dict[str, Any]:
        """The whole result as plain JSON-able data."""
        return {
            "answer": self.text,
            "task": self.task.value if self.task else None,
            "params": self.params.model_dump() if self.params else None,
            "best_attempt": self.best_attempt,
            "stop_reason": self.stop_reason,
            "attempts": [a.model_dump(mode="json") for a in self.attempts],
            "trace": [t.model_dump(mode="json") for t in self.trace],
        }


def parse_input(value: Any) -> tuple[list[AnyMessage], dict[str, Any]]:
    """Split a HAGRunnable input into the conversation and per-call settings.

    Raises:
        HAGInputError: For an unsupported type or an empty prompt.
    """
    settings: dict[str, Any] = {}
    if isinstance(value, Mapping):
        keys = [k for k in _PROMPT_KEYS if k in value]
        if len(keys) != 1:
            raise HAGInputError(
                f"a dict input needs exactly one of {', '.join(_PROMPT_KEYS)}; got keys "
                f"{sorted(map(str, value))}"
            )
        settings = {k: v for k, v in value.items() if k != keys[0]}
        value = value[keys[0]]
    if isinstance(value, str):
        messages: list[AnyMessage] = [HumanMessage(value)]
    elif isinstance(value, PromptValue):
        messages = list(value.to_messages())  # type: ignore[arg-type]
    elif isinstance(value, BaseMessage):
        messages = [value]  # type: ignore[list-item]
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        try:
            messages = convert_to_messages(value)  # type: ignore[assignment]
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise HAGInputError(f"cannot read the messages: {exc}") from None
    else:
        raise HAGInputError(
            f"unsupported input type {type(value).__name__}: give a string, messages, or a dict "
            "with a prompt"
        )
    if not last_human_text(messages).strip():
        raise HAGInputError("the prompt is empty: give a non-blank human message")
    return messages, settings


def to_result(state: Mapping[str, Any]) -> HAGResult:
    """Build the result from the graph's output state."""
    attempts: list[Attempt] = list(state.get("attempts") or [])
    best = state.get("best_attempt")
    chosen = attempts[best] if best is not None and best < len(attempts) else None
    return HAGResult(
        content=state.get("answer", ""),
        tool_calls=chosen.tool_calls if chosen else [],
        invalid_tool_calls=chosen.invalid_tool_calls if chosen else [],
        task=state.get("task"),
        params=chosen.params if chosen else None,
        attempts=attempts,
        best_attempt=best,
        stop_reason=state.get("stop_reason", ""),
        trace=list(state.get("trace") or []),
    )


def _event_chunk(event: dict[str, Any]) -> AIMessageChunk:
    return AIMessageChunk(content="", additional_kwargs={"hag_events": [event]})


def _summarize(node: str, update: Mapping[str, Any] | None) -> dict[str, Any]:
    """A small JSON-able summary of one node's state update, for stream events."""
    event: dict[str, Any] = {"type": "node", "node": node}
    if not update:
        return event
    trace = update.get("trace") or []
    if trace:
        event["message"] = trace[-1].message
    if node == "classify" and update.get("task") is not None:
        event["task"] = TaskKind(update["task"]).value
    if node == "propose" and trace:
        event["proposer"] = trace[-1].data.get("proposer")
    pending = update.get("pending")
    if pending is not None:
        event["params"] = pending.params.model_dump()
        event["sources"] = {k: v.value for k, v in pending.sources.items()}
    attempts = update.get("attempts") or []
    if attempts and node in ("generate", "critique"):
        last = attempts[-1]
        event["attempt"] = last.index
        if last.critique is not None:
            event["score"] = last.critique.score
            event["verdict"] = last.critique.verdict
    return event


def collect_settings(data: Any, own: set[str]) -> Any:
    """Constructor keywords, with those that are not ``own`` fields moved into ``context``.

    Moved settings go over what ``context`` already holds (a mapping or a `HAGContext`).

    HAGRunnable and the chat model front end take `HAGContext` fields as keywords this way.
    """
    if not isinstance(data, dict):
        return data
    settings = {k: v for k, v in data.items() if k not in own}
    if not settings:
        return data
    rest = {k: v for k, v in data.items() if k in own}
    context = data.get("context")
    if isinstance(context, HAGContext):
        context = {k: getattr(context, k) for k in context.model_fields_set}
    rest["context"] = {**(context or {}), **settings}
    return rest


class HAGRunnable(RunnableSerializable[HAGInput, HAGResult]):
    """Hyperparameter Aware Generation as a Runnable.

    Example:
        >>> chain = prompt | HAGRunnable(model=chat_model, max_retries=1) | StrOutputParser()

    Any `HAGContext` field may be given as a keyword (it becomes this runnable's run context) or
    per call in a dict input (an explicit argument, which wins).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any = None
    """A `Backend` or LangChain chat model; None uses the backend named in the settings."""
    context: dict[str, Any] = Field(default_factory=dict)
    """Run-context settings (`HAGContext` fields), below per-call settings."""
    stream_tokens: Literal["live", "final", "none"] = "live"
    """``live`` streams every attempt's tokens as generated (a retry follows a ``retry`` event);
    ``final`` streams only the chosen answer, once the run is done; ``none`` streams no text
    (the answer is in the ``result`` event) and calls the model without streaming, as
    ``ainvoke`` does, which costs less (a backend that stops a generation only at a streamed
    token then cannot stop it when the run is cancelled)."""
    checkpointer: Any = None
    """A LangGraph checkpointer to keep conversations by ``thread_id`` (build it with
    `hag_agent.graph.checkpoint_serializer` so it can read our state back)."""
    durability: Durability = "async"
    """When checkpoints are written: ``sync`` has each step on disk before the next starts."""
    _graph: CompiledHAGGraph | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _collect_settings(cls, data: Any) -> Any:
        """Move `HAGContext` keywords into ``context``."""
        return collect_settings(data, set(cls.model_fields))

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Pydantic's repr arguments, with secret backend options (an API key) masked."""
        for name, value in super().__repr_args__():
            if name == "context" and isinstance(value, Mapping) and "backend_options" in value:
                value = {**value, "backend_options": masked_options(value["backend_options"])}
            yield name, value

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Outside pydantic validation, so a bad setting raises our typed error, not pydantic's.
        resolve_context(context=self.context)

    @property
    def graph(self) -> CompiledHAGGraph:
        """The compiled graph this runnable drives."""
        if self._graph is None:
            self._graph = (
                default_graph if self.checkpointer is None else build_graph(self.checkpointer)
            )
        return self._graph

    def _durability(self) -> Durability | None:
        # LangGraph warns about a durability without a checkpointer.
        return None if self.checkpointer is None else self.durability

    def run_context(self, explicit: Mapping[str, Any] | None = None) -> HAGContext:
        """The settings of one call: explicit > this runnable's context > environment > default."""
        context = dict(self.context)
        if self.model is not None:
            context.setdefault("chat_model", self.model)
        resolved = resolve_context(explicit, context)
        proposer_for(resolved)  # its options are checked here, before any model call
        return resolved

    def _graph_call(
        self, input: Any, config: RunnableConfig | None, kwargs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], RunnableConfig, dict[str, Any]]:
        """The graph's input state, config and keyword arguments for one call."""
        messages, settings = parse_input(input)
        context = self.run_context({**settings, **kwargs})
        options = {"context": context, "durability": self._durability()}
        return {"messages": messages}, ensure_config(config), options

    # -- invoke ----------------------------------------------------------------------------

    def invoke(
        self, input: HAGInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> HAGResult:
        """Run the graph on one input.

        The compiled graph is itself a traced chain run (named ``hag-agent`` unless the config
        names it), so callbacks and ``with_config`` reach it and every model call inside it.
        """
        state, config, options = self._graph_call(input, config, kwargs)
        return to_result(self.graph.invoke(state, config, **options))

    async def ainvoke(
        self, input: HAGInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> HAGResult:
        """Run the graph on one input, asynchronously."""
        state, config, options = self._graph_call(input, config, kwargs)
        return to_result(await self.graph.ainvoke(state, config, **options))

    # -- stream ----------------------------------------------------------------------------

    def stream(  # type: ignore[override]  # yields chunks, as chat models do
        self, input: HAGInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        """Yield the answer's tokens and node events, then a ``result`` event."""
        state, config, options = self._graph_call(input, config, kwargs)
        final: Mapping[str, Any] = {}
        parts = self.graph.stream(state, config, stream_mode=self._stream_modes(), **options)
        for mode, data in parts:
            chunk, final = self._stream_part(mode, data, final)
            if chunk is not None:
                yield chunk
        yield from self._closing_chunks(final)

    async def astream(  # type: ignore[override]  # yields chunks, as chat models do
        self, input: HAGInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        """Async `stream`."""
        state, config, options = self._graph_call(input, config, kwargs)
        final: Mapping[str, Any] = {}
        parts = self.graph.astream(state, config, stream_mode=self._stream_modes(), **options)
        async for mode, data in parts:
            chunk, final = self._stream_part(mode, data, final)
            if chunk is not None:
                yield chunk
        for chunk in self._closing_chunks(final):
            yield chunk

    def _stream_modes(self) -> list[StreamMode]:
        return _EVENT_MODES if self.stream_tokens == "none" else _STREAM_MODES

    def _stream_part(
        self, mode: str, data: Any, final: Mapping[str, Any]
    ) -> tuple[AIMessageChunk | None, Mapping[str, Any]]:
        if mode == "values":
            return None, data
        if mode == "messages":
            message, metadata = data
            if self.stream_tokens == "live" and metadata.get("langgraph_node") == "generate":
                text = message.text if isinstance(message, BaseMessage) else ""
                if text:
                    return AIMessageChunk(content=text), final
            return None, final
        for node, update in (data or {}).items():
            event = _summarize(node, update)
            if node == "adjust" and update and update.get("pending") is not None:
                event["type"] = "retry"
            return _event_chunk(event), final
        return None, final

    def _closing_chunks(self, final: Mapping[str, Any]) -> Iterator[AIMessageChunk]:
        result = to_result(final)
        if self.stream_tokens == "final" and result.text:
            yield AIMessageChunk(content=result.text)
        yield _event_chunk({"type": "result", "result": result.to_json_dict()})
