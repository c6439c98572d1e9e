"""PEFT LoRA -> GGUF LoRA: names, the q/k permutation, typed errors, a tiny adapter end to end.

Hermetic: a made-up two-layer Llama config and adapter written here; needs numpy and gguf only.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hag_agent.cli.train_command import train
from hag_agent.errors import ConfigurationError, HAGInputError
from hag_agent.testing.extras import missing_extra, skip_reason
from hag_agent.training import gguf_adapter
from hag_agent.training.gguf_adapter import (
    BaseShape,
    default_output,
    export_gguf_adapter,
    find_adapter_folder,
    gguf_alpha,
    llama_cpp_name,
    lora_tensors,
    permute_rows,
    read_lora_config,
    read_safetensors,
    resolve_base_shape,
    shape_from_config,
    split_lora_name,
)

if missing_extra("train"):
    pytest.skip(skip_reason("train", missing_extra("train")), allow_module_level=True)
import gguf  # after the skip: the train extra brings it
import numpy as np

SMOLLM2 = BaseShape(architecture="llama", n_head=9, n_head_kv=3, n_layer=30, source="test")
TINY = {"hidden": 32, "heads": 4, "kv_heads": 2, "head_dim": 8, "ffn": 64, "layers": 2}
MODULES = {  # PEFT module: (llama.cpp name, in features, out features)
    "self_attn.q_proj": ("attn_q", 32, 32),
    "self_attn.k_proj": ("attn_k", 32, 16),
    "self_attn.v_proj": ("attn_v", 32, 16),
    "self_attn.o_proj": ("attn_output", 32, 32),
    "mlp.gate_proj": ("ffn_gate", 32, 64),
    "mlp.up_proj": ("ffn_up", 32, 64),
    "mlp.down_proj": ("ffn_down", 64, 32),
}
RANK = 2


def reference_permute(weights: Any, n_head: int, n_head_kv: int | None) -> Any:
    """llama.cpp's convert_hf_to_gguf.LlamaModel.permute, verbatim (numpy for torch)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_safetensors(path: Path, tensors: dict[str, Any], dtype: str = "F32") -> None:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, array in tensors.items():
        if dtype == "BF16":
            raw = (np.asarray(array, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
        else:
            raw = np.asarray(array, dtype="<f4")
        blob = raw.tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def write_base_config(folder: Path, architecture: str = "LlamaForCausalLM") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": [architecture],
        "model_type": "llama",
        "hidden_size": TINY["hidden"],
        "num_attention_heads": TINY["heads"],
        "num_key_value_heads": TINY["kv_heads"],
        "num_hidden_layers": TINY["layers"],
        "intermediate_size": TINY["ffn"],
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def tiny_tensors(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(TINY["layers"]):
        for module, (_, n_in, n_out) in MODULES.items():
            prefix = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((RANK, n_in)).astype("f4")
            tensors[f"{prefix}.lora_B.weight"] = rng.standard_normal((n_out, RANK)).astype("f4")
    return tensors


def write_adapter(
    folder: Path, base: Path | None, tensors: dict[str, Any] | None = None, **config: Any
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "peft_type": "LORA",
        "r": RANK,
        "lora_alpha": 4,
        "base_model_name_or_path": str(base) if base else None,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"],
        "task_type": "CAUSAL_LM",
    }
    settings.update(config)
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    write_safetensors(folder / "adapter_model.safetensors", tensors or tiny_tensors())
    return folder


@pytest.fixture
def tiny_run(tmp_path: Path) -> Path:
    """A `train sft`-like run folder: RUN/adapter/ on a tiny Llama base folder."""
    base = write_base_config(tmp_path / "base")
    write_adapter(tmp_path / "run" / "adapter", base)
    return tmp_path / "run"


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "module", "part"),
    [
        (
            "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight",
            "model.layers.3.self_attn.q_proj",
            "A",
        ),
        (
            "base_model.model.model.layers.29.mlp.down_proj.lora_B.weight",
            "model.layers.29.mlp.down_proj",
            "B",
        ),
        (
            "base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight",
            "model.layers.0.mlp.up_proj",
            "B",
        ),
        ("model.layers.1.self_attn.v_proj.lora_A.weight", "model.layers.1.self_attn.v_proj", "A"),
    ],
)
def test_peft_names_split_into_module_and_side(name: str, module: str, part: str) -> None:
    assert split_lora_name(name) == (module, part)


@pytest.mark.parametrize(
    "name",
    [
        "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight",
        "base_model.model.lm_head.modules_to_save.default.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias",
    ],
)
def test_non_lora_tensors_are_refused(name: str) -> None:
    with pytest.raises(HAGInputError, match="not a LoRA A/B weight"):
        split_lora_name(name)


@pytest.mark.parametrize(
    ("module", "gguf_name", "kind"),
    [
        ("model.layers.3.self_attn.q_proj", "blk.3.attn_q.weight", "attn_q"),
        ("model.layers.3.self_attn.k_proj", "blk.3.attn_k.weight", "attn_k"),
        ("model.layers.3.self_attn.v_proj", "blk.3.attn_v.weight", "attn_v"),
        ("model.layers.3.self_attn.o_proj", "blk.3.attn_output.weight", "attn_output"),
        ("model.layers.29.mlp.gate_proj", "blk.29.ffn_gate.weight", "ffn_gate"),
        ("model.layers.29.mlp.up_proj", "blk.29.ffn_up.weight", "ffn_up"),
        ("model.layers.0.mlp.down_proj", "blk.0.ffn_down.weight", "ffn_down"),
    ],
)
def test_llama_modules_map_to_llama_cpp_names(module: str, gguf_name: str, kind: str) -> None:
    assert llama_cpp_name(module, SMOLLM2) == (gguf_name, kind)


@pytest.mark.parametrize(
    ("module", "match"),
    [
        ("model.layers.30.self_attn.q_proj", "no weight in a llama model of 30 layers"),
        ("model.layers.0.self_attn.rotary_emb", "no weight"),
        ("lm_head", "outside the decoder layers"),
        ("model.embed_tokens", "outside the decoder layers"),
    ],
)
def test_modules_llama_cpp_cannot_adapt_are_refused(module: str, match: str) -> None:
    with pytest.raises(HAGInputError, match=match):
        llama_cpp_name(module, SMOLLM2)


def test_a_base_gguf_missing_the_tensor_is_a_wrong_base() -> None:
    shape = BaseShape("llama", 9, 3, 30, "base.gguf", {"blk.0.attn_q.weight": (576, 576)})
    assert llama_cpp_name("model.layers.0.self_attn.q_proj", shape)[0] == "blk.0.attn_q.weight"
    with pytest.raises(HAGInputError, match=r"blk\.0\.attn_k\.weight is not in the base GGUF"):
        llama_cpp_name("model.layers.0.self_attn.k_proj", shape)


# -- the q/k permutation ------------------------------------------------------------------


@pytest.mark.parametrize(("n_head", "n_head_kv", "rows"), [(9, 9, 576), (9, 3, 192), (4, 2, 8)])
def test_permutation_is_llama_cpps_and_commutes_with_the_lora_product(
    n_head: int, n_head_kv: int, rows: int
) -> None:
    rng = np.random.default_rng(1)
    b = rng.standard_normal((rows, 8))
    a = rng.standard_normal((8, 40))
    permuted = permute_rows(b, n_head, n_head_kv)
    np.testing.assert_array_equal(permuted, reference_permute(b, n_head, n_head_kv))
    # Permuting B's rows is permuting the rows of W = B @ A, as the base weight was.
    np.testing.assert_allclose(permuted @ a, reference_permute(b @ a, n_head, n_head_kv))
    assert sorted(map(tuple, permuted)) == sorted(map(tuple, b))  # a pure reordering
    assert not np.array_equal(permuted, b)


def test_rows_that_do_not_split_into_heads_are_refused() -> None:
    with pytest.raises(HAGInputError, match="do not split into 3 heads"):
        permute_rows(np.zeros((10, 2)), 9, 3)


def test_tensors_are_paired_permuted_and_ordered(tiny_run: Path) -> None:
    tensors = tiny_tensors()
    shape = BaseShape("llama", TINY["heads"], TINY["kv_heads"], TINY["layers"], "test")
    out = dict(lora_tensors(tensors, shape))
    names = [name for name, _ in lora_tensors(tensors, shape)]
    assert len(names) == 2 * 7 * TINY["layers"]
    assert names[:2] == ["blk.0.attn_k.weight.lora_a", "blk.0.attn_k.weight.lora_b"]
    assert all(name.startswith("blk.1.") for name in names[14:])
    peft = "base_model.model.model.layers.1.self_attn"
    np.testing.assert_array_equal(
        out["blk.1.attn_q.weight.lora_a"], tensors[f"{peft}.q_proj.lora_A.weight"]
    )
    np.testing.assert_array_equal(
        out["blk.1.attn_q.weight.lora_b"],
        reference_permute(tensors[f"{peft}.q_proj.lora_B.weight"], 4, 4),
    )
    np.testing.assert_array_equal(
        out["blk.1.attn_k.weight.lora_b"],
        reference_permute(tensors[f"{peft}.k_proj.lora_B.weight"], 4, 2),
    )
    for other in ("v_proj", "o_proj"):
        key = {"v_proj": "attn_v", "o_proj": "attn_output"}[other]
        np.testing.assert_array_equal(
            out[f"blk.1.{key}.weight.lora_b"], tensors[f"{peft}.{other}.lora_B.weight"]
        )
    unpermuted = dict(lora_tensors(tensors, shape, permute_qk=False))
    np.testing.assert_array_equal(
        unpermuted["blk.1.attn_q.weight.lora_b"], tensors[f"{peft}.q_proj.lora_B.weight"]
    )


def test_unpaired_or_mismatched_tensors_are_refused() -> None:
    shape = BaseShape("llama", TINY["heads"], TINY["kv_heads"], TINY["layers"], "test")
    tensors = tiny_tensors()
    del tensors["base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"]
    with pytest.raises(HAGInputError, match=r"only one of LoRA A and B for blk\.0\.ffn_up"):
        lora_tensors(tensors, shape)
    tensors = tiny_tensors()
    tensors["base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"] = np.zeros((64, 3), "f4")
    with pytest.raises(HAGInputError, match="do not make a rank-r product"):
        lora_tensors(tensors, shape)
    fitted = BaseShape("llama", 4, 2, 2, "base.gguf", {"blk.0.attn_q.weight": (32, 64)})
    only_q = {k: v for k, v in tiny_tensors().items() if ".layers.0.self_attn.q_proj." in k}
    with pytest.raises(HAGInputError, match="wrong base model"):
        lora_tensors(only_q, fitted)
    with pytest.raises(HAGInputError, match="no LoRA tensors"):
        lora_tensors({}, shape)


# -- configs and folders ------------------------------------------------------------------


def test_run_folder_or_adapter_folder(tiny_run: Path, tmp_path: Path) -> None:
    assert find_adapter_folder(tiny_run) == tiny_run / "adapter"
    assert find_adapter_folder(tiny_run / "adapter") == tiny_run / "adapter"
    assert default_output(tiny_run) == tiny_run / "adapter.gguf"
    assert default_output(tiny_run / "adapter") == tiny_run / "adapter.gguf"
    with pytest.raises(HAGInputError, match=r"not a PEFT LoRA adapter: no adapter_config\.json"):
        find_adapter_folder(tmp_path / "base")
    with pytest.raises(HAGInputError, match="no such folder"):
        find_adapter_folder(tmp_path / "missing")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"peft_type": "PREFIX_TUNING"}, "not a PEFT LoRA adapter"),
        ({"use_dora": True}, "DoRA"),
        ({"lora_bias": True}, "bias"),
        ({"alpha_pattern": {"q_proj": 32}}, "alpha_pattern"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"lora_alpha": 0}, "lora_alpha must be a positive number"),
        ({"r": "8"}, "r must be a positive integer"),
        ({"use_rslora": True, "rank_pattern": {"q_proj": 4}}, "rsLoRA with a rank_pattern"),
    ],
)
def test_adapter_configs_llama_cpp_cannot_express_are_refused(
    tmp_path: Path, change: dict[str, Any], match: str
) -> None:
    folder = write_adapter(tmp_path / "adapter", None, **change)
    with pytest.raises(HAGInputError, match=match):
        read_lora_config(folder)


