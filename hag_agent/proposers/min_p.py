"""Proposer ``min-p``: min-p sampling, a training-free adaptive baseline from the literature.

Min-p sampling (Nguyen et al., 2024, "Turning Up the Heat: Min-p Sampling for Creative and
Coherent LLM Outputs") keeps the tokens whose probability is at least ``min_p`` times the most
likely token's: the cut adapts to how sure the model is at each step, confident steps keep few
tokens and uncertain ones many, with no training and no model call to decide it. Its settings
here are the paper's usual ones: temperature 1.0, min_p 0.1, no top-p, top-k or repetition
penalty. max_tokens is a budget, not a sampling choice, so it comes from the task prior.
Every backend expresses it (llama.cpp and vLLM both apply min_p).
"""

from __future__ import annotations

from hag_agent.hyperparameters import HyperParams, ParamSource
from hag_agent.proposing import Proposal, ProposalRequest, ProposalSteps, Proposer
from hag_agent.tasks import TASK_PRIORS

MIN_P_SAMPLING = HyperParams(
    temperature=1.0, top_p=1.0, top_k=0, min_p=0.1, repetition_penalty=1.0, max_tokens=512
)
"""The min-p configuration; its max_tokens is replaced by the task prior's."""


class MinPProposer(Proposer):
    """Min-p sampling at temperature 1.0 for every prompt; no model call."""

    name = "min-p"

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Return `MIN_P_SAMPLING` with the task prior's max_tokens."""
        values = MIN_P_SAMPLING.model_dump()
        values["max_tokens"] = TASK_PRIORS[request.task].max_tokens
        sources = dict.fromkeys(values, ParamSource.FIXED)
        sources["max_tokens"] = ParamSource.PRIOR
        return Proposal(values, sources, "min-p sampling (min_p 0.1 at temperature 1.0)")
        yield  # pragma: no cover - makes this function a generator


__all__ = ["MIN_P_SAMPLING", "MinPProposer"]
