"""The learned head itself: target spaces, fitting, prediction, the head file."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

from hag_agent.errors import HAGInputError, HeadMismatchError, LearnedHeadError
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds, HyperParams
from hag_agent.learned_head import LearnedHead, load_head, load_head_cached, save_head
from hag_agent.learned_head.targets import TOP_K_OFF_AS, decode, encode
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import search_record as record
from hag_agent.training.head_evaluation import evaluate_head
from hag_agent.training.head_fitting import DEFAULT_GUARD_QUANTILE, fit_guard, fit_head, fit_vectors
from hag_agent.training_scope import TrainingScope

DIMS = 8
TASKS = [TaskKind.MATH, TaskKind.CREATIVE, TaskKind.TRANSLATION]


def planted(embedding: np.ndarray, task: TaskKind) -> dict[str, float]:
    """A configuration that is linear in the embedding (in the head's target spaces)."""
    bump = {TaskKind.MATH: -0.2, TaskKind.CREATIVE: 0.3, TaskKind.TRANSLATION: 0.0}[task]
    w = np.arange(1, DIMS + 1, dtype=float) / DIMS
    x = float(embedding @ w) / DIMS
    return {
        "temperature": 0.8 + bump + 0.2 * x,
        "top_p": 0.85 - 0.05 * x,
        "log_top_k": 3.0 + 0.4 * x,
        "min_p": 0.05 + 0.02 * x,
        "log_penalty": 0.15 + 0.03 * x,
        "log_max_tokens": 5.0 + 0.3 * x,
    }


def planted_params(embedding: np.ndarray, task: TaskKind) -> HyperParams:
    t = planted(embedding, task)
    return HyperParams(
        temperature=t["temperature"],
        top_p=t["top_p"],
        top_k=round(math.expm1(t["log_top_k"])),
        min_p=t["min_p"],
        repetition_penalty=math.exp(t["log_penalty"]),
        max_tokens=round(math.exp(t["log_max_tokens"])),
    )


def planted_data(n: int, seed: int) -> tuple[np.ndarray, list[TaskKind], list[HyperParams]]:
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(n, DIMS))
    tasks = [TASKS[i % len(TASKS)] for i in range(n)]
    return embeddings, tasks, [planted_params(e, t) for e, t in zip(embeddings, tasks, strict=True)]


@pytest.fixture(scope="module")
def ridge_head():  # type: ignore[no-untyped-def]
    embeddings, tasks, params = planted_data(240, seed=1)
    return fit_vectors(embeddings.tolist(), [t.value for t in tasks], params, model="m:1")


# -- target spaces ----------------------------------------------------------------------------


def test_targets_round_trip_and_top_k_off() -> None:
    params = HyperParams(
        temperature=0.7, top_p=0.9, top_k=40, min_p=0.05, repetition_penalty=1.1, max_tokens=256
    )
    assert decode(encode(params)) == params.model_dump()
    off = params.model_copy(update={"top_k": 0})
    assert encode(off)[2] == pytest.approx(math.log1p(TOP_K_OFF_AS))
    assert decode(encode(off))["top_k"] == 0
    assert decode(encode(params.model_copy(update={"top_k": 160})))["top_k"] == 160


# -- ridge ------------------------------------------------------------------------------------


def test_ridge_recovers_a_planted_linear_mapping(ridge_head) -> None:  # type: ignore[no-untyped-def]
    embeddings, tasks, truth = planted_data(30, seed=2)
    for embedding, task, expected in zip(embeddings, tasks, truth, strict=True):
        got = ridge_head.predict(embedding.tolist(), task).model_dump()
        want = expected.model_dump()
        assert got["temperature"] == pytest.approx(want["temperature"], abs=0.01)
        assert got["top_p"] == pytest.approx(want["top_p"], abs=0.01)
        assert got["min_p"] == pytest.approx(want["min_p"], abs=0.01)
        assert got["repetition_penalty"] == pytest.approx(want["repetition_penalty"], abs=0.01)
        assert got["top_k"] == pytest.approx(want["top_k"], rel=0.1)
        assert got["max_tokens"] == pytest.approx(want["max_tokens"], rel=0.02)
    # The task one-hot carries the task's own offset: same embedding, different temperature.
    zero = [0.0] * DIMS
    math_t = ridge_head.predict(zero, TaskKind.MATH).temperature
    creative_t = ridge_head.predict(zero, TaskKind.CREATIVE).temperature
    assert creative_t - math_t == pytest.approx(0.5, abs=0.02)


