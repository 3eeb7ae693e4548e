"""The model-call limit follows the provider: down on 429s and nearly spent windows, up on success."""

from __future__ import annotations

import asyncio

from base_client import ReplyOutcome, ReplyStream
from message_processor.model_slots import AdaptiveLimit, ModelSlots, remaining_share


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_starts_at_the_ceiling_halves_on_a_429_burst_once_and_grows_back_by_one() -> None:
    clock = Clock()
    limit = AdaptiveLimit(100, clock)
    assert limit.current == 100  # nobody waits while the provider keeps up
    for _ in range(30):  # one burst of refusals in the same second: one signal
        limit.rate_limited()
    assert limit.current == 50
    clock.now += 1.5
    limit.rate_limited()
    assert limit.current == 25
    for _ in range(10):
        limit.succeeded()
    assert limit.current == 35
    for _ in range(500):
        limit.succeeded()
    assert limit.current == 100  # never over the ceiling


def test_it_never_goes_below_one() -> None:
    clock = Clock()
    limit = AdaptiveLimit(4, clock)
    for _ in range(10):
        clock.now += 2
        limit.rate_limited()
    assert limit.current == 1


def test_nearly_spent_rate_limit_windows_trim_the_limit() -> None:
    headers = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499",
               "x-ratelimit-limit-tokens": "100000", "x-ratelimit-remaining-tokens": "3000"}
    assert remaining_share(headers) == 0.03
    assert remaining_share({"x-ratelimit-limit-requests": "oops"}) is None and remaining_share({}) is None
    limit = AdaptiveLimit(100, Clock())
    limit.headers({**headers, "x-ratelimit-remaining-tokens": "90000"})
    assert limit.current == 100  # plenty left
    limit.headers(headers)
    assert limit.current == 75


class Quiet(ReplyStream):
    async def start(self, status: str) -> None: ...
    async def progress(self, status: str) -> None: ...
    async def append(self, delta: str) -> None: ...
    async def finish(self) -> ReplyOutcome: return ReplyOutcome()
    async def fail(self, notice: str) -> ReplyOutcome: return ReplyOutcome()


async def test_slots_follow_the_limit_and_a_grown_limit_lets_waiters_in_in_order() -> None:
    clock = Clock()
    slots = ModelSlots(AdaptiveLimit(4, clock))
    slots.observe(429, {})
    assert slots.limit.current == 2
    entered: list[int] = []
    release = asyncio.Event()

    async def call(n: int) -> None:
        async with slots.slot(Quiet()):
            entered.append(n)
            await release.wait()

    tasks = [asyncio.create_task(call(n)) for n in range(4)]
    while slots.waiting < 2:
        await asyncio.sleep(0)
    assert entered == [0, 1] and slots.in_flight == 2
    slots.observe(200, {})  # a success elsewhere: the limit grows by one, one more goes in
    await asyncio.sleep(0)
    assert entered == [0, 1, 2] and slots.waiting == 1
    release.set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2, 3] and slots.in_flight == 0 and slots.waiting == 0


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    slots = ModelSlots(AdaptiveLimit(1))
    release = asyncio.Event()

    async def hold() -> None:
        async with slots.slot(Quiet()):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    while slots.waiting == 0:
        await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert slots.waiting == 0
    release.set()
    await holder
    assert slots.in_flight == 0


def test_a_rate_limited_round_waits_what_it_is_asked_or_backs_off_within_the_deadline() -> None:
    from message_processor.turn_loop import retry_wait
    from openai_client.events import ErrorKind, ModelError

    limited = ModelError(ErrorKind.RATE_LIMIT, "slow down")
    assert [retry_wait(limited, n, None) for n in range(6)] == [1, 2, 4, 8, 16, 20]  # doubling, capped
    assert retry_wait(ModelError(ErrorKind.RATE_LIMIT, "x", retry_after=0.3), 0, 60) == 0.3
    assert retry_wait(ModelError(ErrorKind.RATE_LIMIT, "x", retry_after=3600), 0, None) is None  # much later
    assert retry_wait(limited, 3, 10.0) is None  # 8 s of waiting and a round do not fit in 10 s
    assert retry_wait(ModelError(ErrorKind.SERVER, "500"), 0, 60) is None  # only rate limits