def test_missing_or_pickled_weights_are_refused(tmp_path: Path) -> None:
    folder = write_adapter(tmp_path / "adapter", None)
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
    with pytest.raises(HAGInputError, match="safe_serialization=True"):
        read_lora_config(folder)
    (folder / "adapter_config.json").write_text("[1, 2]")
    with pytest.raises(HAGInputError, match="not a JSON object"):
        read_lora_config(folder)


def test_rslora_alpha_keeps_peft_scale() -> None:
    assert gguf_alpha({"lora_alpha": 16, "r": 8}) == 16.0
    # PEFT: alpha / sqrt(r) = 16 / 2 = 8; llama.cpp: alpha' / r = 32 / 4 = 8.
    assert gguf_alpha({"lora_alpha": 16, "r": 4, "use_rslora": True}) == 32.0


def test_unsupported_architecture_is_refused(tmp_path: Path) -> None:
    base = write_base_config(tmp_path / "gpt2", "GPT2LMHeadModel")
    with pytest.raises(HAGInputError, match="architecture GPT2LMHeadModel is not supported"):
        shape_from_config(base)
    adapter = write_adapter(tmp_path / "adapter", base)
    with pytest.raises(HAGInputError, match="not supported"):
        export_gguf_adapter(adapter, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_base_comes_from_the_adapter_config_or_must_be_given(tmp_path: Path) -> None:
    base = write_base_config(tmp_path / "base")
    assert resolve_base_shape(None, {"base_model_name_or_path": str(base)}) == BaseShape(
        "llama", 4, 2, 2, str(base / "config.json")
    )
    with pytest.raises(HAGInputError, match="pass --base"):
        resolve_base_shape(None, {"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M"})
    with pytest.raises(HAGInputError, match="neither a model folder, a GGUF file nor smollm2"):
        resolve_base_shape(tmp_path / "nothing", {})
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(HAGInputError, match="not a readable GGUF"):
        resolve_base_shape(tmp_path / "junk.gguf", {})


def test_bfloat16_weights_are_widened(tmp_path: Path) -> None:
    values = {"x": np.array([[1.0, -2.5, 0.15625]], dtype="f4")}
    write_safetensors(tmp_path / "w.safetensors", values, "BF16")
    np.testing.assert_array_equal(read_safetensors(tmp_path / "w.safetensors")["x"], values["x"])
    (tmp_path / "bad.safetensors").write_bytes(b"\x05")
    with pytest.raises(HAGInputError, match="not a safetensors file"):
        read_safetensors(tmp_path / "bad.safetensors")


def test_half_and_double_weights_read_and_integers_are_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    values = {"h": np.array([[0.5, -1.25]], dtype="f2"), "d": np.array([3.0, 0.1], dtype="f8")}
    save_file(values, str(tmp_path / "w.safetensors"))
    read = read_safetensors(tmp_path / "w.safetensors")
    for name, array in values.items():
        assert read[name].dtype == array.dtype
        np.testing.assert_array_equal(read[name], array)
    save_file({"i": np.array([1, 2], dtype="i4")}, str(tmp_path / "i.safetensors"))
    with pytest.raises(HAGInputError, match="tensor i has dtype I32"):
        read_safetensors(tmp_path / "i.safetensors")


def test_missing_packages_name_the_train_extra(
    monkeypatch: pytest.MonkeyPatch, tiny_run: Path
) -> None:
    monkeypatch.setattr(gguf_adapter, "missing_export_packages", lambda: ["gguf"])
    with pytest.raises(ConfigurationError, match=r"needs gguf: pip install 'hag-agent\[train\]'"):
        export_gguf_adapter(tiny_run)
    result = CliRunner().invoke(train, ["export-gguf", str(tiny_run)])
    assert result.exit_code == 2 and "pip install 'hag-agent[train]'" in result.stderr


# -- end to end on the tiny adapter --------------------------------------------------------


def read_gguf(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    reader = gguf.GGUFReader(path)
    meta = {name: field.contents() for name, field in reader.fields.items()}
    tensors = {t.name: t for t in reader.tensors}
    return meta, tensors


@pytest.mark.parametrize("out_type", ["f32", "f16", "q8_0"])
def test_export_writes_what_llama_cpp_reads(tiny_run: Path, tmp_path: Path, out_type: Any) -> None:
    target = tmp_path / "out" / "tiny.gguf"
    info = export_gguf_adapter(tiny_run, target, out_type=out_type)
    assert info.path == str(target) and info.bytes == target.stat().st_size
    assert (info.tensors, info.layers, info.rank, info.alpha) == (28, 14, RANK, 4.0)
    assert info.adapter == str(tiny_run / "adapter") and info.base.endswith("config.json")
    assert [p.name for p in target.parent.iterdir()] == ["tiny.gguf"]  # no temporary file left

    meta, tensors = read_gguf(target)
    assert meta["general.architecture"] == "llama"
    assert meta["general.type"] == "adapter"
    assert meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 4.0
    assert meta["general.name"] == "run"
    assert meta["general.quantization_version"] == gguf.GGML_QUANT_VERSION
    # ggml shapes (reversed numpy shapes): lora_a [in, rank], lora_b [rank, out], as llama.cpp
    # checks against the base weight [in, out].
    assert [int(n) for n in tensors["blk.0.attn_k.weight.lora_a"].shape] == [32, RANK]
    assert [int(n) for n in tensors["blk.0.attn_k.weight.lora_b"].shape] == [RANK, 16]
    assert [int(n) for n in tensors["blk.1.ffn_down.weight.lora_a"].shape] == [64, RANK]
    kinds = {"f32": ("F32", "F32"), "f16": ("F16", "F16"), "q8_0": ("Q8_0", "F16")}[out_type]
    # Under q8_0, B stays f16: its rows are RANK wide, shorter than a Q8_0 block (as llama.cpp).
    assert tensors["blk.0.ffn_down.weight.lora_a"].tensor_type.name == kinds[0]
    assert tensors["blk.0.ffn_down.weight.lora_b"].tensor_type.name == kinds[1]
    peft_b = tiny_tensors()["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"]
    written = np.asarray(tensors["blk.1.attn_q.weight.lora_b"].data, dtype="f4")
    tolerance = 0 if out_type == "f32" else 2e-3
    np.testing.assert_allclose(written, reference_permute(peft_b, 4, 4), atol=tolerance * 4)


def test_export_gguf_command(tiny_run: Path) -> None:
    result = CliRunner().invoke(train, ["export-gguf", str(tiny_run / "adapter")])
    assert result.exit_code == 0, result.output
    target = tiny_run / "adapter.gguf"
    assert result.stdout.startswith(f"wrote {target}: ")
    assert (
        f"({target.stat().st_size} bytes), 28 tensors (14 LoRA layers, rank 2, alpha 4"
        in result.stdout
    )
    result = CliRunner().invoke(train, ["export-gguf", str(tiny_run), "--json", "--outtype", "f32"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["out_type"] == "f32"


def test_export_gguf_command_errors_exit_2(tmp_path: Path, tiny_run: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(train, ["export-gguf", str(tmp_path)])
    assert result.exit_code == 2 and "not a PEFT LoRA adapter" in result.stderr
    result = runner.invoke(train, ["export-gguf", str(tiny_run), "--base", str(tmp_path / "no")])
    assert result.exit_code == 2 and "neither a model folder" in result.stderr
    result = runner.invoke(train, ["export-gguf", str(tiny_run), "--outtype", "q4_1"])
    assert result.exit_code == 2 and "q4_1" in result.output


def test_sft_exports_only_for_smollm2(tiny_run: Path) -> None:
    from hag_agent.training.sft import export_for_llama_cpp

    info, reason = export_for_llama_cpp(str(tiny_run.parent / "base"), tiny_run / "adapter")
    assert info is None and reason is not None and "export-gguf" in reason
    assert not (tiny_run / "adapter.gguf").exists()
