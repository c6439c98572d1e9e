"""Server-side conversations: ``hag.session: NAME`` keeps a chat's history on the server.

A session lives where ``hag-agent chat`` keeps its own (``--sessions``, else
``$HAG_SESSIONS_URL``, else the data directory), so the chat and the server can continue each
other's sessions. The rules:

- The client sends only what is new: one or more user messages. A new session may start with
  anything a conversation may (a system prompt, earlier turns); later system prompts or
  assistant messages are refused (400), since the session already has its history.
- A client that sends the whole conversation instead (as OpenAI clients do) is understood: when
  the messages start with the session's history (the same roles and texts, in order, white
  space around a text aside), that part is dropped and the rest is the new part.
- One turn at a time per session, across processes: a second request while one runs gets 409
  with Retry-After (the OpenAI SDKs retry it). The lock dies with its holder.
- A turn is kept once its run finished (before its last chunk is sent); one that fails, is
  cancelled or whose server dies leaves the session as it was: the next turn continues from the
  last finished one. So a client never misses a turn it saw completed; but a server that dies
  in the moment between storing a turn and sending its end leaves it stored, and a client that
  retries that request adds the turn a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from hag_agent.errors import HAGError, SessionBusyError
from hag_agent.runnable import HAGRunnable
from hag_agent.serve.api_errors import APIError, bad_request
from hag_agent.serve.translation import RunPlan
from hag_agent.serve.turn import Part, StreamMode, TurnOutcome, run_turn
from hag_agent.sessions import SessionStore
from hag_agent.sessions.turn_locks import TurnLock

RETRY_BUSY_S = 1
"""The Retry-After of a 409 for a session running another turn."""


def _same(a: BaseMessage, b: BaseMessage) -> bool:
    # Leading and trailing white space aside: some clients strip the answers they send back.
    return a.type == b.type and a.text.strip() == b.text.strip()


def new_part(history: Sequence[BaseMessage], sent: Sequence[AnyMessage]) -> list[AnyMessage]:
    """What a request adds to a session whose conversation so far is ``history``.

    Raises:
        APIError: 400 naming the first message that cannot continue the session.
    """
    start = 0
    if history and len(sent) > len(history) and all(map(_same, history, sent)):
        start = len(history)  # the whole conversation was sent: only its end is new
    if not history:
        return list(sent)
    for i in range(start, len(sent)):
        if not isinstance(sent[i], HumanMessage):
            raise bad_request(
                f"messages[{i}] is a {sent[i].type} message, but session's history has "
                f"{len(history)} messages already: send only the new user message(s), or the "
                "whole conversation exactly as the session has it",
                f"messages[{i}].role",
                "session_history_mismatch",
            )
    return list(sent[start:])


@dataclass
class SessionTurn:
    """One claimed turn of a session: its lock, where it starts, and what it adds."""

    name: str
    store: SessionStore
    runnable: HAGRunnable
    lock: TurnLock
    head: RunnableConfig
    """The last finished turn's checkpoint: this turn forks from it."""
    messages: list[AnyMessage]
    """The new messages only."""
    turns: int
    """Finished turns before this one."""

    async def run(
        self, settings: Mapping[str, Any], mode: StreamMode
    ) -> AsyncGenerator[list[Part], None]:
        """`run_turn` on the session; the turn is recorded before its outcome is handed on."""
        batches = run_turn(self.runnable, self.messages, settings, mode, config=self.head)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                if any(isinstance(part, TurnOutcome) for part in batch):
                    await asyncio.to_thread(self.store.save, self.name, turns=self.turns + 1)
                yield batch

    def release(self) -> None:
        """Let the session's next turn in (again: no effect)."""
        self.lock.release()


class ServerSessions:
    """The server's sessions store, opened on the first request that names a session."""

    def __init__(self, where: str | None, runnable: HAGRunnable) -> None:
        """Sessions at ``where`` (what ``--sessions`` takes; None: the chat's default)."""
        self.where = where
        self.base = runnable
        self.store: SessionStore | None = None
        self.runnable: HAGRunnable | None = None
        self._opening = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()

    async def open(self) -> tuple[SessionStore, HAGRunnable]:
        """The store and a runnable checkpointing into it, opened once.

        Raises:
            APIError: 503 when the sessions database cannot be opened.
        """
        async with self._opening:
            if self.store is None or self.runnable is None:
                try:
                    store = await asyncio.to_thread(SessionStore, self.where)
                except HAGError as exc:
                    raise APIError(
                        503, f"sessions are unavailable: {exc}", code="sessions_unavailable"
                    ) from None
                self._stack.callback(store.close)
                saver = await self._stack.enter_async_context(store.database.async_checkpointer())
                self.runnable = HAGRunnable(
                    model=self.base.model,
                    context=dict(self.base.context),
                    stream_tokens=self.base.stream_tokens,
                    checkpointer=saver,
                    durability="sync",  # each step is stored before the next one runs
                )
                self.store = store
            return self.store, self.runnable

    async def claim(self, plan: RunPlan) -> SessionTurn:
        """Take the plan's session for one turn: its lock, its head, the request's new part.

        Raises:
            APIError: 409 when the session runs another turn; 400 when the messages cannot
                continue it; 503 when sessions cannot be opened.
        """
        assert plan.session is not None
        store, runnable = await self.open()
        try:
            lock = await asyncio.to_thread(store.turn_lock, plan.session)
        except SessionBusyError as exc:
            raise APIError(
                409,
                f"{exc}; retry after {RETRY_BUSY_S} s",
                param="hag.session",
                code="session_busy",
                headers={"Retry-After": str(RETRY_BUSY_S)},
            ) from None
        try:
            head = await store.anext_turn(runnable.graph, plan.session)
            history = await store.amessages(runnable.graph, head)
            messages = new_part(history, plan.messages)
        except BaseException:
            lock.release()
            raise
        turns = sum(isinstance(m, AIMessage) for m in history)
        return SessionTurn(plan.session, store, runnable, lock, head, messages, turns)

    async def close(self) -> None:
        """Close the store (at shutdown)."""
        await self._stack.aclose()


__all__ = ["RETRY_BUSY_S", "ServerSessions", "SessionTurn", "new_part"]
