"""How well a head predicts the search's best configuration on held-out cases, against baselines.

Mean absolute error per hyperparameter (`hag_agent.training.held_out_error`, as the fine-tuning
report measures it) of the configuration the graph would use (bounded) against the search's
best. Baselines, all fitted on the training cases only:

- ``train mean``: one configuration for every case, the mean of the training targets (in the
  head's prediction space, `hag_agent.learned_head.targets`): the head without features;
- ``task mean``: the same mean per task kind (the overall one for a kind not trained on);
- ``task prior``: the documented prior of the case's task kind (`TASK_PRIORS`).

`guard_report` says how the head's embedding guard sorts held-out prompts of the training suites
(which it should keep inside) and requests unlike them (which it should put outside).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hag_agent.data.search_records import SearchRecord
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds, HyperParams
from hag_agent.learned_head.head import LearnedHead, bounded_learned
from hag_agent.learned_head.targets import decode, encode
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.training.held_out_error import mean_absolute_errors

PREDICTORS: tuple[str, ...] = ("head", "train mean", "task mean", "task prior")
"""The predictors compared, in report order."""


class HeadEvaluation(BaseModel):
    """Held-out error of a head and the baselines."""

    model_config = ConfigDict(extra="forbid")

    cases: int
    """Held-out cases."""
    held_out_ids: list[str] = Field(default_factory=list)
    """Their ids."""
    mae: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Mean absolute error by predictor, then by hyperparameter (empty without cases)."""

    def mean_relative_error(self, predictor: str) -> float | None:
        """The predictor's MAE divided by the train-mean baseline's, averaged over parameters.

        Parameters the baseline predicts exactly are left out; None when none is left.
        """
        ratios = [
            self.mae[predictor][key] / self.mae["train mean"][key]
            for key in HYPERPARAM_KEYS
            if self.mae.get("train mean", {}).get(key, 0.0) > 1e-12
        ]
        return sum(ratios) / len(ratios) if ratios else None


class GuardReport(BaseModel):
    """How a head's embedding guard sorts prompts it should keep and prompts it should refuse."""

    model_config = ConfigDict(extra="forbid")

    threshold: float
    """The least similarity to the nearest training prompt that is inside."""
    held_out: list[float]
    """Held-out prompts' similarities to their nearest training prompt (should be inside)."""
    outside: list[float]
    """Unlike requests' similarities (should be outside)."""

    @property
    def held_out_inside(self) -> int:
        """Held-out prompts the guard keeps."""
        return sum(s >= self.threshold for s in self.held_out)

    @property
    def outside_refused(self) -> int:
        """Unlike requests the guard refuses."""
        return sum(s < self.threshold for s in self.outside)

    def summary(self) -> str:
        """One clause: the threshold and how many of each kind land on the right side."""
        return (
            f"embedding guard at similarity {self.threshold:.3f}: keeps "
            f"{self.held_out_inside}/{len(self.held_out)} held-out prompts, refuses "
            f"{self.outside_refused}/{len(self.outside)} unlike requests"
        )


def guard_report(
    head: LearnedHead,
    held_out_vectors: Sequence[Sequence[float]],
    outside_vectors: Sequence[Sequence[float]],
) -> GuardReport | None:
    """How the head's guard sorts held-out and unlike prompts; None for a head without a guard."""
    checks = [head.guard(v) for v in [*held_out_vectors, *outside_vectors]]
    if head.info.guard_threshold is None or any(c is None for c in checks):
        return None
    similarities = [c.similarity for c in checks if c is not None]
    split = len(held_out_vectors)
    return GuardReport(
        threshold=head.info.guard_threshold,
        held_out=similarities[:split],
        outside=similarities[split:],
    )


def evaluate_head(
    head: LearnedHead,
    train: Sequence[SearchRecord],
    held_out: Sequence[SearchRecord],
    held_out_vectors: Sequence[Sequence[float]],
    bounds: DecodingBounds | None = None,
) -> HeadEvaluation:
    """Compare the head with the baselines on held-out records.

    Args:
        head: The fitted head.
        train: The records it was fitted on (for the mean baselines).
        held_out: Records it never saw.
        held_out_vectors: Their prompts' embeddings, in order.
        bounds: The bounds policy (the default one when None).
    """
    if len(held_out) != len(held_out_vectors):
        raise ValueError(f"{len(held_out)} records but {len(held_out_vectors)} embeddings")
    bounds = bounds or DecodingBounds()
    ids = [record.id for record in held_out]
    if not held_out:
        return HeadEvaluation(cases=0, held_out_ids=ids)
    overall, by_task = _mean_targets(train)
    predicted: dict[str, list[HyperParams]] = {name: [] for name in PREDICTORS}
    for record, vector in zip(held_out, held_out_vectors, strict=True):
        task = TaskKind(record.task)
        prior = TASK_PRIORS[task]
        predicted["head"].append(head.predict(vector, task, bounds))
        predicted["train mean"].append(bounded_learned(decode(overall), bounds, prior))
        predicted["task mean"].append(
            bounded_learned(decode(by_task.get(task, overall)), bounds, prior)
        )
        predicted["task prior"].append(prior)
    targets = [record.best_params() for record in held_out]
    mae = {name: mean_absolute_errors(params, targets) for name, params in predicted.items()}
    n = len(held_out)
    return HeadEvaluation(cases=n, held_out_ids=ids, mae=mae)


def _mean_targets(
    records: Sequence[SearchRecord],
) -> tuple[np.ndarray, dict[TaskKind, np.ndarray]]:
    if not records:
        raise ValueError("the mean baselines need at least one training record")
    targets = np.stack([encode(record.best_params()) for record in records])
    tasks = [TaskKind(record.task) for record in records]
    by_task = {
        task: targets[[i for i, t in enumerate(tasks) if t is task]].mean(axis=0)
        for task in set(tasks)
    }
    return targets.mean(axis=0), by_task


__all__ = ["PREDICTORS", "GuardReport", "HeadEvaluation", "evaluate_head", "guard_report"]
