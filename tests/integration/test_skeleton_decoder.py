"""The skeleton decoder on the real embedded model: exact, cheap, reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from hag_agent import HAGRunnable
from hag_agent.backends import llama_cpp_skeleton
from hag_agent.backends.base import numeric_fields
from hag_agent.backends.embedded import EmbeddedBackend
from hag_agent.backends.llama_cpp_chat import ChatLlamaCppEmbedded
from hag_agent.proposal import ProposalSchema, proposal_preamble, proposal_prompt
from hag_agent.tasks import TaskKind

PROMPTS = {
    TaskKind.CREATIVE: "Write a haiku about the moon.",
    TaskKind.MATH: "What is 23 + 58?",
    TaskKind.TRANSLATION: "Translate 'I like green apples' into Spanish.",
}


def fill(
    model: ChatLlamaCppEmbedded,
    task: TaskKind,
    given: dict[str, float] | None = None,
    *,
    request: str | None = None,
    shared: bool = False,
) -> str:
    messages = [HumanMessage(proposal_prompt(task, request or PROMPTS[task]))]
    prefix = proposal_preamble(task) if shared else ""
    return model.fill_numbers(messages, numeric_fields(ProposalSchema), None, given, prefix)


@pytest.fixture(scope="module")
def model(embedded: EmbeddedBackend) -> ChatLlamaCppEmbedded:
    assert isinstance(embedded.chat_model, ChatLlamaCppEmbedded)
    return embedded.chat_model


@pytest.mark.parametrize("task", list(PROMPTS))
def test_drafting_gives_the_text_token_by_token_decoding_gives(
    model: ChatLlamaCppEmbedded, task: TaskKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    drafted = fill(model, task)
    passes = model.engine().skeleton_decoder().passes
    monkeypatch.setattr(llama_cpp_skeleton, "_drafted", lambda *_: "")
    one_by_one = fill(model, task)
    slow_passes = model.engine().skeleton_decoder().passes
    assert drafted == one_by_one
    assert ProposalSchema.model_validate_json(drafted)
    # The base model writes its example back: the prompt and one drafted batch.
    assert passes <= 2 < slow_passes


def test_given_values_are_written_and_cost_no_pass(model: ChatLlamaCppEmbedded) -> None:
    text = fill(model, TaskKind.MATH, {"min_p": 0.0, "max_tokens": 48})
    values = json.loads(text)
    assert list(values) == list(numeric_fields(ProposalSchema))
    assert values["min_p"] == 0.0 and values["max_tokens"] == 48
    assert '"max_tokens":48}' in text


def test_a_proposal_repeats_exactly_across_runs(embedded: EmbeddedBackend) -> None:
    texts = {fill(embedded.chat_model, TaskKind.CREATIVE) for _ in range(3)}  # type: ignore[arg-type]
    assert len(texts) == 1
    runnable = HAGRunnable(model=embedded, proposer="self", critique=False, seed=3)
    first, second = (runnable.invoke(PROMPTS[TaskKind.CREATIVE]) for _ in range(2))
    assert first.attempts[0].params == second.attempts[0].params
    assert first.text == second.text


def test_a_kept_prefix_state_computes_what_a_fresh_one_does(model: ChatLlamaCppEmbedded) -> None:
    """The instructions of a task kind are evaluated once; a later proposal restores them, and
    its numbers are exactly those of a proposal that evaluated them itself."""
    decoder = model.engine().skeleton_decoder()
    task, other = TaskKind.CREATIVE, "Write a slogan for a tea shop."
    decoder.prefixes = llama_cpp_skeleton.PrefixStates()
    fill(model, task, shared=True)  # keeps the creative instructions' state
    assert len(decoder.prefixes) == 1
    restored = fill(model, task, request=other, shared=True)
    restored_logits, restored_passes = decoder._current.copy(), decoder.passes
    decoder.prefixes = llama_cpp_skeleton.PrefixStates()
    fresh = fill(model, task, request=other, shared=True)
    assert restored == fresh
    assert np.array_equal(restored_logits, decoder._current)
    # Restoring is no evaluation: the fresh call read the instructions in one pass more.
    assert decoder.passes == restored_passes + 1
    # Without the shared prefix the prompt is read in other pieces: the same greedy text.
    assert fill(model, task, request=other) == restored


def test_a_prompt_that_does_not_start_with_the_prefix_keeps_no_state(
    model: ChatLlamaCppEmbedded,
) -> None:
    decoder = model.engine().skeleton_decoder()
    decoder.prefixes = llama_cpp_skeleton.PrefixStates()
    messages = [HumanMessage(proposal_prompt(TaskKind.MATH, PROMPTS[TaskKind.MATH]))]
    keys = numeric_fields(ProposalSchema)
    text = model.fill_numbers(messages, keys, None, None, "Some other instructions")
    assert len(decoder.prefixes) == 0
    assert text == fill(model, TaskKind.MATH)
