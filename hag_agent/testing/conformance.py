"""Conformance tests every backend must pass, written once (needs pytest).

Subclass `BackendConformance` in a test module (its name starts with ``Test``, so pytest
collects it) and provide a ``backend`` fixture::

    from hag_agent.testing.conformance import BackendConformance

    class TestMyBackendConformance(BackendConformance):
        @pytest.fixture
        def backend(self) -> MyBackend:
            return MyBackend(...)

The tests check behaviour, never wording (a randomly initialised model talks gibberish):
reproducibility, that each sampling value reaches the decoder (shown by its effect), structured
output, streaming, typed errors and concurrency. A backend that lacks a capability declares
it, and the test is skipped saying so.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from hag_agent import BackendError, DecodingBounds, HAGRunnable, HyperParams
from hag_agent.backends import (
    Backend,
    ChatModelBackend,
    DecisionRequest,
    GenerationRequest,
    OutputConstraint,
)
from hag_agent.errors import EmbeddingsUnsupportedError
from hag_agent.proposal import ProposalSchema, parse_proposal
from hag_agent.tasks import TASK_PRIORS, TaskKind

PROMPT = [HumanMessage("Write a long story about a dragon who bakes bread.")]
REPEAT = [HumanMessage("Repeat the word apple again and again: apple apple apple apple apple")]
SAMPLED = HyperParams(
    temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=24
)
GREEDY = SAMPLED.model_copy(update={"temperature": 0.0})


def unchecked(**values: Any) -> HyperParams:
    """HyperParams outside even vLLM's ranges, to see what the backend itself does."""
    return HyperParams.model_construct(**{**SAMPLED.model_dump(), **values})


