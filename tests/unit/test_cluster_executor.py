"""The cluster executor's logic without a cluster: feeding workers, outcomes, pickling, options."""

from __future__ import annotations

import asyncio
import pickle
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from test_search_engine import CASES, SMALL, fake_sampler, mean_scorer

from hag_agent.cli.executor_options import chosen_executor
from hag_agent.data.search_records import SearchRecord
from hag_agent.data.suites import SuiteCase, SuiteFormatError
from hag_agent.dev.server_process import free_port
from hag_agent.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    HAGError,
    InvalidSettingsError,
    WorkerLostError,
)
from hag_agent.search.case_worker import CaseOutcome, CaseWorker
from hag_agent.search.engine import SearchJob
from hag_agent.search.executor import LocalExecutor
from hag_agent.search.ray_cluster import (
    check_reachable,
    hag_environment,
    local_cpus,
    ray_connection,
)
from hag_agent.search.ray_executor import (
    RayCaseRunner,
    RayExecutor,
    RayTaskRunner,
    placement_for,
)
from hag_agent.search.run import run_search
from hag_agent.search.sampling import BackendSampler, SampleResult, backend_sampler
from hag_agent.search.space import SearchSettings
from hag_agent.search.strategies import TwoStageSearch
from hag_agent.search.worker_pool import run_on_workers
from hag_agent.tasks import TaskKind

CASE_LIST = [
    SuiteCase(id=f"c{i}", task=TaskKind.MATH, prompt=f"What is {i}+{i}?", answer=str(2 * i))
    for i in range(7)
]


def job(sampler: object = fake_sampler) -> SearchJob:
    settings = SearchSettings(samples=2, budget=8, space=SMALL)
    return SearchJob(TwoStageSearch(settings), sampler, mean_scorer)  # type: ignore[arg-type]


@dataclass
class FakeWorker:
    """Runs the job here, like a Ray actor would there; records what it was given."""

    name: str
    job: SearchJob
    fail: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    busy: bool = False

    async def run(self, case: SuiteCase) -> CaseOutcome:
        assert not self.busy, "a worker got a second case while busy"
        self.busy = True
        self.seen.append(case.id)
        try:
            await asyncio.sleep(0.001 * (len(case.id) + len(self.seen) % 3))
            if case.id in self.fail:
                return BackendError("server down", status=503)
            return await CaseWorker(self.job).run(case)
        finally:
            self.busy = False


def collect() -> tuple[dict[str, CaseOutcome], list[str], object]:
    outcomes: dict[str, CaseOutcome] = {}
    order: list[str] = []

    def on_done(case: SuiteCase, outcome: SearchRecord | HAGError) -> None:
        outcomes[case.id] = outcome
        order.append(case.id)

    return outcomes, order, on_done


async def test_every_case_runs_once_on_some_worker_and_reports_as_it_finishes() -> None:
    workers = [FakeWorker("a", job()), FakeWorker("b", job())]
    outcomes, order, on_done = collect()
    await run_on_workers(CASE_LIST, workers, on_done, asyncio.Event())  # type: ignore[arg-type]
    assert sorted(order) == sorted(c.id for c in CASE_LIST)
    assert sorted(workers[0].seen + workers[1].seen) == sorted(c.id for c in CASE_LIST)
    assert workers[0].seen and workers[1].seen  # both took cases
    assert all(isinstance(o, SearchRecord) for o in outcomes.values())


async def test_a_cases_typed_error_is_its_outcome_and_the_run_goes_on() -> None:
    workers = [FakeWorker("a", job(), fail={"c2", "c5"})]
    outcomes, _, on_done = collect()
    await run_on_workers(CASE_LIST, workers, on_done, asyncio.Event())  # type: ignore[arg-type]
    assert isinstance(outcomes["c2"], BackendError) and isinstance(outcomes["c5"], BackendError)
    assert sum(isinstance(o, SearchRecord) for o in outcomes.values()) == len(CASE_LIST) - 2


async def test_no_case_starts_once_stop_is_set() -> None:
    stop = asyncio.Event()
    outcomes: list[str] = []

    def on_done(case: SuiteCase, outcome: SearchRecord | HAGError) -> None:
        outcomes.append(case.id)
        stop.set()  # as `BatchTally` does after a failure with stop_on_error

    workers = [FakeWorker("a", job()), FakeWorker("b", job())]
    await run_on_workers(CASE_LIST, workers, on_done, stop)  # type: ignore[arg-type]
    assert 1 <= len(outcomes) <= 2  # the cases already out finish; no other starts


async def test_another_exception_propagates_after_the_running_cases() -> None:
    class Broken:
        async def run(self, case: SuiteCase) -> CaseOutcome:
            raise RuntimeError("a bug")

    _, _, on_done = collect()
    with pytest.raises(RuntimeError, match="a bug"):
        await run_on_workers(CASE_LIST, [Broken()], on_done, asyncio.Event())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one worker"):
        await run_on_workers(CASE_LIST, [], on_done, asyncio.Event())  # type: ignore[arg-type]


async def test_case_worker_returns_a_typed_error_and_bounds_samples_in_flight() -> None:
    in_flight = peak = 0

    async def counting(case: SuiteCase, params: object, seed: int) -> SampleResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return await fake_sampler(case, params, seed)  # type: ignore[arg-type]

    worker = CaseWorker(job(counting), concurrency=2)
    record = await worker.run(CASES[0])
    assert isinstance(record, SearchRecord) and peak == 2

    async def failing(case: SuiteCase, params: object, seed: int) -> SampleResult:
        raise BackendError("no model", status=500)

    outcome = await CaseWorker(job(failing)).run(CASES[0])
    assert isinstance(outcome, BackendError) and outcome.status == 500


