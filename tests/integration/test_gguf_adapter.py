"""A LoRA adapter of SmolLM2 converted to GGUF and applied by llama.cpp, checked against transformers.

The embedded default is a Q4_1 GGUF; the reference is transformers on the same weights
dequantized (the ``smollm2`` base folder) with the PEFT adapter. Quantization alone moves the
logits by an RMS of ~0.25 here, so each adapter is made to move them by ~10 times that: a
mapping mistake then shows as a mismatch of the adapter's own size (the q/k control shows it).

Measured here (2 shared cores, other jobs running): the ``train sft`` run ~20-35 s, the rest a few
seconds each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hag_agent.errors import ConfigurationError
from hag_agent.tasks import TaskKind
from hag_agent.testing.extras import missing_extra, skip_reason

from .tiny_training import write_search_file

PROMPT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWhich temperature suits a short poem about the sea?"
    "<|im_end|>\n<|im_start|>assistant\n"
)
SFT = [
    "--base",
    "smollm2",
    "--max-steps",
    "1",
    "--batch-size",
    "2",
    # One Adam step of 0.02 moves every LoRA B entry by ~0.02: an adapter far above Q4 noise.
    "--lr",
    "0.02",
    "--held-out",
    "0",
    "--no-base",
    "--threads",
    "1",
    "--json",
]


def require_export_stack() -> None:
    """Skip without the train extra (torch, peft, gguf) or the embedded model."""
    for extra in ("train", "embedded"):
        missing = missing_extra(extra)
        if missing:
            pytest.skip(skip_reason(extra, missing))


@pytest.fixture(scope="module")
def base_folder() -> Path:
    require_export_stack()
    from hag_agent.training.base_models import resolve_base

    return resolve_base("smollm2")


@dataclass
class CppRun:
    tokens: list[int]
    logits: Any  # (tokens, vocab)
    greedy: str


def run_llama_cpp(lora: Path | None) -> CppRun:
    """llama.cpp's logits over PROMPT and a greedy continuation, with or without the adapter."""
    import numpy as np
    from llama_cpp import Llama

    from hag_agent.backends.llama_cpp_chat import default_model_path

    extra = {"lora_path": str(lora)} if lora is not None else {}
    llm = Llama(
        model_path=str(default_model_path()),
        n_ctx=512,
        n_threads=1,
        logits_all=True,
        verbose=False,
        **extra,
    )
    tokens = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    llm.reset()
    out: Any = llm.create_completion(PROMPT, max_tokens=16, temperature=0.0, seed=0)
    llm.close()
    return CppRun(tokens, logits, out["choices"][0]["text"])


def transformers_logits(base_folder: Path, adapter: Path, tokens: list[int]) -> tuple[Any, Any]:
    """(base, adapted) logits of transformers over the same tokens, float32 on the CPU."""
    import numpy as np
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    peft_model: Any = PeftModel.from_pretrained(model, adapter)
    ids = torch.tensor([tokens])
    with torch.no_grad():
        adapted = peft_model(ids).logits[0].numpy().astype(np.float64)
        with peft_model.disable_adapter():
            base = peft_model(ids).logits[0].numpy().astype(np.float64)
    return base, adapted


def rms(x: Any) -> float:
    import numpy as np

    return float(np.sqrt(np.mean(np.square(x))))


