"""The ``--trace`` view of a run: the task, each attempt's params with sources, scores, timings."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hag_agent.hyperparameters import HYPERPARAM_KEYS, SHORT_NAMES
from hag_agent.runnable import HAGResult


def _value(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def trace_view(result: HAGResult) -> RenderableType:
    """A table of attempts and the list of decisions, for the terminal."""
    task = result.task.value if result.task else "?"
    table = Table(
        title=f"task: {task}   answer: attempt {result.best_attempt}   ({result.stop_reason})",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    for key in HYPERPARAM_KEYS:
        table.add_column(SHORT_NAMES.get(key, key), justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("issues")
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("tok", justify="right", no_wrap=True)
    for attempt in result.attempts:
        cells: list[RenderableType] = [str(attempt.index)]
        for key in HYPERPARAM_KEYS:
            cell = Text(_value(getattr(attempt.params, key)))
            cell.append(f"\n{attempt.sources[key].value}", style="dim")
            cells.append(cell)
        critique = attempt.critique
        if attempt.error:
            cells += [Text("error", style="red"), attempt.error[:60]]
        elif critique is None:
            cells += ["-", "critique off"]
        else:
            style = "green" if critique.verdict == "accept" else "yellow"
            cells += [Text(f"{critique.score:.2f}", style=style), "; ".join(critique.issues)]
        cells.append(f"{attempt.latency_s:.2f}s")
        tokens = attempt.completion_tokens
        cells.append("-" if tokens is None else str(tokens))
        style = "bold" if attempt.index == result.best_attempt else ""
        table.add_row(*cells, style=style)
    decisions = Text()
    for event in result.trace:
        decisions.append(f"{event.node:>9}  ", style="cyan")
        decisions.append(f"{event.message}\n")
    return Group(table, decisions)
