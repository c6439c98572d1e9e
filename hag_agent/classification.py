"""Task classification: a fast keyword/pattern classifier and the LLM's structured answer.

The rules classifier is a strategy of its own and the fallback whenever the model's answer is
unusable. Patterns are checked in order of specificity; the first kind with the most hits wins.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.tasks import TaskKind


class TaskChoice(BaseModel):
    """What the classifying model is asked to return (structured output)."""

    model_config = ConfigDict(extra="ignore")

    task: TaskKind
    """One of the task kinds."""
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    """How sure the model is."""


_RULES: list[tuple[TaskKind, tuple[str, ...]]] = [
    (
        TaskKind.TRANSLATION,
        (
            r"\btranslat\w*",
            r"\bin(?:to)? (?:french|german|spanish|italian|chinese|japanese|english|portuguese|"
            r"russian|dutch|korean|arabic|pig latin)\b",
            r"\bfrom (?:french|german|spanish|italian|chinese|japanese|english) to\b",
        ),
    ),
    (
        TaskKind.CODE,
        (
            r"```",
            r"\b(?:python|javascript|typescript|rust|golang|java|c\+\+|sql|bash|regex)\b",
            r"\b(?:function|class|method|compile|bug|stack ?trace|refactor|script|api)\b",
            r"\bdef \w+\(|\bimport \w+|;\s*$",
        ),
    ),
    (
        TaskKind.MATH,
        (
            r"\d+\s*[-+*/x^\u00d7]\s*\d+",
            r"\b(?:calculate|compute|solve|equation|sum|product|percent|how many|how much|"
            r"integral|derivative|multiply|divide|average|remainder)\b",
            r"\b(?:math|arithmetic|algebra)\b",
        ),
    ),
    (
        TaskKind.CREATIVE,
        (
            r"\b(?:write|compose|invent|imagine)\b.*\b(?:story|poem|haiku|song|lyrics|slogan|"
            r"limerick|tale|essay|joke|names?)\b",
            r"\b(?:story|poem|haiku|limerick|fiction|creative|brainstorm|slogan)\b",
            r"\b(?:write|compose)\b.*\b(?:sentence|paragraph)\b.*\b(?:uses?|using|with)\b",
        ),
    ),
    (
        TaskKind.REASONING,
        (
            r"\b(?:if|then|therefore|implies|deduce|logic|puzzle|riddle|true or false|yes or no)\b",
            r"\b(?:flips?|coin|heads up|tails up)\b",
            r"\bstep by step\b|\bwhy\b",
            # symbolic manipulation (the paper's last-letter task, Pig Latin)
            r"\b(?:last|first) letters?\b|\bconcatenat\w*|\bpig latin\b",
        ),
    ),
    (
        TaskKind.FACTUAL,
        (
            r"^\s*(?:who|what|when|where|which)\b",
            r"\b(?:capital of|population|invented|discovered|born|founded|define|definition)\b",
        ),
    ),
]

_COMPILED = [
    (kind, [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in pats]) for kind, pats in _RULES
]


def classify_by_rules(prompt: str) -> tuple[TaskKind, str]:
    """Classify a prompt by keyword and pattern rules.

    Args:
        prompt: The user's query.

    Returns:
        The task kind and the reason (which patterns matched).
    """
    best: tuple[int, TaskKind, list[str]] | None = None
    for kind, patterns in _COMPILED:
        hits = [p.pattern for p in patterns if p.search(prompt)]
        if hits and (best is None or len(hits) > best[0]):
            best = (len(hits), kind, hits)
    if best is None:
        return TaskKind.CHAT, "no rule matched: chat"
    count, kind, hits = best
    return kind, f"rules: {count} pattern(s) for {kind.value}"
