"""An exhaustive-grid plan: every case under every configuration of a fixed grid, K samples each.

The adaptive search (`hag_agent.search.strategies.TwoStageSearch`) spends a few dozen evaluations
per case through a served model. Where a GPU can run the model in-process, sampling the whole grid
for all cases at once is cheaper per evaluation and gives every case the same, larger K, so its
best configuration is less often a lucky draw. The plan is the hand-off: `build_plan` writes it,
`hag_agent.search.grid_sampler` samples it anywhere torch runs, and `hag_agent.search.grid_scoring`
scores the samples through the search engine into ordinary `SearchRecord` lines.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hag_agent.data.suites import SuiteCase
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.search.space import SearchSpace
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS

DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "temperature": (0.2, 0.4, 0.7, 1.0, 1.3),
    "top_p": (0.7, 0.9, 1.0),
    "top_k": (10, 40, 0),
    "repetition_penalty": (1.0, 1.1, 1.2),
}
"""The sampled grid (product of these); greedy decoding (temperature 0) is added per penalty."""


class PlanCase(BaseModel):
    """What the sampler needs of a case."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """The case id."""
    task: str
    """The task kind."""
    prompt: str
    """The prompt, sent as one user message."""


class GridPlan(BaseModel):
    """Cases x configurations x K seeds, as one JSON file."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(ge=1, le=256)
    """K: samples per (case, configuration)."""
    seed: int = Field(ge=0)
    """Configuration i is sampled with seed ``seed + i``."""
    max_tokens: int = Field(ge=1)
    """Held max_tokens of every configuration."""
    cases: list[PlanCase] = Field(min_length=1)
    """The cases, in order."""
    configs: list[dict[str, float | int]] = Field(min_length=1)
    """The configurations (full `HyperParams` dicts)."""
    labels: list[str]
    """Per configuration: ``default``, ``prior:TASK`` or ``grid``."""

    @model_validator(mode="after")
    def _aligned(self) -> GridPlan:
        if len(self.labels) != len(self.configs):
            raise ValueError("labels and configs differ in length")
        ids = [case.id for case in self.cases]
        if len(set(ids)) != len(ids):
            raise ValueError("case ids repeat")
        bounds = DecodingBounds()
        for config in self.configs:
            bounds.check(config, what="plan config")
        return self

    def params(self, index: int) -> HyperParams:
        """Configuration ``index`` as `HyperParams`."""
        return HyperParams.model_validate(self.configs[index])


def build_plan(
    cases: Sequence[SuiteCase],
    *,
    samples: int,
    max_tokens: int,
    seed: int = 0,
    grid: dict[str, tuple[float, ...]] | None = None,
) -> GridPlan:
    """The default, each present task's prior, then the grid in a seeded shuffled order.

    The shuffle makes a run cut at a deadline a random subset of the grid rather than one
    corner of it; the default and the priors come first because every record needs them.
    """
    values = grid or DEFAULT_GRID
    space = SearchSpace(ladders=values, coarse=values)  # checks keys, bounds and order
    base = DEFAULT_PARAMS.model_copy(update={"max_tokens": max_tokens})
    configs: list[HyperParams] = [base]
    labels = ["default"]
    for task in dict.fromkeys(case.task for case in cases):
        configs.append(TASK_PRIORS[task].model_copy(update={"max_tokens": max_tokens}))
        labels.append(f"prior:{task.value}")
    grid_configs = space.grid(base, "ladders") + [
        space.configure(base, {"temperature": 0.0, "repetition_penalty": penalty})
        for penalty in values["repetition_penalty"]
    ]
    random.Random(seed).shuffle(grid_configs)
    seen = {config.key() for config in configs}
    for config in grid_configs:
        if config.key() not in seen:
            seen.add(config.key())
            configs.append(config)
            labels.append("grid")
    return GridPlan(
        samples=samples,
        seed=seed,
        max_tokens=max_tokens,
        cases=[PlanCase(id=c.id, task=c.task.value, prompt=c.prompt) for c in cases],
        configs=[c.model_dump() for c in configs],
        labels=labels,
    )


__all__ = ["DEFAULT_GRID", "GridPlan", "PlanCase", "build_plan"]
