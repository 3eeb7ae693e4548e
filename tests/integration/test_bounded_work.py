"""Bounded work: files per message, image bytes per request, history pages, one turn deadline."""

from __future__ import annotations

import base64
import io
import os

import pytest
from PIL import Image

from tests.fakes.openai import FakeOpenAI, FunctionCall, Reply, tiny_png
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies



def posted_texts(slack: FakeSlack) -> list[str]:
    """Every text the bot sent Slack (posts, edits, streams), as Slack would render it."""
    texts = []
    for call in slack.calls:
        if call.method.startswith("chat."):
            texts += [str(call.params.get(key) or "") for key in ("text", "markdown_text")]
    return texts


def data_urls(request: dict) -> list[str]:
    return [
        part["image_url"]
        for turn in request["input"] if isinstance(turn["content"], list)
        for part in turn["content"] if part["type"] == "input_image"
    ]


def decoded(url: str) -> tuple[str, bytes]:
    header, encoded = url.split(",", 1)
    return header.removeprefix("data:").removesuffix(";base64"), base64.b64decode(encoded)


def noise_image(width: int, height: int, kind: str = "JPEG") -> bytes:
    """A photo-like image that does not compress: its bytes grow with its pixels."""
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, kind, **({"quality": 95} if kind == "JPEG" else {}))
    return out.getvalue()


async def test_files_past_the_limit_are_named_as_skipped_and_never_downloaded(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(MAX_FILES_PER_MESSAGE="10")
    files = [slack.add_file(f"notes-{i}.txt", f"note number {i}".encode(), "text/plain") for i in range(10)]
    # File names are whatever people typed: they must reach Slack as text, never as a mention.
    files += [
        slack.add_file("<!channel>.pdf", b"%PDF-1.4", "application/pdf"),
        slack.add_file("<@U0BOB> notes.txt", b"eleven", "text/plain"),
    ]
    ts = await slack.user_says("U0ALICE", "D0ALICE", "summarise all of these", files=files)

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=30)

    assert text.startswith("You said: Alice: summarise all of these")
    assert "I read at most 10 files per message, so I skipped: &lt;!channel&gt;.pdf, &lt;@U0BOB&gt; notes.txt." in text
    [turn] = openai.responses_requests()[0]["input"]
    assert [f"=== DOCUMENT: notes-{i}.txt ===" in turn["content"] for i in range(10)] == [True] * 10
    assert "eleven" not in turn["content"]
    assert sorted(file_id for file_id, _ in slack.downloads) == sorted(f["id"] for f in files[:10])
    assert not any("<!channel" in t or "<@U0BOB" in t for t in posted_texts(slack))


@pytest.mark.parametrize("native", ["false", "true"])
async def test_a_notice_naming_hostile_files_is_plain_text(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, native: str
):
    """Only files, none read: the reasons are the whole reply, and a notice is escaped too."""
    await start_bot(MAX_FILES_PER_MESSAGE="2", SLACK_NATIVE_STREAMING=native)
    files = [
        slack.add_file("a.bin", b"\x00\x01", "application/octet-stream"),
        slack.add_file("b.bin", b"\x00\x01", "application/octet-stream"),
        slack.add_file("[Q3](!channel).bin", b"\x00", "application/octet-stream"),
        slack.add_file("<!channel>.pdf", b"%PDF-1.4", "application/pdf"),
    ]
    ts = await slack.user_says("U0ALICE", "D0ALICE", "", files=files)

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=20)

    assert "I couldn't read a.bin: I can't read this kind of file yet" in text
    assert "I read at most 2 files per message, so I skipped: [Q3](!channel).bin, &lt;!channel&gt;.pdf." in text
    assert not any("<!channel" in t for t in posted_texts(slack))
    assert openai.responses_requests() == []


