"""Per-conversation state: one `asyncio.Lock` per thread, cached turns, idle eviction.

A lock is only ever released by the task that took it (in a `finally`). The maintenance task
evicts idle, unlocked state and *logs* work held past its deadline; it never force-releases a
lock: the turn deadline (`TURN_TIMEOUT_SECONDS`, around downloads, parsing, link fetches and
the model call) is what bounds a turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ThreadState:
    key: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Cached conversation turns (whatever the processor stores); None until loaded.
    turns: list[Any] | None = None
    # The conversation's database row, once known (saves an upsert per turn).
    row_id: int | None = None
    # The turns were rebuilt from the platform only in part (a very long thread): the next
    # answer says so, to the person and to the model.
    history_cut: bool = False
    last_activity: float = 0.0
    held_since: float | None = None
    waiting: int = 0

    @property
    def busy(self) -> bool:
        return self.lock.locked()


class ThreadManager:
    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._states: dict[str, ThreadState] = {}
        self._idle_seconds = idle_seconds
        self._clock = clock

    def __len__(self) -> int:
        return len(self._states)

    def _state(self, key: str) -> ThreadState:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = ThreadState(key, last_activity=self._clock())
        return state

    def is_busy(self, key: str) -> bool:
        state = self._states.get(key)
        return state is not None and state.busy

    def waiting(self, key: str) -> int:
        state = self._states.get(key)
        return state.waiting if state else 0

    async def try_acquire(self, key: str) -> ThreadState | None:
        """Take the thread's lock if it is free, without waiting; None if the thread is busy."""
        state = self._state(key)
        if state.lock.locked() or state.waiting:
            return None
        # Free with nobody queued: acquire() returns without suspending, so nothing can slip
        # in between the check above and taking the lock.
        await state.lock.acquire()
        self._mark_held(state)
        return state

    async def acquire_queued(self, key: str) -> ThreadState:
        """Wait in line (FIFO) for the thread's lock."""
        state = self._state(key)
        state.waiting += 1
        try:
            await state.lock.acquire()
        finally:
            state.waiting -= 1
        self._mark_held(state)
        return state

    def _mark_held(self, state: ThreadState) -> None:
        state.held_since = state.last_activity = self._clock()

    def release(self, state: ThreadState) -> None:
        state.held_since = None
        state.last_activity = self._clock()
        state.lock.release()

    def evict_idle(self) -> int:
        """Forget unlocked, idle threads (their turns reload from the database when needed)."""
        cutoff = self._clock() - self._idle_seconds
        idle = [
            key
            for key, state in self._states.items()
            if not state.busy and not state.waiting and state.last_activity < cutoff
        ]
        for key in idle:
            del self._states[key]
        return len(idle)

    def overdue(self, threshold: float) -> list[tuple[str, float]]:
        now = self._clock()
        return [
            (key, now - state.held_since)
            for key, state in self._states.items()
            if state.held_since is not None and now - state.held_since > threshold
        ]

    async def maintain(self, interval: float, overdue_after: float) -> None:
        """Background task: evict idle state, report (never break) turns past their deadline."""
        while True:
            await asyncio.sleep(interval)
            evicted = self.evict_idle()
            if evicted:
                log.debug("evicted %d idle threads, %d remain", evicted, len(self._states))
            for key, held in self.overdue(overdue_after):
                log.warning(
                    "thread %s has been answering for %.0f s (limit %.0f s); leaving its lock "
                    "to the turn deadline",
                    key, held, overdue_after,
                )
