"""The proposal format: compact JSON with exactly the HyperParams keys, and its robust parser.

The same text is what the model emits at run time and the SFT target in the data set. Parsing is
lenient (prose, fences, single quotes, trailing commas, numbers as strings); values are then
bounded by the policy, and anything unusable falls back to the task prior, with the reason kept.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.hyperparameters import (
    HYPERPARAM_KEYS,
    ClampRecord,
    DecodingBounds,
    HyperParams,
    ParamSource,
)
from hag_agent.lenient_json import NoJSONObjectError, extract_json_object
from hag_agent.prompt_templates import render
from hag_agent.tasks import TASK_PRIORS, TaskKind

IMPLAUSIBLE_CLAMPS = 3
"""A proposal with this many values out of range is replaced by the prior, not clamped."""
REQUEST_HEAD_CHARS = 400
REQUEST_TAIL_CHARS = 100
"""A longer request is shown to the proposer by its start and its end only. The proposal's
prompt shares nothing with the answer's but the template's start (its instructions come first),
so every character of the request is read twice; clipped, a long request costs the proposal a
bounded ~130 tokens, about what its instructions cost when they came after the request. The
training data's requests are all shorter (under 300 characters)."""


def proposal_prompt(task: TaskKind, prompt: str) -> str:
    """The request the ``self`` proposer sends: also the prompt of every fine-tuning example.

    The instructions and the example come first and the request last, so every proposal of a
    task kind starts with the same text (`proposal_preamble`), which a backend can evaluate once
    and keep. Ranges are left out: they cost ~60 prompt tokens on every call and the policy
    clamps whatever comes back anyway.
    """
    if len(prompt) > REQUEST_HEAD_CHARS + REQUEST_TAIL_CHARS:
        prompt = f"{prompt[:REQUEST_HEAD_CHARS]}\n[...]\n{prompt[-REQUEST_TAIL_CHARS:]}"
    return render(
        "propose", task=task.value, example=TASK_PRIORS[task].to_proposal_json(), prompt=prompt
    )


def proposal_preamble(task: TaskKind) -> str:
    """The text every proposal prompt of ``task`` starts with: all of it but the request."""
    marker = "\ue000"  # a private-use character no template holds
    text = proposal_prompt(task, marker)
    return text[: text.index(marker)]


class ProposalSchema(BaseModel):
    """The JSON schema a proposing model is constrained to (numbers only, no bounds)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repetition_penalty: float
    max_tokens: int


class ParsedProposal(BaseModel):
    """What became of one proposal text."""

    model_config = ConfigDict(extra="forbid")

    params: HyperParams
    """The bounded configuration (the prior wherever the proposal was unusable)."""
    sources: dict[str, ParamSource]
    """Where each value came from."""
    clamps: list[ClampRecord] = Field(default_factory=list)
    """Values the bounds policy changed."""
    fallback_reason: str | None = None
    """Why the whole proposal was replaced by the prior, if it was."""
    notes: list[str] = Field(default_factory=list)
    """Smaller repairs: missing keys filled, unknown keys ignored."""


def parse_proposal(
    text: str,
    *,
    prior: HyperParams,
    bounds: DecodingBounds,
    source: ParamSource = ParamSource.MODEL,
) -> ParsedProposal:
    """Turn proposal text into bounded HyperParams, never raising on bad text.

    Args:
        text: The model's output.
        prior: Values for missing or unusable keys, and for a wholly unusable proposal.
        bounds: The policy that clamps every value.
        source: Where parsed values came from.

    Returns:
        The bounded configuration with its provenance and repairs.
    """
    try:
        raw = extract_json_object(text)
    except NoJSONObjectError as exc:
        return _fallback(prior, bounds, f"unparseable proposal: {exc}")
    values: dict[str, Any] = {}
    notes: list[str] = []
    lowered = {str(k).strip().lower(): v for k, v in raw.items()}
    for key in HYPERPARAM_KEYS:
        if key in lowered:
            values[key] = lowered[key]
    unknown = sorted(set(lowered) - set(HYPERPARAM_KEYS))
    if unknown:
        notes.append(f"ignored unknown keys: {', '.join(unknown)}")
    if not values:
        return _fallback(prior, bounds, "proposal has none of the hyperparameter keys")
    missing = [k for k in HYPERPARAM_KEYS if k not in values]
    if missing:
        notes.append(f"missing keys from the prior: {', '.join(missing)}")
    sources = {k: (source if k in values else ParamSource.PRIOR) for k in HYPERPARAM_KEYS}
    params, clamps = bounds.clamp(values, sources, prior)
    for record in clamps:
        if record.bound.startswith("not a finite number"):
            sources[record.key] = ParamSource.PRIOR
    if all(src is ParamSource.PRIOR for src in sources.values()):
        return _fallback(prior, bounds, "proposal has no usable value")
    out_of_range = [c.key for c in clamps if c.source is source]
    if len(out_of_range) >= IMPLAUSIBLE_CLAMPS:
        # A model that misses most ranges has not understood the task (the untuned 135M model
        # answers {"temperature": 23, "top_p": 23, ...}); clamping would keep only its noise.
        return _fallback(
            prior,
            bounds,
            f"implausible proposal: {len(out_of_range)} values out of range "
            f"({', '.join(out_of_range)})",
        )
    return ParsedProposal(params=params, sources=sources, clamps=clamps, notes=notes)


def _fallback(prior: HyperParams, bounds: DecodingBounds, reason: str) -> ParsedProposal:
    sources = dict.fromkeys(HYPERPARAM_KEYS, ParamSource.PRIOR)
    params, clamps = bounds.clamp(prior.model_dump(), sources, prior)
    return ParsedProposal(params=params, sources=sources, clamps=clamps, fallback_reason=reason)
