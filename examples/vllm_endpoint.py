"""Point HAG at a vLLM server (or any OpenAI-compatible one).

Start vLLM, for instance:

    vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --port 8000 --generation-config vllm

then:

    HAG_BASE_URL=http://127.0.0.1:8000/v1 HAG_MODEL=HuggingFaceTB/SmolLM2-135M-Instruct \\
        python examples/vllm_endpoint.py

Without HAG_BASE_URL this falls back to the embedded default, so it runs anywhere.
A fine-tuned proposer served as a LoRA adapter (``--enable-lora --lora-modules hag=DIR``) is used
for the proposal call only with HAG_PROPOSER_MODEL=hag.
"""

import os

from hag_agent import HAGRunnable

if __name__ == "__main__":
    if os.environ.get("HAG_BASE_URL"):
        hag = HAGRunnable(backend="vllm")  # base URL, model, key from HAG_* variables
        where = os.environ["HAG_BASE_URL"]
    else:
        hag = HAGRunnable(backend="embedded")
        where = "the embedded default (set HAG_BASE_URL to use a server)"
    result = hag.invoke({"prompt": "Explain in one sentence why the sky is blue.", "seed": 3})
    print(f"backend: {where}")
    print(result.text)
    for attempt in result.attempts:
        sources = {k: v.value for k, v in attempt.sources.items()}
        print(f"attempt {attempt.index}: {attempt.params.model_dump()} from {sources}")
