"""The Socket Mode connection comes back by itself, and what arrives after is answered."""

from __future__ import annotations

from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies


async def test_answers_after_slack_asks_to_reconnect(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot()
    await slack.disconnect("refresh_requested")
    await slack.wait_connected(count=2, timeout=5)

    ts = await slack.user_says("U0ALICE", "D0ALICE", "still there?")
    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: still there?"]


async def test_answers_after_an_abrupt_connection_loss(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(SOCKET_PING_SECONDS="0.5")
    await slack.drop_connections()
    await slack.wait_connected(count=2, timeout=5)  # noticed within about one ping interval

    ts = await slack.user_says("U0BOB", "D0BOB", "hello after the drop")
    assert await wait_replies(slack, "D0BOB", ts) == ["You said: Bob: hello after the drop"]


async def test_a_silent_half_open_connection_is_replaced(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot(SOCKET_PING_SECONDS="0.5")
    slack.go_silent()  # the connection stays up, but pings go unanswered
    await slack.wait_connected(count=2, timeout=6)

    ts = await slack.user_says("U0ALICE", "D0ALICE", "anyone home?")
    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: anyone home?"]
    assert await app.client.socket_connected()
