"""Where sessions live, and the per-session turn lock (real files, real ``flock``)."""

import multiprocessing
from pathlib import Path

import pytest

from hag_agent.errors import SessionBusyError
from hag_agent.sessions import (
    PostgresLocation,
    SessionStore,
    SqliteLocation,
    sessions_location,
)


def test_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HAG_SESSIONS_URL", raising=False)
    assert sessions_location() == SqliteLocation(tmp_path / "data" / "sessions.sqlite")
    assert sessions_location(str(tmp_path / "d")) == SqliteLocation(tmp_path / "d/sessions.sqlite")
    assert sessions_location(str(tmp_path / "x.db")) == SqliteLocation(tmp_path / "x.db")
    url = "postgresql://hag:secret@127.0.0.1:5432/hag"
    assert sessions_location(url) == PostgresLocation(url)
    monkeypatch.setenv("HAG_SESSIONS_URL", url)
    assert sessions_location() == PostgresLocation(url)
    assert sessions_location(str(tmp_path / "d")).describe().endswith("sessions.sqlite")
    assert "secret" not in PostgresLocation(url).describe()
    assert PostgresLocation(url).describe() == "postgresql://hag:***@127.0.0.1:5432/hag"


def _try_lock(path: str, name: str) -> str:
    store = SessionStore(Path(path))
    try:
        store.turn_lock(name).release()
        return "took it"
    except SessionBusyError:
        return "busy"
    finally:
        store.close()


def test_one_turn_at_a_time_per_session_across_processes(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    held = store.turn_lock("s1")
    with pytest.raises(SessionBusyError, match="s1 is running another turn"):
        store.turn_lock("s1")  # the same process, another turn
    other = store.turn_lock("s2")  # other sessions are free
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_try_lock, (str(tmp_path), "s1")) == "busy"
        held.release()
        held.release()  # twice is harmless
        assert pool.apply(_try_lock, (str(tmp_path), "s1")) == "took it"
    other.release()
    store.close()


def test_settings_are_kept_as_the_model_given(tmp_path: Path) -> None:
    from hag_agent.chat.settings import ChatSettings

    store = SessionStore(tmp_path)
    store.save("s1", ChatSettings(pins={"top_k": 3.0}), turns=2)
    store.save("s1", turns=3)  # no settings: the saved ones stay
    assert store.settings("s1", ChatSettings).pins == {"top_k": 3.0}
    assert store.settings("new", ChatSettings) == ChatSettings()
    assert [(s.name, s.turns) for s in store.sessions()] == [("s1", 3)]
    store.close()


def test_postgres_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from hag_agent.errors import ConfigurationError

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'hag-agent\[postgres\]'"):
        SessionStore("postgresql://127.0.0.1:1/none")


def test_chat_takes_sessions_or_data_dir_not_both(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hag_agent.cli.chat_command import chat

    done = CliRunner().invoke(
        chat, ["--sessions", str(tmp_path / "a"), "--data-dir", str(tmp_path / "b")], input=""
    )
    assert done.exit_code == 2 and "not both" in done.output


def test_a_refused_write_is_a_store_error_the_server_answers_with_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from hag_agent.errors import HAGInputError, SessionStoreError
    from hag_agent.serve.api_errors import from_hag_error
    from hag_agent.sessions import SessionStore

    store = SessionStore(tmp_path)
    try:

        def refuse(*_: object) -> list[tuple[object, ...]]:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store.database, "query", refuse)
        with pytest.raises(SessionStoreError, match="is the disk full") as caught:
            store.save("s", turns=1)
    finally:
        store.close()
    assert not isinstance(caught.value, HAGInputError)  # not the caller's input
    error = from_hag_error(caught.value)
    assert error.status == 503 and error.code == "sessions_unavailable"
