"""Critique of one attempt: objective signals first, then an optional LLM judge.

Self-correction without outside signals often fails on reasoning (Huang et al. 2024), so the
score leans on what can be measured in the text itself: empty output, a cut-off at max_tokens,
repetition (distinct-n), a math answer with no final number, an echo of the prompt, garbled
text, and (where the backend gives logprobs) low confidence on math. The judge can only lower
the score, never rescue an output the signals condemned.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from enum import StrEnum
from typing import Any

from langchain_core.utils.json import parse_json_markdown
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.v1 import BaseModel as BaseModelV1

from hag_agent.ngrams import WORD, distinct_ratio
from hag_agent.tasks import TaskKind


class Direction(StrEnum):
    """Which way the next attempt's parameters should move."""

    NONE = "none"
    LESS_REPETITION = "less_repetition"
    LONGER = "longer"
    MORE_FOCUSED = "more_focused"
    MORE_VARIED = "more_varied"
    MORE_DETERMINISTIC = "more_deterministic"


class Critique(BaseModel):
    """The verdict on one attempt."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(ge=0.0, le=1.0)
    """Quality in [0, 1]; the attempt is accepted at or above the run's threshold."""
    verdict: str
    """``accept`` or ``retry`` against the run's threshold."""
    issues: list[str] = Field(default_factory=list)
    """Problems found, each a short phrase."""
    direction: Direction = Direction.NONE
    """Suggested change for a retry."""
    signals: dict[str, float] = Field(default_factory=dict)
    """The measured objective signals (distinct-2, echo similarity, ...)."""
    source: str = "signals"
    """``signals``, ``signals+judge``, or ``signals (judge fallback: ...)``."""


class JudgeVerdict(BaseModel):
    """What the LLM judge is asked to return (structured output)."""

    model_config = ConfigDict(extra="ignore")

    score: int = Field(ge=1, le=10)
    """Overall quality from 1 (useless) to 10 (excellent)."""
    issues: list[str] = Field(default_factory=list)
    """Problems the judge found."""
    direction: Direction = Direction.NONE
    """The change the judge suggests."""


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")

# Minimum words before distinct-n means anything.
_MIN_WORDS_FOR_REPETITION = 12
REPETITION_THRESHOLD = 0.5
"""Distinct-2 below this marks an output as repetitive."""
ECHO_THRESHOLD = 0.9
"""Similarity to the prompt above this marks an output as an echo."""
MATH_LOGPROB_THRESHOLD = -1.5
"""Mean token logprob below this marks a math answer as uncertain."""


def echo_similarity(output: str, prompt: str) -> float:
    """How closely the output repeats the prompt, in [0, 1]."""
    out = " ".join(output.lower().split())
    inp = " ".join(prompt.lower().split())
    if not out or not inp:
        return 0.0
    return SequenceMatcher(None, out, inp, autojunk=False).ratio()


