"""Proposer ``default``: the decoder defaults (`DEFAULT_PARAMS`), the baseline of every eval."""

from __future__ import annotations

from hag_agent.hyperparameters import ParamSource
from hag_agent.proposing import Proposal, ProposalRequest, ProposalSteps, Proposer
from hag_agent.tasks import DEFAULT_PARAMS


class DefaultProposer(Proposer):
    """The decoder defaults, whatever the prompt."""

    name = "default"

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Return `DEFAULT_PARAMS`; no model call."""
        return Proposal.uniform(DEFAULT_PARAMS.model_dump(), ParamSource.FIXED, "decoder defaults")
        yield  # pragma: no cover - makes this function a generator


__all__ = ["DefaultProposer"]
