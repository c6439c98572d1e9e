"""Batched sampling of a grid plan with transformers: every case x configuration x K seeds.

The exhaustive grid (`hag_agent.search.grid_plan`) is far too many calls for a served model on a
CPU, but with the model in-process and all cases x K samples of one configuration in one batch a
GPU does a configuration in seconds (4.7 s for 182 cases x 8 samples x 48 tokens of SmolLM2 on
an H200, bound by Python rather than the GPU). This module does only that sampling and writes the
texts; `hag_agent.search.grid_scoring` scores them with our metrics into search records.

It imports nothing from ``hag_agent`` (only torch, transformers and, for a GGUF model, gguf), so
it also runs as a plain script on a machine that has only those::

    python hag_agent/search/grid_sampler.py --plan plan.json --gguf MODEL.gguf --out DIR

Output: ``DIR/samples-NN.jsonl.gz`` files, one line per configuration
``{"config": i, "texts": {case_id: [K texts]}, "seconds": s}``, a new file every
``--configs-per-file`` configurations, and ``DIR/sampler-info.json`` (engine, versions, timings).
A ``--deadline-s`` stops before starting a configuration past it; lines already written stay
valid, so a cut run is still usable and a rerun into the same ``--out`` finishes it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

SAMPLES_GLOB = "samples-*.jsonl.gz"
"""The sample files' names."""
INFO_FILE = "sampler-info.json"
"""The run's description next to the samples."""


def read_sample_lines(folder: Path) -> Iterator[dict[str, Any]]:
    """Every whole line of every sample file in ``folder``, in file order.

    A file cut short (a run killed mid-write) yields what came before the cut.
    """
    for path in sorted(folder.glob(SAMPLES_GLOB)):
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    try:
                        item = json.loads(line)
                        int(item["config"])
                    except (ValueError, KeyError, TypeError):
                        break
                    yield item
        except (OSError, EOFError):
            continue


def done_configs(folder: Path) -> set[int]:
    """Configuration indexes already sampled in ``folder``."""
    return {int(item["config"]) for item in read_sample_lines(folder)}


def _generation_kwargs(params: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    temperature = float(params["temperature"])
    kwargs: dict[str, Any] = {
        "max_new_tokens": int(params.get("max_tokens") or max_tokens),
        "repetition_penalty": float(params.get("repetition_penalty", 1.0)),
    }
    if temperature <= 0:  # llama.cpp and vLLM treat temperature 0 as greedy decoding
        kwargs.update(do_sample=False)
        return kwargs
    kwargs.update(
        do_sample=True,
        temperature=temperature,
        top_p=float(params.get("top_p", 1.0)),
        top_k=int(params.get("top_k", 0)),  # 0: off, as in llama.cpp
    )
    min_p = float(params.get("min_p", 0.0))
    if min_p > 0:
        kwargs["min_p"] = min_p
    return kwargs


def _encode_prompts(plan: dict[str, Any], tokenizer: Any, device: str) -> tuple[Any, Any]:
    """Every case's chat prompt, K times over, left-padded: input ids and attention mask."""
    k = int(plan["samples"])
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": case["prompt"]}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for case in plan["cases"]
    ]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    ids = encoded["input_ids"].repeat_interleave(k, dim=0).to(device)
    mask = encoded["attention_mask"].repeat_interleave(k, dim=0).to(device)
    return ids, mask


def _sample_config(
    plan: dict[str, Any],
    index: int,
    model: Any,
    tokenizer: Any,
    prompts: tuple[Any, Any],
    step: int,
) -> dict[str, list[str]]:
    """Configuration ``index`` for every case: case id -> its K texts."""
    import torch
    import transformers

    generation_config: Any = transformers.GenerationConfig
    ids, mask = prompts
    width = ids.shape[1]
    k = int(plan["samples"])
    torch.manual_seed(int(plan["seed"]) + index)
    config = generation_config(
        **_generation_kwargs(plan["configs"][index], int(plan["max_tokens"])),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    outputs: list[str] = []
    with torch.inference_mode():
        for lo in range(0, ids.shape[0], step):
            generated = model.generate(
                input_ids=ids[lo : lo + step],
                attention_mask=mask[lo : lo + step],
                generation_config=config,
            )
            outputs.extend(tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True))
    return {
        case["id"]: [text.strip() for text in outputs[i * k : (i + 1) * k]]
        for i, case in enumerate(plan["cases"])
    }


