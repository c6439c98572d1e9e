"""Any LangChain chat model as a backend: the adapter from our hyperparameters to its calls.

`ChatModelBackend` works for any chat model that takes sampling values as call keyword arguments;
the built-ins subclass it and change `call_kwargs`, `structured_kwargs`, `call_extras`,
`retrying` or `decision_text`. LangChain chat models are sync underneath (``invoke``) as well as
async (``ainvoke``), so the adapter is ``native_sync``: a sync caller's call goes to ``invoke``
directly, an async caller's to ``ainvoke``; everything else is written once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.utils.function_calling import convert_to_json_schema
from pydantic import BaseModel

from hag_agent.backends.base import (
    DECISION_PARAMS,
    PRIOR_BY_DEFAULT,
    Backend,
    Decision,
    DecisionRequest,
    Generation,
    GenerationRequest,
    OutputConstraint,
    ProposerChoice,
    T,
    message_text,
    parse_decision,
    sync_caller,
)
from hag_agent.errors import BackendError, ConfigurationError, HAGError
from hag_agent.hyperparameters import HyperParams


class ChatModelBackend(Backend):
    """A LangChain chat model with the adapter that maps our hyperparameters onto its calls."""

    name = "chat-model"
    native_sync: ClassVar[bool] = True

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

    # -- what the model is called with ------------------------------------------------------

    def call_kwargs(self, params: HyperParams, seed: int | None) -> dict[str, Any]:
        """The chat model's call arguments for one configuration (every value, explicitly)."""
        kwargs: dict[str, Any] = params.model_dump()
        if seed is not None:
            kwargs["seed"] = seed
        return kwargs

    def structured_kwargs(
        self, schema: type[BaseModel], constraint: OutputConstraint
    ) -> dict[str, Any]:
        """Extra call arguments that constrain a decision's output (none by default)."""
        return {}

    def decision_kwargs(
        self, schema: type[BaseModel], constraint: OutputConstraint, max_tokens: int
    ) -> dict[str, Any]:
        """Greedy decoding plus the structured-output arguments for ``schema``."""
        params = DECISION_PARAMS.model_copy(update={"max_tokens": max_tokens})
        return {**self.call_kwargs(params, seed=None), **self.structured_kwargs(schema, constraint)}

    def call_extras(self, config: RunnableConfig | None) -> dict[str, Any]:
        """Call arguments derived from the call's config (none by default)."""
        return {}

    def answer_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        """The answer call's arguments: the caller's options, tools bound, then our params.

        An ``output_schema`` option (a pydantic model, a TypedDict or a JSON schema) constrains
        the answer as far as the backend can (`constrain_answer`).
        """
        options = dict(request.options)
        tools = options.pop("tools", None)
        tool_choice = options.pop("tool_choice", None)
        schema = options.pop("output_schema", None)
        if tools:
            options.update(self.tool_kwargs(tools, tool_choice))
        kwargs = {**options, **self.call_kwargs(request.params, request.seed)}
        if schema is not None:
            kwargs = self.constrain_answer(kwargs, convert_to_json_schema(schema))
        return kwargs

    def constrain_answer(
        self, kwargs: dict[str, Any], json_schema: dict[str, Any]
    ) -> dict[str, Any]:
        """The answer call's arguments constrained to a JSON schema (unchanged by default).

        Without a structured-output mode the prompt alone asks for the format; the critique
        validates each answer and sends an invalid one back for another attempt.
        """
        return kwargs

    def tool_kwargs(self, tools: Sequence[Any], tool_choice: Any) -> dict[str, Any]:
        """The call arguments that bind ``tools``, in the chat model's own format.

        The model's ``bind_tools`` formats them; its binding's arguments are taken, so the call
        still goes through this backend (its retry policy, its model per event loop).

        Raises:
            ConfigurationError: When the chat model cannot bind tools.
        """
        choice = {"tool_choice": tool_choice} if tool_choice is not None else {}
        try:
            bound = self.chat_model.bind_tools(tools, **choice)
        except NotImplementedError:
            raise ConfigurationError(
                f"{type(self.chat_model).__name__} cannot call tools (no bind_tools)"
            ) from None
        kwargs = getattr(bound, "kwargs", None)
        if not isinstance(kwargs, Mapping):
            raise ConfigurationError(
                f"{type(self.chat_model).__name__}.bind_tools gave no call arguments to send"
            )
        return dict(kwargs)

    # -- the one place every model call goes through ----------------------------------------

    def async_model(self, model: BaseChatModel) -> BaseChatModel:
        """The model to await in the running event loop (the same one by default)."""
        return model

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one model call under the backend's retry policy (none by default)."""
        return await call()

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

    async def invoke_model(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        config: RunnableConfig | None,
        kwargs: dict[str, Any],
    ) -> BaseMessage:
        """Call a chat model under the retry policy; failures become `BackendError`."""
        kwargs = {**kwargs, **self.call_extras(config)}

        async def once() -> BaseMessage:
            if sync_caller():
                return model.invoke(messages, config=config, **kwargs)
            return await self.async_model(model).ainvoke(messages, config=config, **kwargs)

        try:
            return await self.retrying(once)
        except HAGError:
            raise
        except Exception as exc:
            raise self.to_backend_error(exc) from exc

    # -- the interface ----------------------------------------------------------------------

    async def agenerate(self, request: GenerationRequest) -> Generation:
        """Generate an answer under ``request.params`` with the chat model.

        Raises:
            BackendError: When the call fails.
        """
        start = time.perf_counter()
        kwargs = self.answer_kwargs(request)
        message = await self.invoke_model(
            self.chat_model, list(request.messages), request.config, kwargs
        )
        return _to_generation(message, time.perf_counter() - start)

    def decision_model(self, purpose: str) -> BaseChatModel:
        """The model that makes one kind of decision (the proposer may differ)."""
        return self.proposal_model if purpose == "propose" else self.chat_model

    def default_proposer(self) -> ProposerChoice:
        """``self-tuned`` when a proposal model of its own was given, else the task prior."""
        if self.proposal_model is self.chat_model:
            return PRIOR_BY_DEFAULT
        return ProposerChoice(
            "self-tuned", "a proposer model of its own was given (a tuned proposer): it proposes"
        )

    async def decision_text(self, model: BaseChatModel, request: DecisionRequest) -> str:
        """The raw text of one decision; backends with a cheaper way to decode one override it."""
        kwargs = self.decision_kwargs(request.schema, request.constraint, request.max_tokens)
        messages = list(request.messages)
        return message_text(await self.invoke_model(model, messages, request.config, kwargs))

    async def adecide(self, request: DecisionRequest) -> Decision:
        """Ask the chat model for a structured decision; never raises on a bad answer.

        Raises:
            BackendError: When the call itself fails.
        """
        start = time.perf_counter()
        text = await self.decision_text(self.decision_model(request.purpose), request)
        return parse_decision(text, request.schema, time.perf_counter() - start)


