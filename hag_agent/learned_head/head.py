"""A learned proposer head: the prompt's embedding and task kind in, a configuration out.

Features are the serving model's own embedding of the prompt followed by a one-hot of the task
kind, standardized with the training cases' mean and spread. Two kinds:

- ``ridge``: one linear map per hyperparameter (fitted by `hag_agent.training.head_fitting`),
  predicting in the spaces of `hag_agent.learned_head.targets`;
- ``knn``: the mean target of the ``neighbours`` training cases of the same task kind (of any
  kind when none was trained on) whose standardized embeddings are most similar (cosine).

Predictions pass through `DecodingBounds` like every other value.

A head knows where it was trained. Its `TrainingScope` names the task kinds its data held and the
hyperparameters the data held at one value (a search that pinned ``max_tokens`` teaches the pin,
not a choice): the proposer leaves those keys, and unseen task kinds, to the task prior. Its
embedding guard keeps the training prompts' embeddings (standardized like the features, unit
length, float32) and a threshold: a prompt whose nearest training prompt is less similar than
that is outside what the head learned from, and the proposer defers to the prior (`GuardCheck`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from hag_agent.errors import HeadMismatchError
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds, HyperParams, ParamSource
from hag_agent.learned_head.targets import decode
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.training_scope import TrainingScope

HEAD_FORMAT: Literal["hag-agent learned head"] = "hag-agent learned head"
"""What a head file says it is."""
HEAD_VERSION: Literal[2] = 2
"""The head file layout this code writes (version 1, without scope and guard, is still read)."""
CONSTANT_WEIGHT = 1e-10
"""A ridge weight column no larger than this: the key's targets did not vary (version 1 files)."""

HeadKind = Literal["ridge", "knn"]
"""How the head maps features to targets."""

Vector = NDArray[np.float64]
Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class GuardCheck:
    """How near a prompt's embedding is to the head's training prompts."""

    similarity: float
    """Cosine similarity to the nearest training prompt (standardized embeddings)."""
    threshold: float
    """The least similarity in reach (`HeadInfo.guard_threshold`)."""

    @property
    def inside(self) -> bool:
        """Whether the prompt is near enough to trust the head."""
        return self.similarity >= self.threshold


class HeadInfo(BaseModel):
    """What a head was trained on and how; saved beside its arrays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["hag-agent learned head"] = HEAD_FORMAT
    """Marks the file as a head file."""
    version: Literal[1, 2] = HEAD_VERSION
    """The file layout."""
    kind: HeadKind
    """``ridge`` or ``knn``."""
    dims: int = Field(ge=1)
    """Embedding dimensions the head takes."""
    model: str | None = None
    """The model whose embeddings it was trained on (`Backend.embedding_model`), if known."""
    training_cases: int = Field(ge=1)
    """Cases it was fitted on."""
    tasks: list[str] = Field(default_factory=lambda: [t.value for t in TaskKind])
    """The task kinds of the one-hot features, in order."""
    keys: list[str] = Field(default_factory=lambda: list(HYPERPARAM_KEYS))
    """The predicted hyperparameters, in order."""
    alpha: dict[str, float] | None = None
    """Ridge: the regularization strength of each hyperparameter."""
    neighbours: int | None = None
    """kNN: how many neighbours are averaged."""
    held_out_ids: list[str] = Field(default_factory=list)
    """Case ids kept out of training (for an evaluation that must not see them)."""
    seed: int | None = None
    """The seed of the held-out split."""
    data: str | None = None
    """The search file it was trained on (its name)."""
    created_at: str = ""
    """When it was fitted (ISO 8601, UTC)."""
    scope: TrainingScope | None = None
    """The task kinds and fixed values of its training data; None in version 1 files (then
    `LearnedHead.scope` infers it from the arrays)."""
    guard_threshold: float | None = None
    """The least cosine similarity to the nearest training prompt that is in reach; None: no
    embedding guard (version 1 files)."""
    guard_quantile: float | None = None
    """The quantile of the training prompts' leave-one-out nearest similarities the threshold is."""


def bounded_learned(
    values: dict[str, float | int], bounds: DecodingBounds, prior: HyperParams
) -> HyperParams:
    """Predicted values within ``bounds`` (each value's source: learned; gaps from ``prior``)."""
    params, _ = bounds.clamp(values, dict.fromkeys(HYPERPARAM_KEYS, ParamSource.LEARNED), prior)
    return params


