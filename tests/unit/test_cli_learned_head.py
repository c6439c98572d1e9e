"""``train head`` and ``run --head`` with a registered fake backend (scripted embeddings)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hag_agent.backends import registry
from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.cli.run_command import run
from hag_agent.cli.train_head_command import head
from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.learned_head import load_head
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import ScriptedChatModel, ScriptedEmbeddingBackend
from hag_agent.testing import search_record as record

BACKEND = "test-scripted-embeddings"


def vector_of(text: str) -> list[float]:
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    warm = 2.0 if "poem" in text else -2.0
    return [warm, *rng.normal(size=7).tolist()]


@pytest.fixture
def search_file(tmp_path: Path) -> Path:
    lines = []
    for i in range(20):
        poem = i % 2 == 0
        params = TASK_PRIORS[TaskKind.CREATIVE if poem else TaskKind.MATH].model_copy(
            update={"temperature": 1.2 if poem else 0.1}
        )
        prompt = f"Write a poem about thing {i}" if poem else f"What is {i} + {i}?"
        lines.append(record(f"case-{i}", "creative" if poem else "math", prompt, params))
    path = tmp_path / "search.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in lines), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def fake_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    def with_embeddings(options: object) -> ChatModelBackend:
        return ScriptedEmbeddingBackend(ScriptedChatModel(default="An answer."), vector_of)

    def without_embeddings(options: object) -> ChatModelBackend:
        return ChatModelBackend(ScriptedChatModel(default="An answer."))

    monkeypatch.setitem(registry.BACKENDS._registered, BACKEND, with_embeddings)
    monkeypatch.setitem(registry.BACKENDS._registered, "test-plain", without_embeddings)


def test_train_head_writes_a_head_and_reports_held_out_error(
    search_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "head.npz"
    args = ["--data", str(search_file), "--out", str(out), "--backend", BACKEND]
    done = CliRunner().invoke(head, args)
    assert done.exit_code == 0, done.output
    assert "held-out MAE" in done.output and "task prior" in done.output
    assert "embedded 20 prompts" in done.output
    fitted = load_head(out, dims=8)
    assert fitted.info.model == "scripted-embedder" and fitted.info.seed == 0
    assert fitted.info.training_cases + len(fitted.info.held_out_ids) == 20
    assert fitted.info.held_out_ids  # 20% of 20 cases, by a hash of id and seed


def test_train_head_json_and_knn(search_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "knn.npz"
    args = ["--data", str(search_file), "--out", str(out), "--backend", BACKEND]
    done = CliRunner().invoke(head, [*args, "--kind", "knn", "--neighbours", "2", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["info"]["kind"] == "knn" and report["info"]["neighbours"] == 2
    mae = report["evaluation"]["mae"]
    assert set(mae) == {"head", "train mean", "task mean", "task prior"}
    assert set(mae["head"]) == set(HYPERPARAM_KEYS)
    # The embedding separates the tasks' temperatures, as the task does: no error left.
    assert mae["head"]["temperature"] == pytest.approx(0.0, abs=1e-9)
    assert mae["train mean"]["temperature"] > 0.3


def test_train_head_needs_embeddings(search_file: Path, tmp_path: Path) -> None:
    args = ["--data", str(search_file), "--out", str(tmp_path / "h.npz"), "--backend", "test-plain"]
    done = CliRunner().invoke(head, args)
    assert done.exit_code == 2
    assert "cannot embed text" in done.output and not (tmp_path / "h.npz").exists()


def test_train_head_rejects_a_file_that_is_not_search_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    args = ["--data", str(bad), "--out", str(tmp_path / "h.npz"), "--backend", BACKEND]
    done = CliRunner().invoke(head, args)
    assert done.exit_code == 2 and "not a search record" in done.output


def test_run_with_a_head_uses_the_learned_proposer(search_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "head.npz"
    args = ["--data", str(search_file), "--out", str(out), "--backend", BACKEND]
    assert CliRunner().invoke(head, args).exit_code == 0
    prompt = "Write a poem about the rain."
    done = CliRunner().invoke(
        run, [prompt, "--backend", BACKEND, "--head", str(out), "--json", "--no-critique"]
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert set(result["attempts"][0]["sources"].values()) == {"learned"}
    assert result["params"]["temperature"] == pytest.approx(1.2, abs=0.15)
    propose = next(e for e in result["trace"] if e["node"] == "propose")
    assert propose["message"].startswith("predicted by the learned head")


def test_chat_with_a_head_uses_the_learned_proposer(search_file: Path, tmp_path: Path) -> None:
    from hag_agent.cli.chat_command import chat

    out = tmp_path / "head.npz"
    args = ["--data", str(search_file), "--out", str(out), "--backend", BACKEND]
    assert CliRunner().invoke(head, args).exit_code == 0
    done = CliRunner().invoke(
        chat,
        ["--backend", BACKEND, "--head", str(out), "--json", "--data-dir", str(tmp_path / "d")],
        input="Write a poem about the rain.\n",
    )
    assert done.exit_code == 0, done.output
    turn = json.loads(done.stdout.splitlines()[0])
    assert set(turn["attempts"][0]["sources"].values()) == {"learned"}


def test_run_head_builtin_reads_the_packaged_head() -> None:
    prompt = "A coin is heads up. Is it still heads up?"
    args = [prompt, "--backend", BACKEND, "--head", "builtin", "--json", "--no-critique"]
    done = CliRunner().invoke(run, args)
    assert done.exit_code == 0, done.output
    propose = next(e for e in json.loads(done.output)["trace"] if e["node"] == "propose")
    # The scripted backend's embeddings do not fit the packaged head (trained on SmolLM2's).
    assert propose["data"]["head"] == "builtin" and propose["data"]["fallback"] is True
    assert "embeddings of SmolLM2-135M-Instruct" in propose["message"]
