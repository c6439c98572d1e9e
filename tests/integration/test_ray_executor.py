"""The search on Ray: a real cluster on 127.0.0.1 (``ray start --head``, 2 CPUs) and Ray in process.

The end-to-end test runs ``hag-agent dataset search --executor ray --ray-address`` on the real
embedded model (6 cases, K = 1, a budget of 4: a real model is fast enough at that size), kills
the driver once mid-run, resumes, and checks that the records equal a local run's on the same
seeds (all but the wall time). Another runs llama.cpp's server behind plain Ray tasks. A worker
killed mid-case (restarted by Ray, its case rerun), plain tasks, and Ray started in process use
a deterministic fake sampler, so they take seconds and compare exactly with a local run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hag_agent.data.search_records import SearchRecord, read_records
from hag_agent.data.suites import SuiteCase
from hag_agent.dev.server_process import ServerProcess, free_port
from hag_agent.hyperparameters import HyperParams
from hag_agent.search.engine import SearchJob
from hag_agent.search.ray_executor import RayExecutor
from hag_agent.search.run import SearchRun, run_search
from hag_agent.search.sampling import SampleResult
from hag_agent.search.space import SearchSettings
from hag_agent.search.strategies import TwoStageSearch
from hag_agent.tasks import TaskKind
from hag_agent.testing.extras import skip_reason

if importlib.util.find_spec("ray") is None:
    pytest.skip(skip_reason("scale", ["ray"]), allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Ray on loopback only (else it binds the machine's outside address), without telemetry or an
# auth token under ~/.ray. Set before Ray is first imported: it reads them at import.
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}
os.environ.update(RAY_ENV)
# The embedded model in each worker: one thread each (2 cores, other work on them).
THREADS = {"HAG_N_THREADS": "1", "HAG_N_THREADS_BATCH": "1"}
SEARCH = ["--samples", "1", "--budget", "4", "--max-tokens", "8", "--quiet"]

CASES = [
    SuiteCase(id=f"c{i}", task=TaskKind.MATH, prompt=f"What is {i}+{i}?", answer=str(2 * i))
    for i in range(6)
]


class SlowSampler:
    """A deterministic fake: its text depends only on (case, configuration, seed).

    Each sample sleeps, so a case takes about a second; each worker process notes its pid in
    ``pids`` when it starts a case, so a test can kill one mid-case.
    """

    def __init__(self, pids: Path, delay_s: float) -> None:
        self.pids = pids
        self.delay_s = delay_s

    async def __call__(self, case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
        (self.pids / str(os.getpid())).touch()
        await asyncio.sleep(self.delay_s)
        text = f"{random.Random(f'{case.id}{params.key()}{seed}').random():.6f}"
        return SampleResult(text=text, completion_tokens=1)


def mean_scorer(case: SuiteCase, outputs: list[str]) -> float:
    return sum(float(text) for text in outputs) / len(outputs)


def fake_job(pids: Path, delay_s: float = 0.05) -> SearchJob:
    settings = SearchSettings(samples=2, budget=6)
    return SearchJob(TwoStageSearch(settings), SlowSampler(pids, delay_s), mean_scorer)


def comparable(records: list[SearchRecord]) -> dict[str, dict[str, object]]:
    return {r.id: r.model_dump(exclude={"wall_s"}) for r in records}


def worker_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": str(ROOT), **extra}
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head on 127.0.0.1 with 2 CPUs; stopped by its pid, never with ``ray stop``."""
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")  # short: Ray's socket paths must fit 107 bytes
    command = [
        str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
        f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={temp}",
    ]  # fmt: skip
    log = (temp / "head.log").open("wb")
    head = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=worker_env(**THREADS),
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, head, timeout_s=60)
        time.sleep(2)  # the raylet registers just after the GCS port opens
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)  # our own process group only
            head.wait()
        log.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "ray start exited"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"Ray's head did not listen on {port} within {timeout_s} s")


def hag(*args: str, timeout_s: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hag-agent"), *args], capture_output=True, text=True, timeout=timeout_s,
        env=worker_env(**THREADS),
    )  # fmt: skip


