"""The search over a whole case list: resumable from its JSONL output, run by an executor.

Records are appended to a JSONL file, one `SearchRecord` per case, flushed and synced as each case
finishes, so an interrupted run resumes without redoing any. Progress, warnings about the file and
failed cases are reported as `ProgressEvent`s (warnings and failures as ``note`` events).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.batch_run import BatchTally
from hag_agent.data.jsonl_log import append_line, drop_partial_line
from hag_agent.data.search_records import SearchRecord, read_records
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGError, HAGInputError
from hag_agent.progress import ProgressCallback, no_progress, note
from hag_agent.search.engine import SearchJob, Strategy
from hag_agent.search.executor import Executor, LocalExecutor

STAGE = "search"
"""The stage name of the run's progress events."""


class SearchRun(BaseModel):
    """What one `run_search` call did."""

    model_config = ConfigDict(extra="forbid")

    output: str
    """The JSONL file."""
    total: int
    """Cases given."""
    skipped: list[str] = Field(default_factory=list)
    """Case ids that already had a record (not redone)."""
    completed: list[str] = Field(default_factory=list)
    """Case ids finished and written by this run."""
    failed: dict[str, str] = Field(default_factory=dict)
    """Case ids whose search failed, with the error (no record written)."""
    stopped: bool = False
    """The run stopped early after a failure (``stop_on_error``)."""
    model_calls: int = 0
    """Generation calls made by this run's finished cases."""
    wall_s: float = 0.0
    """Wall time of the run."""

    @property
    def not_run(self) -> int:
        """Cases neither skipped, completed nor failed (left after a stop)."""
        return self.total - len(self.skipped) - len(self.completed) - len(self.failed)


def _prepare_output(path: Path, strategy: Strategy, progress: ProgressCallback) -> set[str]:
    """The ids already recorded; a partial last line is cut off so appends stay line-aligned.

    Raises:
        HAGInputError: When the file holds records made with another K, budget or seed: a
            resume would mix them with this strategy's records.
    """
    records = read_records(path, warn=lambda message: note(progress, STAGE, message))
    scope = strategy.scope
    wanted = (scope.samples, scope.budget, scope.seed)
    other = next((r for r in records if (r.samples, r.budget, r.seed) != wanted), None)
    if other is not None:
        raise HAGInputError(
            f"{path} holds records made with --samples {other.samples} --budget {other.budget} "
            f"--seed {other.seed} (e.g. {other.id}), not --samples {scope.samples} --budget "
            f"{scope.budget} --seed {scope.seed}: resume with those, or write a new file"
        )
    done = {record.id for record in records}
    if path.exists():
        drop_partial_line(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    return done


def _unique(cases: Sequence[SuiteCase]) -> list[SuiteCase]:
    """The cases in order, without repeats of an id."""
    seen: set[str] = set()
    unique: list[SuiteCase] = []
    for case in cases:
        if case.id not in seen:
            seen.add(case.id)
            unique.append(case)
    return unique


async def run_search(
    cases: Sequence[SuiteCase],
    job: SearchJob,
    output: str | Path,
    *,
    executor: Executor | None = None,
    stop_on_error: bool = False,
    progress: ProgressCallback = no_progress,
) -> SearchRun:
    """Search every case with ``job`` and append one record per finished case to ``output``.

    Cases that already have a record in ``output`` are skipped, so rerunning the same command
    after an interruption redoes nothing. A case whose job raises a `HAGError` (a backend
    failure) gets no record; the run goes on, or stops taking new cases when ``stop_on_error``.
    Other exceptions (bugs, Ctrl-C) propagate; finished records are kept.

    Args:
        cases: The cases (duplicate ids after the first are ignored).
        job: What to evaluate on each case (strategy, sampler, scorer).
        output: The JSONL file (created, or appended to).
        executor: Where the cases run (default: `LocalExecutor`, one call at a time).
        stop_on_error: Stop after the first failed case.
        progress: Told of each finished case; unreadable lines of ``output`` and failed cases
            come as ``note`` events.

    Returns:
        What was skipped, completed and failed.
    """
    start = time.perf_counter()
    path = Path(output)
    done = _prepare_output(path, job.strategy, progress)
    unique = _unique(cases)
    run = SearchRun(output=str(path), total=len(unique))
    run.skipped = [c.id for c in unique if c.id in done]
    queue = [c for c in unique if c.id not in done]
    tally = BatchTally(STAGE, len(queue), progress, stop_on_error=stop_on_error)

    def finished(case: SuiteCase, outcome: SearchRecord | HAGError) -> None:
        if isinstance(outcome, HAGError):
            run.failed[case.id] = str(outcome)
            note(progress, STAGE, f"case {case.id} failed: {outcome}")
        else:
            append_line(path, outcome.model_dump_json())
            run.completed.append(case.id)
            run.model_calls += outcome.model_calls
        message = f"{run.model_calls} calls, {len(run.failed)} failed"
        tally.job_done(message, failed=isinstance(outcome, HAGError))

    await (executor or LocalExecutor())(queue, job, finished, tally.stop)
    tally.end()
    run.stopped = tally.stop.is_set() and run.not_run > 0
    run.wall_s = round(time.perf_counter() - start, 3)
    return run


def search_file(
    cases: Sequence[SuiteCase], job: SearchJob, output: str | Path, **options: Any
) -> SearchRun:
    """Synchronous `run_search` (starts its own event loop)."""
    return asyncio.run(run_search(cases, job, output, **options))


__all__ = ["STAGE", "SearchRun", "run_search", "search_file"]
