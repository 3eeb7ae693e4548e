"""Posting into Slack: notices, and `SlackReply`, a streamed answer edited in place.

A reply is one or more bot messages in a thread. One flusher task per reply turns the text so
far into mrkdwn, splits it at Slack's size limit and edits the messages, at most once per the
channel's interval (`STREAM_UPDATE_SECONDS`; Slack allows about one `chat.update` per second).

Rate limits are handled here rather than by the web client's retry handler, because the pace
is shared per channel (`ChannelPacer`): a 429 holds every reply of that channel until
`Retry-After` and slows its edits down. An intermediate frame that meets a 429 is skipped (the
next one carries the newer text); the placeholder, the final text and notices are retried after
`Retry-After`, up to `SLACK_MAX_RETRIES` times, so the answer always lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from base_client import ReplyOutcome, ReplyStream
from settings_modal import OPEN_SETTINGS_ACTION
from slack_client.formatting.text import (
    MAX_MESSAGE_CHARS,
    escape,
    markdown_to_mrkdwn,
    split_message,
)
from slack_client.pacing import ChannelPacer

log = logging.getLogger(__name__)

# Message metadata marks what the bot posted, so a history rebuild can tell answers from notices.
METADATA_EVENT = "assistant_reply"
PROGRESS_EMOJI = ":hourglass_flowing_sand:"
TYPING_SUFFIX = " ▍"


def reply_metadata(kind: str) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT, "event_payload": {"kind": kind}}


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asked us to wait, if `exc` is a rate limit (HTTP 429)."""
    if exc.response.status_code != 429:
        return None
    value = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after") or "1"
    if isinstance(value, list):
        value = value[0] if value else "1"
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


