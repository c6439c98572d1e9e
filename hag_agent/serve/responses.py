"""The response bodies: a chat completion (or its chunks) plus the ``hag`` object, and headers.

The ``hag`` object says what the run decided: the task, each value of the answer's
configuration with its source (``client`` for a sampling value the client sent, then the
graph's own: model, prior, learned, pinned, fixed, retry), every attempt with its critique (not
its text: only the answer is sent), why the run stopped, and the usage by call.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from hag_agent.serve.translation import RunPlan
from hag_agent.serve.turn import Proposal, TurnOutcome
from hag_agent.serve.usage import turn_usage


def completion_id() -> str:
    """A fresh ``chatcmpl-`` id."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def finish_reason(outcome: TurnOutcome) -> str:
    """The chosen attempt's finish reason, as OpenAI names it (``stop`` or ``length``)."""
    chosen = _chosen(outcome.result)
    reason = (chosen or {}).get("finish_reason") or "stop"
    return "length" if reason == "length" else "stop"


def _chosen(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    best = result.get("best_attempt")
    attempts = result.get("attempts") or []
    return attempts[best] if best is not None and best < len(attempts) else None


def hag_object(outcome: TurnOutcome, plan: RunPlan) -> dict[str, Any]:
    """The ``hag`` object of a response."""
    result = outcome.result
    chosen = _chosen(result) or {}
    sources = dict(chosen.get("sources") or {})
    for key in plan.client_pins:
        sources[key] = "client"
    _, breakdown = turn_usage(result.get("attempts") or [], outcome.usage.by_purpose)
    proposal: Mapping[str, Any] = next(
        (t for t in result.get("trace") or [] if t.get("node") == "propose"), {}
    )
    return {
        "task": result.get("task"),
        "proposer": (proposal.get("data") or {}).get("proposer"),
        "params": {
            key: {"value": value, "source": sources.get(key)}
            for key, value in (result.get("params") or {}).items()
        },
        "chosen_attempt": result.get("best_attempt"),
        "attempts": [_attempt_summary(a) for a in result.get("attempts") or []],
        "stop_reason": result.get("stop_reason"),
        "stream": outcome.stream_mode,
        "ignored_client_params": plan.ignored,
        "session": plan.session,
        "usage": breakdown,
    }


def _attempt_summary(attempt: Mapping[str, Any]) -> dict[str, Any]:
    critique = attempt.get("critique")
    return {
        "index": attempt.get("index"),
        "params": attempt.get("params"),
        "sources": attempt.get("sources"),
        "finish_reason": attempt.get("finish_reason"),
        "latency_s": attempt.get("latency_s"),
        "error": attempt.get("error"),
        "critique": None
        if critique is None
        else {k: critique.get(k) for k in ("score", "verdict", "issues", "direction", "source")},
    }


def _envelope(request_id: str, model: str, kind: str, choices: list[Any]) -> dict[str, Any]:
    """The fields every completion and chunk starts with."""
    return {
        "id": request_id,
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


def completion_body(
    outcome: TurnOutcome, plan: RunPlan, model: str, request_id: str
) -> dict[str, Any]:
    """A whole ``chat.completion`` body."""
    usage, _ = turn_usage(outcome.result.get("attempts") or [], outcome.usage.by_purpose)
    message = {"role": "assistant", "content": outcome.result.get("answer", "")}
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(outcome),
    }
    body = _envelope(request_id, model, "chat.completion", [choice])
    return {**body, "usage": usage, "hag": hag_object(outcome, plan)}


def chunk_body(
    request_id: str,
    model: str,
    delta: Mapping[str, Any],
    finish: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` (``extra`` adds top-level fields: usage, hag)."""
    choice = {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}
    return {**_envelope(request_id, model, "chat.completion.chunk", [choice]), **extra}


def usage_chunk(request_id: str, model: str, outcome: TurnOutcome) -> dict[str, Any]:
    """The last chunk of a stream asked for usage: no choices, the turn's usage."""
    usage, _ = turn_usage(outcome.result.get("attempts") or [], outcome.usage.by_purpose)
    return {**_envelope(request_id, model, "chat.completion.chunk", []), "usage": usage}


def hag_headers(outcome: TurnOutcome, plan: RunPlan) -> dict[str, str]:
    """The ``x-hag-*`` headers of a whole response."""
    hag = hag_object(outcome, plan)
    params = {key: entry["value"] for key, entry in hag["params"].items()}
    headers = {
        "x-hag-task": str(hag["task"]),
        "x-hag-proposer": str(hag["proposer"]),
        "x-hag-attempts": str(len(hag["attempts"])),
        "x-hag-chosen-attempt": str(hag["chosen_attempt"]),
        "x-hag-params": json.dumps(params, separators=(",", ":")),
        "x-hag-stop-reason": _header_text(str(hag["stop_reason"])),
    }
    if plan.ignored:
        headers["x-hag-ignored-params"] = ",".join(plan.ignored)
    return headers


def proposal_headers(proposal: Proposal, plan: RunPlan) -> dict[str, str]:
    """The ``x-hag-*`` headers of a stream, sent before its first token: what was proposed.

    ``x-hag-proposed-params`` is the first attempt's configuration (the answer's when the run
    can make one attempt); a retry may change it, and the last chunk's ``hag`` object has the
    chosen attempt's, with the attempts and the stop reason.
    """
    sources = {**proposal.sources, **dict.fromkeys(plan.client_pins, "client")}
    headers = {
        "x-hag-task": str(proposal.task),
        "x-hag-proposer": str(proposal.proposer),
        "x-hag-proposed-params": json.dumps(proposal.params, separators=(",", ":")),
        "x-hag-param-sources": json.dumps(sources, separators=(",", ":")),
    }
    if plan.ignored:
        headers["x-hag-ignored-params"] = ",".join(plan.ignored)
    return headers


def _header_text(text: str) -> str:
    """Header-safe: ASCII, one line."""
    return text.encode("ascii", "replace").decode().replace("\n", " ")[:200]


__all__ = [
    "chunk_body",
    "completion_body",
    "completion_id",
    "finish_reason",
    "hag_headers",
    "hag_object",
    "proposal_headers",
    "usage_chunk",
]
