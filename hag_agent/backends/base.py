"""The backend interface: a LangChain chat model plus the adapter for our hyperparameters.

A backend turns `HyperParams` into its model's call arguments, declares what it can do, and
makes two kinds of call: a generation (the answer) and a decision (classify, propose, judge) whose
text is parsed into a pydantic schema. Any failure of the model call becomes a `BackendError`;
model nonsense in a decision becomes ``value=None`` with the reason, never an exception. A backend
with the ``embeddings`` capability also embeds a text: the model's own vector for a prompt, for
the learned proposer head.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, ValidationError

from hag_agent.errors import (
    BackendError,
    ConfigurationError,
    EmbeddingsUnsupportedError,
    HAGError,
    first_error,
)
from hag_agent.hyperparameters import HyperParams
from hag_agent.lenient_json import NoJSONObjectError, extract_json_object

SchemaT = TypeVar("SchemaT", bound=BaseModel)
T = TypeVar("T")

REQUEST_KEY = "hag_request"
"""Config metadata key naming the HAG turn a model call belongs to."""

DECISION_PARAMS = HyperParams(
    temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=160
)
"""Greedy decoding for decisions: a classification or proposal should not be sampled."""


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
    """`Backend.embed` gives the serving model's own vector for a text (one pass, no generation)."""


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


