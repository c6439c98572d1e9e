"""Where the cases of a search run: the executor interface and the local asyncio pool.

An executor takes what to evaluate (a `SearchJob`) and a list of cases, and reports each finished
case, with its record or its typed error, to a callback in the caller's event loop. It decides
only where and how many at once; the job decides what is computed, and the caller what is done
with the results (`hag_agent.search.run` appends them to a file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hag_agent.batch_run import run_each
from hag_agent.data.search_records import SearchRecord
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGError
from hag_agent.search.engine import SearchJob

OnCaseDone = Callable[[SuiteCase, SearchRecord | HAGError], None]
"""Told of each finished case: its record, or the typed error that stopped it."""


Executor = Callable[[Sequence[SuiteCase], SearchJob, OnCaseDone, asyncio.Event], Awaitable[None]]
"""Runs a `SearchJob` over cases: ``await executor(cases, job, on_done, stop)``.

It evaluates ``job`` on every case, telling ``on_done`` as each finishes. No case starts once
``stop`` is set; cases already running finish. A case's `HAGError` goes to ``on_done``; any other
exception propagates once the running cases are done. `LocalExecutor` is one; another (a cluster's)
only has to be such a callable.
"""


@dataclass(frozen=True)
class LocalExecutor:
    """The cases in this process's event loop: at most ``concurrency`` samples in flight.

    At most that many cases are in progress too, taken in order.
    """

    concurrency: int = 1
    """Samples (model calls) in flight at once."""

    def __post_init__(self) -> None:
        """Reject a concurrency below 1."""
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")

    async def __call__(
        self, cases: Sequence[SuiteCase], job: SearchJob, on_done: OnCaseDone, stop: asyncio.Event
    ) -> None:
        """Evaluate ``job`` on every case here (see `Executor`)."""
        limiter = asyncio.Semaphore(self.concurrency)

        async def one(case: SuiteCase) -> SearchRecord:
            return await job(case, limiter)

        await run_each(cases, one, on_done, workers=self.concurrency, stop=stop)


__all__ = ["Executor", "LocalExecutor", "OnCaseDone"]
