"""Slack message events → `Message`s for the processor, and the rules for whom we answer.

DMs: every message from a person, answered in its thread. Channels: an @mention, and later
messages in a thread the bot takes part in. Slack sends a mention twice (`app_mention` and
`message`); the `message` copy is skipped here, and the processor's journal would drop a second
copy anyway.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from base_client import Attachment, Message
from slack_client.utilities import is_external, strip_mention

log = logging.getLogger(__name__)

# Edits, deletions, joins and the like are not questions.
ANSWERED_SUBTYPES = (None, "file_share", "thread_broadcast")


def is_from_person(event: dict[str, Any], bot_user_id: str) -> bool:
    """A message a person wrote: not a bot (us included), not an edit/delete/system subtype."""
    return (
        event.get("subtype") in ANSWERED_SUBTYPES
        and not event.get("bot_id")
        and bool(event.get("user"))
        and event.get("user") != bot_user_id
        and bool((event.get("text") or "").strip() or event.get("files"))
    )


def mentions(event: dict[str, Any], bot_user_id: str) -> bool:
    return f"<@{bot_user_id}" in (event.get("text") or "")


def to_message(event: dict[str, Any], event_id: str | None, bot_user_id: str, team_id: str = "") -> Message:
    files = tuple(
        Attachment(
            file_id=f["id"], name=f.get("name") or f["id"], mimetype=f.get("mimetype") or "",
            size=int(f.get("size") or 0), url=f.get("url_private_download") or f.get("url_private") or "",
            subtype=f.get("subtype") or "",
        )
        for f in event.get("files") or ()
        if f.get("id")
    )
    return Message(
        text=strip_mention(event.get("text") or "", bot_user_id),
        user_id=event["user"],
        channel_id=event["channel"],
        thread_id=event.get("thread_ts") or event["ts"],
        message_id=event["ts"],
        event_id=event_id,
        attachments=files,
        is_direct=event.get("channel_type") == "im",
        external=is_external(event, team_id),
    )


class MessageEventsMixin:
    bot_user_id: str
    team_id: str
    deliver: Callable[[Message], object]
    is_active_thread: Callable[[str, str], Awaitable[bool]]

    if TYPE_CHECKING:  # provided by AssistantMixin
        async def title_first_question(self, channel_id: str, thread_ts: str, text: str) -> None: ...

    async def on_message_event(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if not is_from_person(event, self.bot_user_id):
            return
        thread_ts = event.get("thread_ts")
        if event.get("channel_type") != "im":
            if mentions(event, self.bot_user_id) or not thread_ts:
                return  # mentions arrive as app_mention; other top-level chatter is not for us
            if not await self.is_active_thread(event["channel"], thread_ts):
                return
            self.deliver(to_message(event, body.get("event_id"), self.bot_user_id, self.team_id))
            return
        message = to_message(event, body.get("event_id"), self.bot_user_id, self.team_id)
        self.deliver(message)
        await self.title_first_question(message.channel_id, message.thread_id, message.text)

    async def on_app_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if is_from_person(event, self.bot_user_id):
            self.deliver(to_message(event, body.get("event_id"), self.bot_user_id, self.team_id))