def test_ridge_beats_the_mean_baselines_on_held_out_cases(ridge_head) -> None:  # type: ignore[no-untyped-def]
    _, tasks, params = planted_data(240, seed=1)
    train = [
        record(f"t{i}", t.value, f"p{i}", p)
        for i, (t, p) in enumerate(zip(tasks, params, strict=True))
    ]
    held_e, held_t, held_p = planted_data(30, seed=3)
    held = [
        record(f"h{i}", t.value, f"q{i}", p)
        for i, (t, p) in enumerate(zip(held_t, held_p, strict=True))
    ]
    evaluation = evaluate_head(ridge_head, train, held, held_e.tolist())
    assert evaluation.cases == 30
    for key in ("temperature", "top_p", "max_tokens"):
        assert evaluation.mae["head"][key] < evaluation.mae["task mean"][key]
        assert evaluation.mae["head"][key] < evaluation.mae["train mean"][key]
    relative = evaluation.mean_relative_error("head")
    assert relative is not None and relative < 0.3


def test_alpha_is_chosen_per_parameter_or_given() -> None:
    embeddings, tasks, params = planted_data(60, seed=4)
    auto = fit_vectors(embeddings.tolist(), [t.value for t in tasks], params)
    assert auto.info.alpha is not None and set(auto.info.alpha) == set(HYPERPARAM_KEYS)
    fixed = fit_vectors(embeddings.tolist(), [t.value for t in tasks], params, alpha=1e6)
    assert fixed.info.alpha == dict.fromkeys(HYPERPARAM_KEYS, 1e6)
    # A huge alpha leaves only the intercept: every prompt gets the training mean.
    a = fixed.predict([3.0] * DIMS, TaskKind.MATH)
    b = fixed.predict([-3.0] * DIMS, TaskKind.CREATIVE)
    assert a.temperature == pytest.approx(b.temperature, abs=0.01)


def test_fit_head_embeds_each_prompt_with_the_given_function() -> None:
    embeddings, tasks, params = planted_data(12, seed=5)
    records = [
        record(f"c{i}", t.value, f"prompt {i}", p)
        for i, (t, p) in enumerate(zip(tasks, params, strict=True))
    ]
    lookup = {f"prompt {i}": e.tolist() for i, e in enumerate(embeddings)}
    seen: list[str] = []

    def embed(text: str) -> list[float]:
        seen.append(text)
        return lookup[text]

    head = fit_head(records, embed, model="m:1", held_out_ids=["x"], seed=3, data="s.jsonl")
    assert seen == [r.prompt for r in records]
    assert head.info.training_cases == 12 and head.info.dims == DIMS
    assert (head.info.model, head.info.held_out_ids, head.info.seed) == ("m:1", ["x"], 3)


@pytest.mark.parametrize(
    ("vectors", "tasks", "match"),
    [
        ([], [], "at least one"),
        ([[1.0, 2.0], [1.0]], ["math", "math"], "differ in size"),
        ([[1.0, 2.0]], ["poetry"], "unknown task"),
        ([[1.0, float("nan")]], ["math"], "not finite"),
    ],
)
def test_fit_rejects_bad_input(vectors: list[list[float]], tasks: list[str], match: str) -> None:
    params = [TASK_PRIORS[TaskKind.MATH]] * len(vectors)
    with pytest.raises(HAGInputError, match=match):
        fit_vectors(vectors, tasks, params)


def test_predictions_are_bounded() -> None:
    hot = HyperParams(
        temperature=1.9, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=64
    )
    head = fit_vectors([[1.0, 0.0], [0.0, 1.0]], ["creative", "creative"], [hot, hot])
    bounds = DecodingBounds.model_validate({"temperature": {"low": 0.0, "high": 1.2}})
    got = head.predict([0.5, 0.5], TaskKind.CREATIVE, bounds)
    assert got.temperature == 1.2 and got.top_k == 0 and got.max_tokens == 64


# -- kNN --------------------------------------------------------------------------------------


