"""Two bot processes on one loopback Slack (two Socket Mode connections) and one PostgreSQL.

Issue 14: several instances of the app share the traffic (Slack hands each envelope to one of
the app's connections, and may retry it on another) and still give one answer per message.
"""

from __future__ import annotations

import asyncio
from typing import Any

from database import Database
from message_processor.utilities import BUSY_NOTICE, QUEUED_STATUS, RESTARTED_NOTICE
from tests.engines import postgresql_only
from tests.fakes.openai import FakeOpenAI, Reply, last_user_text
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, interaction, settled, stop_click, view_state, wait_replies
from tests.instances import BotProcesses

pytestmark = postgresql_only("several instances share one PostgreSQL database")

# Pings far apart: a connection replaced under load would leave a test's `to=` pointing nowhere.
QUIET = {"SOCKET_PING_SECONDS": "5"}
DUPLICATE = "already handled, skipping duplicate"
QUEUED = f":hourglass_flowing_sand: {QUEUED_STATUS}"


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
    rows = await journal(database_url, "SELECT status, owner FROM inbound_messages")
    assert [r["status"] for r in rows] == ["answered"] * 100
    assert {r["owner"].split("#")[0] for r in rows} == {"bot-a", "bot-b"}


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


def texts_in(slack: FakeSlack, channel: str, ts: str) -> list[str]:
    return [m["text"] for m in bot_replies(slack, channel, ts)]


async def test_a_second_message_reaching_the_other_instance_mid_answer_gets_the_busy_notice(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses, database_url: str
):
    a = await bots.start("bot-a", **QUIET)
    b = await bots.start("bot-b", **QUIET)
    gate = asyncio.Event()
    openai.script(Reply(text="the first answer", gate=gate))
    root = await slack.user_says("U0ALICE", "D0ALICE", "first", to=a.connection)
    await openai.wait_for(lambda: openai.in_flight == 1)

    second = await slack.user_says("U0ALICE", "D0ALICE", "second", thread_ts=root, to=b.connection)
    await slack.wait_for(lambda: BUSY_NOTICE in texts_in(slack, "D0ALICE", root), 10, "no busy notice")
    gate.set()

    assert sorted(await wait_replies(slack, "D0ALICE", root, count=2)) == sorted([BUSY_NOTICE, "the first answer"])
    assert len(openai.responses_requests()) == 1
    [row] = await journal(database_url, "SELECT status, owner FROM inbound_messages WHERE message_ts = ?", (second,))
    assert row["status"] == "rejected" and row["owner"].startswith("bot-b#")
    [lease] = await journal(database_url, "SELECT owner, lease_until FROM thread_leases")
    assert lease["owner"].startswith("bot-a#") and lease["lease_until"] == 0  # released


async def test_queued_messages_on_both_instances_wait_their_turn_in_order(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses
):
    queue = {"THREAD_BUSY_POLICY": "queue", **QUIET}
    a = await bots.start("bot-a", **queue)
    b = await bots.start("bot-b", **queue)
    gate = asyncio.Event()
    openai.script(Reply(text="one", gate=gate))
    root = await slack.user_says("U0ALICE", "D0ALICE", "q1", to=a.connection)
    await openai.wait_for(lambda: openai.in_flight == 1)

    # q2 waits on the other instance (for the thread's lease), q3 on the first (behind q1).
    await slack.user_says("U0ALICE", "D0ALICE", "q2", thread_ts=root, to=b.connection)
    await b.wait_log("busy on another instance, message")
    await slack.user_says("U0ALICE", "D0ALICE", "q3", thread_ts=root, to=a.connection)
    await slack.wait_for(lambda: texts_in(slack, "D0ALICE", root).count(QUEUED) == 2, 10, "not both queued")
    gate.set()
    await wait_replies(slack, "D0ALICE", root, count=3, timeout=20)

    requests = openai.responses_requests()
    assert [last_user_text(r) for r in requests] == ["Alice: q1", "Alice: q2", "Alice: q3"]
    # Each instance read what the other had answered in between: one conversation.
    assert [i["content"] for i in requests[2]["input"]] == [
        "Alice: q1", "one", "Alice: q2", "You said: Alice: q2", "Alice: q3",
    ]
    assert texts_in(slack, "D0ALICE", root) == ["one", "You said: Alice: q2", "You said: Alice: q3"]


async def leases_live(database_url: str) -> int:
    [row] = await journal(database_url, "SELECT COUNT(*) AS n FROM inbound_messages WHERE lease_until > {now}")
    return int(row["n"])


