"""The learned head on the real embedded model: embeddings, ``train head``, ``run --head``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.messages import HumanMessage

from hag_agent import HAGRunnable, HyperParams, ParamSource, TaskKind
from hag_agent.backends import GenerationRequest
from hag_agent.backends.embedded import EmbeddedBackend
from hag_agent.backends.llama_cpp_chat import DEFAULT_GGUF_FILE
from hag_agent.cli.train_head_command import head
from hag_agent.learned_head import load_head
from hag_agent.tasks import TASK_PRIORS
from hag_agent.testing import search_record as record

POEMS = [
    "Write a short poem about the sea.",
    "Write a haiku about autumn leaves.",
    "Write a limerick about a cat.",
    "Write a poem about the moon.",
    "Write two lines of verse about rain.",
    "Write a short poem about a lighthouse.",
]
SUMS = [
    "What is 12 + 30?",
    "What is 7 times 8?",
    "Compute 100 - 37.",
    "What is 15 + 27?",
    "How much is 9 times 6?",
    "What is 81 divided by 9?",
]
WARM = HyperParams(
    temperature=1.2, top_p=0.95, top_k=0, min_p=0.05, repetition_penalty=1.1, max_tokens=48
)
COLD = HyperParams(
    temperature=0.1, top_p=0.9, top_k=20, min_p=0.0, repetition_penalty=1.0, max_tokens=32
)


def test_embed_gives_576_floats_the_same_for_the_same_text(embedded: EmbeddedBackend) -> None:
    assert embedded.capabilities.embeddings
    vector = embedded.embed("Write a short poem about the sea.").vector
    assert len(vector) == 576 and all(isinstance(v, float) for v in vector)
    assert embedded.embed("Write a short poem about the sea.").vector == vector
    assert embedded.embed("What is 12 + 30?").vector != vector
    assert embedded.embedding_model().startswith(f"{DEFAULT_GGUF_FILE}:")


def test_an_embedding_pass_inside_a_turn_leaves_the_answer_unchanged(
    embedded: EmbeddedBackend, tmp_path: Path
) -> None:
    """The embedding pass clears the shared context: the answer must not depend on it."""
    prompt = "Write one sentence about a dragon."
    pinned = WARM.model_copy(update={"max_tokens": 24}).model_dump()
    fixed = HAGRunnable(
        model=embedded, proposer="fixed", fixed_params=HyperParams(**pinned), critique=False
    )
    expected = embedded.generate(
        GenerationRequest([HumanMessage(prompt)], HyperParams(**pinned), seed=4)
    ).text
    assert fixed.invoke({"prompt": prompt, "seed": 4}).text == expected
    head_file = _train(tmp_path)
    learned = HAGRunnable(
        model=embedded, proposer="learned", head_path=str(head_file), critique=False
    )
    result = learned.invoke({"prompt": prompt, "seed": 4, "params": pinned})
    assert set(result.attempts[0].sources.values()) == {ParamSource.PINNED}
    assert result.text == expected  # same params, same seed: same text after an embed pass


def _search_file(tmp_path: Path) -> Path:
    records = [record(f"poem-{i}", "creative", p, WARM) for i, p in enumerate(POEMS)]
    records += [record(f"sum-{i}", "math", p, COLD) for i, p in enumerate(SUMS)]
    path = tmp_path / "search.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    return path


def _train(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "head.npz"
    args = ["--data", str(_search_file(tmp_path)), "--out", str(out), *extra]
    done = CliRunner().invoke(head, args)
    assert done.exit_code == 0, done.output
    return out


def test_train_head_then_run_with_it(tmp_path: Path) -> None:
    out = _train(tmp_path)
    fitted = load_head(out, dims=576)
    assert fitted.info.model is not None and fitted.info.model.startswith(DEFAULT_GGUF_FILE)
    assert fitted.info.training_cases + len(fitted.info.held_out_ids) == 12
    assert out.stat().st_size < 100_000

    script = Path(sys.executable).with_name("hag-agent")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "hag_agent.cli"]
    done = subprocess.run(
        [
            *command,
            "run",
            "Write a poem about the stars.",
            "--proposer",
            "learned",
            "--head",
            str(out),
            "--json",
            "--seed",
            "1",
            "--no-critique",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("HAG_")},
    )
    assert done.returncode == 0, done.stderr
    assert "embeddings required" not in done.stderr  # llama.cpp stays quiet
    result = json.loads(done.stdout)
    assert set(result["attempts"][0]["sources"].values()) == {"learned"}
    assert result["params"]["temperature"] > 0.6  # a poem: closer to WARM than to COLD
    propose = next(e for e in result["trace"] if e["node"] == "propose")
    assert propose["message"].startswith("predicted by the learned head")
    assert propose["data"]["embed_s"] > 0 and propose["data"]["head_kind"] == "ridge"


@pytest.mark.parametrize("kind", ["knn"])
def test_train_head_knn(tmp_path: Path, kind: str) -> None:
    fitted = load_head(_train(tmp_path, "--kind", kind, "--neighbours", "3"))
    assert fitted.info.kind == kind and fitted.info.dims == 576


FIBONACCI = (
    "Write a Python function that returns the n-th Fibonacci number, with a docstring and a test."
)
# A prompt of the translation suite the packaged head was trained on (docs/results/grid).
IN_SUITE = "Translate into French: The museum is free on the first Sunday of the month."


def test_the_packaged_head_does_not_cut_a_long_answer(embedded: EmbeddedBackend) -> None:
    """The grid data held max_tokens at 48: the packaged head must not propose that."""
    learned = HAGRunnable(model=embedded, proposer="learned", head_path="builtin", critique=False)
    result = learned.invoke({"prompt": FIBONACCI, "seed": 1})
    assert result.task is TaskKind.CODE
    assert result.attempts[0].params.max_tokens == TASK_PRIORS[TaskKind.CODE].max_tokens == 768
    assert result.attempts[0].sources["max_tokens"] is ParamSource.PRIOR
    propose = next(e for e in result.trace if e.node == "propose")
    # Code is no task kind of the grid suites: the whole prior, before any embedding pass.
    assert propose.data["outside_training"] is True and "embed_s" not in propose.data
    assert "held no code requests" in propose.message


def test_the_packaged_head_learns_what_its_data_varied(embedded: EmbeddedBackend) -> None:
    learned = HAGRunnable(model=embedded, proposer="learned", head_path="builtin", critique=False)
    result = learned.invoke({"prompt": IN_SUITE, "seed": 1})
    attempt = result.attempts[0]
    prior = TASK_PRIORS[TaskKind.TRANSLATION]
    assert result.task is TaskKind.TRANSLATION
    assert attempt.params.max_tokens == prior.max_tokens == 256  # not the data's 48
    assert attempt.sources["max_tokens"] is ParamSource.PRIOR
    # The search held min_p at 0 too: a sampling value, kept at the value it was scored with.
    assert (attempt.params.min_p, attempt.sources["min_p"]) == (0.0, ParamSource.FIXED)
    learned_keys = {"temperature", "top_p", "top_k", "repetition_penalty"}
    assert {attempt.sources[k] for k in learned_keys} == {ParamSource.LEARNED}
    propose = next(e for e in result.trace if e.node == "propose")
    assert propose.data["similarity"] >= propose.data["threshold"]
    assert propose.data["prior_keys"] == ["max_tokens"] and propose.data["held_keys"] == ["min_p"]
    assert propose.message.startswith("predicted by the learned head")
