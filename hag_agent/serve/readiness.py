"""Is the backend ready to answer: the embedded model loaded, an endpoint's server reachable."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hag_agent.backends.base import Backend

PROBE_TIMEOUT_S = 3.0
"""How long an endpoint's model list may take before the backend counts as not ready."""


@dataclass(frozen=True)
class Readiness:
    """A probe's verdict."""

    ready: bool
    detail: str


async def probe(backend: Backend) -> Readiness:
    """Ask the backend whether it can answer now, the cheapest way it has.

    A backend with a model to load (the embedded one) loads it (once: later probes cost
    nothing); one over an OpenAI client lists the server's models; any other is assumed ready.
    Never raises: a failure is the verdict.
    """
    try:
        load = getattr(backend, "load", None)
        if callable(load):
            await asyncio.to_thread(load)
            return Readiness(True, f"{backend.name}: model loaded")
        client = getattr(getattr(backend, "chat_model", None), "root_async_client", None)
        if client is not None:
            quick = client.with_options(timeout=PROBE_TIMEOUT_S, max_retries=0)
            await quick.models.list()
            return Readiness(True, f"{backend.name}: the server answered")
    except Exception as exc:  # any failure means not ready, whatever raised it
        return Readiness(False, f"{backend.name}: {type(exc).__name__}: {exc}")
    return Readiness(True, f"{backend.name}: no probe for this backend")


__all__ = ["PROBE_TIMEOUT_S", "Readiness", "probe"]
