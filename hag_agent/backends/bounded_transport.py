"""An HTTP transport that bounds a whole response in time and watches streamed answers.

httpx's timeouts bound each wait (to connect, for one read), not a whole response: a server that
sends a byte a second never trips a 60 s read timeout, and a body that never ends holds a call
forever, past any deadline. This transport ends a response once its time is up, with
`httpx.ReadTimeout`: the request's own limit, or what is left of the call's `CallBudget`,
whichever comes first.

It also watches server-sent events. A stream that has delivered an event is marked as started in
the call's budget: its tokens may already be on a user's screen, so a retry would show them
twice. A stream that ends without ``[DONE]`` is a cut-off answer (`httpx.RemoteProtocolError`),
not a complete one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpx

# The OpenAI SDK's own pool sizes, which its default client would have used.
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


@dataclass
class CallBudget:
    """One backend call over all its tries: when it must end, and whether a stream started."""

    ends: float
    """`time.monotonic` by which every response of the call must be complete."""
    stream_started: bool = False
    """A streamed answer delivered an event (so a failure after it must not be retried)."""


class DeadlineReached(httpx.ReadTimeout):
    """The call's deadline, shared by all its tries, ended during a response.

    Not the response's own fault: the tries before it used the time, so the error worth
    reporting is usually theirs.
    """


_BUDGET: ContextVar[CallBudget | None] = ContextVar("hag_call_budget", default=None)


@contextmanager
def call_budget(seconds: float) -> Iterator[CallBudget]:
    """Bound the responses of the calls made inside the block to ``seconds`` from now."""
    budget = CallBudget(time.monotonic() + seconds)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


class _Watch:
    """What one response has done so far, checked as each piece of its body arrives."""

    def __init__(self, request: httpx.Request, response: httpx.Response, limit: float) -> None:
        self.request = request
        self.budget = _BUDGET.get()
        self.limit = limit
        self.ends = time.monotonic() + limit
        self.by_deadline = self.budget is not None and self.budget.ends < self.ends
        if self.budget is not None:
            self.ends = min(self.ends, self.budget.ends)
        content_type = response.headers.get("content-type", "")
        self.event_stream = content_type.startswith("text/event-stream")
        self.tail = b""

    def see(self, chunk: bytes) -> None:
        if time.monotonic() > self.ends:
            if self.by_deadline:
                raise DeadlineReached(
                    "the call's deadline ran out during this try", request=self.request
                )
            raise httpx.ReadTimeout(
                f"the response was not complete within its time ({self.limit:g} s at most)",
                request=self.request,
            )
        if self.event_stream and self.budget is not None and b"data:" in self.tail + chunk:
            self.budget.stream_started = True
        self.tail = (self.tail + chunk)[-32:]

    def finish(self) -> None:
        if self.event_stream and b"[DONE]" not in self.tail:
            raise httpx.RemoteProtocolError(
                "the event stream ended without [DONE]: the answer was cut off",
                request=self.request,
            )


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, watch: _Watch) -> None:
        self.inner = inner
        self.watch = watch

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.watch.see(chunk)
            yield chunk
        self.watch.finish()

    def close(self) -> None:
        self.inner.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, watch: _Watch) -> None:
        self.inner = inner
        self.watch = watch

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.watch.see(chunk)
            yield chunk
        self.watch.finish()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _watched(response: httpx.Response, body: _SyncBody | _AsyncBody) -> httpx.Response:
    """The response with its body read through ``body``."""
    return httpx.Response(
        response.status_code, headers=response.headers, stream=body, extensions=response.extensions
    )


class BoundedTransport(httpx.HTTPTransport):
    """httpx's transport, each response bounded to ``limit`` seconds and its call's budget."""

    def __init__(self, limit: float) -> None:
        super().__init__(limits=_LIMITS)
        self.limit = limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; its response's body is read under the watch."""
        response = super().handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        return _watched(response, _SyncBody(response.stream, _Watch(request, response, self.limit)))


class AsyncBoundedTransport(httpx.AsyncHTTPTransport):
    """The async `BoundedTransport`."""

    def __init__(self, limit: float) -> None:
        super().__init__(limits=_LIMITS)
        self.limit = limit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; its response's body is read under the watch."""
        response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        watch = _Watch(request, response, self.limit)
        return _watched(response, _AsyncBody(response.stream, watch))


def bounded_client(limit: float) -> httpx.Client:
    """A sync client whose responses take ``limit`` seconds at most (and their call's budget)."""
    return httpx.Client(transport=BoundedTransport(limit), timeout=limit, follow_redirects=True)


def bounded_async_client(limit: float) -> httpx.AsyncClient:
    """The async `bounded_client`."""
    return httpx.AsyncClient(
        transport=AsyncBoundedTransport(limit), timeout=limit, follow_redirects=True
    )
