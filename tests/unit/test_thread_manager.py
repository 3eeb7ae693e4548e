"""Per-thread locks: taken without waiting, queued in order, evicted when idle, never broken."""

from __future__ import annotations

import asyncio

from thread_manager import ThreadManager


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_second_taker_is_turned_away_without_waiting() -> None:
    threads = ThreadManager(idle_seconds=60)
    state = await threads.try_acquire("C:1")
    assert state is not None and threads.is_busy("C:1")
    assert await threads.try_acquire("C:1") is None
    assert await threads.try_acquire("C:2") is not None  # other threads are independent
    threads.release(state)
    assert await threads.try_acquire("C:1") is not None


async def test_queued_takers_are_served_in_order() -> None:
    threads = ThreadManager(idle_seconds=60)
    first = await threads.try_acquire("C:1")
    order: list[int] = []

    async def wait(n: int) -> None:
        state = await threads.acquire_queued("C:1")
        order.append(n)
        await asyncio.sleep(0)
        threads.release(state)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert threads.waiting("C:1") == 3
    assert await threads.try_acquire("C:1") is None  # no jumping the queue
    threads.release(first)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]


async def test_idle_threads_are_evicted_but_busy_ones_never() -> None:
    clock = Clock()
    threads = ThreadManager(idle_seconds=60, clock=clock)
    busy = await threads.try_acquire("C:busy")
    idle = await threads.try_acquire("C:idle")
    threads.release(idle)
    clock.now += 61
    assert threads.evict_idle() == 1
    assert len(threads) == 1 and threads.is_busy("C:busy")
    assert threads.overdue(30) == [("C:busy", 61.0)]
    threads.release(busy)


async def test_watchdog_reports_overdue_work_and_never_releases_it(caplog) -> None:
    threads = ThreadManager(idle_seconds=60)
    state = await threads.try_acquire("C:slow")
    watchdog = asyncio.create_task(threads.maintain(interval=0.02, overdue_after=0.01))
    await asyncio.sleep(0.1)
    watchdog.cancel()
    await asyncio.gather(watchdog, return_exceptions=True)

    assert "C:slow has been answering for" in caplog.text
    assert threads.is_busy("C:slow")  # still held: only its owner releases it
    threads.release(state)
