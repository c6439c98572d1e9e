"""``hag-agent``: let a language model choose its own decoding settings (HAG).

Each command's help text is its docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hag_agent import __version__
from hag_agent.cli.exit_codes import EXIT_BACKEND, EXIT_INTERRUPTED, EXIT_USAGE
from hag_agent.cli.run_command import run
from hag_agent.errors import BackendError, HAGError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hag-agent")
def cli() -> None:
    """Hyperparameter Aware Generation: the model picks its decoding settings, then answers."""


cli.add_command(run)


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid"]),
    default="mermaid",
    show_default=True,
    help="Output format.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
@click.option("--check", is_flag=True, help="Exit 1 if --output differs from the graph.")
def graph(fmt: str, output: Path | None, check: bool) -> None:
    """Draw the HAG state machine.

    Regenerate the checked-in diagram with:
    hag-agent graph --format mermaid -o graphs/hag_graph.mmd
    """
    from hag_agent.graph import mermaid

    text = mermaid()
    if output is None:
        click.echo(text, nl=False)
        return
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            raise click.ClickException(f"{output} is out of date; regenerate it without --check")
        click.echo(f"{output} is up to date", err=True)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


def main() -> None:
    """Console-script entry point: typed errors become messages and exit codes, never tracebacks."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except HAGError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BACKEND if isinstance(exc, BackendError) else EXIT_USAGE)
