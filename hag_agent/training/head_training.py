"""Training a learned proposer head on search output: embed, fit, save, report held-out error.

``train_head(data, out, backend)`` reads a search file, splits it by case id as fine-tuning does
(`sft_data.split_records`, the same split for the same seed), embeds every prompt with the
serving model (the backend must embed text), fits the head on the training cases
(`head_fitting`), writes it to ``out`` (`hag_agent.learned_head.head_file`) and reports its
held-out error against the baselines (`head_evaluation`).

It reports progress through a `ProgressCallback` (stage ``embed``, one unit per prompt) and never
prints; the command line draws it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.data.search_records import read_records
from hag_agent.errors import ConfigurationError
from hag_agent.learned_head.head import HeadInfo, HeadKind, LearnedHead
from hag_agent.learned_head.head_file import save_head
from hag_agent.progress import ProgressCallback, StageProgress, no_progress
from hag_agent.training.head_evaluation import HeadEvaluation, evaluate_head
from hag_agent.training.head_fitting import DEFAULT_NEIGHBOURS, fit_vectors
from hag_agent.training.sft_data import split_records

if TYPE_CHECKING:
    from hag_agent.backends.base import Backend

EMBED_STAGE = "embed"
"""The progress stage of embedding the prompts."""


class HeadTrainingSettings(BaseModel):
    """How to fit a head and split the search file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: HeadKind = "ridge"
    """Ridge regression, or the mean of the nearest training cases (``knn``)."""
    alpha: float | None = Field(default=None, gt=0)
    """Ridge strength for every parameter (None: each chosen by leave-one-out)."""
    neighbours: int = Field(default=DEFAULT_NEIGHBOURS, ge=1)
    """kNN: how many nearest cases to average."""
    seed: int = 0
    """Seeds the held-out split (the same split as fine-tuning with the same seed)."""
    held_out: float = Field(default=0.2, ge=0, lt=1)
    """Expected share of case ids held out from training."""


class HeadTrainingReport(BaseModel):
    """What `train_head` did: the head file, its training and its held-out error."""

    model_config = ConfigDict(extra="forbid")

    head: str
    """The head file written."""
    summary: str
    """One line on the whole run (embedding pace, the head, the file, the relative error)."""
    info: HeadInfo
    """What the head was trained on and how (as saved in the file)."""
    train_cases: int
    """Cases the head was fitted on."""
    embed_s: float
    """Seconds spent embedding every prompt."""
    evaluation: HeadEvaluation
    """Held-out error of the head and the baselines."""


def embed_prompts(
    backend: Backend, prompts: Sequence[str], progress: ProgressCallback = no_progress
) -> tuple[list[list[float]], float]:
    """Each prompt's embedding, in order, and the seconds it all took.

    Reports stage ``embed``: a start, one advance per prompt, an end.
    """
    vectors: list[list[float]] = []
    stage = StageProgress(progress, EMBED_STAGE, len(prompts))
    start = time.perf_counter()
    for prompt in prompts:
        vectors.append(backend.embed(prompt).vector)
        stage.advance()
    seconds = time.perf_counter() - start
    stage.end()
    return vectors, seconds


def train_head(
    data: str | Path,
    out: str | Path,
    backend: Backend,
    settings: HeadTrainingSettings | None = None,
    *,
    progress: ProgressCallback = no_progress,
) -> HeadTrainingReport:
    """Fit a learned head on a search file, write it to ``out`` and report its held-out error.

    Args:
        data: A search JSONL file (`hag-agent dataset search`).
        out: The head file to write (``.npz``).
        backend: The serving model, which embeds each prompt (`Backend.embed`).
        settings: The head's kind and strength, and the split.
        progress: Told how the embedding goes (stage ``embed``).

    Returns:
        The report (the head file is written before it is returned).

    Raises:
        HAGInputError: For a data file that is not search output, or no case to train on.
        ConfigurationError: When the backend cannot embed text.
        BackendError: When embedding fails.
    """
    settings = settings or HeadTrainingSettings()
    data_path, out_path = Path(data), Path(out)
    split = split_records(read_records(data_path, strict=True), settings.held_out, settings.seed)
    if not backend.capabilities.embeddings:
        raise ConfigurationError(
            f"backend {backend.name!r} cannot embed text; the learned head needs the serving "
            "model's embeddings (use --backend embedded)"
        )
    ordered = [*split.train, *split.held_out]
    vectors, embed_s = embed_prompts(backend, [r.prompt for r in ordered], progress)
    fitted = fit_vectors(
        vectors[: len(split.train)],
        [r.task for r in split.train],
        [r.best_params() for r in split.train],
        kind=settings.kind,
        alpha=settings.alpha,
        neighbours=settings.neighbours,
        model=backend.embedding_model(),
        held_out_ids=split.held_out_ids,
        seed=settings.seed,
        data=data_path.name,
    )
    save_head(fitted, out_path)
    evaluation = evaluate_head(fitted, split.train, split.held_out, vectors[len(split.train) :])
    return HeadTrainingReport(
        head=str(out_path),
        summary=_summary(fitted, out_path, len(ordered), embed_s, evaluation),
        info=fitted.info,
        train_cases=len(split.train),
        embed_s=round(embed_s, 3),
        evaluation=evaluation,
    )


def _summary(
    fitted: LearnedHead, out: Path, prompts: int, embed_s: float, evaluation: HeadEvaluation
) -> str:
    """One line: the embedding's pace, the head, the file and (with held-out cases) the error."""
    size_kb = out.stat().st_size / 1024
    summary = (
        f"embedded {prompts} prompts in {embed_s:.1f} s "
        f"({1000 * embed_s / max(prompts, 1):.0f} ms each); fitted a {fitted.summary()}; "
        f"wrote {out} ({size_kb:.1f} kB)"
    )
    relative = evaluation.mean_relative_error("head") if evaluation.cases else None
    if relative is not None:
        summary += f"; held-out error {relative:.2f}x the train-mean baseline's (mean over params)"
    return summary


__all__ = [
    "EMBED_STAGE",
    "HeadTrainingReport",
    "HeadTrainingSettings",
    "embed_prompts",
    "train_head",
]
