import importlib.util
import json
from pathlib import Path

from langgraph.graph.state import CompiledStateGraph

from hag_agent.graph import GRAPH_NAME
from hag_agent.visualization.mermaid_text import to_mermaid
from hag_agent.visualization.topology import graph_shape


def mermaid() -> str:
    return to_mermaid(graph_shape())


GRAPHS = Path(__file__).resolve().parents[2] / "graphs"


def test_checked_in_mermaid_matches_the_compiled_graph() -> None:
    checked_in = (GRAPHS / "hag_graph.mmd").read_text(encoding="utf-8")
    assert checked_in == mermaid(), (
        "graphs/hag_graph.mmd drifted: run `hag-agent graph -o graphs/hag_graph.mmd`"
    )


def test_topology_has_the_retry_loop() -> None:
    text = mermaid()
    for edge in (
        "__start__ --> classify",
        "classify --> propose",
        "propose --> generate",
        "generate --> critique",
        "critique -. retry .-> adjust",
        "critique -. done .-> __end__",
        "adjust -. new params .-> generate",
        "adjust -. nothing new .-> __end__",
    ):
        assert edge in text


def test_langgraph_json_points_at_the_compiled_graph() -> None:
    config = json.loads((GRAPHS / "langgraph.json").read_text(encoding="utf-8"))
    ((name, target),) = config["graphs"].items()
    path, _, attr = target.partition(":")
    spec = importlib.util.spec_from_file_location("hag_graph_entry", GRAPHS / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    compiled = getattr(module, attr)
    assert isinstance(compiled, CompiledStateGraph)
    assert compiled.name == GRAPH_NAME == name
    assert compiled.builder.context_schema.__name__ == "HAGContext"
