"""Reading the loopback Slack the way a person reads the thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_client import SlackBot
from slack_client.edited_reply import METADATA_EVENT
from tests.fakes.slack import FakeSlack

if TYPE_CHECKING:
    from main import AssistantApp

FINAL_KINDS = ("answer", "notice")


def kind(message: dict[str, Any]) -> str | None:
    return ((message.get("metadata") or {}).get("event_payload") or {}).get("kind")


def bot_replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    """The bot's progress, answers and notices in a thread (not the welcome, not file uploads)."""
    return [
        m for m in slack.thread(channel, thread_ts)
        if m.get("bot_id") == slack.bot_id and kind(m) in ("progress", *FINAL_KINDS)
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


async def wait_handled(slack: FakeSlack, app: AssistantApp, count: int, timeout: float = 5.0) -> None:
    """Until the bot's listeners have finished `count` runs since it started and every message
    they handed on is settled: what has not happened by then is not going to (for asserting
    that something did *not* happen, instead of sleeping).

    Events bolt drops before any listener (the bot's own messages) are not counted; they are
    done once acked (`slack.wait_for_ack`).
    """
    client = app.client
    assert isinstance(client, SlackBot)
    await slack.wait_for(
        lambda: client.handled >= count, timeout,
        f"the bot's listeners did not finish {count} runs",
    )
    await app.processor.wait_idle()


def leave_progress(
    slack: FakeSlack, channel: str, thread_ts: str, text: str = ":hourglass_flowing_sand: Thinking…"
) -> str:
    """A placeholder as a crashed bot process leaves it in a thread; returns its ts."""
    message = slack.post_as_user(slack.bot_user_id, channel, text, thread_ts=thread_ts)
    message["bot_id"] = slack.bot_id
    message["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"kind": "progress"}}
    return message["ts"]


def _turn(item: dict[str, Any]) -> str:
    """One turn as "role: text" (the text parts of a multi-part content joined)."""
    content = item["content"]
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content)
    return f"{item['role']}: {content}"


def user_inputs(request: dict[str, Any]) -> list[str]:
    """The conversation turns a Responses request carried, as plain strings."""
    return [_turn(item) for item in request["input"]]


def chat_turns(request: dict[str, Any]) -> list[str]:
    """The same for a Chat Completions request: its messages but the system one."""
    return [_turn(m) for m in request["messages"] if m["role"] != "system"]


def view_state(view: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`view.state.values` as Slack sends it: each input's initial value, with `changes` applied.

    Changes are keyed by block id; selects take the option value, `features` a list of values.
    """
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        block_id, element = block["block_id"], block["element"]
        kind, action = element["type"], element["action_id"]
        if kind in ("static_select", "radio_buttons"):
            value = changes.get(block_id, (element.get("initial_option") or {}).get("value"))
            state: dict[str, Any] = {"type": kind, "selected_option": {"value": value} if value else None}
        elif kind == "checkboxes":
            chosen = changes.get(block_id, [o["value"] for o in element.get("initial_options") or []])
            state = {"type": kind, "selected_options": [{"value": v} for v in chosen]}
        else:
            state = {"type": kind, "value": changes.get(block_id, element.get("initial_value"))}
        values[block_id] = {action: state}
    return values


def interaction(slack: FakeSlack, kind: str, user: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "team": {"id": slack.team_id}, "api_app_id": slack.app_id,
            "user": {"id": user, "team_id": slack.team_id}, "trigger_id": f"trigger-{user}", **fields}


def stop_click(slack: FakeSlack, user: str, channel: str, message: dict[str, Any]) -> dict[str, Any]:
    """A click by `user` on the Stop button of the bot's `message` (its last block's button)."""
    button = message["blocks"][-1]["elements"][0]
    return interaction(slack, "block_actions", user, channel={"id": channel},
                       container={"type": "message", "channel_id": channel, "message_ts": message["ts"]},
                       message=message, actions=[{**button, "type": "button", "block_id": "b"}])
