"""What the model writes and what people name their files cannot ping, spoof or stick a reply.

Checked on what the loopback Slack received, over both reply paths (edited and native)."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

import slack_client.edited_reply as edited_reply
from slack_client.formatting.safety import honest_label
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import kind, wait_replies

# A mention or broadcast, or a labelled link to anything but the web and mail.
CONTROL = re.compile(r"<(?:[!@#]|(?!https?://|mailto:)[a-zA-Z][\w+.-]*:[^>]*\|)")
LINK = re.compile(r"<((?:https?://|mailto:)[^|>]+)\|([^>]*)>")


def spoofing(text: str) -> list[str]:
    """Labelled links whose label names another address than where they lead."""
    return [m.group(0) for m in LINK.finditer(text) if honest_label(m.group(2), m.group(1)) != m.group(2)]
POSTING = ("chat.postMessage", "chat.update", "chat.postEphemeral",
           "chat.startStream", "chat.appendStream", "chat.stopStream")
HOSTILE_ANSWER = (
    "Sure. [click here](!channel), [boss](@U0BOSS), <!here>, <!subteam^S1|team>, <#C0GENERAL>\n"
    "Your bank: [https://bank.com](https://evil.example/login) and ![x](!everyone)\n"
    "private use \ue0017\ue001 stays\n"
    "```\n<!channel> in code\n```"
)
PATHS = pytest.mark.parametrize("native", [False, True], ids=["edited", "native"])


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def bot_texts(slack: FakeSlack) -> list[str]:
    """Every text the bot sent Slack to show (blocks and stream chunks included), but the
    welcome, whose `<@person>` the bot writes itself."""
    texts = []
    for call in slack.calls:
        if call.method in POSTING and kind(call.params) != "welcome":
            params = {k: v for k, v in call.params.items() if k in ("text", "markdown_text", "blocks", "chunks")}
            texts.extend(strings(params))
    return texts


@PATHS
async def test_hostile_model_text_pings_nobody_and_shows_real_link_targets(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, native: bool
):
    await start_bot(SLACK_NATIVE_STREAMING=str(native).lower())
    openai.script(Reply(text=HOSTILE_ANSWER, chunk_size=7, chunk_delay=0.01))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "where do I log in?")

    [shown] = await wait_replies(slack, "D0ALICE", ts)

    texts = bot_texts(slack)
    assert texts and not [t for t in texts if CONTROL.search(t) or spoofing(t)]
    assert "evil.example" in shown and "bank.com" not in shown
    assert "click here" in shown and "\ue0017\ue001 stays" in shown
    assert all(call.params.get("unfurl_links") is False and call.params.get("unfurl_media") is False
               for call in slack.calls_to("chat.postMessage"))


@PATHS
async def test_hostile_file_names_in_notices_ping_nobody(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, native: bool
):
    await start_bot(SLACK_NATIVE_STREAMING=str(native).lower())
    names = ["[Q3](!channel).bin", "<!here>.bin", "[bank.com](https://evil.example).bin"]
    files = [slack.add_file(name, b"\x00\x01", "application/octet-stream") for name in names]
    only_files = await slack.user_says("U0ALICE", "D0ALICE", "", files=files)
    [notice] = await wait_replies(slack, "D0ALICE", only_files)

    files = [slack.add_file(name, b"\x00\x01", "application/octet-stream") for name in names]
    with_question = await slack.user_says("U0ALICE", "D0ALICE", "read these", files=files)
    [answer] = await wait_replies(slack, "D0ALICE", with_question)

    assert "Q3" in notice and "Q3" in answer
    assert not [t for t in bot_texts(slack) if CONTROL.search(t) or spoofing(t)]


async def test_slack_unfurl_turns_previews_back_on(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(SLACK_UNFURL="true")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "https://example.com")
    await wait_replies(slack, "D0ALICE", ts)
    posts = slack.calls_to("chat.postMessage")
    assert posts and all(c.params["unfurl_links"] is True and c.params["unfurl_media"] is True for c in posts)


async def test_a_formatter_failure_still_ends_in_the_answer_text(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, monkeypatch: pytest.MonkeyPatch
):
    def broken(markdown: str) -> str:
        raise IndexError("a formatter bug")

    monkeypatch.setattr(edited_reply, "markdown_to_mrkdwn", broken)
    await start_bot()
    openai.script(Reply(text="the **answer** <!channel>", chunk_size=5, chunk_delay=0.01))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    assert await wait_replies(slack, "D0ALICE", ts) == ["the **answer** &lt;!channel&gt;"]


async def test_a_formatter_failure_in_a_native_stream_still_ends_in_the_answer_text(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, monkeypatch: pytest.MonkeyPatch
):
    import slack_client.formatting.text as text

    def broken(line: str) -> str:
        raise IndexError("a formatter bug")

    monkeypatch.setattr(text, "_safe_markdown_line", broken)
    await start_bot(SLACK_NATIVE_STREAMING="true")
    openai.script(Reply(text="the answer [x](!channel) <!here>\nsecond line", chunk_size=5, chunk_delay=0.01))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    [shown] = await wait_replies(slack, "D0ALICE", ts)
    assert shown.startswith("the answer [x] (!channel)") and shown.endswith("second line")
    assert not [t for t in bot_texts(slack) if CONTROL.search(t)]
