"""The HAG state machine, built in one place.

    classify -> propose -> generate -> critique -> (adjust -> generate)* -> END

The run ends in critique (accepted, retries spent, critique off, backend failure) or in adjust
(nothing new to try); either way the best-scored attempt becomes the answer.

Exported as `graph` for LangGraph's server (``graphs/langgraph.json``); per-run settings arrive
as the run context (`HAGContext`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from hag_agent.context import HAGContext
from hag_agent.node_driver import make_node
from hag_agent.nodes import (
    adjust_steps,
    classify_steps,
    critique_steps,
    generate_steps,
    propose_steps,
    route_after_adjust,
    route_after_critique,
)
from hag_agent.state import HAGState, InputState, OutputState

GRAPH_NAME = "hag-agent"

EDGE_LABELS: dict[tuple[str, str], str] = {
    ("critique", "adjust"): "retry",
    ("critique", END): "done",
    ("adjust", "generate"): "new params",
    ("adjust", END): "nothing new",
}
"""What each conditional edge means, for diagrams (the routers return only the target)."""

CHECKPOINTED_TYPES: tuple[tuple[str, str], ...] = (
    ("hag_agent.tasks", "TaskKind"),
    ("hag_agent.hyperparameters", "HyperParams"),
    ("hag_agent.hyperparameters", "ParamSource"),
    ("hag_agent.hyperparameters", "ClampRecord"),
    ("hag_agent.critique", "Critique"),
    ("hag_agent.critique", "Direction"),
    ("hag_agent.state", "Attempt"),
    ("hag_agent.state", "PlannedParams"),
    ("hag_agent.state", "TraceEvent"),
)
"""Our types inside the graph state, which a checkpointer may read back."""


def checkpoint_serializer() -> JsonPlusSerializer:
    """The serializer a checkpointer of this graph needs: it reads back our state types.

    LangGraph warns about (and will block) reading types it was not told about.
    """
    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINTED_TYPES)


class _Router(Runnable[HAGState, str]):
    """A routing function run in place on the sync and the async path.

    LangGraph runs a plain function of an async run in a worker thread: a thread hop on every
    run, for a function that only reads the state.
    """

    def __init__(self, route: Callable[[HAGState], str]) -> None:
        self.name = route.__name__
        self._route = route

    def invoke(self, input: HAGState, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        """The next node."""
        return self._route(input)

    async def ainvoke(
        self, input: HAGState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> str:
        """The next node (nothing to await)."""
        return self._route(input)


# Input typed loosely: callers pass plain dicts as well as InputState.
CompiledHAGGraph = CompiledStateGraph[HAGState, HAGContext, Any, OutputState]


def build_graph(checkpointer: Checkpointer = None) -> CompiledHAGGraph:
    """Build and compile the HAG graph.

    Args:
        checkpointer: Optional LangGraph checkpointer (keeps conversations across runs).

    Returns:
        The compiled graph, named ``hag-agent``.
    """
    builder: StateGraph[HAGState, HAGContext, Any, OutputState] = StateGraph(
        HAGState, context_schema=HAGContext, input_schema=InputState, output_schema=OutputState
    )
    builder.add_node("classify", make_node("classify", classify_steps))
    builder.add_node("propose", make_node("propose", propose_steps))
    builder.add_node("generate", make_node("generate", generate_steps))
    builder.add_node("critique", make_node("critique", critique_steps))
    builder.add_node("adjust", make_node("adjust", adjust_steps))
    builder.add_edge(START, "classify")
    builder.add_edge("classify", "propose")
    builder.add_edge("propose", "generate")
    builder.add_edge("generate", "critique")
    builder.add_conditional_edges(
        "critique", _Router(route_after_critique), {"adjust": "adjust", END: END}
    )
    builder.add_conditional_edges(
        "adjust", _Router(route_after_adjust), {"generate": "generate", END: END}
    )
    return builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)


graph: Any = build_graph()
"""The compiled graph, for ``graphs/langgraph.json``."""
