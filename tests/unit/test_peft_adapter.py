"""GGUF LoRA -> PEFT LoRA: the export undone exactly, and the packaged proposer converted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hag_agent.assets import builtin_proposer_adapter
from hag_agent.errors import HAGInputError
from hag_agent.testing.extras import missing_extra, skip_reason
from hag_agent.training.gguf_adapter import (
    BaseShape,
    export_gguf_adapter,
    permute_rows,
    read_safetensors,
)
from hag_agent.training.peft_adapter import (
    builtin_peft_adapter,
    import_gguf_adapter,
    peft_tensors,
    unpermute_rows,
)

if missing_extra("train"):
    pytest.skip(skip_reason("train", missing_extra("train")), allow_module_level=True)
import gguf  # after the skip: the train extra brings it
import numpy as np
from safetensors.numpy import save_file

LAYERS, HIDDEN, HEADS, KV_HEADS, FFN, RANK = 2, 32, 4, 2, 64, 4
SHAPES = {  # module: (in, out)
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.k_proj": (HIDDEN, HIDDEN * KV_HEADS // HEADS),
    "self_attn.v_proj": (HIDDEN, HIDDEN * KV_HEADS // HEADS),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (HIDDEN, FFN),
    "mlp.up_proj": (HIDDEN, FFN),
    "mlp.down_proj": (FFN, HIDDEN),
}
BASE = BaseShape(architecture="llama", n_head=HEADS, n_head_kv=KV_HEADS, n_layer=LAYERS, source="t")


def peft_folder(folder: Path, **config: Any) -> dict[str, Any]:
    """A random rank-4 PEFT adapter on every linear layer of a 2-layer Llama; its tensors."""
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in range(LAYERS):
        for module, (n_in, n_out) in SHAPES.items():
            prefix = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((RANK, n_in)).astype("f4")
            tensors[f"{prefix}.lora_B.weight"] = rng.standard_normal((n_out, RANK)).astype("f4")
    folder.mkdir(parents=True)
    settings = {"peft_type": "LORA", "r": RANK, "lora_alpha": 8, "task_type": "CAUSAL_LM",
                "target_modules": [m.split(".")[1] for m in SHAPES], **config}  # fmt: skip
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return tensors


def base_folder(folder: Path) -> Path:
    folder.mkdir()
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": HIDDEN,
              "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
              "num_hidden_layers": LAYERS}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("heads", [HEADS, KV_HEADS, 9, 3])
def test_unpermute_undoes_the_q_k_permutation(heads: int) -> None:
    b = np.arange(heads * 64 * 2, dtype="f4").reshape(heads * 64, 2)
    assert not np.array_equal(permute_rows(b, heads), b)
    assert np.array_equal(unpermute_rows(permute_rows(b, heads), heads), b)
    with pytest.raises(HAGInputError, match="heads"):
        unpermute_rows(b[:-1], heads)


@pytest.mark.parametrize("rslora", [False, True])
def test_export_then_import_gives_back_the_adapter(tmp_path: Path, rslora: bool) -> None:
    original = peft_folder(tmp_path / "adapter", use_rslora=rslora)
    base = base_folder(tmp_path / "base")
    exported = export_gguf_adapter(tmp_path / "adapter", tmp_path / "a.gguf", base=base,
                                   out_type="f32")  # fmt: skip
    info = import_gguf_adapter(Path(exported.path), tmp_path / "back", BASE, base_model=str(base))
    back = read_safetensors(tmp_path / "back" / "adapter_model.safetensors")
    assert sorted(back) == sorted(original)
    for name, array in original.items():
        assert np.array_equal(back[name], array), name
    config = json.loads((tmp_path / "back" / "adapter_config.json").read_text())
    # rsLoRA's alpha / sqrt(r) becomes plain LoRA's alpha' / r with the same scale.
    scale = 8 / np.sqrt(RANK) if rslora else 8 / RANK
    assert config["lora_alpha"] / config["r"] == pytest.approx(scale)
    assert (config["peft_type"], config["r"], config["base_model_name_or_path"]) == (
        "LORA",
        RANK,
        str(base),
    )
    assert sorted(config["target_modules"]) == sorted(m.split(".")[1] for m in SHAPES)
    assert (info.layers, info.rank) == (LAYERS * len(SHAPES), RANK)


def test_f16_values_come_back_as_llama_cpp_reads_them(tmp_path: Path) -> None:
    original = peft_folder(tmp_path / "adapter")
    exported = export_gguf_adapter(tmp_path / "adapter", tmp_path / "a.gguf",
                                   base=base_folder(tmp_path / "base"))  # fmt: skip
    import_gguf_adapter(Path(exported.path), tmp_path / "back", BASE)
    back = read_safetensors(tmp_path / "back" / "adapter_model.safetensors")
    for name, array in original.items():
        assert np.array_equal(back[name], array.astype(np.float16).astype(np.float32)), name


def test_foreign_tensors_and_files_are_refused(tmp_path: Path) -> None:
    b = np.zeros((HIDDEN, RANK), dtype="f4")
    with pytest.raises(HAGInputError, match="not a LoRA"):
        peft_tensors({"token_embd.weight.lora_b": b}, BASE)
    with pytest.raises(HAGInputError, match="only 2 layers"):
        peft_tensors({"blk.7.attn_v.weight.lora_b": b}, BASE)
    model = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(model, arch="llama")
    writer.add_tensor("blk.0.attn_v.weight", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(HAGInputError, match="not a GGUF LoRA"):
        import_gguf_adapter(model, tmp_path / "out", BASE)


def test_the_packaged_proposer_converts_once_with_its_card(tmp_path: Path) -> None:
    folder = builtin_peft_adapter(tmp_path)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (8, 16.0)
    assert len(config["target_modules"]) == 7
    tensors = read_safetensors(folder / "adapter_model.safetensors")
    assert len(tensors) == 420  # 30 layers x 7 modules x (A, B)
    card = json.loads(folder.with_suffix(".json").read_text())
    assert card["scope"]["task_kinds"] and card["converted_from"].endswith(".gguf")
    stamp = (folder / "adapter_model.safetensors").stat().st_mtime_ns
    assert builtin_peft_adapter(tmp_path) == folder
    assert (folder / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    # Exported again, it is the packaged GGUF tensor for tensor.
    again = export_gguf_adapter(folder, tmp_path / "again.gguf", base="smollm2")
    shipped = {t.name: t for t in gguf.GGUFReader(builtin_proposer_adapter()).tensors}
    rebuilt = {t.name: t for t in gguf.GGUFReader(again.path).tensors}
    assert sorted(rebuilt) == sorted(shipped)
    for name, tensor in shipped.items():
        assert np.array_equal(rebuilt[name].data, tensor.data), name
