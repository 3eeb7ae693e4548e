"""Images shared with a message reach the model as image inputs, in follow-ups too."""

from __future__ import annotations

import base64

from tests.fakes.openai import FakeOpenAI, tiny_png
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies


def image_urls(request: dict) -> list[str]:
    return [
        part["image_url"]
        for turn in request["input"] if isinstance(turn["content"], list)
        for part in turn["content"] if part["type"] == "input_image"
    ]


async def test_a_shared_image_is_seen_now_and_in_follow_ups(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    png = tiny_png((200, 30, 30))
    photo = slack.add_file("red.png", png, "image/png")
    root = await slack.user_says("U0ALICE", "D0ALICE", "what colour is this?", files=[photo])
    await wait_replies(slack, "D0ALICE", root)
    await app.processor.wait_idle()

    first = openai.responses_requests()[0]
    [turn] = first["input"]
    assert turn["content"][0] == {"type": "input_text", "text": "Alice: what colour is this?"}
    assert image_urls(first) == ["data:image/png;base64," + base64.b64encode(png).decode()]

    downloads = len(slack.downloads)
    await slack.user_says("U0ALICE", "D0ALICE", "and brighter?", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)
    assert image_urls(openai.responses_requests()[1]) == image_urls(first)
    assert len(slack.downloads) == downloads  # kept with the thread, not fetched again


async def test_a_file_that_only_claims_to_be_an_image_is_refused(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    fake = slack.add_file("cat.png", b"<html>not an image</html>", "image/png")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "look", files=[fake])

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert "I couldn't read cat.png: it is not a PNG, JPEG, GIF or WebP image." in text
    assert image_urls(openai.responses_requests()[0]) == []


async def test_only_the_newest_images_go_back_to_the_model(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(MAX_CONTEXT_IMAGES="2")
    files = [slack.add_file(f"{i}.png", tiny_png((i * 40, 0, 0)), "image/png") for i in range(3)]
    root = await slack.user_says("U0ALICE", "D0ALICE", "three pictures", files=files)
    await wait_replies(slack, "D0ALICE", root)
    await app.processor.wait_idle()

    assert len(image_urls(openai.responses_requests()[0])) == 2
