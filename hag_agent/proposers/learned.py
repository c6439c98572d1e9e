"""Proposer ``learned``: one embedding pass over the prompt, then the head's prediction.

No generation call is made. Whatever stands in the way (no head file given, a file that cannot
be read, a backend without embeddings, a failed embedding call, a head trained on another
model's embeddings) proposes the task prior instead, with the reason in the trace.

Imports NumPy (through the head): the registry imports this module only for proposer
``learned``.
"""

from __future__ import annotations

from typing import Any

from hag_agent.backends.base import Embedding
from hag_agent.errors import BackendError, EmbeddingsUnsupportedError, LearnedHeadError
from hag_agent.hyperparameters import ParamSource
from hag_agent.learned_head.head_file import load_head_cached
from hag_agent.node_driver import EmbedCall
from hag_agent.proposing import (
    Proposal,
    ProposalRequest,
    ProposalSteps,
    Proposer,
    ProposerSettings,
)


class LearnedSettings(ProposerSettings):
    """Proposer ``learned``'s settings."""

    head_path: str | None = None
    """The head file (``hag-agent train head``; the run's ``head_path``); None: the prior."""


class LearnedProposer(Proposer):
    """A learned head maps the prompt's embedding (and task kind) to a configuration."""

    name = "learned"
    settings_type = LearnedSettings
    settings: LearnedSettings

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Embed the prompt and let the head predict the configuration.

        The head file is read once per process (again only when it changes), before the
        embedding pass, so an unusable file costs no model call.
        """
        head_path, prior = self.settings.head_path, f"fallback to the {request.task.value} prior"
        if not head_path:
            return _fallback(request, f"no learned head given (head_path, HAG_HEAD_PATH); {prior}")
        try:
            head = load_head_cached(head_path)
        except LearnedHeadError as exc:
            return _fallback(request, f"learned head unusable: {exc}; {prior}", head=head_path)
        result = yield EmbedCall(request.prompt)
        if isinstance(result, EmbeddingsUnsupportedError):
            reason = f"the backend has no embeddings ({result}); {prior}"
            return _fallback(request, reason, head=head_path)
        if isinstance(result, BackendError):
            return _fallback(request, f"embedding call failed ({result}); {prior}", head=head_path)
        assert isinstance(result, Embedding)
        data: dict[str, Any] = {
            "head": head_path,
            "head_kind": head.info.kind,
            "embed_s": round(result.latency_s, 4),
        }
        if head.info.model and result.model and head.info.model != result.model:
            reason = (
                f"the head was trained on embeddings of {head.info.model}, the backend embeds "
                f"with {result.model}; {prior}"
            )
            return _fallback(request, reason, **data)
        try:
            values = head.predict_values(result.vector, request.task)
        except LearnedHeadError as exc:
            return _fallback(request, f"learned head unusable: {exc}; {prior}", **data)
        reason = f"predicted by the learned head ({head.summary()})"
        return Proposal.uniform(values, ParamSource.LEARNED, reason, **data)


def _fallback(request: ProposalRequest, reason: str, **data: Any) -> Proposal:
    return Proposal.prior(request.task, reason, **data, fallback=True)


__all__ = ["LearnedProposer", "LearnedSettings"]
