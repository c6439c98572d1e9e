"""``hag-agent train``: fine-tune a proposer on search output."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from rich.console import Console
from rich.table import Table

from hag_agent.cli import suite_job
from hag_agent.cli.exit_codes import HAGGroup
from hag_agent.cli.option_kinds import defaulted_option, file_option, folder_option
from hag_agent.cli.plain_text import print_plain
from hag_agent.cli.progress_view import ProgressView
from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.training.gguf_adapter import DEFAULT_OUT_TYPE, OUT_TYPES

if TYPE_CHECKING:
    from hag_agent.training.gguf_adapter import GGUFAdapterInfo, OutType
    from hag_agent.training.held_out import ProposerScore
    from hag_agent.training.sft import SFTReport


def quiet_training_libraries() -> None:
    """Keep transformers, datasets and TRL to errors: the command draws its own progress."""
    try:
        import datasets
        import transformers
    except ImportError:  # train_sft names what to install
        return

    hf_logging: Any = transformers.logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    data_logging: Any = datasets.logging
    data_logging.set_verbosity_error()
    data_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|trl|peft)\.")


def _rate(score: ProposerScore) -> str:
    if score.parse_rate is None:
        return "-"
    return f"{score.parse_rate:.0%} ({score.parsed}/{score.cases})"


def report_table(report: SFTReport) -> Table:
    """The held-out report: strict parse rate and MAE per parameter, tuned against base."""
    ids = ", ".join(report.held_out_ids[:6]) + (" ..." if len(report.held_out_ids) > 6 else "")
    table = Table(title=f"held-out proposals: {report.tuned.cases} cases ({ids or 'none'})")
    table.add_column("metric", no_wrap=True)
    table.add_column("tuned", justify="right", no_wrap=True)
    base = report.base_model
    if base is not None:
        table.add_column("base", justify="right", no_wrap=True)
    table.add_row(
        "parse rate (strict)", _rate(report.tuned), *([_rate(base)] if base is not None else [])
    )
    for key in HYPERPARAM_KEYS:
        cells = [f"{score.mae[key]:.3f}" if key in score.mae else "-" for score in (report.tuned,)]
        if base is not None:
            cells.append(f"{base.mae[key]:.3f}" if key in base.mae else "-")
        table.add_row(f"MAE {key}", *cells)
    return table


def training_line(report: SFTReport) -> str:
    """One line on what the training did."""
    t = report.training
    where = f"resumed at step {t.resumed_from}" if t.resumed_from is not None else "from scratch"
    pace = f", {t.seconds_per_step:.2f} s/step" if t.seconds_per_step else ""
    loss = f", last loss {t.final_loss:.4f}" if t.final_loss is not None else ""
    return (
        f"trained {t.steps_run} steps ({where}; {t.global_step} in all) on {t.examples} examples "
        f"in {t.seconds:.1f} s{pace}{loss}; adapter: {report.adapter}"
    )


def gguf_line(info: GGUFAdapterInfo) -> str:
    """One line on a written GGUF adapter: where, how big, how many tensors."""
    return (
        f"GGUF adapter: {info.path} ({info.bytes / 1e6:.1f} MB, {info.tensors} tensors: "
        f"{info.layers} layers at rank {info.rank}, alpha {info.alpha:g}, {info.out_type}, "
        f"{info.architecture})"
    )


held_out_option = defaulted_option(
    "--held-out",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.2,
    help="Share of case ids held out from training (by a hash of id and seed).",
)
"""The held-out share; `train sft` and `train head` split the same way."""


@click.group("train", cls=HAGGroup)
def train() -> None:
    """Fine-tune a proposer on the search's best configurations (needs the train extra)."""


