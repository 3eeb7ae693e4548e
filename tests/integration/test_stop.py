"""Stopping an answer: Slack's native stop button (an event) and the edited answer's Stop button."""

from __future__ import annotations

import asyncio

from tests.fakes.openai import FakeOpenAI, FunctionCall, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, stop_click, wait_replies
from tests.integration.test_tool_loop import Orders, use_tools

SLOW = Reply(text=" ".join(f"w{i}" for i in range(200)), chunk_size=6, chunk_delay=0.1)


def shown(slack: FakeSlack, channel: str, ts: str) -> str:
    """What the bot's messages in the thread show so far (a stream has no metadata until it ends)."""
    return " ".join(m.get("text", "") for m in slack.bot_messages(channel, ts))


async def test_the_native_stop_button_stops_the_answer_and_frees_the_thread(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(SLACK_NATIVE_STREAMING="true")
    openai.script(SLOW)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "tell me everything")
    await slack.wait_for(lambda: "w3" in shown(slack, "D0ALICE", ts), message="no text streamed")

    await slack.push_event({"type": "agent_session_stopped", "channel": "D0ALICE", "thread_ts": ts,
                            "user": "U0ALICE", "event_ts": "1.0", "streaming_message_ts": []})
    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert text.startswith("w0 w1 w2") and text.endswith("_Stopped._") and "w199" not in text
    await app.processor.wait_idle()
    assert await app.db.message_status("D0ALICE", ts) == "stopped"
    await openai.wait_for(lambda: openai.in_flight == 0, message="the model request was not cancelled")
    # Not answered again after a restart: a stopped message is settled.
    assert all(row["message_ts"] != ts for row in await app.db.unfinished_messages())

    openai.script(Reply(text="fresh answer"))
    await slack.user_says("U0ALICE", "D0ALICE", "short one please", thread_ts=ts)
    assert (await wait_replies(slack, "D0ALICE", ts, count=2))[-1] == "fresh answer"


async def test_the_edited_answer_carries_a_stop_button_that_only_its_person_may_press(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    openai.script(SLOW)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "tell me everything")
    await slack.wait_for(lambda: "w3" in shown(slack, "D0ALICE", ts), message="no text shown")
    [progress] = bot_replies(slack, "D0ALICE", ts)
    button = progress["blocks"][-1]["elements"][0]
    assert (button["action_id"], button["value"]) == ("stop_answer", ts)

    def click(user: str) -> dict:
        return stop_click(slack, user, "D0ALICE", progress)

    handled = app.client.handled
    await slack.push_envelope("interactive", click("U0BOB"))  # someone else's answer: not theirs to stop
    await slack.wait_for(lambda: app.client.handled > handled)
    assert any("no answer of yours" in e["text"] for e in slack.ephemerals)
    await slack.push_envelope("interactive", click("U0ALICE"))

    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert text.endswith("_Stopped._") and "w199" not in text
    [final] = bot_replies(slack, "D0ALICE", ts)
    assert not any(b.get("type") == "actions" for b in final.get("blocks") or [])  # the button is gone
    await app.processor.wait_idle()
    assert await app.db.message_status("D0ALICE", ts) == "stopped"


async def test_a_stop_cancels_a_running_tool_call_and_settles_the_message(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(SLACK_NATIVE_STREAMING="true")
    orders = Orders(hang=asyncio.Event())  # never finishes by itself
    use_tools(app, orders)
    openai.script(Reply(calls=[FunctionCall("orders__lookup_order", {"number": 9}, call_id="c9")]))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "where is order 9?")
    await slack.wait_for(lambda: orders.calls, message="the tool was not called")

    await slack.push_event({"type": "agent_session_stopped", "channel": "D0ALICE", "thread_ts": ts,
                            "user": "U0ALICE", "event_ts": "1.0", "streaming_message_ts": []})
    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert text.endswith("_Stopped._")
    await app.processor.wait_idle()
    assert orders.cancelled == 1 and len(openai.responses_requests()) == 1  # no round after the stop
    assert await app.db.message_status("D0ALICE", ts) == "stopped"
    assert [(r["tool"], r["outcome"]) for r in await app.db.tool_calls("D0ALICE", ts)] == [
        ("orders__lookup_order", "cancelled")]


async def test_stop_on_a_queued_message_takes_it_out_of_line_and_the_answer_goes_on(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(THREAD_BUSY_POLICY="queue")
    gate = asyncio.Event()
    openai.script(Reply(text="the first answer", gate=gate), Reply(text="never asked for"))
    root = await slack.user_says("U0ALICE", "D0ALICE", "first")
    await openai.wait_for(lambda: openai.in_flight == 1)
    second = await slack.user_says("U0ALICE", "D0ALICE", "second", thread_ts=root)
    await slack.wait_for(lambda: any("Queued" in m["text"] for m in bot_replies(slack, "D0ALICE", root)),
                         message="the second message was not queued")
    [queued] = [m for m in bot_replies(slack, "D0ALICE", root) if "Queued" in m["text"]]
    button = queued["blocks"][-1]["elements"][0]
    assert button["action_id"] == "stop_answer"

    await slack.push_envelope("interactive", stop_click(slack, "U0ALICE", "D0ALICE", queued))
    await slack.wait_for(lambda: "Stopped before it started" in slack.message("D0ALICE", queued["ts"])["text"],
                         message="the queued message was not stopped")
    assert openai.in_flight == 1  # the answer being written goes on
    gate.set()

    texts = await wait_replies(slack, "D0ALICE", root, count=2)
    assert "the first answer" in texts and len(openai.responses_requests()) == 1
    await app.processor.wait_idle()
    assert await app.db.message_status("D0ALICE", root) == "answered"
    assert await app.db.message_status("D0ALICE", second) == "stopped"


async def test_the_stop_button_on_the_second_message_of_a_long_answer_stops_it(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    """A long answer goes on in a second message, which then carries the Stop button."""
    await start_bot()
    words = " ".join(f"word{i:04d}" for i in range(2000))  # about 18,000 characters
    openai.script(Reply(text=words, chunk_size=400, chunk_delay=0.05))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "tell me everything, at length")
    await slack.wait_for(lambda: len(bot_replies(slack, "D0ALICE", ts)) >= 2, 10, "no second message")
    second = bot_replies(slack, "D0ALICE", ts)[-1]
    await slack.wait_for(lambda: (slack.message("D0ALICE", second["ts"]) or {}).get("blocks"), 10, "no Stop button")
    second = slack.message("D0ALICE", second["ts"])
    button = second["blocks"][-1]["elements"][0]
    assert button["action_id"] == "stop_answer"

    await slack.push_envelope("interactive", stop_click(slack, "U0ALICE", "D0ALICE", second))
    await slack.wait_for(lambda: shown(slack, "D0ALICE", ts).endswith("_Stopped._"), 10, "not stopped")
    assert "word1999" not in shown(slack, "D0ALICE", ts)
    assert not any("no answer of yours" in e["text"] for e in slack.ephemerals)
