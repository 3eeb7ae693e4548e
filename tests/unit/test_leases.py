"""Leases in the database (several instances, issue 14): messages, threads' turns, takeovers, locks.

The SQL is the same on both engines (only PostgreSQL's instances share it); what only
PostgreSQL has (advisory locks, a second pool) is marked so.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest

from database import Database
from leases import STOP_CHANNEL, Leases
from tests.engines import postgresql_only

LEASE = 30.0


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.open()
    yield db
    await db.close()


async def claim(db: Database, ts: str, owner: str, thread: str | None = None) -> None:
    assert await db.claim_message("D1", ts, thread or ts, "U1", f"text {ts}", None, owner=owner, lease_seconds=LEASE)


async def lapse(db: Database, sql_where: str, *params: Any) -> None:
    """As if the holder had stopped renewing: its lease ran out a moment ago."""
    await db.query(f"UPDATE inbound_messages SET lease_until = 1 WHERE {sql_where}", params)


async def test_the_heartbeat_renews_only_its_own_unsettled_messages_and_held_threads(db: Database) -> None:
    await claim(db, "1.1", "a#1")
    await claim(db, "2.2", "a#1")
    await claim(db, "3.3", "b#1")
    await db.set_message_status("D1", "2.2", "answered", owner="a#1")
    assert await db.take_thread("D1", "1.1", "1.1", "a#1", LEASE) == 1
    await lapse(db, "1 = 1")

    assert await db.renew_leases("a#1", LEASE) == (1, 1)

    rows = await db.query("SELECT message_ts, lease_until > {now} AS live FROM inbound_messages ORDER BY message_ts")
    assert [(r["message_ts"], bool(r["live"])) for r in rows] == [("1.1", True), ("2.2", False), ("3.3", False)]


async def test_a_takeover_claims_only_lapsed_leases_of_others_and_says_whose_they_were(db: Database) -> None:
    await claim(db, "1.1", "a#1")  # live: never taken
    await claim(db, "2.2", "b#1")
    await claim(db, "3.3", "c#1")
    await claim(db, "4.4", "me#1")  # this instance's own, even lapsed
    await db.claim_message("D1", "5.5", "5.5", "U1", "from before leases", None)  # no owner: a dead process's
    await claim(db, "6.6", "b#1")
    await db.set_message_status("D1", "6.6", "answered", owner="b#1")  # settled: nothing to take
    await lapse(db, "message_ts IN ('2.2', '3.3', '4.4', '6.6')")

    taken = await db.take_over("me#1", LEASE)

    assert sorted((r["message_ts"], r["previous_owner"]) for r in taken) == [
        ("2.2", "b#1"), ("3.3", "c#1"), ("5.5", None),
    ]
    assert await db.take_over("me#1", LEASE) == []  # live now, or this instance's own
    # To anyone else, this instance's lapsed lease is a dead instance's.
    assert [r["message_ts"] for r in await db.take_over("other#1", LEASE)] == ["4.4"]
    rows = await db.query("SELECT message_ts, owner FROM inbound_messages ORDER BY message_ts")
    assert [r["owner"] for r in rows] == ["a#1", "me#1", "me#1", "other#1", "me#1", "b#1"]


async def test_at_start_the_earlier_runs_of_this_name_are_taken_at_once(db: Database) -> None:
    await claim(db, "1.1", "bot-a#old")  # live lease, but its run is known dead (the name is ours)
    await claim(db, "2.2", "bot-ab#x")  # another name that merely starts the same
    await claim(db, "3.3", "bot-a#new")

    taken = await db.take_over("bot-a#new", LEASE, previous="bot-a#")

    assert [r["message_ts"] for r in taken] == ["1.1"]


@postgresql_only("two pools on one server: two instances taking over at the same moment")
async def test_two_instances_taking_over_at_once_never_take_the_same_message(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    await first.open()
    await second.open()
    try:
        for i in range(60):
            await claim(first, f"{i}.0", "dead#1")
        await lapse(first, "1 = 1")

        batches = await asyncio.gather(*(db.take_over(f"{name}#1", LEASE, limit=7)
                                         for _ in range(6) for name, db in (("x", first), ("y", second))))

        taken = [row["message_ts"] for batch in batches for row in batch]
        assert len(taken) == len(set(taken)) == 60
    finally:
        await first.close()
        await second.close()


async def test_a_threads_turn_is_never_taken_from_a_live_holder(db: Database) -> None:
    assert await db.take_thread("D1", "1.1", "1.1", "a#1", LEASE) == 1
    assert await db.take_thread("D1", "1.1", "1.2", "b#1", LEASE) is None  # live: busy
    assert await db.take_thread("D1", "1.1", "1.3", "a#1", LEASE) == 2  # a's own leftover
    await db.release_thread("D1", "1.1", "1.2", "a#1")  # not the holding message: nothing
    assert await db.take_thread("D1", "1.1", "1.2", "b#1", LEASE) is None
    await db.release_thread("D1", "1.1", "1.3", "a#1")
    assert await db.take_thread("D1", "1.1", "1.2", "b#1", LEASE) == 3  # released: free
    await db.query("UPDATE thread_leases SET lease_until = 1")  # b stopped renewing
    assert await db.take_thread("D1", "1.1", "1.4", "c#1", LEASE) == 4
    lease = await db.thread_lease("D1", "1.1")
    assert lease is not None and (lease["owner"], lease["message_ts"], bool(lease["live"])) == ("c#1", "1.4", True)


async def test_the_message_that_waited_longest_on_another_instance_goes_first(db: Database) -> None:
    await claim(db, "1.1", "a#1")
    assert await db.take_thread("D1", "1.1", "1.1", "a#1", LEASE) == 1
    await claim(db, "1.2", "b#1", thread="1.1")  # arrives on b: waits
    await db.queue_for_thread("D1", "1.2")
    await claim(db, "1.3", "a#1", thread="1.1")  # arrives later on a, behind 1.1
    await db.release_thread("D1", "1.1", "1.1", "a#1")

    assert await db.take_thread("D1", "1.1", "1.3", "a#1", LEASE) is None  # 1.2 waited longer
    assert await db.take_thread("D1", "1.1", "1.2", "b#1", LEASE, queued=True) == 2
    [row] = await db.query("SELECT queued_at FROM inbound_messages WHERE message_ts = '1.2'")
    assert row["queued_at"] is None  # no longer waiting
    await db.release_thread("D1", "1.1", "1.2", "b#1")
    assert await db.take_thread("D1", "1.1", "1.3", "a#1", LEASE) == 3


async def test_every_settings_change_moves_the_settings_version(db: Database) -> None:
    start = await db.settings_version()
    await db.save_user_settings("U1", {"model": "m"})
    await db.save_workspace_settings({"model": "m"}, "U1")
    await db.save_thread_settings("C1", "1.1", {"model": "m"}, "U1")
    await db.save_thread_user_settings("C1", "1.1", "U1", {"model": "m"})
    assert await db.settings_version() == start + 4


async def test_the_job_lock_lets_one_instance_at_a_time_run_a_job(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    await first.open()
    await second.open()
    try:
        async with first.job_lock("retention") as mine:
            assert mine
            async with second.job_lock("retention") as theirs:
                assert theirs is (first.engine == "sqlite")  # one process on SQLite: no other
            async with second.job_lock("backups") as other_job:
                assert other_job
        async with second.job_lock("retention") as later:
            assert later
    finally:
        await first.close()
        await second.close()


@postgresql_only("advisory locks: one process per instance name")
async def test_an_instance_name_is_held_by_one_process_until_it_ends(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    await first.open()
    await second.open()
    try:
        assert await first.hold_instance_name("bot-a")
        assert not await second.hold_instance_name("bot-a")
        assert await second.hold_instance_name("bot-b")
        await first.close()  # the process ends: its session, and the name, are gone
        assert await second.hold_instance_name("bot-a")
    finally:
        await first.close()
        await second.close()


async def test_a_takeover_frees_the_threads_the_dead_instance_held(db: Database) -> None:
    await claim(db, "1.1", "dead#1")
    assert await db.take_thread("D1", "1.1", "1.1", "dead#1", LEASE) == 1
    assert await db.take_thread("D1", "7.7", "7.7", "alive#1", LEASE) == 1
    await lapse(db, "1 = 1")  # the thread's lease was renewed a beat later: still live

    await db.take_over("me#1", LEASE)

    assert await db.take_thread("D1", "1.1", "1.1", "me#1", LEASE) == 2
    assert await db.take_thread("D1", "7.7", "7.8", "me#1", LEASE) is None  # alive#1's stays


@postgresql_only("LISTEN/NOTIFY between instances")
async def test_stops_from_other_instances_are_heard_again_after_the_session_is_lost(db: Database) -> None:
    heard: list[tuple[Any, ...]] = []
    leases = Leases(db, "me", LEASE, shared=True)
    await leases.listen_for_stops(lambda *stop: heard.append(stop) is None)
    job = asyncio.create_task(leases.keep_listening_for_stops())
    stop = json.dumps({"owner": leases.owner, "channel": "D1", "thread": "1.1", "user": "U1"})

    async def heard_after_notifying(count: int) -> None:
        for _ in range(100):  # notified again until heard: the job listens again in its own time
            await db.notify(STOP_CHANNEL, stop)
            await asyncio.sleep(0.05)
            if len(heard) >= count:
                return
        raise AssertionError(f"heard {len(heard)} stops, not {count}")

    try:
        await heard_after_notifying(1)
        # The server ends the listening session, as a restart or a dropped connection would.
        [ended] = await db.query(
            "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
        )
        assert ended["ended"]
        await heard_after_notifying(len(heard) + 1)
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
    assert heard[-1] == ("D1", "1.1", "U1", None)
