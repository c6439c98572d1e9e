"""Fitting a learned head on search records: ridge regression in closed form, or kNN.

Ridge: on standardized features (embedding, then task one-hot) and centered targets, through one
SVD of the feature matrix, ``W = V diag(s / (s^2 + alpha)) U^T Y``; the intercept is the target
mean. Each hyperparameter gets its own ``alpha``: the given one, or the one of `DEFAULT_ALPHAS`
with the least leave-one-out error (exact for ridge, from the same SVD, no refitting). kNN keeps
the standardized training embeddings and targets (`hag_agent.learned_head.head`).

Every head also gets its `TrainingScope` (given, or that of its own targets) and its embedding
guard: the standardized training embeddings at unit length, and as threshold the
`DEFAULT_GUARD_QUANTILE` quantile of each training prompt's cosine similarity to its nearest other
training prompt (leave-one-out, so nearly every new prompt of the training suites reaches it).
Standardized embeddings separated prompts of the training suites from unlike requests better
than raw or centered ones or per-task centroids did on the grid data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypedDict, Unpack

import numpy as np
from numpy.typing import NDArray

from hag_agent.data.search_records import SearchRecord, training_scope
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import HYPERPARAM_KEYS, HyperParams
from hag_agent.learned_head.head import HeadInfo, HeadKind, LearnedHead, Matrix, Vector
from hag_agent.learned_head.targets import encode
from hag_agent.tasks import TaskKind
from hag_agent.training_scope import TrainingScope

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 6, 33))
"""The ridge strengths leave-one-out chooses from (per hyperparameter)."""
FEW_CASES_ALPHA = 10.0
"""The ridge strength when there are too few cases (under 3) to choose one."""
DEFAULT_NEIGHBOURS = 5
"""kNN: neighbours averaged."""
DEFAULT_GUARD_QUANTILE = 0.01
"""The quantile of the leave-one-out nearest similarities that is the guard's threshold."""

EmbedFn = Callable[[str], Sequence[float]]
"""``embed(text)``: the serving model's vector for a text (e.g. ``Backend.embed(text).vector``)."""


class FitOptions(TypedDict, total=False):
    """`fit_vectors`' keyword arguments, for `fit_head` to pass on."""

    kind: HeadKind
    alpha: float | None
    neighbours: int
    model: str | None
    held_out_ids: Sequence[str]
    seed: int | None
    data: str | None
    scope: TrainingScope | None
    guard_quantile: float


def fit_head(
    records: Sequence[SearchRecord], embed: EmbedFn, **options: Unpack[FitOptions]
) -> LearnedHead:
    """Fit a head on search records, embedding each record's prompt with ``embed``.

    Args:
        records: The training records (each prompt, task and best configuration).
        embed: Gives the serving model's vector for a prompt.
        **options: As `fit_vectors`.

    Raises:
        HAGInputError: For no records, an unknown task, or embeddings of unequal size.
    """
    vectors = [embed(record.prompt) for record in records]
    tasks = [record.task for record in records]
    # What the search held, not what its winners happen to share (`training_scope`).
    options.setdefault("scope", training_scope(records))
    return fit_vectors(vectors, tasks, [r.best_params() for r in records], **options)


