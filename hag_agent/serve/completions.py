"""``POST /v1/chat/completions``: a request checked, run through HAG, answered whole or streamed.

Everything that can be refused is refused before the first byte (settings, pins out of bounds,
unsupported fields, a prompt over ``max_prompt_chars``, no free slot), so a stream only starts
for a run that can go. A failure after that ends the stream with an ``error`` event, which the
SDKs raise. A client that goes away cancels its run: a whole response is watched for the
disconnect while it runs; a stream notices on its next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from hag_agent.backend_choice import resolve_backend
from hag_agent.context import HAGContext
from hag_agent.errors import HAGError, InvalidSettingsError
from hag_agent.nodes import last_human_text
from hag_agent.runnable import HAGRunnable
from hag_agent.serve.admission import Admission, SlotStream
from hag_agent.serve.api_errors import APIError, bad_request, from_hag_error
from hag_agent.serve.metrics import ServerMetrics
from hag_agent.serve.passthrough import Upstream, forward, forwarded_body
from hag_agent.serve.protocol import ChatCompletionRequest
from hag_agent.serve.responses import (
    chunk_body,
    completion_body,
    completion_id,
    finish_reason,
    hag_headers,
    hag_object,
    usage_chunk,
)
from hag_agent.serve.sessions import ServerSessions, SessionTurn
from hag_agent.serve.settings import ServerSettings
from hag_agent.serve.translation import RunPlan, plan_run
from hag_agent.serve.turn import Progress, StreamMode, TurnOutcome, run_turn, stream_mode
from hag_agent.serve.usage import turn_usage

T = TypeVar("T")
ENDPOINT = "chat_completions"
PASSTHROUGH = "chat_completions_passthrough"
CLIENT_GONE = 499
"""The status recorded (never sent) for a request whose client went away."""
_DISCONNECT_POLL_S = 0.25
_UNBUFFERED = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


@dataclass
class Completions:
    """What the chat completions endpoint needs: the server's settings, runnable and guards."""

    settings: ServerSettings
    runnable: HAGRunnable
    admission: Admission
    metrics: ServerMetrics
    http: httpx.AsyncClient | None = None
    """The client of ``--passthrough`` requests, made on the first one."""
    sessions: ServerSessions = field(init=False)
    """``hag.session`` conversations, opened on the first request that names one."""

    def __post_init__(self) -> None:
        self.sessions = ServerSessions(self.settings.sessions, self.runnable)

    async def handle(self, body: ChatCompletionRequest, request: Request) -> Response:
        """Answer one request, whole or as server-sent events.

        Raises:
            APIError: For a request refused, or a run that failed (whole responses).
            ClientGone: When the client of a whole response went away.
        """
        start = time.perf_counter()
        status = 500
        try:
            self.admission.enter()
        except APIError as exc:
            self.metrics.request_done(ENDPOINT, exc.status, time.perf_counter() - start)
            raise
        self.metrics.in_flight.inc()
        streaming = False
        session: SessionTurn | None = None
        try:
            try:
                plan, mode = self.prepare(body)
            except APIError as refused:
                if not self.passes_through(refused):
                    raise
                forwarded = await self.pass_through(body, request, refused, start)
                streaming = True  # the forwarded answer gives the slot back when it ends
                return forwarded
            if plan.session is not None:
                session = await self.sessions.claim(plan)
            if body.stream:
                streaming = True  # the response gives the slot back when it ends
                return SlotStream(
                    self.stream(body, plan, mode, request, start, session),
                    release=functools.partial(self.finished, session),
                    media_type="text/event-stream",
                    # Proxies must pass events on as they come, not buffer or cache them.
                    headers={"x-hag-stream": mode, **session_header(plan), **_UNBUFFERED},
                )
            response = await self.whole(body, plan, mode, request, session)
            status = 200
            return response
        except HAGError as exc:
            status = from_hag_error(exc).status
            raise
        except ClientGone:
            status = CLIENT_GONE
            raise
        finally:
            if not streaming:
                self.metrics.request_done(ENDPOINT, status, time.perf_counter() - start)
                self.finished(session)

    def passes_through(self, refused: APIError) -> bool:
        """Whether a refused request goes to the upstream instead (``--passthrough``)."""
        return self.settings.passthrough and refused.code == "unsupported"

    async def pass_through(
        self, body: ChatCompletionRequest, request: Request, refused: APIError, start: float
    ) -> Response:
        """Forward the request to the upstream unchanged; HAG is not applied.

        Raises:
            APIError: The refusal itself when the backend has no upstream server.
        """
        upstream = Upstream.of(resolve_backend(self.runnable.run_context()))
        if upstream is None:
            refused.message += " (--passthrough needs an endpoint backend: there is no upstream)"
            raise refused
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))

        def done(status: int) -> None:
            self.metrics.request_done(PASSTHROUGH, status, time.perf_counter() - start)
            self.finished()

        raw = forwarded_body(await request.body(), self.settings.served_model(), upstream)
        return await forward(self.http, upstream, raw, refused.param or "", done)

    def finished(self, session: SessionTurn | None = None) -> None:
        """Give the slot back (and the session's turn, if any)."""
        if session is not None:
            session.release()
        self.admission.leave()
        self.metrics.in_flight.dec()

    def prepare(self, body: ChatCompletionRequest) -> tuple[RunPlan, StreamMode]:
        """The run's plan and stream mode, every setting checked before any model call.

        Raises:
            APIError: For anything the run would refuse.
        """
        plan = plan_run(body, self.settings)
        try:
            context = self.runnable.run_context(plan.settings)
            resolve_backend(context)
        except InvalidSettingsError as exc:
            field = plan.param_fields.get(exc.field, f"hag.{exc.field}")
            raise bad_request(str(exc), field) from None
        check_prompt(plan, context)
        return plan, stream_mode(context)

    async def whole(
        self,
        body: ChatCompletionRequest,
        plan: RunPlan,
        mode: StreamMode,
        request: Request,
        session: SessionTurn | None = None,
    ) -> Response:
        """The whole completion, once the run is done."""
        outcome = await until_disconnect(request, collect(self.turn(plan, mode, session)))
        self.turn_metrics(outcome)
        request_id = completion_id()
        content = completion_body(outcome, plan, body.model, request_id)
        headers = {**hag_headers(outcome, plan), "x-hag-stream": mode, **session_header(plan)}
        return JSONResponse(content, headers=headers)

    def turn(
        self, plan: RunPlan, mode: StreamMode, session: SessionTurn | None = None
    ) -> AsyncGenerator[str | Progress | TurnOutcome, None]:
        """The run of one plan (on its session, if it names one)."""
        if session is not None:
            return session.run(plan.settings, mode)
        return run_turn(self.runnable, plan.messages, plan.settings, mode)

    def turn_metrics(self, outcome: TurnOutcome) -> None:
        """Record a finished turn."""
        attempts = outcome.result.get("attempts") or []
        _, breakdown = turn_usage(attempts, outcome.usage.by_purpose)
        self.metrics.turn_done(outcome.result, outcome.node_seconds, breakdown)

    async def stream(
        self,
        body: ChatCompletionRequest,
        plan: RunPlan,
        mode: StreamMode,
        request: Request,
        start: float,
        session: SessionTurn | None = None,
    ) -> AsyncIterator[str]:
        """The completion as server-sent events (the response gives the slot back)."""
        request_id = completion_id()
        status = CLIENT_GONE
        try:
            yield sse(chunk_body(request_id, body.model, {"role": "assistant", "content": ""}))
            async with contextlib.aclosing(self.turn(plan, mode, session)) as parts:
                watch = DisconnectWatch(request)
                async for part in parts:
                    if isinstance(part, str):
                        yield sse(chunk_body(request_id, body.model, {"content": part}))
                    elif isinstance(part, Progress):
                        if await watch.gone(force=part.node is not None):
                            return
                        if part.node is not None:
                            yield f": {part.node}\n\n"
                    else:
                        for event in self.closing_events(body, plan, request_id, part):
                            yield event
            status = 200
        except HAGError as exc:
            error = from_hag_error(exc)
            status = error.status
            yield sse(error.body())
        finally:
            self.metrics.request_done(ENDPOINT, status, time.perf_counter() - start)

    def closing_events(
        self, body: ChatCompletionRequest, plan: RunPlan, request_id: str, outcome: TurnOutcome
    ) -> list[str]:
        """The last chunk (finish reason and the ``hag`` object), usage if asked, [DONE]."""
        self.turn_metrics(outcome)
        last = chunk_body(
            request_id,
            body.model,
            {},
            finish_reason(outcome),
            hag=hag_object(outcome, plan),
        )
        events = [sse(last)]
        if body.stream_options is not None and body.stream_options.include_usage:
            events.append(sse(usage_chunk(request_id, body.model, outcome)))
        events.append("data: [DONE]\n\n")
        return events


