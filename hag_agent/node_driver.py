"""How a node's logic meets the model: the calls it yields, and the drivers that answer them.

Each node's logic is written once, as a generator that yields the model calls it needs
(`DecideCall`, `GenerateCall`, `EmbedCall`) and receives their results (or the `BackendError` they
raised).
A sync and an async driver run the same logic, so ``invoke`` and ``ainvoke`` behave alike and
async runs never block a thread. Every call carries the turn's request id in its config
metadata, so a backend can tell the calls of one turn from another's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

try:  # LangGraph's own node wrapper: runs sync and async paths without RunnableLambda's cost.
    from langgraph._internal._runnable import RunnableCallable as _NodeWrapper
except ImportError:  # pragma: no cover - a LangGraph that moved it: fall back to the public API
    _NodeWrapper = None  # type: ignore[assignment,misc]
from langgraph.runtime import get_runtime
from pydantic import BaseModel

from hag_agent.backends.base import REQUEST_KEY, Decision, Embedding, Generation, tagged
from hag_agent.backends.registry import resolve_backend
from hag_agent.context import HAGContext, resolve_context
from hag_agent.errors import BackendError
from hag_agent.state import HAGState, PlannedParams

# -- the calls a node can ask for ----------------------------------------------------------


@dataclass(frozen=True)
class DecideCall:
    """Ask the model for a structured decision."""

    purpose: str
    prompt: str
    schema: type[BaseModel]


@dataclass(frozen=True)
class GenerateCall:
    """Ask the model for the answer under the pending params."""

    messages: list[BaseMessage]
    planned: PlannedParams


@dataclass(frozen=True)
class EmbedCall:
    """Ask for the model's own vector of a text: one pass over it, nothing generated."""

    text: str


Call = DecideCall | GenerateCall | EmbedCall
CallResult = Decision | Generation | Embedding | BackendError
Steps = Generator[Call, CallResult, dict[str, Any]]
StepsFn = Callable[[HAGState, HAGContext], Steps]


def current_context() -> HAGContext:
    """The run's settings from LangGraph's runtime (environment and defaults when none)."""
    context = get_runtime().context
    if isinstance(context, HAGContext):
        return context
    return resolve_context(context=context if isinstance(context, dict) else None)


def _backend_call(
    call: Call, context: HAGContext, config: RunnableConfig
) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """Which backend method answers a call, and its arguments (``a`` + name for async)."""
    if isinstance(call, GenerateCall):
        args: tuple[Any, ...] = (call.messages, call.planned.params)
        return "generate", args, {"seed": context.seed, "config": tagged(config, "generate")}
    if isinstance(call, EmbedCall):
        return "embedding", (call.text,), {"config": tagged(config, "embed")}
    return (
        "decide",
        ([HumanMessage(call.prompt)], call.schema),
        {
            "purpose": call.purpose,
            "max_tokens": context.decision_max_tokens,
            "config": tagged(config, call.purpose),
        },
    )


def _answer(call: Call, context: HAGContext, config: RunnableConfig) -> CallResult:
    # The backend is resolved on the first call only (rules + prior need none), then cached.
    name, args, kwargs = _backend_call(call, context, config)
    result: Decision | Generation | Embedding = getattr(resolve_backend(context), name)(
        *args, **kwargs
    )
    return result


async def _aanswer(call: Call, context: HAGContext, config: RunnableConfig) -> CallResult:
    name, args, kwargs = _backend_call(call, context, config)
    result: Decision | Generation | Embedding = await getattr(resolve_backend(context), f"a{name}")(
        *args, **kwargs
    )
    return result


def _run_sync(steps: Steps, context: HAGContext, config: RunnableConfig) -> dict[str, Any]:
    try:
        call = next(steps)
        while True:
            result: CallResult
            try:
                result = _answer(call, context, config)
            except BackendError as exc:
                result = exc
            call = steps.send(result)
    except StopIteration as stop:
        update: dict[str, Any] = stop.value
        return update


async def _run_async(steps: Steps, context: HAGContext, config: RunnableConfig) -> dict[str, Any]:
    try:
        call = next(steps)
        while True:
            result: CallResult
            try:
                result = await _aanswer(call, context, config)
            except BackendError as exc:
                result = exc
            call = steps.send(result)
    except StopIteration as stop:
        update: dict[str, Any] = stop.value
        return update


def make_node(name: str, steps_fn: StepsFn) -> Runnable[HAGState, dict[str, Any]]:
    """Wrap one node's logic as a runnable with a sync and an async path."""
    # classify starts a turn, so it names the turn's request id; later nodes reuse it.
    starts_turn = name == "classify"

    def scoped(state: HAGState, config: RunnableConfig) -> tuple[str, RunnableConfig]:
        request_id = uuid.uuid4().hex if starts_turn else state.request_id
        metadata = {**config.get("metadata", {}), REQUEST_KEY: request_id}
        return request_id, {**config, "metadata": metadata}

    def run(state: HAGState, config: RunnableConfig) -> dict[str, Any]:
        context = current_context()
        request_id, config = scoped(state, config)
        update = _run_sync(steps_fn(state, context), context, config)
        return {**update, "request_id": request_id} if starts_turn else update

    async def arun(state: HAGState, config: RunnableConfig) -> dict[str, Any]:
        context = current_context()
        request_id, config = scoped(state, config)
        update = await _run_async(steps_fn(state, context), context, config)
        return {**update, "request_id": request_id} if starts_turn else update

    run.__name__ = arun.__name__ = name
    if _NodeWrapper is not None:
        # What LangGraph wraps every node function in, given both paths; no tracing of its own.
        return _NodeWrapper(run, arun, name=name, trace=False)
    return RunnableLambda(run, afunc=arun, name=name)
