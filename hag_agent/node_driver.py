"""How a node's logic meets the model: the calls it yields, and the drivers that answer them.

Each node's logic is written once, as a generator that yields the model calls it needs
(`DecideCall`, `GenerateCall`, `EmbedCall`) and receives their results (or the `BackendError` they
raised).
A sync and an async driver run the same logic, so ``invoke`` and ``ainvoke`` behave alike and
async runs never block a thread: the async driver awaits the backend's coroutines, the sync one
runs them through the backend's sync shim (`Backend.run_sync`). Every call carries the turn's
request id in its config metadata, so a backend can tell the calls of one turn from another's.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langgraph.runtime import get_runtime
from pydantic import BaseModel

from hag_agent.backend_choice import resolve_backend
from hag_agent.backends import Decision, DecisionRequest, Embedding, Generation, GenerationRequest
from hag_agent.backends.base import (
    REQUEST_KEY,
    Backend,
    OutputConstraint,
    complete_without_loop,
    tagged,
)
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
    constraint: OutputConstraint = OutputConstraint.JSON_SCHEMA
    """How the answer's text is constrained (the proposal asks for the compact numeric object)."""
    given: Mapping[str, float] = field(default_factory=dict)
    """Values of a compact numeric object the caller writes itself (`DecisionRequest.given`)."""
    shared_prefix: str = ""
    """The prompt's leading text that every call of its kind repeats
    (`DecisionRequest.shared_prefix`)."""


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


def _request(
    backend: Backend, call: Call, context: HAGContext, config: RunnableConfig
) -> Coroutine[Any, Any, Decision | Generation | Embedding]:
    """The backend coroutine that answers a call."""
    if isinstance(call, GenerateCall):
        return backend.agenerate(
            GenerationRequest(
                call.messages,
                call.planned.params,
                context.seed,
                tagged(config, "generate"),
                options=context.answer_options,
            )
        )
    if isinstance(call, EmbedCall):
        return backend.aembed(call.text, config=tagged(config, "embed"))
    return backend.adecide(
        DecisionRequest(
            [HumanMessage(call.prompt)],
            call.schema,
            purpose=call.purpose,
            constraint=call.constraint,
            given=call.given,
            shared_prefix=call.shared_prefix,
            max_tokens=context.decision_max_tokens,
            config=tagged(config, call.purpose),
        )
    )


async def _drive(steps: Steps, answer: Callable[[Call], Awaitable[CallResult]]) -> dict[str, Any]:
    """Run a node's logic to its end, sending back each call's result (or its `BackendError`)."""
    try:
        call = next(steps)
        while True:
            result: CallResult
            try:
                result = await answer(call)
            except BackendError as exc:
                result = exc
            call = steps.send(result)
    except StopIteration as stop:
        update: dict[str, Any] = stop.value
        return update


def _run_sync(steps: Steps, context: HAGContext, config: RunnableConfig) -> dict[str, Any]:
    async def answer(call: Call) -> CallResult:
        # The backend is resolved on the first call only (rules + prior need none), then cached.
        backend = resolve_backend(context)
        return backend.run_sync(_request(backend, call, context, config))

    # `answer` never suspends (the backend's sync shim does the work), so no event loop is needed.
    return complete_without_loop(_drive(steps, answer))


async def _run_async(steps: Steps, context: HAGContext, config: RunnableConfig) -> dict[str, Any]:
    async def answer(call: Call) -> CallResult:
        return await _request(resolve_backend(context), call, context, config)

    return await _drive(steps, answer)


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

    return _Node(name, run, arun)


class _Node(Runnable[HAGState, dict[str, Any]]):
    """A graph node with a sync and an async path, on langchain-core's public `Runnable`.

    LangGraph keeps a runnable node as it is. `RunnableLambda` would cost a traced child run
    per node; this does what LangGraph's own (private) node wrapper does with tracing off.
    """

    def __init__(
        self,
        name: str,
        run: Callable[[HAGState, RunnableConfig], dict[str, Any]],
        arun: Callable[[HAGState, RunnableConfig], Awaitable[dict[str, Any]]],
    ) -> None:
        self.name = name
        self._run = run
        self._arun = arun

    def invoke(
        self, input: HAGState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the node's logic, answering its model calls synchronously."""
        return self._run(input, config if config is not None else ensure_config())

    async def ainvoke(
        self, input: HAGState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the node's logic, awaiting its model calls."""
        return await self._arun(input, config if config is not None else ensure_config())
