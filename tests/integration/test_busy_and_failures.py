"""One answer at a time per thread, and every failure ends in a reply that says what to do."""

from __future__ import annotations

import asyncio

import pytest

from message_processor.utilities import error_notice
from openai_client import ModelError
from openai_client.events import ErrorKind
from tests.fakes.openai import FakeOpenAI, Reply, last_user_text
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, kind, wait_handled, wait_replies


async def test_busy_thread_gets_a_notice_and_works_again_after(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    openai.script(Reply(text="first answer", latency=0.8))
    root = await slack.user_says("U0ALICE", "D0ALICE", "first")
    await openai.wait_for(lambda: openai.in_flight == 1)
    await slack.user_says("U0ALICE", "D0ALICE", "second", thread_ts=root)

    texts = await wait_replies(slack, "D0ALICE", root, count=2)

    assert any("still answering the previous message" in t for t in texts)
    assert "first answer" in texts
    assert len(openai.responses_requests()) == 1
    await app.processor.wait_idle()
    # Released: the next message in the thread is answered normally.
    await slack.user_says("U0ALICE", "D0ALICE", "third", thread_ts=root)
    texts = await wait_replies(slack, "D0ALICE", root, count=3)
    assert texts[-1] == "You said: Alice: third"


async def test_other_threads_are_answered_while_one_is_busy(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    openai.script(Reply(text="slow", latency=1.5))
    slow = await slack.user_says("U0ALICE", "D0ALICE", "slow one")
    await openai.wait_for(lambda: openai.in_flight == 1)
    fast = await slack.user_says("U0BOB", "D0BOB", "fast one")

    assert await wait_replies(slack, "D0BOB", fast, timeout=1.2) == ["You said: Bob: fast one"]
    assert await wait_replies(slack, "D0ALICE", slow) == ["slow"]


async def test_queue_policy_answers_in_order_after_the_current_one(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(THREAD_BUSY_POLICY="queue", THREAD_QUEUE_SIZE="1")
    openai.script(Reply(text="one", latency=0.6), Reply(text="two"))
    root = await slack.user_says("U0ALICE", "D0ALICE", "q1")
    await openai.wait_for(lambda: openai.in_flight == 1)
    await slack.user_says("U0ALICE", "D0ALICE", "q2", thread_ts=root)
    await slack.wait_for(lambda: any("Queued" in m["text"] for m in bot_replies(slack, "D0ALICE", root)))
    await slack.user_says("U0ALICE", "D0ALICE", "q3", thread_ts=root)  # queue of 1 is full

    texts = await wait_replies(slack, "D0ALICE", root, count=3)

    assert "one" in texts and "two" in texts
    assert any("already has 1 messages waiting" in t for t in texts)
    second = openai.responses_requests()[1]
    assert [i["content"] for i in second["input"]] == ["Alice: q1", "one", "Alice: q2"]


async def test_a_burst_into_a_busy_thread_queues_exactly_the_limit_in_order(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(THREAD_BUSY_POLICY="queue", THREAD_QUEUE_SIZE="3")
    gate = asyncio.Event()
    openai.script(Reply(text="first answer", gate=gate))
    root = await slack.user_says("U0ALICE", "D0ALICE", "m0")
    await openai.wait_for(lambda: openai.in_flight == 1)
    # Slow "Queued" posts: every message of the burst arrives while the others are still posting.
    slack.set_latency("chat.postMessage", 0.3)

    for n in range(1, 10):
        await slack.user_says("U0ALICE", "D0ALICE", f"m{n}", thread_ts=root)
    # The first answer, three queued, and one queue-full notice for the six turned away.
    await slack.wait_for(lambda: len(bot_replies(slack, "D0ALICE", root)) == 5, 10,
                         "the burst was not queued or turned away")
    slack.set_latency("chat.postMessage", 0)
    gate.set()
    texts = await wait_replies(slack, "D0ALICE", root, count=5)
    await app.processor.wait_idle()

    assert [last_user_text(r) for r in openai.responses_requests()] == [
        "Alice: m0", "Alice: m1", "Alice: m2", "Alice: m3",
    ]
    assert sorted(t for t in texts if "already has 3 messages waiting" not in t) == [
        "You said: Alice: m1", "You said: Alice: m2", "You said: Alice: m3", "first answer",
    ]
    assert len([t for t in texts if "already has 3 messages waiting" in t]) == 1
    statuses = [await app.db.message_status("D0ALICE", m["ts"]) for m in slack.thread("D0ALICE", root)
                if m.get("user") == "U0ALICE" and m["ts"] != root]
    assert sorted(statuses) == ["answered"] * 3 + ["rejected"] * 6


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        # Asks to wait longer than the turn has left: said at once (shorter ones are asked again).
        (Reply(status=429, error_message="Rate limit reached", retry_after=3600), "rate-limiting"),
        (Reply(status=500), "internal error"),
        (Reply(status=401, error_message="bad key"), "API key"),
        (Reply(status=400, error_message="maximum context length exceeded"), "too long"),
    ],
)
async def test_model_errors_end_in_a_human_reply(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, reply: Reply, expected: str
):
    await start_bot()
    openai.script(reply)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert expected in text
    assert "Error code" not in text and "{" not in text  # no raw exception for the person


async def test_timeout_replies_then_the_thread_recovers(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(OPENAI_TIMEOUT_SECONDS="0.5")
    openai.script(Reply(hang=True))
    root = await slack.user_says("U0ALICE", "D0ALICE", "are you there?")

    [text] = await wait_replies(slack, "D0ALICE", root)
    await app.processor.wait_idle()
    assert "within 0.5 seconds" in text
    assert all(kind(m) != "progress" for m in bot_replies(slack, "D0ALICE", root))

    await slack.user_says("U0ALICE", "D0ALICE", "try again", thread_ts=root)
    texts = await wait_replies(slack, "D0ALICE", root, count=2)
    assert texts[-1] == "You said: Alice: try again"
    # The failed question stays in the context, the missing answer does not.
    assert [i["content"] for i in openai.responses_requests()[1]["input"]] == [
        "Alice: are you there?", "Alice: try again",
    ]


async def test_stream_broken_midway_keeps_the_partial_text_and_says_so(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    openai.script(Reply(text="The first part arrives, and then", chunk_size=8, fail_after_chunks=2))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert text.startswith("The first part a")
    assert "couldn't reach OpenAI" in text or "stopped responding" in text


async def test_a_model_server_that_refuses_connections_is_said_to_be_unreachable(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, unused_tcp_port: int
):
    """Not "too slow": the connection failed at once (the aiohttp transport under the SDK
    reports that as a connect timeout; what it wraps tells them apart)."""
    await start_bot(OPENAI_BASE_URL=f"http://127.0.0.1:{unused_tcp_port}/v1")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert text == error_notice(ModelError(ErrorKind.CONNECTION, "x"), 60)


async def test_duplicate_and_redelivered_events_are_answered_once(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    ts = await slack.user_says("U0ALICE", "D0ALICE", "once please")
    [envelope] = [e for e, env in slack.envelopes.items() if env["payload"]["event"].get("ts") == ts]
    await slack.redeliver(envelope)
    await wait_replies(slack, "D0ALICE", ts)
    await wait_handled(slack, app, 2)  # the first copy and the redelivery

    assert len(openai.responses_requests()) == 1
    assert len(bot_replies(slack, "D0ALICE", ts)) == 1


async def test_a_failed_name_lookup_still_gets_an_answer(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot()
    slack.fail("users.info", error="user_not_found")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: U0ALICE: hi"]


async def test_queued_messages_interrupted_by_shutdown_are_told(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(THREAD_BUSY_POLICY="queue", SHUTDOWN_GRACE_SECONDS="0.3")
    openai.script(Reply(hang=True))
    root = await slack.user_says("U0ALICE", "D0ALICE", "first")
    await openai.wait_for(lambda: openai.in_flight == 1)
    await slack.user_says("U0ALICE", "D0ALICE", "second", thread_ts=root)
    await slack.wait_for(lambda: any("Queued" in m["text"] for m in bot_replies(slack, "D0ALICE", root)))

    await asyncio.wait_for(app.stop(), 5)

    texts = [m["text"] for m in bot_replies(slack, "D0ALICE", root)]
    assert len(texts) == 2
    assert all("restarted before I could finish" in t for t in texts)


async def test_backpressure_queues_conversations_instead_of_failing_them(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(MAX_CONCURRENT_REQUESTS="1")
    openai.default = Reply(latency=0.4)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, openai.in_flight)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    roots = [await slack.user_says(user, channel, f"question {n}")
             for n, (user, channel) in enumerate([("U0ALICE", "D0ALICE"), ("U0BOB", "D0BOB"), ("U0ALICE", "D0ALICE")])]
    for (channel, root) in zip(["D0ALICE", "D0BOB", "D0ALICE"], roots, strict=True):
        await wait_replies(slack, channel, root, timeout=10)
    await app.processor.wait_idle()
    watcher.cancel()

    assert peak == 1  # never more than one model call at once
    assert len(openai.responses_requests()) == 3  # every conversation answered in turn
    assert any("Waiting for a free slot" in c.params["text"] for c in slack.calls_to("chat.update"))