def test_knn_averages_the_nearest_cases_of_the_same_task() -> None:
    cold = TASK_PRIORS[TaskKind.MATH]
    warm = TASK_PRIORS[TaskKind.CREATIVE]
    rng = np.random.default_rng(0)
    near_a = (np.array([5.0, 0, 0, 0]) + rng.normal(scale=0.1, size=(6, 4))).tolist()
    near_b = (np.array([0, 5.0, 0, 0]) + rng.normal(scale=0.1, size=(6, 4))).tolist()
    head = fit_vectors(
        near_a + near_b,
        ["math"] * 12,
        [cold] * 6 + [warm] * 6,
        kind="knn",
        neighbours=3,
    )
    assert head.info.kind == "knn" and head.info.neighbours == 3
    assert head.predict([5.0, 0.1, 0, 0], TaskKind.MATH).temperature == pytest.approx(0.1)
    assert head.predict([0.1, 5.0, 0, 0], TaskKind.MATH).temperature == pytest.approx(1.0)
    # No case of that task: neighbours of any task.
    assert head.predict([0.1, 5.0, 0, 0], TaskKind.CODE).temperature == pytest.approx(1.0)


# -- the head file ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ridge", "knn"])
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    embeddings, tasks, params = planted_data(50, seed=6)
    head = fit_vectors(
        embeddings.tolist(), [t.value for t in tasks], params, kind=kind, model="m:1"
    )  # type: ignore[arg-type]
    path = save_head(head, tmp_path / "sub" / "head.npz")
    assert path.stat().st_size < 200_000
    start = time.perf_counter()
    loaded = load_head(path, dims=DIMS)
    assert time.perf_counter() - start < 0.5  # milliseconds in practice
    assert loaded.info == head.info
    for embedding, task in zip(embeddings[:5], tasks[:5], strict=True):
        assert loaded.predict(embedding.tolist(), task) == head.predict(embedding.tolist(), task)
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["head.npz"]  # no temp left


def test_dimension_mismatch_is_a_clear_error(tmp_path: Path, ridge_head) -> None:  # type: ignore[no-untyped-def]
    path = save_head(ridge_head, tmp_path / "head.npz")
    with pytest.raises(HeadMismatchError, match=f"takes {DIMS}-dimensional embeddings.*not 576"):
        load_head(path, dims=576)
    with pytest.raises(HeadMismatchError, match=f"takes {DIMS}-dimensional.*of m:1, got 3"):
        ridge_head.predict([1.0, 2.0, 3.0], TaskKind.MATH)


