"""The HTML page of a run, opened in headless Chromium with no network: DOM and screenshot."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hag_agent import HAGRunnable
from hag_agent.testing import ScriptedChatModel
from hag_agent.visualization.topology import run_record

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian package chromium)"
)
PROPOSAL = '{"temperature": 0.4, "top_p": 0.85, "top_k": 30, "min_p": 0.0, "repetition_penalty": 1.05, "max_tokens": 300}'


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            # No network at all: a page that needed one would render broken.
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    model = ScriptedChatModel(
        script={"propose": [PROPOSAL], "generate": ["a a a a a a a a a a a a a a", "Bonjour."]}
    )
    result = HAGRunnable(model=model, proposer="self").invoke("Say hello in French")
    run = folder / "run.json"
    run.write_text(json.dumps(run_record(result, "Say hello in French")), encoding="utf-8")
    out = folder / "run.html"
    script = Path(sys.executable).with_name("hag-agent")
    done = subprocess.run(
        [str(script), "graph", "--trace", str(run), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_the_dom_has_the_graph_and_the_attempts(page: Path) -> None:
    done = chromium("--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    titles = set(re.findall(r"<title>(.*?)</title>", dom))
    for node in ("classify", "propose", "generate", "critique", "adjust", "__start__", "__end__"):
        assert node in titles, node
    assert "adjust-&gt;generate" in titles or "adjust&#45;&gt;generate" in titles
    assert dom.count('class="node"') == 7
    rows = re.findall(r"<tr[ >]", dom.split('id="attempts"', 1)[1].split("</table>", 1)[0])
    assert len(rows) == 3  # the header and two attempts
    assert "generate ×2" in dom


def test_the_screenshot_shows_a_drawing(page: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = imread(io.BytesIO(shot.read_bytes()), format="png")
    assert pixels.shape[0] == 1400 and pixels.shape[1] == 1000
    # The green of the path this run took is on the screen (#2e7d32 edges, #c8f7c5 nodes).
    rgb = (pixels[..., :3] * 255).round()
    green_nodes = ((abs(rgb - [200, 247, 197])).sum(axis=-1) < 12).sum()
    assert green_nodes > 2000
