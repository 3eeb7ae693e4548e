"""`SlackReply`: a streamed answer edited in place, and what every reply shares (pace, blocks).

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
from slack_client.formatting.text import (
    MAX_MESSAGE_CHARS,
    SECTION_CHARS,
    escape,
    markdown_to_mrkdwn,
    split_message,
)
from slack_client.pacing import ChannelPacer

log = logging.getLogger(__name__)

# Message metadata marks what the bot posted, so a history rebuild can tell answers from notices.
METADATA_EVENT = "assistant_reply"
PROGRESS_EMOJI = ":hourglass_flowing_sand:"
STEP_EMOJI = ":gear:"
FEEDBACK_ACTION = "answer_feedback"
STOP_ACTION = "stop_answer"
TYPING_SUFFIX = " ▍"


def render(markdown: str, limit: int = MAX_MESSAGE_CHARS, typing: bool = False) -> list[str]:
    """The model's Markdown as Slack messages. A conversion that fails (a bug, not the text's
    fault) still shows the text, escaped and unformatted, rather than leave the reply stuck."""
    suffix = TYPING_SUFFIX if typing else ""
    try:
        return split_message(markdown_to_mrkdwn(markdown) + suffix, limit)
    except Exception:
        log.exception("formatting failed; showing the answer unformatted")
        text = escape(markdown) + suffix
        return [text[i:i + limit] for i in range(0, len(text), limit)]


def reply_metadata(kind: str, owner: str = "") -> dict[str, Any]:
    """What the bot's messages carry: their kind, and for progress the instance writing it
    (`owner`), so that another instance taking a dead one's work over closes only its messages."""
    payload = {"kind": kind, "owner": owner} if owner and kind == "progress" else {"kind": kind}
    return {"event_type": METADATA_EVENT, "event_payload": payload}


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


class PacedCalls:
    """Slack calls into one channel under the pace all its replies share (see pacing.py)."""

    def __init__(self, pacer: ChannelPacer, channel: str, max_retries: int) -> None:
        self._pacer = pacer
        self._channel = channel
        self._max_retries = max_retries

    def due(self, last_call: float) -> float:
        """When the next intermediate frame may go, given when the last one went."""
        return max(last_call + self._pacer.interval(self._channel), self._pacer.clear_at(self._channel))

    async def call(self, land: bool, call: Callable[[], Awaitable[Any]]) -> Any:
        """One call; a 429 is reported to the pacer and, with `land`, retried after Retry-After."""
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


class FrameFlusher:
    """The one task per reply that sends its newest text, at most once per the channel's pace.

    `send_frame` renders and sends what is there now; `frame_failed` decides what a refused
    frame means. `io` is held around every Slack call of the reply, so stopping the task never
    cuts a call in half (a cancelled chat.postMessage may still land, as a message we would not
    know about).
    """

    def __init__(
        self, calls: PacedCalls, name: str, send_frame: Callable[[], Awaitable[None]],
        frame_failed: Callable[[SlackApiError], Awaitable[None]],
    ) -> None:
        self._calls = calls
        self._name = name
        self._send_frame = send_frame
        self._frame_failed = frame_failed
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.io = asyncio.Lock()
        self.last_sent = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    def poke(self) -> None:
        """There is newer text to show."""
        self._dirty.set()

    def sent(self) -> None:
        """A call just went out (frames are paced from it)."""
        self.last_sent = time.monotonic()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        async with self.io:
            task.cancel()
        for result in await asyncio.gather(task, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("%s failed", self._name, exc_info=result)

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            wait = self._calls.due(self.last_sent) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.clear()
            async with self.io:
                try:
                    await self._send_frame()
                except SlackApiError as exc:
                    self._dirty.set()  # the next frame carries this text, and newer
                    await self._frame_failed(exc)


def feedback_block() -> dict[str, Any]:
    """Thumbs up/down under an answer (Slack's `feedback_buttons` in a `context_actions` block)."""
    def button(value: str, label: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": label}, "accessibility_label": label, "value": value}

    return {"type": "context_actions", "elements": [{
        "type": "feedback_buttons", "action_id": FEEDBACK_ACTION,
        "positive_button": button("good", "Good answer"),
        "negative_button": button("bad", "Bad answer"),
    }]}


def progress_blocks(chunk: str, thread_ts: str) -> list[dict[str, Any]]:
    """An answer still being written, with a Stop button under it (Slack shows no stop button
    of its own for an edited message)."""
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": part}}
                for part in split_message(chunk, SECTION_CHARS)]
    stop = {"type": "button", "action_id": STOP_ACTION, "value": thread_ts,
            "text": {"type": "plain_text", "text": "Stop"}}
    return [*sections, {"type": "actions", "elements": [stop]}]


def answer_blocks(chunk: str) -> list[dict[str, Any]]:
    """The last part of an answer as blocks (mrkdwn sections of at most 3000 chars) + feedback."""
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": part}}
                for part in split_message(chunk, SECTION_CHARS)]
    return [*sections, feedback_block()]


