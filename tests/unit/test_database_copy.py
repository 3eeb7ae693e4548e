"""`python -m database copy`: a deployment's database moved into another one, SQLite to PostgreSQL.

The source is a SQLite file; the target is this run's engine (a second SQLite file, or a new
PostgreSQL database under `make test-postgres`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from base_client import Role, UserInfo
from database import COPY_ORDER, Database, DatabaseError, StoredImage, StoredMessage, copy_database

ROOT = Path(__file__).resolve().parents[2]


async def filled(url: str) -> Database:
    """A database with rows in every table, and gaps in its numbering (a deleted thread)."""
    db = Database(url)
    await db.open()
    gone = await db.ensure_thread("C1", "0.1")
    for ts in ("1.1", "2.2"):
        thread = await db.ensure_thread("C1", ts)
        await db.add_messages(thread, [StoredMessage(Role.USER, f"hello {ts}", ts, "U1", "Alice"),
                                       StoredMessage(Role.ASSISTANT, f"answer {ts}")])
        await db.add_images(thread, ts, [StoredImage("cat.png", "image/png", b"\x89PNG\x00binary")])
        await db.add_thread_file(thread, ts, "data.csv", "text/csv", b"a,b\n1,2\n")
        await db.save_thread_settings("C1", ts, {"model": "m"}, "U1")
        await db.save_thread_user_settings("C1", ts, "U1", {"verbosity": "low"})
    await db.query("DELETE FROM threads WHERE id = ?", (gone,))
    await db.query("UPDATE threads SET last_activity = 1000.5")
    await db.save_user(UserInfo("U1", "Alice", "Europe/Paris"))
    await db.mark_welcomed("U1")
    await db.save_user_settings("U1", {"model": "m"})
    await db.save_workspace_settings({"model": "m"}, "UADMIN")
    assert await db.claim_message("C1", "2.3", "2.2", "U1", "question", "Ev1")
    await db.record_usage("U1", "C1", "2.2", "m", "answer", 10, 5)
    await db.record_tool_call("U1", "C1", "2.2", "orders__lookup", "ok", 12)
    await db.record_answer("C1", "2.4", "2.2", "U1", "m", {"model": "m"})
    await db.record_feedback("C1", "2.4", "U1", "good")
    assert await db.take_thread("C1", "2.2", "2.3", "bot-a#1", 30) == 1
    return db


async def rows_of(db: Database, table: str) -> list[tuple[object, ...]]:
    key = {"threads": "id", "messages": "id", "images": "id", "usage": "id", "tool_calls": "id",
           "thread_files": "id", "workspace_settings": "id"}.get(table)
    rows = await db.query(f"SELECT * FROM {table}")
    values = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]
    return sorted(values, key=repr) if key is None else sorted(values, key=lambda r: r[0])


async def test_every_table_is_copied_with_its_ids_and_the_numbering_goes_on_past_them(
    tmp_path: Path, database_url: str
) -> None:
    source = await filled(f"sqlite:///{tmp_path}/source.db")
    await source.close()

    copied = await copy_database(f"sqlite:///{tmp_path}/source.db", database_url)

    assert copied == {
        "threads": 2, "messages": 4, "users": 1, "inbound_messages": 1, "user_settings": 1,
        "thread_settings": 2, "images": 2, "usage": 1, "workspace_settings": 1, "answers": 1,
        "feedback": 1, "thread_user_settings": 2, "tool_calls": 1, "thread_files": 2, "thread_leases": 1,
    }
    source, target = Database(f"sqlite:///{tmp_path}/source.db"), Database(database_url)
    await source.open()
    await target.open()
    try:
        assert set(await target.tables()) == {*COPY_ORDER, "cache_versions"}
        for table in COPY_ORDER:
            assert await rows_of(target, table) == await rows_of(source, table), table
        # The activity the threads had, not the copied turns' (the insert trigger would set it).
        assert {r["last_activity"] for r in await target.query("SELECT last_activity FROM threads")} == {1000.5}
        newest = max(r["id"] for r in await source.query("SELECT id FROM threads"))
        assert await target.ensure_thread("C9", "9.9") == newest + 1
        thread = await target.thread_id("C1", "2.2")
        assert thread is not None
        await target.add_messages(thread, [StoredMessage(Role.USER, "after the move")])
        assert [m.text for m in await target.thread_messages(thread)][-1] == "after the move"
    finally:
        await source.close()
        await target.close()


async def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(tmp_path: Path, database_url: str) -> None:
    source = await filled(f"sqlite:///{tmp_path}/source.db")
    await source.close()
    target = Database(database_url)
    await target.open()
    await target.save_user(UserInfo("U9", "Zed", "UTC"))
    await target.close()

    with pytest.raises(DatabaseError, match="is not empty \\(users has rows\\)"):
        await copy_database(f"sqlite:///{tmp_path}/source.db", database_url)

    target = Database(database_url)
    await target.open()
    try:
        assert [r["n"] for r in await target.query("SELECT COUNT(*) AS n FROM threads")] == [0]
    finally:
        await target.close()


async def test_a_missing_source_file_is_refused(tmp_path: Path, database_url: str) -> None:
    with pytest.raises(DatabaseError, match="no SQLite database at"):
        await copy_database(f"sqlite:///{tmp_path}/nowhere.db", database_url)
    assert not (tmp_path / "nowhere.db").exists()


async def test_the_command_says_what_it_copied(tmp_path: Path, database_url: str) -> None:
    source = await filled(f"sqlite:///{tmp_path}/source.db")
    await source.close()

    done = subprocess.run(
        [sys.executable, "-m", "database", "copy", f"sqlite:///{tmp_path}/source.db", database_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    again = subprocess.run(
        [sys.executable, "-m", "database", "copy", f"sqlite:///{tmp_path}/source.db", database_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("copied 2 threads, 4 messages, 1 users, 1 inbound_messages, ")
    assert f"from sqlite:///{tmp_path}/source.db to " in done.stdout
    assert again.returncode == 1 and "is not empty" in again.stderr and "Traceback" not in again.stderr
