"""Backups open and hold the data; only our oldest backups are pruned; old threads are forgotten."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from base_client import Role
from data_care import DataCare, backup_name, newest_backup_time, to_prune
from database import Database, StoredMessage


@pytest.fixture
async def db(tmp_path: Path):
    db = Database(str(tmp_path / "bot.db"))
    await db.open()
    yield db
    await db.close()


async def test_a_backup_opens_and_holds_the_data(db: Database, tmp_path: Path) -> None:
    thread = await db.ensure_thread("C1", "1.1")
    await db.add_messages(thread, [StoredMessage(Role.USER, "keep me safe")])
    care = DataCare(db, str(tmp_path / "backups"), keep=2, interval_seconds=3600, retention_days=0)

    path = await care.backup_now()

    with sqlite3.connect(path) as copy:
        assert copy.execute("SELECT text FROM messages").fetchall() == [("keep me safe",)]
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not list((tmp_path / "backups").glob("*.partial"))


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


async def test_a_backup_is_due_at_once_without_one_then_after_the_interval(db: Database, tmp_path: Path) -> None:
    care = DataCare(db, str(tmp_path / "backups"), keep=3, interval_seconds=600, retention_days=0)
    assert await care._seconds_until_due() == 0
    await care.backup_now()
    assert 590 < await care._seconds_until_due() <= 600


async def test_retention_forgets_idle_threads_with_their_turns_but_keeps_usage(db: Database) -> None:
    old = await db.ensure_thread("C1", "1.1")
    await db.add_messages(old, [StoredMessage(Role.USER, "long ago")])
    await db.record_usage("U1", "C1", "1.1", "m", "answer", 10, 5)
    await db.conn.execute("UPDATE threads SET last_activity = ? WHERE id = ?", (time.time() - 40 * 86400, old))
    recent = await db.ensure_thread("C1", "2.2")
    await db.add_messages(recent, [StoredMessage(Role.USER, "today")])
    care = DataCare(db, None, keep=0, interval_seconds=3600, retention_days=30)

    assert await care.forget_old_threads() == 1

    assert await db.thread_id("C1", "1.1") is None
    assert [m.text for m in await db.thread_messages(recent)] == ["today"]
    async with db.conn.execute("SELECT COUNT(*) FROM messages") as cursor:
        assert (await cursor.fetchone())[0] == 1  # the old thread's turns went with it
    assert await db.tokens_used("U1", 0) == 15
