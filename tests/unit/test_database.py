"""Persistence: pragmas, private files, versioned migrations, the journal that deduplicates.

On both engines (tests/engines.py), except what only SQLite has.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from tests.engines import ENGINE, postgresql_only, sqlite_only

# sha256 of each migration as it shipped (SQLite's text): rendered for SQLite, the neutral
# migrations must stay exactly these, so an existing database upgrades as it always did.
SHIPPED_MIGRATIONS = (
    "f89fbe9873a899bbf5860e4a4888ee57a43bf7b5b76dea661ddbcddefdd6dbee",
    "4d69e8cfcb6ebc1c39a63b3e370df2579cae21924ebef719628e529a6e4906b1",
    "dedbf37daf3bdc8461eb500cf324db3ffabfa7af8604aa29796324b6a2b7e9f3",
    "b9f10ff7723d87df90ce8e31929cebc54bfd691e853f85f1c1da7e57feadd3b0",
    "4addb179760b44cc041bda4b19486e1b8ef2e154211fac6539c439470c690048",
    "6306ea13173117dbbaf1c8888e713d97a0d0be7be2a7f95741d8338bfa1dca75",
    "f72b51d0d851b3c8c57198383c402cf3325b686a2ac167ccf7b0d5ffa8b638f3",
    "555dc16e6985120349d431bc86349157df50527094c47bffdda5ec1de24773e3",
    "fe75fedc571f6abd0d5c2a11ef04f7cf85932772b702a0f53935d0d980d72a52",
    "fe3019cb521346813fc60e63e85f9ce9582681bd68db4401be38eff60bf4c2ef",
    "36af65dc017ba50b2dd032f6020c5ba19f14cb70765b9aaa77063dfbb2b50c29",
)


@pytest.fixture
async def db(database_url: str):
    db = Database(database_url)
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


@sqlite_only("the database's own files and their modes")
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


@sqlite_only("the database's own files and their modes")
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


@sqlite_only("PRAGMA journal_mode and foreign_keys")
async def test_wal_foreign_keys_and_schema_version(db: Database) -> None:
    async with db.conn.execute("PRAGMA journal_mode") as cursor:
        assert (await cursor.fetchone())[0] == "wal"
    async with db.conn.execute("PRAGMA foreign_keys") as cursor:
        assert (await cursor.fetchone())[0] == 1
    assert await db.schema_version() == len(database.MIGRATIONS)


async def test_a_new_database_gets_every_migration_on_either_engine(db: Database) -> None:
    assert db.engine == ENGINE
    assert await db.schema_version() == len(database.MIGRATIONS)


def test_the_migrations_rendered_for_sqlite_are_the_ones_that_shipped() -> None:
    rendered = [database.SQLITE_DIALECT.migration(m) for m in database.MIGRATIONS]
    shipped = [hashlib.sha256(sql.encode()).hexdigest() for sql in rendered[: len(SHIPPED_MIGRATIONS)]]
    assert shipped == list(SHIPPED_MIGRATIONS)
    assert all("{" not in sql for sql in rendered)  # every placeholder is known


def test_parameters_are_numbered_for_postgresql_outside_quoted_text() -> None:
    assert database._numbered("SELECT ?, 'a?b :c', x::text FROM t WHERE a = ?") == (
        "SELECT $1, 'a?b :c', x::text FROM t WHERE a = $2", None
    )
    assert database._numbered("DELETE FROM t WHERE {greatest}(a, b) < :before OR c < :since OR d < :before") == (
        "DELETE FROM t WHERE GREATEST(a, b) < $1 OR c < $2 OR d < $1", ("before", "since")
    )
    assert database._postgresql_query("x < :b AND y < :a", {"a": 1, "b": 2}) == ("x < $1 AND y < $2", (2, 1))


@postgresql_only("column types")
async def test_timestamps_are_double_precision_and_blobs_bytea_on_postgresql(db: Database) -> None:
    types = {
        (r["column_name"], r["data_type"]) for r in await db.query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()"
        )
    }
    assert {t for c, t in types if c.endswith("_at") or c in ("last_activity",)} == {"double precision"}
    assert {t for c, t in types if c == "data"} == {"bytea"}
    assert {t for c, t in types if c == "id" or c.endswith("_tokens")} == {"bigint"}


async def test_a_database_made_by_an_older_version_upgrades_and_keeps_its_data(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = database.MIGRATIONS
    monkeypatch.setattr(database, "MIGRATIONS", everything[:6])  # before the trigger (7)
    old = Database(database_url)
    await old.open()
    thread = await old.ensure_thread("C1", "1.1")
    await old.query("UPDATE threads SET last_activity = 0")
    await old.close()

    monkeypatch.setattr(database, "MIGRATIONS", everything)
    db = Database(database_url)
    await db.open()
    try:
        assert await db.schema_version() == len(everything)
        await db.add_messages(thread, [StoredMessage(Role.USER, "after the upgrade")])
        [row] = await db.query("SELECT last_activity FROM threads")
        assert row[0] > 0  # migration 7's trigger touched the thread
        assert [m.text for m in await db.thread_messages(thread)] == ["after the upgrade"]
    finally:
        await db.close()


async def test_migrations_run_once_and_a_newer_database_is_refused(database_url: str, monkeypatch) -> None:
    path = database_url
    first = Database(path)
    await first.open()
    await first.close()
    extra = "CREATE TABLE later (id {pk});"
    monkeypatch.setattr(database, "MIGRATIONS", (*database.MIGRATIONS, extra))
    upgraded = Database(path)
    await upgraded.open()  # applies only the new migration
    assert await upgraded.schema_version() == len(database.MIGRATIONS)
    await upgraded.close()

    monkeypatch.setattr(database, "MIGRATIONS", database.MIGRATIONS[:1])
    with pytest.raises(DatabaseError, match="newer than this code"):
        await Database(path).open()


async def test_an_unreachable_postgresql_database_is_one_clear_error_without_the_password(tmp_path: Path) -> None:
    db = Database(f"postgresql://bot:s3cret@/bot?host={tmp_path}/no-server-here")
    with pytest.raises(DatabaseError, match="cannot open the PostgreSQL database postgresql://bot@/bot") as caught:
        await db.open()
    assert "s3cret" not in str(caught.value)
    await db.close()  # nothing was opened: closing is harmless


async def test_a_message_is_claimed_once(db: Database) -> None:
    assert await db.claim_message("D1", "1.1", "1.1", "U1", "hi", "Ev1")
    assert not await db.claim_message("D1", "1.1", "1.1", "U1", "hi", "Ev2")  # same ts
    assert not await db.claim_message("D1", "1.2", "1.1", "U1", "hi", "Ev1")  # same event id
    assert await db.claim_message("D1", "1.3", "1.1", "U1", "hi", None)
    assert await db.claim_message("D1", "1.4", "1.1", "U1", "hi", None)  # no id: ts alone decides
    await db.set_message_status("D1", "1.1", "answered")
    assert await db.message_status("D1", "1.1") == "answered"


async def test_a_burst_of_statements_sent_at_once_all_land(db: Database) -> None:
    """Claims, turns, threads, users and reads in flight together, as in a burst of messages:
    none fails (on SQLite they pile up on the connection's one thread at once, where a cursor
    freed on the event loop would race the next statement), and claims keep their order."""
    count = 200
    thread = await db.ensure_thread("C1", "1.0")

    async def one(n: int) -> None:
        assert await db.claim_message("D1", f"2.{n:04d}", "1.0", "U1", f"q{n}", f"Ev{n}")
        await asyncio.gather(
            db.add_messages(thread, [StoredMessage(Role.USER, f"q{n}", f"2.{n:04d}", "U1", "Alice")]),
            db.ensure_thread("C1", f"3.{n}"),
            db.save_user(UserInfo(f"U{n}", f"Person {n}", "UTC")),
            db.set_message_status("D1", f"2.{n:04d}", "answering"),
            db.message_status("D1", f"2.{n:04d}"),
        )

    await asyncio.gather(*(one(n) for n in range(count)))

    assert len(await db.thread_messages(thread)) == count
    rows = await db.query("SELECT message_ts, status FROM inbound_messages ORDER BY received_at, message_ts")
    assert {r["status"] for r in rows} == {"answering"} and len(rows) == count
    assert await db.get_user(f"U{count - 1}", max_age_seconds=60) == UserInfo(f"U{count - 1}", f"Person {count - 1}", "UTC")


@sqlite_only("one connection: the order statements were sent in")
async def test_statements_run_in_the_order_they_were_sent(db: Database) -> None:
    thread = await db.ensure_thread("C1", "1.0")
    await asyncio.gather(*(
        db.add_messages(thread, [StoredMessage(Role.USER, f"q{n}")]) for n in range(300)
    ))
    assert [m.text for m in await db.thread_messages(thread)] == [f"q{n}" for n in range(300)]


@sqlite_only("one connection shared by every coroutine: a transaction must not take in others' statements")
async def test_a_statement_sent_during_a_transaction_waits_and_is_not_rolled_back_with_it(db: Database) -> None:
    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        async with db._engine.transaction() as tx:
            await tx.write("INSERT INTO threads (channel_id, thread_ts, created_at, last_activity) "
                           "VALUES ('C1', '9.9', 0, 0)")
            saving = asyncio.ensure_future(db.save_user(UserInfo("U1", "Alice", "UTC")))
            # A round trip on the connection: a statement sent straight away would be done by now.
            assert [tuple(r) for r in await tx.read("SELECT count(*) FROM users")] == [(0,)]
            assert not saving.done()
            raise Abandoned  # rolled back: the thread goes, the person saved meanwhile must not
    await saving

    assert await db.get_user("U1", max_age_seconds=60) == UserInfo("U1", "Alice", "UTC")
    assert await db.query("SELECT id FROM threads WHERE thread_ts = '9.9'") == []


async def test_turns_are_kept_in_order_and_deleted_with_their_thread(db: Database) -> None:
    thread = await db.ensure_thread("C1", "5.5")
    assert await db.ensure_thread("C1", "5.5") == thread
    await db.add_messages(thread, [StoredMessage(Role.USER, "q", "5.5", "U1", "Alice")])
    await db.add_messages(thread, [StoredMessage(Role.ASSISTANT, "a", "5.6")])
    assert [m.text for m in await db.thread_messages(thread)] == ["q", "a"]
    await db.add_messages(thread, [StoredMessage(Role.USER, "rebuilt")], replace=True)
    assert [m.text for m in await db.thread_messages(thread)] == ["rebuilt"]
    await db.query("DELETE FROM threads WHERE id = ?", (thread,))
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

    await db.query("DELETE FROM threads WHERE id = ?", (thread,))  # retention: they go with it
    assert await db.thread_files(thread) == []
    assert [f.name for f in await db.thread_files(other)] == ["elsewhere.json"]
