"""One self-contained HTML page: the graph as inline SVG and, for a run, its attempts.

No script, font or stylesheet is fetched: the page opens the same with no network.
"""

from __future__ import annotations

import html

from hag_agent.hyperparameters import HYPERPARAM_KEYS, SHORT_NAMES
from hag_agent.runnable import HAGResult
from hag_agent.visualization.graphviz_render import render_image
from hag_agent.visualization.topology import GraphShape

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
.graph svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
td.text { text-align: left; max-width: 40rem; white-space: pre-wrap; }
tr.chosen { font-weight: bold; background: #eef9ee; }
.source { display: block; color: #777; font-size: 0.75rem; font-weight: normal; }
pre { background: #f6f6f6; padding: 0.75rem; white-space: pre-wrap; }
"""


def _inline_svg(shape: GraphShape, result: HAGResult | None) -> str:
    svg = render_image(shape, "svg", result).decode("utf-8")
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype, invalid inside HTML


def _attempts_table(result: HAGResult) -> str:
    head = "".join(f"<th>{SHORT_NAMES.get(k, k)}</th>" for k in HYPERPARAM_KEYS)
    rows = []
    for attempt in result.attempts:
        cells = "".join(
            f"<td>{getattr(attempt.params, k):g}"
            f'<span class="source">{attempt.sources[k].value}</span></td>'
            for k in HYPERPARAM_KEYS
        )
        critique = attempt.critique
        score = "-" if critique is None else f"{critique.score:.2f}"
        score = "failed" if attempt.error else score
        issues = attempt.error or ("; ".join(critique.issues) if critique else "")
        chosen = ' class="chosen"' if attempt.index == result.best_attempt else ""
        rows.append(
            f"<tr{chosen}><td>{attempt.index}</td>{cells}<td>{score}</td>"
            f'<td class="text">{html.escape(issues)}</td>'
            f"<td>{attempt.latency_s:.2f}s</td></tr>"
        )
    return (
        f'<table id="attempts"><tr><th>#</th>{head}<th>score</th><th>issues</th><th>time</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def to_html(shape: GraphShape, result: HAGResult | None = None, prompt: str = "") -> str:
    """The page as text."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>hag-agent{' run' if result is not None else ''}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>hag-agent state machine</h1>",
    ]
    if result is not None:
        task = result.task.value if result.task else "?"
        parts.append(
            f"<p>Task <b>{task}</b>; answer from attempt {result.best_attempt} "
            f"({html.escape(result.stop_reason)}). Highlighted: the path this run took.</p>"
        )
    parts.append(f'<div class="graph" id="graph">{_inline_svg(shape, result)}</div>')
    if result is not None:
        if prompt:
            parts.append(f'<h2>Prompt</h2><pre id="prompt">{html.escape(prompt)}</pre>')
        parts.append("<h2>Attempts</h2>" + _attempts_table(result))
        parts.append(f'<h2>Answer</h2><pre id="answer">{html.escape(result.text)}</pre>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
