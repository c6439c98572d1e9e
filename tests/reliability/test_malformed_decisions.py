"""Malformed model decisions: proposal, classification and judge answers that are not answers.

Each property draws at least 1,000 cases (`CASES`) through the real parser and, separately,
through the compiled graph with a scripted model: no exception escapes, every value stays inside
`DecodingBounds`, and every fallback says why.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hag_agent import HAGRunnable, ParamSource, TaskKind
from hag_agent.backends.base import parse_decision
from hag_agent.classification import TaskChoice
from hag_agent.critique import JudgeVerdict
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds, HyperParams, Range
from hag_agent.proposal import parse_proposal
from hag_agent.tasks import TASK_PRIORS
from hag_agent.testing import ScriptedChatModel

from .figures import FIGURES
from .junk import model_texts, objects_with

CASES = 1000
GOOD = "Paris is the capital of France, on the Seine."
PROMPT = "What is the capital of France?"

TIGHT = DecodingBounds(
    temperature=Range(low=0.1, high=0.9),
    top_p=Range(low=0.5, high=0.95),
    top_k=Range(low=5, high=50),
    min_p=Range(low=0.0, high=0.1),
    repetition_penalty=Range(low=1.0, high=1.3),
    max_tokens=Range(low=16, high=256),
)
BOUNDS = st.sampled_from([DecodingBounds(), TIGHT])
PROPOSAL_TEXTS = model_texts(
    objects_with(
        list(HYPERPARAM_KEYS),
        st.floats(min_value=-5, max_value=5000) | st.integers(min_value=-5, max_value=5000),
    )
)
CLASSIFY_TEXTS = model_texts(
    objects_with(["task", "confidence"], st.sampled_from([*TaskKind, "poetry", "MATH"]))
)
JUDGE_TEXTS = model_texts(
    objects_with(["score", "issues", "direction"], st.integers(min_value=-3, max_value=15))
)


def assert_within(params: HyperParams, bounds: DecodingBounds) -> None:
    """Every value finite and inside the policy (top_k may be 0, meaning off)."""
    for key in HYPERPARAM_KEYS:
        value = getattr(params, key)
        assert math.isfinite(value), (key, value)
        rng: Range = getattr(bounds, key)
        if key == "top_k" and value == 0:
            continue
        assert rng.low <= value <= rng.high, (key, value, bounds.describe(key))


def count(row: str, *, fallback: bool) -> None:
    """One case of a malformed-decision row, and whether it fell back."""
    FIGURES[f"malformed decisions, {row}"]["cases"] += 1
    FIGURES[f"malformed decisions, {row}"]["fallbacks"] += fallback


# -- the parsers -----------------------------------------------------------------------------


@settings(max_examples=CASES)
@given(text=PROPOSAL_TEXTS, bounds=BOUNDS, task=st.sampled_from(list(TaskKind)))
def test_parse_proposal_is_bounded_and_explains_every_fallback(
    text: str, bounds: DecodingBounds, task: TaskKind
) -> None:
    parsed = parse_proposal(text, prior=TASK_PRIORS[task], bounds=bounds)
    assert_within(parsed.params, bounds)
    count("parse_proposal", fallback=parsed.fallback_reason is not None)
    from_prior = {k for k, s in parsed.sources.items() if s is ParamSource.PRIOR}
    if parsed.fallback_reason is not None:
        assert parsed.fallback_reason.strip() and from_prior == set(HYPERPARAM_KEYS)
        return
    assert from_prior != set(HYPERPARAM_KEYS)
    unusable = {c.key for c in parsed.clamps if c.bound.startswith("not a finite number")}
    missing = next((n for n in parsed.notes if n.startswith("missing keys")), "")
    # each value the model did not give is accounted for: missing, or unusable
    for key in from_prior:
        assert key in unusable or key in missing, (key, parsed)


@settings(max_examples=CASES)
@given(text=CLASSIFY_TEXTS)
def test_classification_decision_never_raises(text: str) -> None:
    decision = parse_decision(text, TaskChoice, 0.0)
    count("classification decision", fallback=decision.value is None)
    if decision.value is None:
        assert decision.error
    else:
        assert isinstance(decision.value.task, TaskKind)
        assert 0.0 <= decision.value.confidence <= 1.0


@settings(max_examples=CASES)
@given(text=JUDGE_TEXTS)
def test_judge_decision_never_raises(text: str) -> None:
    decision = parse_decision(text, JudgeVerdict, 0.0)
    count("judge decision", fallback=decision.value is None)
    if decision.value is None:
        assert decision.error
    else:
        assert 1 <= decision.value.score <= 10


# -- the graph's nodes -----------------------------------------------------------------------


class Scripted:
    """One runnable whose next decision answer is set per case (compiling per case is slow)."""

    def __init__(self, **settings: Any) -> None:
        self.reply = ""
        self.model = ScriptedChatModel(
            script={"generate": [GOOD]},
            default=lambda messages, kwargs: self.reply,
        )
        self.hag = HAGRunnable(model=self.model, **settings)

    def invoke(self, reply: str) -> Any:
        self.reply = reply
        return self.hag.invoke(PROMPT)


@pytest.fixture(scope="module")
def proposing() -> Scripted:
    return Scripted(proposer="self", critique=False)


@pytest.fixture(scope="module")
def classifying() -> Scripted:
    return Scripted(classifier="llm", proposer="prior", critique=False)


@pytest.fixture(scope="module")
def judging() -> Scripted:
    return Scripted(proposer="prior", critic="judge", max_retries=1)


@settings(max_examples=CASES)
@given(text=PROPOSAL_TEXTS)
def test_propose_node_stays_in_bounds(proposing: Scripted, text: str) -> None:
    result = proposing.invoke(text)
    attempt = result.attempts[0]
    assert_within(attempt.params, DecodingBounds())
    event = next(e for e in result.trace if e.node == "propose")
    count("propose node", fallback=set(attempt.sources.values()) == {ParamSource.PRIOR})
    if set(attempt.sources.values()) == {ParamSource.PRIOR}:
        assert "fallback to the factual prior: " in attempt.reason, attempt.reason
        assert event.message == attempt.reason
    assert result.text == GOOD


@settings(max_examples=CASES)
@given(text=CLASSIFY_TEXTS)
def test_classify_node_falls_back_with_its_reason(classifying: Scripted, text: str) -> None:
    result = classifying.invoke(text)
    event = result.trace[0]
    assert event.node == "classify" and isinstance(result.task, TaskKind)
    count("classify node", fallback=bool(event.data.get("fallback")))
    if event.data.get("fallback"):
        assert event.message.startswith("llm answer unusable (") and "()" not in event.message
        assert result.task is TaskKind.FACTUAL  # the rules' answer for this prompt
    else:
        assert event.message.startswith(f"llm: {result.task.value}")
    assert_within(result.attempts[0].params, DecodingBounds())


@settings(max_examples=CASES)
@given(text=JUDGE_TEXTS)
def test_critique_node_falls_back_with_its_reason(judging: Scripted, text: str) -> None:
    result = judging.invoke(text)
    for attempt in result.attempts:
        assert_within(attempt.params, DecodingBounds())
        critique = attempt.critique
        assert critique is not None and 0.0 <= critique.score <= 1.0
        fallback = critique.source.startswith("signals (judge fallback: ")
        count("critique node (per attempt)", fallback=fallback)
        assert fallback or critique.source == "signals+judge", critique.source
        if fallback:
            assert critique.source != "signals (judge fallback: )"
    assert result.text == GOOD
