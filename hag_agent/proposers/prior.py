"""Proposer ``prior``: the task prior (`TASK_PRIORS`) of the turn's task kind."""

from __future__ import annotations

from hag_agent.hyperparameters import ParamSource
from hag_agent.proposing import Proposal, ProposalRequest, ProposalSteps, Proposer
from hag_agent.tasks import TASK_PRIORS


class PriorProposer(Proposer):
    """The task prior; no model call."""

    name = "prior"

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Return the prior of ``request.task``."""
        prior = TASK_PRIORS[request.task]
        reason = f"the {request.task.value} prior"
        return Proposal.uniform(prior.model_dump(), ParamSource.PRIOR, reason)
        yield  # pragma: no cover - makes this function a generator


__all__ = ["PriorProposer"]
