"""Backends by name: built-ins plus any a third-party package registers.

A package adds a backend with an entry point in the ``hag_agent.backends`` group whose object is
a factory ``(context: HAGContext) -> Backend``, the way simonw/llm plugins add models.
Factories are imported only when their backend is asked for, so heavy engines load lazily.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from importlib.metadata import entry_points

from pydantic import ValidationError

from hag_agent.backends.base import Backend, as_backend
from hag_agent.context import HAGContext, environment_snapshot
from hag_agent.errors import ConfigurationError, InvalidSettingsError

BackendFactory = Callable[[HAGContext], Backend]

ENTRY_POINT_GROUP = "hag_agent.backends"

# Built-ins by import path, imported on first use only.
_BUILTIN: dict[str, str] = {
    "embedded": "hag_agent.backends.embedded:create",
    "vllm": "hag_agent.backends.openai_compatible:create_vllm",
    "llamacpp-server": "hag_agent.backends.openai_compatible:create_llamacpp_server",
}
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


_instances: dict[str, Backend] = {}


def resolve_backend(context: HAGContext) -> Backend:
    """The backend of a run: the context's chat model if given, else the named backend.

    Named backends are built once per distinct name, options and ``HAG_*`` environment, so every
    run shares one client (and one loaded model); a run's nodes reuse what its first one got.

    Raises:
        ConfigurationError: For an unknown backend or one that cannot be set up.
        InvalidSettingsError: For a bad backend option.
    """
    if context._backend is None:
        context._backend = (
            as_backend(context.chat_model)
            if context.chat_model is not None
            else _named_backend(context)
        )
    backend: Backend = context._backend
    return backend


def _named_backend(context: HAGContext) -> Backend:
    key = json.dumps(
        [context.backend, context.backend_options, environment_snapshot()],
        sort_keys=True,
        default=str,
    )
    with _lock:
        backend = _instances.get(key)
    if backend is not None:
        return backend
    factory = _factory(context.backend)
    try:
        backend = factory(context)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "backend_options"
        raise InvalidSettingsError(
            f"backend_options.{field}", first.get("input"), "a valid value", first.get("msg", "")
        ) from None
    with _lock:
        return _instances.setdefault(key, backend)
