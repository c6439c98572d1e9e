"""A small OpenAI-compatible HTTP server on 127.0.0.1 that misbehaves on request.

Each request takes the next behaviour from a script (the last one repeats): ``ok``, ``500``,
``400``, ``429`` (with Retry-After), ``slow`` (sleeps past the client's timeout), ``drop`` (closes
the connection without answering), ``nonjson`` (200 with an HTML body). Every request is recorded
(path, headers, JSON body), so tests can assert what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
    requests: list[Recorded] = field(default_factory=list)
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
                if behaviour == "slow":
                    time.sleep(server.slow_seconds)
                    behaviour = "ok"
                if behaviour == "500":
                    return self._send(
                        500, {"error": {"message": "engine crashed", "type": "InternalServerError"}}
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
                    return self._stream(body, content)
                self._send(200, _completion(body, content))

            def _stream(self, body: dict[str, Any], content: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for token in content.split(" "):
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
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                final = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
                self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                self.close_connection = True

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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


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