async def test_a_kill_9_mid_answer_is_answered_by_the_other_instance_without_a_restart(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses, database_url: str
):
    a = await bots.start("bot-a", LEASE_SECONDS="3", **QUIET)
    b = await bots.start("bot-b", LEASE_SECONDS="3", **QUIET)
    openai.script(Reply(hang=True))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "are you still there?", to=a.connection)
    await openai.wait_for(lambda: openai.in_flight == 1)
    [left_behind] = bot_replies(slack, "D0ALICE", ts)
    assert left_behind["metadata"]["event_payload"]["owner"].startswith("bot-a#")

    await bots.kill(a)  # no shutdown, no farewell

    texts = await wait_replies(slack, "D0ALICE", ts, count=2, timeout=30)
    assert texts == [RESTARTED_NOTICE, "You said: Alice: are you still there?"]  # its placeholder closed
    await b.wait_log("taking over 1 unanswered messages of stopped instances (bot-a#")
    [row] = await journal(database_url, "SELECT status, owner FROM inbound_messages WHERE message_ts = ?", (ts,))
    assert row["status"] == "answered" and row["owner"].startswith("bot-b#")
    assert len(openai.responses_requests()) == 2  # the dead one's call, and the answer


async def test_a_takeover_leaves_the_live_instances_placeholder_in_the_thread_alone(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses
):
    queue = {"THREAD_BUSY_POLICY": "queue", "LEASE_SECONDS": "3", **QUIET}
    a = await bots.start("bot-a", **queue)
    b = await bots.start("bot-b", **queue)
    openai.script(Reply(hang=True))
    root = await slack.user_says("U0ALICE", "D0ALICE", "q1", to=a.connection)
    await openai.wait_for(lambda: openai.in_flight == 1)
    await slack.user_says("U0ALICE", "D0ALICE", "q2", thread_ts=root, to=b.connection)
    await slack.wait_for(lambda: QUEUED in texts_in(slack, "D0ALICE", root), 10, "q2 not queued")

    await bots.kill(a)

    texts = await wait_replies(slack, "D0ALICE", root, count=3, timeout=30)
    assert texts.count(RESTARTED_NOTICE) == 1  # the dead instance's "Thinking…" only
    assert sorted(t for t in texts if t != RESTARTED_NOTICE) == [
        "You said: Alice: q1", "You said: Alice: q2",
    ]


async def test_start_up_recovery_leaves_a_live_instances_answer_alone(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses
):
    await bots.start("bot-a", **QUIET)
    gate = asyncio.Event()
    openai.script(Reply(text="answered by a", gate=gate))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "take your time")
    await openai.wait_for(lambda: openai.in_flight == 1)

    b = await bots.start("bot-b", **QUIET)  # its start-up recovery sees a's unsettled message
    gate.set()

    assert await wait_replies(slack, "D0ALICE", ts) == ["answered by a"]
    assert "left unanswered by a restart" not in b.log()
    assert len(openai.responses_requests()) == 1


async def test_instances_starting_at_once_recover_a_dead_ones_messages_once_each(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses, database_url: str
):
    lease = {"LEASE_SECONDS": "2", **QUIET}
    a = await bots.start("bot-a", **lease)
    openai.script(*[Reply(hang=True) for _ in range(5)])
    people = [("U0ALICE", "D0ALICE", "Alice"), ("U0BOB", "D0BOB", "Bob")]
    for i in range(3):
        slack.add_user(f"U{i:04d}", f"person{i}", display_name=f"Person {i}")
        slack.add_channel(f"D{i:04d}", f"person{i}", is_im=True, user=f"U{i:04d}")
        people.append((f"U{i:04d}", f"D{i:04d}", f"Person {i}"))
    threads = [(channel, name, await slack.user_says(user, channel, "hello?")) for user, channel, name in people]
    await openai.wait_for(lambda: openai.in_flight == 5, 10)
    await bots.kill(a)
    deadline = asyncio.get_running_loop().time() + 15
    while await leases_live(database_url):  # until its leases ran out
        assert asyncio.get_running_loop().time() < deadline, "bot-a's leases never ran out"
        await asyncio.sleep(0.1)

    # Both find the dead one's messages at start (and in their takeover scans).
    await asyncio.gather(bots.start("bot-b", identify=False, **lease), bots.start("bot-c", identify=False, **lease))

    for channel, name, ts in threads:
        assert await wait_replies(slack, channel, ts, count=2, timeout=30) == [
            RESTARTED_NOTICE, f"You said: {name}: hello?",
        ]
    assert len(openai.responses_requests()) == 10
    owners = await journal(database_url, "SELECT owner FROM inbound_messages")
    assert all(not row["owner"].startswith("bot-a#") for row in owners)