@dataclass(frozen=True, eq=False)
class LearnedHead:
    """A fitted head: its `HeadInfo` and arrays (fitted by training, or read by `load_head`)."""

    info: HeadInfo
    feature_mean: Vector
    """Mean of each feature (embedding dims, then the task one-hot) over the training cases."""
    feature_scale: Vector
    """Spread of each feature (1 where it was constant)."""
    weights: Matrix | None = None
    """Ridge: features x hyperparameters, on standardized features."""
    intercept: Vector | None = None
    """Ridge: the target means."""
    train_vectors: Matrix | None = None
    """kNN: the training cases' standardized embeddings, unit length."""
    train_tasks: NDArray[np.int64] | None = None
    """kNN: each training case's task index into ``info.tasks``."""
    train_targets: Matrix | None = None
    """kNN: each training case's targets."""
    guard_vectors: NDArray[np.float32] | None = None
    """The training prompts' standardized embeddings, unit length (the embedding guard)."""

    @property
    def scope(self) -> TrainingScope:
        """What the training data held: stored in the file, else inferred from the arrays.

        A version 1 file stores no scope. Its task kinds are the one-hot features with a
        training mean above zero; a key is fixed when its targets never varied (a ridge weight
        column of zeros, a constant kNN target column), at the value the head predicts for it.
        """
        if self.info.scope is not None:
            return self.info.scope
        shares = self.feature_mean[self.info.dims :]
        kinds = frozenset(
            TaskKind(t) for t, share in zip(self.info.tasks, shares, strict=True) if share > 0
        )
        if self.weights is not None and self.intercept is not None:
            constant = np.max(np.abs(self.weights), axis=0) <= CONSTANT_WEIGHT
            predicted = decode(self.intercept)
        else:
            assert self.train_targets is not None
            constant = np.ptp(self.train_targets, axis=0) <= CONSTANT_WEIGHT
            predicted = decode(self.train_targets[0])
        fixed = {
            k: float(predicted[k]) for k, c in zip(HYPERPARAM_KEYS, constant, strict=True) if c
        }
        return TrainingScope(fixed=fixed, task_kinds=kinds)

    def guard(self, embedding: Sequence[float]) -> GuardCheck | None:
        """How near ``embedding`` is to the training prompts; None for a head without a guard.

        Raises:
            HeadMismatchError: When the embedding does not fit the head.
        """
        if self.guard_vectors is None or self.info.guard_threshold is None:
            return None
        # Only the embedding part of the features counts: any task kind gives the same part.
        query = self.features(embedding, self.info.tasks[0])[: self.info.dims].astype(np.float32)
        norm = float(np.linalg.norm(query))
        nearest = float(np.max(self.guard_vectors @ query)) / norm if norm > 0 else 0.0
        return GuardCheck(round(nearest, 4), self.info.guard_threshold)

    def features(self, embedding: Sequence[float], task: TaskKind | str) -> Vector:
        """The standardized feature row of one prompt.

        Raises:
            HeadMismatchError: When the embedding has other dimensions than the head's, or is
                not finite.
        """
        vector = np.asarray(embedding, dtype=np.float64)
        if vector.ndim != 1 or vector.shape[0] != self.info.dims:
            got = vector.shape[0] if vector.ndim == 1 else f"shape {vector.shape}"
            raise HeadMismatchError(
                f"the head takes {self.info.dims}-dimensional embeddings"
                f"{f' of {self.info.model}' if self.info.model else ''}, got {got}"
            )
        if not np.all(np.isfinite(vector)):
            raise HeadMismatchError("the embedding has values that are not finite numbers")
        one_hot = np.zeros(len(self.info.tasks), dtype=np.float64)
        name = task.value if isinstance(task, TaskKind) else str(task)
        if name in self.info.tasks:
            one_hot[self.info.tasks.index(name)] = 1.0
        row = np.concatenate([vector, one_hot])
        standardized: Vector = (row - self.feature_mean) / self.feature_scale
        return standardized

    def predict_targets(self, embedding: Sequence[float], task: TaskKind | str) -> Vector:
        """The six predicted targets (see `hag_agent.learned_head.targets`)."""
        row = self.features(embedding, task)
        if self.info.kind == "ridge":
            assert self.weights is not None and self.intercept is not None
            ridge: Vector = row @ self.weights + self.intercept
            return ridge
        assert self.train_vectors is not None
        assert self.train_tasks is not None and self.train_targets is not None
        query = row[: self.info.dims]
        norm = float(np.linalg.norm(query))
        similarity = self.train_vectors @ (query / norm if norm > 0 else query)
        name = task.value if isinstance(task, TaskKind) else str(task)
        same = (
            self.train_tasks == self.info.tasks.index(name)
            if name in self.info.tasks
            else np.zeros_like(self.train_tasks, dtype=bool)
        )
        candidates = np.flatnonzero(same) if same.any() else np.arange(len(self.train_tasks))
        k = min(self.info.neighbours or 1, len(candidates))
        nearest = candidates[np.argsort(-similarity[candidates], kind="stable")[:k]]
        knn: Vector = self.train_targets[nearest].mean(axis=0)
        return knn

    def predict_values(
        self, embedding: Sequence[float], task: TaskKind | str
    ) -> dict[str, float | int]:
        """The predicted values, rounded but not yet bounded (the graph bounds and records them)."""
        return decode(self.predict_targets(embedding, task))

    def predict(
        self,
        embedding: Sequence[float],
        task: TaskKind | str,
        bounds: DecodingBounds | None = None,
    ) -> HyperParams:
        """The predicted configuration, within ``bounds`` (the default policy when None).

        Raises:
            HeadMismatchError: When the embedding does not fit the head.
        """
        kind = TaskKind(task) if str(task) in {t.value for t in TaskKind} else TaskKind.CHAT
        values = self.predict_values(embedding, task)
        return bounded_learned(values, bounds or DecodingBounds(), TASK_PRIORS[kind])

    def summary(self) -> str:
        """One line naming the head: kind, cases, dimensions, model."""
        model = f", {self.info.model}" if self.info.model else ""
        return (
            f"{self.info.kind} head on {self.info.training_cases} cases, "
            f"{self.info.dims}-dim embeddings{model}"
        )


