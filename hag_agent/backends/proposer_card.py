"""A tuned proposer's card: the JSON beside its adapter that says how it was made and on what.

``hag-agent train sft`` writes ``OUT/adapter.json`` beside ``OUT/adapter.gguf``, and the packaged
adapter ships ``smollm2-proposer-lora.json`` beside its GGUF: the command, the data and its hash,
and under ``scope`` the proposer's `TrainingScope` (the keys its data held fixed, its task kinds).
A backend serving a tuned proposer reads the scope from it (`Backend.proposer_scope`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hag_agent.errors import ConfigurationError, first_error
from hag_agent.training_scope import TrainingScope

SCOPE_KEY = "scope"
"""The card's key that holds the `TrainingScope`."""
CARD_NAME = "adapter.json"
"""The card ``train sft`` writes in its run folder."""


def card_of(adapter: Path) -> Path | None:
    """The card of an adapter file or folder, if there is one.

    ``NAME.json`` beside ``NAME.gguf`` (or beside a PEFT folder ``NAME``), else ``adapter.json``
    in the adapter's folder unless that card names another file.
    """
    beside = adapter.with_suffix(".json")
    if beside.is_file():
        return beside
    shared = adapter.parent / CARD_NAME
    if shared.is_file() and _read(shared).get("file", adapter.name) == adapter.name:
        return shared
    return None


def read_scope(card: Path) -> TrainingScope | None:
    """The scope a card states; None when it states none (a card written before scopes were).

    Raises:
        ConfigurationError: For a file that cannot be read, or whose scope is malformed.
    """
    scope = _read(card).get(SCOPE_KEY)
    if scope is None:
        return None
    try:
        return TrainingScope.model_validate(scope)
    except ValidationError as exc:
        where, message = first_error(exc, SCOPE_KEY)
        raise ConfigurationError(
            f"{card}: its {SCOPE_KEY!r} is not a training scope ({where}: {message})"
        ) from None


def scope_beside(adapter: Path) -> TrainingScope | None:
    """The scope on an adapter's card; None when it has no card, or a card without a scope."""
    card = card_of(adapter)
    return read_scope(card) if card is not None else None


def _read(card: Path) -> dict[str, Any]:
    try:
        value = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the proposer card {card}: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{card}: a proposer card is a JSON object")
    return value


__all__ = ["CARD_NAME", "SCOPE_KEY", "card_of", "read_scope", "scope_beside"]