class Backend:
    """A chat model with the adapter that maps our hyperparameters onto its call arguments.

    The base class works for any LangChain chat model that takes sampling values as call
    keyword arguments; subclasses change `call_kwargs`, `structured_kwargs` and `capabilities`.
    """

    name = "chat-model"
    capabilities = Capabilities()

    def __init__(self, chat_model: BaseChatModel, *, proposal_model: BaseChatModel | None = None):
        """Wrap a chat model.

        Args:
            chat_model: The model that answers, classifies and judges.
            proposal_model: An optional model for the proposal call only (e.g. a tuned LoRA
                proposer served beside the base model); defaults to ``chat_model``.
        """
        self.chat_model = chat_model
        self.proposal_model = proposal_model or chat_model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.chat_model).__name__})"

    def call_kwargs(self, params: HyperParams, seed: int | None) -> dict[str, Any]:
        """The chat model's call arguments for one configuration (every value, explicitly)."""
        kwargs: dict[str, Any] = params.model_dump()
        if seed is not None:
            kwargs["seed"] = seed
        return kwargs

    def structured_kwargs(self, schema: type[BaseModel]) -> dict[str, Any]:
        """Extra call arguments that constrain output to ``schema`` (none by default)."""
        return {}

    def to_backend_error(self, exc: Exception) -> BackendError:
        """Turn whatever the chat model raised into our typed error."""
        if isinstance(exc, BackendError):
            return exc
        status = getattr(exc, "status_code", None)
        response = getattr(exc, "response", None)
        body = ""
        if response is not None:
            try:
                body = str(getattr(response, "text", ""))
            except Exception:  # a streamed or closed body cannot be read again
                body = ""
        return BackendError(
            f"{self.name} call failed: {type(exc).__name__}: {exc}",
            status=status if isinstance(status, int) else None,
            body=body,
        )

    # -- the one place every model call goes through --------------------------------------

    def call_extras(self, config: RunnableConfig | None) -> dict[str, Any]:
        """Call arguments derived from the call's config (none by default)."""
        return {}

    def async_model(self, model: BaseChatModel) -> BaseChatModel:
        """The model to await in the running event loop (the same one by default)."""
        return model

    def with_retries(self, call: Callable[[], T]) -> T:
        """Run one model call under the backend's retry policy (none by default)."""
        return call()

    async def awith_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """Async `with_retries`."""
        return await call()

    def invoke_model(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        config: RunnableConfig | None,
        kwargs: dict[str, Any],
    ) -> BaseMessage:
        """Call a chat model under the retry policy; failures become `BackendError`."""
        kwargs = {**kwargs, **self.call_extras(config)}
        try:
            return self.with_retries(lambda: model.invoke(messages, config=config, **kwargs))
        except HAGError:
            raise
        except Exception as exc:
            raise self.to_backend_error(exc) from exc

    async def ainvoke_model(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        config: RunnableConfig | None,
        kwargs: dict[str, Any],
    ) -> BaseMessage:
        """Async `invoke_model`."""
        kwargs = {**kwargs, **self.call_extras(config)}
        bound = self.async_model(model)
        try:
            return await self.awith_retries(
                lambda: bound.ainvoke(messages, config=config, **kwargs)
            )
        except HAGError:
            raise
        except Exception as exc:
            raise self.to_backend_error(exc) from exc

    # -- generation ----------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[BaseMessage],
        params: HyperParams,
        *,
        seed: int | None = None,
        config: RunnableConfig | None = None,
    ) -> Generation:
        """Generate an answer under ``params``.

        Raises:
            BackendError: When the call fails.
        """
        start = time.perf_counter()
        message = self.invoke_model(
            self.chat_model, list(messages), config, self.call_kwargs(params, seed)
        )
        return _to_generation(message, time.perf_counter() - start)

    async def agenerate(
        self,
        messages: Sequence[BaseMessage],
        params: HyperParams,
        *,
        seed: int | None = None,
        config: RunnableConfig | None = None,
    ) -> Generation:
        """Async `generate`."""
        start = time.perf_counter()
        message = await self.ainvoke_model(
            self.chat_model, list(messages), config, self.call_kwargs(params, seed)
        )
        return _to_generation(message, time.perf_counter() - start)

    # -- decisions -----------------------------------------------------------------------

    def decision_kwargs(self, schema: type[BaseModel], max_tokens: int) -> dict[str, Any]:
        """Greedy decoding plus the backend's structured-output arguments for ``schema``."""
        params = DECISION_PARAMS.model_copy(update={"max_tokens": max_tokens})
        return {**self.call_kwargs(params, seed=None), **self.structured_kwargs(schema)}

    def decision_model(self, purpose: str) -> BaseChatModel:
        """The model that makes one kind of decision (the proposer may differ)."""
        return self.proposal_model if purpose == "propose" else self.chat_model

    def decision_text(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        schema: type[BaseModel],
        max_tokens: int,
        config: RunnableConfig | None,
    ) -> str:
        """The raw text of one decision; backends with a cheaper way to decode one override it."""
        kwargs = self.decision_kwargs(schema, max_tokens)
        return message_text(self.invoke_model(model, messages, config, kwargs))

    async def adecision_text(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        schema: type[BaseModel],
        max_tokens: int,
        config: RunnableConfig | None,
    ) -> str:
        """Async `decision_text`."""
        kwargs = self.decision_kwargs(schema, max_tokens)
        return message_text(await self.ainvoke_model(model, messages, config, kwargs))

    def decide(
        self,
        messages: Sequence[BaseMessage],
        schema: type[SchemaT],
        *,
        purpose: str = "decide",
        max_tokens: int = 160,
        config: RunnableConfig | None = None,
    ) -> Decision:
        """Ask for a structured decision; never raises on a bad answer.

        Raises:
            BackendError: When the call itself fails.
        """
        start = time.perf_counter()
        model = self.decision_model(purpose)
        text = self.decision_text(model, list(messages), schema, max_tokens, config)
        return parse_decision(text, schema, time.perf_counter() - start)

    async def adecide(
        self,
        messages: Sequence[BaseMessage],
        schema: type[SchemaT],
        *,
        purpose: str = "decide",
        max_tokens: int = 160,
        config: RunnableConfig | None = None,
    ) -> Decision:
        """Async `decide`."""
        start = time.perf_counter()
        model = self.decision_model(purpose)
        text = await self.adecision_text(model, list(messages), schema, max_tokens, config)
        return parse_decision(text, schema, time.perf_counter() - start)

    # -- embeddings ----------------------------------------------------------------------

    def embedding_model(self) -> str | None:
        """Names the model behind `embed` (e.g. its file name and size), or None when unknown.

        A learned head records the name it was trained with, so vectors of another model are
        never fed to it.
        """
        return None

    def embed(self, text: str, *, config: RunnableConfig | None = None) -> list[float]:
        """The serving model's vector for ``text`` (one pass over it, nothing generated).

        Raises:
            EmbeddingsUnsupportedError: When the backend has no ``embeddings`` capability.
            BackendError: When the call fails.
        """
        raise EmbeddingsUnsupportedError(f"backend {self.name!r} cannot embed text")

    async def aembed(self, text: str, *, config: RunnableConfig | None = None) -> list[float]:
        """Async `embed`."""
        return self.embed(text, config=config)

    def embedding(self, text: str, *, config: RunnableConfig | None = None) -> Embedding:
        """`embed` with its model and wall time, as `decide` returns a `Decision`."""
        start = time.perf_counter()
        vector = self.embed(text, config=config)
        return Embedding(
            vector=vector, model=self.embedding_model(), latency_s=time.perf_counter() - start
        )

    async def aembedding(self, text: str, *, config: RunnableConfig | None = None) -> Embedding:
        """Async `embedding`."""
        start = time.perf_counter()
        vector = await self.aembed(text, config=config)
        return Embedding(
            vector=vector, model=self.embedding_model(), latency_s=time.perf_counter() - start
        )


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


