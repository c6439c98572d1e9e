"""The command line's exit codes, and the one place that turns what stops a command into one.

Commands let typed errors propagate; `failure_exit` prints the message and chooses the code:

- a `BackendError` (the model backend failed after its retries): ``backend error: ...``, 3;
- any other `HAGError` (bad usage or input, settings out of bounds, a missing package), or an
  `OSError` (an unreadable or unwritable file): ``error: ...``, 2;
- Ctrl-C: ``interrupted`` (with the command's note on what is saved, `JobInterrupted`), 130.

Click's own errors (unknown option, bad value) keep click's message and code 2. Every command
class here (`HAGCommand`, `HAGGroup`) applies it in ``invoke``, so a command behaves the same
whether it runs from the console script, under a group, or alone under click's ``CliRunner``
(errors raised while click parses the options, before ``invoke``, are mapped by `main` only).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from hag_agent.errors import BackendError, HAGError

EXIT_USAGE = 2
"""Bad usage or input (including settings out of bounds)."""
EXIT_BACKEND = 3
"""The model backend failed after its retries."""
EXIT_INTERRUPTED = 130
"""Ctrl-C."""


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C during a job, with a note on what it saved (shown after ``interrupted; ``)."""

    def __init__(self, note: str) -> None:
        self.note = note
        super().__init__(note)


Failure = KeyboardInterrupt | HAGError | OSError
"""What the command line reports as a message and an exit code (any other exception is a bug
and keeps its traceback)."""


def failure_exit(exc: Failure) -> int:
    """Print what stopped a command on stderr and return its exit code."""
    if isinstance(exc, KeyboardInterrupt):
        note = exc.note if isinstance(exc, JobInterrupted) else ""
        click.echo(f"interrupted; {note}" if note else "interrupted", err=True)
        return EXIT_INTERRUPTED
    if isinstance(exc, BackendError):
        click.secho(f"backend error: {exc}", fg="red", err=True)
        return EXIT_BACKEND
    click.secho(f"error: {exc}", fg="red", err=True)
    return EXIT_USAGE


@contextmanager
def failures_as_exit_codes(ctx: click.Context) -> Iterator[None]:
    """Exit ``ctx`` with `failure_exit`'s code when the block raises a failure it reports."""
    try:
        yield
    except (KeyboardInterrupt, HAGError, OSError) as exc:
        ctx.exit(failure_exit(exc))


class HAGCommand(click.Command):
    """A click command whose failures become messages and exit codes (`failure_exit`)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, reporting its failures."""
        with failures_as_exit_codes(ctx):
            return super().invoke(ctx)


class HAGGroup(click.Group):
    """A click group that reports failures as `HAGCommand` does, for every command under it."""

    command_class = HAGCommand
    group_class = type  # groups made with ``@group.group()`` are HAGGroups too

    def invoke(self, ctx: click.Context) -> Any:
        """Run the chosen subcommand, reporting its failures."""
        with failures_as_exit_codes(ctx):
            return super().invoke(ctx)


__all__ = [
    "EXIT_BACKEND",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "Failure",
    "HAGCommand",
    "HAGGroup",
    "JobInterrupted",
    "failure_exit",
    "failures_as_exit_codes",
]
