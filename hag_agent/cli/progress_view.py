"""Draws the library's progress events as a rich progress bar on stderr."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hag_agent.progress import ProgressCallback, ProgressEvent


class ProgressView:
    """A `ProgressCallback` that shows each stage as a bar with its ETA, and notes as lines.

    Use it as a context manager around the job. The bars are hidden when ``enabled`` is false or
    stderr is not a terminal; notes are printed either way.
    """

    def __init__(self, console: Console | None = None, *, enabled: bool = True) -> None:
        """Create the view.

        Args:
            console: Where to draw (stderr by default).
            enabled: Draw bars at all (notes still print).
        """
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not (enabled and self.console.is_terminal),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressView:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        """Show one event."""
        if event.kind == "note":
            self.console.print(event.message, highlight=False, markup=False)
            return
        task = self._tasks.get(event.stage)
        if task is None:
            task = self._progress.add_task(event.stage, total=event.total, note=event.message)
            self._tasks[event.stage] = task
        self._progress.update(
            task, completed=event.done, total=event.total, note=event.message, refresh=False
        )
        if event.kind == "end":
            if event.total is None:
                # A stage of unknown size (e.g. loading a model) leaves no idle bar behind.
                self._progress.remove_task(task)
                del self._tasks[event.stage]
            else:
                self._progress.stop_task(task)


def warnings_shown(view: ProgressCallback, warn: Callable[[str], None]) -> ProgressCallback:
    """``view`` for a search's progress, with its ``note`` events printed as warnings."""

    def show(event: ProgressEvent) -> None:
        if event.kind == "note":
            warn(event.message)
        else:
            view(event)

    return show


__all__ = ["ProgressView", "warnings_shown"]
