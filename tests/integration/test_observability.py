"""The stats line and the health endpoint report what is really going on."""

from __future__ import annotations

import logging
import os
import socket

import aiohttp
import pytest

from config import load_config
from main import create_app
from observability import Stats
from supervision import Supervisor
from tests.conftest import bot_env
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_stats_line_and_health_endpoint(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="assistant.stats")
    port = free_port()
    app = await start_bot(HEALTH_PORT=str(port), STATS_INTERVAL_SECONDS="0.2")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")
    await wait_replies(slack, "D0ALICE", ts)
    await app.processor.wait_idle()
    await slack.wait_for(lambda: "answered=1" in caplog.text, timeout=3)

    line = [r.getMessage() for r in caplog.records if "answered=1" in r.getMessage()][-1]
    assert line.startswith("stats: in_flight=0 queued=0 answered=1 failed=0")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/health") as response:
            assert response.status == 200
            body = await response.json()
        assert body["status"] == "ok" and body["socket_connected"] is True and body["answered"] == 1
        assert body["instance"] == app.config.instance_name == f"{socket.gethostname()}:{os.getpid()}"

        await app.client.stop_receiving()  # the socket is down: a monitor must see it
        async with session.get(f"http://127.0.0.1:{port}/health") as response:
            assert response.status == 503
            assert (await response.json())["socket_connected"] is False


def test_p95_of_answer_times() -> None:
    stats = Stats()
    for n in range(1, 101):
        stats.record("answered", n / 100)
    stats.record("failed", 50.0)  # failures do not distort answer latency
    assert stats.p95() == 0.96
    assert "answered=100 failed=1" in stats.line(0, 0)


async def test_a_background_job_that_keeps_failing_is_restarted_and_reported(
    slack: FakeSlack, openai: FakeOpenAI, database_url: str, caplog: pytest.LogCaptureFixture
):
    port = free_port()
    config = load_config(bot_env(slack, openai, database_url, HEALTH_PORT=str(port), STATS_INTERVAL_SECONDS="0.1"))
    app = create_app(config)
    app.supervisor = Supervisor(base_backoff=0.001, max_backoff=0.001)

    def broken_gauges() -> tuple[int, int]:
        raise ZeroDivisionError("a bug in a gauge")

    app.processor.gauges = broken_gauges  # type: ignore[method-assign]
    await app.start()
    try:
        [stats_line] = [s for s in app.supervisor.statuses() if s.name == "stats-line"]
        await slack.wait_for(lambda: stats_line.restarts >= 3, 5, "the stats line was not restarted")

        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/health") as response:
                body = await response.json()
                assert response.status == 503
        assert body["failing_jobs"] == ["stats-line"] and body["socket_connected"] is True
        assert body["jobs"]["stats-line"]["consecutive_failures"] >= 3
        assert "ZeroDivisionError" in body["jobs"]["stats-line"]["last_error"]
        assert body["jobs"]["loop-lag"] == {
            "running": True, "restarts": 0, "consecutive_failures": 0, "last_error": None, "failing": False,
        }
        assert "background job stats-line failed" in caplog.text and "Traceback" in caplog.text

        # The rest of the bot carries on.
        ts = await slack.user_says("U0ALICE", "D0ALICE", "still there?")
        assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: still there?"]
    finally:
        await app.stop()
