"""How many requests run at once: past the limit, a 429 with Retry-After, at once.

A request holds its slot until its response is complete, the last streamed chunk included.
Refusing beats queueing here: a queued request still times out at the client, after using
nothing but its place in line, while a 429 tells the client when to come back.
"""

from __future__ import annotations

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


__all__ = ["Admission"]
