"""The progress indicator: a task of its own that keeps the placeholder alive during a model call.

This is the async-flow lesson: the model call only awaits, so the loop runs this task beside it,
and the person sees the bot is still working instead of a frozen "Thinking…".
"""

from __future__ import annotations

import asyncio
import logging
import time

from base_client import ReplyStream
from message_processor.utilities import progress_status

log = logging.getLogger(__name__)

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
