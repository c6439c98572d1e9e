"""Shared by the fine-tuning tests: a synthetic search file, the tiny base, the train-extra skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import search_record
from hag_agent.testing.extras import missing_extra, skip_reason

from .conftest import MODEL_CACHE, VLLM_PYTHON

TASKS = (TaskKind.MATH, TaskKind.CREATIVE, TaskKind.REASONING, TaskKind.TRANSLATION)


def require_train_extra() -> None:
    """Skip when the train extra is missing (the tests' one extras policy)."""
    missing = missing_extra("train")
    if missing:
        pytest.skip(skip_reason("train", missing))


def write_search_file(path: Path, n: int = 12) -> Path:
    """``n`` search records over four tasks, with temperatures that follow the task."""
    lines = []
    for i in range(n):
        task = TASKS[i % len(TASKS)]
        temperature = {TaskKind.CREATIVE: 1.2, TaskKind.TRANSLATION: 0.3}.get(task, 0.0)
        params = TASK_PRIORS[task].model_copy(update={"temperature": temperature})
        record = search_record(
            f"{task.value}-{i}", task.value, f"Case {i}: {task.value} question number {i}?", params
        )
        lines.append(record.model_dump_json())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_base() -> Path:
    """The tiny random Llama: the vLLM tier's build when it is set up, else built here.

    The vLLM environment's build is preferred so an adapter trained on it is served on the very
    same weights; without it, the training environment (torch, transformers, tokenizers) builds
    the same recipe into its own cache folder.
    """
    from hag_agent.dev.vllm_server import build_tiny_model

    if VLLM_PYTHON and Path(VLLM_PYTHON).exists():
        return build_tiny_model(VLLM_PYTHON, MODEL_CACHE)
    from hag_agent.dev.tiny_llama import build_tiny_llama

    return build_tiny_llama(MODEL_CACHE / "train-env")