@train.command("sft")
@file_option("--data", required=True, help="Search JSONL file (from `hag-agent dataset search`).")
@click.option(
    "--base",
    required=True,
    help="A local Hugging Face model folder, or smollm2 (the embedded default, converted from "
    "its GGUF once and cached).",
)
@folder_option(
    "--out",
    required=True,
    help="Run folder: adapter/, report.json, held_out.jsonl, checkpoints/. Rerun to resume.",
)
@defaulted_option("--epochs", type=click.FloatRange(min=0, min_open=True), default=2.0)
@defaulted_option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-3,
    help="Peak learning rate (linear decay).",
)
@defaulted_option("--batch-size", type=click.IntRange(min=1), default=8)
@defaulted_option("--rank", type=click.IntRange(min=1), default=8, help="LoRA rank.")
@defaulted_option("--seed", default=0, help="Seeds the adapter, the data order and the split.")
@held_out_option
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    help="Stop after this many optimizer steps in all (overrides --epochs).",
)
@defaulted_option(
    "--save-steps",
    type=click.IntRange(min=1),
    default=10,
    help="Checkpoint every this many steps.",
)
@click.option("--threads", type=click.IntRange(min=1), help="Torch CPU threads.")
@click.option(
    "--no-base", "no_base", is_flag=True, help="Skip scoring the base model for contrast."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def sft(
    data: Path, base: str, out: Path, no_base: bool, as_json: bool, **training_options: Any
) -> None:
    """Fine-tune a LoRA proposer on DATA and report it on held-out cases.

    Each example is the run-time proposal request for a case (the `self` proposer's prompt) with
    the search's best configuration as the answer; the loss is on the answer only. Rerunning
    with the same --out resumes from the last checkpoint; a larger --max-steps or --epochs
    trains on.

    Exit codes: 0 success, 2 bad usage or input (also: training packages missing), 130
    interrupted (rerun the same command to resume).
    """
    from hag_agent.training.sft import SFTSettings

    err = Console(stderr=True)
    out_console = Console()
    # ``training_options`` holds exactly the settings' fields; --no-base is compare_base negated.
    settings = suite_job.settings_from_options(
        SFTSettings, compare_base=not no_base, **training_options
    )
    with suite_job.noting_interrupts(f"the last checkpoint is in {out / 'checkpoints'}"):
        from hag_agent.training.sft import train_sft

        quiet_training_libraries()
        with ProgressView(err) as view:
            report = train_sft(data, base, out, settings, progress=view)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    print_plain(err, training_line(report))
    if report.gguf_adapter is not None:
        print_plain(err, gguf_line(report.gguf_adapter))
    elif report.gguf_skipped:
        print_plain(err, f"no GGUF adapter: {report.gguf_skipped}")
    out_console.print(report_table(report))


@train.command("export-gguf")
@click.argument("adapter_dir", type=click.Path(file_okay=False, path_type=Path))
@file_option(
    "-o",
    "--out",
    help="The GGUF file to write [default: RUN/adapter.gguf, or ADAPTER_DIR.gguf beside it].",
)
@click.option(
    "--base",
    help="The base model: a Hugging Face folder, its llama.cpp GGUF (shapes are then checked "
    "against it), or smollm2. Default: the folder the adapter config names.",
)
@defaulted_option(
    "--outtype",
    "out_type",
    type=click.Choice(OUT_TYPES),
    default=DEFAULT_OUT_TYPE,
    help="Tensor type of the file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def export_gguf(
    adapter_dir: Path, out: Path | None, base: str | None, out_type: str, as_json: bool
) -> None:
    """Convert a PEFT LoRA adapter into a GGUF LoRA file for llama.cpp.

    ADAPTER_DIR is a `train sft` run folder or its adapter/ subfolder. The file loads with
    `Llama(model_path=BASE_GGUF, lora_path=FILE)` (or llama.cpp's --lora). Llama
    architectures only; needs the gguf package (the train extra), nothing is downloaded.

    Exit codes: 0 written, 2 bad input (not a LoRA adapter, unsupported architecture, an
    adapter that does not fit the base) or a missing package.
    """
    from hag_agent.training.gguf_adapter import export_gguf_adapter

    with suite_job.noting_interrupts("nothing was written"):
        info = export_gguf_adapter(
            adapter_dir,
            out,
            base=base,
            out_type=cast("OutType", out_type),
        )
    if as_json:
        click.echo(info.model_dump_json(indent=2))
        return
    click.echo(
        f"wrote {info.path}: {info.bytes / 1e6:.1f} MB ({info.bytes} bytes), {info.tensors} "
        f"tensors ({info.layers} LoRA layers, rank {info.rank}, alpha {info.alpha:g}, "
        f"{info.out_type}, {info.architecture}; base shape from {info.base})"
    )
