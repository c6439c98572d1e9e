"""What the search writes: one `SearchRecord` per case (a JSONL line), and the grid reference.

`GridResult` is the exhaustive grid's result on a case, and `compare` measures a search record
against it.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from hag_agent.hyperparameters import HyperParams

Stage = Literal["default", "prior", "coarse", "rescore", "refine", "grid"]
"""Which step of the search scored a configuration."""


class ScoredConfig(BaseModel):
    """One configuration the search scored."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, float | int]
    """The configuration."""
    score: float
    """Its score on ``samples`` samples."""
    samples: int
    """How many samples the score is over."""
    stage: Stage
    """Which step scored it."""


class SearchRecord(BaseModel):
    """The search's result for one case: one JSONL line, ready for fine-tuning a proposer."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """The case id."""
    task: str
    """The task kind."""
    prompt: str
    """The case prompt (the SFT input)."""
    proposal: str
    """The best configuration as proposal JSON (`HyperParams.to_proposal_json`): the SFT target."""
    params: dict[str, float | int]
    """The best configuration as a dict."""
    score: float
    """The best configuration's score (K samples)."""
    default_score: float
    """`DEFAULT_PARAMS`' score on the same K seeds."""
    prior_score: float
    """The task prior's score on the same K seeds."""
    evaluations: float
    """Evaluations spent: model calls / K."""
    budget: int
    """The budget it ran under."""
    model_calls: int
    """Generation calls made."""
    completion_tokens: int
    """Tokens generated over all calls (where reported)."""
    wall_s: float
    """Wall time of the case (includes waiting for the concurrency limit)."""
    samples: int
    """K."""
    seed: int
    """Base seed (sample i used seed + i)."""
    evaluated: list[ScoredConfig]
    """Every configuration scored, in order, for analysis."""

    def best_params(self) -> HyperParams:
        """The best configuration as `HyperParams`."""
        return HyperParams.model_validate(self.params)


class GridResult(BaseModel):
    """An exhaustive evaluation of the whole ladder grid on one case."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """The case id."""
    params: dict[str, float | int]
    """The grid's best configuration."""
    score: float
    """Its score."""
    default_score: float
    """`DEFAULT_PARAMS`' score on the same seeds."""
    evaluations: int
    """Configurations scored on K samples (the grid size, plus the default if off-grid)."""
    model_calls: int
    """Generation calls made."""
    wall_s: float
    """Wall time."""
    scores: list[ScoredConfig]
    """Every grid configuration's score."""


class Comparison(BaseModel):
    """How a search's result compares with the exhaustive grid's on the same case."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """The case id."""
    fraction_of_optimum: float
    """Search best score / grid best score (1 when both are 0)."""
    gap_closed: float
    """(search - default) / (grid best - default); 1 when the grid cannot beat the default."""
    fraction_of_evaluations: float
    """Search evaluations / grid evaluations."""


def compare(record: SearchRecord, grid: GridResult) -> Comparison:
    """Compare one case's search record with its exhaustive grid result."""
    if grid.score <= 0:
        fraction = 1.0 if record.score <= 0 else math.inf
    else:
        fraction = record.score / grid.score
    headroom = grid.score - grid.default_score
    gap = 1.0 if headroom <= 1e-12 else (record.score - grid.default_score) / headroom
    return Comparison(
        id=record.id,
        fraction_of_optimum=fraction,
        gap_closed=gap,
        fraction_of_evaluations=record.evaluations / max(grid.evaluations, 1),
    )


__all__ = ["Comparison", "GridResult", "ScoredConfig", "SearchRecord", "Stage", "compare"]
