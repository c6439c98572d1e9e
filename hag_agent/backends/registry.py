"""Backends by name: built-ins plus any a third-party package registers.

A package adds a backend with an entry point in the ``hag_agent.backends`` group whose object is
a factory ``(options: Mapping[str, Any]) -> Backend``, called with the run's
``backend_options``, the way simonw/llm plugins add models. Factories are imported only when
their backend is asked for, so heavy engines load lazily. Which backend a run uses, and the
sharing of built backends between runs, is the core's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from hag_agent.backends.base import Backend
from hag_agent.errors import invalid_setting
from hag_agent.plugins import PluginRegistry

BackendFactory = Callable[[Mapping[str, Any]], Backend]
"""Builds a backend from its options (a run's ``backend_options``; ``HAG_*`` fill the rest)."""

ENTRY_POINT_GROUP = "hag_agent.backends"

BACKENDS: PluginRegistry[BackendFactory] = PluginRegistry(
    "backend",
    ENTRY_POINT_GROUP,
    {
        "embedded": "hag_agent.backends.embedded:create",
        "vllm": "hag_agent.backends.openai_compatible:create_vllm",
        "llamacpp-server": "hag_agent.backends.openai_compatible:create_llamacpp_server",
        "openai": "hag_agent.backends.openai_compatible:create_openai",
    },
    hint="; or pass a LangChain chat model",
)
"""Every backend factory by name; built-ins are imported on first use only."""


def register_backend(name: str, factory: BackendFactory) -> None:
    """Register a backend factory under a name (overrides a built-in of the same name)."""
    BACKENDS.register(name, factory)


def backend_names() -> list[str]:
    """Every known backend name: built-in, registered, and from entry points."""
    return BACKENDS.names()


def create_backend(name: str, options: Mapping[str, Any]) -> Backend:
    """A new backend of the given name, built from ``options``.

    Raises:
        ConfigurationError: For an unknown backend or one that cannot be set up.
        InvalidSettingsError: For a bad backend option.
    """
    factory = BACKENDS.get(name)
    try:
        return factory(options)
    except ValidationError as exc:
        raise invalid_setting(exc, "backend_options.", owner=f"by backend {name!r}") from None
