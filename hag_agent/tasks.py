"""Task kinds and the prior decoding configuration of each.

The priors encode the paper's preliminary findings (Wang et al. 2024, section 3) and common
practice: factual, mathematical and code answers want near-greedy decoding; translation wants
low temperature with a mild repetition penalty; creative writing wants high temperature with a
min-p floor to keep it coherent; chat sits in between. They are the fallback for any proposal
the model gets wrong, and the `prior` proposer's answer.

| task        | temp | top_p | top_k | min_p | rep. pen. | max_tokens |
|-------------|------|-------|-------|-------|-----------|------------|
| math        | 0.1  | 0.90  | 20    | 0.00  | 1.00      | 512        |
| reasoning   | 0.3  | 0.90  | 40    | 0.00  | 1.05      | 384        |
| translation | 0.2  | 0.90  | 40    | 0.00  | 1.05      | 256        |
| creative    | 1.0  | 0.95  | 0     | 0.05  | 1.15      | 512        |
| code        | 0.2  | 0.95  | 0     | 0.00  | 1.00      | 768        |
| factual     | 0.1  | 0.90  | 20    | 0.00  | 1.05      | 256        |
| chat        | 0.7  | 0.90  | 40    | 0.05  | 1.10      | 384        |
"""

from __future__ import annotations

from enum import StrEnum

from hag_agent.hyperparameters import HyperParams


class TaskKind(StrEnum):
    """What a query asks for; decides the prior and some critique signals."""

    MATH = "math"
    REASONING = "reasoning"
    TRANSLATION = "translation"
    CREATIVE = "creative"
    CODE = "code"
    FACTUAL = "factual"
    CHAT = "chat"


TASK_DESCRIPTIONS: dict[TaskKind, str] = {
    TaskKind.MATH: "arithmetic, algebra, word problems with a numeric answer",
    TaskKind.REASONING: "logic puzzles, yes/no reasoning, multi-step deduction",
    TaskKind.TRANSLATION: "translating text between languages",
    TaskKind.CREATIVE: "stories, poems, slogans, brainstorming, open-ended writing",
    TaskKind.CODE: "writing, explaining or fixing program code",
    TaskKind.FACTUAL: "questions with one correct factual answer",
    TaskKind.CHAT: "greetings, small talk, advice, anything else",
}


def _prior(
    temperature: float,
    top_p: float,
    top_k: int,
    min_p: float,
    repetition_penalty: float,
    max_tokens: int,
) -> HyperParams:
    return HyperParams(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        max_tokens=max_tokens,
    )


TASK_PRIORS: dict[TaskKind, HyperParams] = {
    TaskKind.MATH: _prior(0.1, 0.90, 20, 0.00, 1.00, 512),
    TaskKind.REASONING: _prior(0.3, 0.90, 40, 0.00, 1.05, 384),
    TaskKind.TRANSLATION: _prior(0.2, 0.90, 40, 0.00, 1.05, 256),
    TaskKind.CREATIVE: _prior(1.0, 0.95, 0, 0.05, 1.15, 512),
    TaskKind.CODE: _prior(0.2, 0.95, 0, 0.00, 1.00, 768),
    TaskKind.FACTUAL: _prior(0.1, 0.90, 20, 0.00, 1.05, 256),
    TaskKind.CHAT: _prior(0.7, 0.90, 40, 0.05, 1.10, 384),
}
"""The documented prior configuration of each task kind (see the module docstring)."""

DEFAULT_PARAMS = _prior(1.0, 1.0, 0, 0.0, 1.0, 512)
"""Decoder defaults (vLLM/OpenAI): the paper's "default" baseline."""
