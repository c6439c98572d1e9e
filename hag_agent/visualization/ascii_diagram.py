"""The state machine drawn with box-drawing characters, loops included.

Nodes stand in one column in drawing order. An edge to the next node is an arrow straight down;
every other edge (the retry loop back up, a skip down to the end) runs in its own lane on the right
and enters its target with an arrowhead, so no edge is dropped. Conditional edges are dashed. With
a run's path, visited nodes and taken edges are drawn heavy, coloured and counted, the rest dimmed,
so the path shows in plain text too.
"""

from __future__ import annotations

from collections import Counter
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


@dataclass(frozen=True)
class _Marks:
    """How nodes and edges are labelled and styled: plain, or marked with a run's path."""

    visits: Counter[str] | None
    taken: Counter[tuple[str, str]] | None

    @classmethod
    def of(cls, path: RunPath | None) -> _Marks:
        if path is None:
            return cls(None, None)
        return cls(path.node_visits(), path.edge_counts())

    def node_label(self, node: str) -> str:
        return counted(display_name(node), self.visits[node] if self.visits else 0)

    def node_style(self, node: str) -> str:
        if self.visits is None:
            return "bold"
        return _TAKEN if self.visits[node] else _NOT_TAKEN

    def edge_count(self, edge: GraphEdge) -> int:
        return self.taken[(edge.source, edge.target)] if self.taken else 0

    def edge_label(self, edge: GraphEdge) -> str:
        return counted(edge.label, self.edge_count(edge))

    def edge_pen(self, edge: GraphEdge) -> _Pen:
        if self.edge_count(edge):
            return _HEAVY
        return _DASHED if edge.conditional else _THIN

    def edge_style(self, edge: GraphEdge) -> str:
        if self.taken is None:
            return "cyan" if edge.conditional else ""
        return _TAKEN if self.edge_count(edge) else _NOT_TAKEN


# A box's corners and lines: top-left, top-right, bottom-left, bottom-right, horizontal, vertical.
_VISITED_BOX = ("┏", "┓", "┗", "┛", "━", "┃")
_END_BOX = ("╭", "╮", "╰", "╯", "─", "│")  # start and end stand out by their rounded corners
_PLAIN_BOX = ("┌", "┐", "└", "┘", "─", "│")

_LEFT = 1  # the boxes' left border column
_LANE_GAP = 3  # columns from one lane to the next


@dataclass(frozen=True)
class _Layout:
    """Where everything goes: the edges split into straight arrows and lanes, rows and columns."""

    shape: GraphShape
    straight: list[GraphEdge]
    """Edges to the next node down, drawn as an arrow between the boxes."""
    lanes: list[GraphEdge]
    """Every other edge, innermost lane first."""
    ends: dict[str, list[tuple[GraphEdge, bool]]]
    """Per node, the lanes (and whether each leaves it) in the order of their rows in its box."""
    box_width: int
    first_lane: int
    """The column of the innermost lane."""
    box_top: dict[str, int]
    """The row of each box's top border."""
    height: int

    @classmethod
    def of(cls, shape: GraphShape, marks: _Marks) -> _Layout:
        index = {n: i for i, n in enumerate(shape.nodes)}
        straight = [
            e
            for e in shape.edges
            if index[e.target] == index[e.source] + 1 and e.source != e.target
        ]
        lanes = [e for e in shape.edges if e not in straight]
        # Short lanes inside, long ones outside, so lanes cross as little as possible.
        lanes.sort(key=lambda e: (abs(index[e.target] - index[e.source]), index[e.source]))
        ends = _lane_ends(shape.nodes, lanes, index)
        box_width = max(len(marks.node_label(n)) for n in shape.nodes) + 4
        lane_labels = max((len(marks.edge_label(e)) for e in lanes), default=0)
        first_lane = _LEFT + box_width + lane_labels + 5
        # Rows: each box, then a gap of two rows (arrow down) or one (nothing straight).
        box_top: dict[str, int] = {}
        row = 0
        for i, node in enumerate(shape.nodes):
            box_top[node] = row
            row += max(1, len(ends[node])) + 2
            if i < len(shape.nodes) - 1:
                row += 2
        return cls(shape, straight, lanes, ends, box_width, first_lane, box_top, row)

    @property
    def width(self) -> int:
        return self.first_lane + _LANE_GAP * len(self.lanes) + 1

    @property
    def right(self) -> int:
        """The boxes' right border column."""
        return _LEFT + self.box_width - 1

    def inner_rows(self, node: str) -> int:
        """The rows inside a box: one per lane end, at least one for the label."""
        return max(1, len(self.ends[node]))

    def lane_row(self, lane: GraphEdge, leaving: bool) -> int:
        """The row where a lane leaves its source (or enters its target)."""
        node = lane.source if leaving else lane.target
        return self.box_top[node] + 1 + self.ends[node].index((lane, leaving))


