"""How a chat turn is shown: the panel under each answer, the attempts tree, the transcript."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from hag_agent.chat.settings import ChatSettings
from hag_agent.hyperparameters import HYPERPARAM_KEYS, SHORT_NAMES, ParamSource
from hag_agent.runnable import HAGResult
from hag_agent.state import Attempt

SOURCE_STYLES: dict[ParamSource, str] = {
    ParamSource.MODEL: "green",
    ParamSource.PRIOR: "yellow",
    ParamSource.LEARNED: "blue",
    ParamSource.PINNED: "cyan",
    ParamSource.FIXED: "white",
    ParamSource.RETRY: "magenta",
}


def _number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def params_text(attempt: Attempt) -> Text:
    """``temp 0.3 model  top_p 0.9 prior ...``: each value with where it came from, coloured."""
    text = Text()
    for key in HYPERPARAM_KEYS:
        source = attempt.sources[key]
        if text:
            text.append("  ")
        text.append(f"{SHORT_NAMES.get(key, key)} ", style="dim")
        text.append(_number(getattr(attempt.params, key)), style="bold")
        text.append(f" {source.value}", style=SOURCE_STYLES.get(source, "white"))
    return text


def turn_panel(result: HAGResult, elapsed_s: float) -> Panel:
    """The compact panel under an answer: task, params with sources, score, attempts, cost."""
    chosen = result.attempts[result.best_attempt] if result.best_attempt is not None else None
    parts = [f"task {result.task.value if result.task else '?'}"]
    if chosen is not None and chosen.critique is not None:
        parts.append(f"score {chosen.critique.score:.2f}")
    elif chosen is not None:
        parts.append("no critique")
    count = len(result.attempts)
    parts.append(f"{count} attempt{'s' if count != 1 else ''}")
    if count > 1:
        parts.append(f"answer from attempt {result.best_attempt}")
    parts.append(f"{elapsed_s:.1f} s")
    tokens = result.completion_tokens
    if tokens is not None:
        parts.append(f"{tokens} tok")
    body: RenderableType = params_text(chosen) if chosen is not None else Text("no attempt")
    return Panel(
        body,
        title=" · ".join(parts),
        title_align="left",
        subtitle=result.stop_reason or None,
        subtitle_align="right",
        border_style="dim",
        expand=False,
    )


def attempts_tree(result: HAGResult) -> Tree:
    """The last turn as a tree: each attempt with its params, verdict and cost; then decisions."""
    task = result.task.value if result.task else "?"
    tree = Tree(Text(f"turn · task {task} · {result.stop_reason}", style="bold"))
    for attempt in result.attempts:
        critique = attempt.critique
        label = Text(f"attempt {attempt.index}")
        if attempt.index == result.best_attempt:
            label.append(" ← answer", style="bold green")
        if attempt.error:
            label.append(f" · failed: {attempt.error[:80]}", style="red")
        elif critique is not None:
            label.append(f" · score {critique.score:.2f} ({critique.verdict})")
        branch = tree.add(label)
        branch.add(params_text(attempt))
        if attempt.reason:
            branch.add(Text(f"why: {attempt.reason}", style="dim"))
        if critique is not None and critique.issues:
            branch.add(Text("issues: " + "; ".join(critique.issues), style="yellow"))
        cost = f"{attempt.latency_s:.2f} s"
        if attempt.completion_tokens is not None:
            cost += f", {attempt.completion_tokens} tokens"
        preview = attempt.output.strip().replace("\n", " ")
        branch.add(Text(f"{cost}: {preview[:100]}{'…' if len(preview) > 100 else ''}"))
    decisions = tree.add(Text("decisions", style="bold"))
    for event in result.trace:
        decisions.add(Text(f"{event.node}: {event.message}"))
    return tree


def settings_view(settings: ChatSettings, last: HAGResult | None) -> RenderableType:
    """``/params``: what is pinned now, and what the last answer used."""
    table = Table(show_header=False, box=None, padding=(0, 2))
    pins = ", ".join(f"{k}={_number(v)}" for k, v in settings.pins.items()) or "none"
    table.add_row("pinned params", pins)
    table.add_row("task", settings.task.value if settings.task else "classified per turn")
    table.add_row(
        "retries", "default" if settings.max_retries is None else str(settings.max_retries)
    )
    table.add_row("critique", "on" if settings.critique else "off")
    parts: list[RenderableType] = [table]
    if last is not None and last.best_attempt is not None:
        parts.append(Text("last answer used:", style="bold"))
        parts.append(params_text(last.attempts[last.best_attempt]))
    return Group(*parts)


def transcript_markdown(name: str, messages: Sequence[BaseMessage]) -> str:
    """The conversation as Markdown, each answer followed by the params it was generated with."""
    lines = [f"# hag-agent session `{name}`", ""]
    for message in messages:
        if isinstance(message, HumanMessage):
            lines += ["## You", "", message.text.strip(), ""]
        elif isinstance(message, AIMessage):
            lines += ["## hag-agent", "", message.text.strip(), ""]
            meta: dict[str, Any] = message.response_metadata or {}
            params = meta.get("hag_params")
            if params:
                values = ", ".join(f"{k}={_number(v)}" for k, v in params.items())
                lines += [
                    f"*task {meta.get('hag_task') or '?'}, attempt {meta.get('hag_attempt')}: "
                    f"{values}*",
                    "",
                ]
    return "\n".join(lines).rstrip() + "\n"
