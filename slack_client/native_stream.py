"""`NativeReply`: an answer through Slack's AI surfaces, with edit-in-place as the fallback.

The progress indicator is the assistant status (`assistant.threads.setStatus`, with rotating
`loading_messages`), and the text goes through Slack's native streaming (`chat.startStream`,
`appendStream`, `stopStream`), which renders Markdown itself. Slack does not offer these
everywhere, so each step can hand over to a `SlackReply` (placeholder + `chat.update`):

- the status is refused (not an assistant thread, no `assistant:write`): edit-in-place from
  the start;
- `startStream` is refused (`channel_type_not_supported`, a missing scope...): the text so far
  moves into an edited placeholder;
- the stream expired (Slack ends streams after about 5 minutes: `message_not_in_streaming_state`):
  the streamed message is finished with `chat.update`, full text included.

One streamed message takes at most `STREAM_MESSAGE_CHARS` (Slack's per-call limit); a longer
answer rolls over into a new streamed message. The status is cleared on every path.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from base_client import ReplyOutcome, ReplyStream
from slack_client.edited_reply import FrameFlusher, PacedCalls, SlackReply, feedback_block, reply_metadata
from slack_client.formatting.safety import neutralize_controls
from slack_client.formatting.text import SafeMarkdown, escape, safe_markdown

log = logging.getLogger(__name__)

STREAM_MESSAGE_CHARS = 12_000
LOADING_MESSAGES = ("Thinking…", "Reading the conversation…", "Working on the answer…")
# Errors that say this workspace, channel or token cannot use the method at all.
UNSUPPORTED = frozenset({
    "channel_type_not_supported", "missing_scope", "not_allowed_token_type", "unknown_method",
    "method_deprecated", "feature_not_enabled", "not_enabled", "access_denied", "invalid_arguments",
})
EXPIRED = "message_not_in_streaming_state"


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "")


class NativeReply(ReplyStream):
    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        calls: PacedCalls,
        recipient: tuple[str, str],
        feedback: bool,
        fallback: Callable[[], SlackReply],
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._calls = calls
        self._team_id, self._user_id = recipient
        self._feedback = feedback
        self._make_fallback = fallback
        self._fallback: SlackReply | None = None
        self._status = ""
        # A status is showing: set, and no reply of ours in the thread since (Slack clears it
        # by itself when the app's reply lands, so only a status set after that needs clearing).
        self._status_shown = False
        self._safe = SafeMarkdown()
        self._text = ""  # the answer so far, as it is safe to show (Markdown, only grows)
        self._sent = 0  # how much of it is in streamed messages
        self._stream_ts: str | None = None
        self._stream_from = 0  # where the current streamed message begins in `_text`
        self._message_ids: list[str] = []
        self._chunks: list[dict[str, Any]] = []  # task_update chunks not sent yet
        self._flusher = FrameFlusher(
            calls, f"native-stream:{channel}:{thread_ts}", self._send_frame, self._frame_failed
        )

    # --- ReplyStream -------------------------------------------------------------------------

    async def start(self, status: str) -> None:
        self._status = status
        try:
            await self._calls.call(True, lambda: self._client.assistant_threads_setStatus(
                channel_id=self._channel, thread_ts=self._thread_ts, status=status,
                loading_messages=list(LOADING_MESSAGES),
            ))
        except SlackApiError as exc:
            log.info("no assistant status in %s (%s): editing a placeholder instead", self._channel, _error(exc))
            self._fallback = self._make_fallback()
            await self._fallback.start(status)
            return
        self._status_shown = True
        self._flusher.start()

    def shown_in(self) -> tuple[str, ...]:
        """Only an edited placeholder (the fallback) carries a Stop of this reply's own; a
        status is the thread's, and Slack's own stop names the thread."""
        return self._fallback.shown_in() if self._fallback is not None else ()

    async def progress(self, status: str) -> None:
        if self._fallback is not None:
            await self._fallback.progress(status)
        elif not self._text and status != self._status:
            self._status = status
            await self._set_status(status)

    async def append(self, delta: str) -> None:
        if self._fallback is not None:
            await self._fallback.append(delta)
            return
        self._text = self._safe.feed(delta)
        self._flusher.poke()

    async def step(self, step_id: str, title: str, status: str, detail: str = "",
                   sources: tuple[str, ...] = ()) -> None:
        """A task card in the stream (`task_update`), in line with the text."""
        if self._fallback is not None:
            await self._fallback.step(step_id, title, status, detail, sources)
            return
        chunk: dict[str, Any] = {"type": "task_update", "id": step_id, "title": neutralize_controls(title),
                                 "status": status}
        if detail:
            chunk["details"] = neutralize_controls(detail)
        if sources:
            chunk["sources"] = [{"type": "url", "url": url, "text": url} for url in sources[:10]]
        self._chunks.append(chunk)
        if status == "in_progress" and not self._text:
            await self.progress(title)
        self._flusher.poke()

    async def finish(self) -> ReplyOutcome:
        return await self._end(None)

    async def fail(self, notice: str) -> ReplyOutcome:
        return await self._end(notice)

    async def _end(self, notice: str | None) -> ReplyOutcome:
        """Stream what is left and stop: an answer gets the feedback buttons, a failure its notice."""
        await self._flusher.stop()
        kind = "answer" if notice is None else "notice"
        if self._fallback is None:
            self._text = self._safe.finish()
            async with self._flusher.io:
                try:
                    await self._push(land=True, leave_tail=True)
                    if self._stream_ts is not None:
                        # The rest of the text rides on stopStream: one call fewer per answer.
                        # Rendered as Markdown: the notice (which may quote a file name) made safe.
                        tail = self._text[self._sent:] + (f"\n\n{safe_markdown(notice)}" if notice else "")
                        await self._stop_stream(reply_metadata(kind), notice is None and self._feedback, tail)
                        self._sent = len(self._text)
                        notice = None
                except SlackApiError as exc:
                    await self._hand_over(exc)
        ids = list(self._message_ids)
        if self._fallback is not None:
            outcome = await (self._fallback.finish() if notice is None else self._fallback.fail(notice))
            ids += outcome.message_ids
        elif notice is not None:
            # Nothing was streamed: the notice is a message of its own.
            text = escape(notice)
            response = await self._calls.call(True, lambda: self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, text=text, metadata=reply_metadata(kind),
            ))
            ids.append(response["ts"])
            self._status_shown = False
        if self._status_shown:
            await self._set_status("")
        return ReplyOutcome(ids)

    # --- streaming ---------------------------------------------------------------------------

    async def _send_frame(self) -> None:
        if self._fallback is None:
            await self._push(land=False)

    async def _frame_failed(self, exc: SlackApiError) -> None:
        if exc.response.status_code != 429:  # a 429: the next frame carries this text too
            await self._hand_over(exc)

    async def _push(self, land: bool, leave_tail: bool = False) -> None:
        """Send the text not streamed yet: start, append, or roll over into a new message.

        `leave_tail`: what still fits in the open stream is left for the caller's stopStream.
        """
        self._flusher.sent()
        if self._chunks:
            await self._push_steps(land)
        while self._sent < len(self._text):
            room = STREAM_MESSAGE_CHARS - (self._sent - self._stream_from)
            if leave_tail and self._stream_ts is not None and len(self._text) - self._sent <= room:
                return
            if room <= 0:
                await self._stop_stream(reply_metadata("answer"), feedback=False)
                continue
            piece = self._text[self._sent:self._sent + room]
            await self._send(land, markdown_text=piece)
            self._sent += len(piece)

    async def _send(self, land: bool, **content: Any) -> None:
        """`content` (text or chunks) into the open stream, or a new streamed message."""
        if self._stream_ts is None:
            response = await self._calls.call(land, partial(
                self._client.chat_startStream, channel=self._channel, thread_ts=self._thread_ts,
                recipient_team_id=self._team_id, recipient_user_id=self._user_id, **content,
            ))
            self._stream_ts = response["ts"]
            self._stream_from = self._sent
            self._message_ids.append(response["ts"])
            self._status_shown = False  # the reply landed: Slack cleared the status
        else:
            await self._calls.call(land, partial(
                self._client.chat_appendStream, channel=self._channel, ts=self._stream_ts, **content,
            ))

    async def _push_steps(self, land: bool) -> None:
        """Send the task cards waiting (the text they come before follows in the same order)."""
        chunks, self._chunks = self._chunks, []
        try:
            await self._send(land, chunks=chunks)
        except SlackApiError:
            self._chunks = chunks + self._chunks  # the next frame carries them
            raise

    async def _stop_stream(self, metadata: dict[str, Any], feedback: bool, tail: str = "") -> None:
        if self._stream_ts is None:
            return
        ts = self._stream_ts
        blocks = [feedback_block()] if feedback else None
        await self._calls.call(True, lambda: self._client.chat_stopStream(
            channel=self._channel, ts=ts, metadata=metadata, blocks=blocks, markdown_text=tail or None,
        ))
        self._stream_ts = None
        self._stream_from = self._sent

    async def _hand_over(self, exc: SlackApiError) -> None:
        """Slack refused the stream (or it expired): edit-in-place takes the rest of the answer."""
        error = _error(exc)
        if error not in UNSUPPORTED and error != EXPIRED:
            raise exc
        fallback = self._make_fallback()
        if self._stream_ts is not None:
            # Expired: the streamed message is finished by editing it, from its first character.
            log.warning("native stream in %s expired; finishing it with chat.update", self._channel)
            self._message_ids.remove(self._stream_ts)
            fallback.adopt(self._stream_ts, self._text[self._stream_from:] + self._safe.held)
        else:
            log.info("native streaming refused in %s (%s): editing a message instead", self._channel, error)
            await fallback.start(self._status)
            await fallback.append(self._text[self._stream_from:] + self._safe.held)
        self._stream_ts = None
        self._fallback = fallback

    async def _set_status(self, status: str) -> None:
        """Best effort: Slack clears the status by itself when the reply lands."""
        try:
            await self._calls.call(False, lambda: self._client.assistant_threads_setStatus(
                channel_id=self._channel, thread_ts=self._thread_ts, status=status,
            ))
        except SlackApiError as exc:
            log.info("could not set the assistant status in %s: %s", self._channel, _error(exc))
            return
        self._status_shown = bool(status)
