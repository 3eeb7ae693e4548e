"""Suggested prompts, thread titles and feedback buttons, over the loopback Slack."""

from __future__ import annotations

import json

from slack_client.edited_reply import FEEDBACK_ACTION
from slack_client.event_handlers.assistant import FEEDBACK_THANKS
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.helpers import interaction, kind, wait_handled, wait_replies


async def test_a_new_assistant_conversation_gets_suggested_prompts(slack: FakeSlack, start_bot):
    await start_bot(SUGGESTED_PROMPTS="What can you do?; Summarise this PDF")
    await slack.push_event({"type": "assistant_thread_started", "assistant_thread": {
        "user_id": "U0ALICE", "channel_id": "D0ALICE", "thread_ts": "1700000000.000001",
        "context": {"channel_id": "C0GENERAL", "team_id": slack.team_id},
    }, "event_ts": "1700000000.000002"})
    await slack.wait_for(lambda: bool(slack.calls_to("assistant.threads.setSuggestedPrompts")))

    [call] = slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert (call.params["channel_id"], call.params["thread_ts"]) == ("D0ALICE", "1700000000.000001")
    assert [p["message"] for p in call.params["prompts"]] == ["What can you do?", "Summarise this PDF"]


async def test_the_messages_tab_gets_prompts_and_none_turns_them_off(slack: FakeSlack, start_bot):
    app = await start_bot()
    for tab in ("home", "messages"):
        await slack.push_event({"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": tab})
    await wait_handled(slack, app, 2)  # both tabs' events, not only the first
    [call] = slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert call.params["channel_id"] == "D0ALICE" and "thread_ts" not in call.params
    assert len(call.params["prompts"]) == 4  # the default starters
    await app.stop()

    second = await start_bot(SUGGESTED_PROMPTS="none")
    await slack.push_event({"type": "app_home_opened", "user": "U0BOB", "channel": "D0BOB", "tab": "messages"})
    await wait_handled(slack, second, 1)
    assert len(slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1


async def test_a_workspace_without_assistant_features_just_gets_no_prompts(slack: FakeSlack, start_bot):
    await start_bot()
    slack.fail("assistant.threads.setSuggestedPrompts", error="missing_scope")
    await slack.push_event({"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "messages"})
    await slack.wait_for(lambda: bool(slack.calls_to("assistant.threads.setSuggestedPrompts")))

    ts = await slack.user_says("U0ALICE", "D0ALICE", "still fine?")
    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: still fine?"]


async def test_the_first_question_titles_an_assistant_thread(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot()
    plain = await slack.user_says("U0ALICE", "D0ALICE", "a plain DM, not an assistant thread")
    await wait_replies(slack, "D0ALICE", plain)
    root = slack.post_as_user("U0BOT", "D0ALICE", "")["ts"]  # Slack opens the assistant thread
    await slack.push_event({"type": "assistant_thread_started", "assistant_thread": {
        "user_id": "U0ALICE", "channel_id": "D0ALICE", "thread_ts": root}})
    await slack.wait_for(lambda: bool(slack.calls_to("assistant.threads.setSuggestedPrompts")))
    await slack.user_says("U0ALICE", "D0ALICE", "How do I rotate my API keys safely without downtime?\nDetails…",
                          thread_ts=root)
    await wait_replies(slack, "D0ALICE", root)
    await slack.user_says("U0ALICE", "D0ALICE", "and for the staging system?", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)

    [title] = slack.calls_to("assistant.threads.setTitle")  # the assistant thread's first question only
    assert title.params["thread_ts"] == root
    assert title.params["title"] == "How do I rotate my API keys safely without downtime?"


async def test_a_feedback_click_is_stored_with_model_and_settings_and_thanked(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    ts = await slack.user_says("U0ALICE", "D0ALICE", "rate me")
    await wait_replies(slack, "D0ALICE", ts)
    [answer] = [m for m in slack.bot_messages("D0ALICE", ts) if kind(m) == "answer"]
    [buttons] = [b for b in answer["blocks"] if b["type"] == "context_actions"]
    assert buttons["elements"][0]["action_id"] == FEEDBACK_ACTION

    envelope = await slack.push_envelope("interactive", interaction(
        slack, "block_actions", "U0ALICE",
        channel={"id": "D0ALICE"}, container={"type": "message", "message_ts": answer["ts"], "channel_id": "D0ALICE"},
        message={"ts": answer["ts"], "thread_ts": ts, "text": answer["text"]},
        actions=[{"type": "feedback_buttons", "action_id": FEEDBACK_ACTION, "block_id": "b1",
                  "value": "bad", "action_ts": "1"}],
    ))
    await slack.wait_for_ack(envelope)
    await slack.wait_for(lambda: bool(slack.ephemerals))

    assert slack.ephemerals[-1]["text"] == FEEDBACK_THANKS["bad"] and slack.ephemerals[-1]["thread_ts"] == ts
    [row] = await app.db.feedback_for("D0ALICE", answer["ts"])
    assert (row["user_id"], row["value"], row["model"]) == ("U0ALICE", "bad", "test-model")
    assert json.loads(row["settings"])["model"] == "test-model"
    assert "feedback_good=0 feedback_bad=1" in app.processor.stats.line(0, 0)


async def test_a_click_the_bot_cannot_read_is_still_acked_and_the_failure_logged(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, caplog
):
    """A listener failing right after its ack() must not take the ack back (bolt would then
    send none, and Slack shows the person an error and retries)."""
    app = await start_bot()
    handled = app.client.handled
    envelope = await slack.push_envelope("interactive", interaction(
        slack, "block_actions", "U0ALICE", channel={"id": "D0ALICE"}, message="not a message",
        actions=[{"type": "feedback_buttons", "action_id": FEEDBACK_ACTION, "block_id": "b1",
                  "value": "bad", "action_ts": "1"}],
    ))
    await slack.wait_for_ack(envelope)
    await slack.wait_for(lambda: app.client.handled > handled)
    assert any("on_feedback failed" in r.getMessage() and r.exc_info for r in caplog.records)
