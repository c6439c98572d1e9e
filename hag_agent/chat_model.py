"""`ChatHAG`: HAG as a LangChain chat model, for whatever takes one (agents, LangGraph nodes).

Each call runs the HAG graph (`HAGRunnable`) on the messages as given (system prompt and earlier
turns included) and returns the chosen attempt as an `AIMessage`: ``usage_metadata`` sums every
model call of the turn that reports usage (each attempt, an LLM classifier, a judge, a proposal
made by a chat model call), and ``response_metadata["hag"]`` holds the run's record (task,
proposer, each param with its source, every attempt, the stop reason).

Settings are HAGRunnable's: `HAGContext` fields as constructor keywords or per call
(``chat.invoke(messages, max_retries=0)``, ``chat.bind(critique=False)``), then ``HAG_*``
variables, then defaults. A sampling value given by name (``temperature=0.2``, ``max_tokens=64``:
LangChain's standard parameters) is pinned; HAG chooses the others.

Streaming hands on only text that ends up as the answer: when a turn can make one attempt only
(critique off, or no retries) its tokens go out as generated; otherwise each attempt's tokens are
held until the run has chosen one, and the chosen attempt's tokens go out then.

`ChatHAG.bind_tools` and `ChatHAG.with_structured_output` reach the answer's generation call
only (never the proposal, classification or judge calls); a tool call or a structured answer is
judged on its form (well-formed is accepted as it is, malformed is retried). A turn is a run of
its own: the caller's callbacks see this model's run, not the calls inside it.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal, TypeVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ToolCallChunk,
    UsageMetadata,
)
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.own_task import in_own_task
from hag_agent.runnable import HAGResult, HAGRunnable, collect_settings

PROVIDER = "hag-agent"
ANSWER_CALL_KEYS = ("tools", "tool_choice", "output_schema")
"""Call arguments that go to the answer's generation call only (`bind_tools` and
`ChatHAG.with_structured_output` set them)."""
T = TypeVar("T")
_END: Any = object()


def pin_sampling_values(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with sampling values given by name (``temperature=0``) moved into ``params``.

    A None value counts as not given.
    """
    named = {k: settings[k] for k in HYPERPARAM_KEYS if settings.get(k) is not None}
    rest = {k: v for k, v in settings.items() if k not in HYPERPARAM_KEYS}
    if named:
        rest["params"] = {**(rest.get("params") or {}), **named}
    return rest


def hag_record(result: Mapping[str, Any]) -> dict[str, Any]:
    """The run's record for ``response_metadata["hag"]``, from `HAGResult.to_json_dict`."""
    attempts: list[dict[str, Any]] = list(result.get("attempts") or [])
    best = result.get("best_attempt")
    chosen = attempts[best] if best is not None and best < len(attempts) else {}
    sources = chosen.get("sources") or {}
    proposer = next(
        (e["data"].get("proposer") for e in result.get("trace") or [] if e["node"] == "propose"),
        None,
    )
    return {
        "task": result.get("task"),
        "proposer": proposer,
        "params": {
            key: {"value": value, "source": sources.get(key)}
            for key, value in (result.get("params") or {}).items()
        },
        "chosen_attempt": best,
        "attempts": attempts,
        "stop_reason": result.get("stop_reason", ""),
    }


def tool_call_chunks(record: Mapping[str, Any]) -> list[ToolCallChunk]:
    """The chosen attempt's tool calls as stream chunks (whole: they are sent once, at the end)."""
    best = record.get("chosen_attempt")
    if best is None:
        return []
    calls = record["attempts"][best].get("tool_calls") or []
    return [
        ToolCallChunk(name=c["name"], args=json.dumps(c["args"]), id=c.get("id"), index=i)
        for i, c in enumerate(calls)
    ]


class TurnUsage(BaseCallbackHandler):
    """Sums the usage every model call of one turn reports."""

    run_inline = True  # plain additions: no thread hop needed on the event loop

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self._lock = threading.Lock()

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Add one finished call's usage."""
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                usage = message.usage_metadata if isinstance(message, AIMessage) else None
                if usage:
                    with self._lock:
                        self.input_tokens += int(usage["input_tokens"])
                        self.output_tokens += int(usage["output_tokens"])

    def metadata(self) -> UsageMetadata:
        """The turn's usage as LangChain's ``usage_metadata``."""
        return UsageMetadata(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.input_tokens + self.output_tokens,
        )