def _to_generation(message: BaseMessage, latency_s: float) -> Generation:
    metadata = message.response_metadata or {}
    finish = (
        metadata.get("finish_reason") or metadata.get("stop_reason") or metadata.get("done_reason")
    )
    usage = message.usage_metadata if isinstance(message, AIMessage) else None
    calls = message.tool_calls if isinstance(message, AIMessage) else []
    unreadable = message.invalid_tool_calls if isinstance(message, AIMessage) else []
    return Generation(
        text=message_text(message),
        finish_reason=str(finish) if finish is not None else None,
        prompt_tokens=usage["input_tokens"] if usage else None,
        completion_tokens=usage["output_tokens"] if usage else None,
        latency_s=latency_s,
        mean_logprob=_mean_logprob(metadata.get("logprobs")),
        tool_calls=[dict(call) for call in calls],
        invalid_tool_calls=[dict(call) for call in unreadable],
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


def as_backend(model: object) -> Backend:
    """Accept a `Backend` or any LangChain chat model.

    Raises:
        ConfigurationError: For anything else.
    """
    if isinstance(model, Backend):
        return model
    if isinstance(model, BaseChatModel):
        return ChatModelBackend(model)
    raise ConfigurationError(
        f"expected a hag_agent Backend or a LangChain chat model, got {type(model).__name__}"
    )
