"""``self`` and ``self-tuned`` within a tuned proposer's training scope (`Backend.proposer_scope`)."""

from __future__ import annotations

from typing import Any

import pytest

from hag_agent import HAGRunnable, ParamSource, TaskKind
from hag_agent.backends.base import Decision, DecisionRequest
from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.hyperparameters import HYPERPARAM_KEYS, ClampRecord, HyperParams
from hag_agent.proposing import Proposal
from hag_agent.tasks import TASK_PRIORS
from hag_agent.testing import ScriptedChatModel
from hag_agent.training_scope import TrainingScope

MATH = "What is 2 + 3?"  # the rules classify it as math
CODE = "Write a Python function that returns the n-th Fibonacci number."
HELD = {"min_p": 0.0, "max_tokens": 48.0}
SCOPE = TrainingScope(fixed=HELD, task_kinds=frozenset({TaskKind.MATH, TaskKind.REASONING}))
TUNED = HyperParams(
    temperature=0.4, top_p=0.8, top_k=10, min_p=0.0, repetition_penalty=1.1, max_tokens=48
)


class ScopedBackend(ChatModelBackend):
    """A scripted model behind a backend that serves a tuned proposer of a known scope."""

    def __init__(self, scope: TrainingScope | None, proposal: str = TUNED.to_proposal_json()):
        super().__init__(ScriptedChatModel(script={"generate": ["5"], "propose": [proposal]}))
        self.scope = scope
        self.requests: list[DecisionRequest] = []

    def proposer_scope(self) -> TrainingScope | None:
        return self.scope

    async def adecide(self, request: DecisionRequest) -> Decision:
        self.requests.append(request)
        return await super().adecide(request)


def run(backend: ScopedBackend, prompt: str = MATH, proposer: str = "self-tuned") -> Any:
    return HAGRunnable(model=backend, proposer=proposer, critique=False).invoke(prompt)


def propose_event(result: Any) -> Any:
    return next(e for e in result.trace if e.node == "propose")


HELD_NOTE = (
    "min_p 0 as its training data held it; "
    "max_tokens from the math prior (a budget its training data held fixed)"
)


@pytest.mark.parametrize("proposer", ["self", "self-tuned"])
def test_a_held_budget_comes_from_the_prior_and_a_held_sampling_value_stays(
    proposer: str,
) -> None:
    backend = ScopedBackend(
        SCOPE, HyperParams(**{**TUNED.model_dump(), "min_p": 0.3}).to_proposal_json()
    )
    result = run(backend, proposer=proposer)
    params, sources = result.attempts[0].params, result.attempts[0].sources
    prior = TASK_PRIORS[TaskKind.MATH]
    assert params.max_tokens == prior.max_tokens == 512  # not the 48 the data held
    # min_p is what every training score was measured with, whatever the model wrote.
    assert (params.min_p, params.temperature, params.top_k) == (0.0, 0.4, 10)
    assert sources["max_tokens"] is ParamSource.PRIOR
    assert sources["min_p"] is ParamSource.FIXED
    assert {sources[k] for k in HYPERPARAM_KEYS if k not in HELD} == {ParamSource.MODEL}
    event = propose_event(result)
    assert event.message == f"proposed by the model; {HELD_NOTE}"
    assert event.data["held_keys"] == ["min_p"] and event.data["prior_keys"] == ["max_tokens"]
    # One call, told the values the data held (a skeleton decoder writes them, not decodes them).
    [request] = [r for r in backend.requests if r.purpose == "propose"]
    assert dict(request.given) == HELD


def test_a_task_kind_outside_training_gets_the_prior_without_a_call() -> None:
    backend = ScopedBackend(SCOPE)
    result = run(backend, CODE)
    assert result.task is TaskKind.CODE
    assert result.attempts[0].params == TASK_PRIORS[TaskKind.CODE]
    assert set(result.attempts[0].sources.values()) == {ParamSource.PRIOR}
    assert not [r for r in backend.requests if r.purpose == "propose"]
    event = propose_event(result)
    assert event.data["outside_training"] is True
    assert event.message == "the code prior: the tuned proposer never saw a code task in training"


def test_without_a_scope_nothing_changes() -> None:
    backend = ScopedBackend(None)
    result = run(backend)
    assert result.attempts[0].params == TUNED
    assert propose_event(result).message == "proposed by the model"
    [request] = [r for r in backend.requests if r.purpose == "propose"]
    assert dict(request.given) == {}
    # A scope that fixed nothing and knows no task kinds leaves the proposal as it is too.
    assert run(ScopedBackend(TrainingScope())).attempts[0].params == TUNED


def test_a_failed_or_unusable_proposal_still_says_which_keys_were_held() -> None:
    result = run(ScopedBackend(SCOPE, proposal="no idea"))
    prior = TASK_PRIORS[TaskKind.MATH].model_dump()
    assert result.attempts[0].params == HyperParams(**{**prior, "min_p": 0.0})
    message = propose_event(result).message
    assert message.startswith("fallback to the math prior: ")
    assert message.endswith(HELD_NOTE)


def test_with_prior_for_replaces_values_sources_and_clamps_of_those_keys_only() -> None:
    by_model = ParamSource.MODEL
    clamps = [
        ClampRecord(key="max_tokens", original=9999, value=4096, bound="<= 4096", source=by_model),
        ClampRecord(key="top_p", original=2, value=1.0, bound="<= 1", source=by_model),
    ]
    proposal = Proposal.uniform(TUNED.model_dump(), ParamSource.MODEL, "proposed", notes=["n"])
    proposal = Proposal(proposal.values, proposal.sources, "proposed", clamps, proposal.data)
    changed = proposal.with_prior_for(["max_tokens", "unknown"], TaskKind.CODE, "why")
    assert changed.values == {**TUNED.model_dump(), "max_tokens": 768}
    assert changed.sources["max_tokens"] is ParamSource.PRIOR
    assert changed.sources["top_p"] is ParamSource.MODEL
    assert [c.key for c in changed.clamps] == ["top_p"]
    assert changed.data["notes"] == ["n", "max_tokens from the code prior (why)"]
    assert changed.reason == "proposed; max_tokens from the code prior (why)"
    assert proposal.with_prior_for([], TaskKind.CODE, "why") is proposal


def test_the_embedded_default_is_the_task_prior() -> None:
    from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions

    assert EmbeddedBackend(EmbeddedOptions()).default_proposer().name == "prior"
    tuned = EmbeddedBackend(EmbeddedOptions(proposer_lora_path="builtin"))
    assert tuned.default_proposer().name == "self-tuned"  # the adapter it was given proposes


def test_the_proposer_follows_from_the_other_settings() -> None:
    from hag_agent.context import HAGContext
    from hag_agent.proposing import default_reason, proposer_for

    head = HAGContext(chat_model=ScriptedChatModel(), head_path="h.npz")
    assert proposer_for(head).name == "learned"
    assert "head" in (default_reason(head) or "")
    named = HAGContext(chat_model=ScriptedChatModel(), head_path="h.npz", proposer="prior")
    assert proposer_for(named).name == "prior" and default_reason(named) is None
    tuned = ChatModelBackend(ScriptedChatModel(), proposal_model=ScriptedChatModel())
    assert tuned.default_proposer().name == "self-tuned"
    assert proposer_for(HAGContext(chat_model=tuned)).name == "self-tuned"
    assert ChatModelBackend(ScriptedChatModel()).default_proposer().name == "prior"
