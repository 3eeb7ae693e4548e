"""Reading the loopback Slack the way a person reads the thread."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack import FakeSlack

FINAL_KINDS = ("answer", "notice")


def kind(message: dict[str, Any]) -> str | None:
    return ((message.get("metadata") or {}).get("event_payload") or {}).get("kind")


def bot_replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    """The bot's answers and notices in a thread (the one-time welcome aside)."""
    return [
        m for m in slack.thread(channel, thread_ts)
        if m.get("bot_id") == slack.bot_id and kind(m) != "welcome"
    ]


def welcomes(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.bot_messages(channel) if kind(m) == "welcome"]


def settled(slack: FakeSlack, channel: str, thread_ts: str, count: int) -> bool:
    """At least `count` finished bot messages and nothing still in progress."""
    replies = bot_replies(slack, channel, thread_ts)
    done = [m for m in replies if kind(m) in FINAL_KINDS]
    return len(done) >= count and all(kind(m) in FINAL_KINDS for m in replies)


async def wait_replies(
    slack: FakeSlack, channel: str, thread_ts: str, count: int = 1, timeout: float = 10.0
) -> list[str]:
    """Texts of the bot's messages in a thread, once `count` of them are final."""
    await slack.wait_for(
        lambda: settled(slack, channel, thread_ts, count),
        timeout=timeout,
        message=f"no settled reply in {channel}:{thread_ts}: {bot_replies(slack, channel, thread_ts)}",
    )
    return [m["text"] for m in bot_replies(slack, channel, thread_ts)]


def user_inputs(request: dict[str, Any]) -> list[str]:
    """The conversation turns a Responses request carried, as plain strings."""
    turns = []
    for item in request["input"]:
        content = item["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        turns.append(f"{item['role']}: {content}")
    return turns
