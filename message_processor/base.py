"""`MessageProcessor`: every accepted message ends in an answer or a reply saying why not."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from access import AccessPolicy
from base_client import BaseClient, Message, ReplyStream
from config import Config
from database import Database
from document_handler import DocumentParser
from image_fit import ImageFitter
from image_url_handler import ImageFetcher
from leases import Leases
from message_processor.budget import budget_notice, day_start, estimate_tokens
from message_processor.fair_share import BudgetLedger, NoticePacer, PersonLines, PersonTicket, Reservation
from message_processor.handlers.text import TextHandlerMixin
from message_processor.model_slots import AdaptiveLimit, ModelSlots, turn_deadline
from message_processor.settings_store import SettingsStore
from message_processor.utilities import (
    BUSY_NOTICE,
    PERSON_QUEUED_STATUS,
    QUEUE_FULL_NOTICE,
    QUEUED_STATUS,
    RESTARTED_NOTICE,
    SHUTDOWN_NOTICE,
    STOPPED_NOTICE,
    STOPPED_WHILE_QUEUED_NOTICE,
    TOO_OLD_NOTICE,
    UNEXPECTED_NOTICE,
    error_notice,
    turn_timeout_notice,
)
from observability import Stats
from openai_client import ModelError, OpenAIClient
from openai_client.events import ErrorKind
from settings import Settings
from thread_manager import ThreadManager, ThreadState, Ticket
from tools.registry import ToolRegistry, default_tools

log = logging.getLogger(__name__)

# How long a cancelled answer may take to tell its person, during shutdown.
FAREWELL_SECONDS = 5.0
# A burst of messages into one thread gets one "busy" (or "refused") notice per this long.
NOTICE_WINDOW_SECONDS = 60.0


T = TypeVar("T")


class StopOutcome(enum.Enum):
    """What a stop did here: stopped an answer (or a queued message), was refused (not the
    person's, who is no admin), or found nothing of that thread's here."""

    STOPPED = "stopped"
    REFUSED = "refused"
    NOT_HERE = "not here"


class StoppedInLine(Exception):
    """A message waiting for its thread's turn was stopped by its own placeholder's Stop."""


async def together(*steps: Awaitable[Any] | None) -> list[Any]:
    """Await independent steps at once (None: no step), and their results in order (None for
    no step); the first failure is raised as itself.

    A failing step cancels the others, which are awaited before it is raised, so nothing is
    left running behind the answer's error handling; any further failures are logged.
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [None if step is None else group.create_task(step) for step in steps]
        return [None if task is None else task.result() for task in tasks]
    except BaseExceptionGroup as failed:
        first, *others = failed.exceptions
        for other in others:
            log.error("a step failed alongside another", exc_info=other)
        raise first from None


class MessageProcessor(TextHandlerMixin):
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
        tools: ToolRegistry | None = None,
        stats: Stats | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.config = config
        # Claims on messages and threads shared with other instances (PostgreSQL); on SQLite
        # (one process) none is taken, and the thread locks in memory are the whole story.
        self.leases = leases or Leases(db, config.instance_name, config.lease_seconds, shared=False)
        # The model's tools; a processor built without a registry gets the built-in ones.
        self.tools = tools or default_tools(config, ai)
        self.documents = documents
        self.image_fetcher = image_fetcher
        # Shared images are shrunk in a sandboxed worker, within the documents' time limit.
        self.image_fitter = ImageFitter(timeout=config.document_timeout_seconds)
        self.settings = settings
        self.client = client
        self.ai = ai
        self.db = db
        self.threads = threads
        self._users = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # People known to be welcomed already: no database write per answer for them.
        self._welcomed: set[str] = set()
        # Follows the provider (429s, rate-limit headers) under MAX_CONCURRENT_REQUESTS.
        self.model_slots = ModelSlots(AdaptiveLimit(config.max_concurrent_requests))
        self.person_lines = PersonLines(config.max_concurrent_per_person)
        self.notices = NoticePacer(NOTICE_WINDOW_SECONDS, time.monotonic)
        self.budget: BudgetLedger | None = (
            BudgetLedger(config.daily_token_budget, config.openai_max_output_tokens)
            if config.daily_token_budget else None
        )
        # Each admitted message's budget reservation, by (channel, message id), until it settles.
        self.reservations: dict[tuple[str, str], Reservation] = {}
        # The answer being written in each thread (its task and whose it is), for a stop.
        self._answering: dict[str, tuple[asyncio.Task[None], str, ReplyStream]] = {}
        # Messages waiting for their thread's turn, by (channel, their placeholder's id).
        self._queued: dict[tuple[str, str], tuple[asyncio.Task[None], str]] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self.access = AccessPolicy.from_config(config)
        self.stats = stats or Stats()
        self.stats.gauge("assistant_answers_in_flight", "Messages being answered or waiting to be.",
                         lambda: len(self._tasks))
        self.stats.gauge("assistant_model_calls_in_flight", "Model calls running now.",
                         lambda: self.model_slots.in_flight)
        self.stats.gauge("assistant_model_calls_waiting", "Answers waiting for a free model call slot.",
                         lambda: self.model_slots.waiting)
        self.stats.gauge("assistant_model_call_limit", "How many model calls may run at once now (adapts to the provider).",
                         lambda: self.model_slots.limit.current)
        self.stats.gauge("assistant_person_line_waiting", "Answers waiting behind the same person's others.",
                         lambda: self.person_lines.total_waiting)
        self.stats.gauge("assistant_thread_queued", "Messages waiting for their busy thread, in all threads.",
                         lambda: self.threads.queue_depths()[0])
        self.stats.gauge("assistant_thread_queue_depth_max", "The longest line of messages waiting for one thread.",
                         lambda: self.threads.queue_depths()[1])

    def submit(self, message: Message, recovered: bool = False) -> asyncio.Task[None]:
        """Start answering in the background; the task is tracked until it ends (for shutdown).

        The message takes its place in its person's line here, before any await, so a burst is
        answered in the order it arrived."""
        ticket = self.person_lines.reserve(message.user_id)
        task = asyncio.create_task(
            self.process_message(message, recovered, ticket),
            name=f"answer:{message.conversation_key}:{message.message_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed before it could answer", task.get_name(), exc_info=task.exception())

    async def process_message(
        self, message: Message, recovered: bool = False, ticket: PersonTicket | None = None
    ) -> None:
        """Answer one message; `recovered` ones were claimed by a process that died."""
        ticket = ticket or self.person_lines.reserve(message.user_id)
        try:
            await self._process(message, recovered, ticket)
        finally:
            ticket.release()

    async def _process(self, message: Message, recovered: bool, ticket: PersonTicket) -> None:
        key = message.conversation_key
        received = time.monotonic()
        # Recovered messages were admitted before the restart.
        refusal = None if recovered else self.access.refusal(
            message.user_id, message.channel_id, message.is_direct, message.external
        )
        if refusal is not None:
            await self._refuse(message, refusal)
            return
        claimed = recovered or await self.db.claim_message(
            message.channel_id, message.message_id, message.thread_id, message.user_id,
            message.text, message.event_id, owner=self._owner,
            lease_seconds=self.leases.lease_seconds if self.leases.shared else 0.0,
        )
        if not claimed:
            log.info("%s: message %s already handled, skipping duplicate", key, message.message_id)
            return
        reservation = None
        if self.budget is not None:
            reservation = await self._reserve_budget(message, self.budget)
            if reservation is None:
                return
        try:
            await self._take_turn(message, received, ticket, recovered)
        finally:
            if reservation is not None and self.budget is not None:
                self.budget.release(reservation)
                self.reservations.pop((message.channel_id, message.message_id), None)

    @property
    def _owner(self) -> str | None:
        """Who this instance is in the journal's leases; None on SQLite (one process)."""
        return self.leases.owner if self.leases.shared else None

    async def _settle(self, message: Message, status: str) -> None:
        """The journal row's new status, while it is still this instance's."""
        done = await self.db.set_message_status(message.channel_id, message.message_id, status, owner=self._owner)
        if not done and self._owner is not None:
            log.error("%s: message %s was taken over by another instance before it settled as %s "
                      "(this one could not renew its leases in time)",
                      message.conversation_key, message.message_id, status)

    async def _take_turn(
        self, message: Message, received: float, turn: PersonTicket, recovered: bool = False
    ) -> None:
        """Under the thread's lock (waiting for it, or turned away), answer and settle the journal."""
        key = message.conversation_key
        reply: ReplyStream | None = None
        # The thread, or a place in its line, before anything is awaited: a burst keeps the
        # order it came in (with several instances the settings read below is a database
        # round trip, and a pool finishes round trips in any order).
        state = await self.threads.try_acquire(key)  # never suspends
        place = None if state is not None else await self._line_up(message)
        if state is None and place is None:
            return  # turned away
        try:
            # A recovered message's thread may have been given settings while it waited.
            settings = await self.settings.effective(
                message.user_id, message.channel_id, message.thread_id,
                new_thread=message.starts_thread and not recovered,
            )
            if place is not None:
                reply = await self._show_queued(message, place, settings)
        except BaseException:
            if state is not None:
                self.threads.release(state)
            elif place is not None:
                place.leave()  # the line moves up (nothing to do if it left already)
            raise
        if place is not None:
            assert reply is not None
            try:
                state = await self._wait_in_line(message, reply, place.wait())
            except StoppedInLine:
                await self._stopped_in_line(message, reply)
                return
            except asyncio.CancelledError:
                await self._tell(reply, SHUTDOWN_NOTICE)
                await asyncio.shield(self._settle(message, "interrupted"))
                raise
        assert state is not None
        status: str | None = "failed"
        leased = False
        try:
            if self.leases.shared:
                leased, reply = await self._lease_thread(message, state, reply, settings)
                if not leased:
                    status = None  # turned away: settled and counted already
                    return
            status = await self._answer(message, state, reply, settings, turn)
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            # Released first: the next message in this thread must not wait on bookkeeping.
            self.threads.release(state)
            if leased:
                await asyncio.shield(self.leases.release_thread(message))
            if status is not None:
                await asyncio.shield(self._settle(message, status))
                self.stats.record(status, time.monotonic() - received)
        if status == "answered":
            await self._welcome_once(message)

    async def _lease_thread(
        self, message: Message, state: ThreadState, reply: ReplyStream | None, settings: Settings
    ) -> tuple[bool, ReplyStream | None]:
        """The thread's turn across instances, once this instance's own line let us through.

        Held on another instance: turned away, or (THREAD_BUSY_POLICY=queue) waiting for it
        with the queued status showing, as on one instance. A lease is never taken from a
        live holder: it frees when the holder's turn ends, or once the holder stopped renewing
        it (it died). Returns whether the turn is ours, and the reply shown meanwhile.
        """
        key = message.conversation_key
        turn = await self.leases.take_thread(message)
        if turn is None:
            if self.config.thread_busy_policy != "queue":
                log.info("%s: busy on another instance, message %s turned away", key, message.message_id)
                await self._turn_away(message, BUSY_NOTICE, "busy")
                return False, reply
            if reply is None:
                reply = self.client.reply_stream(
                    message.channel_id, message.thread_id, live=settings.streaming, user_id=message.user_id
                )
                await reply.start(QUEUED_STATUS)
            log.info("%s: busy on another instance, message %s waits its turn", key, message.message_id)
            try:
                turn = await self._wait_in_line(message, reply, self.leases.wait_for_thread(message))
            except StoppedInLine:
                await self._stopped_in_line(message, reply)
                return False, reply
            except asyncio.CancelledError:
                await self._tell(reply, SHUTDOWN_NOTICE)
                raise
        if state.lease_turn is None or turn != state.lease_turn + 1:
            state.turns = None  # another instance answered here since: the conversation reloads
        state.lease_turn = turn
        return True, reply

    async def _wait_in_line(self, message: Message, reply: ReplyStream, turn: Awaitable[T]) -> T:
        """The thread's `turn`, awaited with the queued status showing; `StoppedInLine` when
        a Stop was pressed on that status's own message meanwhile (see `stop`)."""
        shown = reply.shown_in()  # a queued message shows one placeholder
        key = (message.channel_id, shown[0]) if shown else None
        task = asyncio.current_task()
        if key is not None and task is not None:
            self._queued[key] = (task, message.user_id)
        try:
            return await turn
        except asyncio.CancelledError:
            if self._stopped():
                raise StoppedInLine from None
            raise
        finally:
            if key is not None:
                self._queued.pop(key, None)

    async def _stopped_in_line(self, message: Message, reply: ReplyStream) -> None:
        log.info("%s: message %s stopped while it waited its turn", message.conversation_key, message.message_id)
        await self._tell(reply, STOPPED_WHILE_QUEUED_NOTICE)
        await asyncio.shield(self._settle(message, "stopped"))
        self.stats.record("stopped", 0.0)

    async def _reserve_budget(self, message: Message, budget: BudgetLedger) -> Reservation | None:
        """Hold this answer's expected tokens, or tell the person today's allowance is spent.

        Answers in flight count as spent, so a burst cannot pass the budget before its usage
        is written; the reservation is settled (released) when the answer's usage is recorded.
        """
        person = message.user_id
        estimate = estimate_tokens(self.config.system_prompt, message.text)
        while True:
            generation = budget.generation(person)
            now = time.time()
            spent = await self.db.tokens_used(person, day_start(now))
            if budget.generation(person) == generation:
                break  # no usage was written while we read: `spent` and the ledger agree
        reservation = budget.reserve(person, spent, estimate)
        if reservation is not None:
            self.reservations[(message.channel_id, message.message_id)] = reservation
            return reservation
        held = budget.reserved(person)
        log.info("%s: %s is at the daily token budget (%d spent, %d held, %d limit)",
                 message.conversation_key, person, spent, held, budget.budget)
        await self._turn_away(message, budget_notice(spent, budget.budget, now, held), "budget")
        return None

    async def _turn_away(self, message: Message, notice: str, reason: str) -> None:
        """A claimed message that will not be answered: say why (once per burst into a thread),
        and settle it as rejected."""
        if self.notices.should_say(reason, message.user_id, message.channel_id, message.thread_id):
            await self.client.send_message(message.channel_id, message.thread_id, notice)
        else:
            log.info("%s: %s notice for %s already given in this thread",
                     message.conversation_key, reason, message.message_id)
        await self._settle(message, "rejected")
        self.stats.record("rejected", 0.0)

    async def _refuse(self, message: Message, notice: str) -> None:
        """Turned away by the access rules: said once, even if Slack delivers the message twice."""
        first = await self.db.claim_message(
            message.channel_id, message.message_id, message.thread_id, message.user_id,
            message.text, message.event_id, status="rejected",
        )
        if first:
            log.info("%s: %s is not admitted here", message.conversation_key, message.user_id)
            if self.notices.should_say("refused", message.user_id, message.channel_id, message.thread_id):
                await self.client.send_message(message.channel_id, message.thread_id, notice)
            self.stats.record("refused", 0.0)

    async def _line_up(self, message: Message) -> Ticket | None:
        """Busy thread: a place in its line, or say so; None means not answered.

        The place in line is taken before anything is awaited: a burst into one busy thread
        sees the line grow message by message, so it never overshoots THREAD_QUEUE_SIZE and
        the messages are answered in the order they came.
        """
        key = message.conversation_key
        ticket = None
        if self.config.thread_busy_policy == "queue":
            ticket = self.threads.reserve(key, limit=self.config.thread_queue_size)
        if ticket is None:
            waiting = self.threads.waiting(key)
            notice = BUSY_NOTICE if self.config.thread_busy_policy == "reject" else QUEUE_FULL_NOTICE.format(waiting=waiting)
            await self._turn_away(message, notice, "busy")
            log.info("%s: busy, message %s turned away", key, message.message_id)
        return ticket

    async def _show_queued(self, message: Message, ticket: Ticket, settings: Settings) -> ReplyStream:
        """The queued status, shown while the message waits in its thread's line."""
        key = message.conversation_key
        reply = self.client.reply_stream(
            message.channel_id, message.thread_id, live=settings.streaming, user_id=message.user_id
        )
        try:
            await reply.start(QUEUED_STATUS)
        except BaseException:
            ticket.leave()  # not answered after all (Slack refused, shutdown): the line moves up
            raise
        log.info("%s: busy, message %s queued (%d ahead)", key, message.message_id, ticket.ahead)
        return reply

    async def _answer(
        self, message: Message, state: ThreadState, reply: ReplyStream | None, settings: Settings,
        ticket: PersonTicket,
    ) -> str:
        """Answer under the thread's lock, in the person's turn; returns the journal status.

        One deadline (`TURN_TIMEOUT_SECONDS`) covers the whole answer: downloads, parsing, link
        fetches and the model call, so nothing that hangs can keep the thread's lock.
        """
        key = message.conversation_key
        started = time.monotonic()
        fresh = reply is None
        reply = reply or self.client.reply_stream(
            message.channel_id, message.thread_id, live=settings.streaming, user_id=message.user_id
        )
        shown = not fresh

        async def wait_in_person_line(ahead: int) -> None:
            nonlocal shown
            limit = self.config.max_concurrent_per_person
            log.info("%s: %s has %d answers in progress; message %s waits its turn (%d ahead)",
                     key, message.user_id, limit, message.message_id, ahead)
            status = PERSON_QUEUED_STATUS.format(limit=limit, ahead=ahead)
            await (reply.progress(status) if shown else reply.start(status))
            shown = True

        deadline: asyncio.Timeout | None = None
        task = asyncio.current_task()
        if task is not None:
            self._answering[key] = (task, message.user_id, reply)
        try:
            # One person's burst waits in that person's own line, not in everyone's.
            waited = await ticket.wait(wait_in_person_line)
            # Independent first steps at once: in a burst every round trip waits its turn on
            # the loop, and the model call starts only after them. answer_text finds the
            # thread's row cached.
            _, _, user, _ = await together(
                reply.start("Thinking…") if not shown else reply.progress("Thinking…") if waited else None,
                self._settle(message, "answering"),
                self.user_info(message.user_id),
                self.thread_row(message, state),
            )
            async with asyncio.timeout(self.config.turn_timeout_seconds) as deadline:
                token = turn_deadline.set(deadline)
                try:
                    await self.answer_text(message, state, reply, settings, user)
                finally:
                    turn_deadline.reset(token)
        except asyncio.CancelledError:
            if self._stopped():
                await self._tell(reply, STOPPED_NOTICE)
                return "stopped"
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
                return "timed_out"
            log.warning(
                "%s: model call failed after %.1f s (timeout setting %g s): %s",
                key, time.monotonic() - started, self.config.openai_timeout_seconds, exc,
            )
            await self._tell(reply, error_notice(exc, self.config.openai_timeout_seconds))
            timed_out = isinstance(exc, TimeoutError) or exc.kind is ErrorKind.TIMEOUT
            return "timed_out" if timed_out else "failed"
        except Exception:
            log.exception("%s: unexpected error while answering", key)
            await self._tell(reply, UNEXPECTED_NOTICE)
            return "failed"
        finally:
            if key in self._answering and self._answering[key][0] is task:
                del self._answering[key]
        log.info("%s: answered in %.2f s", key, time.monotonic() - started)
        return "answered"

    def stop(self, channel_id: str, thread_id: str, user_id: str, shown_as: str | None = None) -> StopOutcome:
        """Stop the answer being written in a thread, for the person it is for (or an admin):
        its model call and tools are cancelled, and it ends with what it had written.

        `shown_as`: the message the Stop was pressed on. A message still waiting for its turn
        in the thread is stopped by its own placeholder's Stop: it leaves the line, and the
        answer being written goes on.
        """
        entry = self._queued.get((channel_id, shown_as)) if shown_as else None
        if entry is None and (answering := self._answering.get(f"{channel_id}:{thread_id}")):
            task, asker, reply = answering
            # Pressed on another message (one queued on another instance): not this answer.
            shown = reply.shown_in()
            if shown_as is None or not shown or shown_as in shown:
                entry = task, asker
        if entry is None:
            return StopOutcome.NOT_HERE
        task, asker = entry
        if user_id != asker and not self.access.is_admin(user_id):
            log.info("%s:%s: %s may not stop %s's answer", channel_id, thread_id, user_id, asker)
            return StopOutcome.REFUSED
        log.info("%s:%s: stopped by %s", channel_id, thread_id, user_id)
        self._stopping.add(task)
        task.cancel()
        return StopOutcome.STOPPED

    def _stopped(self) -> bool:
        """The cancellation this task got is a stop alone (not a shutdown): take it back."""
        task = asyncio.current_task()
        if task is None or task not in self._stopping:
            return False
        self._stopping.discard(task)
        return task.uncancel() == 0

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
        self.stats.feedback(value)
        log.info("feedback %s on %s:%s from %s", value, channel_id, message_ts, user_id)

    def gauges(self) -> tuple[int, int]:
        """(answers in flight, conversations waiting for a model slot or in a person's line)."""
        return len(self._tasks), self.model_slots.waiting + self.person_lines.total_waiting

    async def recover(self, window_minutes: float) -> None:
        """At start: answer what a crash left unanswered, or say it was lost if it is too old.

        Runs before the socket opens (AssistantApp.start). On SQLite (one process) every
        unsettled message is a dead process's. With several instances (PostgreSQL) only those
        whose instance stopped renewing their leases are, and those of this instance name's
        earlier runs: a message another instance is answering is left to it.
        """
        if self.leases.shared:
            rows = await self.leases.take_over(at_start=True)
        else:
            rows = await self.db.unfinished_messages()
        await self.recover_rows(rows, window_minutes)

    async def recover_rows(self, rows: list[dict[str, Any]], window_minutes: float) -> None:
        """Answer messages a dead process (or instance) left unanswered, or say they were lost.

        Tidies every conversation before re-answering anything: a recovered answer's new
        placeholder is this process's own, and must never be closed as stale. With several
        instances only the dead one's progress messages are closed (`previous_owner`): another
        live instance's, waiting in the same thread, are alive. Runs at start, and whenever
        the takeover job finds a stopped instance's work.
        """
        now = time.time()
        cleaned: set[tuple[str, str, str | None]] = set()
        again: list[Message] = []
        for row in rows:
            message = Message(
                text=row["text"], user_id=row["user_id"], channel_id=row["channel_id"],
                thread_id=row["thread_ts"], message_id=row["message_ts"], event_id=row["event_id"],
            )
            # None: from before messages named their instance (or SQLite): every stale one.
            dead = row.get("previous_owner") if self.leases.shared else None
            age_minutes = (now - row["received_at"]) / 60
            try:
                if (message.channel_id, message.thread_id, dead) not in cleaned:
                    cleaned.add((message.channel_id, message.thread_id, dead))
                    await self.client.close_stale_progress(
                        message.channel_id, message.thread_id, RESTARTED_NOTICE, owner=dead
                    )
                if age_minutes > window_minutes:
                    await self.client.send_message(
                        message.channel_id, message.thread_id, TOO_OLD_NOTICE.format(minutes=int(age_minutes))
                    )
            except Exception:
                # One unreachable conversation (a deleted channel...) must not keep the bot down.
                log.warning("%s: could not tidy up after the restart", message.conversation_key, exc_info=True)
            if age_minutes <= window_minutes:
                again.append(message)
                continue
            try:
                await self._settle(message, "expired")
            except self.db.errors as exc:  # the next start's recovery finds it again
                log.error("%s: could not settle message %s as expired: %s",
                          message.conversation_key, message.message_id, exc)
        for message in again:
            log.info("%s: answering message %s left unanswered by a restart",
                     message.conversation_key, message.message_id)
            self.submit(message, recovered=True)

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
