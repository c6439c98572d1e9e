"""``hag-agent chat``: a conversation that shows, turn by turn, what the model chose and why."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from hag_agent.cli.backend_options import backend_options, parse_pins, strategy_options
from hag_agent.cli.exit_codes import EXIT_BACKEND, HAGCommand


@click.command("chat", cls=HAGCommand)
@click.option("--session", "session_name", help="Resume (or start) the session of this name.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory of the sessions file [default: $HAG_DATA_DIR or ~/.local/share/hag-agent].",
)
@click.option(
    "--sessions",
    "sessions",
    metavar="DIR|FILE|URL",
    help="Where sessions are kept: a directory, a .sqlite file or a postgresql:// URL "
    "[default: $HAG_SESSIONS_URL, else --data-dir].",
)
@click.option("--json", "as_json", is_flag=True, help="Piped input: print each turn as JSON.")
@click.option(
    "--param",
    "pins",
    multiple=True,
    metavar="KEY=VALUE",
    help="Pin a hyperparameter for this session (repeatable; /set does it inside).",
)
@backend_options
@strategy_options
def chat(
    session_name: str | None,
    data_dir: Path | None,
    sessions: str | None,
    as_json: bool,
    pins: tuple[str, ...],
    backend_choice: dict[str, Any],
    strategy: dict[str, Any],
) -> None:
    """Talk with the model; under each answer, the task, the params it chose and their sources.

    Type /help inside for the slash commands (/set KEY=VALUE, /trace, /graph, /save FILE...).
    Conversations are saved as you go; --session NAME resumes one after a restart. Ctrl-C
    cancels the current answer, Ctrl-D or /exit leaves. With piped input it reads one prompt
    per line and prints plain answers.

    Exit codes: 0 done, 2 bad usage, 3 a turn failed in the backend (piped input), 130 Ctrl-C.
    """
    from hag_agent.chat.terminal import ChatSession
    from hag_agent.sessions import SessionStore, new_session_name

    interactive = sys.stdin.isatty()
    if interactive:
        _let_ctrl_c_through()
    settings = {k: v for k, v in {**backend_choice, **strategy}.items() if v is not None}
    if sessions and data_dir:
        raise click.UsageError("give --sessions or --data-dir, not both")
    store = SessionStore(data_dir or sessions)
    try:
        session = ChatSession(
            store,
            session_name or new_session_name(),
            settings,
            console=Console(highlight=False),
            interactive=interactive,
            as_json=as_json,
            pins=parse_pins(pins),
        )
        session.loop(None if interactive else sys.stdin)
    finally:
        store.close()
    if session.failures and not interactive:
        # Each failed turn was shown as it happened; the exit code only says some failed.
        raise click.exceptions.Exit(EXIT_BACKEND)


def _let_ctrl_c_through() -> None:
    """Make Ctrl-C cancel a turn even when the chat was started with SIGINT ignored.

    A shell that starts a command as a job (``cmd &``, then ``fg``) hands it SIGINT ignored, and
    Python then installs no KeyboardInterrupt handler: Ctrl-C at the terminal would do nothing.
    A terminal chat always wants it, so the ignored handler is replaced by Python's default.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
