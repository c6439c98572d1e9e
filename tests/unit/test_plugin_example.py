"""The README's plug-in example holds: a third-party backend passes the shipped conformance
suite, and a third-party proposer runs by name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hag_agent import Backend, HAGRunnable
from hag_agent.testing.conformance import BackendConformance

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_backend.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("custom_backend_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


class TestWordSamplerConformance(BackendConformance):
    @pytest.fixture
    def backend(self) -> Backend:
        backend: Backend = example.create({})
        return backend


def test_the_example_proposer_runs_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from hag_agent.backends.registry import BACKENDS
    from hag_agent.proposer_registry import PROPOSERS

    monkeypatch.setattr(BACKENDS, "_registered", dict(BACKENDS._registered))
    monkeypatch.setattr(PROPOSERS, "_registered", dict(PROPOSERS._registered))
    example.register_backend("word-sampler", example.create)
    example.register_proposer("by-length", example.LengthProposer)
    hag = HAGRunnable(backend="word-sampler", proposer="by-length", seed=3, critique=False)
    short = hag.invoke("Say hi")
    long = hag.invoke("Explain in detail why the sky looks blue on a clear afternoon, please")
    assert short.params is not None and short.params.temperature == 0.9
    assert long.params is not None and long.params.temperature == 0.2
    assert len(short.text.split()) == 12  # the proposal's max_tokens reached the backend
    tight = HAGRunnable(
        backend="word-sampler",
        proposer="by-length",
        proposer_options={"by-length": {"long_prompt": 2}},
        critique=False,
    )
    result = tight.invoke("Say hi")
    assert result.params is not None and result.params.temperature == 0.2
