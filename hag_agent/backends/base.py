"""The backend interface: three coroutines, one sync shim, capabilities declared as data.

A backend makes three kinds of call: a generation (the answer under `HyperParams`), a decision
(classify, propose, judge: text parsed into a pydantic schema, under the output constraint the
caller asks for) and, with the ``embeddings`` capability, an embedding (the model's own vector of
a text, for the learned proposer head). It implements them as coroutines (`Backend.agenerate`,
`Backend.adecide`, `Backend.aembed`); sync callers go through `Backend.run_sync`.

The failure contract: a failed model call raises a `BackendError`; model nonsense in a decision
is ``Decision(value=None, error=...)``, never an exception.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Concatenate, Literal, ParamSpec, TypeVar, final

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hag_agent.errors import ConfigurationError, EmbeddingsUnsupportedError, first_error
from hag_agent.hyperparameters import HyperParams
from hag_agent.lenient_json import NoJSONObjectError, extract_json_object
from hag_agent.training_scope import TrainingScope

SchemaT = TypeVar("SchemaT", bound=BaseModel)
T = TypeVar("T")
P = ParamSpec("P")
BackendT = TypeVar("BackendT", bound="Backend")

REQUEST_KEY = "hag_request"
"""Config metadata key naming the HAG turn a model call belongs to."""

DECISION_PARAMS = HyperParams(
    temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=160
)
"""Greedy decoding for decisions: a classification or proposal should not be sampled."""


class OutputConstraint(StrEnum):
    """How the caller wants a decision's text constrained (each backend does what it can)."""

    JSON_SCHEMA = "json_schema"
    """A JSON object of the schema, by the backend's structured output."""
    COMPACT_NUMERIC_OBJECT = "compact_numeric_object"
    """Exactly the schema's keys, in order, each a bounded number, no whitespace (the proposal's
    trained format); the schema must be a flat object of required numbers."""


class Capabilities(BaseModel):
    """What a backend supports; tests for a missing capability are skipped with this reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    structured_output: Literal["json_schema", "json_object", "prompt"] = "prompt"
    """How decisions are constrained: a JSON schema, JSON mode, or the prompt alone."""
    logprobs: bool = False
    """Token logprobs are reported."""
    seed: bool = False
    """A seed reaches the sampler."""
    reproducible: bool = False
    """The same call twice gives the same text (same seed, or temperature 0)."""
    top_k: bool = False
    """top_k reaches the decoder."""
    min_p: bool = False
    """min_p reaches the decoder."""
    repetition_penalty_name: str | None = None
    """The decoder's own name for the repetition penalty, or None when unsupported."""
    streaming: bool = True
    """Tokens can be streamed."""
    validates_params: bool = False
    """Invalid sampling values are rejected (e.g. vLLM's 400 for top_p 5), not silently used."""
    embeddings: bool = False
    """`Backend.aembed` gives the model's own vector for a text (one pass, no generation)."""


class Generation(BaseModel):
    """The result of one generation call."""

    model_config = ConfigDict(extra="forbid")

    text: str
    """The generated text."""
    finish_reason: str | None = None
    """Why generation stopped (``stop``, ``length``)."""
    prompt_tokens: int | None = None
    """Prompt tokens, when reported."""
    completion_tokens: int | None = None
    """Generated tokens, when reported."""
    latency_s: float = 0.0
    """Wall time of the call."""
    mean_logprob: float | None = None
    """Mean token logprob, when reported."""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """Tool calls the answer makes (LangChain's ``ToolCall`` dicts), when tools were bound."""
    invalid_tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """Tool calls the model wrote but that could not be parsed (``InvalidToolCall`` dicts)."""


class Decision(BaseModel):
    """The result of one decision call: the validated value or why there is none."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    raw_text: str = ""
    """What the model said."""
    value: Any = None
    """The validated schema instance, or None."""
    error: str | None = None
    """Why ``value`` is None."""
    latency_s: float = 0.0
    """Wall time of the call."""


class Embedding(BaseModel):
    """The result of one embedding pass over a text."""

    model_config = ConfigDict(extra="forbid")

    vector: list[float]
    """The text's vector."""
    model: str | None = None
    """The model that made it (`Backend.embedding_model`), when known."""
    latency_s: float = 0.0
    """Wall time of the call."""


@dataclass(frozen=True)
class GenerationRequest:
    """One answer asked of a backend: the conversation, the configuration, the seed."""

    messages: Sequence[BaseMessage]
    """The conversation to answer."""
    params: HyperParams
    """The decoding configuration, every value sent explicitly."""
    seed: int | None = None
    """The sampling seed (the caller's, never proposed)."""
    config: RunnableConfig | None = None
    """The call's LangChain config (tags, callbacks, the turn's request id)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Further arguments of the answer call that are the caller's, not HAG's choice (e.g. stop
    sequences a chat model's caller gave); the sampling values always come from ``params``."""


