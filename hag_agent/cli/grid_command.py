"""``hag-agent dataset grid-plan | grid-sample | grid-score``: the exhaustive grid on a GPU.

Three steps, so that the sampling can run on another machine that has only torch and
transformers: plan here, sample there (``grid-sample``, or ``python
hag_agent/search/grid_sampler.py`` where hag-agent is not installed), score here. Each step is
a call into `hag_agent.search`; scoring is the search engine's exhaustive strategy on the stored
samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click
from rich.console import Console

from hag_agent.cli import suite_job
from hag_agent.cli.option_kinds import defaulted_option, file_option, folder_option
from hag_agent.cli.plain_text import print_plain
from hag_agent.cli.progress_view import ProgressView, warnings_shown
from hag_agent.errors import ConfigurationError, HAGInputError

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


@click.command("grid-sample")
@_plan_option
@folder_option(
    "--out",
    required=True,
    help="Folder for the sample files; rerun with the same folder to resume.",
)
@folder_option(
    "--model-dir", help="A Hugging Face model folder (default: the embedded GGUF, dequantized)."
)
@click.option("--device", help="cuda or cpu (default: cuda when there is one).")
@defaulted_option(
    "--batch-size",
    type=click.IntRange(0),
    default=0,
    help="Sequences per generate call; 0 puts a whole configuration in one.",
)
@click.option(
    "--deadline-s",
    type=click.FloatRange(0, min_open=True),
    help="Start no configuration after this many seconds.",
)
def grid_sample(
    plan_path: Path,
    out: Path,
    model_dir: Path | None,
    device: str | None,
    batch_size: int,
    deadline_s: float | None,
) -> None:
    """Sample every configuration of a plan with transformers (needs the train extra).

    All cases x K samples of one configuration go through the model as one batch: on an H200,
    4.7 s a configuration for 182 cases x 8 samples of 48 tokens with SmolLM2.
    Configurations already in OUT are skipped.

    Exit codes: 0 done (or stopped at the deadline), 2 bad usage, input or missing packages,
    130 interrupted (rerun to resume).
    """
    from hag_agent.search import grid_sampler

    with suite_job.noting_interrupts(f"finished configurations are saved in {out}"):
        from hag_agent.training.extra import missing_packages, require_packages

        require_packages(missing_packages(("torch", "transformers")), "grid-sample")
        if not plan_path.is_file():
            raise HAGInputError(f"--plan {plan_path}: no such file")
        args = ["--plan", str(plan_path), "--out", str(out), "--batch-size", str(batch_size)]
        if model_dir is not None:
            if not (model_dir / "config.json").is_file():
                raise HAGInputError(f"--model-dir {model_dir}: not a model folder (no config.json)")
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
    from hag_agent.search.grid_plan import GridPlan
    from hag_agent.search.grid_samples import read_samples, sampler_info
    from hag_agent.search.grid_scoring import score_plan

    err = Console(stderr=True)
    warn = suite_job.warner(err)
    with (
        suite_job.noting_interrupts("nothing was written"),
        ProgressView(err) as view,
    ):
        try:
            plan = GridPlan.model_validate_json(plan_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise HAGInputError(f"--plan {plan_path}: not a grid plan ({exc})") from None
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


__all__ = ["grid_plan", "grid_sample", "grid_score"]
