"""Background jobs are restarted after a failure, with a growing pause, and a job that keeps
failing is reported. Backoffs are tiny here; the tests wait on counts, never on the clock."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import pytest

from supervision import Supervisor, backoff_seconds


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)


def test_the_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_seconds(n, 1.0, 60.0) for n in range(0, 9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


async def test_a_failing_job_is_logged_with_its_traceback_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="supervision")
    supervisor = Supervisor(base_backoff=0.001, max_backoff=0.001, failing_after=3)
    runs = 0
    third = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            await third.wait()
        raise ValueError(f"bad gauge #{runs}")

    supervisor.start("stats-line", flaky)
    [status] = supervisor.statuses()
    await until(lambda: status.restarts == 2 and status.running)
    assert status.consecutive_failures == 2 and supervisor.failing() == []  # not yet reported
    third.set()
    await until(lambda: status.consecutive_failures >= 3)
    assert supervisor.failing() == ["stats-line"]
    await supervisor.stop()

    assert runs >= 3  # a fresh coroutine from the factory each time
    assert status.last_error is not None and status.last_error.startswith("ValueError: bad gauge")
    failure = next(r for r in caplog.records if "background job stats-line failed" in r.getMessage())
    assert failure.exc_info is not None and failure.exc_info[0] is ValueError
    assert "Traceback" in caplog.text


async def test_a_job_that_runs_well_again_is_no_longer_failing() -> None:
    supervisor = Supervisor(base_backoff=0.001, max_backoff=0.001, healthy_after=0.02, failing_after=3)
    fail_now = asyncio.Event()
    # (failures in a row, failing jobs) as each run starts: read at a fixed point, not polled.
    starts: list[tuple[int, list[str]]] = []

    async def job() -> None:
        [status] = supervisor.statuses()
        starts.append((status.consecutive_failures, supervisor.failing()))
        if len(starts) > 3:  # the first three runs fail at once; later ones run until told to fail
            await fail_now.wait()
            fail_now.clear()
        raise OSError("disk full")

    supervisor.start("backups", job)
    [status] = supervisor.statuses()
    await until(lambda: len(starts) == 4)
    assert starts == [(0, []), (1, []), (2, []), (3, ["backups"])]

    await until(lambda: status.consecutive_failures == 0)  # the fourth run lasted long enough
    assert supervisor.failing() == [] and status.running

    fail_now.set()
    await until(lambda: len(starts) == 5)
    assert starts[4] == (1, [])  # counted from scratch
    await supervisor.stop()


async def test_a_job_that_returns_is_restarted_too() -> None:
    supervisor = Supervisor(base_backoff=0.001, max_backoff=0.001)
    runs = 0

    async def ends() -> None:
        nonlocal runs
        runs += 1

    supervisor.start("retention", ends)
    [status] = supervisor.statuses()
    await until(lambda: status.restarts >= 2)
    await supervisor.stop()
    assert status.last_error == "ended without an error"
    assert runs >= 2


async def test_stop_cancels_every_job_and_its_named_task() -> None:
    supervisor = Supervisor()
    cancelled: list[str] = []
    started = asyncio.Event()

    def forever(name: str) -> Callable[[], asyncio.Future[None]]:
        async def run() -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise
        return run  # type: ignore[return-value]

    supervisor.start("loop-lag", forever("loop-lag"))
    supervisor.start("thread-maintenance", forever("thread-maintenance"))
    await started.wait()
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert {"loop-lag", "thread-maintenance"} <= names
    with pytest.raises(ValueError):
        supervisor.start("loop-lag", forever("again"))

    await supervisor.stop()

    assert sorted(cancelled) == ["loop-lag", "thread-maintenance"]
    assert not {"loop-lag", "thread-maintenance"} & {t.get_name() for t in asyncio.all_tasks()}
    assert supervisor.statuses() == []
