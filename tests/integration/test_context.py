"""What the model sees: trimming to the context window, and the platform client's file contract."""

from __future__ import annotations

import pytest

from base_client import Attachment, DownloadError, FileTooLarge
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies


async def test_long_threads_are_trimmed_oldest_first_and_the_model_is_told(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(OPENAI_CONTEXT_WINDOW="1200", OPENAI_MAX_OUTPUT_TOKENS="200")
    root = slack.post_as_user("U0BOB", "C0GENERAL", "topic zero " + "filler " * 150)["ts"]
    for i in range(1, 6):
        slack.post_as_user("U0ALICE", "C0GENERAL", f"topic {i} " + "filler " * 150, thread_ts=root)

    await slack.user_says("U0BOB", "C0GENERAL", "<@U0BOT> summarise please", thread_ts=root)
    await wait_replies(slack, "C0GENERAL", root)

    [request] = openai.responses_requests()
    contents = [item["content"] for item in request["input"]]
    assert contents[-1] == "Bob: summarise please"
    assert not any("topic zero" in c for c in contents)  # the oldest went first
    assert any("topic 5" in c for c in contents)  # the newest stayed
    assert "left out to fit" in request["instructions"]


async def test_short_threads_are_not_trimmed(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot()
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")
    await wait_replies(slack, "D0ALICE", ts)
    assert "left out" not in openai.responses_requests()[0]["instructions"]


async def test_files_go_up_into_the_thread_and_come_down_with_the_token_only_from_slack(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    root = slack.post_as_user("U0ALICE", "D0ALICE", "draw me something")["ts"]
    file_id = await app.client.upload_file("D0ALICE", root, "picture.png", b"\x89PNG fake", "A picture")
    [message] = slack.bot_messages("D0ALICE", root)
    assert message["files"][0]["id"] == file_id
    assert slack.file_bytes[file_id] == b"\x89PNG fake"

    shared = slack.add_file("notes.txt", b"meeting notes", "text/plain")
    attachment = Attachment(shared["id"], "notes.txt", "text/plain", shared["size"], shared["url_private"])
    assert await app.client.download_file(attachment, max_bytes=1000) == b"meeting notes"
    assert slack.downloads == [(shared["id"], True)]

    elsewhere = Attachment("F9", "x.txt", "text/plain", 5, "https://evil.example/slack.com/files/x.txt")
    with pytest.raises(DownloadError):
        await app.client.download_file(elsewhere, max_bytes=1000)
    with pytest.raises(FileTooLarge):
        await app.client.download_file(attachment, max_bytes=5)
    assert len(slack.downloads) == 1  # neither refused file was requested
