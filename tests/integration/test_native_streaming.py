"""Slack's AI surfaces: assistant status, native streaming, and every fallback to edits."""

from __future__ import annotations

from typing import Any

from slack_client.native_stream import STREAM_MESSAGE_CHARS
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, kind, wait_replies

NATIVE = {"SLACK_NATIVE_STREAMING": "true"}


def statuses(slack: FakeSlack) -> list[str]:
    return [c.params["status"] for c in slack.calls_to("assistant.threads.setStatus")]


def stream_calls(slack: FakeSlack) -> list[str]:
    return [c.method for c in slack.calls if c.method.startswith("chat.") and "Stream" in c.method]


async def test_an_answer_streams_natively_under_the_assistant_status(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**NATIVE, STREAM_UPDATE_SECONDS="0.1")
    words = " ".join(f"**word{i}**" for i in range(80))
    openai.script(Reply(text=words, chunk_size=12, chunk_delay=0.02))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "stream it")

    assert await wait_replies(slack, "D0ALICE", ts) == [words]  # Markdown as is: Slack renders it

    first = slack.calls_to("assistant.threads.setStatus")[0].params
    assert (first["channel_id"], first["thread_ts"], first["status"]) == ("D0ALICE", ts, "Thinking…")
    assert len(first["loading_messages"]) >= 2
    await slack.wait_for(lambda: slack.status_shown("D0ALICE", ts) == "", message="the status was not cleared")
    [start] = slack.calls_to("chat.startStream")
    assert start.params["thread_ts"] == ts
    assert (start.params["recipient_team_id"], start.params["recipient_user_id"]) == (slack.team_id, "U0ALICE")
    calls = stream_calls(slack)
    assert calls[0] == "chat.startStream" and calls[-1] == "chat.stopStream" and "chat.appendStream" in calls
    [stop] = slack.calls_to("chat.stopStream")
    assert stop.params["metadata"]["event_payload"]["kind"] == "answer"
    assert stop.params["blocks"][0]["type"] == "context_actions"
    assert stop.params["blocks"][0]["elements"][0]["type"] == "feedback_buttons"
    posts = [c for c in slack.calls_to("chat.postMessage") if c.params["metadata"]["event_payload"]["kind"] != "welcome"]
    assert not posts and not slack.calls_to("chat.update")


async def test_a_channel_that_cannot_stream_gets_an_edited_answer(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**NATIVE)
    slack.fail("chat.startStream", error="channel_type_not_supported")
    openai.script(Reply(text="edited instead", chunk_size=4, chunk_delay=0.02))
    ts = await slack.user_says("U0ALICE", "C0GENERAL", f"<@{slack.bot_user_id}> hi")

    assert await wait_replies(slack, "C0GENERAL", ts) == ["edited instead"]
    [answer] = [m for m in slack.bot_messages("C0GENERAL", ts) if kind(m) == "answer"]
    assert answer["blocks"][-1]["type"] == "context_actions"  # feedback in the edited answer too
    assert slack.calls_to("chat.update")
    await slack.wait_for(lambda: slack.status_shown("C0GENERAL", ts) == "", message="the status was not cleared")


async def test_without_the_assistant_status_the_placeholder_is_edited(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**NATIVE)
    slack.fail("assistant.threads.setStatus", error="missing_scope")
    openai.script(Reply(text="still answered", chunk_size=4, chunk_delay=0.02))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    assert await wait_replies(slack, "D0ALICE", ts) == ["still answered"]
    assert "Thinking" in slack.calls_to("chat.postMessage")[0].params["text"]
    assert not slack.calls_to("chat.startStream")


async def test_a_stream_that_expires_mid_answer_ends_with_the_full_text_by_chat_update(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**NATIVE, STREAM_UPDATE_SECONDS="0.1")
    words = " ".join(f"part{i}" for i in range(60))
    openai.script(Reply(text=words, chunk_size=6, chunk_delay=0.03))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "a long one")
    await slack.wait_for(lambda: bool(slack.calls_to("chat.appendStream")))
    slack.expire_streams()

    assert await wait_replies(slack, "D0ALICE", ts) == [words]
    [start] = slack.calls_to("chat.startStream")
    stream_ts = next(m["ts"] for m in slack.bot_messages("D0ALICE", ts))
    final = slack.calls_to("chat.update")[-1].params
    assert final["ts"] == stream_ts and final["text"] == words
    assert start.params["thread_ts"] == ts
    await slack.wait_for(lambda: slack.status_shown("D0ALICE", ts) == "", message="the status was not cleared")


async def test_a_reply_longer_than_one_stream_rolls_over_into_a_new_message(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**NATIVE)
    text = "".join(f"Sentence number {i} of a very long answer. " for i in range(900))  # ~40k chars
    openai.script(Reply(text=text, chunk_size=3000))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "write a book")

    # Done when the whole text is shown (the count of messages is what is being tested).
    await slack.wait_for(lambda: "".join(m["text"] for m in bot_replies(slack, "D0ALICE", ts)) == text, 20)
    texts = await wait_replies(slack, "D0ALICE", ts, count=3)

    assert all(len(t) <= STREAM_MESSAGE_CHARS for t in texts)
    assert len(slack.calls_to("chat.startStream")) == len(texts) == len(slack.calls_to("chat.stopStream"))
    stops: list[dict[str, Any]] = [c.params for c in slack.calls_to("chat.stopStream")]
    assert [bool(s.get("blocks")) for s in stops] == [False] * (len(stops) - 1) + [True]  # feedback once


async def test_the_status_is_cleared_after_a_model_timeout(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(**NATIVE, OPENAI_TIMEOUT_SECONDS="0.5")
    openai.script(Reply(hang=True))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hello?")

    [notice] = await wait_replies(slack, "D0ALICE", ts)

    assert "didn't finish answering within 0.5 seconds" in notice
    await slack.wait_for(lambda: slack.status_shown("D0ALICE", ts) == "", message="the status was not cleared")
    assert statuses(slack)[0] == "Thinking…"
    assert not slack.calls_to("chat.startStream")
