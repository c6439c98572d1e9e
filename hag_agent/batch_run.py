"""Running a batch of independent async jobs: a bounded worker pool.

Shared by the resumable batch runs (`hag_agent.search.run`, `hag_agent.evaluation`); each
reports its progress through its caller's callback (`hag_agent.progress`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

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


__all__ = ["drain"]
