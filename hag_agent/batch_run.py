"""Running a batch of independent async jobs: a bounded worker pool and its progress bar.

Shared by the resumable batch runs (`hag_agent.data.search_run`, `hag_agent.evaluation`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Job = TypeVar("Job")


async def drain(
    jobs: Sequence[Job],
    handle: Callable[[Job], Awaitable[None]],
    *,
    workers: int,
    stop: asyncio.Event,
) -> None:
    """Run ``handle`` on each job, in order, with at most ``workers`` running at once.

    No job starts once ``stop`` is set. An exception from ``handle`` ends its worker while the
    others go on with the queue; once all are done, the first such exception is raised.
    Cancelling this call cancels every worker.
    """
    position = 0

    async def worker() -> None:
        nonlocal position
        while not stop.is_set() and position < len(jobs):
            job = jobs[position]
            position += 1
            await handle(job)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(workers, len(jobs)))]
    try:
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def progress_bar(console: Console | None, *, enabled: bool) -> Progress:
    """A rich progress bar with ETA on stderr; disabled when asked or not on a terminal."""
    console = console or Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=False,
    )


__all__ = ["drain", "progress_bar"]