def _to_generation(message: BaseMessage, latency_s: float) -> Generation:
    metadata = message.response_metadata or {}
    finish = (
        metadata.get("finish_reason") or metadata.get("stop_reason") or metadata.get("done_reason")
    )
    usage = message.usage_metadata if isinstance(message, AIMessage) else None
    return Generation(
        text=message_text(message),
        finish_reason=str(finish) if finish is not None else None,
        prompt_tokens=usage["input_tokens"] if usage else None,
        completion_tokens=usage["output_tokens"] if usage else None,
        latency_s=latency_s,
        mean_logprob=_mean_logprob(metadata.get("logprobs")),
    )


def _mean_logprob(logprobs: Any) -> float | None:
    """Mean of OpenAI-style ``{"content": [{"logprob": ...}, ...]}`` or a plain list."""
    items = logprobs.get("content") if isinstance(logprobs, dict) else logprobs
    if not isinstance(items, list) or not items:
        return None
    values = [
        float(item["logprob"]) if isinstance(item, dict) else float(item)
        for item in items
        if (isinstance(item, dict) and isinstance(item.get("logprob"), int | float))
        or isinstance(item, int | float)
    ]
    return sum(values) / len(values) if values else None


def numeric_keys(schema: type[BaseModel]) -> dict[str, str] | None:
    """``{key: "int" | "float"}`` for a schema of required numbers only, else None."""
    keys: dict[str, str] = {}
    for name, field in schema.model_fields.items():
        if field.annotation not in (int, float) or not field.is_required():
            return None
        keys[name] = "int" if field.annotation is int else "float"
    return keys or None


def as_backend(model: object) -> Backend:
    """Accept a `Backend` or any LangChain chat model.

    Raises:
        ConfigurationError: For anything else.
    """
    if isinstance(model, Backend):
        return model
    if isinstance(model, BaseChatModel):
        return Backend(model)
    raise ConfigurationError(
        f"expected a hag_agent Backend or a LangChain chat model, got {type(model).__name__}"
    )


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
    "Embedding",
    "Generation",
    "as_backend",
    "message_text",
    "parse_decision",
    "tagged",
]


def request_of(config: RunnableConfig | None) -> str | None:
    """The HAG turn a call belongs to, from its config metadata."""
    value = (config or {}).get("metadata", {}).get(REQUEST_KEY)
    return str(value) if value else None
