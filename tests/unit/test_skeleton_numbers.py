"""The skeleton decoder's number rules and its draft, without a model."""

from __future__ import annotations

import json

import pytest

from hag_agent.backends.base import numeric_fields
from hag_agent.backends.llama_cpp_skeleton import (
    NumberTokens,
    _canonical,
    _drafted,
    _Number,
)
from hag_agent.proposal import ProposalSchema, proposal_prompt
from hag_agent.tasks import TASK_PRIORS, TaskKind

# A vocabulary of single digits, one two-digit token, a point and two ending tokens.
TOKENS = NumberTokens(
    digits={**{i: str(i) for i in range(10)}, 10: "12"},
    point=11,
    ends=frozenset({12, 13}),
)
KEYS = numeric_fields(ProposalSchema)


def next_texts(number: _Number) -> tuple[set[str], bool]:
    allowed, may_end = number.allowed(TOKENS)
    return {"." if t == TOKENS.point else TOKENS.digits[t] for t in allowed}, may_end


def test_a_number_starts_with_a_digit_and_cannot_end_empty() -> None:
    texts, may_end = next_texts(_Number("float"))
    assert "." not in texts and "0" in texts and not may_end


def test_a_leading_zero_takes_a_point_or_ends() -> None:
    assert next_texts(_Number("float", "0")) == ({"."}, True)
    assert next_texts(_Number("int", "0")) == (set(), True)


def test_decimals_stop_at_two_and_a_point_needs_a_digit() -> None:
    texts, may_end = next_texts(_Number("float", "0."))
    assert not may_end and "12" in texts  # a two-digit token still fits
    texts, may_end = next_texts(_Number("float", "0.9"))
    assert may_end and "12" not in texts and "5" in texts
    assert next_texts(_Number("float", "0.95")) == (set(), True)


def test_integers_stop_at_four_digits_and_take_no_point() -> None:
    texts, may_end = next_texts(_Number("int", "51"))
    assert may_end and "." not in texts and "12" in texts
    assert next_texts(_Number("int", "5120")) == (set(), True)


@pytest.mark.parametrize(
    ("text", "kind", "written"),
    [
        ("0.10", "float", "0.1"),
        ("1", "float", "1.0"),
        ("0.05", "float", "0.05"),
        ("40", "int", "40"),
    ],
)
def test_a_value_is_written_as_compact_json_writes_it(text: str, kind: str, written: str) -> None:
    assert _canonical(text, kind) == written  # type: ignore[arg-type]


def test_the_draft_is_the_prompts_example_with_given_values_written() -> None:
    prompt = proposal_prompt(TaskKind.CREATIVE, "Write a haiku about the moon.")
    draft = _drafted(prompt, KEYS, {"min_p": 0.0})
    example = TASK_PRIORS[TaskKind.CREATIVE].model_dump()
    expected = {**example, "min_p": 0.0}
    assert json.loads('{"temperature":' + draft) == expected


def test_the_draft_ends_after_the_last_value_to_decode() -> None:
    prompt = proposal_prompt(TaskKind.CREATIVE, "Write a haiku about the moon.")
    draft = _drafted(prompt, KEYS, {"min_p": 0.0, "max_tokens": 48})
    # The given max_tokens after the last decoded value needs no logits: it is not drafted.
    assert draft.endswith('"repetition_penalty":1.15,')
    assert '"min_p":0.0' in draft and "max_tokens" not in draft


def test_a_remembered_value_drafts_before_the_prompts_example() -> None:
    prompt = proposal_prompt(TaskKind.CREATIVE, "Write a haiku about the moon.")
    draft = _drafted(prompt, KEYS, {}, {"top_p": "0.8"})
    assert json.loads('{"temperature":' + draft)["top_p"] == 0.8


def test_the_draft_stops_at_the_first_key_the_prompt_shows_no_value_for() -> None:
    draft = _drafted('{"temperature":0.3,"top_p":0.9}', KEYS, {})
    assert draft == '0.3,"top_p":0.9,'
    assert _drafted("no example here", KEYS, {}) == ""
