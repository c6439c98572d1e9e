"""``hag-agent dataset``: built-in task suites and the hyperparameter search over them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
from rich.console import Console
from rich.table import Table

from hag_agent.cli import suite_job
from hag_agent.cli.backend_options import backend_options
from hag_agent.cli.executor_options import ExecutorName, chosen_executor, executor_options
from hag_agent.cli.exit_codes import EXIT_BACKEND, HAGGroup
from hag_agent.cli.grid_command import grid_plan, grid_sample, grid_score
from hag_agent.cli.option_kinds import defaulted_option
from hag_agent.cli.plain_text import print_plain
from hag_agent.cli.progress_view import ProgressView, warnings_shown
from hag_agent.errors import HAGInputError

if TYPE_CHECKING:
    from hag_agent.data.suites import SuiteCase
    from hag_agent.search.executor import Executor
    from hag_agent.search.run import SearchRun
    from hag_agent.search.space import SearchSettings


@click.group("dataset", cls=HAGGroup)
def dataset() -> None:
    """Task suites and the hyperparameter search that turns them into fine-tuning data."""


for _command in (grid_plan, grid_sample, grid_score):
    dataset.add_command(_command)


@dataset.command("suites")
def suites() -> None:
    """List the built-in suites with their tasks, metrics and sizes."""
    from hag_agent.data.suites import builtin_suites

    # The short columns never wrap; the description takes the rest of the width and wraps, so
    # the table stays readable on an 80-column terminal.
    table = Table(
        title="built-in suites",
        caption="size: cases made without --n (any --n works unless a maximum is given)",
    )
    for column in ("name", "task", "metric"):
        table.add_column(column, no_wrap=True)
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("description", overflow="fold", ratio=1)
    for spec in builtin_suites().values():
        maximum = f"; at most {spec.max_size} cases" if spec.max_size is not None else ""
        table.add_row(
            spec.name,
            spec.task.value,
            spec.metric,
            str(spec.default_size),
            spec.description + maximum,
        )
    Console().print(table)


@dataset.command("make")
@click.argument("name")
@click.option("--n", "size", type=int, help="How many cases (default: the suite's default size).")
@defaulted_option("--seed", default=0, help="Generator seed.")
@suite_job.output_option("The JSONL file to write.")
def make(name: str, size: int | None, seed: int, output: Path) -> None:
    """Write built-in suite NAME as JSONL; the same --n and --seed always give the same cases."""
    from hag_agent.data.suites import make_suite, write_cases

    err = Console(stderr=True)
    cases = make_suite(name, size, seed)
    try:
        write_cases(cases, output)
    except OSError as exc:
        raise HAGInputError(f"cannot write {output}: {exc}") from None
    print_plain(err, f"wrote {len(cases)} cases to {output}")


@dataset.command("search")
@click.argument("suite")
@suite_job.output_option(
    "JSONL file of search records (appended to; finished cases are skipped on rerun)."
)
@defaulted_option("--samples", default=3, help="K: samples per configuration.")
@defaulted_option(
    "--coarse-samples",
    default=1,
    help="Samples per coarse-grid configuration (the first of the K seeds).",
)
@defaulted_option("--keep", default=3, help="Coarse-grid survivors refined.")
@defaulted_option(
    "--budget", default=40, help="Maximum evaluations per case; one evaluation = K model calls."
)
@defaulted_option("--concurrency", default=1, help="Model calls in flight (per worker on Ray).")
@executor_options
@defaulted_option("--seed", default=0, help="Base seed: sample i uses seed+i.")
@click.option("--max-tokens", type=int, help="Hold max_tokens at this (default: task prior's).")
@suite_job.limit_option
@backend_options
@suite_job.failure_options("case")
@suite_job.quiet_option
def search(
    suite: str,
    output: Path,
    concurrency: int,
    executor: ExecutorName,
    ray_address: str | None,
    workers: int | None,
    limit: int | None,
    backend_choice: dict[str, Any],
    on_bad_line: Literal["skip", "fail"],
    stop_on_error: bool,
    quiet: bool,
    **search_options: Any,
) -> None:
    """Search each case of SUITE for its best decoding settings.

    SUITE is a built-in suite name or a JSONL file, or several, comma-separated.

    Per case: a coarse grid over temperature, top_p, top_k and repetition penalty on few samples,
    then greedy refinement one parameter at a time on K samples with fixed seeds. Each finished
    case appends one record (prompt, task, best params as proposal JSON, its score, the default
    and prior scores, evaluations spent) to OUTPUT; rerun the same command to resume.

    With --executor ray the cases run on Ray workers (a cluster at --ray-address, else Ray started
    in this process), each holding one backend; only this process writes OUTPUT, so a rerun
    resumes it the same way.

    Exit codes: 0 all cases done, 2 bad usage or input, 3 a case failed on a backend error.
    """
    from hag_agent.search.space import SearchSettings

    err = Console(stderr=True)
    suite_job.require_at_least_one(limit, "--limit")
    suite_job.require_at_least_one(concurrency, "--concurrency")
    where = chosen_executor(executor, ray_address, workers, concurrency)
    # ``search_options`` holds exactly the settings' fields.
    settings = suite_job.settings_from_options(SearchSettings, **search_options)
    with suite_job.noting_interrupts(f"finished cases are saved in {output}"):
        cases = suite_job.load_suites(
            suite, limit=limit, on_bad_line=on_bad_line, warn=suite_job.warner(err)
        )
        run = _run_two_stage(
            err, cases, output, settings, backend_choice, where, stop_on_error, quiet
        )
    _print_summary(err, run, cases, output)
    if run.failed:
        # Each failed case was reported as it happened; the exit code only says some failed.
        raise click.exceptions.Exit(EXIT_BACKEND)


def _run_two_stage(
    err: Console,
    cases: Sequence[SuiteCase],
    output: Path,
    settings: SearchSettings,
    chosen: dict[str, Any],
    executor: Executor,
    stop_on_error: bool,
    quiet: bool,
) -> SearchRun:
    """The paper's search over ``cases`` on the chosen backend, its progress drawn on ``err``."""
    from hag_agent.search.engine import SearchJob
    from hag_agent.search.run import search_file
    from hag_agent.search.sampling import backend_sampler
    from hag_agent.search.strategies import TwoStageSearch

    sampler = backend_sampler(chosen["backend"], chosen["backend_options"])
    with ProgressView(err, enabled=not quiet) as view:
        return search_file(
            cases,
            SearchJob(TwoStageSearch(settings), sampler),
            output,
            executor=executor,
            stop_on_error=stop_on_error,
            progress=warnings_shown(view, suite_job.warner(err)),
        )


def _print_summary(err: Console, run: SearchRun, cases: Sequence[SuiteCase], output: Path) -> None:
    """What the run did, and the mean figures of the cases' records in ``output``."""
    from hag_agent.data.search_records import read_records

    wanted = {c.id for c in cases}
    records = [r for r in read_records(output) if r.id in wanted]
    summary = (
        f"{len(run.completed)} searched, {len(run.skipped)} already done, "
        f"{len(run.failed)} failed"
        + (f", {run.not_run} not run (stopped)" if run.stopped else "")
        + f" in {run.wall_s:.1f} s; {len(records)} of {len(cases)} cases in {output}"
    )
    print_plain(err, summary)
    if records:
        print_plain(
            err,
            f"{suite_job.mean_scores(records)}; "
            f"{statistics.fmean(r.evaluations for r in records):.1f} evaluations, "
            f"{statistics.fmean(r.model_calls for r in records):.0f} model calls and "
            f"{statistics.fmean(r.wall_s for r in records):.1f} s per case",
        )
