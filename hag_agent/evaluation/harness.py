"""The evaluation run: every case x proposer x seed once, resumable from ``rows.jsonl``.

Every run goes through `HAGRunnable` with the task pinned to the case's task and, by default,
critique off (one attempt: the paper's single-shot setting). Each row records the case metric
(`hag_agent.metrics.metric_value`), the wall time of the run (proposal call included) and the
answer's generated tokens (decision calls report none). Rows are appended to ``rows.jsonl`` in
the output folder as they finish, so a rerun skips them and a backend failure loses no finished
result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from hag_agent.assets import resolve_adapter
from hag_agent.batch_run import drain, progress_bar
from hag_agent.data.jsonl_log import append_line, drop_partial_line
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGError, HAGInputError
from hag_agent.evaluation.proposers import ProposerName, proposer_settings
from hag_agent.evaluation.report import EvalReport, aggregate
from hag_agent.evaluation.rows import (
    ROWS_FILE,
    EvalRow,
    Failure,
    file_digest,
    prompt_digest,
    read_rows,
    row_setup,
    setup_digest,
)
from hag_agent.evaluation.settings import EvalSettings
from hag_agent.hyperparameters import HyperParams

RowKey = tuple[str, str, int, str, str]
"""`EvalRow.key`: case id, proposer, seed, prompt digest, setup digest."""


def _tokens(result: Any) -> int | None:
    counts = [a.completion_tokens for a in result.attempts if a.completion_tokens is not None]
    return sum(counts) if counts else None


def _require_oracle(
    cases: Sequence[SuiteCase], settings: EvalSettings, oracle: Mapping[str, HyperParams] | None
) -> None:
    """Fail before any run when proposer ``oracle`` lacks a configuration for some case."""
    if "oracle" not in settings.proposers:
        return
    missing = [c.id for c in cases if oracle is None or c.id not in oracle]
    if missing:
        raise HAGInputError(
            f"proposer oracle needs a search configuration for every case; missing: "
            f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
        )


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


async def run_eval(
    cases: Sequence[SuiteCase],
    model: Any,
    out_dir: str | Path,
    settings: EvalSettings | None = None,
    *,
    oracle: Mapping[str, HyperParams] | None = None,
    tuned_model: Any = None,
    suite: str = "",
    backend_label: str = "",
    backend_options: Mapping[str, Any] | None = None,
    command: str = "",
    show_progress: bool = False,
    console: Console | None = None,
    warn: Callable[[str], None] | None = None,
    on_failure: Callable[[Failure], None] | None = None,
) -> EvalReport:
    """Run every case x proposer x seed not already in ``out_dir/rows.jsonl``; aggregate all.

    Args:
        cases: The cases.
        model: A `Backend` or LangChain chat model (resolve a named backend first).
        out_dir: The output folder (created); rows are appended to ``rows.jsonl`` there.
        settings: Proposers, seeds, critique, concurrency.
        oracle: Best configurations by case id (needed for proposer ``oracle``).
        tuned_model: The backend whose proposal calls go to the fine-tuned proposer (needed
            for proposer ``self-tuned``).
        suite: How to name the suite in the report.
        backend_label: How to name the backend in the report.
        backend_options: The backend's options, for the report.
        command: The command line, for the report.
        show_progress: Show a progress bar (only on a terminal).
        console: Where the progress bar goes (stderr by default).
        warn: Receives messages about unreadable rows.
        on_failure: Called for each failed run.

    Returns:
        The report (not yet written; see `write_reports`).

    Raises:
        HAGInputError: For proposer ``oracle`` without a configuration for every case.
    """
    from hag_agent.metrics import metric_value
    from hag_agent.runnable import HAGRunnable

    settings = settings or EvalSettings()
    _require_oracle(cases, settings, oracle)
    start = time.perf_counter()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    rows_path = folder / ROWS_FILE
    setup = setup_digest(backend_label or type(model).__name__, backend_options, settings)
    inputs = {
        "learned": file_digest(settings.head_path),
        "self-tuned": file_digest(resolve_adapter(settings.tuned_proposer)),
    }

    def key(case: SuiteCase, proposer: str, seed: int) -> RowKey:
        read = inputs.get(proposer, "")
        if proposer == "oracle" and oracle is not None and case.id in oracle:
            read = oracle[case.id].model_dump_json()
        return (case.id, proposer, seed, prompt_digest(case.prompt), row_setup(setup, read))

    wanted = {key(c, p, s) for c in cases for p in settings.proposers for s in settings.seed_list()}
    done: dict[RowKey, EvalRow] = {}
    rows = read_rows(rows_path, warn=warn)
    drop_partial_line(rows_path)  # the writer's job: appends then start on a fresh line
    for row in rows:
        if row.key() in wanted:
            done[row.key()] = row
    reused = len(done)
    jobs = [
        (case, proposer, seed)
        for seed in settings.seed_list()
        for case in cases
        for proposer in settings.proposers
        if key(case, proposer, seed) not in done
    ]
    runnable = HAGRunnable(model=model)
    if "self-tuned" in settings.proposers and tuned_model is None:
        raise HAGInputError("proposer self-tuned needs the tuned proposer (--tuned-proposer)")
    tuned = HAGRunnable(model=tuned_model) if tuned_model is not None else runnable
    fixed: dict[str, Any] = {"critique": settings.critique}
    if settings.critique and settings.max_retries is not None:
        fixed["max_retries"] = settings.max_retries
    if settings.max_tokens is not None:
        fixed["params"] = {"max_tokens": settings.max_tokens}
    failures: list[Failure] = []
    stop = asyncio.Event()

    async def one(case: SuiteCase, proposer: ProposerName, seed: int) -> EvalRow:
        chosen = proposer_settings(
            proposer, case, seed, oracle=oracle, head_path=settings.head_path
        )
        began = time.perf_counter()
        result = await (tuned if proposer == "self-tuned" else runnable).ainvoke(
            {"prompt": case.prompt, "task": case.task, "seed": seed, **fixed, **chosen}
        )
        elapsed = time.perf_counter() - began
        return EvalRow(
            case_id=case.id,
            task=case.task.value,
            metric_name=case.metric_name,
            proposer=proposer,
            seed=seed,
            prompt_sha=prompt_digest(case.prompt),
            critique=settings.critique,
            setup=key(case, proposer, seed)[4],
            metric=float(metric_value(case, result.text)),
            time_s=round(elapsed, 4),
            tokens=_tokens(result),
            attempts=len(result.attempts),
            params=result.params.model_dump() if result.params else None,
            output=result.text,
        )

    with progress_bar(console, enabled=show_progress) as progress:
        bar = progress.add_task("eval", total=len(jobs), note="")

        async def run_job(job: tuple[SuiteCase, ProposerName, int]) -> None:
            case, proposer, seed = job
            try:
                row = await one(case, proposer, seed)
            except HAGError as exc:
                failure = Failure(case_id=case.id, proposer=proposer, seed=seed, error=str(exc))
                failures.append(failure)
                if on_failure is not None:
                    on_failure(failure)
                if settings.stop_on_error:
                    stop.set()
            else:
                append_line(rows_path, row.model_dump_json())
                done[row.key()] = row
            progress.update(bar, advance=1, note=f"{len(failures)} failed")

        await drain(jobs, run_job, workers=settings.concurrency, stop=stop)

    rows = list(done.values())
    tasks, metrics = _tasks_and_metrics(cases)
    return EvalReport(
        command=command,
        suite=suite,
        backend=backend_label or type(model).__name__,
        backend_options=dict(backend_options or {}),
        settings=settings,
        cases=len(cases),
        metrics=metrics,
        tasks=tasks,
        aggregates=aggregate(rows, settings.proposers, tasks),
        failures=failures,
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
