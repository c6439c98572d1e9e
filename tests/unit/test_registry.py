"""Backends by name: built-ins, registered factories, and third-party entry points."""

import sys
from pathlib import Path

import pytest

from hag_agent import ConfigurationError, HAGRunnable, InvalidSettingsError
from hag_agent.backends import Backend, backend_names, register_backend, resolve_backend
from hag_agent.context import resolve_context
from hag_agent.testing import ScriptedChatModel

PLUGIN = """
from hag_agent.backends import Backend
from hag_agent.testing import ScriptedChatModel

CREATED = []

def factory(context):
    CREATED.append(context.backend_options)
    return Backend(ScriptedChatModel(script={"generate": ["from the plugin"]}))
"""


def test_builtins_are_listed() -> None:
    assert {"embedded", "vllm", "llamacpp-server"} <= set(backend_names())


def test_unknown_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown backend 'nope'"):
        HAGRunnable(backend="nope").invoke("hi")


def test_registered_factory_is_used_and_cached() -> None:
    made: list[int] = []

    def factory(context: object) -> Backend:
        made.append(1)
        return Backend(ScriptedChatModel(script={"generate": ["registered"]}))

    register_backend("unit-test", factory)
    runnable = HAGRunnable(backend="unit-test", proposer="prior")
    assert str(runnable.invoke("hi")) == "registered"
    assert str(runnable.invoke("hello")) == "registered"
    assert len(made) == 1  # one backend for every node of every run
    assert resolve_backend(resolve_context({"backend": "unit-test"})) is resolve_backend(
        resolve_context({"backend": "unit-test"})
    )


def test_entry_point_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hag_plugin_demo.py").write_text(PLUGIN, encoding="utf-8")
    dist = tmp_path / "hag_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hag-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hag_agent.backends]\ndemo = hag_plugin_demo:factory\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "demo" in backend_names()
    result = HAGRunnable(
        backend="demo", proposer="prior", backend_options={"colour": "blue"}
    ).invoke("hi")
    assert str(result) == "from the plugin"
    assert sys.modules["hag_plugin_demo"].CREATED == [{"colour": "blue"}]


def test_bad_backend_option_is_a_typed_error() -> None:
    with pytest.raises(InvalidSettingsError, match=r"backend_options\.n_threads"):
        HAGRunnable(backend="embedded", backend_options={"n_threads": 0}).invoke("hi")
    with pytest.raises(InvalidSettingsError, match=r"backend_options\.colour"):
        HAGRunnable(backend="embedded", backend_options={"colour": "blue"}).invoke("hi")
