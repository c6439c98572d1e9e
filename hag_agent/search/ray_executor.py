"""The search's cases on a Ray cluster: one actor per worker, each holding one loaded backend.

`RayExecutor` is an `hag_agent.search.executor.Executor`: it starts ``workers`` Ray actors
(`hag_agent.search.case_worker.CaseWorker`, one CPU each), sends each the run's `SearchJob` once
(so an embedded model loads once per worker), and feeds them the cases one at a time
(`hag_agent.search.worker_pool.run_on_workers`). Each finished record comes back to the driver,
whose ``on_done`` alone appends it to the records file, so a killed driver resumes from that file
as a local run does. Ray restarts a worker that dies (``max_restarts``) and reruns the case it
was on (``max_task_retries``); a case whose worker is still lost after that fails with
`WorkerLostError`, and the run goes on. The same seeds give the same records as `LocalExecutor`:
a record depends only on its case, the strategy and the seeds, not on where it ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hag_agent.data.suites import SuiteCase
from hag_agent.errors import WorkerLostError
from hag_agent.search.case_worker import CaseOutcome, CaseWorker
from hag_agent.search.engine import SearchJob
from hag_agent.search.executor import OnCaseDone
from hag_agent.search.ray_cluster import ray_connection
from hag_agent.search.worker_pool import run_on_workers


@dataclass(frozen=True)
class RayCaseRunner:
    """A `CaseWorker` actor as a `hag_agent.search.worker_pool.CaseRunner`."""

    actor: Any
    """The actor's handle."""
    lost: tuple[type[BaseException], ...]
    """Ray's errors for a worker that stayed lost after its restarts."""

    async def run(self, case: SuiteCase) -> CaseOutcome:
        """The case's outcome; a worker lost for good is the case's `WorkerLostError`."""
        try:
            outcome: CaseOutcome = await self.actor.run.remote(case)
        except self.lost as exc:
            return WorkerLostError(f"case {case.id}: its Ray worker was lost: {exc}")
        return outcome


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
            actors = self._start_actors(ray, job, max(1, min(count, len(cases))))
            lost = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
            try:
                runners = [RayCaseRunner(actor, lost) for actor in actors]
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


__all__ = ["RayCaseRunner", "RayExecutor"]
