"""Concurrency: many requests at once, each answer back to its own prompt, none lost.

64 prompts go to the CI's vLLM server (a real V1 engine serving a tiny random Llama) at once,
through ``abatch``; 16 go to the embedded model at once, as 16 ``ainvoke`` gathered.
Each prompt has its own length (``Item k:`` and k words), so every answer's prompt-token count
names the prompt it was generated for: an answer that came back to the wrong caller shows a
count of another prompt. Each prompt also runs alone first with the same fixed seed, and the
concurrent answers are compared to those lone ones: the same text, or (counted, not failed)
a different one where the backend does not promise batch-invariant results, never the lone
answer of another prompt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from integration.conftest import tiny_model, vllm_server  # noqa: F401  # fixtures used below

from hag_agent import HAGResult, HAGRunnable
from hag_agent.dev.server_process import ServerProcess

from .figures import FIGURES


def prompts(count: int) -> list[str]:
    """``count`` prompts of distinct lengths (one more word each)."""
    return [f"Item {k}: " + " ".join(["apple"] * (k + 1)) for k in range(count)]


def lone_and_concurrent(
    row: str, runnable: HAGRunnable, asked: Sequence[str], how: str
) -> tuple[list[HAGResult], list[HAGResult]]:
    """Each prompt alone, then all at once (by ``abatch`` or by ``ainvoke`` gathered)."""
    start = time.monotonic()
    lone = [runnable.invoke(prompt) for prompt in asked]
    FIGURES[row]["one after another, ms"] = int((time.monotonic() - start) * 1000)

    async def together() -> list[HAGResult]:
        if how == "abatch":
            return await runnable.abatch(list(asked), config={"max_concurrency": len(asked)})
        return list(await asyncio.gather(*(runnable.ainvoke(prompt) for prompt in asked)))

    start = time.monotonic()
    concurrent = asyncio.run(together())
    FIGURES[row]["all at once, ms"] = int((time.monotonic() - start) * 1000)
    return lone, concurrent


def judge(row: str, lone: list[HAGResult], *runs: list[HAGResult]) -> None:
    """Count lost, mixed-up and lone-identical answers over the concurrent runs."""
    tally = FIGURES[row]
    counts = [a.attempts[0].prompt_tokens for a in lone]
    assert None not in counts and len(set(counts)) == len(counts), counts
    lone_texts = [a.text for a in lone]
    for results in runs:
        assert len(results) == len(lone), "a request was lost"
        for k, result in enumerate(results):
            tally["requests"] += 1
            assert isinstance(result, HAGResult) and result.attempts, (k, result)
            assert not result.attempts[0].error, (k, result.attempts[0].error)
            # its prompt's token count: the answer came back to the prompt it was made for
            assert result.attempts[0].prompt_tokens == counts[k], (k, result.attempts[0])
            if result.text == lone_texts[k]:
                tally["same text as alone"] += 1
            else:
                # never another prompt's answer
                others = lone_texts[:k] + lone_texts[k + 1 :]
                assert result.text not in others or lone_texts.count(result.text) > 1, k
                tally["text differs from alone"] += 1
    tally["lost"] += 0
    tally["mixed up"] += 0


def test_64_at_once_on_vllm(vllm_server: ServerProcess) -> None:  # noqa: F811
    runnable = HAGRunnable(
        backend="vllm",
        backend_options={"base_url": f"{vllm_server.base_url}/v1", "model": "tiny", "timeout": 120},
        proposer="prior",
        critique=False,
        seed=7,
        params={"max_tokens": 8},
    )
    row = "concurrency, vLLM (64 at once)"
    lone, batched = lone_and_concurrent(row, runnable, prompts(64), "abatch")
    judge(row, lone, batched)


@pytest.fixture(scope="module")
def embedded_runnable() -> HAGRunnable:
    return HAGRunnable(
        proposer="prior",
        critique=False,
        seed=7,
        params={"max_tokens": 4},
        backend_options={"n_threads": 1, "n_threads_batch": 1},
    )


def test_16_at_once_on_the_embedded_model(embedded_runnable: HAGRunnable) -> None:
    row = "concurrency, embedded (16 at once)"
    lone, gathered = lone_and_concurrent(row, embedded_runnable, prompts(16), "ainvoke")
    judge(row, lone, gathered)