def append_line(path: Path, line: dict[str, Any]) -> None:
    """One complete gzip member per configuration: a run killed mid-write loses only it."""
    with gzip.open(path, "at", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False) + "\n")


def sample_plan(
    plan: dict[str, Any],
    model: Any,
    tokenizer: Any,
    out: Path,
    *,
    device: str,
    batch_size: int = 0,
    deadline_s: float | None = None,
    configs_per_file: int = 40,
    log: Any = print,
) -> dict[str, Any]:
    """Sample every configuration of ``plan`` not yet in ``out``; returns timing figures.

    Args:
        plan: A `GridPlan` as JSON (cases, configs, samples, seed, max_tokens).
        model: A causal LM on ``device``.
        tokenizer: Its tokenizer (with a chat template).
        out: Folder for the sample files.
        device: Where the model is (``cuda``, ``cpu``).
        batch_size: Sequences per generate call; 0 puts all cases x K in one.
        deadline_s: Seconds after which no new configuration is started.
        configs_per_file: Configurations per output file.
        log: Progress printer.
    """
    start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    done = done_configs(out)
    prompts = _encode_prompts(plan, tokenizer, device)
    sequences = int(prompts[0].shape[0])
    first_file = len(list(out.glob(SAMPLES_GLOB)))  # a resumed run starts a new file
    timings: list[float] = []
    stopped_early = False
    for index, params in enumerate(plan["configs"]):
        if index in done:
            continue
        if deadline_s is not None and time.monotonic() - start > deadline_s:
            stopped_early = True
            break
        began = time.monotonic()
        by_case = _sample_config(plan, index, model, tokenizer, prompts, batch_size or sequences)
        seconds = time.monotonic() - began
        path = out / f"samples-{first_file + len(timings) // configs_per_file:02d}.jsonl.gz"
        append_line(path, {"config": index, "texts": by_case, "seconds": round(seconds, 3)})
        timings.append(seconds)
        log(f"config {index + 1}/{len(plan['configs'])} {params} {seconds:.2f}s")
    return {
        "configs_sampled": len(timings),
        "configs_total": len(plan["configs"]),
        "sequences_per_config": sequences,
        "seconds_per_config_median": sorted(timings)[len(timings) // 2] if timings else None,
        "seconds_total": round(time.monotonic() - start, 2),
        "stopped_at_deadline": stopped_early,
    }


def load_model(gguf: Path | None, model_dir: Path | None, device: str) -> tuple[Any, Any]:
    """The model and tokenizer from a GGUF file (dequantized to float32) or a model folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model: Any
    if gguf is not None:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    elif model_dir is not None:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    else:
        raise ValueError("give a GGUF file or a model folder")
    return model.to(device).eval(), tokenizer


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: sample a plan into a folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", type=Path, required=True, help="GridPlan JSON file.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", type=Path, help="A GGUF model file.")
    source.add_argument("--model", type=Path, help="A Hugging Face model folder.")
    parser.add_argument("--out", type=Path, required=True, help="Folder for the samples.")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present).")
    parser.add_argument("--batch-size", type=int, default=0, help="0: one batch per config.")
    parser.add_argument("--deadline-s", type=float, default=None)
    parser.add_argument("--configs-per-file", type=int, default=40)
    args = parser.parse_args(argv)

    import torch
    import transformers

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    began = time.monotonic()
    plan = json.loads(args.plan.read_text(encoding="utf-8"))
    model, tokenizer = load_model(args.gguf, args.model, device)
    load_s = time.monotonic() - began
    print(f"model loaded on {device} in {load_s:.1f}s", flush=True)
    figures = sample_plan(
        plan,
        model,
        tokenizer,
        args.out,
        device=device,
        batch_size=args.batch_size,
        deadline_s=args.deadline_s,
        configs_per_file=args.configs_per_file,
        log=lambda text: print(text, flush=True),
    )
    info = {
        "engine": "transformers",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device == "cuda" else device,
        "model": str(args.gguf or args.model),
        "load_s": round(load_s, 2),
        **figures,
    }
    (args.out / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
