"""`ConsoleClient`: the processor from a terminal (`python main.py --console`), without Slack.

A second `BaseClient` next to `slack_client`: it tries models, prompts and settings against the
same `MessageProcessor`, and shows that the processor needs nothing from Slack. One console
session is one conversation (channel `console`, a thread started by the first line; `/new` starts
another). Each line read from stdin becomes a `Message`, delivered like Slack's; the next line is
delivered once that answer is done, as a person waits for a reply (lines typed meanwhile wait in
order, instead of meeting the busy-thread notice). Answers go to stdout, streamed as they arrive;
statuses, the prompt and notes go to stderr, so stdout holds only the conversation.

stdin is read by a daemon thread with `os.read` (never on the event loop, and never holding the
lock of `sys.stdin`'s buffer, which would abort the interpreter's exit while the thread waits).
End of input (Ctrl-D) or `/quit` calls `on_end`: `main.py` then stops as on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from base_client import (
    Attachment,
    BaseClient,
    DownloadError,
    Message,
    ReplyOutcome,
    ReplyStream,
    ThreadHistory,
    UserInfo,
)

log = logging.getLogger(__name__)

CHANNEL_ID = "console"
NEW_COMMAND = "/new"
QUIT_COMMANDS = ("/quit", "/exit")
PROMPT = "you> "
READ_BYTES = 64 * 1024

# Accepts a message; returns its answer's task (awaited before the next line), None if refused.
Deliver = Callable[[Message], "asyncio.Future[Any] | None"]


# The end of a text that may be the start of a shortcode (":hourglass_flow…"), held back until
# the rest arrives.
_OPEN_SHORTCODE = re.compile(r":[a-z0-9_+-]{0,40}$")
_CLOSED_SHORTCODE = re.compile(r":[a-z0-9_+-]{1,40}:$")


def with_emoji(text: str) -> str:
    """Slack's shortcodes (`:warning:`, `:gear:`) as the characters a terminal can show."""
    if ":" not in text:
        return text
    import emoji  # only the console pays for its tables (~0.05 s, some MB), not the Slack bot

    return emoji.emojize(text, language="alias")


def split_open_shortcode(text: str) -> tuple[str, str]:
    """(what can be shown now, a trailing piece that may be half of a shortcode)."""
    match = _OPEN_SHORTCODE.search(text)
    if match is None or (match.group() == ":" and _CLOSED_SHORTCODE.search(text)):
        return text, ""  # nothing open, or the colon closes one (":wave:")
    return text[: match.start()], text[match.start():]


