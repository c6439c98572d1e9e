"""Several prompts of different kinds at once; each gets its own decoding settings.

python examples/batch.py
"""

from hag_agent import HAGRunnable

PROMPTS = [
    "What is 144 / 12?",
    "Translate 'see you tomorrow' into Spanish.",
    "Write a slogan for a bicycle shop.",
    "What is the capital of Canada?",
]

if __name__ == "__main__":
    hag = HAGRunnable(max_retries=1, seed=1, params={"max_tokens": 80})
    for prompt, result in zip(PROMPTS, hag.batch(PROMPTS), strict=True):
        params = result.params
        assert params is not None
        print(f"[{result.task}] temperature={params.temperature} top_p={params.top_p} -> {prompt}")
        print("   ", result.text.strip().replace("\n", " ")[:120])
