"""SVG and PNG pictures of the graph, drawn by Graphviz offline.

pygraphviz's wheel carries Graphviz itself, so nothing is fetched (LangGraph's own PNG export calls
the mermaid.ink web service). Install it with ``pip install 'hag-agent[viz]'``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, Literal

from hag_agent.errors import ConfigurationError
from hag_agent.runnable import HAGResult
from hag_agent.visualization.topology import (
    GraphShape,
    RunPath,
    counted,
    describe_attempt,
    display_name,
)

ImageFormat = Literal["svg", "png"]

_TAKEN_COLOUR = "#2e7d32"
_IDLE_COLOUR = "#9e9e9e"
_NODE_FILL = "#f2f0ff"
_VISITED_FILL = "#c8f7c5"


def _pygraphviz() -> Any:
    try:
        import pygraphviz
    except ImportError:
        raise ConfigurationError(
            "PNG and SVG need pygraphviz: pip install 'hag-agent[viz]'"
        ) from None
    return pygraphviz


@contextlib.contextmanager
def _quiet_fontconfig() -> Iterator[None]:
    """Hide fontconfig's warnings about the system's config (the bundled library prints them)."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to hide
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip() and not line.startswith("Fontconfig warning"):
                    print(line, file=sys.stderr)


def to_dot(shape: GraphShape, result: HAGResult | None = None) -> Any:
    """The graph as a pygraphviz ``AGraph``; a run's path is highlighted and its attempts listed."""
    pgv = _pygraphviz()
    path = RunPath.of(result.trace) if result is not None else None
    visits = path.node_visits() if path else None
    taken = path.edge_counts() if path else None
    graph = pgv.AGraph(directed=True, strict=False, name="hag-agent")
    graph.graph_attr.update(rankdir="TB", fontname="Helvetica", nodesep="0.6", ranksep="0.45")
    graph.node_attr.update(fontname="Helvetica", fontsize="12")
    graph.edge_attr.update(fontname="Helvetica", fontsize="10")
    ends = (shape.nodes[0], shape.nodes[-1])
    for node in shape.nodes:
        count = visits[node] if visits else 0
        label = counted(display_name(node), count)
        attrs: dict[str, str] = {
            "label": label,
            "shape": "ellipse" if node in ends else "box",
            "style": "rounded,filled" if node not in ends else "filled",
            "fillcolor": _VISITED_FILL if count else _NODE_FILL,
            "color": _TAKEN_COLOUR if count else "#6a5acd",
        }
        if visits is not None and not count:
            attrs.update(fillcolor="#f5f5f5", color=_IDLE_COLOUR, fontcolor=_IDLE_COLOUR)
        graph.add_node(node, **attrs)
    for edge in shape.edges:
        count = taken[(edge.source, edge.target)] if taken else 0
        label = counted(edge.label, count)
        attrs = {
            "label": f" {label} " if label else "",
            "style": "dashed" if edge.conditional else "solid",
        }
        if shape.is_back_edge(edge):
            attrs["constraint"] = "false"  # keep the loop from reordering the ranks
        if taken is not None:
            colour = _TAKEN_COLOUR if count else _IDLE_COLOUR
            attrs.update(color=colour, fontcolor=colour, penwidth="2.4" if count else "1")
        graph.add_edge(edge.source, edge.target, key=f"{edge.source}->{edge.target}", **attrs)
    if result is not None:
        lines = [f"task: {result.task.value if result.task else '?'}; {result.stop_reason}"]
        lines += [
            describe_attempt(a, chosen=a.index == result.best_attempt) for a in result.attempts
        ]
        graph.graph_attr.update(label="".join(f"{line}\\l" for line in lines), labeljust="l")
    return graph


def render_image(shape: GraphShape, fmt: ImageFormat, result: HAGResult | None = None) -> bytes:
    """The picture as SVG or PNG bytes."""
    graph = to_dot(shape, result)
    with _quiet_fontconfig():
        graph.layout(prog="dot")
        data: bytes = graph.draw(format=fmt)
    return data
