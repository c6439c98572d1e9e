"""A small OpenAI-compatible HTTP server on 127.0.0.1 that misbehaves on request.

Each request takes the next behaviour from a script (the last one repeats): ``ok``, ``500``,
``502``, ``503``, ``400``, ``429`` (with Retry-After), ``429-bare`` (without it), ``slow`` (sleeps
past the client's timeout), ``drop`` (closes the connection without answering), ``reset`` (a TCP
reset before answering), ``midreset`` (a TCP reset half way through the answer: after two of
its events when streamed, after half its bytes when whole, each ``trickle_seconds`` before the
reset), ``truncated`` (a 200 whose body
stops short of its content-length), ``nonjson`` (200 with an HTML body), ``trickle`` (the answer
one byte every ``trickle_seconds``), ``endless`` (a 200 whose body never ends: a byte every
``trickle_seconds`` until the client leaves). Every request is recorded (path, headers, JSON
body), so tests can assert what the client sent.

A request whose last message holds a tag ``[fault:NAME:TIMES:CASE]`` takes NAME instead of the
script, the first TIMES requests carrying that tag (``*``: every one), then ``ok``: concurrent
cases, each with its own tag, share one server.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TAG = re.compile(r"\[fault:([\w-]+):(\d+|\*):([\w.-]+)\]")


def fault_tag(behaviour: str, case: str, times: int | None = None) -> str:
    """The prompt tag that makes ``behaviour`` happen ``times`` times (None: always) for ``case``."""
    return f"[fault:{behaviour}:{'*' if times is None else times}:{case}]"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class FaultServer:
    script: list[str] = field(default_factory=lambda: ["ok"])
    reply_text: str = "The answer is 4."
    reply: Callable[[dict[str, Any]], str] | None = None
    """Makes each answer from the request body, instead of ``reply_text``."""
    retry_after: str = "1"
    slow_seconds: float = 5.0
    trickle_seconds: float = 0.2
    requests: list[Recorded] = field(default_factory=list)
    tagged: dict[str, int] = field(default_factory=dict)
    _position: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def next_behaviour(self, record: Recorded) -> str:
        with self._lock:
            self.requests.append(record)
            tag = _TAG.search(_last_message(record.body))
            if tag:
                name, times, _ = tag.groups()
                seen = self.tagged.get(tag.group(0), 0)
                self.tagged[tag.group(0)] = seen + 1
                return name if times == "*" or seen < int(times) else "ok"
            behaviour = self.script[min(self._position, len(self.script) - 1)]
            self._position += 1
            return behaviour

    def reset(self, script: list[str]) -> None:
        with self._lock:
            self.script = script
            self._position = 0
            self.requests.clear()

    def start(self) -> FaultServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                record = Recorded(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                behaviour = server.next_behaviour(record)
                if behaviour == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if behaviour == "reset":
                    return self._reset()
                if behaviour == "endless":
                    return self._endless(bool(body.get("stream")))
                if behaviour == "slow":
                    time.sleep(server.slow_seconds)
                    behaviour = "ok"
                if behaviour in ("500", "502", "503"):
                    return self._send(
                        int(behaviour),
                        {"error": {"message": "engine crashed", "type": "InternalServerError"}},
                    )
                if behaviour == "400":
                    return self._send(
                        400,
                        {
                            "error": {
                                "message": "top_p must be in (0, 1], got 5.0",
                                "type": "BadRequestError",
                            }
                        },
                    )
                if behaviour == "429":
                    return self._send(
                        429,
                        {"error": {"message": "slow down"}},
                        {"Retry-After": server.retry_after},
                    )
                if behaviour == "429-bare":
                    return self._send(429, {"error": {"message": "slow down"}})
                if behaviour == "nonjson":
                    return self._send_raw(
                        200, b"<html><body>Bad Gateway</body></html>", "text/html"
                    )
                content = server.reply(body) if server.reply else server.reply_text
                regex = (body.get("structured_outputs") or {}).get("regex")
                if regex:  # the whole proposal object, as the regex allows it
                    content = _structured_reply({})
                elif body.get("response_format"):
                    content = _structured_reply(body["response_format"])
                if body.get("stream"):
                    return self._stream(body, content, behaviour)
                data = json.dumps(_completion(body, content)).encode()
                if behaviour == "midreset":
                    self._head(200, "application/json", len(data))
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    time.sleep(server.trickle_seconds)
                    return self._reset()
                if behaviour == "truncated":
                    self._head(200, "application/json", len(data))
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                    return
                if behaviour == "trickle":
                    self._head(200, "application/json", len(data))
                    return self._trickle(data)
                self._send_raw(200, data, "application/json")

            def _reset(self) -> None:
                """Close with a TCP reset (RST), not an orderly close (FIN)."""
                self.close_connection = True
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()

            def _trickle(self, data: bytes) -> None:
                try:
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(server.trickle_seconds)
                except OSError:  # the client gave up: what a trickle is for
                    self.close_connection = True

            def _endless(self, stream: bool) -> None:
                """Headers promising a body, then a byte at a time until the client leaves.

                A stream gets SSE comment lines (keep-alives), which carry no event.
                """
                if stream:
                    self._head(200, "text/event-stream", 10**9)
                else:
                    self._head(200, "application/json", 10**9)
                try:
                    while True:
                        self.wfile.write(b": ping\n\n" if stream else b" ")
                        self.wfile.flush()
                        time.sleep(server.trickle_seconds)
                except OSError:
                    self.close_connection = True

            def _head(self, status: int, ctype: str, length: int) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(length))
                self.end_headers()

            def _stream(self, body: dict[str, Any], content: str, behaviour: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for number, token in enumerate(content.split(" ")):
                    if behaviour == "midreset" and number == 2:
                        self.wfile.flush()
                        # A reset drops what the client has not read yet: let it read first.
                        time.sleep(server.trickle_seconds)
                        return self._reset()
                    chunk = {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body.get("model", "m"),
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": token + " "},
                                "finish_reason": None,
                            }
                        ],
                    }
                    self._stream_write(f"data: {json.dumps(chunk)}\n\n".encode(), behaviour)
                final = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
                if behaviour == "truncated":  # the stream stops without its end
                    self.close_connection = True
                    return
                self._stream_write(
                    f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode(), behaviour
                )
                self.close_connection = True

            def _stream_write(self, data: bytes, behaviour: str) -> None:
                if behaviour == "trickle":
                    return self._trickle(data)
                self.wfile.write(data)
                self.wfile.flush()

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

            def _send_raw(
                self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _QuietServer(ThreadingHTTPServer):
    """A server that does not print a client's leaving (the point of several behaviours)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _last_message(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "") if isinstance(messages[-1], dict) else ""
    return content if isinstance(content, str) else json.dumps(content)


def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "m"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": len(content.split()), "total_tokens": 9},
    }


def _structured_reply(response_format: dict[str, Any]) -> str:
    """A valid answer for the schema asked for (task choice, judge verdict, or proposal)."""
    schema = (
        response_format.get("json_schema", {}).get("schema") or response_format.get("schema") or {}
    )
    properties = set(schema.get("properties", {}))
    if "task" in properties:
        return json.dumps({"task": "math", "confidence": 0.9})
    if "score" in properties:
        return json.dumps({"score": 8, "issues": [], "direction": "none"})
    proposal = {
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.0,
        "repetition_penalty": 1.1,
        "max_tokens": 64,
    }
    return json.dumps(proposal, separators=(",", ":"))