@dataclass(frozen=True)
class DecisionRequest:
    """One structured decision asked of a backend: what to ask and how to constrain the answer."""

    messages: Sequence[BaseMessage]
    """The prompt."""
    schema: type[BaseModel]
    """What the answer must validate as."""
    purpose: str = "decide"
    """``classify``, ``propose``, ``judge`` ... (a backend may route ``propose`` to a model of
    its own, e.g. a tuned proposer)."""
    constraint: OutputConstraint = OutputConstraint.JSON_SCHEMA
    """How the caller wants the text constrained."""
    given: Mapping[str, float] = field(default_factory=dict)
    """For a compact numeric object: values the caller writes into it itself, by key (e.g. the
    values a tuned proposer's training data held fixed). A backend that decodes the object key by
    key writes them as given and decodes only the rest; any other may decode them too, and the
    caller overrides them."""
    shared_prefix: str = ""
    """The prompt's leading text that every call of its kind repeats (the proposal's
    instructions for one task kind); a backend may keep its evaluated state and start there.
    Empty: none."""
    max_tokens: int = 160
    """The decision's token budget."""
    config: RunnableConfig | None = None
    """The call's LangChain config (tags, callbacks, the turn's request id)."""

    def __post_init__(self) -> None:
        """Refuse a compact numeric object for a schema that is not one, on every backend alike.

        Raises:
            ConfigurationError: Naming the field that is not a required number.
        """
        if self.constraint is OutputConstraint.COMPACT_NUMERIC_OBJECT:
            numeric_fields(self.schema)


@dataclass(frozen=True)
class ProposerChoice:
    """The proposer a run on a backend gets when the run names none, and why."""

    name: str
    """The registered proposer."""
    reason: str = ""
    """Why this one, in words (the trace shows it)."""


PRIOR_BY_DEFAULT = ProposerChoice(
    "prior",
    reason="the task prior costs no model call, and no proposer measured better beyond the "
    "noise on held-out cases (an untuned model asked to propose copies the example it is shown)",
)
"""The default of every built-in backend (docs/results.md, "Which proposer by default")."""


