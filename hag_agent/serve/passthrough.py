"""``--passthrough``: a request HAG cannot honour goes to the upstream server unchanged.

Only on an endpoint backend (there is an upstream to forward to). The body goes as the client
sent it, but for two things that are the server's own: the ``hag`` object is removed, and the
server's model name becomes the upstream's. The upstream's answer comes back as it is (status,
body, a stream as a stream) with ``x-hag-applied: false`` and ``x-hag-passthrough`` naming the
field that made HAG step aside.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.background import BackgroundTask

from hag_agent.backends.base import Backend
from hag_agent.serve.admission import SlotStream
from hag_agent.serve.api_errors import APIError

_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


@dataclass(frozen=True)
class Upstream:
    """Where an endpoint backend's server is, and the key it takes (never logged)."""

    base_url: str
    api_key: str
    model: str

    @classmethod
    def of(cls, backend: Backend) -> Upstream | None:
        """The upstream of a backend over an OpenAI client; None for any other backend."""
        chat_model = getattr(backend, "chat_model", None)
        client = getattr(chat_model, "root_async_client", None)
        model = getattr(chat_model, "model_name", None)
        if client is None or not isinstance(model, str):
            return None
        return cls(str(client.base_url).rstrip("/"), str(client.api_key), model)


def forwarded_body(raw: bytes, served_model: str, upstream: Upstream) -> bytes:
    """The client's body without ``hag``, naming the upstream's model for the server's."""
    body: dict[str, Any] = json.loads(raw)
    body.pop("hag", None)
    if body.get("model") == served_model:
        body["model"] = upstream.model
    return json.dumps(body).encode()


async def forward(
    client: httpx.AsyncClient,
    upstream: Upstream,
    body: bytes,
    reason: str,
    release: Callable[[int], None],
) -> SlotStream:
    """Send ``body`` to the upstream's chat completions; its answer, streamed back as it is.

    ``release`` is called with the upstream's status once the answer has gone out.

    Raises:
        APIError: 503 when the upstream cannot be reached, 504 when it times out.
    """
    request = client.build_request(
        "POST",
        f"{upstream.base_url}/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {upstream.api_key}", "Content-Type": "application/json"},
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException:
        timed_out = "passthrough: the upstream timed out"
        raise APIError(504, timed_out, code="upstream_timeout") from None
    except httpx.HTTPError as exc:
        cause = f"passthrough: the upstream is unreachable: {type(exc).__name__}"
        raise APIError(503, cause, code="upstream_unreachable") from None
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers.update({"x-hag-applied": "false", "x-hag-passthrough": reason})

    async def body_parts() -> AsyncIterator[bytes]:
        async for part in response.aiter_raw():
            yield part

    return SlotStream(
        body_parts(),
        release=lambda: release(response.status_code),
        status_code=response.status_code,
        headers=headers,
        background=BackgroundTask(response.aclose),
    )


__all__ = ["Upstream", "forward", "forwarded_body"]
