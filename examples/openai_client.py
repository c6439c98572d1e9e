"""Talk to ``hag-agent serve`` with the official OpenAI client: HAG behind a base URL.

Start a server (two lines; the embedded model, nothing else needed):

    pip install -e '.[embedded,serve]'
    hag-agent serve            # http://127.0.0.1:8080/v1

then:

    HAG_SERVER_URL=http://127.0.0.1:8080/v1 python examples/openai_client.py

Without HAG_SERVER_URL this starts a server of its own on a free port, and stops it at the end,
so it runs anywhere.
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

from openai import OpenAI


@contextlib.contextmanager
def own_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "hag_agent.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # /ready: the model is loaded
            url = f"http://127.0.0.1:{port}/ready"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
                break
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()  # SIGTERM: requests in flight finish first
        process.wait(30)


def main(base_url: str) -> None:
    client = OpenAI(base_url=base_url, api_key=os.environ.get("HAG_SERVER_KEY", "none"))
    question = [{"role": "user", "content": "Explain in one sentence why the sky is blue."}]

    # A whole answer. Per-request HAG options travel in extra_body; sampling values you send
    # yourself (here max_tokens) are pinned: HAG chooses the rest.
    completion = client.chat.completions.create(
        model="hag-agent",
        messages=question,
        max_tokens=60,
        extra_body={"hag": {"max_retries": 1}},
    )
    print(completion.choices[0].message.content)
    hag = completion.model_extra["hag"]
    print(f"task {hag['task']}, {len(hag['attempts'])} attempt(s), {hag['stop_reason']}")
    for key, entry in hag["params"].items():
        print(f"  {key} = {entry['value']} ({entry['source']})")

    # Streamed, token by token: with critique off the one attempt streams as it is generated.
    stream = client.chat.completions.create(
        model="hag-agent",
        messages=[{"role": "user", "content": "Write a haiku about the sea."}],
        stream=True,
        extra_body={"hag": {"critique": False}},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()


if __name__ == "__main__":
    if os.environ.get("HAG_SERVER_URL"):
        main(os.environ["HAG_SERVER_URL"])
    else:
        with own_server() as url:
            main(url)
