"""`MessageProcessor`: every accepted message ends in an answer or a reply saying why not."""

from __future__ import annotations

import asyncio
import logging
import time

from access import AccessPolicy
from base_client import BaseClient, Message, ReplyStream
from config import Config
from database import Database
from document_handler import DocumentParser
from image_url_handler import ImageFetcher
from message_processor.budget import budget_notice, day_start
from message_processor.handlers.image_gen import ImageGenerationMixin
from message_processor.handlers.text import TextHandlerMixin
from message_processor.progress import ModelSlots, turn_deadline
from message_processor.settings_store import SettingsStore
from message_processor.utilities import (
    BUSY_NOTICE,
    QUEUE_FULL_NOTICE,
    QUEUED_STATUS,
    RESTARTED_NOTICE,
    SHUTDOWN_NOTICE,
    TOO_OLD_NOTICE,
    UNEXPECTED_NOTICE,
    error_notice,
    turn_timeout_notice,
)
from observability import Stats
from openai_client import ModelError, OpenAIClient
from settings import Settings
from thread_manager import ThreadManager, ThreadState

log = logging.getLogger(__name__)

# How long a cancelled answer may take to tell its person, during shutdown.
FAREWELL_SECONDS = 5.0


class MessageProcessor(ImageGenerationMixin, TextHandlerMixin):
    def __init__(
        self,
        config: Config,
        client: BaseClient,
        ai: OpenAIClient,
        db: Database,
        threads: ThreadManager,
        settings: SettingsStore,
        documents: DocumentParser,
        image_fetcher: ImageFetcher,
    ) -> None:
        self.config = config
        self.documents = documents
        self.image_fetcher = image_fetcher
        self.settings = settings
        self.client = client
        self.ai = ai
        self.db = db
        self.threads = threads
        self._users = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # People known to be welcomed already: no database write per answer for them.
        self._welcomed: set[str] = set()
        self.model_slots = ModelSlots(config.max_concurrent_requests)
        self.access = AccessPolicy.from_config(config)
        self.stats = Stats()

    def submit(self, message: Message, recovered: bool = False) -> asyncio.Task[None]:
        """Start answering in the background; the task is tracked until it ends (for shutdown)."""
        task = asyncio.create_task(
            self.process_message(message, recovered),
            name=f"answer:{message.conversation_key}:{message.message_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed before it could answer", task.get_name(), exc_info=task.exception())

    async def process_message(self, message: Message, recovered: bool = False) -> None:
        """Answer one message; `recovered` ones were claimed by a process that died."""
        key = message.conversation_key
        received = time.monotonic()
        # Recovered messages were admitted before the restart.
        refusal = None if recovered else self.access.refusal(
            message.user_id, message.channel_id, message.is_direct
        )
        if refusal is not None:
            await self._refuse(message, refusal)
            return
        claimed = recovered or await self.db.claim_message(
            message.channel_id, message.message_id, message.thread_id, message.user_id,
            message.text, message.event_id,
        )
        if not claimed:
            log.info("%s: message %s already handled, skipping duplicate", key, message.message_id)
            return
        if await self._over_budget(message):
            return

        settings = await self.settings.effective(message.user_id, message.channel_id, message.thread_id)
        reply: ReplyStream | None = None
        state = await self.threads.try_acquire(key)
        if state is None:
            reply = await self._wait_in_line(message, settings)
            if reply is None:
                return
            try:
                state = await self.threads.acquire_queued(key)
            except asyncio.CancelledError:
                await self._tell(reply, SHUTDOWN_NOTICE)
                await asyncio.shield(self.db.set_message_status(message.channel_id, message.message_id, "interrupted"))
                raise
        status = "failed"
        try:
            status = await self._answer(message, state, reply, settings)
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            # Released first: the next message in this thread must not wait on bookkeeping.
            self.threads.release(state)
            await asyncio.shield(
                self.db.set_message_status(message.channel_id, message.message_id, status)
            )
            self.stats.record(status, time.monotonic() - received)
        if status == "answered":
            await self._welcome_once(message)

    async def _over_budget(self, message: Message) -> bool:
        """A person whose daily tokens are spent is told when they come back, not answered."""
        budget = self.config.daily_token_budget
        if not budget:
            return False
        now = time.time()
        used = await self.db.tokens_used(message.user_id, day_start(now))
        if used < budget:
            return False
        log.info("%s: %s is over the daily token budget (%d of %d)", message.conversation_key,
                 message.user_id, used, budget)
        await self._turn_away(message, budget_notice(used, budget, now))
        return True

    async def _turn_away(self, message: Message, notice: str) -> None:
        """A claimed message that will not be answered: say why, and settle it as rejected."""
        await self.client.send_message(message.channel_id, message.thread_id, notice)
        await self.db.set_message_status(message.channel_id, message.message_id, "rejected")
        self.stats.record("rejected", 0.0)

    async def _refuse(self, message: Message, notice: str) -> None:
        """Turned away by the access rules: said once, even if Slack delivers the message twice."""
        first = await self.db.claim_message(
            message.channel_id, message.message_id, message.thread_id, message.user_id,
            message.text, message.event_id, status="rejected",
        )
        if first:
            log.info("%s: %s is not admitted here", message.conversation_key, message.user_id)
            await self.client.send_message(message.channel_id, message.thread_id, notice)
            self.stats.record("rejected", 0.0)

    async def _wait_in_line(self, message: Message, settings: Settings) -> ReplyStream | None:
        """Busy thread: queue (with a visible status) or say so; None means not answered."""
        key = message.conversation_key
        waiting = self.threads.waiting(key)
        if self.config.thread_busy_policy == "queue" and waiting < self.config.thread_queue_size:
            reply = self.client.reply_stream(
                message.channel_id, message.thread_id, live=settings.streaming, user_id=message.user_id
            )
            await reply.start(QUEUED_STATUS)
            log.info("%s: busy, message %s queued (%d ahead)", key, message.message_id, waiting + 1)
            return reply
        notice = BUSY_NOTICE if self.config.thread_busy_policy == "reject" else QUEUE_FULL_NOTICE.format(waiting=waiting)
        await self._turn_away(message, notice)
        log.info("%s: busy, message %s turned away", key, message.message_id)
        return None

    async def _answer(
        self, message: Message, state: ThreadState, reply: ReplyStream | None, settings: Settings
    ) -> str:
        """Answer under the thread's lock; returns the journal status (answered or failed).

        One deadline (`TURN_TIMEOUT_SECONDS`) covers the whole answer: downloads, parsing, link
        fetches and the model call, so nothing that hangs can keep the thread's lock.
        """
        key = message.conversation_key
        started = time.monotonic()
        fresh = reply is None
        reply = reply or self.client.reply_stream(
            message.channel_id, message.thread_id, live=settings.streaming, user_id=message.user_id
        )
        deadline: asyncio.Timeout | None = None
        try:
            if fresh:
                await reply.start("Thinking…")
            await self.db.set_message_status(message.channel_id, message.message_id, "answering")
            async with asyncio.timeout(self.config.turn_timeout_seconds) as deadline:
                token = turn_deadline.set(deadline)
                try:
                    await self.answer(message, state, reply, settings)
                finally:
                    turn_deadline.reset(token)
        except asyncio.CancelledError:
            log.warning("%s: answer interrupted by shutdown", key)
            await self._tell(reply, SHUTDOWN_NOTICE)
            raise
        except (TimeoutError, ModelError) as exc:
            if deadline is not None and deadline.expired():
                log.warning(
                    "%s: turn stopped at its deadline of %g s (downloads, parsing and the model call)",
                    key, self.config.turn_timeout_seconds,
                )
                await self._tell(reply, turn_timeout_notice(self.config.turn_timeout_seconds))
                return "failed"
            log.warning(
                "%s: model call failed after %.1f s (timeout setting %g s): %s",
                key, time.monotonic() - started, self.config.openai_timeout_seconds, exc,
            )
            await self._tell(reply, error_notice(exc, self.config.openai_timeout_seconds))
            return "failed"
        except Exception:
            log.exception("%s: unexpected error while answering", key)
            await self._tell(reply, UNEXPECTED_NOTICE)
            return "failed"
        log.info("%s: answered in %.2f s", key, time.monotonic() - started)
        return "answered"

    async def _welcome_once(self, message: Message) -> None:
        """After someone's first answer (never before it: nobody waits on onboarding)."""
        if message.user_id in self._welcomed:
            return
        first = await self.db.mark_welcomed(message.user_id)
        self._welcomed.add(message.user_id)
        if first:
            try:
                await self.client.send_welcome(message.channel_id, message.thread_id, message.user_id)
            except Exception:
                log.exception("could not post the welcome for %s", message.user_id)

    async def _tell(self, reply: ReplyStream, notice: str) -> None:
        """End a reply with a notice; if even that fails (Slack down), the log is all we have."""
        try:
            await asyncio.wait_for(reply.fail(notice), FAREWELL_SECONDS)
        except Exception:
            log.exception("could not post the notice %r", notice[:60])

    async def record_feedback(self, channel_id: str, message_ts: str, user_id: str, value: str) -> None:
        """A thumbs up/down on an answer: stored with what produced it, counted in the stats."""
        await self.db.record_feedback(channel_id, message_ts, user_id, value)
        self.stats.feedback[value] += 1
        log.info("feedback %s on %s:%s from %s", value, channel_id, message_ts, user_id)

    def gauges(self) -> tuple[int, int]:
        """(answers in flight, conversations waiting for a model slot)."""
        return len(self._tasks), self.model_slots.waiting

    async def recover(self, window_minutes: float) -> None:
        """At start: answer what a crash left unanswered, or say it was lost if it is too old."""
        now = time.time()
        cleaned: set[tuple[str, str]] = set()
        for row in await self.db.unfinished_messages():
            message = Message(
                text=row["text"], user_id=row["user_id"], channel_id=row["channel_id"],
                thread_id=row["thread_ts"], message_id=row["message_ts"], event_id=row["event_id"],
            )
            age_minutes = (now - row["received_at"]) / 60
            try:
                if (message.channel_id, message.thread_id) not in cleaned:
                    cleaned.add((message.channel_id, message.thread_id))
                    await self.client.close_stale_progress(message.channel_id, message.thread_id, RESTARTED_NOTICE)
                if age_minutes > window_minutes:
                    await self.client.send_message(
                        message.channel_id, message.thread_id, TOO_OLD_NOTICE.format(minutes=int(age_minutes))
                    )
            except Exception:
                # One unreachable conversation (a deleted channel...) must not keep the bot down.
                log.warning("%s: could not tidy up after the restart", message.conversation_key, exc_info=True)
            if age_minutes <= window_minutes:
                log.info("%s: answering message %s left unanswered by a restart",
                         message.conversation_key, message.message_id)
                self.submit(message, recovered=True)
            else:
                await self.db.set_message_status(message.channel_id, message.message_id, "expired")

    async def wait_idle(self) -> None:
        """Until every accepted message is settled (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def shutdown(self, grace_seconds: float) -> None:
        """Let answers in flight finish for up to `grace_seconds`, then interrupt the rest.

        Loops, because a listener that was mid-flight when the socket closed may still submit:
        such late arrivals get what is left of the grace period, then are interrupted and told.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while self._tasks:
            log.info("waiting up to %.1f s for %d answers in flight",
                     max(deadline - loop.time(), 0), len(self._tasks))
            _, pending = await asyncio.wait(list(self._tasks), timeout=max(deadline - loop.time(), 0))
            if pending:
                log.warning("interrupting %d answers that did not finish in time", len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
