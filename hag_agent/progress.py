"""How a long job (search, evaluation, training) tells its caller how far it got.

Library jobs never print: they call a `ProgressCallback` with `ProgressEvent`s and the caller
decides what to show (the CLI draws a rich progress bar; a notebook or a server may log or
ignore them). `no_progress` is the callback that ignores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

ProgressKind = Literal["start", "advance", "note", "end"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a job's progress."""

    kind: ProgressKind
    """``start`` (a stage begins; ``total`` set when known), ``advance`` (``done`` of ``total``
    finished), ``note`` (a line of news, e.g. a warning) or ``end`` (the stage is over)."""
    stage: str
    """The stage, in a few words (``search``, ``eval``, ``embedding prompts`` ...)."""
    done: int = 0
    """Units finished so far in this stage."""
    total: int | None = None
    """Units in this stage, when known."""
    message: str = ""
    """A short note to show beside the bar, or the news of a ``note`` event."""


ProgressCallback = Callable[[ProgressEvent], None]
"""What a job calls with each `ProgressEvent`."""


def no_progress(event: ProgressEvent) -> None:
    """A `ProgressCallback` that ignores every event."""


def note(progress: ProgressCallback, stage: str, message: str) -> None:
    """Report a line of news (a warning, a failure, a skipped unit) for ``stage``."""
    progress(ProgressEvent("note", stage, message=message))


class StageProgress:
    """One stage's events, counted: creating it reports ``start``, then `advance`, `note`, `end`."""

    def __init__(
        self, progress: ProgressCallback, stage: str, total: int | None = None, message: str = ""
    ) -> None:
        """Report the start of ``stage`` (``total`` units, when known)."""
        self.progress, self.stage, self.total = progress, stage, total
        self.done = 0
        """Units finished so far."""
        progress(ProgressEvent("start", stage, 0, total, message))

    def advance(self, count: int = 1, message: str = "") -> None:
        """Count ``count`` more units finished and report it."""
        self.done += count
        self.progress(ProgressEvent("advance", self.stage, self.done, self.total, message))

    def note(self, message: str) -> None:
        """Report a line of news (a warning, a skipped unit)."""
        note(self.progress, self.stage, message)

    def end(self, message: str = "") -> None:
        """Report the end of the stage."""
        self.progress(ProgressEvent("end", self.stage, self.done, self.total, message))


__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "ProgressKind",
    "StageProgress",
    "no_progress",
    "note",
]
