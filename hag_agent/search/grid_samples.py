"""The GPU grid sampler's output as a sampler: samples read from files instead of drawn.

`hag_agent.search.grid_sampler` writes, per configuration of a `GridPlan`, K texts for every case.
`read_samples` loads them and `PrecomputedSampler` hands them to the search engine as if a model
had just made them, so scoring a sampled plan is an ordinary search
(`hag_agent.search.grid_scoring`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import HyperParams
from hag_agent.search.grid_plan import GridPlan
from hag_agent.search.grid_sampler import INFO_FILE, SAMPLES_GLOB, read_sample_lines
from hag_agent.search.sampling import MissingSample, SampleResult

SampledPlan = dict[int, dict[str, list[str]]]
"""Configuration index -> case id -> its K texts."""


def read_samples(folder: Path) -> SampledPlan:
    """Config index -> case id -> K texts, from every sample file in ``folder``.

    A cut last line (a run killed mid-write) is skipped; a configuration found twice keeps its
    first copy.

    Raises:
        HAGInputError: When the folder has no sample files.
    """
    if not any(folder.glob(SAMPLES_GLOB)):
        raise HAGInputError(f"{folder}: no {SAMPLES_GLOB} files (not a grid sampler output)")
    samples: SampledPlan = {}
    for item in read_sample_lines(folder):
        samples.setdefault(int(item["config"]), item["texts"])
    return samples


def sampler_info(folder: Path) -> dict[str, Any]:
    """The sampler's own description of its run (empty when the file is missing)."""
    try:
        info: dict[str, Any] = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info


class PrecomputedSampler:
    """A `Sampler` whose samples come from a sampled plan.

    Sample ``i`` of a configuration (seed ``plan.seed + i``) is the i-th of its K texts for the
    case; a configuration the plan lists twice (a prior that is also a grid point) uses, for
    each case, the first copy that was sampled for it. A sample that is not there raises
    `MissingSample`, so the engine leaves that configuration out.
    """

    def __init__(self, plan: GridPlan, samples: SampledPlan) -> None:
        """Index the samples by configuration."""
        self.seed = plan.seed
        self._texts: dict[tuple[float | int, ...], dict[str, list[str]]] = {}
        for index in range(len(plan.configs)):
            texts = self._texts.setdefault(plan.params(index).key(), {})
            for case_id, case_texts in samples.get(index, {}).items():
                # A copy cut off by a deadline must not hide one sampled later in the plan.
                if case_texts:
                    texts.setdefault(case_id, case_texts)

    async def __call__(self, case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
        """The stored text of this sample."""
        texts = self._texts.get(params.key(), {}).get(case.id) or []
        position = seed - self.seed
        if not 0 <= position < len(texts):
            raise MissingSample(f"{case.id}: no sample {position} under {params.model_dump()}")
        return SampleResult(text=texts[position])


__all__ = ["PrecomputedSampler", "SampledPlan", "read_samples", "sampler_info"]
