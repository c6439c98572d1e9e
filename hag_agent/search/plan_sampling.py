"""Sampling a grid plan on any engine that takes a batch of seeded requests.

`hag_agent.search.grid_sampler` samples a plan with transformers, one torch stream per
configuration. The engines here (vLLM's offline batching, `hag_agent.search.vllm_grid`; the
embedded llama.cpp model, `hag_agent.search.llama_cpp_grid`) take requests one seed each: sample
``k`` of every (case, configuration) is drawn with seed ``plan.seed + k``, the seed the search
engine gives sample ``k`` (`hag_agent.search.grid_samples.PrecomputedSampler` reads it back at
that position). `sample_plan_with` groups configurations into batches of at least
``batch_sequences`` requests, hands each batch to the engine, and writes the same files as the
transformers sampler, one line per configuration, so ``grid-score`` and a resumed run read them
alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from hag_agent.progress import ProgressCallback, StageProgress, no_progress
from hag_agent.search.grid_plan import GridPlan
from hag_agent.search.grid_sampler import INFO_FILE, SAMPLES_GLOB, append_line, done_configs

STAGE = "grid-sample"
"""The progress stage's name."""


class PlanRequest(NamedTuple):
    """One generation of a plan: the user message, the configuration, the seed."""

    prompt: str
    """The case's prompt, sent as one user message."""
    params: dict[str, float | int]
    """The configuration (a full `HyperParams` dict)."""
    seed: int
    """``plan.seed + k`` for sample ``k``."""


BatchEngine = Callable[[Sequence[PlanRequest]], list[str]]
"""``engine(requests)``: one text per request, in order."""


def config_requests(plan: GridPlan, index: int) -> list[PlanRequest]:
    """Configuration ``index``'s requests: each case's K samples, case by case."""
    config = plan.configs[index]
    return [
        PlanRequest(case.prompt, config, plan.seed + k)
        for case in plan.cases
        for k in range(plan.samples)
    ]


def _batches(todo: Sequence[int], per_config: int, batch_sequences: int) -> list[list[int]]:
    """Configuration indexes in groups of at least ``batch_sequences`` requests (0: one each)."""
    size = max(1, -(-batch_sequences // per_config)) if batch_sequences else 1
    return [list(todo[i : i + size]) for i in range(0, len(todo), size)]


def _by_case(plan: GridPlan, texts: Sequence[str]) -> dict[str, list[str]]:
    k = plan.samples
    return {
        case.id: [t.strip() for t in texts[i * k : (i + 1) * k]]
        for i, case in enumerate(plan.cases)
    }


def sample_plan_with(
    plan: GridPlan,
    engine: BatchEngine,
    out: Path,
    *,
    batch_sequences: int = 512,
    deadline_s: float | None = None,
    configs_per_file: int = 40,
    progress: ProgressCallback = no_progress,
) -> dict[str, Any]:
    """Sample every configuration of ``plan`` not yet in ``out`` with ``engine``.

    Args:
        plan: The plan.
        engine: Texts for a batch of requests.
        out: Folder for the sample files (resumed: configurations there are skipped).
        batch_sequences: Requests per engine call, in whole configurations (0: one each).
        deadline_s: Seconds after which no new batch is started.
        configs_per_file: Configurations per output file.
        progress: Receives one advance per configuration.

    Returns:
        Timing figures, as the transformers sampler reports them, plus sequences per second.
    """
    start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    done = done_configs(out)
    todo = [i for i in range(len(plan.configs)) if i not in done]
    per_config = len(plan.cases) * plan.samples
    first_file = len(list(out.glob(SAMPLES_GLOB)))  # a resumed run starts a new file
    stage = StageProgress(progress, STAGE, len(todo))
    timings: list[float] = []
    stopped_early = False
    for batch in _batches(todo, per_config, batch_sequences):
        if deadline_s is not None and time.monotonic() - start > deadline_s:
            stopped_early = True
            break
        began = time.monotonic()
        texts = engine([r for index in batch for r in config_requests(plan, index)])
        seconds = (time.monotonic() - began) / len(batch)  # the batch's time, shared evenly
        for position, index in enumerate(batch):
            chunk = texts[position * per_config : (position + 1) * per_config]
            path = out / f"samples-{first_file + len(timings) // configs_per_file:02d}.jsonl.gz"
            line = {"config": index, "texts": _by_case(plan, chunk), "seconds": round(seconds, 3)}
            append_line(path, line)
            timings.append(seconds)
        rate = per_config * len(timings) / max(sum(timings), 1e-9)
        stage.advance(len(batch), f"{rate:.1f} seq/s")
    stage.end()
    return _figures(plan, timings, stopped_early, time.monotonic() - start)


def _figures(
    plan: GridPlan, timings: Sequence[float], stopped_early: bool, wall_s: float
) -> dict[str, Any]:
    """The run's timing figures, named as the transformers sampler names them."""
    per_config = len(plan.cases) * plan.samples
    sampling_s = sum(timings)
    return {
        "configs_sampled": len(timings),
        "configs_total": len(plan.configs),
        "sequences_per_config": per_config,
        "seconds_per_config_median": sorted(timings)[len(timings) // 2] if timings else None,
        "sequences_per_second": (
            round(per_config * len(timings) / sampling_s, 3) if sampling_s else None
        ),
        "seconds_total": round(wall_s, 2),
        "stopped_at_deadline": stopped_early,
    }


def write_info(out: Path, info: dict[str, Any]) -> None:
    """The run's description next to its samples (what ``grid-score`` reads the time from)."""
    (out / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


__all__ = [
    "STAGE",
    "BatchEngine",
    "PlanRequest",
    "config_requests",
    "sample_plan_with",
    "write_info",
]
