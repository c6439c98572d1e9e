"""The chat loop: read a line, run a turn (or a slash command), show what happened, repeat.

Interactive (stdin is a terminal): the answer streams as it is generated, a panel under it shows
what the model chose; Ctrl-C cancels the turn, Ctrl-D leaves. Piped: one prompt per line, plain
answers (or JSON lines), for scripts. Every completed turn is on disk before the next prompt.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text

from hag_agent.chat.commands import COMMANDS, Command, CommandError, is_command, parse_command
from hag_agent.chat.settings import ChatSettings, parse_assignment
from hag_agent.errors import BackendError, HAGError, HAGInputError
from hag_agent.runnable import HAGResult, HAGRunnable
from hag_agent.sessions import SessionStore, check_session_name, new_session_name
from hag_agent.tasks import TaskKind
from hag_agent.visualization.topology import result_from_record

_STAGES = {
    "classify": "proposing decoding settings…",
    "propose": "generating…",
    "adjust": "generating again…",
}


class ChatSession:
    """One terminal conversation over a `SessionStore`."""

    def __init__(
        self,
        store: SessionStore,
        name: str,
        run_settings: dict[str, Any],
        *,
        console: Console,
        interactive: bool,
        as_json: bool = False,
        pins: dict[str, float] | None = None,
    ) -> None:
        """Open (or resume) session ``name``.

        Args:
            store: Where sessions are kept.
            name: The session to open; a saved one resumes with its settings.
            run_settings: `HAGContext` fields for every turn (backend, seed, proposer...).
            console: Where to write.
            interactive: Stream answers and show panels (a terminal), or print plain answers.
            as_json: In piped mode, one JSON object per turn instead of the plain answer.
            pins: Hyperparameters to pin on top of the session's saved ones.
        """
        self.store = store
        self.console = console
        # Piped, stdout carries only answers; everything else goes to stderr.
        self.info = console if interactive else Console(stderr=True, highlight=False)
        self.interactive = interactive
        self.as_json = as_json
        self.base = run_settings
        self.runnable = HAGRunnable(
            checkpointer=store.checkpointer, durability="sync", **run_settings
        )
        self.failures = 0
        self.last: HAGResult | None = None
        self.open(name)
        if pins:
            self._update(pins={**self.settings.pins, **pins})

    # -- sessions ------------------------------------------------------------------------

    def open(self, name: str, settings: ChatSettings | None = None) -> None:
        """Switch to session ``name`` (resuming what was saved under it)."""
        self.name = check_session_name(name)
        resumed = self.store.exists(name)
        self.settings = (
            self.store.settings(name, ChatSettings) if resumed else (settings or ChatSettings())
        )
        self.head: RunnableConfig = self.store.head(self.runnable.graph, name)
        self.last = None
        history = self.store.messages(self.runnable.graph, self.head)
        self.turns = sum(isinstance(m, AIMessage) for m in history)
        # Counted from the conversation: a kill just after a turn's checkpoint left it behind.
        self.store.save(name, self.settings, turns=self.turns)
        if not self.interactive:
            return
        if resumed:
            self.console.print(f"[bold]resumed session {name}[/bold]: {self.turns} turn(s)")
            self._show_recent(history)
        else:
            self.console.print(f"[bold]session {name}[/bold] (type /help for commands)")

    def _show_recent(self, history: list[Any]) -> None:
        for message in history[-2:]:
            who = "you" if isinstance(message, HumanMessage) else "hag"
            text = message.text.strip().replace("\n", " ")
            self.console.print(
                Text(f"{who}: {text[:200]}{'…' if len(text) > 200 else ''}", style="dim")
            )

    # -- the loop ------------------------------------------------------------------------

    def loop(self, lines: Iterable[str] | None = None) -> None:
        """Run until /exit or end of input (Ctrl-D); ``lines`` replaces the terminal prompt."""
        source = iter(lines) if lines is not None else self._prompts()
        for line in source:
            if not self.handle(line):
                break
        if self.interactive:
            self.console.print(
                f"[dim]session {self.name} is saved; resume it with "
                f"hag-agent chat --session {self.name}[/dim]"
            )

    def _prompts(self) -> Iterator[str]:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  # line editing and history for input()
        while True:
            try:
                yield self.console.input("[bold cyan]you>[/bold cyan] ")
            except KeyboardInterrupt:
                self.console.print("\n[dim](Ctrl-D or /exit to leave)[/dim]")
            except EOFError:
                self.console.print()
                return

    def handle(self, line: str) -> bool:
        """Handle one typed line; False to stop."""
        text = line.rstrip("\n")
        if not text.strip():
            return True
        if is_command(text.lstrip()):
            try:
                return self.command(parse_command(text))
            except CommandError as exc:
                self._error(str(exc))
                return True
        self.turn(text[1:] if text.startswith("//") else text)
        return True

    # -- a turn ----------------------------------------------------------------------------

    def turn(self, prompt: str) -> HAGResult | None:
        """Answer one prompt in this session; None if it failed or was cancelled."""
        started = time.perf_counter()
        result: HAGResult | None = None
        streamed: list[str] = []
        status = self._status()
        lock = None
        try:
            lock = self.store.turn_lock(self.name)
            # Another process (a server on the same sessions) may have added turns meanwhile.
            self.head = self.store.next_turn(self.runnable.graph, self.name)
            chunks = self.runnable.stream(
                {"prompt": prompt, **self.settings.run_settings()}, config=self.head
            )
            for chunk in chunks:
                if chunk.text and self.interactive:
                    if status is not None:
                        status.stop()
                    streamed.append(chunk.text)
                    self.console.print(
                        chunk.text, end="", markup=False, highlight=False, soft_wrap=True
                    )
                for event in chunk.additional_kwargs.get("hag_events", []):
                    result = self._on_event(event, status, streamed) or result
        except KeyboardInterrupt:
            self._stop(status)
            self.console.print("\n[yellow]cancelled[/yellow] (nothing of this turn was kept)")
            return None
        except BackendError as exc:
            self._stop(status)
            self.failures += 1
            self._error(f"backend error: {exc}", newline=bool(streamed))
            return None
        except HAGError as exc:
            self._stop(status)
            self.failures += 1
            self._error(str(exc), newline=bool(streamed))
            return None
        except self.store.write_errors as exc:  # the turn's checkpoint was refused: stop here
            self._stop(status)
            raise self.store.write_failed(exc) from None
        finally:
            if lock is not None:
                lock.release()
        self._stop(status)
        assert result is not None, "a finished stream ends with its result"
        self.head = self.store.head(self.runnable.graph, self.name)
        history = self.store.messages(self.runnable.graph, self.head)
        self.turns = sum(isinstance(m, AIMessage) for m in history)
        self.store.save(self.name, self.settings, turns=self.turns)
        self.last = result
        self._show(result, "".join(streamed), time.perf_counter() - started)
        return result

    def _status(self) -> Status | None:
        if not self.interactive:
            return None
        status = self.console.status("[dim]classifying…[/dim]", spinner="dots")
        status.start()
        return status

    @staticmethod
    def _stop(status: Status | None) -> None:
        if status is not None:
            status.stop()

    def _on_event(
        self, event: dict[str, Any], status: Status | None, streamed: list[str]
    ) -> HAGResult | None:
        if event.get("type") == "result":
            return result_from_record(event["result"])
        if not self.interactive:
            return None
        if event.get("type") == "retry":
            self.console.print(
                f"\n[magenta]↻ retry[/magenta] [dim]{event.get('message', '')}[/dim]"
            )
            streamed.clear()
        if status is not None and event.get("node") in _STAGES:
            status.update(f"[dim]{_STAGES[event['node']]}[/dim]")
            status.start()
        return None

    def _show(self, result: HAGResult, streamed: str, elapsed_s: float) -> None:
        if not self.interactive:
            # Written as is: no wrapping, markup or highlighting in what scripts read.
            text = json.dumps(result.to_json_dict(), ensure_ascii=False) if self.as_json else None
            self.console.out(text or result.text, highlight=False)
            return
        if not streamed.strip():
            self.console.print(result.text, markup=False, highlight=False, end="", soft_wrap=True)
        elif streamed != result.text:
            # The last attempt streamed, but an earlier one scored better: that one is the answer.
            self.console.print(
                f"\n[dim]answer kept from attempt {result.best_attempt}, which scored higher:[/dim]"
            )
            self.console.print(result.text, markup=False, highlight=False, end="", soft_wrap=True)
        self.console.print()
        from hag_agent.chat.turn_view import turn_panel

        self.console.print(turn_panel(result, elapsed_s))

    def _error(self, message: str, newline: bool = False) -> None:
        prefix = "\n" if newline else ""
        if self.interactive:
            self.console.print(f"{prefix}[red]error:[/red] {message}", highlight=False)
        else:
            self.info.print(f"error: {message}", markup=False)

    # -- slash commands --------------------------------------------------------------------

    def command(self, command: Command) -> bool:
        """Run a parsed slash command; False to stop."""
        handler = getattr(self, f"_cmd_{command.name}")
        try:
            return handler(command) is not False
        except (HAGError, ValueError, OSError) as exc:
            self._error(str(exc))
            return True

    def _update(self, **changes: Any) -> None:
        settings = self.settings.model_copy(update=changes).validated(self.base)
        self.settings = settings
        self.store.save(self.name, settings)

    def _cmd_params(self, command: Command) -> None:
        from hag_agent.chat.turn_view import settings_view

        self.info.print(settings_view(self.settings, self.last))

    def _cmd_set(self, command: Command) -> None:
        key, value = parse_assignment(command.arg)
        self._update(pins={**self.settings.pins, key: value})
        self.info.print(f"pinned {key}={value:g}")

    def _cmd_unset(self, command: Command) -> None:
        key = command.args[0]
        if key == "all":
            self._update(pins={})
            self.info.print("unpinned every hyperparameter")
            return
        if key not in self.settings.pins:
            pinned = ", ".join(self.settings.pins) or "none"
            raise HAGInputError(f"{key} is not pinned (pinned: {pinned})")
        self._update(pins={k: v for k, v in self.settings.pins.items() if k != key})
        self.info.print(f"unpinned {key}")

    def _cmd_task(self, command: Command) -> None:
        kind = command.args[0].lower()
        if kind == "auto":
            self._update(task=None)
            self.info.print("task: classified per turn")
            return
        try:
            task = TaskKind(kind)
        except ValueError:
            valid = ", ".join(t.value for t in TaskKind)
            raise HAGInputError(f"unknown task {kind!r}; one of: {valid}, or auto") from None
        self._update(task=task)
        self.info.print(f"task pinned to {task.value}")

    def _cmd_retries(self, command: Command) -> None:
        try:
            retries = int(command.args[0])
        except ValueError:
            raise HAGInputError(f"/retries takes a whole number, not {command.args[0]!r}") from None
        self._update(max_retries=retries)
        self.info.print(f"retries: {retries}")

    def _cmd_critique(self, command: Command) -> None:
        value = command.args[0].lower()
        if value not in ("on", "off"):
            raise HAGInputError("usage: /critique on|off")
        self._update(critique=value == "on")
        self.info.print(f"critique {value}")

    def _need_last(self) -> HAGResult:
        if self.last is None:
            raise HAGInputError("no turn yet in this run of the chat: ask something first")
        return self.last

    def _cmd_trace(self, command: Command) -> None:
        from hag_agent.chat.turn_view import attempts_tree

        self.info.print(attempts_tree(self._need_last()))

    def _cmd_graph(self, command: Command) -> None:
        from hag_agent.visualization.ascii_diagram import draw_ascii
        from hag_agent.visualization.topology import RunPath, graph_shape

        self.info.print(draw_ascii(graph_shape(), RunPath.of(self._need_last().trace)))

    def _cmd_new(self, command: Command) -> None:
        name = command.args[0] if command.args else new_session_name()
        if self.store.exists(check_session_name(name)):
            raise HAGInputError(
                f"session {name} exists; resume it with hag-agent chat --session {name}"
            )
        self.open(name, settings=self.settings)

    def _cmd_sessions(self, command: Command) -> None:
        table = Table("session", "turns", "last used", box=None, padding=(0, 2))
        for info in self.store.sessions():
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated))
            style = "bold" if info.name == self.name else None
            marker = " (this one)" if info.name == self.name else ""
            table.add_row(info.name + marker, str(info.turns), when, style=style)
        self.info.print(table)

    def _cmd_save(self, command: Command) -> None:
        from hag_agent.chat.turn_view import transcript_markdown

        path = Path(command.args[0]).expanduser()
        messages = self.store.messages(self.runnable.graph, self.head)
        path.write_text(transcript_markdown(self.name, messages), encoding="utf-8")
        turns = sum(isinstance(m, AIMessage) for m in messages)
        self.info.print(f"wrote {path} ({turns} turn(s))")

    def _cmd_help(self, command: Command) -> None:
        table = Table(show_header=False, box=None, padding=(0, 2))
        for spec in COMMANDS.values():
            table.add_row(spec.usage, spec.help)
        self.info.print(table)
        self.info.print(
            "[dim]Anything else is sent to the model (start with // to send a leading /). "
            "Ctrl-C cancels a turn.[/dim]"
        )

    def _cmd_exit(self, command: Command) -> bool:
        return False
