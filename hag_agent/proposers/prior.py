"""Proposer ``prior``: the task prior (`TASK_PRIORS`) of the turn's task kind."""

from __future__ import annotations

from hag_agent.proposing import Proposal, ProposalRequest, ProposalSteps, Proposer


class PriorProposer(Proposer):
    """The task prior; no model call."""

    name = "prior"

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Return the prior of ``request.task``."""
        return Proposal.prior(request.task, f"the {request.task.value} prior")
        yield  # pragma: no cover - makes this function a generator


__all__ = ["PriorProposer"]
