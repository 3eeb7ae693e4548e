"""/metrics: what really happened, in the Prometheus text format, from the same numbers as the stats line."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai import FakeOpenAI, FunctionCall, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies
from tests.integration.test_observability import free_port
from tests.integration.test_tool_loop import Orders, use_tools


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_count_answers_tokens_tools_parses_and_slack_errors(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    port = free_port()
    app = await start_bot(METRICS_PORT=str(port), ALLOWED_USER_IDS="U0ALICE", SLACK_NATIVE_STREAMING="false")
    use_tools(app, Orders())
    openai.script(Reply(calls=[FunctionCall("orders__lookup_order", {"number": 1})], usage=(30, 5)),
                  Reply(text="Shipped.", usage=(40, 3)))
    notes = slack.add_file("notes.txt", b"meeting notes", "text/plain")
    slack.fail("chat.update", times=1)  # one 429 on the way (retried after Retry-After)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "order 1?", files=[notes])
    await wait_replies(slack, "D0ALICE", ts)
    handled = app.client.handled
    await slack.user_says("U0BOB", "D0BOB", "hello")  # not on the allow list: refused
    await slack.wait_for(lambda: app.client.handled > handled)
    await app.processor.wait_idle()

    metrics = await scrape(port)
    assert metrics[("assistant_answers_total", (("outcome", "answered"),))] == 1
    assert metrics[("assistant_answers_total", (("outcome", "refused"),))] == 1
    assert metrics[("assistant_answers_total", (("outcome", "timed_out"),))] == 0  # there from the start
    assert metrics[("assistant_answer_seconds_count", ())] == 1
    assert metrics[("assistant_first_text_seconds_count", ())] == 1
    assert metrics[("assistant_tokens_total", (("direction", "input"), ("kind", "answer"), ("model", "test-model")))] == 70
    assert metrics[("assistant_tokens_total", (("direction", "output"), ("kind", "answer"), ("model", "test-model")))] == 8
    assert metrics[("assistant_tool_calls_total", (("outcome", "ok"), ("tool", "orders__lookup_order")))] == 1
    assert metrics[("assistant_document_parses_total", (("outcome", "ok"), ("type", "text")))] == 1
    assert metrics[("assistant_slack_rate_limited_total", (("method", "chat.update"),))] == 1
    assert metrics[("assistant_model_calls_in_flight", ())] == 0
    assert metrics[("assistant_thread_queued", ())] == 0
    assert ("assistant_event_loop_lag_seconds", ()) in metrics
    line = app.processor.stats.line(0, 0)
    assert "answered=1 failed=0 timed_out=0 stopped=0 refused=1" in line  # the same counters


async def test_model_calls_in_flight_and_thread_queues_are_gauges_read_at_scrape_time(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    port = free_port()
    app = await start_bot(METRICS_PORT=str(port), THREAD_BUSY_POLICY="queue")
    gate = asyncio.Event()
    openai.script(Reply(text="first", gate=gate), Reply(text="second"))
    root = await slack.user_says("U0ALICE", "D0ALICE", "one")
    await openai.wait_for(lambda: openai.in_flight == 1)
    await slack.user_says("U0ALICE", "D0ALICE", "two", thread_ts=root)
    await slack.wait_for(lambda: app.threads.queue_depths() == (1, 1), message="the second message did not queue")

    metrics = await scrape(port)
    assert metrics[("assistant_model_calls_in_flight", ())] == 1
    assert metrics[("assistant_thread_queued", ())] == 1 and metrics[("assistant_thread_queue_depth_max", ())] == 1
    assert metrics[("assistant_answers_in_flight", ())] == 2
    gate.set()
    await wait_replies(slack, "D0ALICE", root, count=2)
    await app.processor.wait_idle()
    metrics = await scrape(port)
    assert metrics[("assistant_model_calls_in_flight", ())] == 0 and metrics[("assistant_thread_queued", ())] == 0