def _for_sync_callers(
    coroutine_method: Callable[Concatenate[BackendT, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[BackendT, P], T]:
    """The sync twin of a backend coroutine: the same arguments, through `Backend.run_sync`.

    The twin looks the coroutine up by name on the instance, so a subclass's override is the
    one that runs.
    """
    name = coroutine_method.__name__

    def sync_method(self: BackendT, /, *args: P.args, **kwargs: P.kwargs) -> T:
        coroutine: Coroutine[Any, Any, T] = getattr(self, name)(*args, **kwargs)
        return self.run_sync(coroutine)

    sync_method.__name__ = sync_method.__qualname__ = name.removeprefix("a")
    sync_method.__doc__ = f"`{name}` for sync callers."
    return sync_method


class Backend(ABC):
    """A model behind three coroutines; `run_sync` serves sync callers.

    Implement `agenerate` and `adecide` (and `aembed` with the ``embeddings`` capability), set
    ``name`` and ``capabilities``. A backend whose engine is sync underneath sets ``native_sync``
    and makes each blocking engine call through `engine_call` (and each wait through `pause`):
    its coroutines then never suspend for a sync caller, and `run_sync` completes them without an
    event loop. Why: the embedded llama.cpp engine and LangChain chat models are sync underneath,
    and a request's orchestration costs about a millisecond; an event loop per call, or a hop to
    a loop thread, would add a measurable share of that to every sync call.
    """

    name: str = "backend"
    capabilities: Capabilities = Capabilities()
    native_sync: ClassVar[bool] = False
    """The coroutines run without an event loop for sync callers (see `engine_call`)."""

    @abstractmethod
    async def agenerate(self, request: GenerationRequest) -> Generation:
        """Generate an answer under ``request.params``.

        Raises:
            BackendError: When the call fails.
        """

    @abstractmethod
    async def adecide(self, request: DecisionRequest) -> Decision:
        """Ask for a structured decision, greedily; a bad answer is ``value=None``, not raised.

        Raises:
            BackendError: When the call itself fails.
        """

    async def aembed(self, text: str, *, config: RunnableConfig | None = None) -> Embedding:
        """The serving model's vector for ``text`` (one pass over it, nothing generated).

        Raises:
            EmbeddingsUnsupportedError: When the backend has no ``embeddings`` capability.
            BackendError: When the call fails.
        """
        raise EmbeddingsUnsupportedError(f"backend {self.name!r} cannot embed text")

    def embedding_model(self) -> str | None:
        """Names the model behind `aembed` (e.g. its file name and size), or None when unknown.

        A learned head records the name it was trained with, so vectors of another model are
        never fed to it.
        """
        return None

    def default_proposer(self) -> ProposerChoice:
        """The proposer a run gets when it names none: the best measured quality per cost.

        The task prior, here and on the built-in backends: the packaged head and adapter did not
        beat it beyond the noise on held-out cases. A backend given a proposer model of its own
        names the tuned proposer (`ChatModelBackend.default_proposer`).
        """
        return PRIOR_BY_DEFAULT

    def proposer_scope(self) -> TrainingScope | None:
        """What the model answering proposal calls was trained on, or None when unknown.

        A backend serving a tuned proposer returns the scope on its card (`proposer_card`), read
        once: a proposer then leaves the keys its data held fixed, and the task kinds it never
        saw, to the task prior.
        """
        return None

    # -- for sync callers: one shim ---------------------------------------------------------

    @final
    def run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one of this backend's coroutines for a sync caller and return its result.

        A ``native_sync`` backend's coroutine runs here, without an event loop; any other runs
        in an event loop of its own (on a worker thread when this thread already runs one, as
        for a sync ``invoke`` from async code).
        """
        token = _SYNC_CALLER.set(self.native_sync)
        try:
            if self.native_sync:
                return complete_without_loop(coroutine)
            return _run_in_new_loop(coroutine)
        finally:
            _SYNC_CALLER.reset(token)

    # The shims share the coroutines' signatures (ParamSpec) instead of repeating them.
    generate = _for_sync_callers(agenerate)
    decide = _for_sync_callers(adecide)
    embed = _for_sync_callers(aembed)


_SYNC_CALLER: ContextVar[bool] = ContextVar("hag_sync_caller", default=False)


def sync_caller() -> bool:
    """Whether the running backend coroutine serves a sync caller (``native_sync`` backends)."""
    return _SYNC_CALLER.get()


async def engine_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking engine call: in place for a sync caller, in a worker thread for an async one.

    In a worker thread the event loop keeps serving other runs while the engine works.
    """
    if _SYNC_CALLER.get():
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


async def pause(seconds: float) -> None:
    """Wait (between retries): blocking for a sync caller, on the event loop for an async one."""
    if _SYNC_CALLER.get():
        time.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


def complete_without_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end (a generator's ``send``, no event loop)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError(
        "a native_sync backend waited on the event loop for a sync caller: make blocking "
        "calls through engine_call and waits through pause"
    )


@functools.cache
def _loop_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(thread_name_prefix="hag-sync-shim")


def _run_in_new_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # This thread runs a loop already (a sync call from async code): run it on another thread.
    context = contextvars.copy_context()
    return _loop_threads().submit(context.run, asyncio.run, coroutine).result()


def parse_decision(text: str, schema: type[BaseModel], latency_s: float) -> Decision:
    """Validate decision text against a schema; failures become ``error``."""
    try:
        raw = extract_json_object(text)
        value = schema.model_validate(raw)
    except NoJSONObjectError as exc:
        return Decision(raw_text=text, error=f"not JSON: {exc}", latency_s=latency_s)
    except ValidationError as exc:
        where, message = first_error(exc, schema.__name__)
        return Decision(raw_text=text, error=f"invalid {where}: {message}", latency_s=latency_s)
    return Decision(raw_text=text, value=value, latency_s=latency_s)


def message_text(message: BaseMessage) -> str:
    """The plain text of a message whose content may be a list of blocks."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


@functools.cache  # a schema's fields never change; every proposal asks again
def numeric_fields(schema: type[BaseModel]) -> Mapping[str, Literal["int", "float"]]:
    """``{key: "int" | "float"}`` of a flat schema of required numbers, in field order.

    Raises:
        ConfigurationError: For a schema with any other field (a compact numeric object was
            asked for a schema that is not one).
    """
    keys: dict[str, Literal["int", "float"]] = {}
    for name, info in schema.model_fields.items():
        if info.annotation not in (int, float) or not info.is_required():
            raise ConfigurationError(
                f"{schema.__name__}.{name} is not a required number: "
                f"{OutputConstraint.COMPACT_NUMERIC_OBJECT} needs a flat object of numbers"
            )
        keys[name] = "int" if info.annotation is int else "float"
    if not keys:
        raise ConfigurationError(f"{schema.__name__} has no fields to decode")
    return keys


def tagged(config: RunnableConfig | None, purpose: str) -> RunnableConfig:
    """A child config tagged with the call's purpose (``hag:generate``, ``hag:propose`` ...)."""
    # Plain dict work: merge_configs costs ~0.1 ms a call, a twentieth of the graph's budget.
    base: RunnableConfig = config or {}
    tagged_config: RunnableConfig = {**base}
    tagged_config["tags"] = [*base.get("tags", []), f"hag:{purpose}"]
    tagged_config["metadata"] = {**base.get("metadata", {}), "hag_call": purpose}
    return tagged_config


__all__ = [
    "DECISION_PARAMS",
    "Backend",
    "Capabilities",
    "Decision",
    "DecisionRequest",
    "Embedding",
    "Generation",
    "OutputConstraint",
    "complete_without_loop",
    "engine_call",
    "message_text",
    "numeric_fields",
    "parse_decision",
    "pause",
    "request_of",
    "sync_caller",
    "tagged",
]


def request_of(config: RunnableConfig | None) -> str | None:
    """The HAG turn a call belongs to, from its config metadata."""
    value = (config or {}).get("metadata", {}).get(REQUEST_KEY)
    return str(value) if value else None
