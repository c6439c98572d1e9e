"""Serving the fine-tuned proposer: vLLM (CPU build) with the tiny model's LoRA adapter as ``hag``.

The adapter is trained here in seconds (`hag_agent.training.sft`) on the very model the server
loads; vLLM serves the base as ``tiny`` and the adapter as ``hag``. The graph asks ``hag`` for
its proposal and ``tiny`` for the answer; the server's request log (``--enable-log-requests``)
shows which requests ran with the adapter.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hag_agent import HAGRunnable
from hag_agent.dev.server_process import ServerProcess
from hag_agent.dev.vllm_server import start_vllm

from .conftest import vllm_python
from .tiny_training import require_train_extra, write_search_file

RECEIVED = re.compile(r"Received request (\S+): params: (.*), lora_request: (.*)\.\s*$")


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter (rank 8, every linear layer) trained for two steps on the tiny model."""
    require_train_extra()
    from hag_agent.training.sft import SFTSettings, train_sft

    root = tmp_path_factory.mktemp("lora")
    data = write_search_file(root / "search.jsonl", 8)
    settings = SFTSettings(max_steps=2, batch_size=4, threads=1, compare_base=False)
    report = train_sft(data, str(tiny_model), root / "out", settings)
    return Path(report.adapter)


@pytest.fixture(scope="module")
def lora_server(
    tiny_model: Path, tiny_adapter: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    log = Path(tmp_path_factory.mktemp("vllm-lora")) / "server.log"
    server = start_vllm(
        vllm_python(), tiny_model, log, lora=tiny_adapter, extra_args=["--enable-log-requests"]
    )
    yield server
    server.stop(timeout=30)


def received(server: ServerProcess, since: int) -> list[tuple[str, str, str]]:
    """(request id, sampling params, LoRA request) of each request logged after ``since``."""
    text = server.log_path.read_text(errors="replace")[since:]
    return [m.groups() for line in text.splitlines() if (m := RECEIVED.search(line))]


def post(server: ServerProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        result: dict[str, Any] = json.load(response)
        return result


def test_adapter_is_listed_on_top_of_the_base(lora_server: ServerProcess) -> None:
    with urllib.request.urlopen(f"{lora_server.base_url}/v1/models", timeout=10) as response:
        models = {m["id"]: m for m in json.load(response)["data"]}
    assert set(models) == {"tiny", "hag"}
    assert models["hag"]["parent"] == "tiny"


def test_chat_completion_on_the_adapter(lora_server: ServerProcess) -> None:
    since = len(lora_server.log_path.read_text(errors="replace"))
    body = {
        "model": "hag",
        "messages": [{"role": "user", "content": "Write a poem about the sea."}],
        "max_tokens": 8,
        "temperature": 0.0,
        "seed": 1,
    }
    reply = post(lora_server, "/v1/chat/completions", body)
    assert reply["model"] == "hag"
    assert reply["usage"]["completion_tokens"] >= 1
    assert isinstance(reply["choices"][0]["message"]["content"], str)
    (request,) = received(lora_server, since)
    assert "lora_name='hag'" in request[2]
    # The adapter changes the logits: the base model's greedy tokens differ on the same prompt.
    base_reply = post(
        lora_server, "/v1/chat/completions", {**body, "model": "tiny", "logprobs": True}
    )
    hag_reply = post(lora_server, "/v1/chat/completions", {**body, "logprobs": True})
    base_lp = [t["logprob"] for t in base_reply["choices"][0]["logprobs"]["content"]]
    hag_lp = [t["logprob"] for t in hag_reply["choices"][0]["logprobs"]["content"]]
    assert base_lp != hag_lp


def test_graph_proposes_with_the_adapter_and_answers_with_the_base(
    lora_server: ServerProcess,
) -> None:
    since = len(lora_server.log_path.read_text(errors="replace"))
    runnable = HAGRunnable(
        backend="vllm",
        backend_options={
            "base_url": f"{lora_server.base_url}/v1",
            "model": "tiny",
            "proposer_model": "hag",
            "timeout": 120,
        },
        classifier="rules",
        proposer="self",
        critic="signals",
        max_retries=1,
        accept_threshold=1.0,  # a random model never earns a perfect score: two answers
        seed=3,
        params={"max_tokens": 16},
    )
    result = runnable.invoke("Write a short poem about the sea.")
    nodes = [event.node for event in result.trace]
    proposals = nodes.count("propose")
    assert proposals == 1 and result.trace[nodes.index("propose")].data["raw"].startswith("{")
    requests = received(lora_server, since)
    on_adapter = [r for r in requests if "lora_name='hag'" in r[2]]
    on_base = [r for r in requests if r[2] == "None"]
    assert len(on_adapter) == proposals
    assert len(on_base) == len(result.attempts) >= 2
    assert len(requests) == len(on_adapter) + len(on_base)
    # The proposal ran under the proposal's structured output; the answers under the attempts'
    # own sampling values.
    assert "regex" in on_adapter[0][1]
    for _, params, _ in on_base:
        assert "max_tokens=16" in params and "regex" not in params