def test_the_cli_on_a_cluster_resumes_after_a_killed_driver_and_matches_local(
    cluster: str, tmp_path: Path
) -> None:
    suite = tmp_path / "suite.jsonl"
    assert (
        hag("dataset", "make", "arithmetic", "--n", "6", "--seed", "3", "-o", str(suite)).returncode
        == 0
    )
    ids = [SuiteCase.model_validate_json(line).id for line in suite.read_text().splitlines()]
    records = tmp_path / "ray.jsonl"
    on_ray = [
        str(BIN / "hag-agent"), "dataset", "search", str(suite), "-o", str(records), *SEARCH,
        "--executor", "ray", "--ray-address", cluster, "--workers", "2",
    ]  # fmt: skip
    driver = subprocess.Popen(on_ray, env=worker_env(**THREADS), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (records.exists() and records.read_text().count("\n") >= 1):
        assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
        assert time.monotonic() < deadline, "no record within 120 s"
        time.sleep(0.05)
    driver.kill()  # SIGKILL: no clean-up of any kind
    driver.wait()
    first = records.read_text().splitlines()
    assert 1 <= len(first) < len(ids), "the driver finished before it could be killed"

    resumed = subprocess.run(
        on_ray, env=worker_env(**THREADS), capture_output=True, text=True, timeout=150
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(ids) - len(first)} searched, {len(first)} already done" in resumed.stderr
    lines = records.read_text().splitlines()
    assert lines[: len(first)] == first  # what the killed driver wrote stays as it was
    found = read_records(records)
    assert sorted(r.id for r in found) == sorted(ids)  # each case once
    assert all(r.model_calls <= 4 and r.evaluations <= 4 for r in found)  # the budget held

    local = tmp_path / "local.jsonl"
    done = hag("dataset", "search", str(suite), "-o", str(local), *SEARCH)
    assert done.returncode == 0, done.stderr
    assert comparable(found) == comparable(read_records(local))  # the same seeds, the same records


def test_an_endpoint_backend_runs_in_plain_tasks_reusing_their_worker_processes(
    cluster: str, llamacpp_server: ServerProcess, tmp_path: Path
) -> None:
    """llama.cpp's server behind plain tasks (what ``auto`` picks for an endpoint): more cases
    than workers, so Ray's idle worker processes, and the client each built, serve several tasks,
    each in an event loop of its own."""
    suite = tmp_path / "suite.jsonl"
    assert (
        hag("dataset", "make", "coinflip", "--n", "4", "--seed", "2", "-o", str(suite)).returncode
        == 0
    )
    records = tmp_path / "ray.jsonl"
    endpoint = [
        "--backend", "llamacpp-server", "--base-url", f"{llamacpp_server.base_url}/v1",
        "--model", "smollm2", "--samples", "1", "--budget", "3", "--max-tokens", "4", "--quiet",
    ]  # fmt: skip
    done = hag("dataset", "search", str(suite), "-o", str(records), *endpoint,
               "--executor", "ray", "--ray-address", cluster, "--workers", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = read_records(records)
    assert len(found) == 4 and all(r.model_calls >= 2 for r in found)


def test_a_worker_killed_mid_case_is_restarted_and_its_case_rerun(
    cluster: str, tmp_path: Path
) -> None:
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    pids = tmp_path / "pids"
    pids.mkdir()
    killed: list[int] = []

    async def kill_one_worker() -> None:
        while not any(pids.iterdir()):
            await asyncio.sleep(0.02)
        pid = int(next(pids.iterdir()).name)
        os.kill(pid, signal.SIGKILL)  # a worker process this test's run started
        killed.append(pid)

    async def both() -> SearchRun:
        executor = RayExecutor(address=cluster, workers=2, max_restarts=2, max_task_retries=2)
        run = run_search(CASES, fake_job(pids, 0.1), tmp_path / "out.jsonl", executor=executor)
        outcome, _ = await asyncio.gather(run, kill_one_worker())
        return outcome

    run = asyncio.run(both())
    assert killed and not run.failed
    assert sorted(r.id for r in read_records(tmp_path / "out.jsonl")) == [c.id for c in CASES]
    assert len(list(pids.iterdir())) >= 3  # two workers, and the one restarted in a new process


def test_plain_tasks_on_the_cluster_give_the_local_executors_records(
    cluster: str, tmp_path: Path
) -> None:
    import ray

    from hag_agent.search.executor import LocalExecutor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    pids = tmp_path / "pids"
    pids.mkdir()
    executor = RayExecutor(address=cluster, workers=2, placement="tasks")
    on_ray = asyncio.run(
        run_search(CASES, fake_job(pids), tmp_path / "ray.jsonl", executor=executor)
    )
    assert len(on_ray.completed) == len(CASES) and os.getpid() not in {
        int(p.name) for p in pids.iterdir()
    }  # ran in Ray's workers, not here
    local = asyncio.run(
        run_search(CASES, fake_job(pids), tmp_path / "local.jsonl", executor=LocalExecutor(1))
    )
    assert len(local.completed) == len(CASES)
    assert comparable(read_records(tmp_path / "ray.jsonl")) == comparable(
        read_records(tmp_path / "local.jsonl")
    )


def test_ray_started_in_process_gives_the_local_executors_records(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from hag_agent.search.executor import LocalExecutor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))  # short socket paths
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pids = tmp_path / "pids"
    pids.mkdir()
    on_ray = asyncio.run(
        run_search(CASES, fake_job(pids), tmp_path / "ray.jsonl", executor=RayExecutor(workers=2))
    )
    assert not ray.is_initialized()  # it started Ray, so it shut it down
    assert len(on_ray.completed) == len(CASES) and len(list(pids.iterdir())) == 2
    local = asyncio.run(
        run_search(CASES, fake_job(pids), tmp_path / "local.jsonl", executor=LocalExecutor(2))
    )
    assert len(local.completed) == len(CASES)
    assert comparable(read_records(tmp_path / "ray.jsonl")) == comparable(
        read_records(tmp_path / "local.jsonl")
    )
