"""What an evaluation compares and how: proposers, seeds, critique and concurrency.

Proposer names are the registry's (`hag_agent.proposing`), and each proposer's needs are
checked here once, before any run: a head file for ``learned``, a search file for ``oracle``, a
fitted-priors file for ``fitted-prior``, a tuned proposer for ``self-tuned``, and any proposer's
options against its settings type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hag_agent.proposing import ProposerName, proposer_class, proposer_names, validated_settings


def _default_proposers() -> list[str]:
    return ["default", "random", "prior", "self"]


# What a built-in proposer needs from the settings to be compared, and how to give it.
_NEEDS: dict[str, tuple[str, str]] = {
    "learned": ("head_path", "a head file (--head FILE, from `train head`)"),
    "oracle": ("search_file", "--search FILE (from `hag-agent dataset search`)"),
    "fitted-prior": ("priors_file", "--priors FILE (from `hag-agent train prior`)"),
    "self-tuned": (
        "tuned_proposer",
        "the tuned proposer (--tuned-proposer: a served model or a GGUF LoRA)",
    ),
}


class EvalSettings(BaseModel):
    """What to compare and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proposers: list[ProposerName] = Field(default_factory=_default_proposers)
    """Proposers to compare, in report order (a name given twice counts once)."""
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
    search_file: Path | None = None
    """Search records giving proposer ``oracle`` each case's best configuration."""
    priors_file: Path | None = None
    """The per-task configurations of proposer ``fitted-prior`` (``hag-agent train prior``)."""
    proposer_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """More options by proposer name (e.g. a plugin's), checked by its settings type."""

    @field_validator("proposers")
    @classmethod
    def _distinct_and_some(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError(f"no proposer given; valid proposers: {', '.join(proposer_names())}")
        return list(dict.fromkeys(names))

    @model_validator(mode="after")
    def _each_proposer_has_what_it_needs(self) -> EvalSettings:
        # Checked here, before any run, rather than failing every row of a proposer alike.
        for name in self.proposers:
            need = _NEEDS.get(name)
            if need is not None and getattr(self, need[0]) is None:
                raise ValueError(f"proposer {name} needs {need[1]}")
            validated_settings(proposer_class(name), self.options_for(name))
        return self

    def options_for(self, name: str) -> dict[str, Any]:
        """The ``proposer_options`` of proposer ``name``'s runs.

        The settings above that its settings type declares (``head_path``, ``search_file``),
        then its entry of ``proposer_options``.
        """
        fields = proposer_class(name).settings_type.model_fields
        given = {k: getattr(self, k) for k in fields if k in type(self).model_fields}
        options = {k: v for k, v in given.items() if v is not None}
        return {**options, **self.proposer_options.get(name, {})}

    def seed_list(self) -> list[int]:
        """The seeds, in order."""
        return [self.base_seed + i for i in range(self.seeds)]


__all__ = ["EvalSettings"]
