"""Token usage of a whole turn: every attempt and every decision call (classify, propose, judge).

Attempts report their own counts in the state. Decision calls are counted by a callback on the
turn's LangChain calls, by their ``hag:<purpose>`` tag; a decision made without a chat model call
(the embedded backend decodes the proposal's numbers itself) has no count to report, and the
breakdown says so by its absence.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from pydantic import BaseModel


class Tokens(BaseModel):
    """Prompt and completion tokens of some calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def plus(self, prompt: int, completion: int) -> Tokens:
        """These counts with one more call added."""
        return Tokens(
            prompt_tokens=self.prompt_tokens + prompt,
            completion_tokens=self.completion_tokens + completion,
            calls=self.calls + 1,
        )


class DecisionUsage(BaseCallbackHandler):
    """Counts the tokens of a turn's decision calls, by purpose."""

    run_inline = True  # plain additions: no thread hop needed on the event loop

    def __init__(self) -> None:
        self.by_purpose: dict[str, Tokens] = {}
        self._lock = threading.Lock()

    def on_llm_end(
        self, response: LLMResult, *, tags: Sequence[str] | None = None, **kwargs: Any
    ) -> None:
        """Add one finished call's usage under its purpose (generations are counted apart)."""
        purpose = next((t[4:] for t in tags or () if t.startswith("hag:")), None)
        if purpose is None or purpose == "generate":
            return
        prompt, completion = _usage_of(response)
        with self._lock:
            self.by_purpose[purpose] = self.by_purpose.get(purpose, Tokens()).plus(
                prompt, completion
            )


def _usage_of(response: LLMResult) -> tuple[int, int]:
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration) and isinstance(generation.message, AIMessage):
                usage = generation.message.usage_metadata
                if usage:
                    return int(usage["input_tokens"]), int(usage["output_tokens"])
    token_usage = (response.llm_output or {}).get("token_usage") or {}
    return int(token_usage.get("prompt_tokens", 0)), int(token_usage.get("completion_tokens", 0))


def turn_usage(
    attempts: Sequence[Mapping[str, Any]], decisions: Mapping[str, Tokens]
) -> tuple[dict[str, int], dict[str, Any]]:
    """The OpenAI ``usage`` object of a turn, and its breakdown by call.

    Args:
        attempts: The run's attempts (as JSON), each with its own counts.
        decisions: Decision calls' counts by purpose.
    """
    generated = Tokens()
    per_attempt: list[dict[str, int]] = []
    for attempt in attempts:
        prompt = int(attempt.get("prompt_tokens") or 0)
        completion = int(attempt.get("completion_tokens") or 0)
        generated = generated.plus(prompt, completion)
        per_attempt.append({"prompt_tokens": prompt, "completion_tokens": completion})
    prompt_total = generated.prompt_tokens + sum(t.prompt_tokens for t in decisions.values())
    completion_total = generated.completion_tokens + sum(
        t.completion_tokens for t in decisions.values()
    )
    usage = {
        "prompt_tokens": prompt_total,
        "completion_tokens": completion_total,
        "total_tokens": prompt_total + completion_total,
    }
    breakdown = {
        "attempts": per_attempt,
        "decisions": {name: tokens.model_dump() for name, tokens in decisions.items()},
    }
    return usage, breakdown


__all__ = ["DecisionUsage", "Tokens", "turn_usage"]
