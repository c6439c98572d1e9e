"""How well a model proposes on held-out cases: strict parse rate and error per parameter.

A model is asked exactly what the ``self`` proposer asks at run time (`proposal_prompt`, one user
message, the model's chat template with the generation prompt) and answers greedily. Each answer
is read with `parse_proposal` against the task prior:

- **parsed** (strict, before any fallback): the whole proposal was usable and every one of the six
  keys came from the model's text. A proposal replaced by the prior, or missing a key that the
  prior had to fill, does not count. Values the bounds policy clamped still count as parsed.
- **MAE** per parameter (`held_out_error`): the mean absolute difference between the
  configuration the graph would use (the parsed proposal, with the prior wherever it fell back)
  and the search's best configuration, over every held-out case.

Scoring needs no training packages; `generate_proposals` needs torch and transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.data.search_records import SearchRecord
from hag_agent.hyperparameters import DecodingBounds, HyperParams, ParamSource
from hag_agent.proposal import ParsedProposal, parse_proposal
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.training.held_out_error import mean_absolute_errors
from hag_agent.training.sft_data import sft_example


class HeldOutCase(BaseModel):
    """One held-out case as one model proposed it (a line of ``held_out.jsonl``)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """The case id."""
    task: str
    """The task kind."""
    proposer: str
    """Which model proposed: ``tuned`` or ``base``."""
    raw: str
    """The model's text, as generated."""
    parsed: bool
    """Strictly parsed (see the module docstring)."""
    fallback_reason: str | None = None
    """Why the proposal was replaced by the prior, if it was."""
    params: dict[str, float | int]
    """The configuration the graph would use."""
    target: dict[str, float | int]
    """The search's best configuration."""


class ProposerScore(BaseModel):
    """One model's proposals over the held-out cases."""

    model_config = ConfigDict(extra="forbid")

    cases: int
    """Held-out cases asked."""
    parsed: int
    """Proposals strictly parsed."""
    parse_rate: float | None
    """``parsed / cases`` (None without cases)."""
    mae: dict[str, float] = Field(default_factory=dict)
    """Mean absolute error per parameter against the search's best (fallbacks included)."""


def strictly_parsed(parsed: ParsedProposal) -> bool:
    """True when no fallback happened and every key came from the model's text."""
    return parsed.fallback_reason is None and all(
        source is ParamSource.MODEL for source in parsed.sources.values()
    )


def score_proposals(
    records: Sequence[SearchRecord],
    texts: Sequence[str],
    proposer: str,
    bounds: DecodingBounds | None = None,
) -> tuple[ProposerScore, list[HeldOutCase]]:
    """Score one model's proposal texts against the records' best configurations.

    Args:
        records: The held-out records.
        texts: The model's proposal for each record, in the same order.
        proposer: A label for the model (``tuned``, ``base``).
        bounds: The bounds policy (the default one if None).

    Returns:
        The summary and one `HeldOutCase` per record.
    """
    if len(records) != len(texts):
        raise ValueError(f"{len(records)} records but {len(texts)} proposals")
    bounds = bounds or DecodingBounds()
    cases: list[HeldOutCase] = []
    used: list[HyperParams] = []
    for record, text in zip(records, texts, strict=True):
        parsed = parse_proposal(text, prior=TASK_PRIORS[TaskKind(record.task)], bounds=bounds)
        used.append(parsed.params)
        cases.append(
            HeldOutCase(
                id=record.id,
                task=record.task,
                proposer=proposer,
                raw=text,
                parsed=strictly_parsed(parsed),
                fallback_reason=parsed.fallback_reason,
                params=parsed.params.model_dump(),
                target=record.best_params().model_dump(),
            )
        )
    n = len(cases)
    good = sum(case.parsed for case in cases)
    score = ProposerScore(
        cases=n,
        parsed=good,
        parse_rate=good / n if n else None,
        mae=mean_absolute_errors(used, [record.best_params() for record in records]),
    )
    return score, cases


def generate_proposals(
    model: Any,
    tokenizer: Any,
    records: Sequence[SearchRecord],
    *,
    max_new_tokens: int = 96,
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy proposals of a transformers causal LM for each record's run-time request.

    Args:
        model: A transformers (or PEFT) causal LM.
        tokenizer: Its tokenizer, with a chat template.
        records: The cases.
        max_new_tokens: Generation cap per proposal.
        batch_size: Prompts generated together (left-padded).
        on_batch: Called with the number of cases each finished batch covered.

    Returns:
        The generated text of each record (special tokens removed), in order.
    """
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    was_training = model.training
    model.eval()
    texts: list[str] = []
    try:
        for start in range(0, len(records), max(1, batch_size)):
            batch = records[start : start + max(1, batch_size)]
            prompts = [
                tokenizer.apply_chat_template(
                    sft_example(record)["prompt"], add_generation_prompt=True, tokenize=False
                )
                for record in batch
            ]
            inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                output = model.generate(
                    **inputs,
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            texts.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
            if on_batch is not None:
                on_batch(len(batch))
    finally:
        tokenizer.padding_side = side
        if was_training:
            model.train()
    return [text.strip() for text in texts]


__all__ = [
    "HeldOutCase",
    "ProposerScore",
    "generate_proposals",
    "score_proposals",
    "strictly_parsed",
]
