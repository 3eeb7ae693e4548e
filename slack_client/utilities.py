"""Reading from Slack: people, thread history, shared files."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from base_client import (
    Attachment,
    DownloadError,
    FileTooLarge,
    HistoryMessage,
    Role,
    UntrustedFileUrl,
    ThreadHistory,
    UserInfo,
)
from slack_client.edited_reply import METADATA_EVENT, reply_metadata
from slack_client.formatting.text import escape

if TYPE_CHECKING:
    from config import Config

HISTORY_PAGE_SIZE = 200
SLACK_FILE_HOST = "files.slack.com"


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL with no credentials in it; None when it cannot be read."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unclosed "[" or a port out of range: not a URL to trust
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port if port is not None else {"https": 443, "http": 80}.get(scheme, 0)


def is_slack_file_url(url: str, api_url: str) -> bool:
    """Whether the bot token may go to `url`: https to files.slack.com, or the configured API.

    The configured SLACK_API_URL (scheme, host and port) is trusted as it is: it is where the
    token goes anyway (GovSlack, the loopback test bed). Anything else, `http://files.slack.com`
    included, gets no token.
    """
    origin = _origin(url)
    return origin is not None and origin in (("https", SLACK_FILE_HOST, 443), _origin(api_url))


def strip_mention(text: str, bot_user_id: str) -> str:
    """Remove the bot's own @mention (it addresses the bot; it is not part of the question)."""
    return re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text).strip()


def is_external(item: dict[str, Any], team_id: str) -> bool:
    """Written by someone of another organization (Slack Connect): their `user_team` is not ours."""
    team = item.get("user_team") or item.get("team")
    return bool(team and team_id and team != team_id)


def history_message(
    item: dict[str, Any], bot_user_id: str, bot_id: str, team_id: str = ""
) -> HistoryMessage | None:
    """One `conversations.replies` message as a turn; None for what is not a conversation turn."""
    if item.get("subtype") not in (None, "file_share", "thread_broadcast", "bot_message"):
        return None
    text = item.get("text") or ""
    from_us = item.get("bot_id") == bot_id or item.get("user") == bot_user_id
    if from_us:
        metadata = item.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        kind = payload.get("kind")
        is_ours = metadata.get("event_type") == METADATA_EVENT
        return HistoryMessage(
            item["ts"], Role.ASSISTANT, text, bot_user_id, not is_ours or kind == "answer",
            kind if is_ours else None, owner=payload.get("owner") if is_ours else None,
        )
    if item.get("bot_id"):
        name = item.get("username") or (item.get("bot_profile") or {}).get("name") or "another bot"
        return HistoryMessage(item["ts"], Role.USER, text, None, outsider=True, author=name)
    return HistoryMessage(
        item["ts"], Role.USER, strip_mention(text, bot_user_id), item.get("user"),
        outsider=is_external(item, team_id),
    )


class UtilitiesMixin:
    web: AsyncWebClient
    bot_user_id: str
    bot_id: str
    team_id: str
    config: Config
    live_messages: set[str]

    async def get_user_info(self, user_id: str) -> UserInfo:
        response = await self.web.users_info(user=user_id)
        user = response["user"]
        profile = user.get("profile") or {}
        name = (
            profile.get("display_name") or profile.get("real_name") or user.get("real_name")
            or user.get("name") or user_id
        )
        return UserInfo(user_id, name, user.get("tz") or "UTC")

    async def get_thread_history(
        self, channel_id: str, thread_id: str, limit: int | None = None
    ) -> ThreadHistory:
        """`conversations.replies`, page by page (oldest first): at most ceil(limit / 200)
        pages, so a huge thread costs a bounded number of calls (Tier 3: ~50 a minute)."""
        max_pages = None if limit is None else max(1, math.ceil(limit / HISTORY_PAGE_SIZE))
        messages: list[HistoryMessage] = []
        cursor: str | None = None
        pages = 0
        while True:
            response = await self.web.conversations_replies(
                channel=channel_id, ts=thread_id, limit=HISTORY_PAGE_SIZE, cursor=cursor,
                include_all_metadata=True,
            )
            pages += 1
            items: list[dict[str, Any]] = response.get("messages", [])
            for item in items:
                turn = history_message(item, self.bot_user_id, self.bot_id, self.team_id)
                if turn is not None:
                    messages.append(turn)
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not response.get("has_more") or not cursor:
                return ThreadHistory(messages)
            if max_pages is not None and pages >= max_pages:
                return ThreadHistory(messages, complete=False)

    async def close_stale_progress(
        self, channel_id: str, thread_id: str, notice: str, owner: str | None = None
    ) -> int:
        """Progress messages left by a process that died; those this process is writing are
        alive, and never touched. With `owner`, only that dead instance run's (and untagged
        ones, from before messages named their instance): another live instance's are alive."""
        closed = 0
        # The whole thread: a stale progress message is among its newest (only after a crash).
        for item in (await self.get_thread_history(channel_id, thread_id)).messages:
            if owner is not None and item.owner not in (None, owner):
                continue
            if item.kind == "progress" and item.message_id not in self.live_messages:
                await self.web.chat_update(
                    channel=channel_id, ts=item.message_id, text=escape(notice), metadata=reply_metadata("notice")
                )
                closed += 1
        return closed

    async def download_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        if attachment.size > max_bytes:
            raise FileTooLarge(f"{attachment.name} is {attachment.size} bytes (limit {max_bytes})")
        if not is_slack_file_url(attachment.url, self.config.slack_api_url):
            raise UntrustedFileUrl(
                f"refusing to send the bot token to {attachment.url!r}: not https to {SLACK_FILE_HOST}"
            )
        headers = {"Authorization": f"Bearer {self.web.token}"}
        timeout = aiohttp.ClientTimeout(total=60)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                # No automatic redirects: each hop would get the token without our host check.
                async with session.get(attachment.url, headers=headers, allow_redirects=False) as response:
                    if response.status != 200:
                        raise DownloadError(f"Slack answered {response.status} for {attachment.name}")
                    data = bytearray()
                    async for block in response.content.iter_chunked(64 * 1024):
                        data.extend(block)
                        if len(data) > max_bytes:
                            raise FileTooLarge(f"{attachment.name} is larger than {max_bytes} bytes")
                    return bytes(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownloadError(f"downloading {attachment.name} failed: {exc}") from exc
