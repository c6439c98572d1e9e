"""The wheel ships the prompts and imports outside the checkout."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("hag_agent-*.whl")
    return built


def test_wheel_contains_every_prompt(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for prompt in (ROOT / "prompts").glob("*.md"):
        assert f"hag_agent/prompts/{prompt.name}" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_wheel_contains_the_packaged_tuned_proposer(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "hag_agent/assets/smollm2-proposer-lora.gguf" in names
    assert "hag_agent/assets/smollm2-proposer-lora.json" in names


def test_wheel_contains_the_packaged_learned_head(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "hag_agent/assets/smollm2-proposer-head.npz" in names
    assert "hag_agent/assets/smollm2-proposer-head.json" in names


def test_import_from_the_wheel_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import hag_agent, pathlib; from hag_agent import HAGRunnable, HyperParams;"
        "from hag_agent.prompt_templates import prompts_dir, render;"
        "assert hag_agent.__file__.startswith(%r), hag_agent.__file__;"
        "d = prompts_dir(); assert str(d).startswith(str(pathlib.Path(hag_agent.__file__).parent)), d;"
        "print('Choose the decoding settings' in render('propose', task='math', example='{}', prompt='2+2'))"
    )
    code = code % str(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    # -P: do not put the current directory (a checkout) on the path; -I would drop site-packages.
    done = subprocess.run(
        [sys.executable, "-P", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
