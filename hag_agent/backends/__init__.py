"""Model backends: one interface, found by name."""

from hag_agent.backends.base import (
    Backend,
    Capabilities,
    Decision,
    Embedding,
    Generation,
    as_backend,
)
from hag_agent.backends.registry import (
    backend_names,
    register_backend,
    resolve_backend,
)

__all__ = [
    "Backend",
    "Capabilities",
    "Decision",
    "Embedding",
    "Generation",
    "as_backend",
    "backend_names",
    "register_backend",
    "resolve_backend",
]
