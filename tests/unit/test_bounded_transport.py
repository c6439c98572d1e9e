"""The endpoint's bounded transport: a response's time, a started stream, a cut-off stream."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from hag_agent.backends.bounded_transport import DeadlineReached, _SyncBody, _Watch, call_budget
from hag_agent.backends.openai_compatible import (
    EndpointOptions,
    OpenAICompatibleBackend,
    _own_words,
    is_transient,
)
from hag_agent.errors import BackendTimeoutError, BackendUnavailableError

REQUEST = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


def body(chunks: list[bytes], content_type: str, limit: float = 5.0) -> _SyncBody:
    response = httpx.Response(200, headers={"content-type": content_type})
    return _SyncBody(_Chunks(chunks), _Watch(REQUEST, response, limit))


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes], pause: float = 0.0) -> None:
        self.chunks = chunks
        self.pause = pause

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            time.sleep(self.pause)
            yield chunk


def test_a_response_past_its_time_is_a_read_timeout() -> None:
    response = httpx.Response(200, headers={"content-type": "application/json"})
    slow = _SyncBody(_Chunks([b"{", b'"a"', b":1}"], pause=0.06), _Watch(REQUEST, response, 0.1))
    with pytest.raises(httpx.ReadTimeout, match="not complete within its time") as raised:
        list(slow)
    assert not isinstance(raised.value, DeadlineReached)


def test_the_call_budget_bounds_a_response_below_its_own_limit() -> None:
    response = httpx.Response(200, headers={"content-type": "application/json"})
    with call_budget(0.05):
        watch = _Watch(REQUEST, response, 60.0)
    time.sleep(0.06)
    with pytest.raises(DeadlineReached, match="call's deadline ran out"):
        list(_SyncBody(_Chunks([b"{}"]), watch))


def test_an_event_stream_marks_the_call_started_and_must_end_with_done() -> None:
    with call_budget(5.0) as budget:
        whole = body([b"data: {}\n\n", b"data: [DONE]\n\n"], "text/event-stream")
        assert list(whole) and budget.stream_started
    with call_budget(5.0) as budget:
        keepalive_only = body([b": ping\n\n"], "text/event-stream")
        with pytest.raises(httpx.RemoteProtocolError, match="without \\[DONE\\]"):
            list(keepalive_only)
        assert not budget.stream_started  # a comment is no event: a retry repeats nothing
    with call_budget(5.0) as budget:
        cut = body([b"da", b"ta: {}\n\n"], "text/event-stream")  # "data:" split in two
        with pytest.raises(httpx.RemoteProtocolError):
            list(cut)
        assert budget.stream_started


def test_a_json_body_needs_no_done() -> None:
    assert list(body([b'{"a": 1}'], "application/json")) == [b'{"a": 1}']


def test_transport_errors_are_transient_and_name_what_is_under_them() -> None:
    silent = httpx.ReadError("")
    silent.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert is_transient(silent) and is_transient(httpx.ReadTimeout("x"))
    assert (
        _own_words(silent)
        == "ReadError (ConnectionResetError: [Errno 104] Connection reset by peer)"
    )
    assert _own_words(httpx.ReadTimeout("")) == "ReadTimeout"
    assert _own_words(httpx.RemoteProtocolError("cut")) == "cut"


def endpoint(deadline: float) -> OpenAICompatibleBackend:
    options = EndpointOptions(base_url="http://127.0.0.1:9/v1", model="m", deadline=deadline)
    return OpenAICompatibleBackend(options)


async def test_a_last_try_cut_by_the_deadline_reports_the_fault_before_it() -> None:
    # on a slow machine the waits between tries can leave the last try almost no time: the
    # cause to report is the broken connection the tries met, not the deadline
    tries: list[int] = []

    async def breaks_then_runs_out() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")
        raise DeadlineReached("the call's deadline ran out during this try")

    with pytest.raises(BackendUnavailableError) as raised:
        await endpoint(30.0).retrying(breaks_then_runs_out)
    message = str(raised.value)
    assert "connection broke after 2 tries, the last cut short by the call's deadline (30 s)" in (
        message
    )
    assert message.endswith("without sending complete body")


async def test_a_deadline_with_no_fault_before_it_is_a_timeout() -> None:
    async def runs_out() -> str:
        raise DeadlineReached("the call's deadline ran out during this try")

    with pytest.raises(BackendTimeoutError, match="timed out after 1 try: the call's deadline"):
        await endpoint(0.01).retrying(runs_out)
