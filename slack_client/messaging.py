"""Posting into Slack for the processor: replies (native stream or edited), notices, files."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from base_client import ReplyStream
from settings_modal import OPEN_SETTINGS_ACTION
from slack_client.edited_reply import PacedCalls, SlackReply, reply_metadata
from slack_client.formatting.text import escape
from slack_client.native_stream import NativeReply
from slack_client.pacing import ChannelPacer


class MessagingMixin:
    web: AsyncWebClient
    config: Any
    team_id: str

    reply_web: AsyncWebClient
    pacer: ChannelPacer
    live_messages: set[str]
    owner: str

    def reply_stream(self, channel_id: str, thread_id: str, live: bool = True, user_id: str = "") -> ReplyStream:
        config = self.config

        def edited() -> SlackReply:
            return SlackReply(
                self.reply_web, channel_id, thread_id, self.pacer, config.slack_max_retries, live,
                feedback=config.feedback_buttons, stop_button=True, registry=self.live_messages,
                owner=self.owner,
            )

        if not (live and config.slack_native_streaming and user_id):
            return edited()
        calls = PacedCalls(self.pacer, channel_id, config.slack_max_retries)
        return NativeReply(
            self.reply_web, channel_id, thread_id, calls, (self.team_id, user_id),
            config.feedback_buttons, edited,
        )

    async def send_message(self, channel_id: str, thread_id: str, text: str) -> str:
        # A notice can quote what people sent (a file name, a link): escaped, it mentions nobody.
        response = await self.web.chat_postMessage(
            channel=channel_id, thread_ts=thread_id, text=escape(text), metadata=reply_metadata("notice")
        )
        return response["ts"]

    async def send_welcome(self, channel_id: str, thread_id: str, user_id: str) -> None:
        command = self.config.settings_slash_command
        text = (
            f":wave: Welcome, <@{user_id}>! I answer in threads: reply in one to continue the "
            "conversation. You can pick the model, add custom instructions and more in your "
            f"settings, any time with `{command}`."
        )
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "elements": [{
                "type": "button", "action_id": OPEN_SETTINGS_ACTION,
                "text": {"type": "plain_text", "text": "Open settings"},
            }]},
        ]
        await self.web.chat_postMessage(
            channel=channel_id, thread_ts=thread_id, text=text, blocks=blocks,
            metadata=reply_metadata("welcome"),
        )

    async def update_message(self, channel_id: str, message_id: str, text: str) -> None:
        await self.web.chat_update(channel=channel_id, ts=message_id, text=escape(text))

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        await self.web.chat_delete(channel=channel_id, ts=message_id)

    async def upload_file(
        self, channel_id: str, thread_id: str, filename: str, content: bytes, title: str = ""
    ) -> str:
        response = await self.web.files_upload_v2(
            channel=channel_id, thread_ts=thread_id, filename=filename, content=content,
            title=title or filename,
        )
        return response["files"][0]["id"]
