"""``hag-agent graph``: draw the state machine, or the path one run took through it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from hag_agent.runnable import HAGResult

FORMATS = ("ascii", "mermaid", "svg", "png", "html")
_SUFFIXES = {".txt": "ascii", ".mmd": "mermaid", ".svg": "svg", ".png": "png", ".html": "html"}


def render(fmt: str, result: HAGResult | None = None, prompt: str = "") -> str | bytes:
    """The graph (with a run's path, if given) in one of `FORMATS`."""
    from hag_agent.visualization.topology import graph_shape

    shape = graph_shape()
    if fmt == "ascii":
        from hag_agent.visualization.ascii_diagram import draw_ascii
        from hag_agent.visualization.topology import RunPath

        return draw_ascii(shape, RunPath.of(result.trace) if result else None).plain
    if fmt == "mermaid":
        from hag_agent.visualization.mermaid_text import to_mermaid

        return to_mermaid(shape, result)
    if fmt == "html":
        from hag_agent.visualization.html_page import to_html

        return to_html(shape, result, prompt)
    from hag_agent.visualization.graphviz_render import render_image

    return render_image(shape, "png" if fmt == "png" else "svg", result)


@click.command("graph")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format [default: from the -o suffix, else ascii].",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
@click.option(
    "--trace",
    "run_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A run file from `hag-agent run --trace-out`: draw the path that run took.",
)
@click.option("--check", is_flag=True, help="Exit 1 if --output differs from what would be drawn.")
def graph(fmt: str | None, output: Path | None, run_file: Path | None, check: bool) -> None:
    """Draw the HAG state machine, or the path one run took through it (--trace).

    Formats: ascii (the terminal, retry loop included), mermaid, svg, png and html (one
    self-contained page); all work offline. svg, png and html need `pip install 'hag-agent[viz]'`.

    Regenerate the checked-in diagram with:
    hag-agent graph -o graphs/hag_graph.mmd
    """
    from hag_agent.visualization.topology import load_run

    if fmt is None:
        fmt = _SUFFIXES.get(output.suffix.lower(), "ascii") if output else "ascii"
    if fmt == "png" and output is None:
        raise click.UsageError("PNG is binary: give -o FILE.png")
    result, prompt = load_run(run_file) if run_file else (None, "")
    if fmt == "ascii" and output is None:
        from hag_agent.visualization.ascii_diagram import draw_ascii
        from hag_agent.visualization.topology import RunPath, graph_shape

        console = Console()
        console.print(draw_ascii(graph_shape(), RunPath.of(result.trace) if result else None))
        if result is not None:
            from hag_agent.cli.trace_table import trace_view

            console.print(trace_view(result))
        return
    drawn = render(fmt, result, prompt)
    if output is None:
        click.echo(drawn, nl=False)
        return
    data = drawn.encode("utf-8") if isinstance(drawn, str) else drawn
    if check:
        if not output.exists() or output.read_bytes() != data:
            raise click.ClickException(f"{output} is out of date; regenerate it without --check")
        click.echo(f"{output} is up to date", err=True)
        return
    output.write_bytes(data)
    click.echo(f"wrote {output}", err=True)