def fit_vectors(
    vectors: Sequence[Sequence[float]],
    tasks: Sequence[str],
    params: Sequence[HyperParams],
    *,
    kind: HeadKind = "ridge",
    alpha: float | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    model: str | None = None,
    held_out_ids: Sequence[str] = (),
    seed: int | None = None,
    data: str | None = None,
    scope: TrainingScope | None = None,
    guard_quantile: float = DEFAULT_GUARD_QUANTILE,
) -> LearnedHead:
    """Fit a head on embeddings already made.

    Args:
        vectors: One embedding per case.
        tasks: Each case's task kind.
        params: Each case's best configuration (the targets).
        kind: ``ridge`` or ``knn``.
        alpha: Ridge strength for every hyperparameter; None chooses each by leave-one-out.
        neighbours: kNN: how many neighbours to average.
        model: The embedding model's name (`Backend.embedding_model`), saved with the head.
        held_out_ids: Case ids kept out of training, saved with the head.
        seed: The split's seed, saved with the head.
        data: The search file's name, saved with the head.
        scope: What the training data held (None: that of ``params`` and ``tasks``).
        guard_quantile: The embedding guard's threshold as a quantile (`fit_guard`).

    Raises:
        HAGInputError: For no cases, lengths that differ, an unknown task, embeddings of unequal
            size or not finite, a non-positive ``alpha`` or ``neighbours``.
    """
    _check_cases(vectors, tasks, params, alpha, neighbours)
    task_names = [t.value for t in TaskKind]
    standardized, mean, scale, task_index = _features(vectors, tasks, task_names)
    dims = len(vectors[0])
    targets = np.stack([encode(p) for p in params])
    guard_vectors, threshold = fit_guard(standardized[:, :dims], guard_quantile)
    tasks_of = [TaskKind(task) for task in tasks]
    info = HeadInfo(
        kind=kind,
        dims=dims,
        model=model,
        training_cases=len(vectors),
        tasks=task_names,
        held_out_ids=list(held_out_ids),
        seed=seed,
        data=data,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        scope=scope or TrainingScope.of_data([p.model_dump() for p in params], tasks_of),
        guard_threshold=threshold,
        guard_quantile=None if threshold is None else guard_quantile,
    )
    base = LearnedHead(info, mean, scale, guard_vectors=guard_vectors)
    if kind == "ridge":
        return _with_ridge(base, standardized, targets, alpha)
    return _with_knn(base, neighbours, standardized, task_index, targets)


def fit_guard(
    standardized: Matrix, quantile: float = DEFAULT_GUARD_QUANTILE
) -> tuple[NDArray[np.float32] | None, float | None]:
    """The embedding guard of standardized training embeddings: its vectors and threshold.

    The vectors are the rows at unit length (float32); the threshold is the ``quantile`` of
    each row's cosine similarity to its nearest other row. Under two rows nothing can be
    calibrated: no guard (None, None).
    """
    if standardized.shape[0] < 2:
        return None, None
    unit = _unit_rows(standardized).astype(np.float32)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.max(axis=1)
    return unit, round(float(np.quantile(nearest, quantile)), 4)


def _with_ridge(
    base: LearnedHead, standardized: Matrix, targets: Matrix, alpha: float | None
) -> LearnedHead:
    """``base`` with a ridge map of standardized features (`fit_ridge`), its alphas in its info."""
    weights, intercept, alphas = fit_ridge(standardized, targets, alpha)
    info = base.info.model_copy(update={"alpha": dict(zip(HYPERPARAM_KEYS, alphas, strict=True))})
    return replace(base, info=info, weights=weights, intercept=intercept)


def _with_knn(
    base: LearnedHead,
    neighbours: int,
    standardized: Matrix,
    task_index: NDArray[np.int64],
    targets: Matrix,
) -> LearnedHead:
    """``base`` as a kNN head: the training cases' standardized embeddings and targets."""
    return replace(
        base,
        info=base.info.model_copy(update={"neighbours": neighbours}),
        train_vectors=_unit_rows(standardized[:, : base.info.dims]),
        train_tasks=task_index,
        train_targets=targets,
    )


