"""``OUT/adapter.json``: the card ``train sft`` writes, and the backends read the scope from."""

from __future__ import annotations

import json
from pathlib import Path

from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.backends.proposer_card import card_of, scope_beside
from hag_agent.data.search_records import SearchRecord
from hag_agent.file_hash import sha256_file
from hag_agent.hyperparameters import HyperParams
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import search_record
from hag_agent.training.adapter_card import write_adapter_card
from hag_agent.training_scope import TrainingScope

HELD = {"min_p": 0.0, "max_tokens": 48.0}


def records_file(path: Path) -> tuple[Path, list[SearchRecord]]:
    records = []
    for i, task in enumerate((TaskKind.MATH, TaskKind.CREATIVE, TaskKind.REASONING)):
        params: HyperParams = TASK_PRIORS[task].model_copy(update={"max_tokens": 48})
        record = search_record(f"c{i}", task.value, f"q{i}", params)
        records.append(record.model_copy(update={"fixed": HELD}))
    path.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    return path, records


def test_the_card_describes_the_gguf_adapter_and_its_training_scope(tmp_path: Path) -> None:
    data, records = records_file(tmp_path / "search.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    gguf = out / "adapter.gguf"
    gguf.write_bytes(b"GGUF fake adapter")
    card = write_adapter_card(
        out,
        data=data,
        base="smollm2",
        settings={"epochs": 2.0},
        trained_on=records[:2],  # the third is held out: its kind would not count
        adapter=gguf,
    )
    assert card == out / "adapter.json" == card_of(gguf)
    written = json.loads(card.read_text(encoding="utf-8"))
    assert written["file"] == "adapter.gguf" and written["sha256"] == sha256_file(gguf)
    assert written["data_sha256"] == sha256_file(data) and written["base"] == "smollm2"
    assert written["settings"] == {"epochs": 2.0}
    assert written["scope"] == {"fixed": HELD, "task_kinds": ["creative", "math"]}
    expected = TrainingScope(fixed=HELD, task_kinds=frozenset({TaskKind.MATH, TaskKind.CREATIVE}))
    backend = EmbeddedBackend(EmbeddedOptions(proposer_lora_path=gguf))
    assert backend.proposer_scope() == expected


def test_without_a_gguf_the_card_describes_the_peft_folder(tmp_path: Path) -> None:
    data, records = records_file(tmp_path / "search.jsonl")
    out = tmp_path / "out"
    (out / "adapter").mkdir(parents=True)
    card = write_adapter_card(
        out, data=data, base="b", settings={}, trained_on=records, adapter=out / "adapter"
    )
    written = json.loads(card.read_text(encoding="utf-8"))
    assert written["file"] == "adapter" and "sha256" not in written
    scope = scope_beside(out / "adapter")  # what an endpoint's proposer_scope would name
    assert scope is not None and scope.fixed == HELD
