"""The evaluation run: every case x proposer x seed once, resumable from ``rows.jsonl``.

Every run goes through `HAGRunnable` with the task pinned to the case's task and, by default,
critique off (one attempt: the paper's single-shot setting). Each row records the case metric
(`hag_agent.metrics.metric_value`), the wall time of the run (proposal call included) and the
answer's generated tokens (decision calls report none). Rows are appended to ``rows.jsonl`` in
the output folder as they finish, so a rerun skips them and a backend failure loses no finished
result. Progress goes to a `ProgressCallback` (stage ``eval``); nothing is printed.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hag_agent.batch_run import BatchTally, run_each
from hag_agent.data.jsonl_log import append_line, drop_partial_line
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGError, HAGInputError
from hag_agent.evaluation.comparison import compare_all
from hag_agent.evaluation.proposers import ProposerInputs, run_settings
from hag_agent.evaluation.report import EvalReport, ReportLabels, aggregate
from hag_agent.evaluation.rows import (
    ROWS_FILE,
    EvalRow,
    Failure,
    prompt_digest,
    read_rows,
    row_setup,
    setup_digest,
)
from hag_agent.evaluation.settings import EvalSettings
from hag_agent.hyperparameters import HyperParams
from hag_agent.progress import ProgressCallback, no_progress, note

STAGE = "eval"
"""The harness's progress stage."""

RowKey = tuple[str, str, int, str, str]
"""`EvalRow.key`: case id, proposer, seed, prompt digest, setup digest."""
Job = tuple[SuiteCase, str, int]
"""One run: case, proposer, seed."""


def _tokens(result: Any) -> int | None:
    counts = [a.completion_tokens for a in result.attempts if a.completion_tokens is not None]
    return sum(counts) if counts else None


def _tasks_and_metrics(cases: Sequence[SuiteCase]) -> tuple[list[str], dict[str, list[str]]]:
    """The tasks in order of first appearance, and each task's metric names."""
    tasks: list[str] = []
    metrics: dict[str, list[str]] = {}
    for case in cases:
        if case.task.value not in tasks:
            tasks.append(case.task.value)
        names = metrics.setdefault(case.task.value, [])
        if case.metric_name not in names:
            names.append(case.metric_name)
    return tasks, metrics


def _oracle(
    cases: Sequence[SuiteCase], settings: EvalSettings, warn: Callable[[str], None] | None
) -> dict[str, HyperParams]:
    """Each case's searched configuration, when ``oracle`` is compared (checked before any run)."""
    if "oracle" not in settings.proposers or settings.search_file is None:
        return {}
    from hag_agent.proposers.oracle import oracle_params

    return oracle_params(settings.search_file, cases, warn=warn)


def _check_fitted_priors(
    cases: Sequence[SuiteCase], settings: EvalSettings, warn: Callable[[str], None] | None
) -> None:
    """Read ``fitted-prior``'s file before any run, and warn when it was fitted on these cases.

    Raises:
        HAGInputError: The file is missing or is not a fitted-priors file.
    """
    if "fitted-prior" not in settings.proposers or settings.priors_file is None:
        return
    from hag_agent.data.fitted_priors import read_fitted_priors

    fitted_on = set(read_fitted_priors(settings.priors_file).case_ids)
    seen = [case.id for case in cases if case.id in fitted_on]
    if seen and warn is not None:
        warn(
            f"fitted-prior was fitted on {len(seen)} of these {len(cases)} cases (e.g. "
            f"{seen[0]}): its figures on them are in-sample; fit with the same --held-out and "
            "--seed as `train sft` and evaluate with --cases-from its held_out.jsonl"
        )


class _Runs:
    """The runs of one evaluation: which are due, running one, and keeping its row."""

    def __init__(
        self, settings: EvalSettings, setup: str, inputs: ProposerInputs, rows_path: Path
    ) -> None:
        self.settings, self.setup, self.inputs, self.rows_path = settings, setup, inputs, rows_path
        self.done: dict[RowKey, EvalRow] = {}
        self.failures: list[Failure] = []
        self.fixed: dict[str, Any] = {"critique": settings.critique}
        if settings.critique and settings.max_retries is not None:
            self.fixed["max_retries"] = settings.max_retries
        if settings.max_tokens is not None:
            self.fixed["params"] = {"max_tokens": settings.max_tokens}

    def key(self, case: SuiteCase, proposer: str, seed: int) -> RowKey:
        setup = row_setup(self.setup, self.inputs(proposer, case.id))
        return (case.id, proposer, seed, prompt_digest(case.prompt), setup)

    def resume(self, cases: Sequence[SuiteCase], warn: Callable[[str], None] | None) -> list[Job]:
        """Keep the finished rows of these runs; the runs still due, in order."""
        seeds, proposers = self.settings.seed_list(), self.settings.proposers
        wanted = {self.key(c, p, s) for c in cases for p in proposers for s in seeds}
        rows = read_rows(self.rows_path, warn=warn)
        drop_partial_line(self.rows_path)  # the writer's job: appends then start on a fresh line
        self.done = {row.key(): row for row in rows if row.key() in wanted}
        return [
            (case, proposer, seed)
            for seed in seeds
            for case in cases
            for proposer in proposers
            if self.key(case, proposer, seed) not in self.done
        ]

    async def run(self, runnable: Any, job: Job) -> EvalRow:
        """Run one case under one proposer and seed; its row."""
        from hag_agent.metrics import metric_value

        case, proposer, seed = job
        chosen = run_settings(proposer, case, self.settings)
        began = time.perf_counter()
        result = await runnable.ainvoke(
            {"prompt": case.prompt, "task": case.task, "seed": seed, **self.fixed, **chosen}
        )
        elapsed = time.perf_counter() - began
        return EvalRow(
            case_id=case.id,
            task=case.task.value,
            metric_name=case.metric_name,
            proposer=proposer,
            seed=seed,
            prompt_sha=prompt_digest(case.prompt),
            critique=self.settings.critique,
            setup=self.key(case, proposer, seed)[4],
            metric=float(metric_value(case, result.text)),
            time_s=round(elapsed, 4),
            tokens=_tokens(result),
            attempts=len(result.attempts),
            params=result.params.model_dump() if result.params else None,
            output=result.text,
        )

    def keep(self, row: EvalRow) -> None:
        """Append a finished row to the file and the results."""
        append_line(self.rows_path, row.model_dump_json())
        self.done[row.key()] = row


