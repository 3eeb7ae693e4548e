"""What an operator watches: Prometheus metrics, the periodic stats line built from them,
event-loop lag, and the optional health endpoint (which also reports background jobs that keep
failing, see supervision.py).

Each app has its own registry (tests run many bots in one process); `/metrics` serves it in
the Prometheus text format on `METRICS_PORT`. Labels are bounded: outcomes, Slack method names
and error codes, model and tool names, document types.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from supervision import Supervisor

log = logging.getLogger("assistant.stats")

LAG_PROBE_SECONDS = 0.5
# The loop counts as stalled when a 0.5 s sleep overshoots by more than this.
STALLED_LAG_SECONDS = 2.0
# How a message ended (the journal's final states, with timeouts told apart from other failures).
OUTCOMES = ("answered", "failed", "timed_out", "stopped", "refused", "rejected", "interrupted", "expired")
SECONDS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 300)


class Stats:
    """Every number an operator sees, in one Prometheus registry; the stats line reads them."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self._latencies: deque[float] = deque(maxlen=1000)  # for the stats line's p95
        self.loop_lag = 0.0
        self._answers = Counter("assistant_answers", "Messages settled, by outcome.", ["outcome"], registry=r)
        for outcome in OUTCOMES:
            self._answers.labels(outcome)  # every outcome is there from the start, at 0
        self._answer_seconds = Histogram(
            "assistant_answer_seconds", "From a message's arrival to its finished answer.", buckets=SECONDS, registry=r)
        self._first_text_seconds = Histogram(
            "assistant_first_text_seconds", "From a message's arrival to the first text of its answer people see.",
            buckets=SECONDS, registry=r)
        self._tokens = Counter("assistant_tokens", "Tokens the API reported, by model, kind of call and direction.",
                               ["model", "kind", "direction"], registry=r)
        self._tool_calls = Counter("assistant_tool_calls", "Tool calls, by tool and outcome.", ["tool", "outcome"],
                                   registry=r)
        self._parses = Counter("assistant_document_parses", "Shared files read, by type and outcome.",
                               ["type", "outcome"], registry=r)
        self._slack_errors = Counter("assistant_slack_api_errors", "Slack Web API calls that failed, by method and error.",
                                     ["method", "error"], registry=r)
        self._slack_429 = Counter("assistant_slack_rate_limited", "HTTP 429 answers from Slack's Web API, by method.",
                                  ["method"], registry=r)
        self._feedback = Counter("assistant_feedback", "Thumbs up and down on answers.", ["value"], registry=r)
        Gauge("assistant_event_loop_lag_seconds", "How late a 0.5 s sleep of the event loop wakes up.",
              registry=r).set_function(lambda: self.loop_lag)

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A number read when scraped (model calls in flight, queue depths)."""
        Gauge(name, documentation, registry=self.registry).set_function(read)

    def _count(self, name: str, labels: dict[str, str] | None = None) -> int:
        return int(self.registry.get_sample_value(name, labels or {}) or 0)

    def outcome(self, name: str) -> int:
        return self._count("assistant_answers_total", {"outcome": name})

    def record(self, status: str, seconds: float) -> None:
        self._answers.labels(status).inc()
        if status == "answered":
            self._latencies.append(seconds)
            self._answer_seconds.observe(seconds)

    def first_text(self, seconds: float) -> None:
        self._first_text_seconds.observe(seconds)

    def tokens(self, model: str, kind: str, input_tokens: int, output_tokens: int) -> None:
        self._tokens.labels(model, kind, "input").inc(input_tokens)
        self._tokens.labels(model, kind, "output").inc(output_tokens)

    def tool_call(self, tool: str, outcome: str) -> None:
        self._tool_calls.labels(tool, outcome).inc()

    def document_parse(self, kind: str, outcome: str) -> None:
        self._parses.labels(kind, outcome).inc()

    def slack_error(self, method: str, error: str) -> None:
        self._slack_errors.labels(method, error).inc()

    def slack_rate_limited(self, method: str) -> None:
        self._slack_429.labels(method).inc()

    def feedback(self, value: str) -> None:
        self._feedback.labels(value).inc()

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
        feedback = {v: self._count("assistant_feedback_total", {"value": v}) for v in ("good", "bad")}
        return (
            f"stats: in_flight={in_flight} queued={queued} answered={self.outcome('answered')} "
            f"failed={self.outcome('failed')} timed_out={self.outcome('timed_out')} "
            f"stopped={self.outcome('stopped')} refused={self.outcome('refused')} "
            f"rejected={self.outcome('rejected')} interrupted={self.outcome('interrupted')} "
            f"p95_answer={self.p95():.2f}s loop_lag={self.loop_lag * 1000:.0f}ms "
            f"feedback_good={feedback['good']} feedback_bad={feedback['bad']}"
        )

    async def report(self, interval: float, gauges: Callable[[], tuple[int, int]]) -> None:
        """Background task: one stats line every `interval` seconds."""
        while True:
            await asyncio.sleep(interval)
            log.info(self.line(*gauges()))


async def serve_metrics(host: str, port: int, stats: Stats) -> web.AppRunner:
    """GET /metrics: the registry in the Prometheus text format (rendered off the loop: with many
    label values it is milliseconds of work)."""

    async def metrics(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, stats.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


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
            "answered": stats.outcome("answered"),
            "failed": stats.outcome("failed"),
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
