"""An async stream iterated in a task of its own, which closing the iteration cancels.

Why a task of its own: a server cancels a gone client's response through its own cancel scope,
and the graph's stream, cancelled that way, can leave its running node (a generation) behind; a
plain task cancelled outright takes its node tasks with it. And a task can run in a context of
its own (`contextvars`), e.g. one without the calling runnable's config. One task for the whole
iteration, not one per step: the stream may hold what must be left in the task that entered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

T = TypeVar("T")
_END: Any = object()


async def batches_in_own_task(
    stream: AsyncIterator[T], context: contextvars.Context | None = None, name: str | None = None
) -> AsyncGenerator[list[T], None]:
    """``stream``'s items in batches of whatever is ready at once, iterated in a task of its own.

    The task runs in ``context`` when given. Closing this generator cancels the task; what the
    stream raises is raised here, after the items that came before it. Batches let a consumer
    that writes to a socket write once for several items.
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
        while True:
            ready = [await queue.get()]
            while not queue.empty():
                ready.append(queue.get_nowait())
            batch: list[T] = []
            for item in ready:
                if item is _END or isinstance(item, Exception):
                    if batch:
                        yield batch
                    if isinstance(item, Exception):
                        raise item
                    return
                batch.append(item)
            yield batch
    finally:
        task.cancel()


async def in_own_task(
    stream: AsyncIterator[T], context: contextvars.Context | None = None, name: str | None = None
) -> AsyncGenerator[T, None]:
    """``stream``'s items one by one, iterated as `batches_in_own_task` iterates them."""
    batches = batches_in_own_task(stream, context, name)
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for item in batch:
                yield item


__all__ = ["batches_in_own_task", "in_own_task"]
