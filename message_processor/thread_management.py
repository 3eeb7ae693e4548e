"""Conversation context: cached turns, rebuilt from the platform's history when not cached."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from access import AccessPolicy
from base_client import BaseClient, HistoryMessage, Message, ReplyOutcome, Role, UserInfo
from database import Database, StoredImage, StoredMessage
from message_processor.utilities import quoted_turn
from settings import Settings
from thread_manager import ThreadState

log = logging.getLogger(__name__)

USER_CACHE_SECONDS = 24 * 3600
# A thread rebuilt from the platform reads at most this many of its messages (Slack: 10 pages of
# 200). A thread of 100,000 replies would otherwise cost 500 calls and minutes under the lock.
REBUILD_MAX_MESSAGES = 2000


class ThreadContextMixin:
    client: BaseClient
    db: Database
    access: AccessPolicy
    _users: dict[str, tuple[UserInfo, float]]

    async def user_info(self, user_id: str) -> UserInfo:
        """Name and timezone, from memory, then the database, then the platform (cached a day)."""
        cached = self._users.get(user_id)
        if cached and time.monotonic() - cached[1] < USER_CACHE_SECONDS:
            return cached[0]
        user = await self.db.get_user(user_id, USER_CACHE_SECONDS)
        if user is None:
            try:
                user = await self.client.get_user_info(user_id)
            except Exception:  # a missing name must not cost the person their answer
                log.warning("could not look up user %s; using the id as name", user_id, exc_info=True)
                return UserInfo(user_id, user_id, "UTC")
            await self.db.save_user(user)
        self._users[user_id] = (user, time.monotonic())
        return user

    async def remember_answer(
        self, message: Message, outcome: ReplyOutcome, settings: Settings, model: str | None = None
    ) -> None:
        """What produced an answer, kept with its last message: feedback on it is stored with it."""
        if outcome.message_ids:
            await self.db.record_answer(
                message.channel_id, outcome.message_ids[-1], message.thread_id, message.user_id,
                model or settings.model, settings.as_dict(),
            )

    async def thread_row(self, message: Message, state: ThreadState) -> int:
        if state.row_id is None:
            state.row_id = await self.db.ensure_thread(message.channel_id, message.thread_id)
        return state.row_id

    async def load_turns(self, message: Message, state: ThreadState) -> list[StoredMessage]:
        """The conversation before `message`: memory, else database, else the platform."""
        if state.turns is not None:
            return state.turns
        if message.starts_thread:  # the conversation begins with this message: nothing before it
            state.turns = []
            return state.turns
        thread_id = await self.thread_row(message, state)
        turns = await self.db.thread_messages(thread_id)
        if not turns and not message.starts_thread:
            turns, complete = await self._rebuild(message, thread_id)
            state.history_cut = not complete
        state.turns = turns
        return turns

    async def _rebuild(self, message: Message, thread_id: int) -> tuple[list[StoredMessage], bool]:
        """The thread's turns before `message` from the platform's history, bounded in size;
        False when messages were left out (the platform returns the oldest first, so what is
        missing is what came after the first `REBUILD_MAX_MESSAGES`)."""
        history = await self.client.get_thread_history(
            message.channel_id, message.thread_id, limit=REBUILD_MAX_MESSAGES
        )
        turns: list[StoredMessage] = []
        # Everything before `message` was read if the history reached it (later ones don't matter).
        complete = history.complete
        for item in history.messages:
            if item.message_id == message.message_id:
                complete = True
                break
            if not item.is_dialogue or not item.text.strip():
                continue
            if item.role is Role.ASSISTANT and turns and turns[-1].role is Role.ASSISTANT:
                # One answer split over several messages is one turn.
                last = turns.pop()
                turns.append(StoredMessage(Role.ASSISTANT, f"{last.text}\n{item.text}", last.slack_ts))
                continue
            if item.role is Role.ASSISTANT:
                turns.append(StoredMessage(item.role, item.text, item.message_id))
            else:
                turns.append(await self._person_turn(item))
        await self.db.add_messages(thread_id, turns, replace=True)
        log.info("rebuilt %s:%s from history: %d turns", message.channel_id, message.thread_id, len(turns))
        if not complete:
            log.warning(
                "%s: thread has more than %d messages; rebuilt from the first %d, the rest up to "
                "message %s left out", message.conversation_key, REBUILD_MAX_MESSAGES,
                len(history.messages), message.message_id,
            )
        return turns, complete

    async def _person_turn(self, item: HistoryMessage) -> StoredMessage:
        """Someone's message in the thread; from someone the bot does not serve, it is quoted
        and named as such, so what they wrote never reads as instructions."""
        name = (await self.user_info(item.user_id)).display_name if item.user_id else None
        refused = item.user_id is not None and self.access.person_refusal(item.user_id) is not None
        if not (item.outsider or refused):
            return StoredMessage(Role.USER, item.text, item.message_id, item.user_id, name)
        who = "a bot" if item.user_id is None else "not someone I answer"
        return StoredMessage(
            Role.USER, quoted_turn(item.text), item.message_id, item.user_id,
            f"{name or item.author or 'Someone'} ({who})",
        )

    async def save_turns(
        self, message: Message, state: ThreadState, turns: list[StoredMessage],
        images: Sequence[StoredImage] = (),
    ) -> None:
        thread_id = await self.thread_row(message, state)
        await self.db.add_messages(thread_id, turns)
        if images:
            await self.db.add_images(thread_id, message.message_id, images)
        if state.turns is not None:
            state.turns.extend(turns)
