"""What an evaluation compares and how: proposers, seeds, critique and concurrency."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hag_agent.evaluation.proposers import ProposerName


def _default_proposers() -> list[ProposerName]:
    return ["default", "random", "prior", "self"]


class EvalSettings(BaseModel):
    """What to compare and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proposers: list[ProposerName] = Field(default_factory=_default_proposers)
    """Proposers to compare."""
    seeds: int = Field(default=1, ge=1, le=1000)
    """How many seeds: ``base_seed .. base_seed + seeds - 1``."""
    base_seed: int = Field(default=0, ge=0)
    """The first seed."""
    critique: bool = False
    """Critique and retry (off: one attempt, the paper's single-shot setting)."""
    max_retries: int | None = Field(default=None, ge=0, le=10)
    """Retries when critique is on (None: the run default)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Pin max_tokens for every proposer (None: each proposer's own)."""
    concurrency: int = Field(default=1, ge=1, le=256)
    """Runs in flight at once."""
    stop_on_error: bool = False
    """Stop taking new runs after the first failed one."""
    head_path: str | None = None
    """The learned head file, for proposer ``learned``."""
    tuned_proposer: str | None = None
    """The fine-tuned proposer for ``self-tuned``: a served model name or a GGUF LoRA file."""

    @model_validator(mode="after")
    def _learned_has_a_head(self) -> EvalSettings:
        # Checked here, before any run, rather than failing every learned row alike.
        if "learned" in self.proposers and self.head_path is None:
            raise ValueError("proposer learned needs a head file (--head FILE, from `train head`)")
        return self

    def seed_list(self) -> list[int]:
        """The seeds, in order."""
        return [self.base_seed + i for i in range(self.seeds)]


__all__ = ["EvalSettings"]
