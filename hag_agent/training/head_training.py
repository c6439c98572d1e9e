"""Training a learned proposer head on search output: embed, fit, save, report held-out error.

``train_head(data, out, backend)`` reads a search file, splits it by case id as fine-tuning does
(`sft_data.split_records`, the same split for the same seed), embeds every prompt with the
serving model (the backend must embed text), fits the head on the training cases
(`head_fitting`), writes it to ``out`` (`hag_agent.learned_head.head_file`) and reports its
held-out error against the baselines (`head_evaluation`).

The head's `TrainingScope` is that of the training records: their task kinds, and the keys every
configuration the search scored held at one value (`training_scope`). The report also says how
its embedding guard sorts the held-out prompts (inside, they are of the training suites) and a
fixed set of requests unlike any training suite (`OUTSIDE_PROBES`: outside).

It reports progress through a `ProgressCallback` (stage ``embed``, one unit per prompt) and never
prints; the command line draws it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.data.search_records import read_records, training_scope
from hag_agent.errors import ConfigurationError
from hag_agent.learned_head.head import HeadInfo, HeadKind, LearnedHead
from hag_agent.learned_head.head_file import save_head
from hag_agent.progress import ProgressCallback, StageProgress, no_progress
from hag_agent.training.head_evaluation import (
    GuardReport,
    HeadEvaluation,
    evaluate_head,
    guard_report,
)
from hag_agent.training.head_fitting import DEFAULT_NEIGHBOURS, fit_vectors
from hag_agent.training.sft_data import split_records

if TYPE_CHECKING:
    from hag_agent.backends.base import Backend

EMBED_STAGE = "embed"
"""The progress stage of embedding the prompts."""
OUTSIDE_PROBES: tuple[str, ...] = (
    "Hi! What should I cook tonight?",
    "What is the capital of Italy?",
    "Repeat exactly: blue fish 42",
    "Hello, how are you today?",
    "Tell me a joke.",
    "Who wrote Pride and Prejudice?",
    "Answer with one word: what colour is the sky on a clear day?",
    "Copy this text exactly: The quick brown fox jumps over the lazy dog.",
    "Write a Python function that returns the n-th Fibonacci number, with a docstring and a test.",
    "Explain how a refrigerator works.",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Write a short email asking my landlord to fix the heating.",
)
"""Requests of kinds and styles no training suite holds (chat, factual, one-word, copy-exactly,
code): the embedding guard should put them outside. Embedded once more per training run."""


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
    guard: GuardReport | None = None
    """How the embedding guard sorts held-out prompts and `OUTSIDE_PROBES` (None: no guard)."""


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
    _check_embeds(backend)
    ordered = [*split.train, *split.held_out]
    prompts = [r.prompt for r in ordered] + list(OUTSIDE_PROBES)
    vectors, embed_s = embed_prompts(backend, prompts, progress)
    trained, held_vectors = len(split.train), vectors[len(split.train) : len(ordered)]
    fitted = fit_vectors(
        vectors[:trained],
        [r.task for r in split.train],
        [r.best_params() for r in split.train],
        kind=settings.kind,
        alpha=settings.alpha,
        neighbours=settings.neighbours,
        model=backend.embedding_model(),
        held_out_ids=split.held_out_ids,
        seed=settings.seed,
        data=data_path.name,
        scope=training_scope(split.train),
    )
    save_head(fitted, out_path)
    evaluation = evaluate_head(fitted, split.train, split.held_out, held_vectors)
    guard = guard_report(fitted, held_vectors, vectors[len(ordered) :])
    return HeadTrainingReport(
        head=str(out_path),
        summary=_summary(fitted, out_path, len(ordered), embed_s, evaluation, guard),
        info=fitted.info,
        train_cases=trained,
        embed_s=round(embed_s, 3),
        evaluation=evaluation,
        guard=guard,
    )


def _check_embeds(backend: Backend) -> None:
    """Raise `ConfigurationError` for a backend that cannot embed text."""
    if not backend.capabilities.embeddings:
        raise ConfigurationError(
            f"backend {backend.name!r} cannot embed text; the learned head needs the serving "
            "model's embeddings (use --backend embedded)"
        )


def _summary(
    fitted: LearnedHead,
    out: Path,
    prompts: int,
    embed_s: float,
    evaluation: HeadEvaluation,
    guard: GuardReport | None,
) -> str:
    """One line: the embedding's pace, the head, the file, the error and the guard's sorting."""
    size_kb = out.stat().st_size / 1024
    embedded = prompts + len(OUTSIDE_PROBES)
    summary = (
        f"embedded {prompts} prompts and {len(OUTSIDE_PROBES)} unlike requests in {embed_s:.1f} s "
        f"({1000 * embed_s / embedded:.0f} ms each); fitted a {fitted.summary()}; "
        f"wrote {out} ({size_kb:.1f} kB)"
    )
    relative = evaluation.mean_relative_error("head") if evaluation.cases else None
    if relative is not None:
        summary += f"; held-out error {relative:.2f}x the train-mean baseline's (mean over params)"
    fixed = fitted.scope.fixed
    if fixed:
        summary += f"; held fixed in the data (left to the task prior): {', '.join(fixed)}"
    if guard is not None:
        summary += f"; {guard.summary()}"
    return summary


__all__ = [
    "EMBED_STAGE",
    "OUTSIDE_PROBES",
    "HeadTrainingReport",
    "HeadTrainingSettings",
    "embed_prompts",
    "train_head",
]