def _unit_rows(matrix: Matrix) -> Matrix:
    """Each row scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: Matrix = matrix / np.where(norms > 0, norms, 1.0)
    return unit


def _features(
    vectors: Sequence[Sequence[float]], tasks: Sequence[str], task_names: Sequence[str]
) -> tuple[Matrix, Vector, Vector, NDArray[np.int64]]:
    """Standardized features (embedding, then task one-hot), their mean and scale, task indexes.

    A feature that does not vary keeps scale 1.

    Raises:
        HAGInputError: For an embedding with values that are not finite numbers.
    """
    embeddings = np.asarray(vectors, dtype=np.float64)
    if not np.all(np.isfinite(embeddings)):
        raise HAGInputError("an embedding has values that are not finite numbers")
    n = embeddings.shape[0]
    task_index = np.array([task_names.index(t) for t in tasks], dtype=np.int64)
    one_hot = np.zeros((n, len(task_names)), dtype=np.float64)
    one_hot[np.arange(n), task_index] = 1.0
    features = np.concatenate([embeddings, one_hot], axis=1)
    mean = features.mean(axis=0)
    spread = features.std(axis=0)
    scale = np.where(spread > 1e-12, spread, 1.0)
    return (features - mean) / scale, mean, scale, task_index


def _check_cases(
    vectors: Sequence[Sequence[float]],
    tasks: Sequence[str],
    params: Sequence[HyperParams],
    alpha: float | None,
    neighbours: int,
) -> None:
    """Raise `HAGInputError` for what `fit_vectors` cannot fit (see its docstring)."""
    if not vectors:
        raise HAGInputError("a learned head needs at least one training case")
    if not len(vectors) == len(tasks) == len(params):
        raise HAGInputError(
            f"{len(vectors)} embeddings, {len(tasks)} tasks and {len(params)} configurations"
        )
    if alpha is not None and not alpha > 0:
        raise HAGInputError(f"alpha must be positive, not {alpha}")
    if neighbours < 1:
        raise HAGInputError(f"neighbours must be at least 1, not {neighbours}")
    task_names = [t.value for t in TaskKind]
    unknown = sorted({t for t in tasks if t not in task_names})
    if unknown:
        raise HAGInputError(f"unknown task kinds {unknown} (one of {', '.join(task_names)})")
    sizes = {len(v) for v in vectors}
    if len(sizes) != 1:
        raise HAGInputError(f"the embeddings differ in size: {sorted(sizes)}")


def fit_ridge(
    features: Matrix, targets: Matrix, alpha: float | None = None
) -> tuple[Matrix, Vector, list[float]]:
    """Ridge regression of each target column on centered features, in closed form.

    Args:
        features: Cases x features, each column centered (standardized).
        targets: Cases x targets.
        alpha: The strength for every column; None chooses each column's by leave-one-out
            from `DEFAULT_ALPHAS` (`FEW_CASES_ALPHA` under 3 cases).

    Returns:
        The weights (features x targets), the intercept (the target means) and the alphas.
    """
    n = features.shape[0]
    intercept = targets.mean(axis=0)
    centered = targets - intercept
    u, s, vt = np.linalg.svd(features, full_matrices=False)
    projected = u.T @ centered
    columns = targets.shape[1]
    if alpha is not None:
        alphas = [float(alpha)] * columns
    elif n < 3:
        alphas = [FEW_CASES_ALPHA] * columns
    else:
        errors = np.stack(
            [_leave_one_out_errors(u, s, projected, centered, a, n) for a in DEFAULT_ALPHAS]
        )
        alphas = [DEFAULT_ALPHAS[int(i)] for i in np.argmin(errors, axis=0)]
    weights = np.empty((features.shape[1], columns), dtype=np.float64)
    for j, a in enumerate(alphas):
        weights[:, j] = vt.T @ (s / (s**2 + a) * projected[:, j])
    return weights, intercept, alphas


def _leave_one_out_errors(
    u: Matrix, s: Vector, projected: Matrix, centered: Matrix, alpha: float, n: int
) -> Vector:
    """Mean squared leave-one-out error of each target column at one ``alpha``."""
    shrink = s**2 / (s**2 + alpha)
    fitted = u @ (shrink[:, None] * projected)
    leverage = (u**2) @ shrink + 1.0 / n  # + 1/n: the intercept
    residual = (centered - fitted) / np.maximum(1.0 - leverage, 1e-9)[:, None]
    errors: Vector = np.mean(residual**2, axis=0)
    return errors


__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_GUARD_QUANTILE",
    "DEFAULT_NEIGHBOURS",
    "FEW_CASES_ALPHA",
    "EmbedFn",
    "FitOptions",
    "fit_guard",
    "fit_head",
    "fit_ridge",
    "fit_vectors",
]