class AnswerTokens:
    """Sorts `HAGRunnable.stream`'s chunks into attempts and hands on only the answer's text."""

    def __init__(self, live: bool) -> None:
        """``live``: the turn makes one attempt only, so its tokens go out as generated."""
        self.live = live
        self.result: dict[str, Any] | None = None
        self._attempts: dict[int, list[str]] = {}
        self._current: list[str] = []
        self._sent: list[str] = []

    def take(self, chunk: AIMessageChunk) -> str:
        """Read one chunk; returns the text to send now (empty while it is held)."""
        for event in chunk.additional_kwargs.get("hag_events", []):
            if event.get("type") == "result":
                self.result = dict(event["result"])
            elif event.get("node") == "generate" and "attempt" in event:
                self._attempts[int(event["attempt"])] = self._current
                self._current = []
        text = chunk.text
        if not text:
            return ""
        self._current.append(text)
        if not self.live:
            return ""
        self._sent.append(text)
        return text

    def rest(self) -> list[str]:
        """The answer's pieces not sent yet, once the run has ended.

        Pieces that do not spell the answer (a backend that did not stream, or retried a call
        mid-stream) give way to the answer whole; live text already sent cannot be taken back.
        """
        assert self.result is not None, "HAGRunnable's stream ends with a result event"
        answer = str(self.result.get("answer", ""))
        if self.live:
            streamed = "".join(self._sent)
            return [answer[len(streamed) :]] if answer.startswith(streamed) else []
        pieces = self._attempts.get(self.result.get("best_attempt") or 0, [])
        return pieces if "".join(pieces) == answer else [answer]


def _own_run() -> contextvars.Context:
    """A context without the calling runnable's config, for a turn that is a run of its own.

    LangChain and LangGraph merge the config of the runnable (a graph node) that calls this
    model into every run started inside it: its callbacks (a graph's message stream among them,
    which must never see attempt text), its tracing parent and its checkpoint coordinates. The
    turn gets only the config it is given.
    """
    context = contextvars.copy_context()
    context.run(var_child_runnable_config.set, None)
    return context


def _iterate_in(context: contextvars.Context, stream: Iterator[T]) -> Iterator[T]:
    """Each step of a generator run in ``context``."""
    while (item := context.run(next, stream, _END)) is not _END:
        yield item


def _token_chunk(text: str) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=text))


