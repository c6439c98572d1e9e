"""Feeding cases to a fixed set of workers: each works on one case at a time, the driver reports.

The driver side of a cluster executor, without the cluster: a worker is anything with an async
``run(case)`` that returns a `CaseOutcome` (a Ray actor's handle, wrapped; a fake in tests).
Cases go out in order to whichever worker is free; each outcome goes to ``on_done`` in the
driver's event loop as it arrives, so only the driver writes the records file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from hag_agent.batch_run import drain
from hag_agent.data.suites import SuiteCase
from hag_agent.search.case_worker import CaseOutcome
from hag_agent.search.executor import OnCaseDone


class CaseRunner(Protocol):
    """A worker the driver sends cases to, one at a time."""

    async def run(self, case: SuiteCase) -> CaseOutcome:
        """Evaluate ``case`` on the worker: its record, or its `HAGError`."""
        ...


async def run_on_workers(
    cases: Sequence[SuiteCase],
    workers: Sequence[CaseRunner],
    on_done: OnCaseDone,
    stop: asyncio.Event,
) -> None:
    """Run every case on the first free worker, telling ``on_done`` of each as it finishes.

    No case starts once ``stop`` is set; cases already out finish. An exception other than a
    case's `HAGError` (returned as its outcome) propagates once the running cases are done.

    Raises:
        ValueError: With no worker at all.
    """
    if not workers:
        raise ValueError("run_on_workers needs at least one worker")
    idle: asyncio.Queue[CaseRunner] = asyncio.Queue()
    for worker in workers:
        idle.put_nowait(worker)

    async def one(case: SuiteCase) -> None:
        worker = await idle.get()  # never waits: as many cases run as there are workers
        try:
            outcome = await worker.run(case)
        finally:
            idle.put_nowait(worker)
        on_done(case, outcome)

    await drain(cases, one, workers=len(workers), stop=stop)


__all__ = ["CaseRunner", "run_on_workers"]
