"""Waiting in line for a model slot does not use up the turn's deadline."""

from __future__ import annotations

import asyncio

from base_client import ReplyOutcome, ReplyStream
from message_processor.model_slots import AdaptiveLimit, ModelSlots, turn_deadline


class StatusOnly(ReplyStream):
    """A reply that keeps the statuses it was shown (the slot only ever shows one)."""

    def __init__(self) -> None:
        self.statuses: list[str] = []

    async def start(self, status: str) -> None:
        self.statuses.append(status)

    async def progress(self, status: str) -> None:
        self.statuses.append(status)

    async def append(self, delta: str) -> None:
        raise AssertionError("no text while waiting for a slot")

    async def finish(self) -> ReplyOutcome:
        return ReplyOutcome()

    async def fail(self, notice: str) -> ReplyOutcome:
        return ReplyOutcome()


async def test_the_deadline_is_paused_while_waiting_for_a_slot_and_resumed_after() -> None:
    slots, reply = ModelSlots(AdaptiveLimit(1)), StatusOnly()
    taken, free = asyncio.Event(), asyncio.Event()

    async def busy() -> None:
        async with slots.slot(reply):
            taken.set()
            await free.wait()

    holder = asyncio.create_task(busy())
    await taken.wait()
    seen_while_waiting: list[float | None] = []
    async with asyncio.timeout(3600) as deadline:
        token = turn_deadline.set(deadline)
        due = deadline.when()
        assert due is not None

        async def watch() -> None:
            while slots.waiting == 0:
                await asyncio.sleep(0)
            seen_while_waiting.append(deadline.when())
            free.set()

        watcher = asyncio.create_task(watch())
        async with slots.slot(reply):
            resumed = deadline.when()
        turn_deadline.reset(token)
    await asyncio.gather(holder, watcher)

    assert seen_while_waiting == [None]  # no deadline can fire while in line
    assert resumed is not None and resumed >= due  # the time in line was given back
    assert reply.statuses == ["Waiting for a free slot (1 in line)…"]


async def test_a_free_slot_leaves_the_deadline_alone() -> None:
    slots = ModelSlots(AdaptiveLimit(1))
    async with asyncio.timeout(3600) as deadline:
        token = turn_deadline.set(deadline)
        due = deadline.when()
        async with slots.slot(StatusOnly()):
            assert deadline.when() == due
        turn_deadline.reset(token)