class SlackReply(ReplyStream):
    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        pacer: ChannelPacer,
        max_retries: int,
        live: bool = True,
        limit: int = MAX_MESSAGE_CHARS,
    ) -> None:
        self._live = live
        self._client = client  # without a 429 retry handler: 429s are paced here
        self._channel = channel
        self._thread_ts = thread_ts
        self._pacer = pacer
        self._max_retries = max_retries
        self._limit = limit
        self._markdown = ""
        self._status = ""
        self._ts: list[str] = []
        self._shown: list[tuple[str, str]] = []  # (text, kind) each message shows
        self._dirty = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._last_flush = 0.0
        # Held around every Slack call, so stopping the flusher never cuts a post in half
        # (a cancelled chat.postMessage may still land, as a message we would not know about).
        self._io = asyncio.Lock()

    # --- ReplyStream -------------------------------------------------------------------------

    async def start(self, status: str) -> None:
        self._status = status
        async with self._io:
            await self._show([self._status_line()], kind="progress", land=True)
        self._flusher = asyncio.create_task(
            self._flush_loop(), name=f"reply-flush:{self._channel}:{self._thread_ts}"
        )

    async def progress(self, status: str) -> None:
        if not self._markdown or not self._live:
            self._status = status
            self._dirty.set()

    async def append(self, delta: str) -> None:
        self._markdown += delta
        self._dirty.set()

    async def finish(self) -> ReplyOutcome:
        await self._stop_flusher()
        async with self._io:
            await self._show(self._render(final=True), kind="answer", land=True)
        return ReplyOutcome(list(self._ts))

    async def fail(self, notice: str) -> ReplyOutcome:
        await self._stop_flusher()
        chunks = self._render(final=True) if self._markdown.strip() else []
        # The notice is ours, not the model's: Slack text as is, not converted Markdown.
        if chunks and len(chunks[-1]) + len(notice) + 2 <= self._limit:
            chunks[-1] = f"{chunks[-1]}\n\n{notice}"
        else:
            chunks.append(notice)
        async with self._io:
            await self._show(chunks, kind="notice", land=True)
        return ReplyOutcome(list(self._ts))

    # --- rendering ---------------------------------------------------------------------------

    def _status_line(self) -> str:
        return f"{PROGRESS_EMOJI} {escape(self._status)}"

    def _render(self, final: bool) -> list[str]:
        if not self._markdown.strip() or not (final or self._live):
            return [self._status_line()]
        text = markdown_to_mrkdwn(self._markdown)
        return split_message(text if final else text + TYPING_SUFFIX, self._limit)

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            due = max(self._last_flush + self._pacer.interval(self._channel), self._pacer.clear_at(self._channel))
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.clear()
            try:
                async with self._io:
                    await self._show(self._render(final=False), kind="progress", land=False)
            except SlackApiError as exc:
                # An intermediate frame; the next one (or the final render) carries newer text.
                self._dirty.set()
                if retry_after(exc) is None:
                    log.warning("streaming update to %s failed: %s", self._channel, exc.response.get("error"))

    async def _stop_flusher(self) -> None:
        task, self._flusher = self._flusher, None
        if task is not None:
            async with self._io:
                task.cancel()
            for result in await asyncio.gather(task, return_exceptions=True):
                if isinstance(result, Exception):
                    log.error("reply flusher failed", exc_info=result)

    async def _show(self, chunks: list[str], kind: str, land: bool) -> None:
        """Make the reply's messages show `chunks`: edit what changed, post what is new.

        `land`: retry 429s after Retry-After instead of giving the frame up.
        """
        self._last_flush = time.monotonic()
        metadata = reply_metadata(kind)
        for index, chunk in enumerate(chunks):
            if index < len(self._ts):
                # The kind matters too: a finished answer's earlier parts must say "answer".
                if self._shown[index] != (chunk, kind):
                    await self._update(index, chunk, metadata, land)
                    self._shown[index] = (chunk, kind)
            else:
                ts = await self._post(chunk, metadata, land)
                self._ts.append(ts)
                self._shown.append((chunk, kind))
        # Fewer chunks than messages only happens when text shrank (e.g. a fence closed).
        while len(self._ts) > max(len(chunks), 1):
            await self._paced(land, lambda: self._client.chat_delete(channel=self._channel, ts=self._ts[-1]))
            self._ts.pop()
            self._shown.pop()

    async def _post(self, chunk: str, metadata: dict[str, Any], land: bool) -> str:
        response = await self._paced(land, lambda: self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, text=chunk, metadata=metadata
        ))
        return response["ts"]

    async def _update(self, index: int, chunk: str, metadata: dict[str, Any], land: bool) -> None:
        try:
            await self._paced(land, lambda: self._client.chat_update(
                channel=self._channel, ts=self._ts[index], text=chunk, metadata=metadata
            ))
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise
            # Someone deleted our message mid-answer: post the text anew rather than lose it.
            self._ts[index] = await self._post(chunk, metadata, land)

    async def _paced(self, land: bool, call: Callable[[], Awaitable[Any]]) -> Any:
        """One Slack call under the channel's pace; 429s are reported to the pacer."""
        attempts = 0
        while True:
            hold = self._pacer.clear_at(self._channel) - time.monotonic()
            if hold > 0:
                await asyncio.sleep(hold)
            try:
                result = await call()
            except SlackApiError as exc:
                wait = retry_after(exc)
                if wait is None:
                    raise
                self._pacer.rate_limited(self._channel, wait)
                if not land or attempts >= self._max_retries:
                    raise
                attempts += 1
                log.info("Slack rate-limited %s; retrying in %.0f s", self._channel, wait)
                continue
            self._pacer.succeeded(self._channel)
            return result


class MessagingMixin:
    web: AsyncWebClient
    config: Any

    reply_web: AsyncWebClient
    pacer: ChannelPacer

    def reply_stream(self, channel_id: str, thread_id: str, live: bool = True) -> SlackReply:
        return SlackReply(
            self.reply_web, channel_id, thread_id, self.pacer, self.config.slack_max_retries, live
        )

    async def send_message(self, channel_id: str, thread_id: str, text: str) -> str:
        response = await self.web.chat_postMessage(
            channel=channel_id, thread_ts=thread_id, text=text, metadata=reply_metadata("notice")
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
        await self.web.chat_update(channel=channel_id, ts=message_id, text=text)

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
