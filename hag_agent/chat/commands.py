"""The chat's slash commands: what each takes, its help line, and parsing a typed line.

A mistyped command is a `CommandError` whose message says what would have worked (the nearest
command name, or the usage), never an exception the user sees as a traceback.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from hag_agent.errors import HAGInputError


@dataclass(frozen=True)
class CommandSpec:
    """One slash command."""

    name: str
    usage: str
    help: str
    min_args: int = 0
    max_args: int = 0


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("params", "/params", "show pinned settings and the last answer's params"),
        CommandSpec("set", "/set KEY=VALUE", "pin a hyperparameter, e.g. /set top_k=40", 1, 2),
        CommandSpec("unset", "/unset KEY|all", "unpin a hyperparameter (or all of them)", 1, 1),
        CommandSpec("task", "/task KIND|auto", "pin the task kind, or auto to classify", 1, 1),
        CommandSpec("retries", "/retries N", "retries after the first attempt (0-10)", 1, 1),
        CommandSpec("critique", "/critique on|off", "critique and retry, or one attempt", 1, 1),
        CommandSpec("trace", "/trace", "the last turn's attempts as a tree"),
        CommandSpec("graph", "/graph", "the last turn's path through the state machine"),
        CommandSpec("new", "/new [NAME]", "start a new session", 0, 1),
        CommandSpec("sessions", "/sessions", "list saved sessions"),
        CommandSpec("save", "/save FILE", "write the transcript with params as Markdown", 1, 1),
        CommandSpec("help", "/help", "this list"),
        CommandSpec("exit", "/exit", "leave (Ctrl-D too)"),
    )
}
_ALIASES = {"quit": "exit", "q": "exit", "?": "help", "h": "help"}


class CommandError(HAGInputError):
    """A slash command that cannot be run as typed; the message says what would work."""


@dataclass(frozen=True)
class Command:
    """A parsed slash command."""

    name: str
    args: tuple[str, ...]

    @property
    def arg(self) -> str:
        """All arguments as one string."""
        return " ".join(self.args)


def is_command(line: str) -> bool:
    """Whether a typed line is a slash command (``//`` sends a literal slash to the model)."""
    return line.startswith("/") and not line.startswith("//")


def parse_command(line: str) -> Command:
    """Parse ``/name args...``.

    Raises:
        CommandError: Unknown name (with the nearest one suggested) or wrong number of arguments.
    """
    words = line.strip()[1:].split()
    if not words:
        raise CommandError("an empty command; type /help for the list")
    name, args = words[0].lower(), tuple(words[1:])
    name = _ALIASES.get(name, name)
    spec = COMMANDS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.5)
        hint = f"did you mean /{close[0]}? " if close else ""
        raise CommandError(f"unknown command /{name}; {hint}type /help for the list")
    if not spec.min_args <= len(args) <= spec.max_args:
        raise CommandError(f"usage: {spec.usage} ({spec.help})")
    return Command(name, args)
