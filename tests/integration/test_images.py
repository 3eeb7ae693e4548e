"""Drawing and editing pictures: routed by the utility model, uploaded into the right thread."""

from __future__ import annotations

from tests.fakes.openai import FakeOpenAI, Reply, tiny_png
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

UTILITY = "router-model"
ENV = {"OPENAI_UTILITY_MODEL": UTILITY, "OPENAI_IMAGE_MODEL": "image-model"}


def route_to(openai: FakeOpenAI, *intents: str) -> None:
    """The utility model answers these words, in order; other requests get the default reply."""
    pending = list(intents)

    def responder(body: dict) -> Reply:
        if body.get("model") == UTILITY:
            return Reply(text=pending.pop(0))
        # Image calls take a moment, long enough for the progress line to show.
        return Reply(latency=0.3)

    openai.responder = responder


def uploads(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict]:
    return [f for m in slack.bot_messages(channel, thread_ts) for f in m.get("files", [])]


async def test_a_picture_is_drawn_and_a_follow_up_edits_it(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot(**ENV)
    route_to(openai, "generate", "edit")
    root = await slack.user_says("U0ALICE", "D0ALICE", "draw a red fox in the snow")

    [text] = await wait_replies(slack, "D0ALICE", root, timeout=10)
    await app.processor.wait_idle()

    assert text == "Here is your picture."
    [generate] = openai.image_requests()
    assert generate["model"] == "image-model" and generate["prompt"] == "draw a red fox in the snow"
    assert generate["size"] == "auto" and generate["quality"] == "auto"
    [router] = [r for r in openai.responses_requests() if r["model"] == UTILITY]
    assert "draw a red fox" in router["input"]
    [upload] = uploads(slack, "D0ALICE", root)
    png = slack.file_bytes[upload["id"]]
    assert png == tiny_png()  # what the image model returned, in the person's thread
    # The progress line said what was happening during the image call.
    assert any("Drawing" in c.params["text"] for c in slack.calls_to("chat.update"))

    await slack.user_says("U0ALICE", "D0ALICE", "now make it blue", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2, timeout=10)
    edit = openai.image_requests()[-1]
    assert edit["prompt"] == "now make it blue"
    assert edit["image"] == png  # the previous picture was sent to be edited
    assert len(uploads(slack, "D0ALICE", root)) == 2


async def test_questions_about_pictures_still_get_text_answers(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(**ENV)
    route_to(openai, "text")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what makes a good logo?")

    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: what makes a good logo?"]
    assert openai.image_requests() == []


async def test_plain_messages_skip_the_router(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(**ENV)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "how are you?")
    await wait_replies(slack, "D0ALICE", ts)
    assert [r["model"] for r in openai.responses_requests()] == ["test-model"]


async def test_an_ambiguous_request_gets_a_question(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(**ENV)
    route_to(openai, "clarify")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "another picture like that")

    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert text.startswith("Do you want me to change the latest picture")
    assert openai.image_requests() == []


async def test_image_model_errors_end_in_a_human_reply(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(**ENV)
    pending = ["generate"]
    openai.responder = lambda body: Reply(text=pending.pop(0)) if body.get("model") == UTILITY else Reply(status=500)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "draw a lighthouse")

    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert "internal error" in text
