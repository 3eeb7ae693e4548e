"""Which Slack events become messages for the processor."""

from __future__ import annotations

import pytest

from base_client import Role
from slack_client.event_handlers.message_events import is_from_person, to_message
from slack_client.utilities import history_message, strip_mention

BOT = "U0BOT"


@pytest.mark.parametrize(
    ("event", "answered"),
    [
        ({"user": "U1", "text": "hi"}, True),
        ({"user": "U1", "text": "", "files": [{"id": "F1"}], "subtype": "file_share"}, True),
        ({"user": "U1", "text": "hi", "subtype": "thread_broadcast"}, True),
        ({"user": "U1", "text": "hi", "subtype": "message_changed"}, False),
        ({"user": "U1", "text": "hi", "subtype": "message_deleted"}, False),
        ({"user": "U1", "text": "hi", "subtype": "channel_join"}, False),
        ({"user": "U1", "text": "hi", "bot_id": "B9"}, False),
        ({"user": BOT, "text": "hi"}, False),
        ({"user": "U1", "text": "   "}, False),
        ({"text": "no author"}, False),
    ],
)
def test_who_is_answered(event: dict, answered: bool) -> None:
    assert is_from_person(event, BOT) is answered


def test_to_message_threads_and_strips_the_mention() -> None:
    event = {"user": "U1", "text": "<@U0BOT> hello <@U2>", "ts": "2.0", "channel": "C1",
             "files": [{"id": "F1", "name": "a.pdf", "mimetype": "application/pdf", "size": 10,
                        "url_private": "https://files.slack.com/a.pdf"}]}
    message = to_message(event, "Ev1", BOT)
    assert message.text == "hello <@U2>"
    assert message.thread_id == message.message_id == "2.0" and message.starts_thread
    assert message.attachments[0].name == "a.pdf"
    reply = to_message({**event, "thread_ts": "1.0"}, None, BOT)
    assert reply.thread_id == "1.0" and not reply.starts_thread


def test_history_tells_answers_from_notices() -> None:
    answer = {"ts": "1", "user": BOT, "bot_id": "B0", "text": "an answer",
              "metadata": {"event_type": "assistant_reply", "event_payload": {"kind": "answer"}}}
    notice = {**answer, "text": "busy", "metadata": {"event_type": "assistant_reply",
                                                     "event_payload": {"kind": "notice"}}}
    person = {"ts": "2", "user": "U1", "text": "<@U0BOT> question"}
    other_bot = {"ts": "3", "bot_id": "B9", "username": "ci", "text": "build failed"}
    assert history_message(answer, BOT, "B0").is_dialogue
    assert not history_message(notice, BOT, "B0").is_dialogue
    assert history_message(person, BOT, "B0").text == "question"
    assert history_message(person, BOT, "B0").role is Role.USER
    bot_turn = history_message(other_bot, BOT, "B0")
    assert (bot_turn.text, bot_turn.author, bot_turn.outsider) == ("build failed", "ci", True)
    assert history_message({**person, "subtype": "channel_join"}, BOT, "B0") is None
    assert strip_mention("<@U0BOT|assistant> hi", BOT) == "hi"


def test_a_thread_title_is_the_first_line_cut_at_a_word() -> None:
    from slack_client.event_handlers.assistant import thread_title

    assert thread_title("Short question?\nmore") == "Short question?"
    long = thread_title("Please explain, in detail, how the quarterly revenue recognition works for our enterprise plans")
    assert long.endswith("…") and len(long) <= 61 and " " in long
    assert thread_title("   ") == "New conversation"
