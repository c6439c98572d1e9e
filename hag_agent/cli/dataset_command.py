"""``hag-agent dataset``: built-in task suites and the hyperparameter search over them."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn

import click
from rich.console import Console
from rich.table import Table

from hag_agent.cli.backend_options import backend_options, backend_settings
from hag_agent.cli.exit_codes import EXIT_BACKEND, EXIT_INTERRUPTED, EXIT_USAGE
from hag_agent.errors import BackendError, HAGError, HAGInputError

if TYPE_CHECKING:
    from hag_agent.data.suites import SuiteCase


def load_suites(
    spec: str,
    *,
    limit: int | None,
    on_bad_line: Literal["skip", "fail"],
    warn: Callable[[str], None],
) -> list[SuiteCase]:
    """Cases of one suite or several, comma-separated (names or files); ``limit`` is per suite.

    Raises:
        HAGInputError: For an unknown suite, a bad file, or an id found in two suites.
    """
    from hag_agent.data.suites import load_cases

    parts = [spec] if Path(spec).is_file() else [p.strip() for p in spec.split(",") if p.strip()]
    cases: list[SuiteCase] = []
    origin: dict[str, str] = {}
    for part in parts:
        loaded = load_cases(part, on_bad_line=on_bad_line, warn=warn)
        for case in loaded[:limit] if limit is not None else loaded:
            if case.id in origin:
                raise HAGInputError(f"case id {case.id!r} is in both {origin[case.id]} and {part}")
            origin[case.id] = part
            cases.append(case)
    if not cases:
        raise HAGInputError(f"no suite given in {spec!r}")
    return cases


def warner(console: Console) -> Callable[[str], None]:
    """A callback printing warnings (skipped lines and the like) on ``console``."""

    def warn(message: str) -> None:
        console.print(
            f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True
        )

    return warn


def fail(console: Console, exc: HAGError) -> NoReturn:
    """Print a typed error and exit with its code (3 for a backend, else 2)."""
    label = "backend error" if isinstance(exc, BackendError) else "error"
    console.print(f"{label}: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
    sys.exit(EXIT_BACKEND if isinstance(exc, BackendError) else EXIT_USAGE)


@click.group("dataset")
def dataset() -> None:
    """Task suites and the hyperparameter search that turns them into fine-tuning data."""


@dataset.command("suites")
def suites() -> None:
    """List the built-in suites with their tasks, metrics and sizes."""
    from hag_agent.data.suites import builtin_suites

    table = Table(title="built-in suites")
    for column in ("name", "task", "metric", "default size", "max size"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", overflow="fold")
    for spec in builtin_suites().values():
        table.add_row(
            spec.name,
            spec.task.value,
            spec.metric,
            str(spec.default_size),
            str(spec.max_size) if spec.max_size is not None else "unbounded",
            spec.description,
        )
    Console().print(table)


@dataset.command("make")
@click.argument("name")
@click.option("--n", "size", type=int, help="How many cases (default: the suite's default size).")
@click.option("--seed", type=int, default=0, show_default=True, help="Generator seed.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The JSONL file to write.",
)
def make(name: str, size: int | None, seed: int, output: Path) -> None:
    """Write built-in suite NAME as JSONL; the same --n and --seed always give the same cases."""
    from hag_agent.data.suites import make_suite, write_cases

    err = Console(stderr=True)
    try:
        cases = make_suite(name, size, seed)
        write_cases(cases, output)
    except HAGError as exc:
        fail(err, exc)
    except OSError as exc:
        err.print(f"error: cannot write {output}: {exc}", style="red", markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    err.print(
        f"wrote {len(cases)} cases to {output}", markup=False, highlight=False, soft_wrap=True
    )


@dataset.command("search")
@click.argument("suite")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSONL file of search records (appended to; finished cases are skipped on rerun).",
)
@click.option(
    "--samples", type=int, default=3, show_default=True, help="K: samples per configuration."
)
@click.option(
    "--coarse-samples",
    type=int,
    default=1,
    show_default=True,
    help="Samples per coarse-grid configuration (the first of the K seeds).",
)
@click.option(
    "--keep", type=int, default=3, show_default=True, help="Coarse-grid survivors refined."
)
@click.option(
    "--budget",
    type=int,
    default=40,
    show_default=True,
    help="Maximum evaluations per case; one evaluation = K model calls.",
)
@click.option(
    "--concurrency", type=int, default=1, show_default=True, help="Model calls in flight."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Base seed: sample i uses seed+i."
)
@click.option("--max-tokens", type=int, help="Hold max_tokens at this (default: task prior's).")
@click.option("--limit", type=int, help="Only the first N cases of each suite.")
@backend_options
@click.option(
    "--on-bad-line",
    type=click.Choice(["skip", "fail"]),
    default="fail",
    show_default=True,
    help="A malformed line of a suite file: report and skip it, or stop.",
)
@click.option(
    "--stop-on-error/--keep-going",
    default=False,
    show_default=True,
    help="After a case fails on a backend error: stop, or go on with the rest.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def search(
    suite: str,
    output: Path,
    samples: int,
    coarse_samples: int,
    keep: int,
    budget: int,
    concurrency: int,
    seed: int,
    max_tokens: int | None,
    limit: int | None,
    backend: str | None,
    base_url: str | None,
    model: str | None,
    proposer_model: str | None,
    model_path: str | None,
    on_bad_line: Literal["skip", "fail"],
    stop_on_error: bool,
    quiet: bool,
) -> None:
    """Search each case of SUITE for its best decoding settings.

    SUITE is a built-in suite name or a JSONL file, or several, comma-separated.

    Per case: a coarse grid over temperature, top_p, top_k and repetition penalty on few samples,
    then greedy refinement one parameter at a time on K samples with fixed seeds. Each finished
    case appends one record (prompt, task, best params as proposal JSON, its score, the default
    and prior scores, evaluations spent) to OUTPUT; rerun the same command to resume.

    Exit codes: 0 all cases done, 2 bad usage or input, 3 a case failed on a backend error.
    """
    from pydantic import ValidationError

    from hag_agent.data.search import SearchSettings, backend_sampler, read_records, search_file

    err = Console(stderr=True)
    warn = warner(err)
    if limit is not None and limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="--limit")
    if concurrency < 1:
        raise click.BadParameter("must be at least 1", param_hint="--concurrency")
    try:
        settings = SearchSettings(
            samples=samples,
            coarse_samples=coarse_samples,
            keep=keep,
            budget=budget,
            seed=seed,
            max_tokens=max_tokens,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise click.BadParameter(f"{where}: {first.get('msg')}") from None
    chosen = backend_settings(backend, base_url, model, proposer_model, model_path)
    try:
        cases = load_suites(suite, limit=limit, on_bad_line=on_bad_line, warn=warn)
        sampler = backend_sampler(chosen["backend"], chosen["backend_options"])
        run = search_file(
            cases,
            sampler,
            output,
            settings,
            concurrency=concurrency,
            stop_on_error=stop_on_error,
            show_progress=not quiet,
            console=err,
            warn=warn,
            on_failure=lambda case_id, error: warn(f"case {case_id} failed: {error}"),
        )
    except KeyboardInterrupt:
        err.print(
            f"interrupted; finished cases are saved in {output}: rerun the same command to "
            "continue",
            markup=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    except HAGError as exc:
        fail(err, exc)
    except OSError as exc:
        err.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)

    wanted = {c.id for c in cases}
    records = [r for r in read_records(output) if r.id in wanted]
    summary = (
        f"{len(run.completed)} searched, {len(run.skipped)} already done, "
        f"{len(run.failed)} failed"
        + (f", {run.not_run} not run (stopped)" if run.stopped else "")
        + f" in {run.wall_s:.1f} s; {len(records)} of {len(cases)} cases in {output}"
    )
    err.print(summary, markup=False, highlight=False, soft_wrap=True)
    if records:
        err.print(
            f"mean score: best {statistics.fmean(r.score for r in records):.3f}, "
            f"default {statistics.fmean(r.default_score for r in records):.3f}, "
            f"prior {statistics.fmean(r.prior_score for r in records):.3f}; "
            f"{statistics.fmean(r.evaluations for r in records):.1f} evaluations, "
            f"{statistics.fmean(r.model_calls for r in records):.0f} model calls and "
            f"{statistics.fmean(r.wall_s for r in records):.1f} s per case",
            markup=False,
            soft_wrap=True,
            highlight=False,
        )
    if run.failed:
        sys.exit(EXIT_BACKEND)
