"""How many requests run at once: past the limit, a 429 with Retry-After, at once.

A request holds its slot until its response is complete, the last streamed chunk included.
Refusing beats queueing here: a queued request still times out at the client, after using
nothing but its place in line, while a 429 tells the client when to come back.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from hag_agent.serve.api_errors import APIError


class Admission:
    """A counter of requests in flight with a hard limit (one event loop: no lock needed)."""

    def __init__(self, limit: int, retry_after_s: int) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.in_flight = 0

    def enter(self) -> None:
        """Take a slot.

        Raises:
            APIError: 429 with Retry-After when every slot is taken.
        """
        if self.in_flight >= self.limit:
            raise APIError(
                429,
                f"the server is at its limit of {self.limit} requests in flight; retry after "
                f"{self.retry_after_s} s",
                code="too_many_requests",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self.in_flight += 1

    def leave(self) -> None:
        """Give a slot back."""
        self.in_flight = max(0, self.in_flight - 1)


class SlotStream(StreamingResponse):
    """A streamed response that gives its request's slot back however it ends.

    Released here rather than in the body's generator: a client gone before the first byte
    means the generator never starts, and its ``finally`` never runs. For the same reason a
    run already started behind the stream (``run``) is closed here.
    """

    def __init__(
        self,
        content: AsyncIterator[str] | AsyncIterator[bytes],
        *,
        release: Callable[[], None],
        run: AsyncGenerator[Any, None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(content, **kw)
        self._release = release
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream; then close its run and give the slot back."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                if self._run is not None:
                    await self._run.aclose()  # a no-op when the body closed it
            finally:
                self._release()


__all__ = ["Admission", "SlotStream"]
