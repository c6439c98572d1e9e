"""What every diagram draws: the graph's nodes and edges, and the path one run took through them.

The shape comes from the compiled graph itself (never a hand-drawn copy), ordered so that forward
edges point down and the retry loop is a back edge. A run's path comes from its trace: every node
records one event per visit, so the events, in order, are the nodes visited.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.graph import END, START
from pydantic import ValidationError

from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import SHORT_NAMES
from hag_agent.runnable import HAGResult
from hag_agent.state import Attempt, TraceEvent
from hag_agent.tasks import TaskKind


@dataclass(frozen=True)
class GraphEdge:
    """One edge of the state machine."""

    source: str
    target: str
    label: str = ""
    conditional: bool = False


@dataclass(frozen=True)
class GraphShape:
    """The nodes in drawing order (start first, end last) and the edges between them."""

    nodes: tuple[str, ...]
    edges: tuple[GraphEdge, ...]

    def position(self, node: str) -> int:
        """The node's index in drawing order."""
        return self.nodes.index(node)

    def is_back_edge(self, edge: GraphEdge) -> bool:
        """True for an edge that points up (a loop), e.g. adjust -> generate."""
        return self.position(edge.target) <= self.position(edge.source)


def display_name(node: str) -> str:
    """``start`` and ``end`` for LangGraph's ``__start__`` and ``__end__``; others as they are."""
    return {START: "start", END: "end"}.get(node, node)


def counted(label: str, count: int) -> str:
    """``label`` with a times-n count for a node or edge a run went through more than once."""
    return f"{label} \u00d7{count}".strip() if count > 1 else label


def _drawing_order(nodes: list[str], edges: list[GraphEdge]) -> tuple[str, ...]:
    """Reverse post-order of a depth-first walk from start, with end forced last."""
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        successors[edge.source].append(edge.target)
    order: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> None:
        seen.add(node)
        for nxt in successors[node]:
            if nxt not in seen:
                visit(nxt)
        order.append(node)

    visit(START)
    for node in nodes:  # unreachable nodes still get drawn, after the rest
        if node not in seen:
            visit(node)
    ordered = [n for n in reversed(order) if n != END]
    return (*ordered, END) if END in nodes else tuple(ordered)


def graph_shape(compiled: Any = None) -> GraphShape:
    """The shape of a compiled LangGraph graph (the HAG graph by default)."""
    from hag_agent.graph import EDGE_LABELS, build_graph

    drawable = (compiled if compiled is not None else build_graph()).get_graph()
    edges = [
        GraphEdge(
            e.source,
            e.target,
            EDGE_LABELS.get((e.source, e.target), str(e.data) if e.data else ""),
            e.conditional,
        )
        for e in drawable.edges
    ]
    nodes = list(drawable.nodes)
    order = _drawing_order(nodes, edges)
    edges.sort(key=lambda e: (order.index(e.source), order.index(e.target)))
    return GraphShape(order, tuple(edges))


@dataclass(frozen=True)
class RunPath:
    """The nodes one run visited, in order, from start to end."""

    nodes: tuple[str, ...]

    @classmethod
    def of(cls, trace: list[TraceEvent]) -> RunPath:
        """Read the path off a run's trace (``finish`` is an event, not a node)."""
        visited = [event.node for event in trace if event.node != "finish"]
        return cls((START, *visited, END))

    def node_visits(self) -> Counter[str]:
        """How many times each node ran."""
        return Counter(self.nodes)

    def edge_counts(self) -> Counter[tuple[str, str]]:
        """How many times each edge was taken."""
        return Counter(zip(self.nodes, self.nodes[1:], strict=False))


RUN_FILE_VERSION = 1


def run_record(result: HAGResult, prompt: str) -> dict[str, Any]:
    """What ``hag-agent run --trace-out`` writes: the whole result, the prompt and the path."""
    return {
        "hag_run": RUN_FILE_VERSION,
        "prompt": prompt,
        **result.to_json_dict(),
        "path": list(RunPath.of(result.trace).nodes),
    }


def result_from_record(data: Mapping[str, Any]) -> HAGResult:
    """Rebuild a `HAGResult` from a run record (validated: a bad file is an input error)."""
    if not isinstance(data, Mapping) or "trace" not in data or "attempts" not in data:
        raise HAGInputError(
            "not a hag-agent run record: it needs 'attempts' and 'trace' "
            "(write one with `hag-agent run PROMPT --trace-out run.json`)"
        )
    try:
        return HAGResult(
            content=str(data.get("answer") or ""),
            task=TaskKind(data["task"]) if data.get("task") else None,
            attempts=[Attempt.model_validate(a) for a in data["attempts"]],
            best_attempt=data.get("best_attempt"),
            stop_reason=str(data.get("stop_reason") or ""),
            trace=[TraceEvent.model_validate(t) for t in data["trace"]],
            params=data.get("params"),
        )
    except (ValidationError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        raise HAGInputError(f"the run record does not validate: {first}") from None


def load_run(path: Path) -> tuple[HAGResult, str]:
    """Read a run file written by ``--trace-out``: the result and its prompt.

    Raises:
        HAGInputError: The file is missing, not JSON, or not a run record.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HAGInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HAGInputError(f"{path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise HAGInputError(f"{path}: not JSON ({exc})") from None
    result = result_from_record(data)
    shape = graph_shape()
    unknown = sorted({e.node for e in result.trace} - set(shape.nodes) - {"finish"})
    if unknown:
        raise HAGInputError(
            f"{path}: the trace names nodes this graph does not have: {', '.join(unknown)}"
        )
    return result, str(data.get("prompt") or "")


"""Short names of hyperparameters where space is tight."""


def describe_attempt(attempt: Attempt, chosen: bool = False) -> str:
    """One line: the attempt's params (with where each came from) and its outcome."""
    values = " ".join(
        f"{SHORT_NAMES.get(key, key)}={value:g}({attempt.sources[key].value})"
        if isinstance(value, float)
        else f"{SHORT_NAMES.get(key, key)}={value}({attempt.sources[key].value})"
        for key, value in attempt.params.model_dump().items()
    )
    if attempt.error:
        outcome = f"failed: {attempt.error[:80]}"
    elif attempt.critique is None:
        outcome = "no critique"
    else:
        outcome = f"score {attempt.critique.score:.2f} ({attempt.critique.verdict})"
    mark = " <- answer" if chosen else ""
    return f"attempt {attempt.index}: {values} -> {outcome}{mark}"
