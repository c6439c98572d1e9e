"""``hag-agent train prior``: refit the per-task prior on search output (for fitted-prior)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from hag_agent.cli.exit_codes import HAGCommand
from hag_agent.cli.option_kinds import defaulted_option, file_option
from hag_agent.cli.plain_text import print_plain
from hag_agent.cli.train_command import held_out_option
from hag_agent.data.fitted_priors import FittedPriors, fit_priors, write_fitted_priors
from hag_agent.data.search_records import read_records
from hag_agent.file_hash import sha256_file
from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.training.sft_data import split_records

SAMPLING_KEYS = tuple(key for key in HYPERPARAM_KEYS if key != "max_tokens")
"""The keys the table shows (a grid holds max_tokens; the proposer takes it from the prior)."""
_HEADERS = {"temperature": "temp", "repetition_penalty": "penalty"}


def fits_table(priors: FittedPriors) -> Table:
    """Per task kind: the fitted configuration, its mean and the shipped prior's on its cases.

    ``configs`` is how many configurations were compared; ``prior`` the shipped task prior's mean.
    """
    # No box: its column rules would push the ten columns past an 80-column terminal.
    table = Table(title="the best configuration per task kind (in-sample means)", box=None)
    table.add_column("task", no_wrap=True)
    headers = (_HEADERS.get(key, key) for key in SAMPLING_KEYS)
    for column in ("cases", "configs", *headers, "mean", "prior"):
        table.add_column(column, justify="right", no_wrap=True)
    for task, fit in priors.tasks.items():
        values = fit.params.model_dump()
        prior = "-" if fit.prior_score is None else f"{fit.prior_score:.3f}"
        table.add_row(
            task.value,
            str(fit.cases),
            str(fit.compared),
            *(f"{values[key]:g}" for key in SAMPLING_KEYS),
            f"{fit.score:.3f}",
            prior,
        )
    return table


@click.command("prior", cls=HAGCommand)
@file_option(
    "--data",
    required=True,
    help="Grid records (`hag-agent dataset grid-score`): every configuration on every case.",
)
@file_option(
    "--out",
    required=True,
    help="The fitted-priors file to write (.json); use it with `hag-agent eval --priors`.",
)
@defaulted_option(
    "--seed", default=0, help="Seeds the split (the same split as `train sft` with the same seed)."
)
@held_out_option
@click.option("--json", "as_json", is_flag=True, help="Print the fitted priors as JSON.")
def prior(data: Path, out: Path, seed: int, held_out: float, as_json: bool) -> None:
    """Fit one configuration per task kind on DATA's training cases: the refitted task prior.

    For each kind, the configuration with the best mean score over the kind's training cases,
    among those scored on all of them. It ignores the query, as the shipped prior does: the
    baseline a per-query proposer must beat on the same data (proposer fitted-prior). The
    held-out cases are `train sft`'s and `train head`'s with the same --held-out and --seed.

    Exit codes: 0 success, 2 bad usage or input.
    """
    split = split_records(read_records(data, strict=True), held_out, seed)
    priors = fit_priors(split.train, source=sha256_file(data))
    write_fitted_priors(priors, out)
    if as_json:
        click.echo(json.dumps(priors.model_dump(mode="json"), indent=2))
        return
    console = Console()
    console.print(fits_table(priors))
    print_plain(
        console,
        f"fitted on {len(split.train)} cases ({len(split.held_out)} held out); wrote {out}",
    )


__all__ = ["SAMPLING_KEYS", "fits_table", "prior"]
