"""How many model calls run at once: a limit that adapts to the provider, and the line for it.

`AdaptiveLimit` is pure (no I/O, a clock passed in): it starts at the ceiling
(`MAX_CONCURRENT_REQUESTS`), so nobody waits while the provider keeps up; a 429 halves it (once
per second, however many calls were refused together), an answer whose rate-limit headers say
the remaining requests or tokens are nearly spent trims it, and every call that succeeds gives
one back, up to the ceiling. `ModelSlots` is the line: at most `limit` calls at once, the others
wait, visibly and in order, and a waiting call's turn deadline is paused meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar

from base_client import ReplyStream

# The deadline of the turn this task is answering (set by the processor around the whole turn):
# waiting for a free model slot pauses it, as that wait is not the turn's own work.
turn_deadline: ContextVar[asyncio.Timeout | None] = ContextVar("turn_deadline", default=None)

# Back off when less than this share of the provider's window is left (x-ratelimit-remaining-*).
LOW_REMAINING = 0.05
# Cuts closer together than this count as one (a burst of 429s is one signal).
COOLDOWN_SECONDS = 1.0


def remaining_share(headers: Mapping[str, str]) -> float | None:
    """The smallest remaining/limit share of the provider's request and token windows, from an
    answer's `x-ratelimit-*` headers; None when it sends none (local servers)."""
    shares = []
    for kind in ("requests", "tokens"):
        try:
            remaining = float(headers[f"x-ratelimit-remaining-{kind}"])
            limit = float(headers[f"x-ratelimit-limit-{kind}"])
        except (KeyError, ValueError):
            continue
        if limit > 0:
            shares.append(remaining / limit)
    return min(shares) if shares else None


class AdaptiveLimit:
    """Additive increase, multiplicative decrease, between 1 and `ceiling`."""

    def __init__(self, ceiling: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.value = float(ceiling)
        self._clock = clock
        self._cut_at = -COOLDOWN_SECONDS

    @property
    def current(self) -> int:
        return max(1, int(self.value))

    def succeeded(self) -> None:
        self.value = min(float(self.ceiling), self.value + 1)

    def rate_limited(self) -> None:
        self._cut(0.5)

    def headers(self, headers: Mapping[str, str]) -> None:
        share = remaining_share(headers)
        if share is not None and share < LOW_REMAINING:
            self._cut(0.75)

    def _cut(self, factor: float) -> None:
        now = self._clock()
        if now - self._cut_at < COOLDOWN_SECONDS:
            return
        self._cut_at = now
        self.value = max(1.0, self.value * factor)


class ModelSlots:
    """At most `limit.current` model calls at once; the others wait, visibly, in order."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self.in_flight = 0
        self._line: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._line)

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Every model call's HTTP answer (retries included), as the provider sent it."""
        if status == 429:
            self.limit.rate_limited()
        elif status < 300:
            self.limit.succeeded()
            self.limit.headers(headers)
            self.wake()

    def wake(self) -> None:
        """Let waiting calls in while there is room (after a call ends, or the limit grew)."""
        while self._line and self.in_flight < self.limit.current:
            future = self._line.popleft()
            if not future.done():
                self.in_flight += 1  # taken on the waiter's behalf: nobody can slip in between
                future.set_result(None)

    @asynccontextmanager
    async def slot(self, reply: ReplyStream) -> AsyncIterator[None]:
        """A model slot; the wait for one does not count against the turn's deadline (it
        depends on everyone else's calls, and each of those is bounded by its own timeout)."""
        if self.in_flight < self.limit.current and not self._line:
            self.in_flight += 1
        else:
            await self._wait(reply)
        try:
            yield
        finally:
            self.in_flight -= 1
            self.wake()

    async def _wait(self, reply: ReplyStream) -> None:
        future = asyncio.get_running_loop().create_future()
        self._line.append(future)
        deadline = turn_deadline.get()
        loop = asyncio.get_running_loop()
        paused_at = loop.time()
        due = deadline.when() if deadline is not None and not deadline.expired() else None
        if due is not None and deadline is not None:
            deadline.reschedule(None)
        try:
            await reply.progress(f"Waiting for a free slot ({self.waiting} in line)…")
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.in_flight -= 1  # granted just as it was cancelled: give the slot back
                self.wake()
            else:
                future.cancel()
                if future in self._line:
                    self._line.remove(future)
            raise
        finally:
            if due is not None and deadline is not None and not deadline.expired():
                deadline.reschedule(due + loop.time() - paused_at)
