"""Proposer ``learned``: one embedding pass over the prompt, then the head's prediction.

No generation call is made. Whatever stands in the way (no head file given, a file that cannot
be read, a backend without embeddings, a failed embedding call, a head trained on another
model's embeddings) gives no values and the reason, and the propose node uses the task prior.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from hag_agent.backends.base import Embedding
from hag_agent.errors import BackendError, EmbeddingsUnsupportedError, LearnedHeadError
from hag_agent.learned_head.head_file import load_head_cached
from hag_agent.node_driver import CallResult, EmbedCall
from hag_agent.tasks import TaskKind


@dataclass(frozen=True)
class LearnedProposal:
    """What the learned head proposes, or why it proposes nothing."""

    values: dict[str, float | int] | None
    """The predicted values (not yet bounded); None: use the task prior."""
    reason: str
    """What happened, in words (for the trace)."""
    data: dict[str, Any] = field(default_factory=dict)
    """Details for the trace: the head, the embedding pass's time, the fallback."""


def learned_proposal(
    prompt: str, task: TaskKind, head_path: str | None
) -> Generator[EmbedCall, CallResult, LearnedProposal]:
    """Embed the prompt and let the head at ``head_path`` predict the configuration.

    The head file is read once per process (again only when it changes), before the embedding
    pass, so an unusable file costs no model call.
    """
    prior = f"fallback to the {task.value} prior"
    if not head_path:
        return _fallback(f"no learned head given (head_path, HAG_HEAD_PATH); {prior}")
    try:
        head = load_head_cached(head_path)
    except LearnedHeadError as exc:
        return _fallback(f"learned head unusable: {exc}; {prior}", head=head_path)
    result = yield EmbedCall(prompt)
    if isinstance(result, EmbeddingsUnsupportedError):
        return _fallback(f"the backend has no embeddings ({result}); {prior}", head=head_path)
    if isinstance(result, BackendError):
        return _fallback(f"embedding call failed ({result}); {prior}", head=head_path)
    assert isinstance(result, Embedding)
    data: dict[str, Any] = {
        "head": head_path,
        "head_kind": head.info.kind,
        "embed_s": round(result.latency_s, 4),
    }
    if head.info.model and result.model and head.info.model != result.model:
        return _fallback(
            f"the head was trained on embeddings of {head.info.model}, the backend embeds with "
            f"{result.model}; {prior}",
            **data,
        )
    try:
        values = head.predict_values(result.vector, task)
    except LearnedHeadError as exc:
        return _fallback(f"learned head unusable: {exc}; {prior}", **data)
    return LearnedProposal(values, f"predicted by the learned head ({head.summary()})", data)


def _fallback(reason: str, **data: Any) -> LearnedProposal:
    return LearnedProposal(None, reason, {**data, "fallback": True})


__all__ = ["LearnedProposal", "learned_proposal"]
