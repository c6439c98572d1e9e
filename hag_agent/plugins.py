"""Plug-ins found by name: built-ins by import path, registered ones, and entry points.

One mechanism for every kind of plug-in (backends, proposers), the way simonw/llm finds its
plugins: a third-party package declares an entry point in the kind's group, a program may
`PluginRegistry.register` one in process, and a built-in is named by ``"module:attribute"`` and
imported only when asked for, so heavy engines load lazily and the core imports no plug-in.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from hag_agent.errors import ConfigurationError

PluginT = TypeVar("PluginT")


class PluginRegistry(Generic[PluginT]):
    """The plug-ins of one kind, by name."""

    def __init__(self, kind: str, group: str, builtin: Mapping[str, str], hint: str = "") -> None:
        """Create the registry.

        Args:
            kind: What a plug-in is, for messages (``backend``, ``proposer``).
            group: The entry-point group third-party packages declare them in.
            builtin: Built-in names -> ``"module:attribute"``, in listing order.
            hint: Added to the unknown-name message (e.g. another way to get one).
        """
        self.kind = kind
        self.group = group
        self._builtin = dict(builtin)
        self._hint = hint
        self._registered: dict[str, PluginT] = {}
        self._lock = threading.Lock()

    def register(self, name: str, plugin: PluginT) -> None:
        """Register a plug-in under a name (overrides a built-in of the same name)."""
        with self._lock:
            self._registered[name] = plugin

    def names(self) -> list[str]:
        """Every known name: the built-ins in their order, then the others sorted."""
        others = set(self._registered) | {ep.name for ep in entry_points(group=self.group)}
        return [*self._builtin, *sorted(others - set(self._builtin))]

    def knows(self, name: str) -> bool:
        """Whether ``name`` is known (built-ins answer without scanning entry points)."""
        return name in self._builtin or name in self._registered or name in self.names()

    def unknown(self, name: str) -> str:
        """Why ``name`` is no plug-in of this kind, listing the valid ones."""
        return f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}"

    def get(self, name: str) -> PluginT:
        """The plug-in registered under ``name``, imported on first use.

        Raises:
            ConfigurationError: For an unknown name (listing the valid ones) or a built-in that
                needs a missing package.
        """
        with self._lock:
            if name in self._registered:
                return self._registered[name]
        for entry_point in entry_points(group=self.group):
            if entry_point.name == name:
                try:
                    loaded: PluginT = entry_point.load()
                except Exception as exc:  # a third-party package: any import-time failure
                    raise ConfigurationError(
                        f"{self.kind} {name!r} ({entry_point.value}) failed to load: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                self.register(name, loaded)
                return loaded
        if name not in self._builtin:
            raise ConfigurationError(self.unknown(name) + self._hint)
        module_name, _, attribute = self._builtin[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(
                f"{self.kind} {name!r} needs a missing package: {exc}"
            ) from exc
        builtin: PluginT = getattr(module, attribute)
        self.register(name, builtin)
        return builtin


__all__ = ["PluginRegistry"]
