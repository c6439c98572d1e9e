"""``hag-agent dataset grid-plan | grid-sample | grid-score``: the exhaustive grid on a GPU.

Three steps, so that the sampling can run on another machine that has only torch and
transformers: plan here, sample there (``grid-sample``, or ``python
hag_agent/search/grid_sampler.py`` where hag-agent is not installed), score here. ``grid-sample
--engine vllm`` samples with vLLM's offline batching instead, in vLLM's own environment when it
has one. Each step is
a call into `hag_agent.search`; scoring is the search engine's exhaustive strategy on the stored
samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
from rich.console import Console

from hag_agent.cli import suite_job
from hag_agent.cli.option_kinds import defaulted_option, file_option, folder_option
from hag_agent.cli.plain_text import print_plain
from hag_agent.cli.progress_view import ProgressView, warnings_shown
from hag_agent.errors import ConfigurationError, HAGInputError
from hag_agent.progress import ProgressCallback

if TYPE_CHECKING:
    from hag_agent.search.grid_plan import GridPlan

_plan_option = file_option(
    "--plan", "plan_path", required=True, help="The plan JSON file (from `dataset grid-plan`)."
)


@click.command("grid-plan")
@click.argument("suite")
@suite_job.output_option("The plan JSON file to write.")
@defaulted_option(
    "--samples",
    type=click.IntRange(1, 256),
    default=8,
    help="K: samples per case and configuration.",
)
@defaulted_option(
    "--max-tokens",
    type=click.IntRange(1),
    default=48,
    help="Held max_tokens of every configuration.",
)
@defaulted_option(
    "--seed", default=0, help="Configuration i is sampled with seed+i; also shuffles the grid."
)
@suite_job.limit_option
@suite_job.on_bad_line_option
def grid_plan(
    suite: str,
    output: Path,
    samples: int,
    max_tokens: int,
    seed: int,
    limit: int | None,
    on_bad_line: Literal["skip", "fail"],
) -> None:
    """Write the plan of an exhaustive grid over SUITE's cases for `dataset grid-sample`.

    The plan holds each case's prompt and every configuration: the default, each task's prior,
    then temperature x top_p x top_k x repetition penalty (plus greedy decoding) in a seeded
    order, so a sampling run cut short still covers the grid evenly.

    Exit codes: 0 written, 2 bad usage or input.
    """
    from hag_agent.search.grid_plan import build_plan

    err = Console(stderr=True)
    suite_job.require_at_least_one(limit, "--limit")
    with suite_job.noting_interrupts("nothing was written"):
        cases = suite_job.load_suites(
            suite, limit=limit, on_bad_line=on_bad_line, warn=suite_job.warner(err)
        )
        plan = build_plan(cases, samples=samples, max_tokens=max_tokens, seed=seed)
        output.write_text(plan.model_dump_json() + "\n", encoding="utf-8")
    print_plain(
        err,
        f"wrote {output}: {len(plan.cases)} cases x {len(plan.configs)} configurations x "
        f"{samples} samples = {len(plan.cases) * len(plan.configs) * samples} generations",
    )


ENGINES = ("transformers", "vllm", "llamacpp")
"""The sampling engines of `grid-sample`."""


@click.command("grid-sample")
@_plan_option
@folder_option(
    "--out",
    required=True,
    help="Folder for the sample files; rerun with the same folder to resume.",
)
@defaulted_option(
    "--engine",
    type=click.Choice(ENGINES),
    default="transformers",
    help="transformers (batched generate), vllm (LLM.generate, one seeded SamplingParams per "
    "request) or llamacpp (the embedded model, one call per sample).",
)
@folder_option(
    "--model-dir", help="A Hugging Face model folder (default: the embedded GGUF, dequantized)."
)
@click.option("--device", help="cuda or cpu (default: cuda when there is one; vllm: cpu).")
@defaulted_option(
    "--batch-size",
    type=click.IntRange(0),
    default=0,
    help="Sequences per generate call; 0 puts a whole configuration in one (vllm: whole "
    "configurations up to 512 sequences).",
)
@click.option(
    "--deadline-s",
    type=click.FloatRange(0, min_open=True),
    help="Start no configuration after this many seconds.",
)
@click.option(
    "--vllm-python",
    envvar="HAG_VLLM_PYTHON",
    help="A Python with vLLM installed, when it is not this one [env: HAG_VLLM_PYTHON].",
)
def grid_sample(
    plan_path: Path,
    out: Path,
    engine: str,
    model_dir: Path | None,
    device: str | None,
    batch_size: int,
    deadline_s: float | None,
    vllm_python: str | None,
) -> None:
    """Sample every configuration of a plan with transformers, vLLM or llama.cpp.

    transformers (the train extra): all cases x K samples of one configuration go through the
    model as one batch, one torch stream per configuration; on an H200, 4.7 s a configuration
    for 182 cases x 8 samples of 48 tokens with SmolLM2. vllm: vLLM's offline batching, sample
    k of each configuration seeded plan seed + k (the search engine's seeds), run by the Python
    in --vllm-python or this one. llamacpp: the embedded model, one seeded call per sample.
    vllm and transformers default to the embedded GGUF's weights, converted once to a model
    folder. Configurations already in OUT are skipped.

    Exit codes: 0 done (or stopped at the deadline), 2 bad usage, input or missing packages,
    3 the vLLM engine failed, 130 interrupted (rerun to resume).
    """
    with suite_job.noting_interrupts(f"finished configurations are saved in {out}"):
        if not plan_path.is_file():
            raise HAGInputError(f"--plan {plan_path}: no such file")
        if model_dir is not None and not (model_dir / "config.json").is_file():
            raise HAGInputError(f"--model-dir {model_dir}: not a model folder (no config.json)")
        if engine == "transformers":
            _sample_with_transformers(plan_path, out, model_dir, device, batch_size, deadline_s)
            return
        plan = _read_plan(plan_path)
        err = Console(stderr=True)
        with ProgressView(err) as view:
            if engine == "vllm":
                from hag_agent.search.vllm_grid import sample_plan_on_vllm

                info = sample_plan_on_vllm(
                    plan,
                    model_dir or _converted_smollm2(),
                    out,
                    python=vllm_python,
                    device=device or "cpu",
                    batch_sequences=batch_size or 512,
                    deadline_s=deadline_s,
                    progress=view,
                )
            else:
                info = _sample_with_llama_cpp(plan, out, model_dir, deadline_s, view)
        print_plain(err, _summary(info))


def _read_plan(plan_path: Path) -> GridPlan:
    from hag_agent.search.grid_plan import GridPlan

    try:
        return GridPlan.model_validate_json(plan_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise HAGInputError(f"--plan {plan_path}: not a grid plan ({exc})") from None


def _converted_smollm2() -> Path:
    """The embedded GGUF as a model folder, converted once (needs the train extra)."""
    from hag_agent.training.base_models import base_model_cache, smollm2_folder
    from hag_agent.training.extra import missing_packages, require_packages

    missing = missing_packages(("torch", "transformers", "gguf"))
    require_packages(missing, "converting the embedded model for vLLM (or pass --model-dir)")
    return smollm2_folder(base_model_cache())


def _sample_with_llama_cpp(
    plan: GridPlan,
    out: Path,
    model_dir: Path | None,
    deadline_s: float | None,
    progress: ProgressCallback,
) -> dict[str, Any]:
    from hag_agent.search.llama_cpp_grid import sample_plan_on_llama_cpp

    if model_dir is not None:
        raise HAGInputError("--engine llamacpp runs a GGUF file (HAG_MODEL_PATH), not --model-dir")
    return sample_plan_on_llama_cpp(plan, out, deadline_s=deadline_s, progress=progress)


def _summary(info: dict[str, Any]) -> str:
    return (
        f"{info['engine']}: {info['configs_sampled']} of {info['configs_total']} configurations, "
        f"{info['sequences_per_second']} sequences/s"
        + (" (stopped at the deadline)" if info["stopped_at_deadline"] else "")
    )


def _sample_with_transformers(
    plan_path: Path,
    out: Path,
    model_dir: Path | None,
    device: str | None,
    batch_size: int,
    deadline_s: float | None,
) -> None:
    """The standalone transformers sampler, in this process."""
    from hag_agent.search import grid_sampler
    from hag_agent.training.extra import missing_packages, require_packages

    require_packages(missing_packages(("torch", "transformers")), "grid-sample")
    args = ["--plan", str(plan_path), "--out", str(out), "--batch-size", str(batch_size)]
    if model_dir is not None:
        args += ["--model", str(model_dir)]
    else:
        from hag_agent.backends.llama_cpp_chat import default_model_path

        args += ["--gguf", str(default_model_path())]
    if device:
        args += ["--device", device]
    if deadline_s is not None:
        args += ["--deadline-s", str(deadline_s)]
    if device and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigurationError(f"--device {device}: torch sees no CUDA device here")
    try:
        grid_sampler.main(args)
    except (RuntimeError, ValueError) as exc:  # a model that will not load, out of memory
        raise ConfigurationError(f"sampling failed: {exc}") from exc


@click.command("grid-score")
@click.argument("suite")
@_plan_option
@click.option(
    "--samples-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="The folder `grid-sample` wrote.",
)
@suite_job.output_option("JSONL file of search records to write (replaced).")
@suite_job.limit_option
@suite_job.on_bad_line_option
def grid_score(
    suite: str,
    plan_path: Path,
    samples_dir: Path,
    output: Path,
    limit: int | None,
    on_bad_line: Literal["skip", "fail"],
) -> None:
    """Score a sampled plan over SUITE into search records, the input of `train sft`.

    SUITE (and --limit) must give the plan's cases: their answers are not in the plan. Each
    case's best configuration is the highest scoring; ties go to the one nearest the task prior.

    Exit codes: 0 written, 2 bad usage or input.
    """
    from hag_agent.search.grid_samples import read_samples, sampler_info
    from hag_agent.search.grid_scoring import score_plan

    err = Console(stderr=True)
    warn = suite_job.warner(err)
    with (
        suite_job.noting_interrupts("nothing was written"),
        ProgressView(err) as view,
    ):
        plan = _read_plan(plan_path)
        cases = suite_job.load_suites(suite, limit=limit, on_bad_line=on_bad_line, warn=warn)
        samples = read_samples(samples_dir)
        seconds = float(sampler_info(samples_dir).get("seconds_total") or 0.0)
        records = score_plan(
            plan,
            cases,
            samples,
            seconds_per_case=seconds / len(plan.cases),
            progress=warnings_shown(view, warn),
        )
        output.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    print_plain(
        err,
        f"wrote {len(records)} records to {output} from {len(samples)} of "
        f"{len(plan.configs)} configurations",
    )
    if records:
        print_plain(
            err,
            f"{suite_job.mean_scores(records)} "
            f"(K={plan.samples}, in-sample: the best is optimistic)",
        )


__all__ = ["ENGINES", "grid_plan", "grid_sample", "grid_score"]
