"""``hag-agent train head``: fit the learned proposer head on search output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from hag_agent.cli import suite_job
from hag_agent.cli.backend_options import backend_options
from hag_agent.cli.exit_codes import HAGCommand
from hag_agent.cli.option_kinds import defaulted_option, file_option
from hag_agent.cli.plain_text import print_plain
from hag_agent.cli.progress_view import ProgressView
from hag_agent.cli.train_command import held_out_option
from hag_agent.hyperparameters import HYPERPARAM_KEYS

if TYPE_CHECKING:
    from hag_agent.training.head_evaluation import HeadEvaluation


def evaluation_table(evaluation: HeadEvaluation) -> Table:
    """Held-out MAE per hyperparameter: the head against the baselines (best of each in bold)."""
    from hag_agent.training.head_evaluation import PREDICTORS

    ids = ", ".join(evaluation.held_out_ids[:6])
    more = " ..." if len(evaluation.held_out_ids) > 6 else ""
    table = Table(title=f"held-out MAE: {evaluation.cases} cases ({ids}{more})")
    table.add_column("parameter", no_wrap=True)
    for name in PREDICTORS:
        table.add_column(name, justify="right", no_wrap=True)
    for key in HYPERPARAM_KEYS:
        errors = [evaluation.mae[name][key] for name in PREDICTORS]
        best = min(errors)
        cells = [f"[bold]{e:.3f}[/bold]" if e <= best + 1e-12 else f"{e:.3f}" for e in errors]
        table.add_row(key, *cells)
    return table


@click.command("head", cls=HAGCommand)
@file_option(
    "--data",
    required=True,
    help="Search output (`hag-agent dataset search`), one record per case.",
)
@file_option(
    "--out",
    required=True,
    help="The head file to write (.npz); use it with `hag-agent run --head`.",
)
@defaulted_option(
    "--kind",
    type=click.Choice(["ridge", "knn"]),
    default="ridge",
    help="Ridge regression, or the mean of the nearest training cases.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0, min_open=True),
    help="Ridge strength for every parameter (default: each chosen by leave-one-out).",
)
@defaulted_option(
    "--neighbours",
    type=click.IntRange(min=1),
    default=5,
    help="kNN: how many nearest cases to average.",
)
@defaulted_option(
    "--seed", default=0, help="Seeds the split (the same split as `train sft` with the same seed)."
)
@held_out_option
@backend_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def head(
    data: Path, out: Path, backend_choice: dict[str, Any], as_json: bool, **fit_options: Any
) -> None:
    """Fit a learned proposer head on DATA: the prompt's embedding -> the best params.

    Each search prompt is embedded by the serving model (one pass, the embedded backend's
    llama.cpp mean-pooled vector), the head is fitted on the training cases and saved to --out,
    and the held-out cases report its mean absolute error per parameter against predicting the
    training mean, the per-task mean, and the task prior.

    Exit codes: 0 success, 2 bad usage or input, 3 backend failure, 130 interrupted.
    """
    from hag_agent.backend_choice import resolve_backend
    from hag_agent.context import resolve_context
    from hag_agent.training.head_training import HeadTrainingSettings, train_head

    # The options left in ``fit_options`` are exactly the settings' fields.
    settings = suite_job.settings_from_options(HeadTrainingSettings, **fit_options)
    err = Console(stderr=True)
    with suite_job.noting_interrupts("nothing was written"):
        resolved = resolve_backend(resolve_context(backend_choice))
        with ProgressView(err) as view:
            report = train_head(data, out, resolved, settings, progress=view)
    if as_json:
        click.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    console = Console()
    print_plain(console, report.summary)
    if report.evaluation.cases:
        console.print(evaluation_table(report.evaluation))
    else:
        console.print("no held-out cases: nothing to compare (--held-out 0, or one case)")


__all__ = ["evaluation_table", "head"]
