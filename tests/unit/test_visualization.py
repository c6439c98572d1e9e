"""The visualizer: the graph and a run's path in ASCII, mermaid, SVG, PNG and HTML, offline."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hag_agent import HAGInputError, HAGResult, HAGRunnable
from hag_agent.testing import ScriptedChatModel
from hag_agent.visualization.ascii_diagram import draw_ascii
from hag_agent.visualization.graphviz_render import render_image
from hag_agent.visualization.html_page import to_html
from hag_agent.visualization.mermaid_text import to_mermaid
from hag_agent.visualization.topology import (
    GraphEdge,
    GraphShape,
    RunPath,
    graph_shape,
    load_run,
    run_record,
)

PROPOSAL = '{"temperature": 0.4, "top_p": 0.85, "top_k": 30, "min_p": 0.0, "repetition_penalty": 1.05, "max_tokens": 300}'
NODES = ("classify", "propose", "generate", "critique", "adjust")


def retried_run() -> HAGResult:
    """A real graph run (scripted model) whose first answer is rejected: one retry."""
    model = ScriptedChatModel(
        script={"propose": [PROPOSAL], "generate": ["a a a a a a a a a a a a a a", "Bonjour."]}
    )
    return HAGRunnable(model=model, proposer="self").invoke("Say hello in French")


def test_shape_orders_nodes_and_marks_the_loop() -> None:
    shape = graph_shape()
    assert shape.nodes == ("__start__", *NODES, "__end__")
    back = [e for e in shape.edges if shape.is_back_edge(e)]
    assert [(e.source, e.target, e.label) for e in back] == [("adjust", "generate", "new params")]


def test_path_is_read_off_the_trace() -> None:
    result = retried_run()
    path = RunPath.of(result.trace)
    assert path.nodes == (
        "__start__", "classify", "propose", "generate", "critique",
        "adjust", "generate", "critique", "__end__",
    )  # fmt: skip
    assert path.edge_counts()[("adjust", "generate")] == 1
    assert path.node_visits()["generate"] == 2


def test_ascii_draws_every_edge_including_the_back_edge() -> None:
    text = draw_ascii(graph_shape()).plain
    for node in (*NODES, "start", "end"):
        assert re.search(rf"│\s*{node}\s*[│├]", text), node
    # Two lanes: the loop back into generate and the skip from critique to end; each ends in an
    # arrowhead against its target's box.
    generate_line = next(line for line in text.splitlines() if " generate " in line)
    end_line = next(line for line in text.splitlines() if " end " in line)
    assert "◄" in generate_line and "◄" in end_line
    assert "new params" in text and "done" in text and "retry" in text
    assert "┼" in text  # the lanes cross rather than overwrite each other


def test_ascii_shows_the_path_without_colour() -> None:
    text = draw_ascii(graph_shape(), RunPath.of(retried_run().trace)).plain
    assert "generate ×2" in text and "critique ×2" in text
    adjust_line = next(line for line in text.splitlines() if "adjust" in line)
    assert "┣━ new params" in adjust_line  # taken: heavy
    nothing_line = next(line for line in text.splitlines() if "nothing new" in line)
    assert "┆" in nothing_line  # not taken: still dashed


def test_ascii_handles_a_generic_graph() -> None:
    shape = GraphShape(
        ("__start__", "a", "b", "c", "__end__"),
        (
            GraphEdge("__start__", "a"),
            GraphEdge("a", "b"),
            GraphEdge("a", "c", "skip"),
            GraphEdge("b", "c"),
            GraphEdge("c", "a", "again", conditional=True),
            GraphEdge("c", "__end__"),
        ),
    )
    lines = draw_ascii(shape).plain.splitlines()
    a_rows = [line for line in lines if "│" in line and ("◄" in line or "├" in line)][:2]
    assert any("skip" in line for line in a_rows) and any("◄" in line for line in a_rows)


def test_mermaid_styles_a_run() -> None:
    text = to_mermaid(graph_shape(), retried_run())
    assert "generate[generate ×2]" in text
    assert "class __start__,classify,propose,generate,critique,adjust,__end__ visited" in text
    assert "linkStyle" in text


def test_svg_has_every_node_and_the_retry_edge() -> None:
    svg = render_image(graph_shape(), "svg").decode()
    titles = set(re.findall(r"<title>(.*?)</title>", svg))
    for node in (*NODES, "__start__", "__end__"):
        assert node in titles
    assert "adjust&#45;&gt;generate" in titles and "critique&#45;&gt;adjust" in titles
    assert "new params" in svg


def test_png_decodes() -> None:
    from matplotlib.image import imread

    data = render_image(graph_shape(), "png", retried_run())
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    pixels = imread(io.BytesIO(data), format="png")
    height, width = pixels.shape[:2]
    assert height > 300 and width > 200
    assert pixels.std() > 0.05  # a drawing, not a blank canvas


def test_html_is_self_contained() -> None:
    result = retried_run()
    page = to_html(graph_shape(), result, prompt="Say <hello> in French")
    assert "<svg" in page and 'id="attempts"' in page
    assert "Say &lt;hello&gt; in French" in page
    assert not re.search(r"(src|href)=\"https?://", page)  # nothing to fetch
    assert "<?xml" not in page


def test_run_record_round_trip(tmp_path: Path) -> None:
    result = retried_run()
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_record(result, "Say hello in French")), encoding="utf-8")
    loaded, prompt = load_run(path)
    assert prompt == "Say hello in French"
    assert loaded.attempts == result.attempts and loaded.trace == result.trace
    assert loaded.best_attempt == 1


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ('{"answer": "x"}', "not a hag-agent run record"),
        ('{"attempts": [{"index": "x"}], "trace": []}', "does not validate"),
        ('{"attempts": [], "trace": [{"node": "teleport", "message": "?"}]}', "teleport"),
    ],
)
def test_bad_run_files_are_input_errors(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(HAGInputError, match=match):
        load_run(path)


def hag(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("hag-agent")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "hag_agent.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)


def test_graph_trace_cli_in_every_format(tmp_path: Path) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps(run_record(retried_run(), "Say hello")), encoding="utf-8")
    shown = hag("graph", "--trace", str(run))
    assert shown.returncode == 0, shown.stderr
    assert "generate ×2" in shown.stdout and "attempt 1" in shown.stdout
    for suffix in ("svg", "png", "html", "mmd", "txt"):
        out = tmp_path / f"g.{suffix}"
        done = hag("graph", "--trace", str(run), "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert out.stat().st_size > 100
        assert "Fontconfig" not in done.stderr
    bad = hag("graph", "--trace", str(tmp_path / "missing.json"))
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
    assert hag("graph", "--format", "png").returncode == 2  # binary needs -o
