"""The refactor plan's success criteria, small enough for CI: no hang, nothing lost, no lock errors."""

from __future__ import annotations

import logging

import pytest

from tests.fakes.openai import FakeOpenAI, Reply, last_user_text
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, kind, settled, wait_replies

PEOPLE = [("U0ALICE", "D0ALICE"), ("U0BOB", "D0BOB")]


def assert_clean_logs(caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        r for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
        or ("lock" in r.getMessage().lower() and r.levelno >= logging.WARNING)
    ]
    assert bad == [], [r.getMessage() for r in bad]


async def test_fifty_rapid_fire_messages_are_each_answered_once(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    app = await start_bot()
    openai.default = Reply(latency=0.3)
    sent = [
        (channel, await slack.user_says(user, channel, f"rapid {n}"))
        for n in range(50) for user, channel in [PEOPLE[n % 2]]
    ]

    await slack.wait_for(lambda: all(settled(slack, c, ts, 1) for c, ts in sent), timeout=30)
    await app.processor.wait_idle()

    for channel, ts in sent:
        [reply] = bot_replies(slack, channel, ts)
        assert kind(reply) == "answer"
    assert len(openai.responses_requests()) == 50
    assert_clean_logs(caplog)


async def test_fifteen_timeouts_neither_hang_the_bot_nor_break_their_threads(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    app = await start_bot(OPENAI_TIMEOUT_SECONDS="1.5")
    openai.responder = lambda body: Reply(hang=True) if "slow" in last_user_text(body) else Reply()
    slow = [(channel, await slack.user_says(user, channel, f"slow {n}"))
            for n in range(15) for user, channel in [PEOPLE[n % 2]]]
    await openai.wait_for(lambda: openai.in_flight == 15)

    # While 15 calls hang, other conversations are answered at once.
    for n, (user, channel) in enumerate(PEOPLE * 2):
        ts = await slack.user_says(user, channel, f"meanwhile {n}")
        name = "Alice" if user == "U0ALICE" else "Bob"
        assert await wait_replies(slack, channel, ts, timeout=1) == [f"You said: {name}: meanwhile {n}"]
    assert openai.in_flight == 15

    for channel, ts in slow:
        [text] = await wait_replies(slack, channel, ts, timeout=10)
        assert "within 1.5 seconds" in text
    await app.processor.wait_idle()
    # Each timed-out thread answers its next message.
    owner = {channel: user for user, channel in PEOPLE}
    for channel, ts in slow:
        await slack.user_says(owner[channel], channel, "again", thread_ts=ts)
    for channel, ts in slow:
        texts = await wait_replies(slack, channel, ts, count=2, timeout=10)
        assert texts[-1].endswith(": again")
    assert_clean_logs(caplog)