def correlation(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@dataclass
class Comparison:
    effect: float  # RMS of the adapter's change to transformers' logits
    quant_noise: float  # RMS of llama.cpp (Q4_1) minus transformers, both without adapter
    mismatch: float  # RMS of llama.cpp minus transformers, both with the adapter
    delta_corr: float  # correlation of the two adapters' changes to the logits
    top1: float  # share of positions where both adapted models pick the same next token

    def __str__(self) -> str:
        return (
            f"effect {self.effect:.3f}, quant noise {self.quant_noise:.3f}, mismatch "
            f"{self.mismatch:.3f}, delta corr {self.delta_corr:.4f}, top-1 {self.top1:.0%}"
        )


def compare(base_folder: Path, adapter_dir: Path, gguf: Path, base: CppRun | None = None) -> Any:
    """llama.cpp with the GGUF adapter against transformers with the PEFT adapter."""
    base = base or run_llama_cpp(None)
    tuned = run_llama_cpp(gguf)
    assert tuned.tokens == base.tokens
    hf_base, hf_tuned = transformers_logits(base_folder, adapter_dir, base.tokens)
    comparison = Comparison(
        effect=rms(hf_tuned - hf_base),
        quant_noise=rms(base.logits - hf_base),
        mismatch=rms(tuned.logits - hf_tuned),
        delta_corr=correlation(tuned.logits - base.logits, hf_tuned - hf_base),
        top1=float((tuned.logits.argmax(1) == hf_tuned.argmax(1)).mean()),
    )
    print(f"{gguf.name}: {comparison}")
    return comparison, base, tuned


@pytest.fixture(scope="module")
def trained_run(base_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real ``train sft --base smollm2`` run of one step; its JSON report."""
    from hag_agent.cli.train_command import train

    root = tmp_path_factory.mktemp("sft")
    data = write_search_file(root / "search.jsonl", 4)
    out = root / "out"
    result = CliRunner().invoke(train, ["sft", "--data", str(data), "--out", str(out), *SFT])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    report["out"] = str(out)
    return report


def test_sft_on_smollm2_writes_a_gguf_adapter_that_llama_cpp_applies(
    trained_run: dict[str, Any], base_folder: Path
) -> None:
    out = Path(trained_run["out"])
    info = trained_run["gguf_adapter"]
    assert trained_run["gguf_skipped"] is None
    assert info["path"] == str(out / "adapter.gguf") and (out / "adapter.gguf").is_file()
    assert info["tensors"] == 2 * 7 * 30 and info["rank"] == 8 and info["alpha"] == 16.0
    assert 3_000_000 < info["bytes"] < 7_000_000  # ~4.9 MB in f16
    assert info["base"].endswith(".gguf")  # checked against the very GGUF llama.cpp loads

    comparison, base, tuned = compare(base_folder, out / "adapter", out / "adapter.gguf")
    assert tuned.greedy != base.greedy, "the adapter left the greedy continuation unchanged"
    assert comparison.effect > 4 * comparison.quant_noise  # the check below can tell
    assert comparison.mismatch < 0.25 * comparison.effect, comparison
    assert comparison.delta_corr > 0.95, comparison
    assert comparison.top1 >= 0.9, comparison


def test_export_gguf_command_on_a_run_folder(trained_run: dict[str, Any], tmp_path: Path) -> None:
    import gguf

    from hag_agent.cli.train_command import train

    out = Path(trained_run["out"])
    target = tmp_path / "proposer.gguf"
    result = CliRunner().invoke(train, ["export-gguf", str(out), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in result.stdout and "420 tensors" in result.stdout
    assert "MB" in result.stdout
    reader = gguf.GGUFReader(target)
    # Same adapter, same base shape: the same tensors as the file `train sft` wrote.
    written = {t.name: t.data for t in gguf.GGUFReader(out / "adapter.gguf").tensors}
    assert written.keys() == {t.name for t in reader.tensors}
    assert all((t.data == written[t.name]).all() for t in reader.tensors)
    meta = {name: field.contents() for name, field in reader.fields.items()}
    assert meta["general.architecture"] == "llama" and meta["general.type"] == "adapter"
    assert meta["adapter.type"] == "lora" and meta["adapter.lora.alpha"] == 16.0
    shapes = {t.name: [int(n) for n in t.shape] for t in reader.tensors}
    assert shapes["blk.0.attn_q.weight.lora_a"] == [576, 8]
    assert shapes["blk.0.attn_q.weight.lora_b"] == [8, 576]
    assert shapes["blk.29.attn_k.weight.lora_b"] == [8, 192]
    assert shapes["blk.29.ffn_down.weight.lora_a"] == [1536, 8]

    # The adapter/ subfolder with no -o: ADAPTER.gguf beside it, i.e. OUT/adapter.gguf again.
    result = CliRunner().invoke(train, ["export-gguf", str(out / "adapter"), "--outtype", "f32"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'adapter.gguf'}" in result.stdout and "f32" in result.stdout


def known_adapter(base_folder: Path, out: Path, targets: list[str], scale: float) -> Path:
    """A PEFT LoRA with seeded random A and B (no training): rank 8, alpha 16."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=targets, task_type="CAUSAL_LM")
    peft_model: Any = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if ".lora_A." in name or ".lora_B." in name:
                gain = 1.0 if ".lora_A." in name else scale
                noise = torch.randn(param.shape, generator=generator)
                param.copy_(noise * gain / param.shape[1] ** 0.5)
    peft_model.save_pretrained(out)
    return out


def test_query_and_key_adapter_needs_llama_cpp_row_permutation(
    base_folder: Path, tmp_path: Path
) -> None:
    """An adapter on q_proj/k_proj only: right with the permutation, far off without it."""
    from hag_agent.cli.train_command import train
    from hag_agent.training.gguf_adapter import export_gguf_adapter

    adapter = known_adapter(base_folder, tmp_path / "adapter", ["q_proj", "k_proj"], 0.4)
    gguf_file = tmp_path / "adapter.gguf"
    result = CliRunner().invoke(train, ["export-gguf", str(adapter), "-o", str(gguf_file)])
    assert result.exit_code == 0, result.output
    assert "120 tensors" in result.stdout  # 30 layers x (q, k) x (lora_a, lora_b)
    unpermuted = tmp_path / "unpermuted.gguf"
    export_gguf_adapter(adapter, unpermuted, base="smollm2", permute_qk=False)

    right, base, tuned = compare(base_folder, adapter, gguf_file)
    wrong, _, _ = compare(base_folder, adapter, unpermuted, base=base)
    assert tuned.greedy != base.greedy
    assert right.effect > 4 * right.quant_noise
    assert right.mismatch < 0.25 * right.effect, right
    assert right.delta_corr > 0.95 and right.top1 >= 0.9, right
    # The control: without the permutation the error is as large as the adapter itself.
    assert wrong.mismatch > 3 * right.mismatch, (right, wrong)
    assert wrong.delta_corr < right.delta_corr - 0.1, (right, wrong)


def test_embedded_backend_proposes_with_the_adapter_and_answers_with_the_base(
    trained_run: dict[str, Any],
) -> None:
    from hag_agent import HAGRunnable
    from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
    from hag_agent.backends.llama_cpp_chat import ChatLlamaCppEmbedded

    adapter = Path(trained_run["out"]) / "adapter.gguf"
    tuned = EmbeddedBackend(EmbeddedOptions(n_threads=1, proposer_lora_path=adapter))
    base = EmbeddedBackend(EmbeddedOptions(n_threads=1))
    assert isinstance(tuned.proposal_model, ChatLlamaCppEmbedded)
    assert tuned.proposal_model.lora_path == adapter
    assert isinstance(tuned.chat_model, ChatLlamaCppEmbedded) and tuned.chat_model.lora_path is None
    # The answering engine is the very one the base backend uses: only proposals change.
    assert tuned.chat_model.engine() is base.chat_model.engine()
    assert tuned.proposal_model.engine() is not base.chat_model.engine()

    by_task = {
        TaskKind.CREATIVE: "Write a poem about the moon.",
        TaskKind.MATH: "What is 7 * 8?",
        TaskKind.TRANSLATION: "Translate 'cat' into French.",
    }
    # The card `train sft` wrote beside the adapter: a kind its few cases lacked gets the prior.
    scope = tuned.proposer_scope()
    assert scope is not None and scope.task_kinds
    prompts = [prompt for task, prompt in by_task.items() if scope.covers(task)]
    assert len(prompts) >= 2
    settings = {"critique": False, "seed": 1, "params": {"max_tokens": 8}}
    proposed = {}
    for name, backend in (("base", base), ("tuned", tuned)):
        runnable = HAGRunnable(model=backend, proposer="self")
        proposed[name] = [
            next(
                e.data["raw"]
                for e in runnable.invoke({"prompt": p, **settings}).trace
                if e.node == "propose"
            )
            for p in prompts
        ]
    assert proposed["tuned"] != proposed["base"]  # the adapter changed what was proposed

    missing = EmbeddedBackend(EmbeddedOptions(proposer_lora_path=adapter.with_name("none.gguf")))
    with pytest.raises(ConfigurationError, match="no GGUF LoRA adapter file"):
        missing.proposal_model.invoke("hi")  # type: ignore[union-attr]
