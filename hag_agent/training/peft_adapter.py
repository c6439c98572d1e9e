"""A GGUF LoRA back to a PEFT LoRA folder, so vLLM can serve an adapter that ships only as GGUF.

The packaged proposer (`hag_agent.assets`, ``smollm2-proposer-lora.gguf``) was written by
`hag_agent.training.gguf_adapter` from the PEFT folder ``hag-agent train sft`` made; only the
GGUF ships. vLLM loads LoRA adapters in PEFT's format (``adapter_config.json`` and
``adapter_model.safetensors``), so `import_gguf_adapter` undoes the export:

- names: ``blk.N.attn_q.weight.lora_a`` becomes
  ``base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`` (``lora_b``: ``lora_B``);
- shapes: the arrays are PEFT's already (A ``rank x in``, B ``out x rank``);
- q/k: the export reordered the rows of B for llama.cpp's RoPE layout; they are put back;
- alpha: ``adapter.lora.alpha``, under PEFT's ``alpha / rank`` (the export folded rsLoRA into it);
- values: f16 (or Q8_0) widened to float32, exactly as llama.cpp reads them.

`builtin_peft_adapter` converts the packaged adapter once into a cache folder, with its card
beside it (``NAME.json``, as `hag_agent.backends.proposer_card.card_of` looks for it).

Needs ``gguf``, ``numpy`` and ``safetensors`` (the ``train`` extra), imported lazily.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from hag_agent.errors import HAGInputError
from hag_agent.training.gguf_adapter import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    BaseShape,
    require_export_packages,
)

if TYPE_CHECKING:
    from hag_agent.training.gguf_adapter import FloatArray

LLAMA_MODULES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
"""llama.cpp's Llama layer weights and the Hugging Face modules they come from."""
_GGUF_LORA_NAME = re.compile(r"^blk\.(?P<layer>\d+)\.(?P<kind>\w+)\.weight\.lora_(?P<part>[ab])$")
BUILTIN_FOLDER = "smollm2-proposer-lora"
"""The packaged adapter's PEFT folder name in the cache."""


class PEFTAdapterInfo(BaseModel):
    """What `import_gguf_adapter` wrote."""

    model_config = ConfigDict(extra="forbid")

    path: str
    """The PEFT folder."""
    layers: int
    """Adapted linear layers."""
    rank: int
    """LoRA rank (the largest)."""
    alpha: float
    """``lora_alpha``."""
    target_modules: list[str]
    """PEFT's ``target_modules`` (``q_proj`` ...)."""
    source: str
    """The GGUF LoRA file."""


