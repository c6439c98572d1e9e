"""The embedded llama.cpp model as a grid-sampling engine: one seeded call per request.

llama.cpp runs one sequence at a time in process, so a batch is a loop; the point of this
engine is the same plan sampled on the weights and the sampler that the embedded default (and
the local search) uses, for `benchmarks/grid_sampling.py` and for comparing engines' oracles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from hag_agent.backends.base import Backend, GenerationRequest, tagged
from hag_agent.hyperparameters import HyperParams
from hag_agent.progress import ProgressCallback, no_progress
from hag_agent.search.grid_plan import GridPlan
from hag_agent.search.plan_sampling import PlanRequest, sample_plan_with, write_info


class LlamaCppEngine:
    """Texts for a batch of requests from a hag_agent backend, one generation call each.

    Each call is what the search engine's `hag_agent.search.sampling.BackendSampler` makes: the
    prompt as one human message, every sampling value explicit, the request's seed.
    """

    def __init__(self, backend: Backend) -> None:
        """Wrap a backend (the embedded one, for llama.cpp)."""
        self.backend = backend

    def __call__(self, requests: Sequence[PlanRequest]) -> list[str]:
        """One text per request, in order.

        Raises:
            BackendError: When a call fails.
        """
        texts = []
        for request in requests:
            generation = self.backend.generate(
                GenerationRequest(
                    [HumanMessage(request.prompt)],
                    HyperParams.model_validate(request.params),
                    request.seed,
                    tagged(None, "generate"),
                )
            )
            texts.append(generation.text)
        return texts


def sample_plan_on_llama_cpp(
    plan: GridPlan,
    out: Path,
    *,
    backend: Backend | None = None,
    deadline_s: float | None = None,
    progress: ProgressCallback = no_progress,
) -> dict[str, Any]:
    """Sample ``plan`` on the embedded llama.cpp model into ``out``; returns the run's info.

    Args:
        plan: The plan.
        out: Folder for the sample files (resumed).
        backend: The backend to call (default: the embedded one, ``HAG_*`` options).
        deadline_s: Seconds after which no new configuration starts.
        progress: One advance per configuration.
    """
    from hag_agent.backends.embedded import EmbeddedBackend

    used = backend or EmbeddedBackend()
    began = time.monotonic()
    if isinstance(used, EmbeddedBackend):
        used.load()
    load_s = time.monotonic() - began
    figures = sample_plan_with(
        plan, LlamaCppEngine(used), out, batch_sequences=0, deadline_s=deadline_s, progress=progress
    )
    info = {
        "engine": "llama.cpp" if isinstance(used, EmbeddedBackend) else used.name,
        "model": used.embedding_model(),
        "seeds": "sample k of every configuration: plan seed + k, one call each",
        "load_s": round(load_s, 2),
        **figures,
    }
    write_info(out, info)
    return info


__all__ = ["LlamaCppEngine", "sample_plan_on_llama_cpp"]