class BackendConformance:
    """Behaviour every backend owes hag-agent (tests only: pytest collects subclasses)."""

    def require(self, backend: Backend, capability: str) -> None:
        """Skip the test, saying why, when the backend declares no such capability."""
        if not getattr(backend.capabilities, capability):
            pytest.skip(f"{backend.name} declares no {capability} capability")

    def text(
        self,
        backend: Backend,
        params: HyperParams,
        *,
        seed: int | None = None,
        messages: Any = PROMPT,
    ) -> str:
        """The text of one generation."""
        return backend.generate(GenerationRequest(messages, params, seed=seed)).text

    def test_same_seed_same_text(self, backend: Backend) -> None:
        """The same seed gives the same text; other seeds give other texts."""
        self.require(backend, "seed")
        self.require(backend, "reproducible")
        first = self.text(backend, SAMPLED, seed=11)
        assert first == self.text(backend, SAMPLED, seed=11)
        others = {self.text(backend, SAMPLED, seed=s) for s in (12, 13, 14)}
        assert others != {first}  # the seed is what made them equal, not the decoder ignoring it

    def test_temperature_zero_repeats(self, backend: Backend) -> None:
        """Greedy decoding gives the same text twice."""
        self.require(backend, "reproducible")
        assert self.text(backend, GREEDY) == self.text(backend, GREEDY)

    def test_temperature_reaches_the_decoder(self, backend: Backend) -> None:
        """A hot sample differs from the greedy text."""
        hot = {
            self.text(backend, SAMPLED.model_copy(update={"temperature": 2.0}), seed=s)
            for s in (1, 2, 3)
        }
        assert hot != {self.text(backend, GREEDY)}

    def assert_samples_greedy(
        self, backend: Backend, capability: str | None, update: dict[str, float], seed: int
    ) -> None:
        """A sampler narrowed by ``update`` (with its ``capability``) samples the greedy text."""
        self.require(backend, "reproducible")
        if capability is not None:
            self.require(backend, capability)
        greedy = self.text(backend, GREEDY)
        assert self.text(backend, SAMPLED.model_copy(update=update), seed=seed) == greedy

    def test_top_k_one_equals_greedy(self, backend: Backend) -> None:
        """top_k 1 samples the greedy text."""
        self.assert_samples_greedy(backend, "top_k", {"top_k": 1}, seed=5)

    def test_top_p_tiny_equals_greedy(self, backend: Backend) -> None:
        """A tiny top_p samples the greedy text."""
        self.assert_samples_greedy(backend, None, {"top_p": 0.001}, seed=6)

    def test_min_p_one_equals_greedy(self, backend: Backend) -> None:
        """min_p 1 samples the greedy text."""
        self.assert_samples_greedy(backend, "min_p", {"min_p": 1.0}, seed=7)

    def test_repetition_penalty_reaches_the_decoder(self, backend: Backend) -> None:
        """A strong repetition penalty changes a repetitive greedy text."""
        self.require(backend, "reproducible")
        self.require(backend, "repetition_penalty_name")
        plain = self.text(backend, GREEDY.model_copy(update={"max_tokens": 32}), messages=REPEAT)
        penalised = self.text(
            backend,
            GREEDY.model_copy(update={"max_tokens": 32, "repetition_penalty": 2.0}),
            messages=REPEAT,
        )
        assert plain != penalised

    def test_max_tokens_is_respected(self, backend: Backend) -> None:
        """Generation stops at max_tokens, saying so."""
        result = backend.generate(
            GenerationRequest(PROMPT, SAMPLED.model_copy(update={"max_tokens": 5}), seed=1)
        )
        assert result.finish_reason == "length"
        assert result.completion_tokens is None or result.completion_tokens == 5

    def test_structured_proposal_validates(self, backend: Backend) -> None:
        """A proposal under the compact numeric constraint parses (constrained: JSON)."""
        decision = backend.decide(
            DecisionRequest(
                [HumanMessage("Choose decoding settings for: write a poem about rain")],
                ProposalSchema,
                purpose="propose",
                constraint=OutputConstraint.COMPACT_NUMERIC_OBJECT,
                max_tokens=120,
            )
        )
        parsed = parse_proposal(
            decision.raw_text, prior=TASK_PRIORS[TaskKind.CREATIVE], bounds=DecodingBounds()
        )
        assert isinstance(parsed.params, HyperParams)  # whatever the model said, bounded
        if backend.capabilities.structured_output != "prompt":
            assert decision.raw_text.lstrip().startswith("{"), decision.raw_text  # constrained

    def test_stream_equals_invoke(self, backend: Backend) -> None:
        """Streamed tokens add up to the invoked text."""
        self.require(backend, "reproducible")
        self.require(backend, "streaming")
        if not isinstance(backend, ChatModelBackend):
            pytest.skip(f"{backend.name} streams through no LangChain chat model")
        kwargs = backend.call_kwargs(GREEDY, seed=None)
        streamed = "".join(chunk.text for chunk in backend.chat_model.stream(PROMPT, **kwargs))
        assert streamed == backend.chat_model.invoke(PROMPT, **kwargs).text

    def test_invalid_value_is_a_typed_error(self, backend: Backend) -> None:
        """An out-of-range value is a BackendError with a 4xx status."""
        self.require(backend, "validates_params")
        with pytest.raises(BackendError) as info:
            backend.generate(GenerationRequest(PROMPT, unchecked(top_p=5.0)))
        assert info.value.status is not None and 400 <= info.value.status < 500

    def test_embeddings(self, backend: Backend) -> None:
        """One pass over a text gives a fixed-size vector: the same for the same text."""
        if not backend.capabilities.embeddings:
            with pytest.raises(EmbeddingsUnsupportedError):
                backend.embed("hello")
            return
        embedding = backend.embed("Write a poem about the sea.")
        first = embedding.vector
        assert first and all(math.isfinite(v) for v in first)
        assert embedding.model == backend.embedding_model()
        assert backend.embed("Write a poem about the sea.").vector == first
        other = backend.embed("What is 12 times 7?").vector
        assert len(other) == len(first) and other != first

    def test_embedding_leaves_generation_unchanged(self, backend: Backend) -> None:
        """A seeded generation is the same before and after an (async) embedding pass."""
        self.require(backend, "embeddings")
        self.require(backend, "reproducible")
        before = backend.generate(GenerationRequest(PROMPT, SAMPLED, seed=5)).text
        asyncio.run(backend.aembed("Something else entirely."))
        assert backend.generate(GenerationRequest(PROMPT, SAMPLED, seed=5)).text == before

    def test_concurrent_runs_all_complete(self, backend: Backend) -> None:
        """32 graph runs at once on one event loop all finish, each with its own result."""
        runnable = HAGRunnable(
            model=backend, proposer="prior", critique=False, params={"max_tokens": 6}
        )
        prompts: list[Any] = [f"Say the number {i}." for i in range(32)]
        results = asyncio.run(runnable.abatch(prompts))
        assert len(results) == 32
        for result in results:
            assert result.attempts and result.attempts[0].error is None
            assert result.attempts[0].params.max_tokens == 6
            assert result.trace[0].node == "classify"
        assert len({id(r) for r in results}) == 32
