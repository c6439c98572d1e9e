import pytest

from hag_agent import DecodingBounds, ParamSource, parse_proposal
from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.proposal import (
    REQUEST_HEAD_CHARS,
    REQUEST_TAIL_CHARS,
    proposal_preamble,
    proposal_prompt,
)
from hag_agent.tasks import TASK_PRIORS, TaskKind

PRIOR = TASK_PRIORS[TaskKind.MATH]
BOUNDS = DecodingBounds()
GOOD = {
    "temperature": 0.3,
    "top_p": 0.8,
    "top_k": 30,
    "min_p": 0.05,
    "repetition_penalty": 1.1,
    "max_tokens": 200,
}


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_proposal(text, prior=PRIOR, bounds=BOUNDS)


@pytest.mark.parametrize(
    "text",
    [
        '{"temperature":0.3,"top_p":0.8,"top_k":30,"min_p":0.05,"repetition_penalty":1.1,"max_tokens":200}',
        'Sure! Here are my settings: {"temperature": 0.3, "top_p": 0.8, "top_k": 30, "min_p": 0.05,'
        ' "repetition_penalty": 1.1, "max_tokens": 200} Hope that helps.',
        '```json\n{"temperature": 0.3, "top_p": 0.8, "top_k": 30, "min_p": 0.05, '
        '"repetition_penalty": 1.1, "max_tokens": 200}\n```',
        "{'temperature': 0.3, 'top_p': 0.8, 'top_k': 30, 'min_p': 0.05, "
        "'repetition_penalty': 1.1, 'max_tokens': 200}",
        '{"temperature": 0.3, "top_p": 0.8, "top_k": 30, "min_p": 0.05, '
        '"repetition_penalty": 1.1, "max_tokens": 200,}',
        '{"temperature": "0.3", "top_p": "0.8", "top_k": "30", "min_p": "0.05", '
        '"repetition_penalty": "1.1", "max_tokens": "200"}',
        '{"Temperature": 0.3, "TOP_P": 0.8, "top_k": 30, "min_p": 0.05, '
        '"repetition_penalty": 1.1, "max_tokens": 200}',
    ],
    ids=["compact", "prose", "fence", "single-quotes", "trailing-comma", "strings", "case"],
)
def test_robust_parsing(text: str) -> None:
    parsed = parse(text)
    assert parsed.fallback_reason is None
    assert parsed.params.model_dump() == GOOD
    assert set(parsed.sources.values()) == {ParamSource.MODEL}
    assert parsed.clamps == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "I think a low temperature is best.",
        "[1, 2, 3]",
        "{}",
        '{"foo": 1}',
        '{"temperature": "hot"}',
        "[" * 5000,  # deeper than Python's recursion limit: json and json_repair both give up
        "{" * 2000,
        '{"a":' * 2000,
    ],
)
def test_unusable_text_falls_back_to_the_prior(text: str) -> None:
    parsed = parse(text)
    assert parsed.params == PRIOR
    assert parsed.fallback_reason
    assert set(parsed.sources.values()) == {ParamSource.PRIOR}


def test_partial_proposal_fills_from_prior() -> None:
    parsed = parse('{"temperature": 0.9}')
    assert parsed.fallback_reason is None
    assert parsed.params.temperature == 0.9
    assert parsed.params.max_tokens == PRIOR.max_tokens
    assert parsed.sources["temperature"] is ParamSource.MODEL
    assert parsed.sources["max_tokens"] is ParamSource.PRIOR
    assert any("missing keys" in n for n in parsed.notes)


def test_unknown_keys_are_ignored_and_noted() -> None:
    parsed = parse('{"temperature": 0.9, "seed": 4, "beam": 2}')
    assert parsed.params.temperature == 0.9
    assert any("seed" in n and "beam" in n for n in parsed.notes)


def test_out_of_range_values_are_clamped_and_recorded() -> None:
    parsed = parse('{"temperature": 50, "max_tokens": 1000000, "top_p": 0.5}')
    assert parsed.params.temperature == 2.0
    assert parsed.params.max_tokens == 2048
    assert {c.key for c in parsed.clamps} == {"temperature", "max_tokens"}
    assert parsed.fallback_reason is None


def test_mostly_out_of_range_is_implausible() -> None:
    parsed = parse('{"temperature": 50, "max_tokens": 1000000, "top_p": -2}')
    assert parsed.params == PRIOR
    assert parsed.fallback_reason and parsed.fallback_reason.startswith("implausible")


def test_garbage_value_uses_prior_for_that_key_only() -> None:
    parsed = parse('{"temperature": "warm", "top_p": 0.5}')
    assert parsed.params.temperature == PRIOR.temperature
    assert parsed.sources["temperature"] is ParamSource.PRIOR
    assert parsed.params.top_p == 0.5
    assert parsed.sources["top_p"] is ParamSource.MODEL


def test_an_integer_past_floats_range_uses_prior_for_that_key_only() -> None:
    parsed = parse('{"temperature": 1' + "0" * 400 + ', "top_p": 0.5}')
    assert parsed.params.temperature == PRIOR.temperature
    assert parsed.sources["temperature"] is ParamSource.PRIOR
    assert parsed.clamps[0].bound.startswith("not a finite number")
    assert parsed.params.top_p == 0.5


def test_round_trip_of_the_sft_target() -> None:
    text = PRIOR.to_proposal_json()
    parsed = parse(text)
    assert parsed.params == PRIOR and list(HYPERPARAM_KEYS) == list(parsed.params.model_dump())


def test_every_proposal_of_a_task_kind_starts_with_its_preamble() -> None:
    preamble = proposal_preamble(TaskKind.MATH)
    for request in ("What is 2 + 2?", "  spaced", "x" * 5000):
        assert proposal_prompt(TaskKind.MATH, request).startswith(preamble)
    assert "What is 2 + 2?" not in preamble and "---" in preamble
    assert proposal_preamble(TaskKind.CREATIVE) != preamble


def test_a_long_request_is_shown_by_its_start_and_its_end() -> None:
    request = "START " + "middle " * 1000 + " END"
    prompt = proposal_prompt(TaskKind.FACTUAL, request)
    assert "START" in prompt and prompt.endswith("END") and "[...]" in prompt
    room = len(proposal_preamble(TaskKind.FACTUAL)) + REQUEST_HEAD_CHARS + REQUEST_TAIL_CHARS
    assert len(prompt) <= room + 10
    short = "short " * 10
    assert proposal_prompt(TaskKind.FACTUAL, short).endswith(short.strip())
