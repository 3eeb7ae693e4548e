"""The platform-neutral contract between a chat platform and the message processor.

The processor only ever sees these types: a `Message` in, a `BaseClient` to talk back through.
Slack is one implementation (`slack_client`); a console client is another. Keeping Slack payloads
out of here is what lets the processor be tested and reused without Slack.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum


class DownloadError(Exception):
    """A shared file could not be fetched (refused, not found, network)."""


class FileTooLarge(DownloadError):
    """A shared file is over the size limit."""


class UntrustedFileUrl(DownloadError):
    """A shared file's address is not Slack's file host over https: the bot token stays home."""


@dataclass(frozen=True)
class Attachment:
    """A file someone shared with a message; downloaded only when the processor needs it."""

    file_id: str
    name: str
    mimetype: str
    size: int
    url: str
    # The platform's own kind of file, if it says (Slack: "slack_audio" for a recorded voice clip).
    subtype: str = ""


@dataclass(frozen=True)
class Message:
    """One message a person sent, already judged worth answering by the platform layer."""

    text: str
    user_id: str
    channel_id: str
    # The conversation's root message id: the thread the answer goes into.
    thread_id: str
    # This message's own id (Slack ts); equals thread_id for the first message of a thread.
    message_id: str
    event_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    # A one-to-one conversation with the bot (access rules treat these apart from channels).
    is_direct: bool = False
    # Written by someone of another organization than the bot's own (a shared channel).
    external: bool = False
    # When the platform handed it over (monotonic seconds), for the time-to-first-text metric.
    received_at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def conversation_key(self) -> str:
        return f"{self.channel_id}:{self.thread_id}"

    @property
    def starts_thread(self) -> bool:
        return self.thread_id == self.message_id


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    display_name: str
    timezone: str = "UTC"


class Role(str, Enum):
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True)
class HistoryMessage:
    """A message of a thread as the platform stores it, used to rebuild a conversation."""

    message_id: str
    role: Role
    text: str
    user_id: str | None = None
    # False for the bot's own progress/busy/error notices, which are not part of the dialogue.
    is_dialogue: bool = True
    # For the bot's own messages: what it marked them as (progress, answer, notice, …).
    kind: str | None = None
    # Not from a person the bot serves, as far as the platform can tell (another bot, someone of
    # another organization): context to quote, never instructions.
    outsider: bool = False
    # A name to show for an author who is not a person (another bot's name).
    author: str | None = None
    # For the bot's progress messages: the instance run that was writing it (leases.py).
    owner: str | None = None


@dataclass(frozen=True)
class ThreadHistory:
    """A conversation's messages as the platform returned them, oldest first."""

    messages: list[HistoryMessage]
    # False: the conversation has more messages than the `limit` asked for; the newest were not read.
    complete: bool = True


@dataclass
class ReplyOutcome:
    """What a finished reply left on the platform (for persistence and logs)."""

    message_ids: list[str] = field(default_factory=list)


class ReplyStream(ABC):
    """One answer being written into a conversation: placeholder, progress, text, end.

    Implementations own everything platform-specific: rendering, throttling, splitting,
    retrying rate limits. Every path must end in `finish` or `fail` so nothing is left spinning.
    """

    @abstractmethod
    async def start(self, status: str) -> None:
        """Show a placeholder at once, with a progress status."""

    @abstractmethod
    async def progress(self, status: str) -> None:
        """Refresh the progress status while no text has arrived yet."""

    @abstractmethod
    async def append(self, delta: str) -> None:
        """Add model text; the implementation decides when the person sees it."""

    @abstractmethod
    async def finish(self) -> ReplyOutcome:
        """Show the complete text; must land even under rate limits."""

    @abstractmethod
    async def fail(self, notice: str) -> ReplyOutcome:
        """End the reply with a notice saying what went wrong (keeping any partial text)."""

    def shown_in(self) -> tuple[str, ...]:
        """The platform's ids of the messages showing this reply so far, first first (none: a
        thread-wide status only): a Stop pressed on one of them is about this reply."""
        return ()

    async def step(self, step_id: str, title: str, status: str, detail: str = "",
                   sources: tuple[str, ...] = ()) -> None:
        """A tool step of the answer: `in_progress`, then `complete` or `error`, by `step_id`.

        By default a running step is shown as the progress status; platforms that can show
        steps of their own (Slack's task cards, a line above the text) do more."""
        if status == "in_progress":
            await self.progress(title)


class BaseClient(ABC):
    """What the processor needs from a chat platform, and what `main.py` starts and stops."""

    async def connect(self) -> None:
        """Get ready to post (credentials checked) without receiving messages yet; crash
        recovery runs between this and `start`. Nothing to do for a client without a server."""

    @abstractmethod
    async def start(self) -> None:
        """Begin delivering messages (connecting first, if `connect` was not called)."""

    @abstractmethod
    async def stop_receiving(self) -> None:
        """No more messages from now on (answers in flight may still post)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; nothing is posted after this."""

    @abstractmethod
    async def socket_connected(self) -> bool:
        """Whether messages can arrive right now (for /health)."""

    @abstractmethod
    def reply_stream(
        self, channel_id: str, thread_id: str, live: bool = True, user_id: str = ""
    ) -> ReplyStream:
        """A new, not yet started reply to `user_id`; `live=False` shows progress only, then
        the whole text."""

    @abstractmethod
    async def send_message(self, channel_id: str, thread_id: str, text: str) -> str:
        """Post a short notice into a conversation; returns its message id.

        Notices (here and in `ReplyStream.fail`) are plain text that may quote what people sent,
        such as a file name: the client shows them literally, never as markup or mentions."""

    @abstractmethod
    async def close_stale_progress(
        self, channel_id: str, thread_id: str, notice: str, owner: str | None = None
    ) -> int:
        """End progress messages a previous (crashed) process left in a conversation; how many.

        `owner`: only those of that instance run (and untagged ones), never another live
        instance's; None: every one this process is not writing (one process)."""

    @abstractmethod
    async def send_welcome(self, channel_id: str, thread_id: str, user_id: str) -> None:
        """The one-time hello to someone new, pointing at their settings."""

    @abstractmethod
    async def update_message(self, channel_id: str, message_id: str, text: str) -> None:
        """Replace the text of a message the bot posted."""

    @abstractmethod
    async def delete_message(self, channel_id: str, message_id: str) -> None:
        """Remove a message the bot posted."""

    @abstractmethod
    async def get_thread_history(
        self, channel_id: str, thread_id: str, limit: int | None = None
    ) -> ThreadHistory:
        """The messages of a conversation, oldest first: about `limit` at most (None: all)."""

    @abstractmethod
    async def get_user_info(self, user_id: str) -> UserInfo:
        """Display name and timezone of a person."""

    @abstractmethod
    async def upload_file(
        self, channel_id: str, thread_id: str, filename: str, content: bytes, title: str = ""
    ) -> str:
        """Share a file into a conversation; returns the file id."""

    @abstractmethod
    async def download_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        """Fetch a shared file's bytes; `FileTooLarge` over `max_bytes`, else `DownloadError`."""