def garbled_fraction(text: str) -> float:
    """Fraction of non-space characters that are neither word characters nor common punctuation."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    odd = sum(1 for c in chars if not (c.isalnum() or c in ".,;:!?'\"()[]{}-_/*+=<>%$#@&^|\\`~"))
    return odd / len(chars)


def has_final_number(text: str) -> bool:
    """Whether the text states a number (the final answer of a math task)."""
    return bool(_NUMBER.search(text))


def measure_signals(
    *,
    output: str,
    prompt: str,
    task: TaskKind,
    finish_reason: str | None,
    mean_logprob: float | None,
) -> tuple[float, list[str], Direction, dict[str, float]]:
    """Score an output from objective signals alone.

    Returns:
        The score in [0, 1], the issues found, the most pressing direction, and the figures.
    """
    text = output.strip()
    words = WORD.findall(text)
    figures: dict[str, float] = {"words": float(len(words))}
    if not text:
        return 0.0, ["empty output"], Direction.MORE_VARIED, figures
    score = 1.0
    issues: list[str] = []
    # Ordered by how much each one says about the decoding settings.
    directions: list[Direction] = []
    # A text too short for a bigram repeats nothing.
    ratio = distinct_ratio([text], 2)
    d2 = 1.0 if ratio is None else ratio
    figures["distinct_2"] = round(d2, 4)
    if len(words) >= _MIN_WORDS_FOR_REPETITION and d2 < REPETITION_THRESHOLD:
        score -= 0.5
        issues.append(f"repetitive (distinct-2 {d2:.2f})")
        directions.append(Direction.LESS_REPETITION)
    garbled = garbled_fraction(text)
    figures["garbled"] = round(garbled, 4)
    if garbled > 0.3:
        score -= 0.5
        issues.append(f"garbled text ({garbled:.0%} odd characters)")
        directions.append(Direction.MORE_FOCUSED)
    if finish_reason == "length":
        score -= 0.4
        issues.append("cut off at max_tokens")
        directions.append(Direction.LONGER)
    echo = echo_similarity(text, prompt)
    figures["echo"] = round(echo, 4)
    if echo >= ECHO_THRESHOLD:
        score -= 0.6
        issues.append(f"echoes the prompt (similarity {echo:.2f})")
        directions.append(Direction.MORE_VARIED)
    if task is TaskKind.MATH:
        if not has_final_number(text):
            score -= 0.5
            issues.append("no final number")
            directions.append(Direction.MORE_DETERMINISTIC)
        if mean_logprob is not None:
            figures["mean_logprob"] = round(mean_logprob, 4)
            if mean_logprob < MATH_LOGPROB_THRESHOLD:
                score -= 0.3
                issues.append(f"uncertain (mean logprob {mean_logprob:.2f})")
                directions.append(Direction.MORE_DETERMINISTIC)
    direction = directions[0] if directions else Direction.NONE
    return max(0.0, min(1.0, score)), issues, direction, figures


def combine(
    *,
    signal_score: float,
    signal_issues: list[str],
    signal_direction: Direction,
    figures: dict[str, float],
    judge: JudgeVerdict | None,
    judge_note: str | None,
    threshold: float,
) -> Critique:
    """Merge signals and the judge into one critique; the judge can only lower the score."""
    score = signal_score
    issues = list(signal_issues)
    direction = signal_direction
    source = "signals"
    if judge is not None:
        judge_score = (judge.score - 1) / 9
        figures = {**figures, "judge_score": float(judge.score)}
        score = min(score, judge_score)
        issues.extend(f"judge: {issue}" for issue in judge.issues)
        if direction is Direction.NONE:
            direction = judge.direction
        source = "signals+judge"
    elif judge_note:
        source = f"signals (judge fallback: {judge_note})"
    score = round(score, 4)
    verdict = "accept" if score >= threshold else "retry"
    return Critique(
        score=score,
        verdict=verdict,
        issues=issues,
        direction=direction,
        signals=figures,
        source=source,
    )


def critique_tool_calls(
    calls: list[dict[str, Any]],
    unreadable: list[dict[str, Any]],
    known_names: frozenset[str] | None,
    threshold: float,
) -> Critique:
    """The verdict on an answer that calls tools: its form, not its prose.

    Well-formed (every call parsed, each naming a bound tool when the names are known) is
    accepted as it is: sampling again could only change a good call. Otherwise the next attempt
    is asked to be more deterministic.
    """
    issues = [
        f"unreadable call of {call.get('name') or 'a tool'}: {call.get('error') or 'bad arguments'}"
        for call in unreadable
    ]
    if known_names is not None:
        issues += [
            f"call of unknown tool {c.get('name')!r}"
            for c in calls
            if c.get("name") not in known_names
        ]
    return _form_verdict(issues, threshold, "tool calls")


def critique_structured(output: str, schema: Any, threshold: float) -> Critique:
    """The verdict on an answer that must be a JSON object of ``schema``: valid or not.

    ``schema`` is a type pydantic validates (a model, a TypedDict) or a JSON schema dict, of
    which the object's required keys are checked. JSON in a Markdown fence counts, as LangChain's
    parsers read it. Valid is accepted as it is; invalid is retried more deterministically.
    """
    try:
        value = parse_json_markdown(output)
        if isinstance(schema, type) and issubclass(schema, BaseModelV1):
            schema.parse_obj(value)  # a pydantic v1 model, which LangChain's parsers still take
        elif isinstance(schema, type):
            TypeAdapter(schema).validate_python(value)
        elif not isinstance(value, dict):
            raise ValueError(f"a JSON {type(value).__name__}, not an object")
        else:
            required = schema.get("required") or schema.get("parameters", {}).get("required", [])
            if missing := [key for key in required if key not in value]:
                raise ValueError(f"missing {', '.join(map(str, missing))}")
        issues: list[str] = []
    except ValueError as exc:  # JSON's and pydantic's errors are ValueErrors
        name = getattr(schema, "__name__", None) or schema.get("title") or "the schema"
        issues = [f"not a valid {name}: {str(exc).splitlines()[0]}"]
    return _form_verdict(issues, threshold, "output schema")


def _form_verdict(issues: list[str], threshold: float, source: str) -> Critique:
    """Well-formed (no issues) scores 1 and is accepted; otherwise 0, more deterministic next."""
    score = 0.0 if issues else 1.0
    return Critique(
        score=score,
        verdict="accept" if score >= threshold else "retry",
        issues=issues,
        direction=Direction.MORE_DETERMINISTIC if issues else Direction.NONE,
        source=source,
    )