def local_timezone() -> str:
    """The machine's IANA zone name (`TZ`, else where /etc/localtime points), else UTC."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    target = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in target:
        candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return name
    return "UTC"


class Terminal:
    """Where the console writes: the conversation on `out`, statuses on `err`.

    On a terminal (`in_place`) the status is one line rewritten in place and wiped before text;
    elsewhere (a pipe, a log) each new status is a line of its own. Shortcodes are shown as
    emoji; a streamed piece that ends in what may be half of one waits for the next piece.
    """

    def __init__(self, out: TextIO, err: TextIO, in_place: bool | None = None) -> None:
        self.out = out
        self.err = err
        self.in_place = _isatty(err) if in_place is None else in_place
        self._status = ""  # shown on err, not yet wiped (in place) / last printed (lines)
        self._line_open = False  # `out` has text after its last newline
        self._held = ""  # the end of the streamed text, not shown yet (maybe half a shortcode)

    def write(self, text: str) -> None:
        """Conversation text as it comes (a streamed delta: no newline added)."""
        ready, self._held = split_open_shortcode(self._held + text)
        self._show(ready)

    def _show(self, text: str) -> None:
        if not text:
            return
        self.clear_status()
        self.out.write(with_emoji(text))
        self.out.flush()
        self._line_open = not text.endswith("\n")

    def line(self, text: str) -> None:
        """A whole line of conversation (a notice, a saved file), on a fresh line."""
        self.end_line()
        self._show(text + "\n")

    def end_line(self) -> None:
        """End the text written so far with a newline, if it has none."""
        held, self._held = self._held, ""
        self._show(held)
        if self._line_open:
            self._show("\n")

    def status(self, text: str) -> None:
        if text == self._status:
            return
        self._status = text
        if self.in_place:
            self.err.write(f"\r\033[K· {with_emoji(text)}")
        else:
            self.err.write(f"· {with_emoji(text)}\n")
        self.err.flush()

    def clear_status(self) -> None:
        if self._status and self.in_place:
            self.err.write("\r\033[K")
            self.err.flush()
        self._status = ""

    def note(self, text: str) -> None:
        """A remark of the console itself (not the bot's), on stderr."""
        self.clear_status()
        self.err.write(f"{with_emoji(text)}\n")
        self.err.flush()

    def prompt(self) -> None:
        self.clear_status()
        self.err.write(PROMPT)
        self.err.flush()


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ConsoleReply(ReplyStream):
    """One answer printed to the terminal: statuses until text comes, then the text.

    `live`: each delta is printed as it arrives (appended, nothing printed twice); otherwise the
    whole text is printed at the end. Either way the answer ends with a newline.
    """

    def __init__(self, terminal: Terminal, live: bool = True, reply_id: str = "") -> None:
        self._terminal = terminal
        self._live = live
        self._id = reply_id
        self._parts: list[str] = []
        self._ended = False

    async def start(self, status: str) -> None:
        self._terminal.status(status)

    async def progress(self, status: str) -> None:
        # Once text shows, the text is the progress (as in Slack).
        if not self._ended and not (self._live and self._parts):
            self._terminal.status(status)

    async def append(self, delta: str) -> None:
        if self._ended or not delta:
            return
        self._parts.append(delta)
        if self._live:
            self._terminal.write(delta)

    async def finish(self) -> ReplyOutcome:
        self._end(notice=None)
        return self._outcome()

    async def fail(self, notice: str) -> ReplyOutcome:
        """The partial text stays; the notice follows on a line of its own."""
        self._end(notice)
        return self._outcome()

    def _end(self, notice: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        terminal = self._terminal
        if not self._live:
            terminal.write("".join(self._parts))
        terminal.end_line()
        if notice:
            terminal.line(notice)
        terminal.clear_status()

    def _outcome(self) -> ReplyOutcome:
        return ReplyOutcome([self._id] if self._id else [])


class ConsoleClient(BaseClient):
    """The `BaseClient` of a terminal session: stdin in, stdout out, one person, one thread."""

    def __init__(
        self,
        deliver: Deliver,
        on_end: Callable[[], None],
        input_fd: int = 0,
        out: TextIO | None = None,
        err: TextIO | None = None,
        user_name: str | None = None,
        save_dir: Path | None = None,
    ) -> None:
        self._deliver = deliver
        self._on_end = on_end
        self._input_fd = input_fd
        self.terminal = Terminal(out or sys.stdout, err or sys.stderr)
        self.user_name = user_name or os.environ.get("USER") or os.environ.get("USERNAME") or "you"
        # Not a Slack id, so console turns and settings never mix with a Slack person's.
        self.user_id = f"console:{self.user_name}"
        self._save_dir = save_dir  # None: the working directory at the time of saving
        self.thread_id: str | None = None  # set by the first line of a conversation
        self._last_us = 0
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._session: asyncio.Task[None] | None = None
        self.reader: threading.Thread | None = None
        self._interactive = False

    # --- lifecycle (as SlackBot's) -----------------------------------------------------------

    async def start(self) -> None:
        """Start reading stdin and answering its lines."""
        loop = asyncio.get_running_loop()
        self._interactive = os.isatty(self._input_fd)
        self.reader = threading.Thread(
            target=_read_lines, args=(self._input_fd, loop, self._lines), name="console-stdin", daemon=True
        )
        self.reader.start()
        if self._interactive:
            self.terminal.note(
                f"Chatting as {self.user_name}. {NEW_COMMAND} starts a new conversation; "
                f"{QUIT_COMMANDS[0]} or Ctrl-D ends."
            )
        self._session = asyncio.create_task(self._run_session(), name="console-session")

    @property
    def lines_waiting(self) -> int:
        """Lines read but not yet taken by the session (end of input counts as one)."""
        return self._lines.qsize()

    async def socket_connected(self) -> bool:
        return True  # no connection to lose: the health endpoint reports the console as up

    async def stop_receiving(self) -> None:
        """No more lines become messages (answers in flight are the processor's to settle)."""
        task, self._session = self._session, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        # The stdin thread is a daemon blocked in read(): it ends with the process.
        await self.stop_receiving()

    # --- the session -------------------------------------------------------------------------

    async def _run_session(self) -> None:
        try:
            while True:
                if self._interactive:
                    self.terminal.prompt()
                line = await self._lines.get()
                if line is None:
                    if self._interactive:
                        self.terminal.note("")  # leave the shell's prompt on a line of its own
                    return
                text = line.strip()
                if text in QUIT_COMMANDS:
                    return
                if text == NEW_COMMAND:
                    self.thread_id = None
                    self.terminal.note("(new conversation)")
                elif text:
                    await self._ask(text)
        finally:
            self._on_end()

    async def _ask(self, text: str) -> None:
        """Deliver one line and wait until its answer is done."""
        message_id = self._new_id()
        self.thread_id = self.thread_id or message_id
        answer = self._deliver(Message(
            text=text, user_id=self.user_id, channel_id=CHANNEL_ID, thread_id=self.thread_id,
            message_id=message_id, is_direct=True,
        ))
        if answer is not None:
            await asyncio.wait([answer])  # never raises: a failed answer was told and logged

    def _new_id(self) -> str:
        """A Slack-like timestamp id, always increasing: the journal wants ids unique per channel,
        across sessions too."""
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
        seconds, micros = divmod(self._last_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    # --- BaseClient ---------------------------------------------------------------------------

    def reply_stream(
        self, channel_id: str, thread_id: str, live: bool = True, user_id: str = ""
    ) -> ReplyStream:
        return ConsoleReply(self.terminal, live, self._new_id())

    async def send_message(self, channel_id: str, thread_id: str, text: str) -> str:
        self.terminal.line(text)
        return self._new_id()

    async def close_stale_progress(
        self, channel_id: str, thread_id: str, notice: str, owner: str | None = None
    ) -> int:
        return 0  # a terminal keeps no progress messages across runs

    async def send_welcome(self, channel_id: str, thread_id: str, user_id: str) -> None:
        """Nothing: the welcome points at Slack's settings window, which the console lacks."""

    async def update_message(self, channel_id: str, message_id: str, text: str) -> None:
        self.terminal.line(text)  # printed lines cannot be edited: show the new text

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        log.debug("console: %s would be deleted; printed lines stay", message_id)

    async def get_thread_history(
        self, channel_id: str, thread_id: str, limit: int | None = None
    ) -> ThreadHistory:
        return ThreadHistory([])  # the database holds every turn of a console conversation

    async def get_user_info(self, user_id: str) -> UserInfo:
        return UserInfo(user_id, self.user_name, await asyncio.to_thread(local_timezone))

    async def upload_file(
        self, channel_id: str, thread_id: str, filename: str, content: bytes, title: str = ""
    ) -> str:
        """Saved as a new file in the working directory (never overwriting); the path is printed."""
        path = await asyncio.to_thread(_save_new, self._save_dir, Path(filename).name or "file", content)
        self.terminal.line(f"[saved {path}]")
        return str(path)

    async def download_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        raise DownloadError("files cannot be shared in console mode")


def _save_new(folder: Path | None, filename: str, content: bytes) -> Path:
    """Write `content` to `filename` in `folder` (None: the working directory), or to
    `stem-2.ext`, … if that name is taken."""
    folder = folder or Path.cwd()
    stem, suffix = Path(filename).stem, Path(filename).suffix
    path, n = folder / filename, 1
    while True:
        try:
            with open(path, "xb") as file:  # "x": a name taken meanwhile is not overwritten
                file.write(content)
        except FileExistsError:
            n += 1
            path = folder / f"{stem}-{n}{suffix}"
            continue
        return path.resolve()


def _read_lines(fd: int, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Runs in a daemon thread: every line of `fd` into `lines`, then None at end of input."""

    def put(item: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, item)
        except RuntimeError:  # the loop has closed: the session is over, nobody is listening
            return False
        return True

    pending = b""
    try:
        while chunk := os.read(fd, READ_BYTES):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                if not put(raw.decode("utf-8", "replace")):
                    return
        if pending:
            put(pending.decode("utf-8", "replace"))
    except OSError as exc:
        log.warning("console: reading stdin failed (%s); ending the session", exc)
    put(None)
