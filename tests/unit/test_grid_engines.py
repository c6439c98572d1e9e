"""Grid sampling on seeded-request engines: the plan driver, vLLM's worker and its client."""

from __future__ import annotations

import gzip
import io
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.cli.main import cli
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import BackendError, ConfigurationError
from hag_agent.progress import ProgressEvent
from hag_agent.search import vllm_worker
from hag_agent.search.grid_plan import build_plan
from hag_agent.search.grid_sampler import INFO_FILE, append_line
from hag_agent.search.grid_samples import read_samples
from hag_agent.search.llama_cpp_grid import sample_plan_on_llama_cpp
from hag_agent.search.plan_sampling import PlanRequest, config_requests, sample_plan_with
from hag_agent.search.vllm_grid import VLLMEngine, find_vllm_python
from hag_agent.tasks import TaskKind
from hag_agent.testing import ScriptedChatModel

CASES = [
    SuiteCase(id="m1", task=TaskKind.MATH, prompt="What is 2+2?", answer="4"),
    SuiteCase(id="r1", task=TaskKind.REASONING, prompt="Heads?", answer="yes"),
]
PLAN = build_plan(CASES, samples=3, max_tokens=8, seed=5)


class EchoEngine:
    """Answers each request with its prompt, seed and temperature; remembers the batches."""

    def __init__(self) -> None:
        self.batches: list[list[PlanRequest]] = []

    def __call__(self, requests: Sequence[PlanRequest]) -> list[str]:
        self.batches.append(list(requests))
        return [f" {r.prompt}|{r.seed}|{r.params['temperature']} " for r in requests]


def test_sample_k_of_every_configuration_is_seeded_plan_seed_plus_k() -> None:
    requests = config_requests(PLAN, 4)
    assert [(r.prompt, r.seed) for r in requests] == [
        (case.prompt, PLAN.seed + k) for case in PLAN.cases for k in range(PLAN.samples)
    ]
    assert all(r.params == PLAN.configs[4] for r in requests)


def test_whole_configurations_per_batch_and_texts_land_by_case(tmp_path: Path) -> None:
    engine = EchoEngine()
    events: list[ProgressEvent] = []
    figures = sample_plan_with(PLAN, engine, tmp_path, batch_sequences=13, progress=events.append)
    per_config = len(CASES) * PLAN.samples  # 6: 13 sequences round up to 3 configurations
    assert [len(b) for b in engine.batches[:-1]] == [3 * per_config] * (len(engine.batches) - 1)
    samples = read_samples(tmp_path)
    assert sorted(samples) == list(range(len(PLAN.configs)))
    for index, by_case in samples.items():
        temperature = PLAN.configs[index]["temperature"]
        assert by_case == {
            case.id: [f"{case.prompt}|{PLAN.seed + k}|{temperature}" for k in range(PLAN.samples)]
            for case in PLAN.cases
        }
    assert figures["configs_sampled"] == len(PLAN.configs)
    assert figures["sequences_per_config"] == per_config
    assert figures["sequences_per_second"] > 0
    assert events[-1].kind == "end" and events[-1].done == len(PLAN.configs)


def test_a_resumed_run_skips_what_is_there_and_a_deadline_stops_it(tmp_path: Path) -> None:
    earlier = {case.id: ["old"] * PLAN.samples for case in PLAN.cases}
    append_line(tmp_path / "samples-00.jsonl.gz", {"config": 0, "texts": earlier})
    engine = EchoEngine()
    figures = sample_plan_with(PLAN, engine, tmp_path, batch_sequences=0)
    assert len(engine.batches) == len(PLAN.configs) - 1  # 0: one configuration a call
    assert read_samples(tmp_path)[0] == earlier
    with gzip.open(tmp_path / "samples-00.jsonl.gz", "rt") as handle:
        assert len(handle.readlines()) == 1  # the rerun wrote new files, not into the old one
    stopped = sample_plan_with(PLAN, EchoEngine(), tmp_path / "cut", deadline_s=1e-9)
    assert (stopped["stopped_at_deadline"], stopped["configs_sampled"]) == (True, 0)
    assert figures["stopped_at_deadline"] is False


class FakeVLLM:
    """What the worker uses of the vllm module: ``SamplingParams`` keeps its arguments."""

    SamplingParams = staticmethod(lambda **kwargs: kwargs)


class FakeLLM:
    def get_tokenizer(self) -> Any:
        return SimpleNamespace(
            apply_chat_template=lambda messages, **_: f"<user>{messages[0]['content']}<assistant>"
        )

    def generate(self, prompts: list[str], params: list[Any], use_tqdm: bool) -> list[Any]:
        if any(p["top_p"] > 1 for p in params):
            raise ValueError("top_p must be in (0, 1]")
        return [
            SimpleNamespace(outputs=[SimpleNamespace(text=f"{prompt}#{p['seed']}", token_ids=[1])])
            for prompt, p in zip(prompts, params, strict=True)
        ]


