"""One HAG turn for the server: the graph's stream, its tokens sorted by attempt.

Only text that ends up as the answer is handed on. When the run can make one attempt only
(critique off, or no retries) that attempt is the answer, so its tokens go out as the model
generates them (``live``). Otherwise every attempt's tokens are held until the run has chosen
one, and the chosen attempt's tokens go out then, in the pieces the model generated them
(``chosen``): the first token arrives once the run ends.

The turn hands its parts on in batches: whatever is ready at once (tokens the model sent while
the last batch was being written, the answer's pieces and the outcome at the end) goes together,
so a stream writes it to the socket in one send.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import AIMessageChunk, AnyMessage
from langchain_core.runnables import RunnableConfig

from hag_agent.context import HAGContext
from hag_agent.own_task import batches_in_own_task
from hag_agent.runnable import HAGRunnable
from hag_agent.serve.usage import DecisionUsage

StreamMode = Literal["live", "chosen"]


@dataclass
class TurnOutcome:
    """What a finished turn decided, beside its tokens."""

    result: dict[str, Any]
    """The run as `HAGResult.to_json_dict` gives it."""
    usage: DecisionUsage
    """Tokens of the turn's decision calls."""
    node_seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each node's last run (``propose``: the proposal's latency)."""
    stream_mode: StreamMode = "chosen"
    """How the answer's tokens went out."""


@dataclass(frozen=True)
class Proposal:
    """The first configuration, as the propose node chose it (before any token).

    With one attempt possible (``live``) it is the answer's configuration; otherwise a retry
    may change it, and the outcome has the chosen attempt's.
    """

    task: str | None
    proposer: str | None
    params: dict[str, Any]
    sources: dict[str, str]


def stream_mode(context: HAGContext) -> StreamMode:
    """``live`` when the run can make one attempt only, so its tokens are the answer's."""
    return "live" if not context.critique or context.max_retries == 0 else "chosen"


class _Sorter:
    """Sorts the stream's token chunks into attempts as the node events close each one."""

    def __init__(self) -> None:
        self.attempts: dict[int, list[str]] = {}
        self.current: list[str] = []
        self.node_seconds: dict[str, float] = {}
        self.result: dict[str, Any] | None = None
        self.task: str | None = None
        self._last = time.perf_counter()

    def event(self, event: Mapping[str, Any]) -> Proposal | None:
        """Take one node event; the `Proposal` when it is the propose node's."""
        now = time.perf_counter()
        if event.get("type") == "result":
            self.result = dict(event["result"])
            return None
        node = str(event.get("node", ""))
        self.node_seconds[node] = now - self._last
        self._last = now
        if node == "classify":
            self.task = event.get("task")
        elif node == "propose":
            params, sources = event.get("params") or {}, event.get("sources") or {}
            return Proposal(self.task, event.get("proposer"), dict(params), dict(sources))
        elif node == "generate" and "attempt" in event:
            self.attempts[int(event["attempt"])] = self.current
            self.current = []
        return None

    def answer_pieces(self, result: Mapping[str, Any]) -> list[str]:
        """The chosen attempt's pieces; the answer whole when they do not spell it."""
        answer = str(result.get("answer", ""))
        pieces = self.attempts.get(result.get("best_attempt") or 0, [])
        return pieces if "".join(pieces) == answer else [answer] if answer else []


@dataclass(frozen=True)
class Progress:
    """The run is alive: a node finished, or a token was generated and held back.

    A stream sends a comment per node, and looks for a gone client at either.
    """

    node: str | None
    """The node that finished; None for a held-back token."""


HELD_TOKEN = Progress(None)

Part = str | Progress | Proposal | TurnOutcome
"""What a turn hands on: a piece of the answer, progress, the proposal, the outcome."""


def _parts(chunk: AIMessageChunk, sorter: _Sorter, mode: StreamMode) -> Iterator[Part]:
    """The parts one chunk of the runnable's stream stands for."""
    for event in chunk.additional_kwargs.get("hag_events", ()):
        proposal = sorter.event(event)
        yield Progress(str(event.get("node") or event.get("type")))
        if proposal is not None:
            yield proposal
    text = chunk.text
    if text:
        sorter.current.append(text)
        yield text if mode == "live" else HELD_TOKEN


async def run_turn(
    runnable: HAGRunnable,
    messages: list[AnyMessage],
    settings: Mapping[str, Any],
    mode: StreamMode,
    config: RunnableConfig | None = None,
) -> AsyncGenerator[list[Part], None]:
    """Run one turn: batches of the answer's pieces, progress, the proposal, then the outcome.

    ``config`` names a session's thread and the checkpoint the turn starts from. The last batch
    ends with the `TurnOutcome`. Cancelling the iteration (a client gone) cancels the run and
    its model calls.

    Raises:
        HAGError: What the run raised (a `BackendError` when the backend failed).
    """
    usage = DecisionUsage()
    sorter = _Sorter()
    sent: list[str] = []
    run_config: RunnableConfig = {**(config or {}), "callbacks": [usage]}
    stream = runnable.astream({"messages": messages, **settings}, run_config)
    batches = batches_in_own_task(stream, name="hag-turn")
    async with contextlib.aclosing(batches):  # closing it early cancels the run
        async for chunks in batches:
            batch = [part for chunk in chunks for part in _parts(chunk, sorter, mode)]
            sent.extend(part for part in batch if isinstance(part, str))
            if batch:
                yield batch
    assert sorter.result is not None, "HAGRunnable.astream ends with a result event"
    pieces = sorter.answer_pieces(sorter.result)
    if mode == "live":
        streamed = "".join(sent)
        answer = "".join(pieces)
        # A backend that did not stream (or streamed differently) still gets its whole answer.
        pieces = [answer[len(streamed) :]] if answer.startswith(streamed) else []
    outcome = TurnOutcome(sorter.result, usage, sorter.node_seconds, mode)
    yield [*(piece for piece in pieces if piece), outcome]


__all__ = [
    "HELD_TOKEN",
    "Part",
    "Progress",
    "Proposal",
    "StreamMode",
    "TurnOutcome",
    "run_turn",
    "stream_mode",
]