async def test_the_same_seeds_give_the_same_records_through_workers(tmp_path: Path) -> None:
    """What the Ray executor computes (a worker per case) equals the local executor's records."""
    local = await run_search(CASE_LIST, job(), tmp_path / "local.jsonl", executor=LocalExecutor(2))
    assert len(local.completed) == len(CASE_LIST)
    outcomes, _, on_done = collect()
    workers = [FakeWorker("a", job()), FakeWorker("b", job()), FakeWorker("c", job())]
    await run_on_workers(CASE_LIST, workers, on_done, asyncio.Event())  # type: ignore[arg-type]
    from hag_agent.data.search_records import read_records

    for record in read_records(tmp_path / "local.jsonl"):
        remote = outcomes[record.id]
        assert isinstance(remote, SearchRecord)
        assert remote.model_dump(exclude={"wall_s"}) == record.model_dump(exclude={"wall_s"})


async def test_a_worker_lost_for_good_is_the_cases_worker_lost_error() -> None:
    class Lost(Exception):
        pass

    class Method:
        def remote(self, case: SuiteCase) -> object:
            async def fail() -> CaseOutcome:
                raise Lost("the actor died")

            return fail()

    class Actor:
        run = Method()

    outcome = await RayCaseRunner(Actor(), (Lost,)).run(CASES[0])
    assert isinstance(outcome, WorkerLostError) and "the actor died" in str(outcome)


@pytest.mark.parametrize(
    "error",
    [
        InvalidSettingsError("temperature", 5.0, "[0, 2]", "too hot"),
        BackendError("server down", status=503, body="overloaded"),
        BackendTimeoutError("slow", status=None),
        SuiteFormatError("bad line", path="s.jsonl", line=3),
        WorkerLostError("case c1: lost"),
        ConfigurationError("no backend"),
    ],
)
def test_typed_errors_survive_the_trip_back_from_a_worker(error: HAGError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert vars(again) == vars(error)


def test_a_sampler_built_by_name_travels_as_its_recipe() -> None:
    options = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    sampler = backend_sampler("vllm", options)
    again = pickle.loads(pickle.dumps(sampler))
    assert isinstance(again, BackendSampler) and again.recipe == sampler.recipe
    assert again.recipe is not None and again.recipe.name == "vllm"
    assert again.recipe.options == options
    pickle.loads(pickle.dumps(job(sampler)))  # the whole job travels

    with pytest.raises(TypeError, match="cannot be sent to another process"):
        pickle.dumps(BackendSampler(sampler.backend))


def test_the_executor_options() -> None:
    assert chosen_executor("local", None, None, 3) == LocalExecutor(3)
    assert chosen_executor("ray", "127.0.0.1:6379", 4, 2) == RayExecutor(
        address="127.0.0.1:6379", workers=4, concurrency=2
    )
    for address, workers in (("127.0.0.1:1", None), (None, 2)):
        with pytest.raises(click.BadParameter, match="needs --executor ray"):
            chosen_executor("local", address, workers, 1)
    with pytest.raises(click.BadParameter, match="at least 1"):
        chosen_executor("ray", None, 0, 1)
    with pytest.raises(ValueError):
        RayExecutor(concurrency=0)


def test_ray_missing_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    with pytest.raises(ConfigurationError, match=r"hag-agent\[scale\]"), ray_connection(None):
        pass


def test_workers_get_the_hag_environment_and_a_bounded_cpu_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HAG_N_THREADS", "1")
    monkeypatch.setenv("OTHER_SETTING", "x")
    environment = hag_environment()
    assert environment["HAG_N_THREADS"] == "1" and "OTHER_SETTING" not in environment
    assert local_cpus(10_000) == local_cpus(None) >= 1 and local_cpus(1) == 1


def test_an_address_nobody_answers_fails_fast() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_reachable(f"127.0.0.1:{listening.getsockname()[1]}")  # answers: no error
    with pytest.raises(ConfigurationError, match="no Ray cluster answers at"):
        check_reachable(f"127.0.0.1:{free_port()}")
    check_reachable("auto")  # Ray's own forms are Ray's business


async def test_a_task_slot_sends_the_stored_job_and_the_case() -> None:
    sent: list[tuple[object, str, int]] = []

    class Task:
        def remote(self, stored: object, case: SuiteCase, concurrency: int) -> object:
            sent.append((stored, case.id, concurrency))
            return CaseWorker(job()).run(case)

    outcome = await RayTaskRunner(Task(), "job-ref", 3, ()).run(CASES[0])
    assert isinstance(outcome, SearchRecord) and sent == [("job-ref", CASES[0].id, 3)]


def test_auto_placement_runs_an_endpoint_in_tasks_and_anything_else_in_actors() -> None:
    endpoint = job(backend_sampler("vllm", {"base_url": "http://127.0.0.1:9/v1", "model": "m"}))
    assert placement_for(endpoint, "auto") == "tasks"
    assert placement_for(job(), "auto") == "actors"  # a sampler of unknown weight
    assert (
        placement_for(endpoint, "actors") == "actors" and placement_for(job(), "tasks") == "tasks"
    )
