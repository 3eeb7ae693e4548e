"""Two bot processes on one loopback Slack (two Socket Mode connections) and one PostgreSQL.

Issue 14: several instances of the app share the traffic (Slack hands each envelope to one of
the app's connections, and may retry it on another) and still give one answer per message.
"""

from __future__ import annotations

from typing import Any

from database import Database
from tests.engines import postgresql_only
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, settled, wait_replies
from tests.instances import BotProcesses

pytestmark = postgresql_only("several instances share one PostgreSQL database")

# Pings far apart: a connection replaced under load would leave a test's `to=` pointing nowhere.
QUIET = {"SOCKET_PING_SECONDS": "5"}
DUPLICATE = "already handled, skipping duplicate"


async def journal(database_url: str, sql: str, params: Any = ()) -> list[Any]:
    db = Database(database_url, pool_size=1)
    await db.open()
    try:
        return await db.query(sql, params)
    finally:
        await db.close()


async def test_a_hundred_people_spread_over_two_instances_are_each_answered_once(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses, database_url: str
):
    a = await bots.start("bot-a", **QUIET)
    b = await bots.start("bot-b", **QUIET)
    slack.delivery = "round_robin"
    threads = []
    for i in range(100):
        user, channel = f"U{i:04d}", f"D{i:04d}"
        slack.add_user(user, f"person{i}", display_name=f"Person {i}")
        slack.add_channel(channel, f"person{i}", is_im=True, user=user)
        threads.append((channel, await slack.user_says(user, channel, f"question {i}")))

    await slack.wait_for(lambda: all(settled(slack, c, ts, 1) for c, ts in threads), 90,
                         "not every DM was answered")

    for i, (channel, ts) in enumerate(threads):
        assert [m["text"] for m in bot_replies(slack, channel, ts)] == [f"You said: Person {i}: question {i}"]
    assert len(openai.responses_requests()) == 100
    spread = {c for ids in slack.delivered_to.values() for c in ids}
    assert spread == {a.connection, b.connection}  # both instances had their share
    rows = await journal(database_url, "SELECT status, COUNT(*) AS n FROM inbound_messages GROUP BY status")
    assert {r["status"]: r["n"] for r in rows} == {"answered": 100}


async def test_one_envelope_delivered_to_both_instances_is_answered_once(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses
):
    a = await bots.start("bot-a", **QUIET)
    b = await bots.start("bot-b", **QUIET)

    ts = await slack.user_says("U0ALICE", "D0ALICE", "only one answer, please", to="all")
    [envelope] = [e for e, env in slack.envelopes.items() if env["payload"]["event"].get("ts") == ts]
    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: only one answer, please"]
    # The other instance got it too, and stood back: the journal's insert conflicted.
    await slack.wait_for(lambda: slack.acked_by.get(envelope) == {a.connection, b.connection})
    loser = a if DUPLICATE in a.log() else b
    await loser.wait_log(DUPLICATE)

    assert len(bot_replies(slack, "D0ALICE", ts)) == 1
    assert len(openai.responses_requests()) == 1


async def test_a_redelivery_to_the_other_instance_and_a_mention_split_over_both_are_answered_once(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses
):
    a = await bots.start("bot-a", **QUIET)
    b = await bots.start("bot-b", **QUIET)

    ts = await slack.user_says("U0ALICE", "D0ALICE", "are you there?", to=a.connection)
    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: are you there?"]
    [envelope] = [e for e, env in slack.envelopes.items() if env["payload"]["event"].get("ts") == ts]
    await slack.redeliver(envelope, retry_reason="timeout", to=b.connection)  # Slack's retry, elsewhere
    await b.wait_log(DUPLICATE)

    slack.delivery = "round_robin"  # app_mention to one instance, its message copy to the other
    mention = await slack.user_says("U0BOB", "C0GENERAL", "<@U0BOT> hello from the channel")
    assert await wait_replies(slack, "C0GENERAL", mention) == ["You said: Bob: hello from the channel"]
    pair = [e for e, env in slack.envelopes.items() if env["payload"]["event"].get("ts") == mention]
    await slack.wait_for(lambda: all(slack.acked_by.get(e) for e in pair))
    assert {slack.delivered_to[e][0] for e in pair} == {a.connection, b.connection}

    assert len(bot_replies(slack, "D0ALICE", ts)) == 1
    assert len(bot_replies(slack, "C0GENERAL", mention)) == 1
    assert len(openai.responses_requests()) == 2
