"""Slack's assistant surfaces: suggested prompts, thread titles, feedback, and stopping answers.

All best effort: a workspace without the assistant features (no `assistant:write`, an old
client) answers these calls with an error, which is logged, never shown to anyone.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from access import AccessPolicy
from config import Config

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]
PROMPTS_TITLE = "Try one of these:"
# Assistant threads opened but not yet titled; the oldest are forgotten past this many.
MAX_UNTITLED = 10_000
TITLE_CHARS = 60
FEEDBACK_THANKS = {
    "good": "Thanks for the feedback! Glad it helped.",
    "bad": "Thanks for the feedback. It helps us improve; you can also tell me what was wrong.",
}


def thread_title(text: str) -> str:
    """A short title from a first question: its first line, cut at a word."""
    line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else "New conversation"
    if len(line) <= TITLE_CHARS:
        return line
    return line[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"


class AssistantMixin:
    web: AsyncWebClient
    config: Config
    access: AccessPolicy
    record_feedback: Callable[[str, str, str, str], Awaitable[None]]
    # Stops the answer being written in a thread (channel, thread, who asks, the message a Stop
    # was pressed on, if any: a queued message's own); False: nothing of theirs to stop.
    stop_turn: Callable[[str, str, str, str | None], Awaitable[bool]]
    untitled_threads: OrderedDict[tuple[str, str], None]

    async def _suggest(self, user_id: str, channel_id: str, thread_ts: str | None) -> None:
        prompts = [{"title": p, "message": p} for p in self.config.suggested_prompts]
        if not prompts or self.access.person_refusal(user_id) is not None:
            return
        try:
            await self.web.assistant_threads_setSuggestedPrompts(
                channel_id=channel_id, thread_ts=thread_ts, title=PROMPTS_TITLE, prompts=prompts,
            )
        except SlackApiError as exc:
            log.info("no suggested prompts in %s: %s", channel_id, exc.response.get("error"))

    async def on_assistant_thread_started(self, event: dict[str, Any]) -> None:
        thread = event.get("assistant_thread") or {}
        if thread.get("channel_id") and thread.get("thread_ts"):
            self.untitled_threads[(thread["channel_id"], thread["thread_ts"])] = None
            while len(self.untitled_threads) > MAX_UNTITLED:
                self.untitled_threads.popitem(last=False)
            await self._suggest(thread.get("user_id", ""), thread["channel_id"], thread["thread_ts"])

    async def on_app_home_opened(self, event: dict[str, Any]) -> None:
        # The Messages tab is where people talk to the app; prompts there pin to its top.
        if event.get("tab") == "messages" and event.get("channel"):
            await self._suggest(event.get("user", ""), event["channel"], None)

    async def title_first_question(self, channel_id: str, thread_ts: str, text: str) -> None:
        """The first question of an assistant thread names it in Slack's list of conversations."""
        if (channel_id, thread_ts) not in self.untitled_threads:
            return  # not an assistant thread (a plain DM), or titled already
        del self.untitled_threads[(channel_id, thread_ts)]
        try:
            await self.web.assistant_threads_setTitle(
                channel_id=channel_id, thread_ts=thread_ts, title=thread_title(text)
            )
        except SlackApiError as exc:
            log.info("no title for %s:%s: %s", channel_id, thread_ts, exc.response.get("error"))

    async def on_feedback(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        value = action.get("value")
        channel_id = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message = body.get("message") or {}
        message_ts = message.get("ts") or (body.get("container") or {}).get("message_ts")
        user_id = (body.get("user") or {}).get("id")
        if value not in FEEDBACK_THANKS or not (channel_id and message_ts and user_id):
            log.warning("ignored a feedback click without value, message or person: %s", action)
            return
        await self.record_feedback(channel_id, message_ts, user_id, value)
        await self.web.chat_postEphemeral(
            channel=channel_id, user=user_id, thread_ts=message.get("thread_ts") or message_ts,
            text=FEEDBACK_THANKS[value],
        )

    async def on_agent_session_stopped(self, event: dict[str, Any]) -> None:
        """Slack's native stop button on an answer being streamed."""
        channel_id, thread_ts, user_id = event.get("channel"), event.get("thread_ts"), event.get("user")
        if not (channel_id and thread_ts and user_id):
            log.warning("ignored agent_session_stopped without channel, thread or person: %s", event)
            return
        if not await self.stop_turn(channel_id, thread_ts, user_id, None):
            log.info("nothing to stop in %s:%s for %s", channel_id, thread_ts, user_id)

    async def on_stop_button(self, ack: Ack, body: dict[str, Any]) -> None:
        """The Stop button of an edited answer (where Slack shows none of its own)."""
        await ack()
        action = (body.get("actions") or [{}])[0]
        channel_id = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        user_id = (body.get("user") or {}).get("id")
        thread_ts = action.get("value")
        if not (channel_id and thread_ts and user_id):
            log.warning("ignored a Stop click without channel, thread or person: %s", action)
            return
        # The message the button is on: a queued message's own placeholder stops that message.
        shown_as = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        if not await self.stop_turn(channel_id, thread_ts, user_id, shown_as):
            await self.web.chat_postEphemeral(
                channel=channel_id, user=user_id, thread_ts=thread_ts,
                text="There is no answer of yours being written here to stop.",
            )
