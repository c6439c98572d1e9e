"""Load on ``hag-agent serve``: N concurrent streaming clients for T seconds, each phase alike.

Phase ``direct`` streams from an instant fake OpenAI-compatible upstream (its answer is fixed and
costs nothing); phase ``hag`` streams the same request through ``hag-agent serve`` in front of
that upstream (rules classify, prior proposal, one generation, signals critique). Prints, per
phase, requests/s, p50 and p99 latency to the last event, errors by status, and lost responses
(a 200 stream that does not end in [DONE] with the whole answer); then the latency HAG adds
(hag minus direct, at p50 and p99). Targets at 32 streams: p50 <= 5 ms, p99 <= 20 ms added,
0 lost, 0 5xx not the upstream's. On a 2-core machine the load, the server and the upstream
share the cores: the figures include that contention.

    python benchmarks/serve_load.py [--clients 32] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hag_agent.dev.server_process import ServerProcess, free_port, start_server

ANSWER = "Paris is the capital of France, and it has been for a long time."
PROMPT = [{"role": "user", "content": "What is the capital of France?"}]


def upstream_app() -> object:
    """The instant fake upstream: a fixed answer, streamed word by word, with usage."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
        data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
        return f"data: {json.dumps({**data, 'choices': choices})}\n\n"

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def chat(request: Request) -> StreamingResponse | JSONResponse:
        body = await request.json()
        if not body.get("stream"):
            message = {"role": "assistant", "content": ANSWER}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            usage = {"prompt_tokens": 9, "completion_tokens": 13, "total_tokens": 22}
            whole = {"id": "c", "object": "chat.completion", "created": 0, "model": "fake"}
            return JSONResponse({**whole, "choices": [choice], "usage": usage})

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            words = ANSWER.split(" ")
            for i, word in enumerate(words):
                yield chunk({"content": word if i == 0 else f" {word}"})
            yield chunk({}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 9, "completion_tokens": len(words), "total_tokens": 9}
                yield f"data: {json.dumps({'id': 'c', 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0


async def one(http: httpx.AsyncClient, url: str, phase: Phase) -> None:
    body = {"model": "fake", "messages": PROMPT, "stream": True}
    start = time.perf_counter()
    try:
        async with http.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                await response.aread()
                phase.errors[str(response.status_code)] += 1
                return
            text, done = [], False
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    if "error" in event:
                        phase.errors["stream-error"] += 1
                        return
                    for choice in event.get("choices") or []:
                        text.append(choice["delta"].get("content") or "")
    except httpx.HTTPError as exc:
        phase.errors[type(exc).__name__] += 1
        return
    if not done or "".join(text) != ANSWER:
        phase.lost += 1
        return
    phase.latencies.append(time.perf_counter() - start)


async def load(url: str, clients: int, seconds: float) -> tuple[Phase, float]:
    phase = Phase()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        for _ in range(3):
            await one(http, url, Phase())  # warm-up
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                await one(http, url, phase)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return phase, time.perf_counter() - start


def quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def report(name: str, phase: Phase, wall: float) -> tuple[float, float]:
    done = len(phase.latencies)
    p50, p99 = quantile(phase.latencies, 0.5), quantile(phase.latencies, 0.99)
    errors = dict(phase.errors) or "none"
    print(
        f"{name:>6}: {done / wall:7.1f} req/s  p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"
        f"  ok {done}  lost {phase.lost}  errors {errors}"
    )
    return p50, p99


def start(command: list[str], port: int, log: Path, health: str) -> ServerProcess:
    return start_server(command, port=port, health_path=health, deadline=120, log_path=log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream_port:  # the child process: serve the fake upstream
        import uvicorn

        uvicorn.run(upstream_app(), port=args.upstream_port, log_level="warning")  # type: ignore[arg-type]
        return
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    up_port, hag_port = free_port(), free_port()
    upstream = start(
        [sys.executable, __file__, "--upstream-port", str(up_port)],
        up_port,
        tmp / "serve_load_upstream.log",
        "/v1/models",
    )
    hag_command = [
        sys.executable, "-m", "hag_agent.cli", "serve", "--port", str(hag_port),
        "--base-url", f"http://127.0.0.1:{up_port}/v1", "--model", "fake",
        "--max-concurrency", str(args.clients * 2), "--log-level", "warning",
    ]  # fmt: skip
    hag = start(hag_command, hag_port, tmp / "serve_load_hag.log", "/ready")
    try:
        print(f"{args.clients} concurrent streaming clients, {args.seconds:.0f} s a phase")
        direct = asyncio.run(
            load(f"http://127.0.0.1:{up_port}/v1/chat/completions", args.clients, args.seconds)
        )
        through = asyncio.run(
            load(f"http://127.0.0.1:{hag_port}/v1/chat/completions", args.clients, args.seconds)
        )
        d50, d99 = report("direct", *direct)
        h50, h99 = report("hag", *through)
        print(f" added: p50 {(h50 - d50) * 1000:.1f} ms  p99 {(h99 - d99) * 1000:.1f} ms")
    finally:
        hag.stop()
        upstream.stop()


if __name__ == "__main__":
    main()
