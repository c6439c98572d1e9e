"""Does creating the embedded engine in llama.cpp's embedding mode change chat? Text and speed.

The embedded backend loads its one llama.cpp instance with ``embedding=True`` so that the same
engine can embed prompts for the learned head (embedding mode on only during that pass). This
compares it with a plain instance (``embedding=False``) on seeded chat completions, interleaved:
identical texts, and the median wall time of a generation capped at --max-tokens. It also checks
that an embedding pass in between leaves the next seeded generation unchanged.

    python benchmarks/embedding_mode.py [--rounds 4] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from llama_cpp import Llama

from hag_agent.backends.llama_cpp_chat import default_model_path, load_engine

PROMPTS = [
    "Write one sentence about a dragon.",
    "What is 17 * 3? Answer with the number.",
    "Translate to French: the cat sleeps on the warm window sill.",
]


def chat(llama: Any, prompt: str, seed: int, temperature: float, max_tokens: int) -> str:
    llama.n_tokens = 0  # no prompt cache: each call from scratch
    out = llama.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        seed=seed,
        temperature=temperature,
        top_p=0.95,
        top_k=40,
        max_tokens=max_tokens,
    )
    return str(out["choices"][0]["message"]["content"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    path = default_model_path()
    load_before = os.getloadavg()[0]
    engine = load_engine(path, 2048, 1)
    plain = Llama(model_path=str(path), n_ctx=2048, n_threads=1, verbose=False)
    same = total = 0
    times: dict[str, list[float]] = {"plain": [], "engine": []}
    for _ in range(args.rounds):
        for i, prompt in enumerate(PROMPTS):
            for temperature in (0.0, 0.9):
                texts = {}
                for name, llama in (("plain", plain), ("engine", engine.llama)):
                    start = time.perf_counter()
                    texts[name] = chat(llama, prompt, 10 + i, temperature, args.max_tokens)
                    times[name].append(time.perf_counter() - start)
                total += 1
                same += texts["plain"] == texts["engine"]
    before = chat(engine.llama, PROMPTS[0], 5, 0.9, args.max_tokens)
    with engine.lock:
        engine.embed("Something else entirely, to embed.")
    after = chat(engine.llama, PROMPTS[0], 5, 0.9, args.max_tokens)
    print(f"identical seeded texts, plain vs engine: {same}/{total}")
    print(f"same seeded text before and after an embedding pass: {before == after}")
    for name, values in times.items():
        print(
            f"{name:6s} generation (max {args.max_tokens} tokens): median "
            f"{1000 * statistics.median(values):.0f} ms, min {1000 * min(values):.0f} ms"
        )
    load_after = os.getloadavg()[0]
    print(f"machine load average (1 min) before/after: {load_before:.2f} / {load_after:.2f}")


if __name__ == "__main__":
    main()
