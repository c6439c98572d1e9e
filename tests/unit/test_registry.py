"""Backends by name: built-ins, registered factories, and third-party entry points."""

import sys
from pathlib import Path
from typing import Any

import pytest

from hag_agent import ConfigurationError, HAGRunnable, InvalidSettingsError
from hag_agent.backend_choice import resolve_backend
from hag_agent.backends import (
    Backend,
    ChatModelBackend,
    backend_names,
    create_backend,
    register_backend,
)
from hag_agent.context import resolve_context
from hag_agent.testing import ScriptedChatModel

PLUGIN = """
from hag_agent.backends import ChatModelBackend
from hag_agent.testing import ScriptedChatModel

CREATED = []

def factory(options):
    CREATED.append(dict(options))
    return ChatModelBackend(ScriptedChatModel(script={"generate": ["from the plugin"]}))
"""


def test_builtins_are_listed() -> None:
    assert {"embedded", "vllm", "llamacpp-server", "openai"} <= set(backend_names())


def test_unknown_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown backend 'nope'"):
        HAGRunnable(backend="nope").invoke("hi")


def test_registered_factory_is_used_and_cached() -> None:
    made: list[int] = []

    def factory(options: object) -> Backend:
        made.append(1)
        return ChatModelBackend(ScriptedChatModel(script={"generate": ["registered"]}))

    register_backend("unit-test", factory)
    runnable = HAGRunnable(backend="unit-test", proposer="prior")
    assert str(runnable.invoke("hi")) == "registered"
    assert str(runnable.invoke("hello")) == "registered"
    assert len(made) == 1  # one backend for every node of every run
    assert resolve_backend(resolve_context({"backend": "unit-test"})) is resolve_backend(
        resolve_context({"backend": "unit-test"})
    )


def test_entry_point_plugin(install_plugin: Any) -> None:
    install_plugin(
        "hag_plugin_demo", PLUGIN, "hag_agent.backends", "demo = hag_plugin_demo:factory"
    )
    assert "demo" in backend_names()
    result = HAGRunnable(
        backend="demo", proposer="prior", backend_options={"colour": "blue"}
    ).invoke("hi")
    assert str(result) == "from the plugin"
    assert sys.modules["hag_plugin_demo"].CREATED == [{"colour": "blue"}]


def test_a_plugin_that_fails_to_import_is_a_configuration_error(install_plugin: Any) -> None:
    install_plugin(
        "hag_plugin_broken",
        "import not_a_module_anywhere\n",
        "hag_agent.backends",
        "broken = hag_plugin_broken:factory",
    )
    with pytest.raises(ConfigurationError, match=r"backend 'broken' .* failed to load"):
        HAGRunnable(backend="broken", proposer="prior").invoke("hi")


def test_bad_backend_option_is_a_typed_error() -> None:
    with pytest.raises(InvalidSettingsError, match=r"backend_options\.n_threads"):
        HAGRunnable(backend="embedded", backend_options={"n_threads": 0}).invoke("hi")
    with pytest.raises(InvalidSettingsError, match=r"backend_options\.colour"):
        HAGRunnable(backend="embedded", backend_options={"colour": "blue"}).invoke("hi")


def test_factories_get_the_options_not_the_run_context() -> None:
    seen: list[dict[str, object]] = []

    def factory(options: object) -> Backend:
        assert isinstance(options, dict)
        seen.append(options)
        return ChatModelBackend(ScriptedChatModel())

    register_backend("unit-options", factory)
    backend = create_backend("unit-options", {"colour": "red"})
    assert isinstance(backend, ChatModelBackend) and seen == [{"colour": "red"}]
    assert create_backend("unit-options", {}) is not backend  # the core caches, not the registry


def test_builtin_factories_take_options() -> None:
    backend = create_backend("openai", {"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert backend.name == "openai" and not backend.capabilities.top_k


def test_the_backend_layer_does_not_import_the_core() -> None:
    """Backends sit below the core: no module of theirs imports it, even lazily."""
    import ast

    import hag_agent.backends

    core = {"context", "state", "nodes", "graph", "node_driver", "backend_choice", "runnable"}
    imported: set[str] = set()
    for path in Path(hag_agent.backends.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert "hag_agent.backends.base" in imported  # the walk sees the package's own imports
    assert not {f"hag_agent.{name}" for name in core} & imported
