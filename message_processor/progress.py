"""The progress indicator: a task of its own that keeps the placeholder alive during a model call.

This is the async-flow lesson: the model call only awaits, so the loop runs this task beside it,
and the person sees the bot is still working instead of a frozen "Thinking…".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from base_client import ReplyStream
from message_processor.utilities import progress_status

log = logging.getLogger(__name__)

# The deadline of the turn this task is answering (set by the processor around the whole turn):
# waiting for a free model slot pauses it, as that wait is not the turn's own work.
turn_deadline: ContextVar[asyncio.Timeout | None] = ContextVar("turn_deadline", default=None)


class ProgressIndicator:
    def __init__(self, reply: ReplyStream, interval: float) -> None:
        self._reply = reply
        self._interval = interval
        self._activity: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    def start(self, name: str) -> None:
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._run(), name=f"progress:{name}")

    async def progress_text(self, status: str) -> None:
        """A step's status (e.g. "Searching the web for …"); the rotation continues with it."""
        self._activity = status
        await self._reply.progress(status)

    async def stop(self) -> None:
        """Called on the first text (the text itself is progress from then on) and at the end."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            elapsed = time.monotonic() - self._started
            status = progress_status(elapsed)
            if self._activity:
                status = f"{self._activity} ({int(elapsed)} s)"
            await self._reply.progress(status)


class ModelSlots:
    """Backpressure: at most `limit` model calls at once; the others wait, visibly, in order."""

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self.waiting = 0
        self.in_flight = 0

    @asynccontextmanager
    async def slot(self, reply: ReplyStream) -> AsyncIterator[None]:
        """A model slot; the wait for one does not count against the turn's deadline (it
        depends on everyone else's calls, and each of those is bounded by its own timeout)."""
        if self._slots.locked():
            self.waiting += 1
            deadline = turn_deadline.get()
            loop = asyncio.get_running_loop()
            paused_at = loop.time()
            due = deadline.when() if deadline is not None and not deadline.expired() else None
            if due is not None:
                deadline.reschedule(None)
            try:
                await reply.progress(f"Waiting for a free slot ({self.waiting} in line)…")
                await self._slots.acquire()
            finally:
                self.waiting -= 1
                if due is not None and not deadline.expired():
                    deadline.reschedule(due + loop.time() - paused_at)
        else:
            await self._slots.acquire()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()