class ChatHAG(BaseChatModel):
    """Hyperparameter Aware Generation as a LangChain chat model.

    Example:
        >>> chat = ChatHAG(model=any_chat_model, max_retries=1)
        >>> chat.invoke([("system", "Be brief."), ("user", "Why is the sky blue?")])

    Any `HAGContext` field may be given as a keyword (it becomes this model's run context) or
    per call; a sampling value given by name is pinned.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model: Any = None
    """A `Backend` or LangChain chat model; None uses the backend named in the settings."""
    context: dict[str, Any] = Field(default_factory=dict)
    """Run-context settings (`HAGContext` fields), below per-call settings."""
    stop: list[str] | None = None
    """Stop sequences of the answer's generation call (not of decision calls)."""
    streaming: bool = False
    """Answer ``invoke`` by streaming (so callbacks get the answer's tokens)."""
    model_name: str = PROVIDER
    """The name this model reports (``response_metadata["model_name"]``, traces)."""
    _runnable: HAGRunnable = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _collect_settings(cls, data: Any) -> Any:
        """Move `HAGContext` keywords into ``context``; pin sampling values given by name."""
        if isinstance(data, dict):
            data = pin_sampling_values(data)
        return collect_settings(data, set(cls.model_fields))

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # HAGRunnable checks the settings (our typed error) and runs the graph.
        self._runnable = HAGRunnable(model=self.model, context=self.context)

    @property
    def runnable(self) -> HAGRunnable:
        """The `HAGRunnable` that runs this model's turns."""
        return self._runnable

    @property
    def _llm_type(self) -> str:
        return PROVIDER

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # repr masks secret backend options (an API key).
        return {"model_name": self.model_name, "hag": repr(self._runnable)}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = pin_sampling_values({"params": self.context.get("params"), **kwargs})["params"]
        ls_params = LangSmithParams(
            ls_provider=PROVIDER,
            ls_model_name=str(kwargs.get("model") or self.model_name),
            ls_model_type="chat",
        )
        if (params or {}).get("temperature") is not None:
            ls_params["ls_temperature"] = float(params["temperature"])
        if (params or {}).get("max_tokens") is not None:
            ls_params["ls_max_tokens"] = int(params["max_tokens"])
        if stop := stop or self.stop:
            ls_params["ls_stop"] = list(stop)
        return ls_params

    # -- one turn ----------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools to the answer's generation call (the decision calls never see them).

        Tools go to the wrapped model in OpenAI's format, which every LangChain chat model's
        ``bind_tools`` reads; ``tool_choice`` is passed on as given.
        """
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Literal["json_schema", "json_mode", "function_calling"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers parsed into ``schema`` (a pydantic model, a TypedDict or a JSON schema).

        ``json_schema`` and ``json_mode`` (the same here): the answer call is constrained to the
        schema by the backend's structured-output mode (llama.cpp's grammar, a server's
        ``response_format``), or asked by the prompt alone where it has none. ``function_calling``
        binds the schema as the one tool the answer must call. Either way the proposal still
        chooses the sampling values, and an answer that does not validate is sent back to the
        retry loop; what is still invalid when the retries are spent raises the parser's
        `OutputParserException` (``include_raw``: it is returned as ``parsing_error``).
        ``strict`` is accepted for LangChain's signature: every answer is validated anyway.

        Raises:
            ValueError: For an argument LangChain's signature does not have.
        """
        if kwargs:
            raise ValueError(f"unsupported arguments: {sorted(kwargs)}")
        is_model = isinstance(schema, type) and is_basemodel_subclass(schema)
        traced = {"kwargs": {"method": method}, "schema": convert_to_json_schema(schema)}
        parser: Runnable[Any, Any]
        if method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name, ls_structured_output_format=traced)
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if is_model
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        else:
            llm = self.bind(output_schema=schema, ls_structured_output_format=traced)
            parser = (
                PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
            )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks(
            [unparsed], exception_key="parsing_error"
        )

    def _turn_input(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        """HAGRunnable's input for one call: the messages and the call's settings.

        Stop sequences and bound tools become options of the answer call only.
        """
        settings = pin_sampling_values(kwargs)
        options = {k: settings.pop(k) for k in ANSWER_CALL_KEYS if settings.get(k) is not None}
        stop = stop if stop is not None else self.stop
        if stop:
            options["stop"] = stop
        if options:
            settings["answer_options"] = {**settings.get("answer_options", {}), **options}
        return {"messages": messages, **settings}

    def _one_attempt(self, turn_input: Mapping[str, Any]) -> bool:
        """Whether the turn can make one attempt only, so that attempt is the answer."""
        settings = {k: v for k, v in turn_input.items() if k != "messages"}
        context = self._runnable.run_context(settings)
        return not context.critique or context.max_retries == 0

    @staticmethod
    def _turn_config(usage: TurnUsage) -> RunnableConfig:
        """The turn's config: its calls report to ``usage`` alone.

        The caller's callbacks see this model's run only, as LangChain expects of a chat model:
        a usage counter would otherwise count every inner call twice, and a stream consumer
        (a graph's ``messages`` mode) would get attempt text. Run in `_own_run`, nothing of the
        calling runnable's config reaches the turn either.
        """
        return {"callbacks": [usage]}

    def _answer(self, result: Mapping[str, Any], usage: TurnUsage) -> dict[str, Any]:
        """The answer message's metadata fields, from the run's result."""
        record = hag_record(result)
        attempts = record["attempts"]
        chosen = attempts[record["chosen_attempt"]] if record["chosen_attempt"] is not None else {}
        return {
            "usage_metadata": usage.metadata(),
            "response_metadata": {
                "model_name": self.model_name,
                "model_provider": PROVIDER,
                "finish_reason": chosen.get("finish_reason"),
                "hag": record,
            },
        }

    # -- the chat model interface ----------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        usage = TurnUsage()
        config = self._turn_config(usage)
        turn_input = self._turn_input(messages, stop, kwargs)
        result = _own_run().run(self._runnable.invoke, turn_input, config)
        return self._chat_result(result, usage)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        usage = TurnUsage()
        config = self._turn_config(usage)
        turn = self._runnable.ainvoke(self._turn_input(messages, stop, kwargs), config)
        result = await asyncio.create_task(turn, context=_own_run())
        return self._chat_result(result, usage)

    def _chat_result(self, result: HAGResult, usage: TurnUsage) -> ChatResult:
        """The answer message: the chosen attempt's text and tool calls, usage, the record."""
        message = AIMessage(
            content=result.text,
            tool_calls=result.tool_calls,
            invalid_tool_calls=result.invalid_tool_calls,
            **self._answer(result.to_json_dict(), usage),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        usage = TurnUsage()
        turn_input = self._turn_input(messages, stop, kwargs)
        tokens = AnswerTokens(live=self._one_attempt(turn_input))
        config = self._turn_config(usage)
        for chunk in _iterate_in(_own_run(), self._runnable.stream(turn_input, config)):
            if text := tokens.take(chunk):
                yield _token_chunk(text)
        yield from self._closing_chunks(tokens, usage)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        usage = TurnUsage()
        turn_input = self._turn_input(messages, stop, kwargs)
        tokens = AnswerTokens(live=self._one_attempt(turn_input))
        config = self._turn_config(usage)
        async for chunk in in_own_task(self._runnable.astream(turn_input, config), _own_run()):
            if text := tokens.take(chunk):
                yield _token_chunk(text)
        for closing in self._closing_chunks(tokens, usage):
            yield closing

    def _closing_chunks(self, tokens: AnswerTokens, usage: TurnUsage) -> list[ChatGenerationChunk]:
        """The answer's held (or unsent) pieces, then the last chunk with the usage and record."""
        chunks = [_token_chunk(piece) for piece in tokens.rest() if piece]
        assert tokens.result is not None
        metadata = self._answer(tokens.result, usage)
        last = AIMessageChunk(
            content="",
            chunk_position="last",
            tool_call_chunks=tool_call_chunks(metadata["response_metadata"]["hag"]),
            **metadata,
        )
        return [*chunks, ChatGenerationChunk(message=last)]


__all__ = ["ChatHAG", "hag_record", "pin_sampling_values"]