def _lane_ends(
    nodes: tuple[str, ...], lanes: list[GraphEdge], index: dict[str, int]
) -> dict[str, list[tuple[GraphEdge, bool]]]:
    """Each lane end gets its own row inside its node's box, ordered by the far end's position."""
    ends: dict[str, list[tuple[GraphEdge, bool]]] = {n: [] for n in nodes}
    for lane in lanes:
        ends[lane.source].append((lane, True))
        ends[lane.target].append((lane, False))
    for node_ends in ends.values():
        node_ends.sort(key=lambda item: index[item[0].target if item[1] else item[0].source])
    return ends


def _draw_boxes(canvas: _Canvas, layout: _Layout, marks: _Marks) -> None:
    """One box per node, its label on the first inner row."""
    nodes = layout.shape.nodes
    width = layout.box_width
    for node in nodes:
        top, style = layout.box_top[node], marks.node_style(node)
        inner = layout.inner_rows(node)
        if marks.visits and marks.visits[node]:
            tl, tr, bl, br, h, v = _VISITED_BOX
        elif node in (nodes[0], nodes[-1]):
            tl, tr, bl, br, h, v = _END_BOX
        else:
            tl, tr, bl, br, h, v = _PLAIN_BOX
        canvas.write(top, _LEFT, tl + h * (width - 2) + tr, style)
        for r in range(1, inner + 1):
            canvas.write(top + r, _LEFT, v + " " * (width - 2) + v, style)
        label = marks.node_label(node)
        canvas.write(top + 1, _LEFT + (width - len(label)) // 2, label, style)
        canvas.write(top + inner + 1, _LEFT, bl + h * (width - 2) + br, style)


def _draw_straight_edges(canvas: _Canvas, layout: _Layout, marks: _Marks) -> None:
    """An arrow straight down the gap under each box whose edge goes to the next node."""
    centre = _LEFT + layout.box_width // 2
    for edge in layout.straight:
        style = marks.edge_style(edge)
        row = layout.box_top[edge.source] + layout.inner_rows(edge.source) + 2
        canvas.put(row, centre, marks.edge_pen(edge).vertical, style)
        canvas.put(row + 1, centre, "▼", style)
        if edge.label:
            canvas.write(row, centre + 2, marks.edge_label(edge), style)


def _draw_lane(canvas: _Canvas, layout: _Layout, marks: _Marks, lane: int) -> None:
    """The ``lane``-th lane: out of its source's right border, along its column, into its target."""
    edge = layout.lanes[lane]
    style, pen = marks.edge_style(edge), marks.edge_pen(edge)
    col = layout.first_lane + _LANE_GAP * lane
    outside = layout.right + 1  # the first column right of the boxes
    start, stop = layout.lane_row(edge, True), layout.lane_row(edge, False)
    down = stop > start
    # Out of the source: a tee on its border, the label, then along to the lane.
    canvas.put(start, layout.right, pen.tee, style)
    for c in range(outside, col):
        canvas.put(start, c, pen.horizontal, style)
    if edge.label:
        canvas.write(start, outside + 1, f" {marks.edge_label(edge)} ", style)
    canvas.put(start, col, pen.down_corner if down else pen.up_corner, style)
    for r in range(min(start, stop) + 1, max(start, stop)):
        canvas.put(r, col, pen.vertical, style)
    # Into the target: along from the lane to an arrowhead against its border.
    canvas.put(stop, col, pen.up_corner if down else pen.down_corner, style)
    for c in range(outside + 1, col):
        canvas.put(stop, c, pen.horizontal, style)
    canvas.put(stop, outside, "◄", style)


def draw_ascii(shape: GraphShape, path: RunPath | None = None) -> Text:
    """Draw the graph (and, given a run's path, the way that run went) as styled text.

    Args:
        shape: The graph to draw.
        path: A run's path; its nodes and edges are highlighted with visit counts.

    Returns:
        Rich text; ``.plain`` is the same picture without styles.
    """
    marks = _Marks.of(path)
    layout = _Layout.of(shape, marks)
    canvas = _Canvas(layout.width, layout.height)
    # Boxes first: the edges drawn over them put their tees and arrowheads on the borders.
    _draw_boxes(canvas, layout, marks)
    _draw_straight_edges(canvas, layout, marks)
    for lane in range(len(layout.lanes)):
        _draw_lane(canvas, layout, marks, lane)
    return canvas.to_text()