def test_every_sampling_value_maps_to_sampling_params() -> None:
    params = {"temperature": 0.0, "top_p": 0.9, "top_k": 0, "min_p": 0.05,
              "repetition_penalty": 1.2, "max_tokens": 7}  # fmt: skip
    assert vllm_worker.sampling_params(FakeVLLM, params, 11, 48) == {
        "n": 1,
        "temperature": 0.0,  # greedy in vLLM as in llama.cpp
        "top_p": 0.9,
        "top_k": 0,  # off in both
        "min_p": 0.05,
        "repetition_penalty": 1.2,
        "max_tokens": 7,
        "seed": 11,
    }
    assert vllm_worker.sampling_params(FakeVLLM, {"temperature": 1.0}, 0, 48)["max_tokens"] == 48


def test_the_worker_answers_in_order_and_reports_a_refused_batch() -> None:
    batch = {"requests": [{"prompt": p, "params": {"temperature": 1.0}, "seed": s}
                          for p, s in (("a", 1), ("b", 2))]}  # fmt: skip
    bad = {"requests": [{"prompt": "a", "params": {"top_p": 7}, "seed": 1}]}
    lines = io.StringIO(f"{json.dumps(batch)}\n\n{json.dumps(bad)}\n")
    replies = io.StringIO()
    vllm_worker.serve(FakeLLM(), FakeVLLM, lines, replies, 48)
    first, second = (json.loads(line) for line in replies.getvalue().splitlines())
    assert first["texts"] == ["<user>a<assistant>#1", "<user>b<assistant>#2"]
    assert first["tokens"] == [1, 1]
    assert "top_p" in second["error"]


FAKE_WORKER = textwrap.dedent(
    """
    import json, sys
    if "--die" in sys.argv:
        print("no model here", file=sys.stderr)
        raise SystemExit(1)
    print(json.dumps({"ready": True, "vllm": "fake", "load_s": 0}), flush=True)
    for line in sys.stdin:
        requests = json.loads(line)["requests"]
        if any(r["params"].get("top_p", 1) > 1 for r in requests):
            print(json.dumps({"error": "top_p must be in (0, 1]"}), flush=True)
            continue
        texts = [f"{r['prompt']}#{r['seed']}" for r in requests]
        print(json.dumps({"texts": texts, "tokens": [1] * len(texts), "seconds": 0}), flush=True)
    """
)


def fake_engine(tmp_path: Path, *args: str) -> VLLMEngine:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    engine = VLLMEngine(tmp_path / "model", tmp_path / "worker.log", python=sys.executable)
    engine.command = [sys.executable, str(script), *args]
    return engine


def test_the_engine_speaks_the_worker_protocol(tmp_path: Path) -> None:
    with fake_engine(tmp_path) as engine:
        assert engine.ready["vllm"] == "fake"
        requests = [PlanRequest("a", {"temperature": 1.0}, 3), PlanRequest("b", {}, 4)]
        assert engine(requests) == ["a#3", "b#4"]
        with pytest.raises(BackendError, match="top_p"):
            engine([PlanRequest("a", {"top_p": 7.0}, 1)])
        assert engine([PlanRequest("c", {}, 0)]) == ["c#0"]  # still serving after a refusal
    assert engine._process is None


def test_a_worker_that_cannot_load_is_a_backend_error_with_its_log(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no model here"):
        fake_engine(tmp_path, "--die").start()


def test_the_vllm_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        find_vllm_python(str(tmp_path / "nope"))
    monkeypatch.setenv("HAG_VLLM_PYTHON", sys.executable)
    assert find_vllm_python() == sys.executable
    monkeypatch.delenv("HAG_VLLM_PYTHON")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigurationError, match="HAG_VLLM_PYTHON"):
        find_vllm_python()


def test_grid_sample_engine_errors_are_clean(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(PLAN.model_dump_json())
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    sample = ["dataset", "grid-sample", "--plan", str(plan_file), "--out", str(tmp_path / "o")]
    runner = CliRunner()
    result = runner.invoke(
        cli, [*sample, "--engine", "vllm", "--model-dir", str(model),
              "--vllm-python", str(tmp_path / "no-python")]
    )  # fmt: skip
    assert result.exit_code == 2 and "does not exist" in result.output, result.output
    result = runner.invoke(cli, [*sample, "--engine", "llamacpp", "--model-dir", str(model)])
    assert result.exit_code == 2 and "not --model-dir" in result.output, result.output
    assert not (tmp_path / "o" / INFO_FILE).exists()


def test_the_llama_cpp_engine_makes_one_seeded_call_per_sample(tmp_path: Path) -> None:
    model = ScriptedChatModel(script={"generate": ["An answer."]})
    plan = PLAN.model_copy(update={"configs": PLAN.configs[:2], "labels": PLAN.labels[:2]})
    info = sample_plan_on_llama_cpp(plan, tmp_path, backend=ChatModelBackend(model))
    calls = model.calls_for("generate")
    assert len(calls) == 2 * len(CASES) * PLAN.samples
    per_config = len(CASES) * PLAN.samples
    for index in range(2):
        chunk = calls[index * per_config : (index + 1) * per_config]
        assert [c.kwargs["seed"] for c in chunk] == [PLAN.seed + k for k in range(3)] * 2
        assert all(c.kwargs["temperature"] == plan.configs[index]["temperature"] for c in chunk)
    assert read_samples(tmp_path)[1] == {c.id: ["An answer."] * PLAN.samples for c in CASES}
    assert info["configs_sampled"] == 2
    assert json.loads((tmp_path / INFO_FILE).read_text())["seeds"].startswith("sample k")
