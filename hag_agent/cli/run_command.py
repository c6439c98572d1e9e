"""``hag-agent run``: answer one prompt with HAG."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from hag_agent.cli.backend_options import backend_options, run_options, strategy_options
from hag_agent.cli.exit_codes import HAGCommand
from hag_agent.errors import HAGInputError


@contextlib.contextmanager
def spinner(console: Console, message: str) -> Iterator[None]:
    """A spinner on stderr while the model loads and works; nothing when stderr is no terminal."""
    if not console.is_terminal:
        yield
        return
    with console.status(message, spinner="dots"):
        yield


@click.command("run", cls=HAGCommand)
@click.argument("prompt")
@click.option(
    "--trace",
    "show_trace",
    is_flag=True,
    help="Show each attempt's params, sources, scores and timings.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.option(
    "--trace-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the run (attempts, trace, path) to this JSON file, for `hag-agent graph --trace`.",
)
@backend_options
@run_options
@strategy_options
def run(
    prompt: str,
    show_trace: bool,
    as_json: bool,
    trace_out: Path | None,
    backend_choice: dict[str, Any],
    run_choice: dict[str, Any],
    strategy: dict[str, Any],
) -> None:
    """Answer PROMPT (or - for stdin) under decoding settings the model chooses itself.

    Exit codes: 0 success, 2 bad usage or input, 3 backend failure, 130 interrupted.
    """
    from hag_agent.runnable import HAGRunnable

    err = Console(stderr=True)
    out = Console()
    text = sys.stdin.read() if prompt == "-" else prompt
    settings: dict[str, Any] = {**run_choice, **backend_choice, **strategy}
    runnable = HAGRunnable()
    with spinner(err, "thinking about how to answer..."):
        result = runnable.invoke({"prompt": text, **settings})
    if trace_out is not None:
        from hag_agent.visualization.topology import run_record

        try:
            trace_out.write_text(
                json.dumps(run_record(result, text), indent=2, ensure_ascii=False),
                encoding="utf-8",
            )
        except OSError as exc:
            raise HAGInputError(f"cannot write {trace_out}: {exc}") from None
    if as_json:
        click.echo(json.dumps(result.to_json_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(result.text)
    if show_trace:
        from hag_agent.cli.trace_table import trace_view

        (err if as_json else out).print(trace_view(result))
