"""Proposer ``learned``: one embedding pass over the prompt, then the head's prediction.

No generation call is made. Whatever stands in the way (no head file given, a file that cannot
be read, a backend without embeddings, a failed embedding call, a head trained on another
model's embeddings) proposes the task prior instead, with the reason in the trace.

The head knows where it was trained (`hag_agent.learned_head.head`), and outside that it defers
to the task prior (trace data ``outside_training: True``): for a task kind its data never held
(decided before any model call), and for a prompt whose embedding is far from every training
prompt's (the similarity and the threshold in the trace). Within it, the keys its data held at
one value (``max_tokens`` in a search that pinned it) come from the prior too (source ``prior``).

Imports NumPy (through the head): the registry imports this module only for proposer
``learned``.
"""

from __future__ import annotations

from typing import Any

from hag_agent.assets import resolve_head
from hag_agent.backends.base import Embedding
from hag_agent.errors import BackendError, EmbeddingsUnsupportedError, LearnedHeadError
from hag_agent.hyperparameters import ParamSource
from hag_agent.learned_head.head import LearnedHead
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
    """The head file (``hag-agent train head``; the run's ``head_path``; ``builtin``: the
    packaged head); None: the prior."""


class LearnedProposer(Proposer):
    """A learned head maps the prompt's embedding (and task kind) to a configuration."""

    name = "learned"
    settings_type = LearnedSettings
    settings: LearnedSettings

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Embed the prompt and let the head predict the configuration.

        The head file is read once per process (again only when it changes), before the
        embedding pass, so an unusable file or a task kind the head never saw costs no model
        call.
        """
        head_path, prior = self.settings.head_path, f"fallback to the {request.task.value} prior"
        if not head_path:
            return _fallback(request, f"no learned head given (head_path, HAG_HEAD_PATH); {prior}")
        try:
            head = load_head_cached(resolve_head(head_path))
        except LearnedHeadError as exc:
            return _fallback(request, f"learned head unusable: {exc}; {prior}", head=head_path)
        scope = head.scope
        if not scope.covers(request.task):
            held = ", ".join(sorted(kind.value for kind in scope.task_kinds or ()))
            reason = (
                f"the learned head's training data held no {request.task.value} requests "
                f"(only {held}); the {request.task.value} prior"
            )
            return _outside(request, reason, head=head_path)
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
            return _predicted(head, request, result.vector, data)
        except LearnedHeadError as exc:
            return _fallback(request, f"learned head unusable: {exc}; {prior}", **data)


def _predicted(
    head: LearnedHead, request: ProposalRequest, vector: list[float], data: dict[str, Any]
) -> Proposal:
    """The head's values for the learned keys; the held ones as `Proposal.within` sets them.

    A prompt far from the training prompts gets the prior's values for all keys.

    Raises:
        HeadMismatchError: When the embedding does not fit the head.
    """
    task = request.task.value
    check = head.guard(vector)
    if check is not None:
        data.update(similarity=check.similarity, threshold=check.threshold)
        if not check.inside:
            reason = (
                f"the prompt is far from the learned head's training prompts (cosine similarity "
                f"{check.similarity:.3f} to the nearest, under its threshold "
                f"{check.threshold:.3f}); the {task} prior"
            )
            return _outside(request, reason, **data)
    values = head.predict_values(vector, request.task)
    reason = f"predicted by the learned head ({head.summary()})"
    proposal = Proposal.uniform(values, ParamSource.LEARNED, reason, **data)
    return proposal.within(head.scope, request.task)


def _fallback(request: ProposalRequest, reason: str, **data: Any) -> Proposal:
    return Proposal.prior(request.task, reason, **data, fallback=True)


def _outside(request: ProposalRequest, reason: str, **data: Any) -> Proposal:
    # Not a failure: the head declines a request it was not trained for.
    return Proposal.prior(request.task, reason, **data, outside_training=True)


__all__ = ["LearnedProposer", "LearnedSettings"]
