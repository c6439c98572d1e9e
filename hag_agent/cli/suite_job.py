"""What the commands that run a job over suite cases share (``dataset search``, ``eval``).

Their common options, loading the suites, warnings, and the note on what a job saved when
Ctrl-C stops it (the exit code itself is `hag_agent.cli.exit_codes`' business).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click
from pydantic import BaseModel, ValidationError
from rich.console import Console

from hag_agent.cli.exit_codes import JobInterrupted
from hag_agent.cli.option_kinds import F, defaulted_option, file_option
from hag_agent.cli.plain_text import print_plain
from hag_agent.errors import HAGInputError, first_error

if TYPE_CHECKING:
    from hag_agent.data.search_records import SearchRecord
    from hag_agent.data.suites import SuiteCase

Settings = TypeVar("Settings", bound=BaseModel)

limit_option = click.option("--limit", type=int, help="Only the first N cases of each suite.")
"""``--limit N``: only the first N cases of each suite."""

quiet_option = click.option("--quiet", is_flag=True, help="No progress bar.")
"""``--quiet``: no progress bar."""


on_bad_line_option = defaulted_option(
    "--on-bad-line",
    type=click.Choice(["skip", "fail"]),
    default="fail",
    help="A malformed line of a suite file: report and skip it, or stop.",
)
"""``--on-bad-line skip|fail``: what a malformed suite line does."""


def output_option(help_text: str) -> Callable[[F], F]:
    """The required ``-o/--output`` file."""
    return file_option("-o", "--output", required=True, help=help_text)


def failure_options(unit: str) -> Callable[[F], F]:
    """Add --on-bad-line and --stop-on-error/--keep-going; ``unit`` names what fails."""
    stop_on_error = defaulted_option(
        "--stop-on-error/--keep-going",
        default=False,
        help=f"After a {unit} fails on a backend error: stop, or go on with the rest.",
    )

    def add(command: F) -> F:
        return on_bad_line_option(stop_on_error(command))

    return add


def require_at_least_one(value: int | None, option: str) -> None:
    """Reject a count below 1 given for ``option`` (None means not given).

    Raises:
        click.BadParameter: Naming the option.
    """
    if value is not None and value < 1:
        raise click.BadParameter("must be at least 1", param_hint=option)


def settings_from_options(model: type[Settings], **values: Any) -> Settings:
    """``model`` built from option values; the first value out of bounds is an input error.

    Raises:
        HAGInputError: Naming the setting (unless the settings as a whole are wrong) and what
            is wrong with it (exit code 2).
    """
    try:
        return model(**values)
    except ValidationError as exc:
        where, message = first_error(exc, "settings")
        message = message.removeprefix("Value error, ")
        raise HAGInputError(message if where == "settings" else f"{where}: {message}") from None


def load_suites(
    spec: str,
    *,
    limit: int | None,
    on_bad_line: Literal["skip", "fail"],
    warn: Callable[[str], None],
) -> list[SuiteCase]:
    """Cases of one suite or several, comma-separated (names or files); ``limit`` is per suite.

    Raises:
        HAGInputError: For an unknown suite, a bad file, or an id found in two suites.
    """
    from hag_agent.data.suites import load_cases

    parts = [spec] if Path(spec).is_file() else [p.strip() for p in spec.split(",") if p.strip()]
    cases: list[SuiteCase] = []
    origin: dict[str, str] = {}
    for part in parts:
        loaded = load_cases(part, on_bad_line=on_bad_line, warn=warn)
        for case in loaded[:limit] if limit is not None else loaded:
            if case.id in origin:
                raise HAGInputError(f"case id {case.id!r} is in both {origin[case.id]} and {part}")
            origin[case.id] = part
            cases.append(case)
    if not cases:
        raise HAGInputError(f"no suite given in {spec!r}")
    return cases


def mean_scores(records: Sequence[SearchRecord]) -> str:
    """``mean score: best B, default D, prior P`` over search records (none: empty)."""
    if not records:
        return ""
    return (
        f"mean score: best {statistics.fmean(r.score for r in records):.3f}, "
        f"default {statistics.fmean(r.default_score for r in records):.3f}, "
        f"prior {statistics.fmean(r.prior_score for r in records):.3f}"
    )


def warner(console: Console) -> Callable[[str], None]:
    """A callback printing warnings (skipped lines and the like) on ``console``."""

    def warn(message: str) -> None:
        print_plain(console, f"warning: {message}", style="yellow")

    return warn


@contextmanager
def noting_interrupts(saved: str) -> Iterator[None]:
    """Say what a job saved when Ctrl-C stops it; leave every failure's exit code to the CLI.

    Ctrl-C becomes a `JobInterrupted` noting that ``saved`` (e.g. "finished cases are saved in
    out.jsonl") and that rerunning resumes; typed errors and `OSError` pass through unchanged.
    `hag_agent.cli.exit_codes.failure_exit` prints them all and picks the exit code.
    """
    try:
        yield
    except JobInterrupted:
        raise
    except KeyboardInterrupt:
        raise JobInterrupted(f"{saved}: rerun the same command to continue") from None


__all__ = [
    "F",
    "failure_options",
    "limit_option",
    "load_suites",
    "mean_scores",
    "noting_interrupts",
    "on_bad_line_option",
    "output_option",
    "quiet_option",
    "require_at_least_one",
    "settings_from_options",
    "warner",
]
