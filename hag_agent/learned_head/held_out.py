"""How well a head predicts the search's best configuration on held-out cases, against baselines.

Mean absolute error per hyperparameter, in each parameter's own units, of the configuration the
graph would use (bounded) against the search's best, with top_k compared as a number (0, meaning
off, is 0), as the fine-tuning report does. Baselines, all fitted on the training cases only:

- ``train mean``: one configuration for every case, the mean of the training targets (in the
  head's prediction space, `hag_agent.learned_head.targets`): the head without features;
- ``task mean``: the same mean per task kind (the overall one for a kind not trained on);
- ``task prior``: the documented prior of the case's task kind (`TASK_PRIORS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hag_agent.data.search_records import SearchRecord
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds
from hag_agent.learned_head.head import LearnedHead, bounded_learned
from hag_agent.learned_head.targets import decode, encode
from hag_agent.tasks import TASK_PRIORS, TaskKind

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
    errors = {name: {key: 0.0 for key in HYPERPARAM_KEYS} for name in PREDICTORS}
    for record, vector in zip(held_out, held_out_vectors, strict=True):
        task = TaskKind(record.task)
        prior = TASK_PRIORS[task]
        predictions = {
            "head": head.predict(vector, task, bounds),
            "train mean": bounded_learned(decode(overall), bounds, prior),
            "task mean": bounded_learned(decode(by_task.get(task, overall)), bounds, prior),
            "task prior": prior,
        }
        target = record.best_params().model_dump()
        for name, params in predictions.items():
            values = params.model_dump()
            for key in HYPERPARAM_KEYS:
                errors[name][key] += abs(float(values[key]) - float(target[key]))
    n = len(held_out)
    mae = {name: {key: total / n for key, total in keys.items()} for name, keys in errors.items()}
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


__all__ = ["PREDICTORS", "HeadEvaluation", "evaluate_head"]
