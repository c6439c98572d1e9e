"""The packaged learned head: the file is what its provenance says, and `builtin` selects it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hag_agent.assets import builtin_head, head_provenance, resolve_head
from hag_agent.backends.llama_cpp_chat import DEFAULT_GGUF_FILE
from hag_agent.learned_head import load_head
from hag_agent.tasks import TaskKind
from hag_agent.training_scope import TrainingScope

ROOT = Path(__file__).resolve().parents[2]


def test_the_packaged_head_matches_its_provenance() -> None:
    path = builtin_head()
    record = head_provenance()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
    assert path.name == record["file"] and path.stat().st_size < 1_000_000
    data = ROOT / record["data"]
    assert hashlib.sha256(data.read_bytes()).hexdigest() == record["data_sha256"]
    assert record["command"].startswith(f"hag-agent train head --data {record['data']}")
    assert record["guard"]["unlike_refused"] == record["guard"]["unlike"]


def test_the_packaged_head_knows_what_its_data_held() -> None:
    head = load_head(builtin_head(), dims=576)
    assert head.info.model is not None and head.info.model.startswith(f"{DEFAULT_GGUF_FILE}:")
    scope = head.info.scope
    assert scope is not None
    # Every configuration the grid search explored held min_p at 0 and max_tokens at 48 (the
    # creative prior it scored as a reference has min_p 0.05: references do not count).
    assert scope.fixed == {"min_p": 0.0, "max_tokens": 48.0}
    assert scope.task_kinds == {
        TaskKind.REASONING,
        TaskKind.MATH,
        TaskKind.TRANSLATION,
        TaskKind.CREATIVE,
    }
    assert head.info.guard_threshold is not None and head.guard_vectors is not None
    assert TrainingScope.model_validate(head_provenance()["scope"]) == scope


def test_builtin_resolves_to_the_packaged_head() -> None:
    assert resolve_head("builtin") == builtin_head()
    assert resolve_head(Path("builtin")) == builtin_head()
    assert resolve_head("mine.npz") == Path("mine.npz")
