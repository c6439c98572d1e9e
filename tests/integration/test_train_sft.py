"""``hag-agent train sft`` at toy size: the tiny random Llama, a synthetic search file, seconds.

A random model learns nothing useful in a few steps: these tests check the run's artifacts, the
report's shape and exact resumption, never the quality of the proposals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import HYPERPARAM_KEYS

from .tiny_training import require_train_extra, tiny_base, write_search_file

SMOKE = ["--max-steps", "4", "--batch-size", "4", "--save-steps", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def base() -> Path:
    require_train_extra()
    return tiny_base()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_search_file(tmp_path_factory.mktemp("search") / "search.jsonl", 12)


def train_cli(data: Path, base: Path, out: Path, *extra: str) -> dict[str, Any]:
    from hag_agent.cli.train_command import train

    args = ["sft", "--data", str(data), "--base", str(base), "--out", str(out), *SMOKE, *extra]
    result = CliRunner().invoke(train, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def adapter_tensors(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return dict(load_file(folder / "adapter_model.safetensors"))


def assert_same_tensors(a: dict[str, Any], b: dict[str, Any]) -> None:
    import torch

    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=0, atol=1e-6), name


@pytest.fixture(scope="module")
def first_run(data: Path, base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    train_cli(data, base, out)
    return out


def test_run_writes_the_adapter_and_the_report(first_run: Path) -> None:
    adapter = first_run / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["peft_type"] == "LORA"
    targets = {name.rsplit(".", 1)[-1] for name in config["target_modules"]}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

    report = json.loads((first_run / "report.json").read_text())
    training = report["training"]
    assert training["steps_run"] == 4 and training["global_step"] == 4
    assert training["resumed_from"] is None and training["final_loss"] > 0
    held = report["held_out_ids"]
    assert 1 <= len(held) < 12 and training["examples"] + len(held) == 12
    for score in (report["tuned"], report["base_model"]):
        assert score["cases"] == len(held)
        assert 0.0 <= score["parse_rate"] <= 1.0
        assert set(score["mae"]) == set(HYPERPARAM_KEYS)
        assert all(v >= 0 for v in score["mae"].values())

    lines = [json.loads(line) for line in (first_run / "held_out.jsonl").read_text().splitlines()]
    assert sorted(line["proposer"] for line in lines) == ["base"] * len(held) + ["tuned"] * len(
        held
    )
    # The report's figures are those of the proposals it lists.
    for name, score in (("tuned", report["tuned"]), ("base", report["base_model"])):
        mine = [line for line in lines if line["proposer"] == name]
        assert score["parse_rate"] == pytest.approx(sum(m["parsed"] for m in mine) / len(mine))
        for key in HYPERPARAM_KEYS:
            errors = [abs(float(m["params"][key]) - float(m["target"][key])) for m in mine]
            assert score["mae"][key] == pytest.approx(sum(errors) / len(errors))
    assert {line["id"] for line in lines} == set(held)

    # The card beside the adapter: the tiny base has no GGUF, so it describes the PEFT folder.
    card = json.loads((first_run / "adapter.json").read_text())
    assert card["file"] == "adapter" and card["base"] == report["base"]
    assert card["scope"]["fixed"] == {}  # the synthetic records explored nothing
    kinds = {json.loads(line)["task"] for line in Path(report["data"]).read_text().splitlines()}
    assert set(card["scope"]["task_kinds"]) <= kinds


def test_rerun_of_a_finished_run_redoes_no_step(
    first_run: Path, data: Path, base: Path, tmp_path: Path
) -> None:
    before = adapter_tensors(first_run / "adapter")
    report = train_cli(data, base, first_run)
    assert report["training"]["steps_run"] == 0
    assert report["training"]["resumed_from"] == 4 and report["training"]["global_step"] == 4
    assert_same_tensors(before, adapter_tensors(first_run / "adapter"))


def test_interrupted_run_resumes_where_it_stopped_and_ends_the_same(
    first_run: Path, data: Path, base: Path, tmp_path: Path
) -> None:
    from transformers import TrainerCallback

    from hag_agent.progress import ProgressEvent
    from hag_agent.training.sft import SFTSettings, train_sft

    class Interrupt(TrainerCallback):  # type: ignore[misc]
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 2:
                raise KeyboardInterrupt

    settings = SFTSettings(max_steps=4, batch_size=4, save_steps=1, threads=1)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        train_sft(data, str(base), out, settings, callbacks=[Interrupt()])
    assert not (out / "adapter").exists()
    events: list[ProgressEvent] = []
    report = train_sft(data, str(base), out, settings, progress=events.append)
    assert report.training.resumed_from == 2 and report.training.steps_run == 2
    train = [(e.kind, e.done, e.total) for e in events if e.stage == "train"]
    assert train[0] == ("start", 2, 4) and train[-1] == ("end", 4, 4)
    assert [e.kind for e in events if e.stage == "base model"] == ["start", "end"]
    held_out = [e for e in events if e.stage == "held-out (tuned)"]
    assert held_out[-1].kind == "end" and held_out[-1].done == report.tuned.cases
    assert report.training.global_step == 4
    # Same seed, same data order, restored optimizer and RNG: the same adapter as one go.
    assert_same_tensors(adapter_tensors(first_run / "adapter"), adapter_tensors(out / "adapter"))


def test_more_steps_on_the_same_out_train_on(
    first_run: Path, data: Path, base: Path, tmp_path: Path
) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(first_run, out)
    report = train_cli(data, base, out, "--max-steps", "5")
    assert report["training"]["resumed_from"] == 4 and report["training"]["steps_run"] == 1
    assert report["training"]["global_step"] == 5


def test_same_out_with_other_settings_is_refused(first_run: Path, data: Path, base: Path) -> None:
    from hag_agent.training.sft import SFTSettings, train_sft

    with pytest.raises(HAGInputError, match="different lr"):
        train_sft(data, str(base), first_run, SFTSettings(max_steps=4, batch_size=4, lr=5e-4))
