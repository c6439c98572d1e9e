"""What a cluster's worker runs: search cases one at a time on a job it keeps loaded, or one case.

A `CaseWorker` (a Ray actor) is created once per worker process with the run's `SearchJob`; its
sampler builds its backend there (`hag_agent.search.sampling.BackendSampler` travels as a
recipe), so an embedded model loads once per worker, not once per case. `run_case` is the plain
task for a backend that holds nothing heavy (an endpoint's client). A case's `HAGError` comes
back as a value, the way `hag_agent.search.executor.OnCaseDone` takes it, never as a Ray task
failure (which Ray would report, and might retry, as a crash).
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AbstractAsyncContextManager
from typing import Any

from hag_agent.data.search_records import SearchRecord
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGError
from hag_agent.search.engine import SearchJob

CaseOutcome = SearchRecord | HAGError
"""A finished case: its record, or the typed error that stopped it."""


async def case_outcome(
    job: SearchJob, case: SuiteCase, limiter: AbstractAsyncContextManager[Any] | None
) -> CaseOutcome:
    """``job`` on ``case``: the record, or the `HAGError` it raised (other errors propagate)."""
    try:
        return await job(case, limiter)
    except HAGError as exc:
        return exc


class CaseWorker:
    """One worker's job: evaluates the cases it is sent, one at a time, with the same backend."""

    def __init__(self, job: SearchJob, concurrency: int = 1) -> None:
        """Keep ``job``; at most ``concurrency`` of its samples run at once."""
        self.job = job
        self.concurrency = concurrency
        self._limiter: asyncio.Semaphore | None = None

    async def run(self, case: SuiteCase) -> CaseOutcome:
        """Evaluate ``case``: its record, or its `HAGError`."""
        if self._limiter is None:
            # Made here, inside the worker's event loop, which every later call shares.
            self._limiter = asyncio.Semaphore(self.concurrency)
        return await case_outcome(self.job, case, self._limiter)

    def pid(self) -> int:
        """The worker's process id (tests kill it to check that the cluster restarts it)."""
        return os.getpid()


def run_case(job: SearchJob, case: SuiteCase, concurrency: int = 1) -> CaseOutcome:
    """``job`` on ``case`` in an event loop of its own (a plain Ray task: nothing kept)."""

    async def bounded() -> CaseOutcome:
        return await case_outcome(job, case, asyncio.Semaphore(concurrency))

    return asyncio.run(bounded())


__all__ = ["CaseOutcome", "CaseWorker", "case_outcome", "run_case"]
