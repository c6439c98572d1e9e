"""The search's cases on a Ray cluster: actors that hold one backend each, or plain tasks.

`RayExecutor` is an `hag_agent.search.executor.Executor`. With actors (the default, and what an
embedded model needs) it starts ``workers`` Ray actors (`hag_agent.search.case_worker.CaseWorker`,
one CPU each), sends each the run's `SearchJob` once (so an embedded model loads once per worker,
not per case), and feeds them the cases one at a time (`hag_agent.search.worker_pool`). With
tasks (what ``auto`` picks for an endpoint backend, which holds only a client) each case is a
plain Ray task (`hag_agent.search.case_worker.run_case`), ``workers`` of them at once, placed by
Ray. Either way each finished record comes back to the driver, whose ``on_done`` alone appends it
to the records file, so a killed driver resumes from that file as a local run does. Ray restarts
a worker that dies (``max_restarts``) and reruns the case it was on (``max_task_retries``); a
case whose worker is still lost after that fails with `WorkerLostError`, and the run goes on. The
same seeds give the same records as `LocalExecutor`: a record depends only on its case, the
strategy and the seeds, not on where it ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hag_agent.data.suites import SuiteCase
from hag_agent.errors import WorkerLostError
from hag_agent.search.case_worker import CaseOutcome, CaseWorker, run_case
from hag_agent.search.engine import SearchJob
from hag_agent.search.executor import OnCaseDone
from hag_agent.search.ray_cluster import ray_connection
from hag_agent.search.sampling import BackendSampler
from hag_agent.search.worker_pool import CaseRunner, run_on_workers

Placement = Literal["auto", "actors", "tasks"]
"""How cases run on Ray: ``actors`` holding a backend each, plain ``tasks``, or ``auto``."""


async def outcome_of(
    ref: Any, case: SuiteCase, lost: tuple[type[BaseException], ...]
) -> CaseOutcome:
    """The outcome a Ray call returns; a worker lost for good is the case's `WorkerLostError`."""
    try:
        outcome: CaseOutcome = await ref
    except lost as exc:
        return WorkerLostError(f"case {case.id}: its Ray worker was lost: {exc}")
    return outcome


def placement_for(job: SearchJob, placement: Placement) -> Literal["actors", "tasks"]:
    """``auto``: tasks for an endpoint backend (it holds only a client), else actors."""
    if placement != "auto":
        return placement
    from hag_agent.backends.openai_compatible import OpenAICompatibleBackend

    sampler = job.sampler
    endpoint = isinstance(sampler, BackendSampler) and isinstance(
        sampler.backend, OpenAICompatibleBackend
    )
    return "tasks" if endpoint else "actors"


@dataclass(frozen=True)
class RayCaseRunner:
    """A `CaseWorker` actor as a `hag_agent.search.worker_pool.CaseRunner`."""

    actor: Any
    """The actor's handle."""
    lost: tuple[type[BaseException], ...]
    """Ray's errors for a worker that stayed lost after its restarts."""

    async def run(self, case: SuiteCase) -> CaseOutcome:
        """The case's outcome on this actor."""
        return await outcome_of(self.actor.run.remote(case), case, self.lost)


@dataclass(frozen=True)
class RayTaskRunner:
    """A slot for one plain Ray task at a time, as a `hag_agent.search.worker_pool.CaseRunner`."""

    task: Any
    """`hag_agent.search.case_worker.run_case` as a Ray remote function, with its options."""
    job: Any
    """The job, stored once in Ray's object store (its reference)."""
    concurrency: int
    """Samples in flight in the task."""
    lost: tuple[type[BaseException], ...]
    """Ray's errors for a task whose worker stayed lost after its retries."""

    async def run(self, case: SuiteCase) -> CaseOutcome:
        """The case's outcome in a task placed by Ray."""
        return await outcome_of(self.task.remote(self.job, case, self.concurrency), case, self.lost)


@dataclass(frozen=True)
class RayExecutor:
    """Cases on Ray actors: at most ``workers`` at once, each on a worker of its own."""

    address: str | None = None
    """A running cluster (``HOST:PORT`` or ``auto``); None starts Ray in this process."""
    workers: int | None = None
    """Actors, i.e. cases at once (None: one per CPU of the cluster, at most one per case)."""
    concurrency: int = 1
    """Samples (model calls) in flight per worker."""
    max_restarts: int = 3
    """How often Ray restarts a worker that died."""
    max_task_retries: int = 3
    """How often Ray reruns a case whose worker died."""
    placement: Placement = "auto"
    """Actors holding a backend each, plain tasks, or ``auto`` (`placement_for`)."""

    def __post_init__(self) -> None:
        """Reject a worker count or concurrency below 1."""
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")

    async def __call__(
        self, cases: Sequence[SuiteCase], job: SearchJob, on_done: OnCaseDone, stop: asyncio.Event
    ) -> None:
        """Evaluate ``job`` on every case on Ray (see `Executor`).

        Raises:
            ConfigurationError: When Ray is missing or the cluster cannot be reached.
        """
        if not cases:
            return
        with ray_connection(self.address, num_cpus=self.workers) as ray:
            count = self.workers or int(ray.cluster_resources().get("CPU", 1))
            count = max(1, min(count, len(cases)))
            errors = ray.exceptions
            lost = (
                errors.RayActorError,
                errors.ActorUnavailableError,
                errors.WorkerCrashedError,
                errors.ObjectLostError,
            )
            actors: list[Any] = []
            runners: list[CaseRunner]
            if placement_for(job, self.placement) == "tasks":
                task = ray.remote(run_case).options(num_cpus=1, max_retries=self.max_task_retries)
                stored = ray.put(job)  # held here until the run ends
                runners = [RayTaskRunner(task, stored, self.concurrency, lost)] * count
            else:
                actors = self._start_actors(ray, job, count)
                runners = [RayCaseRunner(actor, lost) for actor in actors]
            try:
                await run_on_workers(cases, runners, on_done, stop)
            finally:
                for actor in actors:
                    ray.kill(actor, no_restart=True)

    def _start_actors(self, ray: Any, job: SearchJob, count: int) -> list[Any]:
        """``count`` `CaseWorker` actors, each given ``job``.

        The job goes with each actor's creation (it is small: settings and a backend's recipe),
        not as an object-store reference that could go out of scope before Ray restarts one.
        """
        actor_class = ray.remote(CaseWorker).options(
            num_cpus=1,
            max_concurrency=1,  # one case at a time: the backend is the worker's only model
            max_restarts=self.max_restarts,
            max_task_retries=self.max_task_retries,
        )
        return [actor_class.remote(job, self.concurrency) for _ in range(count)]


__all__ = [
    "Placement",
    "RayCaseRunner",
    "RayExecutor",
    "RayTaskRunner",
    "outcome_of",
    "placement_for",
]
