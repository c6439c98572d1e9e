"""The batch runner shared by the search and the evaluation: failures as outcomes, progress, stop."""

from __future__ import annotations

import asyncio

import pytest

from hag_agent.batch_run import BatchTally, run_each
from hag_agent.errors import HAGError, HAGInputError
from hag_agent.progress import ProgressEvent


async def square(job: int) -> int:
    """Job 3 fails with a typed error, job 99 with a bug."""
    await asyncio.sleep(0)
    if job == 3:
        raise HAGInputError("three is unlucky")
    if job == 99:
        raise RuntimeError("a bug")
    return job * job


def test_run_each_hands_results_and_typed_failures_to_on_done() -> None:
    outcomes: dict[int, int | HAGError] = {}
    stop = asyncio.Event()
    asyncio.run(run_each([1, 2, 3, 4], square, outcomes.__setitem__, workers=2, stop=stop))
    assert [outcomes[job] for job in (1, 2, 4)] == [1, 4, 16]
    assert isinstance(outcomes[3], HAGInputError) and str(outcomes[3]) == "three is unlucky"


def test_run_each_raises_other_exceptions_after_the_running_jobs() -> None:
    outcomes: dict[int, int | HAGError] = {}
    with pytest.raises(RuntimeError, match="a bug"):
        asyncio.run(
            run_each([99, 2, 5], square, outcomes.__setitem__, workers=2, stop=asyncio.Event())
        )
    assert outcomes == {2: 4, 5: 25}  # the other worker went on with the queue


def test_no_job_starts_once_stop_is_set() -> None:
    started: list[int] = []

    async def run(job: int) -> int:
        started.append(job)
        return await square(job)

    async def main() -> None:
        stop = asyncio.Event()

        def on_done(job: int, outcome: int | HAGError) -> None:
            if isinstance(outcome, HAGError):
                stop.set()

        await run_each([1, 3, 5, 7], run, on_done, workers=1, stop=stop)

    asyncio.run(main())
    assert started == [1, 3]


def test_tally_reports_one_stage_and_stops_after_a_failure_when_asked() -> None:
    events: list[ProgressEvent] = []
    tally = BatchTally("eval", 3, events.append, stop_on_error=True)
    tally.job_done("0 failed", failed=False)
    assert not tally.stop.is_set()
    tally.job_done("1 failed", failed=True)
    assert tally.stop.is_set() and tally.done == 2
    tally.end("1 failed")
    assert events == [
        ProgressEvent("start", "eval", 0, 3),
        ProgressEvent("advance", "eval", 1, 3, "0 failed"),
        ProgressEvent("advance", "eval", 2, 3, "1 failed"),
        ProgressEvent("end", "eval", 2, 3, "1 failed"),
    ]


def test_tally_goes_on_after_a_failure_by_default() -> None:
    tally = BatchTally("search", 1, lambda event: None, stop_on_error=False)
    tally.job_done("", failed=True)
    assert not tally.stop.is_set() and tally.done == 1
