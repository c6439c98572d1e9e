"""The graph as mermaid text, edge meanings included; a run's path styled on top."""

from __future__ import annotations

from hag_agent.runnable import HAGResult
from hag_agent.visualization.topology import GraphShape, RunPath, counted, display_name


def to_mermaid(shape: GraphShape, result: HAGResult | None = None) -> str:
    """Mermaid flowchart text; with a run, visited nodes and taken edges are styled and counted."""
    path = RunPath.of(result.trace) if result is not None else None
    visits = path.node_visits() if path else None
    taken = path.edge_counts() if path else None
    ends = (shape.nodes[0], shape.nodes[-1])
    lines = ["---", "title: hag-agent", "---", "flowchart TD"]
    for node in shape.nodes:
        label = counted(display_name(node), visits[node] if visits else 0)
        lines.append(f"    {node}([{label}])" if node in ends else f"    {node}[{label}]")
    taken_links: list[str] = []
    for number, edge in enumerate(shape.edges):
        count = taken[(edge.source, edge.target)] if taken else 0
        label = counted(edge.label, count)
        if edge.conditional:
            arrow = f"-. {label} .->" if label else "-.->"
        else:
            arrow = f"-- {label} -->" if label else "-->"
        lines.append(f"    {edge.source} {arrow} {edge.target}")
        if count:
            taken_links.append(str(number))
    lines.append("    classDef default fill:#f2f0ff,stroke:#6a5acd")
    if visits is not None:
        visited = [n for n in shape.nodes if visits[n]]
        lines.append("    classDef visited fill:#c8f7c5,stroke:#2e7d32,stroke-width:2px")
        lines.append(f"    class {','.join(visited)} visited")
        if taken_links:
            lines.append(f"    linkStyle {','.join(taken_links)} stroke:#2e7d32,stroke-width:3px")
    return "\n".join(lines) + "\n"
