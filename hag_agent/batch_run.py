"""Running a batch of independent async jobs: a bounded worker pool and its progress.

Shared by the resumable batch runs (`hag_agent.search`, `hag_agent.evaluation`): `run_each` runs
the jobs, handing each one's result or typed failure (`HAGError`) to the caller, which keeps it
(e.g. appends it to its JSONL log); `BatchTally` reports the finished jobs through the caller's
`ProgressCallback` as one stage and stops the batch after a failure when asked to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from hag_agent.errors import HAGError
from hag_agent.progress import ProgressCallback, StageProgress

Job = TypeVar("Job")
Result = TypeVar("Result")


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


async def run_each(
    jobs: Sequence[Job],
    run: Callable[[Job], Awaitable[Result]],
    on_done: Callable[[Job, Result | HAGError], None],
    *,
    workers: int,
    stop: asyncio.Event,
) -> None:
    """`drain` whose jobs may fail: ``on_done`` gets each job's result or its `HAGError`.

    A typed failure is an outcome (the batch goes on); any other exception propagates as in
    `drain`, once the running jobs are done.
    """

    async def one(job: Job) -> None:
        try:
            result = await run(job)
        except HAGError as exc:
            on_done(job, exc)
        else:
            on_done(job, result)

    await drain(jobs, one, workers=workers, stop=stop)


class BatchTally(StageProgress):
    """One batch's progress as one stage's events, and its stop flag.

    Creating it reports the stage's ``start``; each `job_done` an ``advance`` with the jobs
    finished so far (``done``); `end` the ``end``.
    """

    def __init__(
        self, stage: str, total: int, progress: ProgressCallback, *, stop_on_error: bool
    ) -> None:
        """Report the start of ``stage`` with ``total`` jobs due."""
        super().__init__(progress, stage, total)
        self.stop_on_error = stop_on_error
        self.stop = asyncio.Event()
        """Set after a failure when ``stop_on_error``: no job starts once it is."""

    def job_done(self, message: str, *, failed: bool) -> None:
        """Count one finished job (kept or failed) and report it, with ``message``."""
        if failed and self.stop_on_error:
            self.stop.set()
        self.advance(message=message)


__all__ = ["BatchTally", "drain", "run_each"]
