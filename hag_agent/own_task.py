"""An async stream iterated in a task of its own, which closing the iteration cancels.

Why a task of its own: a server cancels a gone client's response through its own cancel scope,
and the graph's stream, cancelled that way, can leave its running node (a generation) behind; a
plain task cancelled outright takes its node tasks with it. And a task can run in a context of
its own (`contextvars`), e.g. one without the calling runnable's config. One task for the whole
iteration, not one per step: the stream may hold what must be left in the task that entered it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

T = TypeVar("T")
_END: Any = object()


async def in_own_task(
    stream: AsyncIterator[T], context: contextvars.Context | None = None, name: str | None = None
) -> AsyncGenerator[T, None]:
    """``stream``'s items, iterated to its end in a task of its own (in ``context``, if given).

    Closing this generator cancels the task; what the stream raises is raised here.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in stream:
                queue.put_nowait(item)
        except Exception as exc:  # handed to the consumer, which raises it
            queue.put_nowait(exc)
        queue.put_nowait(_END)

    task = asyncio.create_task(pump(), name=name, context=context)
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        task.cancel()


__all__ = ["in_own_task"]