async def test_a_settings_change_through_one_instance_applies_to_the_next_answer_from_the_other(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses
):
    a = await bots.start("bot-a", **QUIET)
    b = await bots.start("bot-b", **QUIET)
    first = await slack.user_says("U0ALICE", "D0ALICE", "hello", to=b.connection)
    await wait_replies(slack, "D0ALICE", first)  # b has Alice's settings in memory now
    assert "French" not in openai.responses_requests()[-1]["instructions"]

    command = await slack.push_envelope("slash_commands", {
        "command": "/ai-settings", "text": "", "user_id": "U0ALICE", "channel_id": "D0ALICE",
        "team_id": slack.team_id, "trigger_id": "trigger-U0ALICE", "response_url": "http://x",
    }, accepts_response_payload=True, to=a.connection)
    await slack.wait_for_ack(command)
    await slack.wait_for(lambda: slack.calls_to("views.open"))
    view_id, view = next(iter(slack.views.items()))
    submission = interaction(slack, "view_submission", "U0ALICE", view={
        **view, "id": view_id, "hash": "h1",
        "state": {"values": view_state(view, custom_instructions="Always answer in French.")},
    })
    await slack.wait_for_ack(await slack.push_envelope("interactive", submission, accepts_response_payload=True,
                                                       to=a.connection))
    await slack.wait_for(lambda: any(c.params.get("channel") == "U0ALICE" for c in slack.calls_to("chat.postMessage")),
                         10, "the change was not confirmed")  # saved on a

    again = await slack.user_says("U0ALICE", "D0ALICE", "bonjour", to=b.connection)
    await wait_replies(slack, "D0ALICE", again)

    assert "Always answer in French." in openai.responses_requests()[-1]["instructions"]


async def test_a_stop_reaching_the_other_instance_stops_the_answer_where_it_is_written(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses, database_url: str
):
    """Slack hands a stop (its native stop event, or a click on Stop) to any instance."""
    a = await bots.start("bot-a", **QUIET)
    b = await bots.start("bot-b", **QUIET)
    openai.script(Reply(text=" ".join(f"w{i}" for i in range(200)), chunk_size=6, chunk_delay=0.1))
    root = await slack.user_says("U0ALICE", "D0ALICE", "tell me everything", to=a.connection)
    await openai.wait_for(lambda: openai.in_flight == 1)
    stop = {"type": "agent_session_stopped", "channel": "D0ALICE", "thread_ts": root,
            "event_ts": "1.0", "streaming_message_ts": []}

    await slack.push_event({**stop, "user": "U0BOB"}, to=b.connection)  # not Bob's answer to stop
    await b.wait_log("U0BOB may not stop U0ALICE's answer")
    assert openai.in_flight == 1
    await slack.push_event({**stop, "user": "U0ALICE"}, to=b.connection)

    [text] = await wait_replies(slack, "D0ALICE", root)
    assert text.endswith("_Stopped._") and "w199" not in text
    await b.wait_log("stop by U0ALICE forwarded to bot-a#")
    await openai.wait_for(lambda: openai.in_flight == 0, message="the model request was not cancelled")
    [row] = await journal(database_url, "SELECT status, owner FROM inbound_messages WHERE message_ts = ?", (root,))
    assert row["status"] == "stopped" and row["owner"].startswith("bot-a#")


async def test_stop_on_a_message_queued_on_one_instance_pressed_through_the_other_stops_only_it(
    slack: FakeSlack, openai: FakeOpenAI, bots: BotProcesses, database_url: str
):
    queue = {"THREAD_BUSY_POLICY": "queue", **QUIET}
    a = await bots.start("bot-a", **queue)
    b = await bots.start("bot-b", **queue)
    gate = asyncio.Event()
    openai.script(Reply(text="one", gate=gate))
    root = await slack.user_says("U0ALICE", "D0ALICE", "q1", to=a.connection)
    await openai.wait_for(lambda: openai.in_flight == 1)
    second = await slack.user_says("U0ALICE", "D0ALICE", "q2", thread_ts=root, to=b.connection)
    await slack.wait_for(lambda: QUEUED in texts_in(slack, "D0ALICE", root), 10, "q2 not queued")
    [queued] = [m for m in bot_replies(slack, "D0ALICE", root) if m["text"] == QUEUED]

    # Pressed through the instance writing q1's answer, which must not stop that answer.
    await slack.push_envelope("interactive", stop_click(slack, "U0ALICE", "D0ALICE", queued), to=a.connection)
    await slack.wait_for(lambda: "Stopped before it started" in slack.message("D0ALICE", queued["ts"])["text"],
                         10, "q2 was not stopped")
    await b.wait_log("stopped while it waited its turn")
    gate.set()

    await slack.wait_for(lambda: "one" in texts_in(slack, "D0ALICE", root), 10, "q1 was not answered")
    await a.wait_log("answered in")  # logged just before the journal is settled
    assert len(openai.responses_requests()) == 1
    expected = [(root, "answered"), (second, "stopped")]
    for _ in range(50):  # the settle follows the log line by a round trip
        rows = await journal(database_url, "SELECT message_ts, status FROM inbound_messages ORDER BY message_ts")
        if [(r["message_ts"], r["status"]) for r in rows] == expected:
            break
        await asyncio.sleep(0.1)
    assert [(r["message_ts"], r["status"]) for r in rows] == expected