class SlackReply(ReplyStream):
    """A reply edited in place: a placeholder with the status, then the text as it grows."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        pacer: ChannelPacer,
        max_retries: int,
        live: bool = True,
        feedback: bool = False,
        limit: int = MAX_MESSAGE_CHARS,
        stop_button: bool = False,
        registry: set[str] | None = None,
        owner: str = "",
    ) -> None:
        self._live = live
        self._owner = owner
        # Shared by the bot's replies: the messages being written now (never closed as stale).
        self._registry = registry if registry is not None else set()
        self._feedback = feedback
        self._client = client  # without a 429 retry handler: 429s are paced here
        self._channel = channel
        self._thread_ts = thread_ts
        self._calls = PacedCalls(pacer, channel, max_retries)
        self._flusher = FrameFlusher(
            self._calls, f"reply-flush:{channel}:{thread_ts}", self._send_frame, self._frame_failed
        )
        self._limit = limit
        self._markdown = ""
        self._status = ""
        self._steps: dict[str, str] = {}  # running tool steps: id → title
        self._stop_button = stop_button
        self._with_button: set[int] = set()  # which of the messages carry the Stop button
        self._ts: list[str] = []
        self._shown: list[tuple[str, str]] = []  # (text, kind) each message shows

    # --- ReplyStream -------------------------------------------------------------------------

    async def start(self, status: str) -> None:
        self._status = status
        async with self._flusher.io:
            await self._show([self._status_line()], kind="progress", land=True)
        self._flusher.start()

    def shown_in(self) -> tuple[str, ...]:
        return tuple(self._ts)

    def adopt(self, ts: str, markdown: str) -> None:
        """Carry on in a message another reply began (an expired native stream): it will show
        `markdown` and whatever is appended next."""
        self._ts, self._shown = [ts], [("", "progress")]
        self._registry.add(ts)
        self._markdown = markdown
        self._flusher.poke()
        self._flusher.start()

    async def progress(self, status: str) -> None:
        if not self._markdown or not self._live:
            self._status = status
            self._flusher.poke()

    async def append(self, delta: str) -> None:
        self._markdown += delta
        self._flusher.poke()

    async def step(self, step_id: str, title: str, status: str, detail: str = "",
                   sources: tuple[str, ...] = ()) -> None:
        """The running step is shown on a line of its own above the text (or as the status)."""
        if status == "in_progress":
            self._steps[step_id] = title
        else:
            self._steps.pop(step_id, None)
        if not self._markdown.strip() or not self._live:
            self._status = next(reversed(self._steps.values()), self._status)
        self._flusher.poke()

    async def finish(self) -> ReplyOutcome:
        await self._flusher.stop()
        try:
            async with self._flusher.io:
                await self._show(self._render(final=True), kind="answer", land=True, footer=self._feedback)
        finally:
            self._registry.difference_update(self._ts)
        return ReplyOutcome(list(self._ts))

    async def fail(self, notice: str) -> ReplyOutcome:
        await self._flusher.stop()
        chunks = self._render(final=True) if self._markdown.strip() else []
        # The notice is ours, not the model's Markdown, but it may quote a file name or a link:
        # escaped, so nothing in it is a mention.
        notice = escape(notice)
        if chunks and len(chunks[-1]) + len(notice) + 2 <= self._limit:
            chunks[-1] = f"{chunks[-1]}\n\n{notice}"
        else:
            chunks.append(notice)
        try:
            async with self._flusher.io:
                await self._show(chunks, kind="notice", land=True)
        finally:
            self._registry.difference_update(self._ts)
        return ReplyOutcome(list(self._ts))

    # --- rendering ---------------------------------------------------------------------------

    def _status_line(self) -> str:
        return f"{PROGRESS_EMOJI} {escape(self._status)}"

    def _render(self, final: bool) -> list[str]:
        if not self._markdown.strip() or not (final or self._live):
            return [self._status_line()]
        if final or not self._steps:
            return render(self._markdown, self._limit, typing=not final)
        line = f"{STEP_EMOJI} {escape(next(reversed(self._steps.values())))}\n"
        chunks = render(self._markdown, self._limit - len(line), typing=True)
        chunks[-1] = line + chunks[-1]
        return chunks

    async def _send_frame(self) -> None:
        await self._show(self._render(final=False), kind="progress", land=False)

    async def _frame_failed(self, exc: SlackApiError) -> None:
        # An intermediate frame; the next one (or the final render) carries newer text.
        if retry_after(exc) is None:
            log.warning("streaming update to %s failed: %s", self._channel, exc.response.get("error"))

    async def _show(self, chunks: list[str], kind: str, land: bool, footer: bool = False) -> None:
        """Make the reply's messages show `chunks`: edit what changed, post what is new.

        `land`: retry 429s after Retry-After instead of giving the frame up. `footer`: the last
        message also gets the feedback buttons (as blocks, so its text goes in sections).
        """
        self._flusher.sent()
        metadata = reply_metadata(kind, self._owner)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            blocks = None
            if footer and last:
                blocks = answer_blocks(chunk)
            elif kind == "progress" and last and self._stop_button:
                blocks = progress_blocks(chunk, self._thread_ts)
            # A message that had the Stop button loses it (an empty list clears blocks).
            clear = blocks is None and index in self._with_button
            if index < len(self._ts):
                # The kind matters too: a finished answer's earlier parts must say "answer".
                if self._shown[index] != (chunk, kind) or (blocks and kind != "progress") or clear:
                    await self._update(index, chunk, metadata, land, [] if clear else blocks)
                    self._shown[index] = (chunk, kind)
            else:
                ts = await self._post(chunk, metadata, land, blocks)
                self._ts.append(ts)
                self._shown.append((chunk, kind))
            if kind == "progress" and blocks is not None:
                self._with_button.add(index)
            elif blocks is not None or clear:
                self._with_button.discard(index)
        # Fewer chunks than messages only happens when text shrank (e.g. a fence closed).
        while len(self._ts) > max(len(chunks), 1):
            await self._calls.call(land, lambda: self._client.chat_delete(channel=self._channel, ts=self._ts[-1]))
            self._registry.discard(self._ts.pop())
            self._shown.pop()

    async def _post(
        self, chunk: str, metadata: dict[str, Any], land: bool, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        response = await self._calls.call(land, lambda: self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, text=chunk, metadata=metadata, blocks=blocks
        ))
        self._registry.add(response["ts"])
        return response["ts"]

    async def _update(
        self, index: int, chunk: str, metadata: dict[str, Any], land: bool,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        try:
            await self._calls.call(land, lambda: self._client.chat_update(
                channel=self._channel, ts=self._ts[index], text=chunk, metadata=metadata, blocks=blocks
            ))
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise
            # Someone deleted our message mid-answer: post the text anew rather than lose it.
            self._registry.discard(self._ts[index])
            self._ts[index] = await self._post(chunk, metadata, land, blocks)