def unpermute_rows(weight: FloatArray, heads: int) -> FloatArray:
    """Undo `hag_agent.training.gguf_adapter.permute_rows` for ``heads`` heads.

    Raises:
        HAGInputError: When the rows do not split into whole heads.
    """
    rows = weight.shape[0]
    if rows % (2 * heads):
        raise HAGInputError(f"{rows} rows do not split into {heads} heads of even size")
    return (
        weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _read_gguf_lora(path: Path) -> tuple[float, dict[str, FloatArray]]:
    """``adapter.lora.alpha`` and the tensors (float32) of a GGUF LoRA file."""
    import gguf
    import numpy as np

    try:
        reader = gguf.GGUFReader(path)
    except (OSError, ValueError) as exc:
        raise HAGInputError(f"{path}: not a readable GGUF file ({exc})") from None
    kind = reader.get_field("general.type")
    alpha = reader.get_field("adapter.lora.alpha")
    if kind is None or kind.contents() != "adapter" or alpha is None:
        raise HAGInputError(f"{path}: not a GGUF LoRA adapter (no adapter.lora.alpha)")
    tensors: dict[str, FloatArray] = {}
    for tensor in reader.tensors:
        data = tensor.data
        if tensor.tensor_type not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            data = gguf.quants.dequantize(data, tensor.tensor_type)
        tensors[tensor.name] = np.asarray(data, dtype=np.float32).reshape(
            tuple(int(n) for n in reversed(tensor.shape))
        )
    return float(alpha.contents()), tensors


def peft_tensors(tensors: dict[str, FloatArray], base: BaseShape) -> dict[str, FloatArray]:
    """GGUF LoRA tensors (llama.cpp's Llama names) under PEFT's names, q/k rows put back.

    Raises:
        HAGInputError: For a tensor that is not a LoRA of a Llama decoder layer of ``base``.
    """
    out: dict[str, FloatArray] = {}
    for name, array in tensors.items():
        match = _GGUF_LORA_NAME.match(name)
        if match is None or match["kind"] not in LLAMA_MODULES:
            raise HAGInputError(f"GGUF tensor {name!r} is not a LoRA of a Llama layer weight")
        if int(match["layer"]) >= base.n_layer:
            raise HAGInputError(f"{name}: the base has only {base.n_layer} layers")
        if match["part"] == "b" and match["kind"] == "attn_q":
            array = unpermute_rows(array, base.n_head)
        elif match["part"] == "b" and match["kind"] == "attn_k":
            array = unpermute_rows(array, base.n_head_kv)
        module = f"model.layers.{match['layer']}.{LLAMA_MODULES[match['kind']]}"
        side = "A" if match["part"] == "a" else "B"
        out[f"base_model.model.{module}.lora_{side}.weight"] = array
    if not out:
        raise HAGInputError("the GGUF file has no LoRA tensors")
    return out


def import_gguf_adapter(
    gguf_path: Path, out: Path, base: BaseShape, *, base_model: str | None = None
) -> PEFTAdapterInfo:
    """Write a GGUF LoRA adapter as a PEFT LoRA folder ``out`` (replaced).

    Args:
        gguf_path: The GGUF LoRA file.
        out: The folder to write.
        base: The base model's shape (`hag_agent.training.gguf_adapter.shape_from_gguf`).
        base_model: ``base_model_name_or_path`` in the config (a model folder).

    Raises:
        ConfigurationError: When ``gguf``, ``numpy`` or ``safetensors`` is missing.
        HAGInputError: For a file that is not a Llama GGUF LoRA fitting ``base``.
    """
    require_export_packages()
    from safetensors.numpy import save_file

    alpha, tensors = _read_gguf_lora(gguf_path)
    weights = peft_tensors(tensors, base)
    ranks = {int(a.shape[0]) for name, a in weights.items() if ".lora_A." in name}
    targets = sorted({name.split(".")[-3] for name in weights})
    config: dict[str, Any] = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": max(ranks),
        "lora_alpha": alpha,
        "target_modules": targets,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "inference_mode": True,
        "base_model_name_or_path": base_model,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / ADAPTER_CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    save_file(weights, str(out / ADAPTER_WEIGHTS))
    return PEFTAdapterInfo(
        path=str(out),
        layers=len(weights) // 2,
        rank=max(ranks),
        alpha=alpha,
        target_modules=targets,
        source=str(gguf_path),
    )


def builtin_peft_adapter(cache: Path, base_model: Path | None = None) -> Path:
    """The packaged proposer adapter as a PEFT folder in ``cache``, converted once.

    The folder's name carries the GGUF's sha256 (from its card), so a new packaged adapter gets
    a new folder; it is written elsewhere and renamed into place. Its card is copied beside it.

    Args:
        cache: Where converted models live (`hag_agent.training.base_models.base_model_cache`).
        base_model: The converted base folder, named in the adapter's config.
    """
    from hag_agent.assets import builtin_proposer_adapter, proposer_provenance
    from hag_agent.backends.llama_cpp_chat import default_model_path
    from hag_agent.training.gguf_adapter import shape_from_gguf

    card = proposer_provenance()
    name = f"{BUILTIN_FOLDER}-{str(card['sha256'])[:12]}"
    target = cache / name
    if (target / ADAPTER_WEIGHTS).is_file() and target.with_suffix(".json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        import_gguf_adapter(
            builtin_proposer_adapter(),
            tmp / name,
            shape_from_gguf(default_model_path()),
            base_model=str(base_model) if base_model else None,
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / name, target)
        card = {**card, "file": name, "converted_from": card["file"], "format": "peft"}
        target.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n", "utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


__all__ = [
    "BUILTIN_FOLDER",
    "LLAMA_MODULES",
    "PEFTAdapterInfo",
    "builtin_peft_adapter",
    "import_gguf_adapter",
    "peft_tensors",
    "unpermute_rows",
]