async def _run_jobs(
    runs: _Runs,
    jobs: list[Job],
    runnables: Callable[[str], Any],
    progress: ProgressCallback,
) -> None:
    tally = BatchTally(STAGE, len(jobs), progress, stop_on_error=runs.settings.stop_on_error)

    def finished(job: Job, outcome: EvalRow | HAGError) -> None:
        case, proposer, seed = job
        if isinstance(outcome, HAGError):
            failure = Failure(case_id=case.id, proposer=proposer, seed=seed, error=str(outcome))
            runs.failures.append(failure)
            tally.note(f"{case.id} / {proposer} / seed {seed}: {outcome}")
        else:
            runs.keep(outcome)
        tally.job_done(f"{len(runs.failures)} failed", failed=isinstance(outcome, HAGError))

    def run_job(job: Job) -> Awaitable[EvalRow]:
        return runs.run(runnables(job[1]), job)

    workers = runs.settings.concurrency
    await run_each(jobs, run_job, finished, workers=workers, stop=tally.stop)
    tally.end(f"{len(runs.failures)} failed")


def _runnables(model: Any, tuned_model: Any, settings: EvalSettings) -> Callable[[str], Any]:
    """Which runnable runs a proposer: ``self-tuned`` the tuned model's, the others the model's.

    Raises:
        HAGInputError: For ``self-tuned`` without ``tuned_model``.
    """
    from hag_agent.runnable import HAGRunnable

    if "self-tuned" in settings.proposers and tuned_model is None:
        raise HAGInputError("proposer self-tuned needs the tuned proposer (--tuned-proposer)")
    runnable = HAGRunnable(model=model)
    tuned = HAGRunnable(model=tuned_model) if tuned_model is not None else runnable
    return lambda proposer: tuned if proposer == "self-tuned" else runnable


async def run_eval(
    cases: Sequence[SuiteCase],
    model: Any,
    out_dir: str | Path,
    settings: EvalSettings | None = None,
    *,
    tuned_model: Any = None,
    labels: ReportLabels | None = None,
    progress: ProgressCallback = no_progress,
) -> EvalReport:
    """Run every case x proposer x seed not already in ``out_dir/rows.jsonl``; aggregate all.

    Args:
        cases: The cases.
        model: A `Backend` or LangChain chat model (resolve a named backend first).
        out_dir: The output folder (created); rows are appended to ``rows.jsonl`` there.
        settings: Proposers (and what they need), seeds, critique, concurrency.
        tuned_model: The backend whose proposal calls go to the fine-tuned proposer (for
            ``self-tuned``).
        labels: How the report names the suite, the backend (and its options) and the command.
        progress: Receives the ``eval`` stage's progress, and as ``note`` events each failed
            run and each unreadable row or search record.

    Returns:
        The report (not yet written; see `write_reports`).

    Raises:
        HAGInputError: For ``oracle`` without a configuration for every case, or ``self-tuned``
            without ``tuned_model``.
    """
    settings = settings or EvalSettings()
    runnables = _runnables(model, tuned_model, settings)
    start = time.perf_counter()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    labels = labels or ReportLabels()
    if not labels.backend:
        labels = labels.model_copy(update={"backend": type(model).__name__})
    setup = setup_digest(labels.backend, labels.backend_options, settings)

    warn = functools.partial(note, progress, STAGE)
    _check_fitted_priors(cases, settings, warn)
    inputs = ProposerInputs(settings, _oracle(cases, settings, warn))
    runs = _Runs(settings, setup, inputs, folder / ROWS_FILE)
    jobs = runs.resume(cases, warn)
    reused = len(runs.done)
    await _run_jobs(runs, jobs, runnables, progress)
    return _report(cases, runs, reused, start, labels)


def _report(
    cases: Sequence[SuiteCase], runs: _Runs, reused: int, start: float, labels: ReportLabels
) -> EvalReport:
    """The report of every row kept, named by ``labels``."""
    rows = list(runs.done.values())
    tasks, metrics = _tasks_and_metrics(cases)
    return EvalReport(
        **labels.model_dump(),
        settings=runs.settings,
        cases=len(cases),
        metrics=metrics,
        tasks=tasks,
        aggregates=aggregate(rows, runs.settings.proposers, tasks),
        comparisons=compare_all(rows, runs.settings.proposers, tasks),
        failures=runs.failures,
        rows=len(rows),
        reused_rows=reused,
        wall_s=round(time.perf_counter() - start, 3),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def evaluate(
    cases: Sequence[SuiteCase],
    model: Any,
    out_dir: str | Path,
    settings: EvalSettings | None = None,
    **options: Any,
) -> EvalReport:
    """Synchronous `run_eval` (starts its own event loop)."""
    return asyncio.run(run_eval(cases, model, out_dir, settings, **options))


__all__ = ["evaluate", "run_eval"]
