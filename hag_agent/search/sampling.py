"""How the search draws and scores samples: one sample per (case, configuration, seed).

A `Sampler` is anything that makes that sample: `BackendSampler` calls a served or embedded model;
`hag_agent.search.grid_samples.PrecomputedSampler` reads it from the GPU grid sampler's files.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple

from langchain_core.messages import HumanMessage
from pydantic import BaseModel, ConfigDict

from hag_agent.backends.base import Backend, GenerationRequest, tagged
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import HyperParams


class SampleResult(BaseModel):
    """One generation: its text and what it cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    """The generated text."""
    completion_tokens: int | None = None
    """Generated tokens, when the backend reports them."""
    latency_s: float = 0.0
    """Wall time of the call."""


Sampler = Callable[[SuiteCase, HyperParams, int], Awaitable[SampleResult]]
"""``sampler(case, params, seed)``: one generation for a case under a configuration."""

Scorer = Callable[[SuiteCase, Sequence[str]], float]
"""``scorer(case, outputs)``: K samples' outputs -> score in [0, 1]."""


class BackendRecipe(NamedTuple):
    """A backend by registry name and options: what a worker process needs to build it."""

    name: str | None
    """Registry name (None: ``HAG_BACKEND`` or the default)."""
    options: dict[str, Any]
    """The backend's options."""


class MissingSample(HAGInputError):
    """A sampler that reads samples made elsewhere has none for this (case, configuration, seed).

    The search engine leaves such a configuration out rather than failing the case.
    """


class BackendSampler:
    """The real `Sampler`: one generation call through a hag_agent `Backend`.

    The prompt is sent as one human message, as `HAGRunnable` sends it, with every sampling value
    explicit (`Backend.call_kwargs`) and the sample's seed. No prompt cache is shared between
    calls, so a sample depends only on (prompt, configuration, seed).

    One built by name (`backend_sampler`) travels to another process (a cluster's worker) as that
    name and those options, and builds its backend there, once per process: a loaded model never
    travels. One built from a `Backend` object stays in its process.
    """

    def __init__(self, backend: Backend, recipe: BackendRecipe | None = None) -> None:
        """Wrap a resolved backend; ``recipe`` is how to build it again elsewhere."""
        self.backend = backend
        self.recipe = recipe

    def __reduce__(self) -> tuple[Callable[..., BackendSampler], tuple[Any, ...]]:
        """Pickle as the recipe, so the unpickling process builds its own backend.

        Raises:
            TypeError: For a sampler built from a `Backend` object, which cannot travel.
        """
        if self.recipe is None:
            raise TypeError(
                "a BackendSampler built from a Backend object cannot be sent to another process: "
                "build it by name with backend_sampler(name, options)"
            )
        return (backend_sampler, (self.recipe.name, self.recipe.options))

    async def __call__(self, case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
        """Generate once; a failed call raises `BackendError`."""
        messages = [HumanMessage(case.prompt)]
        request = GenerationRequest(messages, params, seed, tagged(None, "generate"))
        generation = await self.backend.agenerate(request)
        return SampleResult(
            text=generation.text,
            completion_tokens=generation.completion_tokens,
            latency_s=generation.latency_s,
        )


def backend_sampler(
    backend: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    chat_model: Any = None,
) -> BackendSampler:
    """A `BackendSampler` for a backend given by name and options, as `HAGRunnable` resolves it.

    Args:
        backend: Registry name (``embedded``, ``vllm``, ``llamacpp-server`` or a plugin's);
            None leaves it to ``HAG_BACKEND`` or the default (embedded).
        options: The backend's options (``base_url``, ``model``, ``model_path`` ...).
        chat_model: A `Backend` or LangChain chat model; overrides ``backend``.

    Raises:
        ConfigurationError: For an unknown backend or one that cannot be set up.
        InvalidSettingsError: For a bad option.
    """
    from hag_agent.backend_choice import resolve_backend
    from hag_agent.context import resolve_context

    context = resolve_context(
        {
            "backend": backend,
            "backend_options": dict(options or {}) or None,
            "chat_model": chat_model,
        }
    )
    recipe = None if chat_model is not None else BackendRecipe(backend, dict(options or {}))
    return BackendSampler(resolve_backend(context), recipe)


def default_scorer() -> Scorer:
    """`hag_agent.metrics.score_outputs` (imported on first use)."""
    from hag_agent.metrics import score_outputs

    return score_outputs


__all__ = [
    "BackendRecipe",
    "BackendSampler",
    "MissingSample",
    "SampleResult",
    "Sampler",
    "Scorer",
    "backend_sampler",
    "default_scorer",
]