async def test_a_large_shared_image_is_shrunk_before_the_model_gets_it(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    photo = noise_image(3000, 2000)
    assert len(photo) > 4 * 1024 * 1024  # over the per-image limit as shared
    shared = slack.add_file("holiday.jpg", photo, "image/jpeg")
    root = await slack.user_says("U0ALICE", "D0ALICE", "what do you see here?", files=[shared])
    await wait_replies(slack, "D0ALICE", root, timeout=30)
    await app.processor.wait_idle()

    [url] = data_urls(openai.responses_requests()[0])
    mimetype, data = decoded(url)
    assert mimetype == "image/jpeg" and len(data) <= 4 * 1024 * 1024
    with Image.open(io.BytesIO(data)) as seen:
        assert max(seen.size) == 2048 and seen.size[0] > seen.size[1]  # shape kept

    await slack.user_says("U0ALICE", "D0ALICE", "and the sky?", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)
    assert data_urls(openai.responses_requests()[1]) == [url]  # the shrunk copy was stored


async def test_images_past_the_byte_budget_are_left_out_and_named(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(MAX_IMAGE_CONTEXT_MB="0.1")
    small = tiny_png()
    files = [slack.add_file(f"{name}.png", noise_image(1200, 800, "PNG"), "image/png") for name in ("a", "b")]
    files.append(slack.add_file("icon.png", small, "image/png"))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "compare", files=files)

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=30)

    assert "One message's images may take 0.1 MB together, so I left out: b.png." in text
    urls = data_urls(openai.responses_requests()[0])
    assert len(urls) == 2 and decoded(urls[1]) == ("image/png", small)
    assert sum(len(decoded(u)[1]) for u in urls) <= 0.1 * 1024 * 1024


async def test_a_generated_picture_does_not_push_out_a_shared_image(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(MAX_CONTEXT_IMAGES="1", OPENAI_IMAGE_MODEL="image-model")
    photo = tiny_png((200, 30, 30))
    shared = slack.add_file("red.png", photo, "image/png")
    root = await slack.user_says("U0ALICE", "D0ALICE", "what is this?", files=[shared])
    await wait_replies(slack, "D0ALICE", root)
    openai.script(Reply(calls=[FunctionCall("make_picture", {"prompt": "a fox"})]), Reply(), Reply(text="A fox."))
    await slack.user_says("U0ALICE", "D0ALICE", "draw a fox next to it", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)
    await app.processor.wait_idle()
    assert len(openai.image_requests()) == 1  # the bot's own picture is in the thread now

    await slack.user_says("U0ALICE", "D0ALICE", "what colour was my photo?", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=3)

    assert data_urls(openai.responses_requests()[-1]) == ["data:image/png;base64," + base64.b64encode(photo).decode()]


async def test_a_thread_longer_than_the_page_cap_is_rebuilt_from_the_capped_pages(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    root = slack.post_as_user("U0BOB", "C0GENERAL", "the first message")["ts"]
    for i in range(1, 2100):
        slack.post_as_user("U0ALICE", "C0GENERAL", f"reply {i}", thread_ts=root)

    await slack.user_says("U0BOB", "C0GENERAL", "<@U0BOT> summarise please", thread_ts=root)
    [text] = await wait_replies(slack, "C0GENERAL", root, timeout=30)

    pages = slack.calls_to("conversations.replies")
    assert len(pages) == 10 and all(int(c.params["limit"]) == 200 for c in pages)
    [request] = openai.responses_requests()
    contents = [item["content"] for item in request["input"]]
    assert contents[0] == "Bob: the first message" and contents[-1] == "Bob: summarise please"
    assert "Alice: reply 1999" in contents and "Alice: reply 2000" not in contents
    assert len(contents) == 2001
    assert "too long to load in full" in request["instructions"]
    assert "This thread is too long for me to load in full" in text


async def test_a_hung_download_ends_at_the_turn_deadline_and_frees_the_thread(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(OPENAI_TIMEOUT_SECONDS="1", TURN_TIMEOUT_SECONDS="1.5")
    slack.hold_downloads()  # Slack's file host takes the request and never answers
    notes = slack.add_file("notes.txt", b"meeting notes", "text/plain")
    root = await slack.user_says("U0ALICE", "D0ALICE", "read my notes", files=[notes])

    [text] = await wait_replies(slack, "D0ALICE", root, timeout=10)
    await app.processor.wait_idle()

    assert "This answer took longer than 1.5 seconds in all" in text
    assert "send your message again" in text
    assert await app.db.message_status("D0ALICE", root) == "timed_out"
    assert openai.responses_requests() == []

    follow_up = await slack.user_says("U0ALICE", "D0ALICE", "are you still there?", thread_ts=root)
    texts = await wait_replies(slack, "D0ALICE", root, count=2)
    await app.processor.wait_idle()  # the reply shows before its journal row is settled
    assert texts[-1] == "You said: Alice: are you still there?"
    assert await app.db.message_status("D0ALICE", follow_up) == "answered"
