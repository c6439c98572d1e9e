"""The regex a vLLM proposal is decoded under: every sensible proposal, and few digits more."""

from __future__ import annotations

import re

import pytest

from hag_agent.backends.base import numeric_fields
from hag_agent.backends.openai_compatible import object_regex
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.proposal import ProposalSchema
from hag_agent.tasks import TASK_PRIORS, TaskKind

REGEX = re.compile(object_regex(numeric_fields(ProposalSchema)))


@pytest.mark.parametrize("task", sorted(TASK_PRIORS))
def test_every_task_priors_proposal_text_matches(task: TaskKind) -> None:
    assert REGEX.fullmatch(TASK_PRIORS[task].to_proposal_json())


def test_the_bounds_extremes_match() -> None:
    bounds = DecodingBounds()
    highs = {key: getattr(bounds, key).high for key in HyperParams.model_fields}
    lows = {key: getattr(bounds, key).low for key in HyperParams.model_fields}
    for values in (highs, lows):
        params = HyperParams(**{**values, "top_k": int(values["top_k"])})
        params = params.model_copy(update={"max_tokens": int(values["max_tokens"])})
        assert REGEX.fullmatch(params.to_proposal_json()), params.to_proposal_json()


@pytest.mark.parametrize(
    "text",
    [
        '{"temperature":-0.7,"top_p":0.9,"top_k":40,"min_p":0.05,"repetition_penalty":1.1,"max_tokens":256}',
        '{"temperature":404125,"top_p":0.9,"top_k":40,"min_p":0.05,"repetition_penalty":1.1,"max_tokens":256}',
        '{"temperature":0.71234,"top_p":0.9,"top_k":40,"min_p":0.05,"repetition_penalty":1.1,"max_tokens":256}',
        '{"temperature":0.7,"top_p":0.9,"top_k":4045656,"min_p":0.05,"repetition_penalty":1.1,"max_tokens":256}',
        '{"temperature":0.7, "top_p":0.9,"top_k":40,"min_p":0.05,"repetition_penalty":1.1,"max_tokens":256}',
    ],
)
def test_signs_long_numbers_and_spaces_are_not_decodable(text: str) -> None:
    """What a random model wrote under the old digit bounds: each digit one more decode step."""
    assert not REGEX.fullmatch(text)
