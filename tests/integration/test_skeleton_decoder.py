"""The skeleton decoder on the real embedded model: exact, cheap, reproducible."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage

from hag_agent import HAGRunnable
from hag_agent.backends import llama_cpp_skeleton
from hag_agent.backends.base import numeric_fields
from hag_agent.backends.embedded import EmbeddedBackend
from hag_agent.backends.llama_cpp_chat import ChatLlamaCppEmbedded
from hag_agent.proposal import ProposalSchema, proposal_prompt
from hag_agent.tasks import TaskKind

PROMPTS = {
    TaskKind.CREATIVE: "Write a haiku about the moon.",
    TaskKind.MATH: "What is 23 + 58?",
    TaskKind.TRANSLATION: "Translate 'I like green apples' into Spanish.",
}


def fill(model: ChatLlamaCppEmbedded, task: TaskKind, given: dict[str, float] | None = None) -> str:
    messages = [HumanMessage(proposal_prompt(task, PROMPTS[task]))]
    return model.fill_numbers(messages, numeric_fields(ProposalSchema), None, given)


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
