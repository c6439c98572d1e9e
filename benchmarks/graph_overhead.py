"""Orchestration overhead of one HAG request through all nodes, with an instant fake model.

Prints the median and p95 wall time of one request (one attempt: rules classify, self propose,
generate, signals critique), the same for calling the fake model directly as often as the graph
does (2 calls), the overhead (request minus the direct calls' median) and the ratio; and, for
scale, a bare LangGraph graph of four trivial nodes. The three are measured interleaved, in
blocks, so a slow spell on a shared machine hits all of them alike.
Target: median overhead <= 2 ms on the 2-core dev machine.

    python benchmarks/graph_overhead.py [--runs 500]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any, TypedDict

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph

from hag_agent import HAGRunnable
from hag_agent.testing import ScriptedChatModel

PROPOSAL = (
    '{"temperature": 0.4, "top_p": 0.85, "top_k": 30, "min_p": 0.0, '
    '"repetition_penalty": 1.05, "max_tokens": 300}'
)
ANSWER = "Paris is the capital of France."
PROMPT = "What is the capital of France?"


def timings(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def interleaved(
    fns: dict[str, Callable[[], object]], runs: int, block: int = 50
) -> dict[str, list[float]]:
    for fn in fns.values():
        timings(fn, 20)  # warm-up
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, runs // block)):
        for name, fn in fns.items():
            out[name].extend(timings(fn, block))
    return out


def trivial_graph() -> Any:
    """Four no-op nodes in a line: LangGraph's own cost here, for scale."""
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(TrivialState)
    names = ["a", "b", "c", "d"]
    for name in names:
        builder.add_node(name, lambda state: {"value": 1})
    builder.add_edge(START, names[0])
    for first, second in itertools.pairwise(names):
        builder.add_edge(first, second)
    builder.add_edge(names[-1], END)
    return builder.compile()


class TrivialState(TypedDict, total=False):
    value: int


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()

    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [ANSWER]})
    runnable = HAGRunnable(model=model)
    result = runnable.invoke(PROMPT)
    assert len(result.attempts) == 1 and str(result) == ANSWER
    calls_per_run = len(model.calls)

    def direct() -> None:
        for _ in range(calls_per_run):
            model.invoke([HumanMessage(PROMPT)], temperature=0.4)

    bare = trivial_graph()
    measured = interleaved(
        {
            "hag": lambda: runnable.invoke(PROMPT),
            "direct": direct,
            "bare": lambda: bare.invoke({"value": 0}),
        },
        args.runs,
    )
    graph_times, direct_times, bare_times = measured["hag"], measured["direct"], measured["bare"]
    g_med, d_med = statistics.median(graph_times), statistics.median(direct_times)
    overhead = [g - d_med for g in graph_times]
    print(f"runs: {args.runs}, model calls per request: {calls_per_run}")
    print(f"HAG request    median {g_med * 1e3:7.3f} ms   p95 {p95(graph_times) * 1e3:7.3f} ms")
    print(f"direct calls   median {d_med * 1e3:7.3f} ms   p95 {p95(direct_times) * 1e3:7.3f} ms")
    print(
        f"overhead       median {statistics.median(overhead) * 1e3:7.3f} ms   "
        f"p95 {p95(overhead) * 1e3:7.3f} ms   (target: median <= 2 ms)"
    )
    print(f"ratio HAG / direct: {g_med / d_med:.2f}x")
    print(
        f"for scale, bare LangGraph with 4 trivial nodes: median "
        f"{statistics.median(bare_times) * 1e3:.3f} ms"
    )


if __name__ == "__main__":
    main()
