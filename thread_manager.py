"""Per-conversation state: who holds each thread, who waits for it (in order), cached turns.

A thread is held by one task at a time and only ever released by the task that holds it (in a
`finally`). The maintenance task evicts idle, unheld state and *logs* work held past its
deadline; it never takes a thread away: the turn deadline (`TURN_TIMEOUT_SECONDS`, around
downloads, parsing, link fetches and the model call) is what bounds a turn.

Waiting is a line of `Ticket`s. A ticket is taken synchronously, before the caller awaits
anything (posting its "Queued" status, say): a burst of messages into one busy thread sees the
line grow one by one, so a queue limit cannot be overshot, and the thread is handed from its
holder straight to the first ticket, so nobody arriving later gets in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ThreadState:
    key: str
    # Cached conversation turns (whatever the processor stores); None until loaded.
    turns: list[Any] | None = None
    # The conversation's database row, once known (saves an upsert per turn).
    row_id: int | None = None
    # The turns were rebuilt from the platform only in part (a very long thread): the next
    # answer says so, to the person and to the model.
    history_cut: bool = False
    # Several instances (leases.py): the number of this instance's last turn in the thread.
    # A new turn numbered one more means nobody else answered in between: `turns` is current.
    lease_turn: int | None = None
    last_activity: float = 0.0
    held_since: float | None = None
    held: bool = False
    # One future per ticket in line, first come first: resolved when the thread is its turn.
    line: deque[asyncio.Future[None]] = field(default_factory=deque)

    @property
    def busy(self) -> bool:
        return self.held

    @property
    def waiting(self) -> int:
        return len(self.line)


class Ticket:
    """A place in a thread's line: `wait()` for the thread, or `leave()` the line.

    Once `wait()` has returned, the holder gives the thread back with `ThreadManager.release`.
    """

    def __init__(self, manager: ThreadManager, state: ThreadState, ahead: int) -> None:
        self._manager = manager
        self.state = state
        # How many were ahead (the holder included) when the ticket was taken.
        self.ahead = ahead
        self._turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done = False  # wait() returned or leave() was called

    async def wait(self) -> ThreadState:
        """Until the thread is ours. Cancelled meanwhile: the place (or the thread, if it was
        handed over in that very moment) goes to the next in line."""
        try:
            await self._turn
        except asyncio.CancelledError:
            self.leave()
            raise
        self._done = True
        return self.state

    def leave(self) -> None:
        """Give the place up without waiting (turned away, failed, shut down). Nothing to do
        once `wait()` has returned: the holder releases the thread instead."""
        if self._done:
            return
        self._done = True
        turn = self._turn
        if turn.done() and not turn.cancelled():
            # Our turn had come: the thread is ours to pass on, like any holder's.
            self._manager.release(self.state)
            return
        if turn in self.state.line:
            self.state.line.remove(turn)
        turn.cancel()

    def _grant(self) -> None:
        self._turn.set_result(None)


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

    def queue_depths(self) -> tuple[int, int]:
        """(messages waiting in all threads' lines, the longest line), for the metrics."""
        depths = [state.waiting for state in self._states.values() if state.line]
        return sum(depths), max(depths, default=0)

    def is_busy(self, key: str) -> bool:
        state = self._states.get(key)
        return state is not None and state.busy

    def waiting(self, key: str) -> int:
        state = self._states.get(key)
        return state.waiting if state else 0

    async def try_acquire(self, key: str) -> ThreadState | None:
        """Take the thread if it is free and nobody is in line; None otherwise. Never suspends,
        so nothing can slip in between the check and taking it."""
        state = self._state(key)
        if state.held or state.line:
            return None
        state.held = True
        self._mark_held(state)
        return state

    def reserve(self, key: str, limit: int | None = None) -> Ticket | None:
        """A place in the thread's line, taken now, before the caller awaits anything; None if
        `limit` tickets are already waiting. A free thread with nobody in line is the ticket's
        at once."""
        state = self._state(key)
        if not state.held and not state.line:
            ticket = Ticket(self, state, ahead=0)
            state.held = True
            self._mark_held(state)
            ticket._grant()
            return ticket
        if limit is not None and len(state.line) >= limit:
            return None
        ticket = Ticket(self, state, ahead=len(state.line) + 1)
        state.line.append(ticket._turn)
        return ticket

    def _mark_held(self, state: ThreadState) -> None:
        state.held_since = state.last_activity = self._clock()

    def release(self, state: ThreadState) -> None:
        """The holder gives the thread back: straight to the first in line, if anyone waits."""
        if not state.held:
            raise RuntimeError(f"thread {state.key} released but not held")
        state.held_since = None
        state.last_activity = self._clock()
        while state.line:
            turn = state.line.popleft()
            if not turn.done():  # a waiter cancelled a moment ago is skipped
                turn.set_result(None)
                self._mark_held(state)
                return
        state.held = False

    def evict_idle(self) -> int:
        """Forget idle threads nobody holds or waits for (their turns reload from the database when needed)."""
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
