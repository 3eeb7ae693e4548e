"""A person talks to the real bot over the loopback Slack and OpenAI: who is answered, and how."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

import slack_client.utilities
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, user_inputs, wait_handled, wait_replies

BOT = "<@U0BOT>"


async def test_dm_is_answered_in_a_thread_under_it(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot()
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hello there")

    texts = await wait_replies(slack, "D0ALICE", ts)

    assert texts == ["You said: Alice: hello there"]
    [request] = openai.responses_requests()
    assert request["model"] == "test-model"
    assert request["stream"] is True
    assert user_inputs(request) == ["user: Alice: hello there"]
    # The system prompt carries today's date in the person's timezone (Alice is in Paris).
    today = datetime.now(ZoneInfo("Europe/Paris"))
    assert f"{today:%A, %d %B %Y}" in request["instructions"]
    # A placeholder was posted at once, in the thread, then edited into the answer.
    first_post = slack.calls_to("chat.postMessage")[0].params
    assert first_post["thread_ts"] == ts and "Thinking" in first_post["text"]


async def test_the_first_status_and_the_name_lookup_go_out_together(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    """Independent first steps do not wait for each other: under a burst every round trip
    waits its turn on the loop, and the model call starts only after all of them."""
    await start_bot()
    slack.hold("chat.postMessage")  # the "Thinking…" placeholder is slow to be answered
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hello there")

    await slack.wait_for(lambda: slack.calls_to("users.info"), message="the name lookup while the placeholder is out")
    assert slack.calls_to("chat.postMessage") and not openai.responses_requests()
    slack.release("chat.postMessage")

    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: hello there"]


async def test_channel_mention_is_answered_once_in_its_thread(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    ts = await slack.user_says("U0BOB", "C0GENERAL", f"{BOT} what is a monad?")

    texts = await wait_replies(slack, "C0GENERAL", ts)
    await wait_handled(slack, app, 2)  # app_mention and the second copy (message)

    assert texts == ["You said: Bob: what is a monad?"]
    assert len(openai.responses_requests()) == 1
    assert len(bot_replies(slack, "C0GENERAL", ts)) == 1


async def test_unrelated_channel_chatter_is_not_answered(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    top = await slack.user_says("U0BOB", "C0GENERAL", "lunch anyone?")
    await slack.user_says("U0ALICE", "C0GENERAL", "sure", thread_ts=top)
    await wait_handled(slack, app, 2)

    assert openai.responses_requests() == []
    assert slack.bot_messages("C0GENERAL") == []


async def test_configuring_a_thread_does_not_make_the_bot_join_it(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    root = slack.post_as_user("U0BOB", "C0GENERAL", "team chat")["ts"]
    await app.settings.save("U0BOB", "thread", {"web_search": True}, "C0GENERAL", root)
    await slack.user_says("U0ALICE", "C0GENERAL", "just talking", thread_ts=root)
    await wait_handled(slack, app, 1)

    assert openai.responses_requests() == []


async def test_follow_ups_in_a_thread_the_bot_is_in_need_no_mention(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    root = await slack.user_says("U0BOB", "C0GENERAL", f"{BOT} pick a number")
    await wait_replies(slack, "C0GENERAL", root)
    await app.processor.wait_idle()

    await slack.user_says("U0ALICE", "C0GENERAL", "and double it", thread_ts=root)
    await wait_replies(slack, "C0GENERAL", root, count=2)

    second = openai.responses_requests()[1]
    assert user_inputs(second) == [
        "user: Bob: pick a number",
        "assistant: You said: Bob: pick a number",
        "user: Alice: and double it",
    ]


async def test_dm_follow_up_carries_the_conversation(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot()
    openai.script(Reply(text="Paris is the capital of **France**."))
    root = await slack.user_says("U0ALICE", "D0ALICE", "capital of France?")
    await wait_replies(slack, "D0ALICE", root)
    await app.processor.wait_idle()
    await slack.user_says("U0ALICE", "D0ALICE", "and its population?", thread_ts=root)
    texts = await wait_replies(slack, "D0ALICE", root, count=2)
    await app.processor.wait_idle()

    assert texts[0] == "Paris is the capital of *France*."
    assert user_inputs(openai.responses_requests()[1]) == [
        "user: Alice: capital of France?",
        "assistant: Paris is the capital of **France**.",
        "user: Alice: and its population?",
    ]
    # A new top-level DM is a new conversation.
    other = await slack.user_says("U0ALICE", "D0ALICE", "unrelated question")
    await wait_replies(slack, "D0ALICE", other)
    assert user_inputs(openai.responses_requests()[2]) == ["user: Alice: unrelated question"]


async def test_thread_unknown_to_the_bot_is_rebuilt_from_slack_history(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(slack_client.utilities, "HISTORY_PAGE_SIZE", 2)  # force pagination
    await start_bot()
    root = slack.post_as_user("U0BOB", "C0GENERAL", "we need a name for the project")["ts"]
    slack.post_as_user("U0ALICE", "C0GENERAL", "how about Falcon?", thread_ts=root)
    slack.post_as_user("U0BOB", "C0GENERAL", "or Heron", thread_ts=root)
    slack.post_as_user("U0ALICE", "C0GENERAL", "hmm", thread_ts=root)

    await slack.user_says("U0ALICE", "C0GENERAL", f"{BOT} which one is better?", thread_ts=root)
    await wait_replies(slack, "C0GENERAL", root)

    assert user_inputs(openai.responses_requests()[0]) == [
        "user: Bob: we need a name for the project",
        "user: Alice: how about Falcon?",
        "user: Bob: or Heron",
        "user: Alice: hmm",
        "user: Alice: which one is better?",
    ]
    pages = [c for c in slack.calls_to("conversations.replies")]
    assert len(pages) >= 3


async def test_bot_and_edit_events_are_ignored(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot()
    base = {"channel": "D0ALICE", "channel_type": "im", "team": "T0TEAM"}
    await slack.push_event({"type": "message", "bot_id": "B0OTHER", "text": "beep", "ts": "1.000001", **base})
    await slack.push_event({"type": "message", "user": "U0BOT", "bot_id": "B0BOT", "text": "me", "ts": "1.000002", **base})
    await slack.push_event({"type": "message", "subtype": "message_changed", "ts": "1.000003",
                            "message": {"text": "edited", "user": "U0ALICE"}, **base})
    await slack.push_event({"type": "message", "subtype": "message_deleted", "ts": "1.000004",
                            "deleted_ts": "1.000001", **base})
    await slack.wait_for(lambda: len(slack.acks) == 4)  # bolt drops our own message before any listener
    await wait_handled(slack, app, 3)

    assert openai.responses_requests() == []
    assert slack.bot_messages("D0ALICE") == []
