"""Drawing and editing pictures: a tool the model calls; the picture goes into the right thread."""

from __future__ import annotations

from tests.fakes.openai import FakeOpenAI, FunctionCall, Reply, tiny_png
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

ENV = {"OPENAI_IMAGE_MODEL": "image-model"}


def uploads(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict]:
    return [f for m in slack.bot_messages(channel, thread_ts) for f in m.get("files", [])]


def draw(prompt: str, edit: bool = False) -> Reply:
    return Reply(calls=[FunctionCall("make_picture", {"prompt": prompt, "edit_latest": edit})])


IMAGE = Reply()  # the images call takes the next scripted reply too


async def test_a_picture_is_drawn_and_a_follow_up_edits_it(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot(**ENV)
    openai.script(draw("a red fox in the snow"), IMAGE, Reply(text="Here is your fox."))
    root = await slack.user_says("U0ALICE", "D0ALICE", "draw a red fox in the snow")

    [text] = await wait_replies(slack, "D0ALICE", root, timeout=10)
    await app.processor.wait_idle()

    assert text == "Here is your fox."
    [generate] = openai.image_requests()
    assert generate["model"] == "image-model" and generate["prompt"] == "a red fox in the snow"
    assert generate["size"] == "auto" and generate["quality"] == "auto"
    first = openai.responses_requests()[0]
    assert [t["name"] for t in first["tools"]] == ["make_picture"]
    assert "shown to the person" in openai.function_outputs(openai.responses_requests()[1])[0]["output"]
    [upload] = uploads(slack, "D0ALICE", root)
    png = slack.file_bytes[upload["id"]]
    assert png == tiny_png()  # what the image model returned, in the person's thread

    openai.script(draw("the fox, but blue", edit=True), IMAGE, Reply(text="Now it is blue."))
    await slack.user_says("U0ALICE", "D0ALICE", "now make it blue", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2, timeout=10)
    edit = openai.image_requests()[-1]
    assert edit["prompt"] == "the fox, but blue"
    assert edit["image"] == png  # the previous picture was sent to be edited
    assert len(uploads(slack, "D0ALICE", root)) == 2
    usage = await app.db.query("SELECT model, kind FROM usage WHERE kind = 'picture'")
    assert [tuple(r) for r in usage] == [("image-model", "picture")] * 2


async def test_questions_about_pictures_are_text_answers_with_no_images_call(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(**ENV)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what makes a good logo?")

    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: what makes a good logo?"]
    assert openai.image_requests() == []
    assert [r["model"] for r in openai.responses_requests()] == ["test-model"]  # no routing call


async def test_an_edit_with_no_picture_yet_is_told_to_the_model(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(**ENV)
    openai.script(draw("make it blue", edit=True), Reply(text="There is no picture to change yet."))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "make it blue")

    assert await wait_replies(slack, "D0ALICE", ts) == ["There is no picture to change yet."]
    assert "no picture in this conversation" in openai.function_outputs()[0]["output"]
    assert openai.image_requests() == []


async def test_an_image_model_error_is_told_to_the_model_and_the_answer_goes_on(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(**ENV)
    openai.responder = lambda body: Reply(status=500) if "prompt" in body else Reply(text="I could not draw it.")
    openai.script(draw("a lighthouse"))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "draw a lighthouse")

    assert await wait_replies(slack, "D0ALICE", ts) == ["I could not draw it."]
    assert "The tool failed" in openai.function_outputs()[0]["output"]
    await app.processor.wait_idle()
    assert [r["outcome"] for r in await app.db.tool_calls("D0ALICE", ts)] == ["error"]
