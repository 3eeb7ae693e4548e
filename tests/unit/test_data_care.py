"""Backups open and hold the data, privately; only our oldest backups are pruned; old data is
forgotten, table by table, and leaves no trace in the files."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Iterator

import pytest

from base_client import Role, UserInfo
from data_care import DataCare, backup_name, describe_deleted, newest_backup_time, to_prune, utc_day_start
from database import Database, DatabaseError, StoredImage, StoredMessage
from tests.engines import postgresql_only, sqlite_only

DAY = 86400.0
online_backup = sqlite_only("SQLite's online backup (PostgreSQL is backed up with pg_dump)")


@pytest.fixture
async def db(database_url: str):
    db = Database(database_url)
    await db.open()
    yield db
    await db.close()


@postgresql_only("what the bot says instead of a backup")
async def test_the_bot_takes_no_backup_of_a_postgresql_database(db: Database, tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="pg_dump"):
        await db.backup_to(str(tmp_path / "copy.db"))


@online_backup
async def test_a_backup_opens_and_holds_the_data(db: Database, tmp_path: Path) -> None:
    thread = await db.ensure_thread("C1", "1.1")
    await db.add_messages(thread, [StoredMessage(Role.USER, "keep me safe")])
    care = DataCare(db, str(tmp_path / "backups"), keep=2, interval_seconds=3600, retention_days=0)

    path = await care.backup_now()

    with sqlite3.connect(path) as copy:
        assert copy.execute("SELECT text FROM messages").fetchall() == [("keep me safe",)]
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not list((tmp_path / "backups").glob("*.partial"))


@online_backup
async def test_only_the_newest_backups_are_kept_and_other_files_are_left_alone(
    db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    for name in ("bot-20260101-000000.db", "bot-20260102-000000.db", "notes.txt", "bot-old.db"):
        (folder / name).write_text("x")
    care = DataCare(db, str(folder), keep=2, interval_seconds=3600, retention_days=0)

    newest = Path(await care.backup_now()).name

    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["bot-20260102-000000.db", newest, "notes.txt", "bot-old.db"]
    )


def test_backup_names_sort_by_time_and_tell_when_the_newest_was_taken() -> None:
    now = time.time()
    names = [backup_name(now - 7200), backup_name(now), "other.db"]
    assert to_prune(names, keep=1) == [backup_name(now - 7200)]
    assert newest_backup_time(names) == pytest.approx(now, abs=1)
    assert newest_backup_time(["other.db"]) is None


@online_backup
async def test_a_backup_is_due_at_once_without_one_then_after_the_interval(db: Database, tmp_path: Path) -> None:
    care = DataCare(db, str(tmp_path / "backups"), keep=3, interval_seconds=600, retention_days=0)
    assert await care._seconds_until_due() == 0
    await care.backup_now()
    assert 590 < await care._seconds_until_due() <= 600


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@online_backup
async def test_backups_and_their_folder_are_private_whatever_the_umask(
    db: Database, tmp_path: Path, umask_022: None
) -> None:
    folder = tmp_path / "deep" / "backups"
    care = DataCare(db, str(folder), keep=2, interval_seconds=3600, retention_days=0)

    path = await care.backup_now()

    assert (mode(folder.parent), mode(folder), mode(path)) == (0o700, 0o700, 0o600)


@online_backup
async def test_a_failed_backup_leaves_no_partial_copy_behind(tmp_path: Path) -> None:
    never_opened = Database(str(tmp_path / "missing.db"))  # the read-only source cannot open
    folder = tmp_path / "backups"
    care = DataCare(never_opened, str(folder), keep=2, interval_seconds=3600, retention_days=0)

    with pytest.raises(sqlite3.Error):
        await care.backup_now()

    assert list(folder.iterdir()) == []


async def _set(db: Database, sql: str, *params: object) -> None:
    await db.query(sql, params)


async def test_retention_empties_every_table_of_old_rows_and_keeps_new_ones(db: Database) -> None:
    now = time.time()
    old, cutoff = now - 40 * DAY, now - 30 * DAY
    image = StoredImage("cat.png", "image/png", b"png")
    # An idle thread, and one still in use; each with a turn, an image and its settings.
    for ts in ("1.1", "2.2"):
        thread = await db.ensure_thread("C1", ts)
        await db.add_messages(thread, [StoredMessage(Role.USER, f"turn in {ts}")])
        await db.add_images(thread, ts, [image])
        await db.save_thread_settings("C1", ts, {"model": "m"}, "U1")
        await db.save_thread_user_settings("C1", ts, f"U{ts[0]}", {"model": "m"})  # goes with its thread
    await _set(db, "UPDATE threads SET last_activity = ? WHERE thread_ts = '1.1'", old)
    # Answers: one in the idle thread, one long ago and one today in the thread in use.
    await db.record_answer("C1", "1.5", "1.1", "U1", "m", {})
    await db.record_answer("C1", "2.4", "2.2", "U1", "m", {})
    await db.record_answer("C1", "2.5", "2.2", "U1", "m", {})
    await _set(db, "UPDATE answers SET created_at = ? WHERE message_ts IN ('1.5', '2.4')", old)
    # Feedback: a late click on the idle thread's answer, one long ago, one today.
    await db.record_feedback("C1", "1.5", "U2", "good")
    await db.record_feedback("C1", "2.5", "U2", "bad")
    await db.record_feedback("C1", "2.5", "U3", "good")
    await _set(db, "UPDATE feedback SET created_at = ? WHERE user_id = 'U3'", old)
    # Usage: long ago; today; and the idle thread's, from today (the budget's) and from before.
    for ts, created in (("2.2", old), ("2.2", now), ("1.1", now), ("1.1", now - 2 * DAY)):
        await db.record_usage("U1", "C1", ts, "m", "answer", 10, 5)
        await _set(db, "UPDATE usage SET created_at = ? WHERE id = (SELECT MAX(id) FROM usage)", created)
    # The journal: an old row, and a new one (in the idle thread: a message still in flight).
    await db.claim_message("C1", "0.9", "0.9", "UGONE", "long ago", "Ev0")
    await _set(db, "UPDATE inbound_messages SET updated_at = ?", old)
    await db.claim_message("C1", "1.9", "1.1", "UBACK", "just now", "Ev1")
    # People: gone; seen today; cached long ago but in the journal since; only welcomed today.
    for user in ("UGONE", "UNEW", "UBACK"):
        await db.save_user(UserInfo(user, user.lower(), "UTC"))
        await db.save_user_settings(user, {"model": "m"})
    await _set(db, "UPDATE users SET updated_at = ? WHERE user_id IN ('UGONE', 'UBACK')", old)
    await _set(db, "UPDATE user_settings SET updated_at = ?", old)
    assert await db.mark_welcomed("UWELCOMED")
    await db.save_workspace_settings({"model": "m"}, "UADMIN")
    # Tool calls: one in the idle thread, one long ago and one today in the thread in use.
    for ts in ("1.1", "2.2", "2.2"):
        await db.record_tool_call("U1", "C1", ts, "orders__lookup", "ok", 12)
    await _set(db, "UPDATE tool_calls SET created_at = ? WHERE id = 2", old)
    # Threads' turns (several instances): the idle thread's and a never answered thread's go.
    for ts in ("1.1", "2.2", "9.9"):
        assert await db.take_thread("C1", ts, ts, "bot-a#1", 30) == 1
        await db.release_thread("C1", ts, ts, "bot-a#1")

    deleted = await db.delete_expired(cutoff, keep_usage_since=now - DAY)

    assert deleted == {
        "feedback": 2, "answers": 2, "usage": 2, "tool_calls": 2, "inbound_messages": 1,
        "thread_leases": 2, "threads": 1, "users": 1, "user_settings": 1,
    }

    async def left(sql: str, *params: object) -> list[tuple[object, ...]]:
        return [tuple(row) for row in await db.query(sql, params)]

    assert await left("SELECT thread_ts FROM threads") == [("2.2",)]
    assert await left("SELECT thread_ts FROM tool_calls") == [("2.2",)]
    assert await left("SELECT user_id FROM thread_user_settings") == [("U2",)]  # the one of 2.2
    assert await left("SELECT text FROM messages") == [("turn in 2.2",)]
    assert await left("SELECT slack_ts FROM images") == [("2.2",)]
    assert await left("SELECT COUNT(*) FROM thread_settings") == [(1,)]
    assert await left("SELECT message_ts FROM answers") == [("2.5",)]
    assert await left("SELECT message_ts, user_id FROM feedback") == [("2.5", "U2")]
    assert await left("SELECT thread_ts, created_at = ? FROM usage ORDER BY id", now) == [("2.2", 1), ("1.1", 1)]
    assert await left("SELECT message_ts FROM inbound_messages") == [("1.9",)]
    assert await left("SELECT thread_ts FROM thread_leases") == [("2.2",)]
    assert await left("SELECT user_id FROM users ORDER BY user_id") == [("UBACK",), ("UNEW",), ("UWELCOMED",)]
    assert await left("SELECT user_id FROM user_settings ORDER BY user_id") == [("UBACK",), ("UNEW",)]
    assert await db.workspace_settings() == {"model": "m"}  # the admins' configuration stays


async def test_retention_keeps_todays_usage_of_a_forgotten_thread_for_the_budget(db: Database) -> None:
    old = await db.ensure_thread("C1", "1.1")
    await db.add_messages(old, [StoredMessage(Role.USER, "long ago")])
    await db.record_usage("U1", "C1", "1.1", "m", "answer", 10, 5)
    await db.query("UPDATE threads SET last_activity = ? WHERE id = ?", (time.time() - 40 * DAY, old))
    care = DataCare(db, None, keep=0, interval_seconds=3600, retention_days=30)

    deleted = await care.forget_old_data()

    assert deleted["threads"] == 1 and await db.thread_id("C1", "1.1") is None
    assert await db.tokens_used("U1", utc_day_start(time.time())) == 15
    assert describe_deleted(deleted) == "1 threads"


@postgresql_only("several instances on one database")
async def test_retention_runs_on_one_instance_at_a_time(db: Database, database_url: str) -> None:
    old = await db.ensure_thread("C1", "1.1")
    await db.query("UPDATE threads SET last_activity = ? WHERE id = ?", (time.time() - 40 * DAY, old))
    care = DataCare(db, None, keep=0, interval_seconds=3600, retention_days=30)
    other = Database(database_url)
    await other.open()
    try:
        async with other.job_lock("retention") as running_there:
            assert running_there
            assert await care.forget_old_data() is None  # skipped: the other instance is at it
            assert await db.thread_id("C1", "1.1") == old
    finally:
        await other.close()

    deleted = await care.forget_old_data()

    assert deleted is not None and deleted["threads"] == 1


@sqlite_only("secure_delete and the WAL file")
async def test_what_retention_deletes_leaves_no_trace_in_the_files(db: Database, tmp_path: Path) -> None:
    in_file, in_wal = b"the launch code is 7431-TANGERINE", b"the vault opens with 9902-PLUM"
    kept = await db.ensure_thread("C1", "2.2")  # its turns share the pages: they are not emptied
    await db.add_messages(kept, [StoredMessage(Role.USER, "still here")])
    thread = await db.ensure_thread("C1", "1.1")
    await db.add_messages(thread, [StoredMessage(Role.USER, in_file.decode())])
    await db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # this one reaches the main file
    await db.add_messages(thread, [StoredMessage(Role.USER, in_wal.decode())])  # this one only the WAL
    await db.add_messages(kept, [StoredMessage(Role.USER, "and here")])
    await db.conn.execute("UPDATE threads SET last_activity = 0 WHERE id = ?", (thread,))
    main, wal = tmp_path / "bot.db", tmp_path / "bot.db-wal"
    assert in_file in main.read_bytes() and in_wal in wal.read_bytes()

    await db.delete_expired(time.time() - 3600, keep_usage_since=time.time())

    assert [m.text for m in await db.thread_messages(kept)] == ["still here", "and here"]
    for path in (main, wal):
        content = path.read_bytes()
        assert in_file not in content and in_wal not in content, path.name
