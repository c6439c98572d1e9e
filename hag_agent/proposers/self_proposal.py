"""Proposers ``self`` and ``self-tuned``: the model proposes its own configuration (HAG).

One decision call asks for proposal JSON (`proposal_prompt`); `parse_proposal` bounds it, and
anything unusable (a failed call, text that is no proposal) falls back to the task prior with
the reason kept. ``self-tuned`` is the same call answered by a fine-tuned proposer: the backend
sends proposal calls to its proposer model (``--proposer-model``; the evaluation runs it on a
backend built with ``--tuned-proposer``).
"""

from __future__ import annotations

from typing import Any

from hag_agent.backends.base import Decision, OutputConstraint
from hag_agent.errors import BackendError
from hag_agent.node_driver import DecideCall
from hag_agent.proposal import (
    ProposalSchema,
    parse_proposal,
    proposal_preamble,
    proposal_prompt,
)
from hag_agent.proposing import Proposal, ProposalRequest, ProposalSteps, Proposer
from hag_agent.tasks import TASK_PRIORS


class SelfProposer(Proposer):
    """The model proposes; the task prior where its proposal is unusable.

    Within a tuned proposer's training scope (`ProposalRequest.scope`): a task kind it never saw
    gets the task prior, without a call, and the keys its data held fixed are not its choice
    (`Proposal.within`: the shipped adapter proposed ``max_tokens`` 48, the value its search
    held, for every request).
    """

    name = "self"

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Ask the model for proposal JSON and parse it, within the proposer's training scope."""
        task, scope = request.task, request.scope
        if scope is not None and not scope.covers(task):
            return Proposal.prior(
                task,
                f"the {task.value} prior: the tuned proposer never saw a {task.value} task in "
                "training",
                outside_training=True,
            )
        fixed = dict(scope.fixed) if scope is not None else {}
        proposal = yield from self._asked(request, fixed)
        return proposal.within(scope, task)

    def _asked(self, request: ProposalRequest, given: dict[str, float]) -> ProposalSteps:
        """One proposal call (``given``: values written into the object, not decoded)."""
        task, bounds = request.task, request.bounds
        prior = TASK_PRIORS[task]
        data: dict[str, Any] = {}
        result = yield DecideCall(
            "propose",
            proposal_prompt(task, request.prompt),
            ProposalSchema,
            # The proposal is a flat object of numbers: decoded under its exact compact shape.
            OutputConstraint.COMPACT_NUMERIC_OBJECT,
            given=given,
            # The instructions of a task kind come first and are the same every time.
            shared_prefix=proposal_preamble(task),
        )
        if isinstance(result, BackendError):
            parsed = parse_proposal("", prior=prior, bounds=bounds)
            reason = f"proposal call failed ({result}); fallback to the {task.value} prior"
        else:
            assert isinstance(result, Decision)
            parsed = parse_proposal(result.raw_text, prior=prior, bounds=bounds)
            data["raw"] = result.raw_text
            data["latency_s"] = round(result.latency_s, 4)
            reason = (
                f"fallback to the {task.value} prior: {parsed.fallback_reason}"
                if parsed.fallback_reason
                else "proposed by the model"
            )
        if parsed.notes:
            data["notes"] = parsed.notes
        return Proposal(
            parsed.params.model_dump(), dict(parsed.sources), reason, list(parsed.clamps), data
        )


class TunedSelfProposer(SelfProposer):
    """``self`` answered by a fine-tuned proposer (the backend's proposer model)."""

    name = "self-tuned"


__all__ = ["SelfProposer", "TunedSelfProposer"]
