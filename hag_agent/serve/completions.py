"""``POST /v1/chat/completions``: a request checked, run through HAG, answered whole or streamed.

Everything that can be refused is refused before the first byte (settings, pins out of bounds,
unsupported fields, a prompt over ``max_prompt_chars``, no free slot), so a stream only starts
for a run that can go. A stream's response starts once the run has proposed its configuration,
so that its headers carry the task, the proposer and the proposed values; a failure before that
is an HTTP error status, one after it ends the stream with an ``error`` event, which the SDKs
raise. A client that goes away cancels its run: a whole response (and a
stream until it starts) is watched for the disconnect while it runs; a stream notices on its
next event, or when the server sees the connection close.
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
    proposal_headers,
    usage_chunk,
)
from hag_agent.serve.sessions import ServerSessions, SessionTurn
from hag_agent.serve.settings import ServerSettings
from hag_agent.serve.translation import RunPlan, plan_run
from hag_agent.serve.turn import (
    Part,
    Progress,
    Proposal,
    StreamMode,
    TurnOutcome,
    run_turn,
    stream_mode,
)
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
    tokenless: HAGRunnable | None = None
    """The runnable without token streaming, for whole answers (made on the first one)."""
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
                parts = self.turn(plan, mode, session)
                opening = await opened(parts, request)
                streaming = True  # the response gives the slot back when it ends
                return SlotStream(
                    self.stream(body, plan, request, start, _chain(opening, parts)),
                    release=functools.partial(self.finished, session),
                    run=parts,
                    media_type="text/event-stream",
                    # Proxies must pass events on as they come, not buffer or cache them.
                    headers={
                        **self.stream_headers(plan, mode, opening),
                        **session_header(plan),
                        **_UNBUFFERED,
                    },
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
        turn = self.turn(plan, mode, session, whole=True)
        outcome = await until_disconnect(request, collect(turn))
        self.turn_metrics(outcome)
        request_id = completion_id()
        content = completion_body(outcome, plan, body.model, request_id)
        headers = {**hag_headers(outcome, plan), "x-hag-stream": mode, **session_header(plan)}
        return JSONResponse(content, headers=headers)

    def turn(
        self,
        plan: RunPlan,
        mode: StreamMode,
        session: SessionTurn | None = None,
        *,
        whole: bool = False,
    ) -> AsyncGenerator[list[Part], None]:
        """The run of one plan: on its session if it names one, else on the server's runnable.

        A whole answer without a session runs on one that does not stream the model where it
        can (`whole_runnable`).
        """
        if session is not None:
            return session.run(plan.settings, mode)
        runnable = self.whole_runnable(plan) if whole else self.runnable
        return run_turn(runnable, plan.messages, plan.settings, mode)

    def whole_runnable(self, plan: RunPlan) -> HAGRunnable:
        """The runnable of a whole answer: one that does not stream the model where it can.

        Nobody reads a whole answer's tokens, and streaming them costs CPU per token. A backend
        over an OpenAI client stops a generation that is not streamed when its run is cancelled
        (the HTTP request is closed); the embedded model stops only at a streamed token, so it,
        and any other backend, keeps streaming.
        """
        if Upstream.of(resolve_backend(self.runnable.run_context(plan.settings))) is None:
            return self.runnable
        if self.tokenless is None:
            self.tokenless = self.runnable.model_copy(update={"stream_tokens": "none"})
        return self.tokenless

    @staticmethod
    def stream_headers(
        plan: RunPlan, mode: StreamMode, opening: list[list[Part]]
    ) -> dict[str, str]:
        """A stream's headers: its mode, and what the proposal decided."""
        headers: dict[str, str] = {"x-hag-stream": mode}
        proposal = next((p for b in opening for p in b if isinstance(p, Proposal)), None)
        if proposal is not None:
            headers.update(proposal_headers(proposal, plan))
        return headers

    def turn_metrics(self, outcome: TurnOutcome) -> None:
        """Record a finished turn."""
        attempts = outcome.result.get("attempts") or []
        _, breakdown = turn_usage(attempts, outcome.usage.by_purpose)
        self.metrics.turn_done(outcome.result, outcome.node_seconds, breakdown)

    async def stream(
        self,
        body: ChatCompletionRequest,
        plan: RunPlan,
        request: Request,
        start: float,
        parts: AsyncGenerator[list[Part], None],
    ) -> AsyncIterator[str]:
        """The completion as server-sent events, one write per batch of the turn's parts.

        The response gives the slot back.
        """
        request_id = completion_id()
        status = CLIENT_GONE
        events = [sse(chunk_body(request_id, body.model, {"role": "assistant", "content": ""}))]
        try:
            async with contextlib.aclosing(parts):
                watch = DisconnectWatch(request)
                async for batch in parts:
                    progress = [p for p in batch if isinstance(p, Progress)]
                    if progress and await watch.gone(force=any(p.node for p in progress)):
                        return
                    events.extend(self.batch_events(body, plan, request_id, batch))
                    if events:  # held-back tokens write nothing
                        yield "".join(events)
                        events = []
            status = 200
        except HAGError as exc:
            error = from_hag_error(exc)
            status = error.status
            yield "".join([*events, sse(error.body())])
        finally:
            self.metrics.request_done(ENDPOINT, status, time.perf_counter() - start)

    def batch_events(
        self, body: ChatCompletionRequest, plan: RunPlan, request_id: str, batch: list[Part]
    ) -> list[str]:
        """The events of one batch: a chunk per piece, a comment per node, the closing events.

        The proposal sends nothing here: it went out in the headers.
        """
        events: list[str] = []
        for part in batch:
            if isinstance(part, str):
                events.append(sse(chunk_body(request_id, body.model, {"content": part})))
            elif isinstance(part, Progress):
                if part.node is not None:
                    events.append(f": {part.node}\n\n")
            elif isinstance(part, TurnOutcome):
                events.extend(self.closing_events(body, plan, request_id, part))
        return events

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


async def collect(parts: AsyncGenerator[list[Part], None]) -> TurnOutcome:
    """The outcome of a turn whose pieces nobody streams."""
    async with contextlib.aclosing(parts):
        async for batch in parts:
            for part in batch:
                if isinstance(part, TurnOutcome):
                    return part
    raise RuntimeError("a turn ends with its outcome")


async def opened(parts: AsyncGenerator[list[Part], None], request: Request) -> list[list[Part]]:
    """A stream's first batches, up to the one with the proposal (or the outcome).

    The client is watched meanwhile: at each node, and every `_DISCONNECT_POLL_S` while a node
    (a proposal call) runs.

    Raises:
        HAGError: What the run raised before its proposal was made.
        ClientGone: When the client went away first (the run is cancelled).
    """
    watch = DisconnectWatch(request)

    async def until_proposal() -> list[list[Part]]:
        read: list[list[Part]] = []
        async for batch in parts:
            if await watch.gone(force=any(isinstance(p, Progress) and p.node for p in batch)):
                raise ClientGone
            read.append(batch)
            if any(isinstance(part, Proposal | TurnOutcome) for part in batch):
                return read
        return read

    try:
        return await until_disconnect(request, until_proposal())
    except BaseException:
        await parts.aclose()  # cancels the run
        raise


async def _chain(
    first: list[list[Part]], rest: AsyncGenerator[list[Part], None]
) -> AsyncGenerator[list[Part], None]:
    """The batches already read, then the rest (closing this closes ``rest``)."""
    async with contextlib.aclosing(rest):
        for batch in first:
            yield batch
        async for batch in rest:
            yield batch


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
