"""``hag-agent train head``: fit the learned proposer head on search output."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from hag_agent.cli import suite_job
from hag_agent.cli.backend_options import backend_options, backend_settings
from hag_agent.cli.train_command import held_out_option
from hag_agent.hyperparameters import HYPERPARAM_KEYS

if TYPE_CHECKING:
    from hag_agent.backends.base import Backend
    from hag_agent.learned_head.held_out import HeadEvaluation


def embed_prompts(
    backend: Backend, prompts: Sequence[str], console: Console
) -> tuple[list[list[float]], float]:
    """Each prompt's embedding (a progress bar on a terminal) and the seconds it all took."""
    from hag_agent.batch_run import progress_bar

    vectors: list[list[float]] = []
    start = time.perf_counter()
    with progress_bar(console, enabled=True) as progress:
        bar = progress.add_task("embed", total=len(prompts), note="")
        for prompt in prompts:
            vectors.append(backend.embed(prompt).vector)
            progress.update(bar, advance=1)
    return vectors, time.perf_counter() - start


def evaluation_table(evaluation: HeadEvaluation) -> Table:
    """Held-out MAE per hyperparameter: the head against the baselines (best of each in bold)."""
    from hag_agent.learned_head.held_out import PREDICTORS

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


@click.command("head")
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Search output (`hag-agent dataset search`), one record per case.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The head file to write (.npz); use it with `hag-agent run --head`.",
)
@click.option(
    "--kind",
    type=click.Choice(["ridge", "knn"]),
    default="ridge",
    show_default=True,
    help="Ridge regression, or the mean of the nearest training cases.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0, min_open=True),
    help="Ridge strength for every parameter (default: each chosen by leave-one-out).",
)
@click.option(
    "--neighbours",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="kNN: how many nearest cases to average.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds the split (the same split as `train sft` with the same seed).",
)
@held_out_option
@backend_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def head(
    data: Path,
    out: Path,
    kind: str,
    alpha: float | None,
    neighbours: int,
    seed: int,
    held_out: float,
    backend: str | None,
    base_url: str | None,
    model: str | None,
    proposer_model: str | None,
    model_path: str | None,
    as_json: bool,
) -> None:
    """Fit a learned proposer head on DATA: the prompt's embedding -> the best params.

    Each search prompt is embedded by the serving model (one pass, the embedded backend's
    llama.cpp mean-pooled vector), the head is fitted on the training cases and saved to --out,
    and the held-out cases report its mean absolute error per parameter against predicting the
    training mean, the per-task mean, and the task prior.

    Exit codes: 0 success, 2 bad usage or input, 3 backend failure, 130 interrupted.
    """
    err = Console(stderr=True)
    with suite_job.exit_on_failure(err, saved="nothing was written"):
        report, evaluation = _train(
            data,
            out,
            kind,
            alpha,
            neighbours,
            seed,
            held_out,
            backend_settings(backend, base_url, model, proposer_model, model_path),
            err,
        )
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    console = Console()
    console.print(report["summary"], markup=False, highlight=False, soft_wrap=True)
    if evaluation.cases:
        console.print(evaluation_table(evaluation))
    else:
        console.print("no held-out cases: nothing to compare (--held-out 0, or one case)")


def _train(
    data: Path,
    out: Path,
    kind: str,
    alpha: float | None,
    neighbours: int,
    seed: int,
    held_out: float,
    settings: dict[str, Any],
    err: Console,
) -> tuple[dict[str, Any], HeadEvaluation]:
    """Embed, fit, save and evaluate; the JSON report and the held-out evaluation."""
    from hag_agent.backend_choice import resolve_backend
    from hag_agent.context import resolve_context
    from hag_agent.data.search_records import read_records
    from hag_agent.errors import ConfigurationError
    from hag_agent.learned_head import evaluate_head, fit_vectors, save_head
    from hag_agent.training.sft_data import split_records

    records = read_records(data, strict=True)
    split = split_records(records, held_out, seed)
    backend = resolve_backend(resolve_context(settings))
    if not backend.capabilities.embeddings:
        raise ConfigurationError(
            f"backend {backend.name!r} cannot embed text; the learned head needs the serving "
            "model's embeddings (use --backend embedded)"
        )
    ordered = [*split.train, *split.held_out]
    vectors, embed_s = embed_prompts(backend, [r.prompt for r in ordered], err)
    train_vectors, held_vectors = vectors[: len(split.train)], vectors[len(split.train) :]
    fitted = fit_vectors(
        train_vectors,
        [r.task for r in split.train],
        [r.best_params() for r in split.train],
        kind="knn" if kind == "knn" else "ridge",
        alpha=alpha,
        neighbours=neighbours,
        model=backend.embedding_model(),
        held_out_ids=split.held_out_ids,
        seed=seed,
        data=data.name,
    )
    save_head(fitted, out)
    evaluation = evaluate_head(fitted, split.train, split.held_out, held_vectors)
    size_kb = out.stat().st_size / 1024
    summary = (
        f"embedded {len(ordered)} prompts in {embed_s:.1f} s "
        f"({1000 * embed_s / max(len(ordered), 1):.0f} ms each); fitted a {fitted.summary()}; "
        f"wrote {out} ({size_kb:.1f} kB)"
    )
    relative = evaluation.mean_relative_error("head") if evaluation.cases else None
    if relative is not None:
        summary += f"; held-out error {relative:.2f}x the train-mean baseline's (mean over params)"
    report = {
        "head": str(out),
        "summary": summary,
        "info": fitted.info.model_dump(mode="json"),
        "train_cases": len(split.train),
        "embed_s": round(embed_s, 3),
        "evaluation": evaluation.model_dump(mode="json"),
    }
    return report, evaluation


__all__ = ["embed_prompts", "evaluation_table", "head"]
