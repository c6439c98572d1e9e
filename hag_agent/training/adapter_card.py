"""``OUT/adapter.json``: the card of a fine-tuned proposer, beside ``OUT/adapter.gguf``.

It says how the adapter was made (base, data and its hash, settings) and, under ``scope``, what
its training data can have taught it (`training_scope`: the keys the search held fixed, the task
kinds it held). The backends read the scope (`hag_agent.backends.proposer_card`), so a tuned
proposer leaves those keys, and tasks it never saw, to the task prior; the packaged adapter's card
(``hag_agent/assets/smollm2-proposer-lora.json``) has the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hag_agent.backends.proposer_card import CARD_NAME, SCOPE_KEY
from hag_agent.data.search_records import SearchRecord, training_scope
from hag_agent.file_hash import sha256_file


def write_adapter_card(
    out: Path,
    *,
    data: Path,
    base: str,
    settings: Mapping[str, Any],
    trained_on: Sequence[SearchRecord],
    adapter: Path,
) -> Path:
    """Write ``OUT/adapter.json`` for ``adapter`` (the GGUF file, else the PEFT folder).

    Args:
        out: The run folder.
        data: The search file.
        base: ``--base`` as given.
        settings: The run's settings.
        trained_on: The records the adapter was trained on (the held-out ones left out).
        adapter: What the card describes: ``OUT/adapter.gguf`` when written, else ``OUT/adapter``.

    Returns:
        The card's path.
    """
    card: dict[str, Any] = {"file": adapter.name}
    if adapter.is_file():
        card["sha256"] = sha256_file(adapter)
    card |= {
        "base": base,
        "data": str(data),
        "data_sha256": sha256_file(data),
        "settings": dict(settings),
        SCOPE_KEY: training_scope(trained_on).model_dump(mode="json"),
    }
    path = out / CARD_NAME
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return path


__all__ = ["write_adapter_card"]
