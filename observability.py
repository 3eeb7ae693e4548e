"""What an operator watches: a periodic stats line, event-loop lag, an optional health endpoint
(which also reports background jobs that keep failing, see supervision.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from typing import Awaitable, Callable

from aiohttp import web

from supervision import Supervisor

log = logging.getLogger("assistant.stats")

LAG_PROBE_SECONDS = 0.5
# The loop counts as stalled when a 0.5 s sleep overshoots by more than this.
STALLED_LAG_SECONDS = 2.0


class Stats:
    """Outcomes and answer latencies since start, plus the loop's current lag."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self._latencies: deque[float] = deque(maxlen=1000)
        self.loop_lag = 0.0
        self.feedback: Counter[str] = Counter()

    def record(self, status: str, seconds: float) -> None:
        self.outcomes[status] += 1
        if status == "answered":
            self._latencies.append(seconds)

    def p95(self) -> float:
        if not self._latencies:
            return 0.0
        ordered = sorted(self._latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]

    async def watch_loop(self) -> None:
        """Background task: how late a short sleep wakes up is how busy the loop is."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            self.loop_lag = max(time.monotonic() - started - LAG_PROBE_SECONDS, 0.0)

    def line(self, in_flight: int, queued: int) -> str:
        o = self.outcomes
        return (
            f"stats: in_flight={in_flight} queued={queued} answered={o['answered']} "
            f"failed={o['failed']} rejected={o['rejected']} interrupted={o['interrupted']} "
            f"p95_answer={self.p95():.2f}s loop_lag={self.loop_lag * 1000:.0f}ms "
            f"feedback_good={self.feedback['good']} feedback_bad={self.feedback['bad']}"
        )

    async def report(self, interval: float, gauges: Callable[[], tuple[int, int]]) -> None:
        """Background task: one stats line every `interval` seconds."""
        while True:
            await asyncio.sleep(interval)
            log.info(self.line(*gauges()))


async def serve_health(
    port: int, stats: Stats, socket_connected: Callable[[], Awaitable[bool]],
    jobs: Supervisor | None = None, instance: str = "",
) -> web.AppRunner:
    """GET /health: 200 when the Slack socket is up, the loop keeps time and no background job
    keeps failing, else 503 (for PM2 or a monitor). Listens on 127.0.0.1 only. `instance` names
    this process (`INSTANCE_NAME`), so a monitor of several instances knows which one answered."""

    async def health(_: web.Request) -> web.Response:
        connected = await socket_connected()
        failing = jobs.failing() if jobs is not None else []
        healthy = connected and stats.loop_lag < STALLED_LAG_SECONDS and not failing
        body = {
            "status": "ok" if healthy else "unhealthy",
            "instance": instance,
            "socket_connected": connected,
            "loop_lag_ms": round(stats.loop_lag * 1000),
            "answered": stats.outcomes["answered"],
            "failed": stats.outcomes["failed"],
            "failing_jobs": failing,
            "jobs": {s.name: s.as_dict() for s in jobs.statuses()} if jobs is not None else {},
        }
        return web.json_response(body, status=200 if healthy else 503)

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner
