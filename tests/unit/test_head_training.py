"""``train_head`` called as a library: settings in, progress events out, a report back."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.data.search_records import ScoredConfig, training_scope
from hag_agent.errors import BackendError, ConfigurationError, HAGInputError
from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.learned_head import load_head
from hag_agent.progress import ProgressEvent
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import ScriptedChatModel, ScriptedEmbeddingBackend
from hag_agent.testing import search_record as record
from hag_agent.training.head_evaluation import GuardReport
from hag_agent.training.head_training import (
    OUTSIDE_PROBES,
    HeadTrainingSettings,
    train_head,
)
from hag_agent.training.held_out_error import mean_absolute_errors


def vector_of(text: str) -> list[float]:
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    warm = 2.0 if "poem" in text else -2.0
    return [warm, *rng.normal(size=5).tolist()]


@pytest.fixture
def search_file(tmp_path: Path) -> Path:
    lines = []
    for i in range(12):
        poem = i % 2 == 0
        task = TaskKind.CREATIVE if poem else TaskKind.MATH
        params = TASK_PRIORS[task].model_copy(update={"temperature": 1.2 if poem else 0.1})
        prompt = f"Write a poem about thing {i}" if poem else f"What is {i} + {i}?"
        lines.append(record(f"case-{i}", task.value, prompt, params))
    path = tmp_path / "search.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in lines), encoding="utf-8")
    return path


def embedder() -> ScriptedEmbeddingBackend:
    return ScriptedEmbeddingBackend(ScriptedChatModel(default="An answer."), vector_of)


def test_train_head_reports_progress_and_prints_nothing(
    search_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events: list[ProgressEvent] = []
    out = tmp_path / "head.npz"
    backend = embedder()
    report = train_head(
        search_file, out, backend, HeadTrainingSettings(held_out=0.3), progress=events.append
    )
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    embedded = 12 + len(OUTSIDE_PROBES)  # the search's prompts, then the guard's probes
    assert [e.kind for e in events] == ["start", *["advance"] * embedded, "end"]
    assert {e.stage for e in events} == {"embed"} and {e.total for e in events} == {embedded}
    assert [e.done for e in events if e.kind == "advance"] == list(range(1, embedded + 1))
    assert len(backend.embedded) == embedded
    assert backend.embedded[12:] == list(OUTSIDE_PROBES)
    assert report.head == str(out) and out.is_file()
    assert report.train_cases + report.evaluation.cases == 12
    assert report.info == load_head(out, dims=6).info
    assert report.info.seed == 0 and report.info.data == "search.jsonl"
    assert report.summary.startswith("embedded 12 prompts")
    assert set(report.evaluation.mae) == {"head", "train mean", "task mean", "task prior"}


def test_train_head_settings_shape_the_head(search_file: Path, tmp_path: Path) -> None:
    settings = HeadTrainingSettings(kind="knn", neighbours=2, seed=4, held_out=0.0)
    report = train_head(search_file, tmp_path / "knn.npz", embedder(), settings)
    assert report.info.kind == "knn" and report.info.neighbours == 2 and report.info.seed == 4
    assert report.train_cases == 12 and report.evaluation.cases == 0
    assert "held-out error" not in report.summary
    with pytest.raises(ValidationError):
        HeadTrainingSettings(kind="ridge", alfa=1.0)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        HeadTrainingSettings(alpha=0.0)


def test_train_head_raises_typed_errors_and_writes_nothing(
    search_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "head.npz"
    with pytest.raises(ConfigurationError, match="cannot embed text"):
        train_head(search_file, out, ChatModelBackend(ScriptedChatModel(default="x")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(HAGInputError, match="not a search record"):
        train_head(bad, out, embedder())

    def failing(text: str) -> list[float]:
        raise BackendError("embedding failed")

    broken = ScriptedEmbeddingBackend(ScriptedChatModel(default="x"), failing)
    with pytest.raises(BackendError):
        train_head(search_file, out, broken)
    assert not out.exists()


def test_mean_absolute_errors_per_parameter() -> None:
    prior = TASK_PRIORS[TaskKind.MATH]
    hotter = prior.model_copy(update={"temperature": prior.temperature + 0.5, "top_k": 0})
    errors = mean_absolute_errors([prior, hotter], [prior, prior])
    assert set(errors) == set(HYPERPARAM_KEYS)
    assert errors["temperature"] == pytest.approx(0.25)
    assert errors["top_k"] == pytest.approx(prior.top_k / 2)  # top_k 0 (off) counts as 0
    assert errors["top_p"] == 0.0
    assert mean_absolute_errors([], []) == {}
    with pytest.raises(ValueError, match="1 predictions but 0 targets"):
        mean_absolute_errors([prior], [])


def test_train_head_stores_the_scope_of_every_scored_configuration(tmp_path: Path) -> None:
    lines = []
    for i in range(12):
        poem = i % 2 == 0
        task = TaskKind.CREATIVE if poem else TaskKind.MATH
        best = TASK_PRIORS[task].model_copy(update={"max_tokens": 48})
        line = record(f"case-{i}", task.value, f"Write a poem {i}" if poem else f"{i} + 1?", best)
        tried = [best, best.model_copy(update={"temperature": 0.7, "top_k": 5})]
        line.evaluated = [
            ScoredConfig(params=p.model_dump(), score=0.5, samples=2, stage="grid") for p in tried
        ]
        lines.append(line)
    data = tmp_path / "pinned.jsonl"
    data.write_text("".join(r.model_dump_json() + "\n" for r in lines), encoding="utf-8")
    report = train_head(data, tmp_path / "head.npz", embedder(), HeadTrainingSettings(held_out=0.3))
    scope = load_head(tmp_path / "head.npz").info.scope
    assert scope is not None and scope == report.info.scope
    assert scope.fixed == {"max_tokens": 48.0}  # min_p varied across the two task kinds
    assert scope.task_kinds == {TaskKind.CREATIVE, TaskKind.MATH}
    assert "held fixed in the data (left to the task prior): max_tokens" in report.summary
    assert report.guard is not None and report.info.guard_threshold == report.guard.threshold
    assert len(report.guard.held_out) == report.evaluation.cases
    assert len(report.guard.outside) == len(OUTSIDE_PROBES)
    assert f"embedding guard at similarity {report.guard.threshold:.3f}" in report.summary


def test_records_without_scored_configurations_fix_nothing() -> None:
    lines = [record(f"c{i}", "math", f"{i}?", TASK_PRIORS[TaskKind.MATH]) for i in range(3)]
    scope = training_scope(lines)
    assert scope.fixed == {} and scope.task_kinds == {TaskKind.MATH}


def test_guard_report_counts_each_side() -> None:
    report = GuardReport(threshold=0.5, held_out=[0.9, 0.4, 0.6], outside=[0.1, 0.7])
    assert (report.held_out_inside, report.outside_refused) == (2, 1)
    assert report.summary() == (
        "embedding guard at similarity 0.500: keeps 2/3 held-out prompts, refuses 1/2 unlike "
        "requests"
    )
