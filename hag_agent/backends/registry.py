"""Backends by name: built-ins plus any a third-party package registers.

A package adds a backend with an entry point in the ``hag_agent.backends`` group whose object is
a factory ``(context: HAGContext) -> Backend``, the way simonw/llm plugins add models.
Factories are imported only when their backend is asked for, so heavy engines load lazily.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from hag_agent.backends.base import Backend, as_backend
from hag_agent.errors import ConfigurationError

if TYPE_CHECKING:
    from hag_agent.context import HAGContext

BackendFactory = Callable[["HAGContext"], Backend]

ENTRY_POINT_GROUP = "hag_agent.backends"

# Built-ins by import path, imported on first use only.
_BUILTIN: dict[str, str] = {}
_registered: dict[str, BackendFactory] = {}
_lock = threading.Lock()


def register_backend(name: str, factory: BackendFactory) -> None:
    """Register a backend factory under a name (overrides a built-in of the same name)."""
    with _lock:
        _registered[name] = factory


def backend_names() -> list[str]:
    """Every known backend name: built-in, registered, and from entry points."""
    names = set(_BUILTIN) | set(_registered)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def _factory(name: str) -> BackendFactory:
    with _lock:
        if name in _registered:
            return _registered[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory: BackendFactory = ep.load()
            register_backend(name, factory)
            return factory
    if name in _BUILTIN:
        module_name, _, attr = _BUILTIN[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(f"backend {name!r} needs a missing package: {exc}") from exc
        factory = getattr(module, attr)
        register_backend(name, factory)
        return factory
    known = ", ".join(backend_names()) or "none"
    raise ConfigurationError(
        f"unknown backend {name!r} (known: {known}); or pass a LangChain chat model"
    )


def resolve_backend(context: HAGContext) -> Backend:
    """The backend of a run: the context's chat model if given, else the named backend."""
    if context.chat_model is not None:
        return as_backend(context.chat_model)
    return _factory(context.backend)(context)
