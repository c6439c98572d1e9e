"""``hag-agent eval``: compare who picks the decoding settings, on the same cases and seeds."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from hag_agent.cli import suite_job
from hag_agent.cli.backend_options import backend_options
from hag_agent.cli.exit_codes import EXIT_BACKEND, HAGCommand
from hag_agent.cli.option_kinds import defaulted_option, file_option
from hag_agent.cli.plain_text import print_plain
from hag_agent.errors import HAGInputError

if TYPE_CHECKING:
    from hag_agent.context import HAGContext
    from hag_agent.data.suites import SuiteCase
    from hag_agent.evaluation.report import EvalReport
    from hag_agent.evaluation.settings import EvalSettings


def command_line(ctx: click.Context) -> str:
    """The command as typed: ``hag-agent`` and the options given on the command line."""
    names: list[str] = []
    current: click.Context | None = ctx
    while current is not None:
        names.append(current.info_name or "")
        current = current.parent
    names.reverse()
    parts = ["hag-agent", *names[1:]] if len(names) > 1 else ["hag-agent", *names]
    for param in ctx.command.params:
        if param.name is None:
            continue
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            parts.append(str(value))
            continue
        source = ctx.get_parameter_source(param.name)
        if source is not click.core.ParameterSource.COMMANDLINE or not isinstance(
            param, click.Option
        ):
            continue
        if param.is_flag:
            if param.secondary_opts and not value:
                parts.append(param.secondary_opts[0])
            elif value:
                parts.append(max(param.opts, key=len))
        elif value is not None:
            parts += [max(param.opts, key=len), str(value)]
    return shlex.join(parts)


def report_table(report: EvalReport) -> Table:
    """The report as a rich table: each task, then overall; one row per proposer."""
    from hag_agent.evaluation.report import OVERALL, summary_cells

    table = Table(title=f"{report.suite} on {report.backend}")
    # A task's metric names may be long: they wrap rather than squeeze the figures away.
    table.add_column("task", max_width=28)
    table.add_column("proposer", no_wrap=True)
    table.add_column("metric (mean ± std)", justify="right")
    table.add_column("time / case (s)", justify="right")
    table.add_column("tokens / case", justify="right")
    table.add_column("cases", justify="right")
    groups = [*report.tasks, OVERALL]
    for g, task in enumerate(groups):
        metrics = ", ".join(report.metrics.get(task, []))
        for p, proposer in enumerate(report.settings.proposers):
            table.add_row(
                (f"{task} ({metrics})" if metrics else task) if p == 0 else "",
                proposer,
                *summary_cells(report.aggregate(task, proposer)),
                end_section=p == len(report.settings.proposers) - 1 and g < len(groups) - 1,
            )
    return table


def differences_table(report: EvalReport) -> Table | None:
    """Overall, each proposer against each baseline that ran, with the 95% interval."""
    from hag_agent.evaluation.comparison import OVERALL, format_difference, format_record

    overall = [c for c in report.comparisons if c.task == OVERALL]
    if not overall:
        return None
    table = Table(title="overall, paired on case and seed (95% bootstrap interval)")
    table.add_column("proposer", no_wrap=True)
    table.add_column("against", no_wrap=True)
    table.add_column("difference [95% interval]", justify="right")
    table.add_column("verdict")
    table.add_column("wins / ties / losses", justify="right")
    for item in overall:
        table.add_row(
            item.proposer,
            item.baseline,
            format_difference(item),
            item.verdict,
            format_record(item),
        )
    return table


@click.command("eval", cls=HAGCommand)
@click.option(
    "--suite",
    required=True,
    help="A built-in suite name or a JSONL file of cases, or several, comma-separated.",
)
@backend_options
@click.option(
    "--proposers",
    default="default,random,prior,self",
    show_default=True,
    help="Comma-separated: default, random, prior, self, self-tuned, learned, oracle, fixed, "
    "fitted-prior, min-p, or a plugin's.",
)
@file_option(
    "--search",
    "search_file",
    help="Search records (`hag-agent dataset search`) giving the oracle's configurations.",
)
@file_option(
    "--priors",
    "priors_file",
    help="For fitted-prior: the per-task configurations from `hag-agent train prior`.",
)
@click.option(
    "--tuned-proposer",
    help="For self-tuned: a served model name (endpoints, e.g. a LoRA) or a GGUF LoRA file "
    "(embedded, from `hag-agent train sft`).",
)
@click.option(
    "--head",
    "head_path",
    type=click.Path(dir_okay=False),
    help="For learned: the head file from `hag-agent train head` (`builtin`: the packaged one).",
)
@file_option(
    "--cases-from",
    help="Only the cases whose ids this JSONL file names (e.g. a training run's held_out.jsonl).",
)
@defaulted_option("--seeds", default=1, help="Seeds per case.")
@defaulted_option("--seed", "base_seed", default=0, help="First seed.")
@suite_job.limit_option
@defaulted_option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("eval-results"),
    help="Folder for rows.jsonl, report.json, report.md and chart.png (reruns resume).",
)
@defaulted_option(
    "--critique/--no-critique",
    default=False,
    help="Critique and retry, or one attempt per run (the paper's setting).",
)
@click.option("--max-retries", type=int, help="Retries when critique is on.")
@click.option("--max-tokens", type=int, help="Pin max_tokens for every proposer.")
@defaulted_option("--concurrency", default=1, help="Runs in flight.")
@suite_job.failure_options("run")
@click.option("--no-chart", is_flag=True, help="Skip the PNG chart (no matplotlib needed).")
@suite_job.quiet_option
@click.pass_context
def eval_command(
    ctx: click.Context, /, suite: str, out_dir: Path, no_chart: bool, quiet: bool, **options: Any
) -> None:
    """Compare proposers of decoding settings on a suite: default, random, prior, self, oracle.

    Also self-tuned (--tuned-proposer) and learned (--head), the fine-tuned proposers,
    fitted-prior (--priors: the best configuration per task kind on search data), fixed, and any
    plugin's proposer; a proposer's own options come from HAG_PROPOSER_OPTIONS, e.g.
    '{"fixed": {"fixed_params": {"temperature": 0, ...}}}'.

    Every case runs once per proposer and seed, with the task pinned to the case's and critique
    off unless asked. Prints a table per task and overall (mean metric ± std across seeds, time
    and tokens per case) and writes report.json, report.md and chart.png to --out. Finished runs
    are kept in --out/rows.jsonl: rerunning the same command resumes.

    Exit codes: 0 success, 2 bad usage or input, 3 a run failed on a backend error.
    """
    from hag_agent.cli.progress_view import ProgressView, warnings_shown
    from hag_agent.evaluation.harness import evaluate
    from hag_agent.evaluation.report import ReportLabels
    from hag_agent.evaluation.report_files import require_matplotlib, write_reports

    err = Console(stderr=True)
    warn = suite_job.warner(err)
    suite_job.require_at_least_one(options["limit"], "--limit")
    with suite_job.noting_interrupts(f"finished runs are saved in {out_dir}"):
        context = _context(options)
        settings = _settings(options, context)
        if not no_chart:
            require_matplotlib()
        cases = _cases(suite, options, warn)
        model, tuned_model = _backends(context, settings)
        with ProgressView(err, enabled=not quiet) as view:
            report = evaluate(
                cases,
                model,
                out_dir,
                settings,
                tuned_model=tuned_model,
                labels=ReportLabels(
                    command=command_line(ctx),
                    suite=suite,
                    backend=context.backend,
                    backend_options=context.backend_options,
                ),
                progress=warnings_shown(view, warn),
            )
        written = write_reports(report, out_dir, chart=not no_chart)
    console = Console()
    console.print(report_table(report))
    differences = differences_table(report)
    if differences is not None:
        console.print(differences)
    print_plain(
        err,
        f"{report.rows} runs ({report.reused_rows} reused), {len(report.failures)} failed; "
        f"wrote {', '.join(str(p) for p in written)}",
    )
    if report.failures:
        # Each failed run was reported as it happened; the exit code only says some failed.
        raise click.exceptions.Exit(EXIT_BACKEND)


def _settings(options: dict[str, Any], context: HAGContext) -> EvalSettings:
    """The `EvalSettings` of the options; it checks the proposers and what each needs.

    A proposer's options from the environment (``HAG_PROPOSER_OPTIONS``, e.g. ``fixed``'s
    ``fixed_params``) apply as they do to ``hag-agent run``.
    """
    from hag_agent.evaluation.settings import EvalSettings

    names = [name.strip() for name in options["proposers"].split(",") if name.strip()]
    return suite_job.settings_from_options(
        EvalSettings,
        proposers=names,
        search_file=options["search_file"],
        priors_file=options["priors_file"],
        proposer_options={k: v for k, v in context.proposer_options.items() if k in names},
        **{k: options[k] for k in _SETTINGS_OPTIONS},
    )


_SETTINGS_OPTIONS = (
    "seeds",
    "base_seed",
    "critique",
    "max_retries",
    "max_tokens",
    "concurrency",
    "stop_on_error",
    "head_path",
    "tuned_proposer",
)


def _cases(suite: str, options: dict[str, Any], warn: Callable[[str], None]) -> list[SuiteCase]:
    """The suite's cases, restricted to those ``--cases-from`` names."""
    from hag_agent.evaluation.cases import case_ids_from

    cases = suite_job.load_suites(
        suite, limit=options["limit"], on_bad_line=options["on_bad_line"], warn=warn
    )
    cases_from: Path | None = options["cases_from"]
    if cases_from is not None:
        keep = case_ids_from(cases_from)
        cases = [c for c in cases if c.id in keep]
        if not cases:
            raise HAGInputError(f"no case of {suite} is named in {cases_from}")
    return cases


def _context(options: dict[str, Any]) -> HAGContext:
    """The run context of the backend options and the ``HAG_*`` environment."""
    from hag_agent.context import resolve_context

    return resolve_context(options["backend_choice"])


def _backends(context: HAGContext, settings: EvalSettings) -> tuple[Any, Any]:
    """The context's backend, and for ``self-tuned`` the backend with the tuned proposer."""
    from hag_agent.backend_choice import resolve_backend
    from hag_agent.context import resolve_context

    tuned_model = None
    if "self-tuned" in settings.proposers:
        tuned = {"backend_options": {"proposer_model": settings.tuned_proposer}}
        tuned_model = resolve_backend(resolve_context(tuned, context))
    return resolve_backend(context), tuned_model
