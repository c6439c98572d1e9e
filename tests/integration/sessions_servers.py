"""``hag-agent serve`` processes keeping sessions, in front of the fault server (an instant,
scriptable upstream): the helpers the SQLite and PostgreSQL session tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai

from hag_agent.dev.server_process import ServerProcess, free_port, start_server

from .fault_server import FaultServer

ONE_CALL = ("--proposer", "prior", "--no-critique")
"""One upstream call per turn: the prior proposes, the one attempt is the answer."""


def echo(body: dict[str, Any]) -> str:
    """The upstream's answer: the last user text and how many messages came with it."""
    messages = body.get("messages") or []
    return f"{messages[-1].get('content')} (seen {len(messages)})"


def sessions_server(
    tmp: Path, upstream: FaultServer, sessions: str, *, log: str = "serve.log"
) -> ServerProcess:
    """A server keeping sessions at ``sessions``."""
    port = free_port()
    script = Path(sys.executable).with_name("hag-agent")
    command = [str(script), "serve", "--port", str(port), "--log-level", "warning"]
    command += ["--base-url", upstream.base_url, "--model", "m", *ONE_CALL]
    command += ["--sessions", sessions]
    return start_server(command, port=port, health_path="/health", deadline=60, log_path=tmp / log)


def chat_turn(
    upstream: FaultServer, session: str, text: str, *args: str, env: dict[str, str] | None = None
) -> str:
    """One turn of ``hag-agent chat --session`` (piped), in front of ``upstream``: its answer."""
    command = [str(Path(sys.executable).with_name("hag-agent")), "chat", "--session", session]
    command += ["--proposer", "prior", "--base-url", upstream.base_url, "--model", "m", *args]
    chat = subprocess.run(
        command,
        input=f"/critique off\n{text}\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert chat.returncode == 0, chat.stderr
    return chat.stdout.strip()


def client(server: ServerProcess, retries: int = 0) -> openai.OpenAI:
    """The official client, retrying 409s ``retries`` times."""
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=retries)


def say(server: ServerProcess, text: str, session: str = "s1", **options: Any) -> str:
    """One turn of ``session``: only the new user message is sent."""
    retries = options.pop("retries", 0)
    completion = client(server, retries).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": text}],
        extra_body={"hag": {"session": session}},
        **options,
    )
    return (completion.choices[0].message.content or "").strip()