class DisconnectWatch:
    """Looks for a gone client, at most every ``_DISCONNECT_POLL_S`` unless forced."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.last = time.perf_counter()

    async def gone(self, *, force: bool = False) -> bool:
        """Whether the client disconnected (checked now if forced or due)."""
        now = time.perf_counter()
        if not force and now - self.last < _DISCONNECT_POLL_S:
            return False
        self.last = now
        return await self.request.is_disconnected()


def session_header(plan: RunPlan) -> dict[str, str]:
    """``x-hag-session`` for a request that names a session."""
    return {} if plan.session is None else {"x-hag-session": plan.session}


def sse(data: Any) -> str:
    """One server-sent event carrying JSON."""
    return f"data: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def check_prompt(plan: RunPlan, context: HAGContext) -> None:
    """Refuse a prompt over ``max_prompt_chars`` before the run starts (the graph would too).

    Raises:
        APIError: 400 naming the messages.
    """
    prompt = last_human_text(plan.messages)
    if not prompt.strip():
        raise bad_request("the last user message is empty", "messages", "invalid_input")
    if len(prompt) > context.max_prompt_chars:
        raise bad_request(
            f"the prompt has {len(prompt)} characters, over this server's max_prompt_chars="
            f"{context.max_prompt_chars}",
            "messages",
            "prompt_too_long",
        )


async def collect(parts: AsyncGenerator[str | Progress | TurnOutcome, None]) -> TurnOutcome:
    """The outcome of a turn whose pieces nobody streams."""
    async with contextlib.aclosing(parts):
        async for part in parts:
            if isinstance(part, TurnOutcome):
                return part
    raise RuntimeError("a turn ends with its outcome")


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it when the client disconnects first.

    Raises:
        ClientGone: When the client went away (the work is cancelled).
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientGone
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


__all__ = ["CLIENT_GONE", "ENDPOINT", "ClientGone", "Completions", "check_prompt", "sse"]
