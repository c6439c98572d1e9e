"""A tuned proposer's card: backends read its training scope from the JSON beside the adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hag_agent.assets import proposer_provenance
from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.backends.proposer_card import card_of, read_scope, scope_beside
from hag_agent.data.search_records import read_records, training_scope
from hag_agent.errors import ConfigurationError
from hag_agent.tasks import TaskKind
from hag_agent.testing import ScriptedChatModel
from hag_agent.training_scope import TrainingScope

ROOT = Path(__file__).resolve().parents[2]
SCOPE = TrainingScope(fixed={"max_tokens": 48.0}, task_kinds=frozenset({TaskKind.MATH}))


def write_card(path: Path, **card: object) -> Path:
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


def embedded(adapter: Path | str | None) -> EmbeddedBackend:
    return EmbeddedBackend(EmbeddedOptions(proposer_lora_path=adapter))


def test_the_builtin_adapter_carries_the_scope_of_the_data_it_was_trained_on() -> None:
    scope = embedded("builtin").proposer_scope()
    assert scope is not None
    assert scope.fixed == {"min_p": 0.0, "max_tokens": 48.0}
    assert not scope.covers(TaskKind.CODE) and scope.covers(TaskKind.MATH)
    data = read_records(ROOT / proposer_provenance()["data"], strict=True)
    assert scope == training_scope(data)
    assert proposer_provenance()["scope"] == scope.model_dump(mode="json")


def test_a_card_beside_the_adapter_or_the_run_folders_card_is_read(tmp_path: Path) -> None:
    write_card(tmp_path / "mine.json", file="mine.gguf", scope=SCOPE.model_dump(mode="json"))
    assert embedded(tmp_path / "mine.gguf").proposer_scope() == SCOPE
    run = tmp_path / "run"
    run.mkdir()
    write_card(run / "adapter.json", file="adapter.gguf", scope=SCOPE.model_dump(mode="json"))
    assert embedded(run / "adapter.gguf").proposer_scope() == SCOPE
    assert card_of(run / "adapter") == run / "adapter.json"  # the PEFT folder's card too
    # The folder's card describes adapter.gguf, not another file there.
    assert card_of(run / "other.gguf") is None
    assert embedded(run / "other.gguf").proposer_scope() is None


def test_no_adapter_no_card_or_a_card_without_scope_is_no_scope(tmp_path: Path) -> None:
    assert embedded(None).proposer_scope() is None
    assert embedded(tmp_path / "bare.gguf").proposer_scope() is None
    write_card(tmp_path / "old.json", file="old.gguf", command="hag-agent train sft ...")
    assert embedded(tmp_path / "old.gguf").proposer_scope() is None
    assert ChatModelBackend(ScriptedChatModel()).proposer_scope() is None


def test_a_malformed_card_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="cannot read the proposer card"):
        scope_beside(tmp_path / "bad.gguf")
    write_card(tmp_path / "odd.json", scope={"fixed": {}, "task_kinds": ["poetry"]})
    with pytest.raises(ConfigurationError, match="not a training scope"):
        read_scope(tmp_path / "odd.json")


def endpoint(**options: object) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(
        EndpointOptions.model_validate(
            {"base_url": "http://127.0.0.1:9/v1", "model": "m", **options}
        )
    )


def test_an_endpoint_reads_the_card_its_proposer_scope_option_names(tmp_path: Path) -> None:
    card = write_card(tmp_path / "adapter.json", scope=SCOPE.model_dump(mode="json"))
    assert endpoint(proposer_model="hag", proposer_scope=card).proposer_scope() == SCOPE
    assert endpoint(proposer_model="hag").proposer_scope() is None
    with pytest.raises(ConfigurationError, match="give proposer_model"):
        endpoint(proposer_scope=card)
    with pytest.raises(ConfigurationError, match="cannot read the proposer card"):
        endpoint(proposer_model="hag", proposer_scope=tmp_path / "missing.json")
