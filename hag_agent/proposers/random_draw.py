"""Proposer ``random``: a configuration drawn uniformly within the bounds, reproducibly.

temperature, top_p and repetition_penalty are drawn uniformly within the `DecodingBounds`
(rounded to 3 places), top_k is off with probability 1/5 and else a uniform integer in its range,
min_p is 0 and max_tokens the task prior's. The draw depends on ``(seed, key)`` only: the
evaluation passes the case id as the key, a run the prompt text; a run without a seed draws as
seed 0.
"""

from __future__ import annotations

import random

from hag_agent.hyperparameters import DecodingBounds, HyperParams, ParamSource
from hag_agent.proposing import Proposal, ProposalRequest, ProposalSteps, Proposer
from hag_agent.tasks import TASK_PRIORS, TaskKind


def random_params(
    key: str, seed: int, task: TaskKind, bounds: DecodingBounds | None = None
) -> HyperParams:
    """The ``random`` configuration for one key (a case id or prompt) and seed."""
    bounds = bounds or DecodingBounds()
    rng = random.Random(f"hag-random:{seed}:{key}")

    def uniform(name: str) -> float:
        rng_range = getattr(bounds, name)
        return round(rng.uniform(rng_range.low, rng_range.high), 3)

    temperature = uniform("temperature")
    top_p = uniform("top_p")
    repetition_penalty = uniform("repetition_penalty")
    off = rng.random() < 0.2
    top_k = 0 if off else rng.randint(int(bounds.top_k.low), int(bounds.top_k.high))
    max_tokens = int(bounds.clamp_value("max_tokens", TASK_PRIORS[task].max_tokens) or 1)
    return HyperParams(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=0.0,
        repetition_penalty=repetition_penalty,
        max_tokens=max_tokens,
    )


class RandomProposer(Proposer):
    """A seeded random configuration: the baseline any proposer should beat."""

    name = "random"

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Return the draw for ``(request.seed, request.key)``; no model call."""
        seed = request.seed if request.seed is not None else 0
        params = random_params(request.key, seed, request.task, request.bounds)
        reason = f"drawn at random (seed {seed})"
        return Proposal.uniform(params.model_dump(), ParamSource.FIXED, reason)
        yield  # pragma: no cover - makes this function a generator


__all__ = ["RandomProposer", "random_params"]
