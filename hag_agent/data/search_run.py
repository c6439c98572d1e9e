"""The search over a whole case list: concurrent, and resumable from its JSONL output.

Records are appended to a JSONL file, one `SearchRecord` per case, flushed and synced as each case
finishes, so an interrupted run resumes without redoing any.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from hag_agent.batch_run import drain, progress_bar
from hag_agent.data.jsonl_log import append_line, drop_partial_line
from hag_agent.data.sampling import Sampler, Scorer, default_scorer
from hag_agent.data.search import search_case
from hag_agent.data.search_records import read_records
from hag_agent.data.search_space import SearchSettings
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGError, HAGInputError


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


def _prepare_output(
    path: Path, settings: SearchSettings, warn: Callable[[str], None] | None
) -> set[str]:
    """The ids already recorded; a partial last line is cut off so appends stay line-aligned.

    Raises:
        HAGInputError: When the file holds records made with another K, budget or seed: a
            resume would mix them with these settings' records.
    """
    records = read_records(path, warn=warn)
    wanted = (settings.samples, settings.budget, settings.seed)
    other = next((r for r in records if (r.samples, r.budget, r.seed) != wanted), None)
    if other is not None:
        raise HAGInputError(
            f"{path} holds records made with --samples {other.samples} --budget {other.budget} "
            f"--seed {other.seed} (e.g. {other.id}), not --samples {settings.samples} --budget "
            f"{settings.budget} --seed {settings.seed}: resume with those, or write a new file"
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
    sampler: Sampler,
    output: str | Path,
    settings: SearchSettings | None = None,
    *,
    concurrency: int = 1,
    stop_on_error: bool = False,
    scorer: Scorer | None = None,
    show_progress: bool = False,
    console: Console | None = None,
    warn: Callable[[str], None] | None = None,
    on_failure: Callable[[str, str], None] | None = None,
) -> SearchRun:
    """Search every case and append one record per finished case to ``output``.

    Cases that already have a record in ``output`` are skipped, so rerunning the same command
    after an interruption redoes nothing. At most ``concurrency`` model calls run at once (and
    at most that many cases are in progress). A case whose sampler raises a `HAGError` (a
    backend failure) gets no record; the run goes on, or stops taking new cases when
    ``stop_on_error``. Other exceptions (bugs, Ctrl-C) propagate; finished records are kept.

    Args:
        cases: The cases (duplicate ids after the first are ignored).
        sampler: Makes one generation.
        output: The JSONL file (created, or appended to).
        settings: Search settings.
        concurrency: Maximum model calls in flight.
        stop_on_error: Stop after the first failed case.
        scorer: Turns K outputs into a score (default `hag_agent.metrics.score_outputs`).
        show_progress: Show a progress bar (only on a terminal).
        console: Where the progress bar goes (stderr by default).
        warn: Receives messages about unreadable lines of ``output``.
        on_failure: Called with (case id, error) for each failed case.

    Returns:
        What was skipped, completed and failed.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    settings = settings or SearchSettings()
    scorer = scorer or default_scorer()
    path = Path(output)
    start = time.perf_counter()
    done = _prepare_output(path, settings, warn)
    unique = _unique(cases)
    run = SearchRun(output=str(path), total=len(unique))
    run.skipped = [c.id for c in unique if c.id in done]
    queue = [c for c in unique if c.id not in done]
    limiter = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()

    with progress_bar(console, enabled=show_progress) as progress:
        bar = progress.add_task("search", total=len(queue), note="")

        async def search_one(case: SuiteCase) -> None:
            try:
                record = await search_case(case, sampler, settings, scorer=scorer, limiter=limiter)
            except HAGError as exc:
                run.failed[case.id] = str(exc)
                if on_failure is not None:
                    on_failure(case.id, str(exc))
                if stop_on_error:
                    stop.set()
            else:
                append_line(path, record.model_dump_json())
                run.completed.append(case.id)
                run.model_calls += record.model_calls
            progress.update(
                bar, advance=1, note=f"{run.model_calls} calls, {len(run.failed)} failed"
            )

        await drain(queue, search_one, workers=concurrency, stop=stop)
    run.stopped = stop.is_set() and run.not_run > 0
    run.wall_s = round(time.perf_counter() - start, 3)
    return run


def search_file(
    cases: Sequence[SuiteCase],
    sampler: Sampler,
    output: str | Path,
    settings: SearchSettings | None = None,
    **options: Any,
) -> SearchRun:
    """Synchronous `run_search` (starts its own event loop)."""
    return asyncio.run(run_search(cases, sampler, output, settings, **options))


__all__ = ["SearchRun", "run_search", "search_file"]
