"""Proposer ``learned`` through the graph: a scripted model plus scripted embeddings."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hag_agent import BackendError, HAGRunnable, HyperParams, ParamSource, TaskKind
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds
from hag_agent.learned_head import LearnedHead, save_head
from hag_agent.tasks import TASK_PRIORS
from hag_agent.testing import ScriptedChatModel, ScriptedEmbeddingBackend
from hag_agent.training.head_fitting import fit_vectors

PROMPT = "Write a poem about the sea."  # the rules classify it as creative
GOOD = "The sea hums softly under a silver moon, and the waves keep time."
DIMS = 6
WARM = HyperParams(
    temperature=1.3, top_p=0.97, top_k=80, min_p=0.02, repetition_penalty=1.12, max_tokens=200
)
COLD = HyperParams(
    temperature=0.2, top_p=0.8, top_k=10, min_p=0.0, repetition_penalty=1.0, max_tokens=100
)


def vector_of(text: str) -> list[float]:
    """A deterministic fake embedding: poems point one way, everything else another."""
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    base = [3.0, 0, 0, 0, 0, 0] if "poem" in text else [0, 3.0, 0, 0, 0, 0]
    return (np.array(base) + rng.normal(scale=0.05, size=DIMS)).tolist()


@pytest.fixture(scope="module")
def head() -> LearnedHead:
    texts = [f"poem number {i}" for i in range(8)] + [f"sum number {i}" for i in range(8)]
    return fit_vectors(
        [vector_of(t) for t in texts],
        ["creative"] * 8 + ["math"] * 8,
        [WARM] * 8 + [COLD] * 8,
        model="scripted-embedder",
    )


@pytest.fixture
def head_file(tmp_path: Path, head: LearnedHead) -> str:
    return str(save_head(head, tmp_path / "head.npz"))


def run(head_path: str | None, backend: Any = None, **settings: Any):  # type: ignore[no-untyped-def]
    model = ScriptedChatModel(script={"generate": [GOOD]})
    backend = backend if backend is not None else ScriptedEmbeddingBackend(model, vector_of)
    if isinstance(backend, ScriptedEmbeddingBackend):
        backend.chat_model = backend.proposal_model = model
    if head_path is not None:
        settings["head_path"] = head_path
    runnable = HAGRunnable(model=backend, proposer="learned", **settings)
    return runnable.invoke(PROMPT), model, backend


def propose_event(result: Any) -> Any:
    return next(e for e in result.trace if e.node == "propose")


def test_learned_head_proposes_with_one_embedding_pass_and_no_proposal_call(
    head_file: str, head: LearnedHead
) -> None:
    result, model, backend = run(head_file, critique=False)
    attempt = result.attempts[0]
    assert result.task is TaskKind.CREATIVE
    assert set(attempt.sources.values()) == {ParamSource.LEARNED}
    assert attempt.params == head.predict(vector_of(PROMPT), TaskKind.CREATIVE)
    assert attempt.params.temperature == pytest.approx(WARM.temperature, abs=0.05)
    assert backend.embedded == [PROMPT]
    assert [c.purpose for c in model.calls] == ["generate"]  # no proposal generation
    event = propose_event(result)
    assert event.message.startswith("predicted by the learned head (ridge head on 16 cases")
    assert event.data["head"] == head_file and event.data["head_kind"] == "ridge"
    assert "fallback" not in event.data and event.data["embed_s"] >= 0


def test_pins_override_the_learned_values(head_file: str) -> None:
    result, _, _ = run(head_file, critique=False, params={"top_k": 5, "max_tokens": 64})
    attempt = result.attempts[0]
    assert (attempt.params.top_k, attempt.params.max_tokens) == (5, 64)
    assert attempt.sources["top_k"] is ParamSource.PINNED
    assert attempt.sources["max_tokens"] is ParamSource.PINNED
    assert attempt.sources["temperature"] is ParamSource.LEARNED


def test_learned_values_are_clamped_and_the_clamp_traced(head_file: str) -> None:
    bounds = DecodingBounds.model_validate({"temperature": {"low": 0.0, "high": 1.0}})
    result, _, _ = run(head_file, critique=False, bounds=bounds)
    assert result.attempts[0].params.temperature == 1.0
    clamps = propose_event(result).data["clamps"]
    assert [(c["key"], c["source"]) for c in clamps] == [("temperature", "learned")]


def test_head_path_from_the_environment(head_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAG_HEAD_PATH", head_file)
    result, _, _ = run(None, critique=False)
    assert set(result.attempts[0].sources.values()) == {ParamSource.LEARNED}


async def test_async_runs_embed_through_aembed(head_file: str) -> None:
    model = ScriptedChatModel(script={"generate": [GOOD]})
    backend = ScriptedEmbeddingBackend(model, vector_of)
    runnable = HAGRunnable(model=backend, proposer="learned", head_path=head_file, critique=False)
    result = await runnable.ainvoke(PROMPT)
    assert set(result.attempts[0].sources.values()) == {ParamSource.LEARNED}
    assert backend.embedded == [PROMPT]


def test_retries_after_a_learned_first_attempt_adjust_as_usual(head_file: str) -> None:
    model = ScriptedChatModel(script={"generate": [" ".join(["the"] * 16), GOOD]})
    backend = ScriptedEmbeddingBackend(model, vector_of)
    result = HAGRunnable(
        model=backend, proposer="learned", head_path=head_file, max_retries=1
    ).invoke(PROMPT)
    first, second = result.attempts
    assert set(first.sources.values()) == {ParamSource.LEARNED}
    assert second.sources["repetition_penalty"] is ParamSource.RETRY
    assert second.sources["top_k"] is ParamSource.LEARNED
    assert backend.embedded == [PROMPT]  # one embedding pass per turn, not per attempt


# -- fallbacks to the task prior, with the reason in the trace ----------------------------------


def assert_prior_fallback(result: Any, reason: str) -> None:
    attempt = result.attempts[0]
    assert set(attempt.sources.values()) == {ParamSource.PRIOR}
    assert attempt.params == TASK_PRIORS[TaskKind.CREATIVE]
    event = propose_event(result)
    assert reason in event.message and "fallback to the creative prior" in event.message
    assert event.data["fallback"] is True
    assert result.answer == GOOD


def test_fallback_without_a_head_path() -> None:
    result, _, backend = run(None, critique=False)
    assert_prior_fallback(result, "no learned head given (head_path, HAG_HEAD_PATH)")
    assert backend.embedded == []


def test_fallback_for_a_missing_or_unreadable_head_file(tmp_path: Path) -> None:
    result, _, backend = run(str(tmp_path / "nope.npz"), critique=False)
    assert_prior_fallback(result, "no learned head file at")
    assert backend.embedded == []  # no model call for an unusable file
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00garbage")
    result, _, _ = run(str(junk), critique=False)
    assert_prior_fallback(result, "is not a learned head file")


def test_fallback_for_a_backend_without_embeddings(head_file: str) -> None:
    model = ScriptedChatModel(script={"generate": [GOOD]})
    result = HAGRunnable(
        model=model, proposer="learned", head_path=head_file, critique=False
    ).invoke(PROMPT)
    assert_prior_fallback(result, "the backend has no embeddings")
    assert [c.purpose for c in model.calls] == ["generate"]


def test_fallback_when_the_embedding_call_fails(head_file: str) -> None:
    def broken(text: str) -> list[float]:
        raise BackendError("embedding server down", status=503)

    model = ScriptedChatModel(script={"generate": [GOOD]})
    result, _, _ = run(head_file, ScriptedEmbeddingBackend(model, broken), critique=False)
    assert_prior_fallback(result, "embedding call failed (embedding server down (HTTP 503))")


def test_fallback_when_the_embeddings_have_other_dimensions(head_file: str) -> None:
    model = ScriptedChatModel(script={"generate": [GOOD]})
    backend = ScriptedEmbeddingBackend(model, lambda text: [0.5] * 576)
    result, _, _ = run(head_file, backend, critique=False)
    assert_prior_fallback(result, "takes 6-dimensional embeddings of scripted-embedder, got 576")


def test_fallback_when_the_head_was_trained_on_another_model(head_file: str) -> None:
    model = ScriptedChatModel(script={"generate": [GOOD]})
    backend = ScriptedEmbeddingBackend(model, vector_of, model="other.gguf:123")
    result, _, _ = run(head_file, backend, critique=False)
    assert_prior_fallback(result, "trained on embeddings of scripted-embedder")
    assert "other.gguf:123" in propose_event(result).message


def test_every_value_is_learned_or_pinned() -> None:
    assert set(HYPERPARAM_KEYS) == set(WARM.model_dump())


# -- where the head was trained: fixed keys, task kinds, the embedding guard -------------------


@pytest.fixture(scope="module")
def pinned_head() -> LearnedHead:
    """A head whose data held max_tokens at 48 (as a search run with ``--max-tokens 48``)."""
    texts = [f"poem number {i}" for i in range(8)] + [f"sum number {i}" for i in range(8)]
    warm, cold = (p.model_copy(update={"max_tokens": 48}) for p in (WARM, COLD))
    head = fit_vectors(
        [vector_of(t) for t in texts],
        ["creative"] * 8 + ["math"] * 8,
        [warm] * 8 + [cold] * 8,
        model="scripted-embedder",
    )
    assert head.scope.fixed == {"max_tokens": 48.0}
    return head


@pytest.fixture
def pinned_head_file(tmp_path: Path, pinned_head: LearnedHead) -> str:
    return str(save_head(pinned_head, tmp_path / "pinned.npz"))


def test_keys_the_data_held_fixed_come_from_the_task_prior(pinned_head_file: str) -> None:
    result, _, backend = run(pinned_head_file, critique=False)
    attempt = result.attempts[0]
    assert attempt.params.max_tokens == TASK_PRIORS[TaskKind.CREATIVE].max_tokens == 512
    assert attempt.sources["max_tokens"] is ParamSource.PRIOR
    assert {attempt.sources[k] for k in HYPERPARAM_KEYS if k != "max_tokens"} == {
        ParamSource.LEARNED
    }
    assert attempt.params.temperature == pytest.approx(WARM.temperature, abs=0.05)
    event = propose_event(result)
    assert (
        "max_tokens from the creative prior (a budget its training data held fixed)"
        in event.message
    )
    assert event.data["prior_keys"] == ["max_tokens"]
    assert backend.embedded == [PROMPT]


def test_a_task_kind_the_data_never_held_gets_the_prior_without_a_model_call(
    head_file: str,
) -> None:
    result, model, backend = run(head_file, critique=False, task="code")
    attempt = result.attempts[0]
    assert attempt.params == TASK_PRIORS[TaskKind.CODE]
    assert set(attempt.sources.values()) == {ParamSource.PRIOR}
    assert backend.embedded == []  # decided before any embedding pass
    assert [c.purpose for c in model.calls] == ["generate"]
    event = propose_event(result)
    assert "held no code requests (only creative, math)" in event.message
    assert event.data["outside_training"] is True and "fallback" not in event.data


def test_the_embedding_guard_keeps_a_near_prompt(head_file: str) -> None:
    result, _, _ = run(head_file, critique=False)
    data = propose_event(result).data
    assert data["similarity"] > 0.9 and data["threshold"] < 0.5
    assert "outside_training" not in data


def test_the_embedding_guard_defers_a_far_prompt_to_the_prior(head_file: str) -> None:
    def elsewhere(text: str) -> list[float]:
        # Away from both the poems and the sums: a kind of prompt the head never saw.
        return [-3.0, -3.0, 0.0, 0.0, 0.0, 0.0] if text == PROMPT else vector_of(text)

    model = ScriptedChatModel(script={"generate": [GOOD]})
    result, _, backend = run(head_file, ScriptedEmbeddingBackend(model, elsewhere), critique=False)
    attempt = result.attempts[0]
    assert attempt.params == TASK_PRIORS[TaskKind.CREATIVE]
    assert set(attempt.sources.values()) == {ParamSource.PRIOR}
    event = propose_event(result)
    assert event.data["outside_training"] is True
    assert event.data["similarity"] < event.data["threshold"]
    assert "far from the learned head's training prompts" in event.message
    assert f"under its threshold {event.data['threshold']:.3f}" in event.message
    assert backend.embedded == [PROMPT]


def test_a_version_1_head_file_still_works_its_scope_inferred(
    tmp_path: Path, pinned_head: LearnedHead
) -> None:
    """Files written before scopes: task kinds from the one-hot, fixed keys from the targets."""
    fitted = pinned_head
    info = fitted.info.model_dump_json(
        exclude={"scope", "guard_threshold", "guard_quantile"}
    ).replace('"version":2', '"version":1')
    path = tmp_path / "old.npz"
    with path.open("wb") as handle:
        np.savez(
            handle,
            info=np.array(info),
            feature_mean=fitted.feature_mean,
            feature_scale=fitted.feature_scale,
            weights=fitted.weights,
            intercept=fitted.intercept,
        )
    result, _, _ = run(str(path), critique=False)
    attempt = result.attempts[0]
    assert attempt.sources["max_tokens"] is ParamSource.PRIOR and attempt.params.max_tokens == 512
    assert attempt.sources["temperature"] is ParamSource.LEARNED
    assert "similarity" not in propose_event(result).data  # no guard in an old file
    coded, _, _ = run(str(path), critique=False, task="code")
    assert propose_event(coded).data["outside_training"] is True


def test_head_path_builtin_is_the_packaged_head() -> None:
    # The packaged head takes the embedded model's embeddings: a scripted backend is refused,
    # which shows the file was found and read.
    result, _, backend = run("builtin", critique=False, task="reasoning")
    event = propose_event(result)
    assert "the head was trained on embeddings of SmolLM2" in event.message
    assert event.data["head"] == "builtin" and backend.embedded == [PROMPT]