def check_arrays(head: LearnedHead) -> None:
    """Check that a head's arrays fit its info (used on loading).

    Raises:
        ValueError: Naming the array that does not fit.
    """
    width = head.info.dims + len(head.info.tasks)
    keys = len(head.info.keys)
    shapes: dict[str, tuple[object, tuple[int, ...]]] = {
        "feature_mean": (head.feature_mean, (width,)),
        "feature_scale": (head.feature_scale, (width,)),
    }
    if head.info.kind == "ridge":
        shapes["weights"] = (head.weights, (width, keys))
        shapes["intercept"] = (head.intercept, (keys,))
    else:
        n = head.train_vectors.shape[0] if head.train_vectors is not None else -1
        shapes["train_vectors"] = (head.train_vectors, (n, head.info.dims))
        shapes["train_tasks"] = (head.train_tasks, (n,))
        shapes["train_targets"] = (head.train_targets, (n, keys))
        if n < 1:
            raise ValueError("train_vectors is missing or empty")
    guarded = head.info.guard_threshold is not None or head.guard_vectors is not None
    if head.guard_vectors is not None:
        rows = head.guard_vectors.shape[:1]
        shapes["guard_vectors"] = (head.guard_vectors, (*rows, head.info.dims))
    for name, (array, shape) in shapes.items():
        if not isinstance(array, np.ndarray) or array.shape != shape:
            found = getattr(array, "shape", None)
            raise ValueError(f"{name} has shape {found}, expected {shape}")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"{name} has values that are not finite numbers")
    if guarded and (head.guard_vectors is None or head.guard_vectors.size == 0):
        raise ValueError("guard_vectors is missing or empty")
    if not np.all(head.feature_scale > 0):
        raise ValueError("feature_scale must be positive")
    if head.info.keys != list(HYPERPARAM_KEYS):
        raise ValueError(f"keys {head.info.keys} differ from {list(HYPERPARAM_KEYS)}")


__all__ = [
    "HEAD_FORMAT",
    "HEAD_VERSION",
    "GuardCheck",
    "HeadInfo",
    "HeadKind",
    "LearnedHead",
    "bounded_learned",
    "check_arrays",
]
