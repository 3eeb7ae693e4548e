"""Background jobs that outlive their own bugs: each runs as a named task and is restarted.

A job is a factory returning a fresh coroutine (a coroutine object can only be awaited once, so a
restart needs a new one). Jobs are loops meant to run until the app stops: when one raises, the
traceback is logged and the job starts again after a backoff that doubles with each failure in
a row (capped); a job that has run `healthy_after` seconds counts as well again, so its next
failure starts from the shortest backoff. A job that ends without an error has stopped doing its
work too, so it is restarted the same way. `/health` reports a job that failed `failing_after`
times in a row (observability.py).

The supervisor owns its tasks: `stop()` cancels them all, in one place (AssistantApp.stop).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine

log = logging.getLogger(__name__)

JobFactory = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class JobStatus:
    """What /health says about one job."""

    name: str
    running: bool = False
    restarts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    failing: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "running": self.running, "restarts": self.restarts,
            "consecutive_failures": self.consecutive_failures, "last_error": self.last_error,
            "failing": self.failing,
        }


@dataclass(eq=False)
class _Job:
    name: str
    factory: JobFactory
    status: JobStatus
    task: asyncio.Task[None] | None = None
    # Resets the failure count once the current run has lasted `healthy_after` seconds.
    healthy_timer: asyncio.TimerHandle | None = field(default=None, repr=False)


def backoff_seconds(failures: int, base: float, cap: float) -> float:
    """Seconds before restart after `failures` failures in a row: base, 2·base, 4·base… ≤ cap."""
    if failures <= 0:
        return 0.0
    return min(base * 2 ** (failures - 1), cap)


class Supervisor:
    """Runs named background jobs, restarting each after a failure (see the module docstring)."""

    def __init__(
        self, base_backoff: float = 1.0, max_backoff: float = 60.0, healthy_after: float = 60.0,
        failing_after: int = 3,
    ) -> None:
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self.failing_after = failing_after
        self._jobs: dict[str, _Job] = {}

    def start(self, name: str, factory: JobFactory) -> None:
        """Run `factory()` as the task `name` from now until `stop()`, restarted when it fails."""
        if name in self._jobs:
            raise ValueError(f"a job named {name!r} is already running")
        job = _Job(name, factory, JobStatus(name))
        job.task = asyncio.create_task(self._supervise(job), name=name)
        self._jobs[name] = job

    def statuses(self) -> list[JobStatus]:
        return [job.status for job in self._jobs.values()]

    def failing(self) -> list[str]:
        """Names of the jobs that failed `failing_after` times in a row and have not run well since."""
        return [job.name for job in self._jobs.values() if job.status.failing]

    async def stop(self) -> None:
        """Cancel every job and wait until each has ended."""
        jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            self._cancel_timer(job)
            if job.task is not None:
                job.task.cancel()
        await asyncio.gather(*(job.task for job in jobs if job.task is not None), return_exceptions=True)

    async def _supervise(self, job: _Job) -> None:
        status = job.status
        loop = asyncio.get_running_loop()
        while True:
            status.running = True
            job.healthy_timer = loop.call_later(self.healthy_after, self._ran_well, job)
            try:
                await job.factory()
            except asyncio.CancelledError:
                status.running = False
                self._cancel_timer(job)
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                failure: BaseException | None = exc
            else:
                error, failure = "ended without an error", None
            status.running = False
            self._cancel_timer(job)
            status.consecutive_failures += 1
            status.last_error = error
            status.failing = status.consecutive_failures >= self.failing_after
            delay = backoff_seconds(status.consecutive_failures, self.base_backoff, self.max_backoff)
            log.error(
                "background job %s failed (%s; %d in a row); restarting in %.1f s",
                job.name, error, status.consecutive_failures, delay, exc_info=failure,
            )
            await asyncio.sleep(delay)
            status.restarts += 1

    def _ran_well(self, job: _Job) -> None:
        """The current run lasted long enough: earlier failures no longer count."""
        job.healthy_timer = None
        if job.status.consecutive_failures:
            log.info("background job %s is running well again", job.name)
        job.status.consecutive_failures = 0
        job.status.failing = False

    @staticmethod
    def _cancel_timer(job: _Job) -> None:
        if job.healthy_timer is not None:
            job.healthy_timer.cancel()
            job.healthy_timer = None
