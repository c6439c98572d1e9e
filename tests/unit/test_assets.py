"""The packaged tuned proposer: the file is what its provenance says, and `builtin` selects it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hag_agent.assets import builtin_proposer_adapter, proposer_provenance
from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.cli.backend_options import backend_settings
from hag_agent.errors import ConfigurationError


def test_the_packaged_adapter_matches_its_provenance() -> None:
    path = builtin_proposer_adapter()
    record = proposer_provenance()
    data = path.read_bytes()
    assert data[:4] == b"GGUF"
    assert b"adapter" in data[:4096] and b"lora" in data[:4096]
    assert hashlib.sha256(data).hexdigest() == record["sha256"]
    assert path.name == record["file"] and len(data) < 8_000_000
    assert "train sft" in record["command"] and "--base smollm2" in record["command"]


def test_builtin_resolves_to_the_packaged_adapter() -> None:
    backend = EmbeddedBackend(EmbeddedOptions(proposer_lora_path=Path("builtin")))
    assert backend.proposal_model is not None
    assert backend.proposal_model.lora_path == builtin_proposer_adapter()  # type: ignore[attr-defined]
    own = EmbeddedBackend(EmbeddedOptions(proposer_lora_path=Path("mine.gguf")))
    assert own.proposal_model.lora_path == Path("mine.gguf")  # type: ignore[union-attr]


def test_builtin_refuses_another_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="fits only the embedded default model"):
        EmbeddedBackend(
            EmbeddedOptions(proposer_lora_path=Path("builtin"), model_path=tmp_path / "x.gguf")
        )


def test_proposer_model_means_an_adapter_file_on_the_embedded_backend() -> None:
    settings = backend_settings(None, None, None, "builtin", None)
    assert settings["backend_options"] == {"proposer_model": "builtin"}
    options = EmbeddedOptions(**settings["backend_options"])
    assert options.proposer_lora_path == Path("builtin")
    backend = EmbeddedBackend(options)
    assert backend.proposal_model.lora_path == builtin_proposer_adapter()  # type: ignore[union-attr]
    served = backend_settings(None, "http://127.0.0.1:8000/v1", "m", "hag", None)
    assert served["backend_options"] == {
        "base_url": "http://127.0.0.1:8000/v1",
        "model": "m",
        "proposer_model": "hag",
    }
    with pytest.raises(ValueError, match="not both"):
        EmbeddedOptions(proposer_model="a.gguf", proposer_lora_path="b.gguf")