def test_unreadable_files_are_clear_errors(tmp_path: Path, ridge_head) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LearnedHeadError, match="no learned head file"):
        load_head(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("not a head", encoding="utf-8")
    with pytest.raises(LearnedHeadError, match="not a learned head file"):
        load_head(junk)
    no_info = tmp_path / "no_info.npz"
    with no_info.open("wb") as handle:
        np.savez(handle, weights=np.zeros(3))
    with pytest.raises(LearnedHeadError, match="no info entry"):
        load_head(no_info)
    other = tmp_path / "other.npz"
    with other.open("wb") as handle:
        np.savez(handle, info=np.array('{"format": "something else", "kind": "ridge"}'))
    with pytest.raises(LearnedHeadError, match="not a hag-agent learned head"):
        load_head(other)
    damaged = tmp_path / "damaged.npz"
    with damaged.open("wb") as handle:
        np.savez(
            handle,
            info=np.array(ridge_head.info.model_dump_json()),
            feature_mean=ridge_head.feature_mean,
            feature_scale=ridge_head.feature_scale,
            weights=np.zeros((2, 2)),
            intercept=ridge_head.intercept,
        )
    with pytest.raises(LearnedHeadError, match=r"damaged.*weights"):
        load_head(damaged)


def test_cached_loading_reads_a_file_once_until_it_changes(tmp_path: Path, ridge_head) -> None:  # type: ignore[no-untyped-def]
    path = save_head(ridge_head, tmp_path / "head.npz")
    first = load_head_cached(path)
    assert load_head_cached(str(path)) is first
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_head_cached(path) is not first
    with pytest.raises(LearnedHeadError, match="no learned head file"):
        load_head_cached(tmp_path / "missing.npz")


# -- scope and embedding guard ------------------------------------------------------------------


def test_fit_guard_threshold_is_a_low_quantile_of_leave_one_out_similarities() -> None:
    rng = np.random.default_rng(7)
    cluster = np.array([4.0, 0, 0, 0]) + rng.normal(scale=0.3, size=(20, 4))
    vectors, threshold = fit_guard(cluster - cluster.mean(axis=0), quantile=0.0)
    assert vectors is not None and vectors.dtype == np.float32 and vectors.shape == (20, 4)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    unit = vectors.astype(np.float64)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    assert threshold == pytest.approx(similarity.max(axis=1).min(), abs=1e-4)
    assert fit_guard(cluster[:1]) == (None, None)  # one case: nothing to calibrate on


@pytest.mark.parametrize("kind", ["ridge", "knn"])
def test_the_guard_tells_near_from_far_and_survives_the_file(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(8)
    # Two clusters in the plane of the first two dimensions; the other two never vary.
    noise = np.concatenate([rng.normal(scale=0.2, size=(20, 2)), np.zeros((20, 2))], axis=1)
    near_a = np.array([5.0, 0, 0, 0]) + noise[:10]
    near_b = np.array([0, 5.0, 0, 0]) + noise[10:]
    head = fit_vectors(
        np.concatenate([near_a, near_b]).tolist(),
        ["math"] * 10 + ["creative"] * 10,
        [TASK_PRIORS[TaskKind.MATH]] * 10 + [TASK_PRIORS[TaskKind.CREATIVE]] * 10,
        kind=kind,  # type: ignore[arg-type]
    )
    loaded = load_head(save_head(head, tmp_path / "head.npz"))
    assert loaded.guard_vectors is not None and loaded.guard_vectors.dtype == np.float32
    near = loaded.guard([5.1, 0.1, 0, 0])
    far = loaded.guard([0, 0, 0, 5.0])
    assert near is not None and near.inside and near.threshold == head.info.guard_threshold
    assert far is not None and not far.inside and far.similarity < 0.5
    assert loaded.info.guard_quantile == DEFAULT_GUARD_QUANTILE
    with pytest.raises(HeadMismatchError):
        loaded.guard([1.0, 2.0])


def test_the_scope_is_that_of_the_targets_unless_given() -> None:
    embeddings, tasks, params = planted_data(30, seed=9)
    pinned = [p.model_copy(update={"max_tokens": 48}) for p in params]
    head = fit_vectors(embeddings.tolist(), [t.value for t in tasks], pinned)
    assert head.scope.fixed == {"max_tokens": 48.0}
    assert head.scope.task_kinds == set(TASKS)
    given = TrainingScope(fixed={"min_p": 0.0}, task_kinds=frozenset({TaskKind.MATH}))
    assert (
        fit_vectors(embeddings.tolist(), [t.value for t in tasks], pinned, scope=given).scope
        == given
    )


@pytest.mark.parametrize("kind", ["ridge", "knn"])
def test_a_head_without_a_stored_scope_infers_it_from_its_arrays(kind: str) -> None:
    embeddings, tasks, params = planted_data(30, seed=10)
    pinned = [p.model_copy(update={"max_tokens": 48, "min_p": 0.0}) for p in params]
    names = [t.value for t in tasks]
    head = fit_vectors(embeddings.tolist(), names, pinned, kind=kind)  # type: ignore[arg-type]
    old = LearnedHead(
        **{**vars(head), "info": head.info.model_copy(update={"scope": None, "version": 1})}
    )
    assert old.scope.fixed == {"min_p": 0.0, "max_tokens": 48.0}
    assert old.scope.task_kinds == set(TASKS)
    only_math = fit_vectors(embeddings.tolist(), ["math"] * 30, pinned, kind=kind)  # type: ignore[arg-type]
    stripped = only_math.info.model_copy(update={"scope": None})
    assert LearnedHead(**{**vars(only_math), "info": stripped}).scope.task_kinds == {TaskKind.MATH}


def test_a_head_file_of_a_later_version_is_refused(tmp_path: Path, ridge_head) -> None:  # type: ignore[no-untyped-def]
    later = tmp_path / "later.npz"
    with later.open("wb") as handle:
        np.savez(
            handle,
            info=np.array(ridge_head.info.model_dump_json().replace('"version":2', '"version":3')),
        )
    with pytest.raises(LearnedHeadError, match="not a hag-agent learned head of version 1 to 2"):
        load_head(later)
