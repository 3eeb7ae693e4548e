"""Several instances on one PostgreSQL database: who answers what, and who takes over the dead's work.

Three kinds of claim, all rows in the database (database.py), all judged by the database's clock:

- A **message** is an instance's once its journal insert wins (`claim_message`): the row
  names the owner and a lease. The insert is the arbiter between instances: a redelivery or a
  copy of the same message conflicts with it, whichever connection it came by.
- A **thread's turn** (one answer at a time per thread) is a row in `thread_leases`, taken
  without waiting and given back when the turn ends. A lease row rather than an advisory lock:
  a session-level advisory lock would pin a pooled connection for each turn in flight (a pool
  of 10 could then answer 10 threads at once), a transaction-level one an open transaction for
  minutes; a row costs nothing while held, and its expiry is what lets work outlive a dead
  holder. Inside one instance, `ThreadManager` still orders its own messages (its line); the
  row orders instances: a message that waits for a thread held elsewhere says so
  (`queue_for_thread`), and the longest-waiting one goes next.
- Both leases last `LEASE_SECONDS` and are renewed by this instance's **heartbeat** every
  quarter of that. An instance that stops (kill -9, host gone) stops renewing; once its
  leases ran out, any other instance **takes over** its unsettled messages (`take_over`, with
  `FOR UPDATE SKIP LOCKED`: never two takers for one message) and answers them or says they
  were lost, and its threads are free again. A live holder's lease is never taken.

`owner` is `INSTANCE_NAME#<random>`: each run of a process is its own owner, so a restarted
instance never renews what its dead predecessor held. The instance name itself is held as an
advisory lock for the process's lifetime (`hold_instance_name`): a process that gets it knows
every earlier run of its name is gone, and recovers their messages at start without waiting
for their leases to run out (a PM2 restart answers as fast as it did on one instance).

On SQLite there is one process: nothing here is used (`shared` is False) and the in-memory
locks are the whole story, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any, Awaitable, Callable

from base_client import Message
from database import Database

log = logging.getLogger(__name__)

# How often a message waiting for a thread held on another instance looks again.
THREAD_POLL_SECONDS = 0.25
# A process starting under a name whose previous run was just killed: how long it lets the
# server notice that run's session is gone before starting without its name (see `claim_name`).
NAME_WAIT_SECONDS = 3.0
NAME_POLL_SECONDS = 0.1
TAKE_OVER_BATCH = 50
# The NOTIFY channel on which one instance asks another to stop an answer it is writing.
STOP_CHANNEL = "assistant_stop"
# A stop's owner when it is for whichever instance has the message (a queued one).
EVERY_INSTANCE = "*"


class Leases:
    """This instance's leases on messages and threads, its heartbeat, and takeovers."""

    def __init__(self, db: Database, instance_name: str, lease_seconds: float, shared: bool) -> None:
        self.db = db
        self.name = instance_name
        self.owner = f"{instance_name}#{secrets.token_hex(4)}"
        self.lease_seconds = lease_seconds
        # False on SQLite (one process): no lease is taken or renewed.
        self.shared = shared
        # Whether this process holds its instance name (see the module docstring).
        self.name_held = False
        # The threads whose turn this instance holds now (and for which message), for the
        # heartbeat's check.
        self._held: dict[tuple[str, str], str] = {}
        # Stops sent by other instances: the handler, and the event set when its session is lost.
        self._on_stop_payload: Callable[[str], None] = lambda payload: None
        self._stops_lost = asyncio.Event()

    @property
    def interval(self) -> float:
        """Heartbeat and takeover scan period: a quarter of the lease, so a lease outlives
        three missed beats, and a dead instance's work is claimed within 1.25 leases."""
        return max(self.lease_seconds / 4, 0.05)

    @property
    def poll_seconds(self) -> float:
        return min(THREAD_POLL_SECONDS, self.interval)

    async def claim_name(self, wait_seconds: float = NAME_WAIT_SECONDS) -> bool:
        """Hold this instance's name; a moment's patience for a predecessor killed just now.

        Another live process with the same name: this one starts anyway, without recovering
        that name's messages early (its turns are taken over when their leases run out).
        """
        if not self.shared:
            return True
        deadline = time.monotonic() + wait_seconds
        while not await self.db.hold_instance_name(self.name):
            if time.monotonic() >= deadline:
                log.error(
                    "INSTANCE_NAME %s is in use by another running instance: give each instance its "
                    "own name (docs/operations.md); starting without recovering that name's messages",
                    self.name,
                )
                return False
            await asyncio.sleep(NAME_POLL_SECONDS)
        self.name_held = True
        return True

    # --- threads -------------------------------------------------------------------------------

    async def take_thread(self, message: Message, *, queued: bool = False) -> int | None:
        """The thread's turn for `message` if no other instance holds it: its turn number."""
        turn = await self.db.take_thread(
            message.channel_id, message.thread_id, message.message_id, self.owner, self.lease_seconds,
            queued=queued,
        )
        if turn is not None:
            self._held[(message.channel_id, message.thread_id)] = message.message_id
        return turn

    async def wait_for_thread(self, message: Message) -> int:
        """Until the thread's turn is this message's: the holder finishes, or its lease runs out."""
        await self.db.queue_for_thread(message.channel_id, message.message_id)
        while True:
            turn = await self.take_thread(message, queued=True)
            if turn is not None:
                return turn
            await asyncio.sleep(self.poll_seconds)

    async def release_thread(self, message: Message) -> None:
        key = (message.channel_id, message.thread_id)
        if self._held.get(key) == message.message_id:
            del self._held[key]
        await self.db.release_thread(message.channel_id, message.thread_id, message.message_id, self.owner)

    # --- stopping an answer written by another instance ---------------------------------------

    async def listen_for_stops(self, stop: Callable[[str, str, str, str | None], bool]) -> None:
        """`stop(channel, thread, user, shown_as)` for each stop another instance forwards to
        this one (`shown_as`: the message a Stop was pressed on, if it names one).

        Slack hands a click on Stop (or its native stop event) to any instance's connection,
        not necessarily to the one writing the answer.
        """
        if not self.shared:
            return

        def on_payload(payload: str) -> None:  # called by asyncpg on the loop
            try:
                asked = json.loads(payload)
                owner, channel, thread, user = asked["owner"], asked["channel"], asked["thread"], asked["user"]
                shown_as = asked.get("shown_as")
            except (ValueError, KeyError, TypeError):
                log.warning("ignored a forwarded stop that is not one: %.200r", payload)
                return
            if owner not in (self.owner, EVERY_INSTANCE):
                return
            if not stop(channel, thread, user, shown_as) and owner == self.owner:
                log.info("%s:%s: a stop forwarded for %s found nothing to stop (finished since)",
                         channel, thread, user)

        self._on_stop_payload = on_payload
        self._stops_lost = await self.db.listen(STOP_CHANNEL, on_payload)

    async def keep_listening_for_stops(self) -> None:
        """A job: listens again whenever the session `listen_for_stops` opened is lost. Listening
        may fail while the database is away: the job then fails, and the supervisor retries it
        with its backoff."""
        while True:
            await self._stops_lost.wait()
            self._stops_lost = await self.db.listen(STOP_CHANNEL, self._on_stop_payload)
            log.warning("listening for stops from other instances again")

    async def forward_stop(
        self, channel_id: str, thread_ts: str, user_id: str, may_stop: Callable[[str], bool],
        shown_as: str | None = None,
    ) -> bool:
        """Stop the answer another instance is writing in the thread, if `may_stop` its asker
        (the person it is for, or an admin): whether a stop was sent to that instance.

        `shown_as`: the Stop was pressed on that message, which is not the placeholder of an
        answer of this instance's: a message queued on some instance. Every instance is told,
        and the one it waits on checks who may stop it.
        """
        if not self.shared:
            return False
        if shown_as is not None:
            log.info("%s:%s: stop by %s of queued message %s sent to every instance",
                     channel_id, thread_ts, user_id, shown_as)
            await self.db.notify(STOP_CHANNEL, json.dumps({
                "owner": EVERY_INSTANCE, "channel": channel_id, "thread": thread_ts, "user": user_id,
                "shown_as": shown_as,
            }))
            return True
        holder = await self.db.thread_turn(channel_id, thread_ts)
        if holder is None or holder[0] == self.owner:
            return False
        owner, asker = holder
        if not may_stop(asker):
            log.info("%s:%s: %s may not stop %s's answer", channel_id, thread_ts, user_id, asker)
            return False
        log.info("%s:%s: stop by %s forwarded to %s", channel_id, thread_ts, user_id, owner)
        await self.db.notify(STOP_CHANNEL, json.dumps(
            {"owner": owner, "channel": channel_id, "thread": thread_ts, "user": user_id}
        ))
        return True

    # --- heartbeat and takeover ------------------------------------------------------------

    async def renew(self) -> tuple[int, int]:
        """One heartbeat; says so when a thread this instance holds was taken meanwhile."""
        held = len(self._held)
        messages, threads = await self.db.renew_leases(self.owner, self.lease_seconds)
        if threads < held:
            log.error(
                "%d of the %d threads this instance is answering in were taken by another instance "
                "(this one could not renew its leases in time)", held - threads, held,
            )
        return messages, threads

    async def run_heartbeat(self) -> None:
        """Background job: renew this instance's leases every `interval`, forever.

        A failed renewal is logged and tried again at the next beat; the leases last three
        more beats. Past that another instance may take this one's work over, and says so.
        """
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.renew()
            except self.db.errors as exc:
                late = time.monotonic() - last
                level = logging.ERROR if late >= self.lease_seconds else logging.WARNING
                log.log(level, "could not renew this instance's leases (%s), %.1f s after the last renewal "
                               "(they last %g s)", exc, late, self.lease_seconds)
                continue
            last = time.monotonic()

    async def take_over(self, *, at_start: bool = False) -> list[dict[str, Any]]:
        """Unsettled messages of instances that stopped renewing their leases, now this one's.

        At start, also the messages of this name's earlier runs (dead, since this process
        holds the name), without waiting for their leases to run out. Claimed in batches, each
        its own short transaction, until none is left.
        """
        previous = f"{self.name}#" if at_start and self.name_held else None
        taken: list[dict[str, Any]] = []
        while True:
            batch = await self.db.take_over(self.owner, self.lease_seconds, previous=previous, limit=TAKE_OVER_BATCH)
            taken += batch
            if len(batch) < TAKE_OVER_BATCH:
                return taken

    async def run_takeovers(self, handle: Callable[[list[dict[str, Any]]], Awaitable[None]]) -> None:
        """Background job: every `interval`, take over what dead instances left and `handle` it."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                rows = await self.take_over()
            except self.db.errors as exc:
                log.warning("could not look for the work of stopped instances: %s", exc)
                continue
            if rows:
                owners = sorted({str(row["previous_owner"]) for row in rows})
                log.warning("taking over %d unanswered messages of stopped instances (%s)",
                            len(rows), ", ".join(owners))
                await handle(rows)
