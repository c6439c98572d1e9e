"""The state machine drawn with box-drawing characters, loops included.

Nodes stand in one column in drawing order. An edge to the next node is an arrow straight down;
every other edge (the retry loop back up, a skip down to the end) runs in its own lane on the right
and enters its target with an arrowhead, so no edge is dropped. Conditional edges are dashed. With
a run's path, visited nodes and taken edges are drawn heavy, coloured and counted, the rest dimmed,
so the path shows in plain text too.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from hag_agent.visualization.topology import (
    GraphEdge,
    GraphShape,
    RunPath,
    counted,
    display_name,
)

_VERTICAL = {"│", "┆", "┃"}
_HORIZONTAL = {"─", "╌", "━"}


@dataclass(frozen=True)
class _Pen:
    """The characters one line is drawn with."""

    vertical: str
    horizontal: str
    tee: str
    down_corner: str  # leaving right then turning down: ┐
    up_corner: str  # leaving right then turning up: ┘


_THIN = _Pen("│", "─", "├", "┐", "┘")
_DASHED = _Pen("┆", "╌", "├", "┐", "┘")
_HEAVY = _Pen("┃", "━", "┣", "┓", "┛")  # the path a run took, visible without colour


@dataclass
class _Canvas:
    """A grid of characters with a style per cell."""

    width: int
    height: int

    def __post_init__(self) -> None:
        self.chars = [[" "] * self.width for _ in range(self.height)]
        self.styles: list[list[str]] = [[""] * self.width for _ in range(self.height)]

    def put(self, row: int, col: int, char: str, style: str = "") -> None:
        current = self.chars[row][col]
        # Where a lane crosses a line already drawn, show a crossing, not an overwrite.
        if (current in _VERTICAL and char in _HORIZONTAL) or (
            current in _HORIZONTAL and char in _VERTICAL
        ):
            char = "╋" if "━" in (current, char) and "┃" in (current, char) else "┼"
        self.chars[row][col] = char
        self.styles[row][col] = style

    def write(self, row: int, col: int, text: str, style: str = "") -> None:
        for offset, char in enumerate(text):
            self.chars[row][col + offset] = char
            self.styles[row][col + offset] = style

    def to_text(self) -> Text:
        out = Text()
        for row in range(self.height):
            line = "".join(self.chars[row]).rstrip()
            for col, char in enumerate(line):
                out.append(char, style=self.styles[row][col] or None)
            out.append("\n")
        return out


_TAKEN = "bold green"
_NOT_TAKEN = "dim"


def draw_ascii(shape: GraphShape, path: RunPath | None = None) -> Text:
    """Draw the graph (and, given a run's path, the way that run went) as styled text.

    Args:
        shape: The graph to draw.
        path: A run's path; its nodes and edges are highlighted with visit counts.

    Returns:
        Rich text; ``.plain`` is the same picture without styles.
    """
    visits = path.node_visits() if path else None
    taken = path.edge_counts() if path else None

    def node_label(node: str) -> str:
        return counted(display_name(node), visits[node] if visits else 0)

    def node_style(node: str) -> str:
        if visits is None:
            return "bold"
        return _TAKEN if visits[node] else _NOT_TAKEN

    def edge_label(edge: GraphEdge) -> str:
        count = taken[(edge.source, edge.target)] if taken else 0
        return counted(edge.label, count)

    def edge_pen(edge: GraphEdge) -> _Pen:
        if taken and taken[(edge.source, edge.target)]:
            return _HEAVY
        return _DASHED if edge.conditional else _THIN

    def edge_style(edge: GraphEdge) -> str:
        if taken is None:
            return "cyan" if edge.conditional else ""
        return _TAKEN if taken[(edge.source, edge.target)] else _NOT_TAKEN

    nodes = shape.nodes
    index = {n: i for i, n in enumerate(nodes)}
    straight = [
        e for e in shape.edges if index[e.target] == index[e.source] + 1 and e.source != e.target
    ]
    lanes = [e for e in shape.edges if e not in straight]
    # Short lanes inside, long ones outside, so lanes cross as little as possible.
    lanes.sort(key=lambda e: (abs(index[e.target] - index[e.source]), index[e.source]))

    # Each lane end gets its own row inside its node's box.
    ends: dict[str, list[tuple[GraphEdge, bool]]] = {n: [] for n in nodes}
    for lane in lanes:
        ends[lane.source].append((lane, True))
        ends[lane.target].append((lane, False))
    for node_ends in ends.values():
        node_ends.sort(key=lambda item: index[item[0].target if item[1] else item[0].source])

    box_width = max(len(node_label(n)) for n in nodes) + 4
    left = 1
    centre = left + box_width // 2
    lane_labels = max((len(edge_label(e)) for e in lanes), default=0)
    first_lane = left + box_width + lane_labels + 5
    lane_cols = {lane: first_lane + 3 * k for k, lane in enumerate(lanes)}

    # Rows: each box, then a gap of two rows (arrow down) or one (nothing straight).
    box_top: dict[str, int] = {}
    row = 0
    for i, node in enumerate(nodes):
        box_top[node] = row
        row += max(1, len(ends[node])) + 2
        if i < len(nodes) - 1:
            row += 2
    canvas = _Canvas(first_lane + 3 * len(lanes) + 1, row)

    for node in nodes:
        top, style = box_top[node], node_style(node)
        inner = max(1, len(ends[node]))
        if visits and visits[node]:
            tl, tr, bl, br, h, v = "┏", "┓", "┗", "┛", "━", "┃"
        elif node in (shape.nodes[0], shape.nodes[-1]):
            tl, tr, bl, br, h, v = "╭", "╮", "╰", "╯", "─", "│"
        else:
            tl, tr, bl, br, h, v = "┌", "┐", "└", "┘", "─", "│"
        canvas.write(top, left, tl + h * (box_width - 2) + tr, style)
        for r in range(1, inner + 1):
            canvas.write(top + r, left, v + " " * (box_width - 2) + v, style)
        label = node_label(node)
        canvas.write(top + 1, left + (box_width - len(label)) // 2, label, style)
        canvas.write(top + inner + 1, left, bl + h * (box_width - 2) + br, style)

    for edge in straight:
        style = edge_style(edge)
        row = box_top[edge.source] + max(1, len(ends[edge.source])) + 2
        canvas.put(row, centre, edge_pen(edge).vertical, style)
        canvas.put(row + 1, centre, "▼", style)
        if edge.label:
            canvas.write(row, centre + 2, edge_label(edge), style)

    for lane in lanes:
        style = edge_style(lane)
        col = lane_cols[lane]
        pen = edge_pen(lane)
        start = box_top[lane.source] + 1 + ends[lane.source].index((lane, True))
        stop = box_top[lane.target] + 1 + ends[lane.target].index((lane, False))
        down = stop > start
        # Out of the source: a tee on its border, the label, then along to the lane.
        canvas.put(start, left + box_width - 1, pen.tee, style)
        for c in range(left + box_width, col):
            canvas.put(start, c, pen.horizontal, style)
        if lane.label:
            canvas.write(start, left + box_width + 1, f" {edge_label(lane)} ", style)
        canvas.put(start, col, pen.down_corner if down else pen.up_corner, style)
        for r in range(min(start, stop) + 1, max(start, stop)):
            canvas.put(r, col, pen.vertical, style)
        # Into the target: along from the lane to an arrowhead against its border.
        canvas.put(stop, col, pen.up_corner if down else pen.down_corner, style)
        for c in range(left + box_width + 1, col):
            canvas.put(stop, c, pen.horizontal, style)
        canvas.put(stop, left + box_width, "◄", style)
    return canvas.to_text()
