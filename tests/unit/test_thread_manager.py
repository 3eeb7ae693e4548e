"""Per-thread locks: taken without waiting, queued in order, evicted when idle, never broken."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from thread_manager import ThreadManager


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


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
        ticket = threads.reserve("C:1")
        assert ticket is not None  # no limit: always a place
        state = await ticket.wait()
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


async def test_a_burst_takes_places_in_line_up_to_the_limit_before_anyone_awaits() -> None:
    threads = ThreadManager(idle_seconds=60)
    holder = await threads.try_acquire("C:1")
    assert holder is not None

    # Ten takers in a row, with no await in between: the limit holds and the count is exact.
    tickets = [threads.reserve("C:1", limit=3) for _ in range(10)]

    assert [t is not None for t in tickets] == [True] * 3 + [False] * 7
    assert [t.ahead for t in tickets[:3]] == [1, 2, 3]
    assert threads.waiting("C:1") == 3
    assert await threads.try_acquire("C:1") is None  # free or not, nobody passes the line

    order: list[int] = []

    async def serve(n: int) -> None:
        ticket = tickets[n]
        assert ticket is not None
        state = await ticket.wait()
        order.append(n)
        threads.release(state)

    # Waiting starts in reverse: the order of the tickets decides, not the order of waiting.
    waiters = [asyncio.create_task(serve(n)) for n in (2, 1, 0)]
    await asyncio.sleep(0)
    threads.release(holder)
    assert await threads.try_acquire("C:1") is None  # handed straight to the first ticket
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]
    assert not threads.is_busy("C:1") and threads.waiting("C:1") == 0


async def test_a_free_thread_is_the_tickets_at_once() -> None:
    threads = ThreadManager(idle_seconds=60)
    ticket = threads.reserve("C:1", limit=0)
    assert ticket is not None and threads.is_busy("C:1")
    state = await ticket.wait()
    threads.release(state)
    assert not threads.is_busy("C:1")


async def test_leaving_the_line_gives_the_place_and_the_thread_to_the_next() -> None:
    threads = ThreadManager(idle_seconds=60)
    holder = await threads.try_acquire("C:1")
    assert holder is not None
    first, second, third = (threads.reserve("C:1", limit=3) for _ in range(3))
    assert first and second and third

    second.leave()  # turned away before its turn: its place is free again
    assert threads.waiting("C:1") == 2
    assert threads.reserve("C:1", limit=3) is not None

    threads.release(holder)  # first's turn; it leaves without ever waiting (its reply failed)
    first.leave()
    assert threads.is_busy("C:1")  # passed on, not dropped
    state = await third.wait()
    threads.release(state)


async def test_a_waiter_cancelled_as_its_turn_comes_passes_the_thread_on() -> None:
    threads = ThreadManager(idle_seconds=60)
    holder = await threads.try_acquire("C:1")
    assert holder is not None
    first, second = threads.reserve("C:1"), threads.reserve("C:1")
    assert first and second
    cancelled = asyncio.create_task(first.wait())
    await asyncio.sleep(0)

    threads.release(holder)  # handed to `first`...
    cancelled.cancel()  # ...which is cancelled before it could run (shutdown)
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    state = await asyncio.wait_for(second.wait(), 5)
    threads.release(state)
    assert not threads.is_busy("C:1")


async def test_releasing_a_thread_nobody_holds_is_a_bug() -> None:
    threads = ThreadManager(idle_seconds=60)
    state = await threads.try_acquire("C:1")
    assert state is not None
    threads.release(state)
    with pytest.raises(RuntimeError):
        threads.release(state)


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
    await until(lambda: "C:slow has been answering for" in caplog.text)
    watchdog.cancel()
    await asyncio.gather(watchdog, return_exceptions=True)

    assert "C:slow has been answering for" in caplog.text
    assert threads.is_busy("C:slow")  # still held: only its owner releases it
    threads.release(state)
