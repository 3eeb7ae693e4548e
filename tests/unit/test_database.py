"""Persistence: pragmas, private files, versioned migrations, the journal that deduplicates."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path
from typing import Iterator

import pytest

import database
from base_client import Role, UserInfo
from database import Database, DatabaseError, StoredMessage


@pytest.fixture
async def db(tmp_path: Path):
    db = Database(str(tmp_path / "sub" / "bot.db"))
    await db.open()
    yield db
    await db.close()


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, which makes new files readable by every account: what we must beat."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_database_its_wal_and_its_folder_are_private_whatever_the_umask(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / "data" / "bot.db"
    db = Database(str(path))
    await db.open()
    try:
        await db.ensure_thread("C1", "1.1")  # a write, so the WAL holds frames
        files = {p.name: mode(p) for p in (path.parent, path, Path(f"{path}-wal"), Path(f"{path}-shm"))}
        assert files == {"data": 0o700, "bot.db": 0o600, "bot.db-wal": 0o600, "bot.db-shm": 0o600}
        async with db.conn.execute("PRAGMA secure_delete") as cursor:
            assert (await cursor.fetchone())[0] == 1
    finally:
        await db.close()


async def test_files_an_older_version_left_readable_are_made_private(
    tmp_path: Path, umask_022: None
) -> None:
    running = sqlite3.connect(tmp_path / "bot.db")
    running.execute("PRAGMA journal_mode=WAL")
    running.execute("CREATE TABLE t (x)")
    running.commit()
    crashed = tmp_path / "crashed"  # the three files as a kill -9 leaves them, at 0644
    crashed.mkdir()
    for name in ("bot.db", "bot.db-wal", "bot.db-shm"):
        shutil.copy(tmp_path / name, crashed / name)
    running.close()
    assert mode(crashed / "bot.db-wal") == 0o644
    db = Database(str(crashed / "bot.db"))
    await db.open()
    try:
        assert {p.name: mode(p) for p in crashed.iterdir()} == {
            "bot.db": 0o600, "bot.db-wal": 0o600, "bot.db-shm": 0o600,
        }
        assert mode(crashed) == 0o755  # a folder that was there is not ours to change
    finally:
        await db.close()


async def test_wal_foreign_keys_and_schema_version(db: Database) -> None:
    async with db.conn.execute("PRAGMA journal_mode") as cursor:
        assert (await cursor.fetchone())[0] == "wal"
    async with db.conn.execute("PRAGMA foreign_keys") as cursor:
        assert (await cursor.fetchone())[0] == 1
    assert await db.schema_version() == len(database.MIGRATIONS)


async def test_migrations_run_once_and_a_newer_database_is_refused(tmp_path: Path, monkeypatch) -> None:
    path = str(tmp_path / "bot.db")
    first = Database(path)
    await first.open()
    await first.close()
    extra = "CREATE TABLE later (id INTEGER PRIMARY KEY);"
    monkeypatch.setattr(database, "MIGRATIONS", (*database.MIGRATIONS, extra))
    upgraded = Database(path)
    await upgraded.open()  # applies only the new migration
    assert await upgraded.schema_version() == len(database.MIGRATIONS)
    await upgraded.close()

    monkeypatch.setattr(database, "MIGRATIONS", database.MIGRATIONS[:1])
    with pytest.raises(DatabaseError, match="newer than this code"):
        await Database(path).open()


async def test_a_message_is_claimed_once(db: Database) -> None:
    assert await db.claim_message("D1", "1.1", "1.1", "U1", "hi", "Ev1")
    assert not await db.claim_message("D1", "1.1", "1.1", "U1", "hi", "Ev2")  # same ts
    assert not await db.claim_message("D1", "1.2", "1.1", "U1", "hi", "Ev1")  # same event id
    assert await db.claim_message("D1", "1.3", "1.1", "U1", "hi", None)
    assert await db.claim_message("D1", "1.4", "1.1", "U1", "hi", None)  # no id: ts alone decides
    await db.set_message_status("D1", "1.1", "answered")
    assert await db.message_status("D1", "1.1") == "answered"


async def test_turns_are_kept_in_order_and_deleted_with_their_thread(db: Database) -> None:
    thread = await db.ensure_thread("C1", "5.5")
    assert await db.ensure_thread("C1", "5.5") == thread
    await db.add_messages(thread, [StoredMessage(Role.USER, "q", "5.5", "U1", "Alice")])
    await db.add_messages(thread, [StoredMessage(Role.ASSISTANT, "a", "5.6")])
    assert [m.text for m in await db.thread_messages(thread)] == ["q", "a"]
    await db.add_messages(thread, [StoredMessage(Role.USER, "rebuilt")], replace=True)
    assert [m.text for m in await db.thread_messages(thread)] == ["rebuilt"]
    await db.conn.execute("DELETE FROM threads WHERE id = ?", (thread,))
    assert await db.thread_messages(thread) == []  # ON DELETE CASCADE works: foreign keys are on


async def test_users_expire(db: Database) -> None:
    await db.save_user(UserInfo("U1", "Alice", "Europe/Paris"))
    assert await db.get_user("U1", max_age_seconds=60) == UserInfo("U1", "Alice", "Europe/Paris")
    assert await db.get_user("U1", max_age_seconds=-1) is None


async def test_data_files_are_kept_per_thread_newest_copy_of_a_name_first(db: Database) -> None:
    thread = await db.ensure_thread("C1", "100.0")
    other = await db.ensure_thread("C1", "200.0")
    await db.add_thread_file(thread, "100.1", "sales.csv", "text/csv", b"month,total\n1,2\n")
    await db.add_thread_file(thread, "100.2", "plan.xlsx", "application/vnd.ms-excel", b"PK old")
    await db.add_thread_file(thread, "100.3", "sales.csv", "text/csv", b"month,total\n1,3\n")
    await db.add_thread_file(other, "200.1", "elsewhere.json", "application/json", b"{}")

    newest, plan = await db.thread_files(thread)
    assert (newest.name, newest.slack_ts, newest.size, newest.uploaded_id) == ("sales.csv", "100.3", 16, None)
    assert plan.name == "plan.xlsx"
    assert await db.thread_file_data(newest.id) == b"month,total\n1,3\n"

    await db.set_file_upload(newest.id, "file-abc", 1000.0)
    [again, _] = await db.thread_files(thread)
    assert (again.uploaded_id, again.uploaded_at) == ("file-abc", 1000.0)

    await db.conn.execute("DELETE FROM threads WHERE id = ?", (thread,))  # retention: they go with it
    assert await db.thread_files(thread) == []
    assert [f.name for f in await db.thread_files(other)] == ["elsewhere.json"]
