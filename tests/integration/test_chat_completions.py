"""OPENAI_API_STYLE=chat_completions: the real bot against a server that only speaks Chat Completions."""

from __future__ import annotations

import base64
from datetime import datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

from message_processor.utilities import error_notice, incomplete_note
from openai_client.events import ErrorKind, ModelError
from tests.fakes.openai import FakeOpenAI, FunctionCall, Reply, tiny_png
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, chat_turns, wait_replies

CHAT = {"OPENAI_API_STYLE": "chat_completions"}


def everything_shown(slack: FakeSlack) -> list[str]:
    return [c.params.get("text", "") for c in slack.calls if c.method in ("chat.postMessage", "chat.update")]


async def test_an_answer_streams_from_chat_completions_into_slack(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(STREAM_UPDATE_SECONDS="0.2", **CHAT)
    words = " ".join(f"word{i}" for i in range(100))
    openai.script(Reply(text=words, chunk_size=10, chunk_delay=0.02, usage=(40, 25)))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "talk to me")

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert text == words
    [placeholder] = bot_replies(slack, "D0ALICE", ts)
    updates = [c.params["text"] for c in slack.calls_to("chat.update") if c.params["ts"] == placeholder["ts"]]
    partial = [u for u in updates if u.endswith("▍")]
    assert len(partial) >= 2 and all(len(a) < len(b) for a, b in pairwise(partial))
    assert openai.responses_requests() == []
    [request] = openai.chat_requests()
    assert request["model"] == "test-model"
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert request["max_completion_tokens"] == 8192
    assert "tools" not in request and "input" not in request and "instructions" not in request
    system = request["messages"][0]
    assert system["role"] == "system"
    assert f"{datetime.now(ZoneInfo('Europe/Paris')):%A, %d %B %Y}" in system["content"]
    assert chat_turns(request) == ["user: Alice: talk to me"]
    assert request["temperature"] == 1.0  # test-model is not a reasoning model


async def test_a_follow_up_carries_the_earlier_turns(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot(**CHAT)
    openai.script(Reply(text="Paris."))
    root = await slack.user_says("U0ALICE", "D0ALICE", "capital of France?")
    await wait_replies(slack, "D0ALICE", root)
    await app.processor.wait_idle()

    await slack.user_says("U0ALICE", "D0ALICE", "and its population?", thread_ts=root)
    texts = await wait_replies(slack, "D0ALICE", root, count=2)

    assert texts[1] == "You said: Alice: and its population?"
    second = openai.chat_requests()[1]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert chat_turns(second) == [
        "user: Alice: capital of France?",
        "assistant: Paris.",
        "user: Alice: and its population?",
    ]


async def test_a_shared_image_reaches_chat_as_an_image_url_part(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**CHAT)
    png = tiny_png((200, 30, 30))
    photo = slack.add_file("red.png", png, "image/png")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what colour is this?", files=[photo])
    await wait_replies(slack, "D0ALICE", ts)

    [request] = openai.chat_requests()
    assert request["messages"][-1] == {"role": "user", "content": [
        {"type": "text", "text": "Alice: what colour is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}},
    ]}


async def test_finish_reason_length_gets_the_cut_off_note(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(**CHAT)
    openai.script(Reply(text="The first half of a long story", finish_reason="length"))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "tell me a long story")

    [text] = await wait_replies(slack, "D0ALICE", ts)

    note = incomplete_note("max_output_tokens").strip("_")
    assert text.startswith("The first half of a long story\n\n") and note in text


async def test_a_stream_that_ends_without_a_finish_is_a_connection_error(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**CHAT)
    openai.script(Reply(text="half an answ", finish_reason=None), Reply(status=429, retry_after=3600))  # "much later": told at once
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hello")
    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert text.endswith(error_notice(ModelError(ErrorKind.CONNECTION, "x"), 1))
    assert text.startswith("half an answ")  # the partial text is kept

    other = await slack.user_says("U0ALICE", "D0ALICE", "again")
    [limited] = await wait_replies(slack, "D0ALICE", other)
    assert limited == error_notice(ModelError(ErrorKind.RATE_LIMIT, "x"), 1)


async def test_without_an_image_model_no_picture_tool_is_offered(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**CHAT)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "draw a red fox in the snow")
    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: draw a red fox in the snow"]
    [request] = openai.chat_requests()
    assert "tools" not in request  # the model knows it cannot draw here
    assert openai.image_requests() == []


async def test_pictures_work_in_chat_style_when_an_image_model_is_set(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(OPENAI_IMAGE_MODEL="image-model", **CHAT)
    openai.script(Reply(calls=[FunctionCall("make_picture", {"prompt": "a red fox in the snow"})]),
                  Reply(), Reply(text="Here is your fox."))  # the middle one answers the images call
    ts = await slack.user_says("U0ALICE", "D0ALICE", "draw a red fox in the snow")

    assert await wait_replies(slack, "D0ALICE", ts) == ["Here is your fox."]
    [generate] = openai.image_requests()
    assert generate["model"] == "image-model" and generate["prompt"] == "a red fox in the snow"
    assert openai.chat_requests()[0]["tools"][0]["function"]["name"] == "make_picture"


async def test_a_saved_web_search_setting_is_not_sent(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot(ENABLE_WEB_SEARCH="true", **CHAT)
    await app.settings.save("U0ALICE", "user", {"web_search": True})
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what is new today?")

    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: what is new today?"]
    [request] = openai.chat_requests()
    assert "tools" not in request and "web_search_options" not in request
    assert not any("Searching the web" in text for text in everything_shown(slack))
