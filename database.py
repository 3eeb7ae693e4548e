"""All persistence, and the only module that speaks SQL.

One aiosqlite connection (its own thread, so the event loop never waits on disk), WAL journal,
foreign keys on, and numbered migrations tracked in `PRAGMA user_version`. Multi-statement
writes run under one asyncio lock so concurrent coroutines never interleave transactions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import aiosqlite

from base_client import Role, UserInfo
from private_files import make_private_dir, make_private_file

log = logging.getLogger(__name__)

# Append only: a migration that has shipped is never edited, a new one is added.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE threads (
        id INTEGER PRIMARY KEY,
        channel_id TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_activity REAL NOT NULL,
        UNIQUE (channel_id, thread_ts)
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        text TEXT NOT NULL,
        slack_ts TEXT,
        author_id TEXT,
        author_name TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_by_thread ON messages (thread_id, id);
    CREATE TABLE users (
        user_id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        timezone TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    -- Every message accepted for an answer, before work starts: deduplicates Slack's double
    -- and repeated deliveries, and is the journal a restart recovers from.
    CREATE TABLE inbound_messages (
        channel_id TEXT NOT NULL,
        message_ts TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        user_id TEXT NOT NULL,
        event_id TEXT,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        received_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (channel_id, message_ts)
    );
    CREATE INDEX inbound_by_status ON inbound_messages (status, received_at);
    """,
    """
    -- Settings layers: only the values that differ from the layer below, as JSON.
    CREATE TABLE user_settings (
        user_id TEXT PRIMARY KEY,
        overrides TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE thread_settings (
        thread_id INTEGER PRIMARY KEY REFERENCES threads(id) ON DELETE CASCADE,
        overrides TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    -- When the one-time welcome was shown (NULL: not yet).
    ALTER TABLE users ADD COLUMN welcomed_at REAL;
    """,
    """
    -- Images people shared in a thread, kept so follow-ups can still show them to the model.
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        slack_ts TEXT NOT NULL,
        name TEXT NOT NULL,
        mimetype TEXT NOT NULL,
        data BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX images_by_thread ON images (thread_id, id);
    """,
    """
    -- Slack's own id for a delivery: a redelivered event is refused by either key.
    UPDATE inbound_messages SET event_id = NULL
    WHERE event_id IS NOT NULL AND rowid NOT IN (
        SELECT MIN(rowid) FROM inbound_messages WHERE event_id IS NOT NULL GROUP BY event_id
    );
    CREATE UNIQUE INDEX inbound_by_event ON inbound_messages (event_id) WHERE event_id IS NOT NULL;
    """,
    """
    -- Tokens each model call used, as the API reported them: per person, thread and model.
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        user_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        model TEXT NOT NULL,
        kind TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX usage_by_user ON usage (user_id, created_at);
    -- Everyone's defaults as admins set them: one row, a diff against the environment defaults.
    CREATE TABLE workspace_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        overrides TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    """
    -- The message that carries an answer's feedback buttons, with what produced the answer.
    CREATE TABLE answers (
        channel_id TEXT NOT NULL,
        message_ts TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        user_id TEXT NOT NULL,
        model TEXT NOT NULL,
        settings TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (channel_id, message_ts)
    );
    -- Thumbs up/down: one per person and answer (a second click changes it).
    CREATE TABLE feedback (
        channel_id TEXT NOT NULL,
        message_ts TEXT NOT NULL,
        user_id TEXT NOT NULL,
        value TEXT NOT NULL,
        model TEXT,
        settings TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (channel_id, message_ts, user_id)
    );
    """,
    """
    -- A new turn is the thread's activity, in the same statement: appending is one round trip.
    CREATE TRIGGER messages_touch_thread AFTER INSERT ON messages BEGIN
        UPDATE threads SET last_activity = NEW.created_at WHERE id = NEW.thread_id;
    END;
    """,
    """
    -- One person's own settings in a thread (on top of the thread's settings for everyone).
    CREATE TABLE thread_user_settings (
        thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        overrides TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (thread_id, user_id)
    );
    """,
    """
    -- Every tool call of a turn, beside the turn's usage: which tool, how long, how it went.
    CREATE TABLE tool_calls (
        id INTEGER PRIMARY KEY,
        user_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        tool TEXT NOT NULL,
        outcome TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX tool_calls_by_time ON tool_calls (created_at);
    """,
    """
    -- Data files people shared in a thread (CSV, XLSX, JSON, …), kept as they came: the code
    -- interpreter gets the real file, uploaded to the provider once (its id, and when: uploads
    -- expire there).
    CREATE TABLE thread_files (
        id INTEGER PRIMARY KEY,
        thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        slack_ts TEXT NOT NULL,
        name TEXT NOT NULL,
        mimetype TEXT NOT NULL,
        data BLOB NOT NULL,
        uploaded_id TEXT,
        uploaded_at REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX thread_files_by_thread ON thread_files (thread_id, id);
    """,
)


# Pictures the bot drew are stored under this prefix of `images.slack_ts`: no person's message
# has such a ts, so they are never sent again as shared images nor counted as such.
GENERATED_IMAGE_PREFIX = "generated:"


class DatabaseError(Exception):
    """The database cannot be used (for example it was written by a newer version)."""


@dataclass(frozen=True)
class StoredImage:
    name: str
    mimetype: str
    data: bytes


@dataclass(frozen=True)
class ThreadFile:
    """A data file of a thread, without its bytes (`thread_file_data` reads those)."""

    id: int
    name: str
    mimetype: str
    size: int
    slack_ts: str
    uploaded_id: str | None = None
    uploaded_at: float | None = None


@dataclass(frozen=True)
class StoredMessage:
    role: Role
    text: str
    slack_ts: str | None = None
    author_id: str | None = None
    author_name: str | None = None


class Database:
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """The first row of a query, in one round trip to the database thread."""
        rows = await self.conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> Iterable[sqlite3.Row]:
        return await self.conn.execute_fetchall(sql, params)

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise DatabaseError("database is not open")
        return self._conn

    async def open(self) -> None:
        if self._path != ":memory:":
            # Private whatever the umask: folder 0700 if we create it, the file 0600 before
            # SQLite opens it, so the -wal and -shm it creates are 0600 too (private_files.py).
            await asyncio.to_thread(make_private_dir, Path(self._path).parent)
            await asyncio.to_thread(make_private_file, self._path)
        self._conn = await aiosqlite.connect(self._path, isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        # Deleted rows are overwritten with zeros, not left in free pages of the file.
        await self._conn.execute("PRAGMA secure_delete=ON")
        await self._conn.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL syncs at checkpoints, not at every commit: a crash or kill -9 loses
        # nothing (the WAL is written), only a power cut may drop the last transactions.
        await self._conn.execute("PRAGMA synchronous=NORMAL")
        await self._conn.execute("PRAGMA foreign_keys=ON")
        await self._conn.execute("PRAGMA busy_timeout=5000")
        try:
            await self._migrate()
        except BaseException:
            await self.close()  # a refused database leaves nothing open behind
            raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def schema_version(self) -> int:
        row = await self._one("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            raise DatabaseError(
                f"database {self._path} has schema version {current}, newer than this code "
                f"({len(MIGRATIONS)}): upgrade the bot or restore a matching backup"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            log.info("migrating database %s to schema version %d", self._path, version)
            await self.conn.executescript(
                f"BEGIN;\n{MIGRATIONS[version - 1]}\nPRAGMA user_version = {version};\nCOMMIT;"
            )

    # --- inbound message journal -------------------------------------------------------------

    async def claim_message(
        self, channel_id: str, message_ts: str, thread_ts: str, user_id: str, text: str,
        event_id: str | None, status: str = "received",
    ) -> bool:
        """Record a message as received; False if it was already claimed (a duplicate).

        A duplicate has the same (channel, ts) or the same Slack `event_id`: a redelivery
        repeats both; the mention's `message` copy repeats only the ts. A message turned away at
        once is claimed straight as "rejected", so a restart never picks it up.
        """
        now = time.time()
        async with self._write_lock:
            cursor = await self.conn.execute(
                "INSERT OR IGNORE INTO inbound_messages (channel_id, message_ts, thread_ts, "
                "user_id, event_id, text, status, received_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (channel_id, message_ts, thread_ts, user_id, event_id, text, status, now, now),
            )
            return cursor.rowcount == 1

    async def set_message_status(self, channel_id: str, message_ts: str, status: str) -> None:
        async with self._write_lock:
            await self.conn.execute(
                "UPDATE inbound_messages SET status = ?, updated_at = ? "
                "WHERE channel_id = ? AND message_ts = ?",
                (status, time.time(), channel_id, message_ts),
            )

    async def unfinished_messages(self) -> list[dict[str, Any]]:
        """Messages accepted but never settled: what a crash or `kill -9` left behind."""
        rows = await self._all(
            "SELECT channel_id, message_ts, thread_ts, user_id, event_id, text, received_at "
            "FROM inbound_messages WHERE status IN ('received', 'answering') ORDER BY received_at"
        )
        return [dict(row) for row in rows]

    async def message_status(self, channel_id: str, message_ts: str) -> str | None:
        row = await self._one(
            "SELECT status FROM inbound_messages WHERE channel_id = ? AND message_ts = ?",
            (channel_id, message_ts),
        )
        return row["status"] if row else None

    # --- threads and their messages ----------------------------------------------------------

    async def thread_id(self, channel_id: str, thread_ts: str) -> int | None:
        row = await self._one(
            "SELECT id FROM threads WHERE channel_id = ? AND thread_ts = ?", (channel_id, thread_ts)
        )
        return row["id"] if row else None

    async def has_answered(self, channel_id: str, thread_ts: str) -> bool:
        """Whether the bot takes part in a thread: it has answered there at least once."""
        return await self._one(
            "SELECT 1 FROM messages m JOIN threads t ON t.id = m.thread_id "
            "WHERE t.channel_id = ? AND t.thread_ts = ? AND m.role = 'assistant' LIMIT 1",
            (channel_id, thread_ts),
        ) is not None

    async def ensure_thread(self, channel_id: str, thread_ts: str) -> int:
        now = time.time()
        async with self._write_lock:
            rows = await self._all(
                "INSERT INTO threads (channel_id, thread_ts, created_at, last_activity) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (channel_id, thread_ts) "
                "DO UPDATE SET last_activity = excluded.last_activity RETURNING id",
                (channel_id, thread_ts, now, now),
            )
        return int(next(iter(rows))["id"])

    async def thread_messages(self, thread_id: int) -> list[StoredMessage]:
        rows = list(await self._all(
            "SELECT role, text, slack_ts, author_id, author_name FROM messages "
            "WHERE thread_id = ? ORDER BY id",
            (thread_id,),
        ))
        return [
            StoredMessage(Role(r["role"]), r["text"], r["slack_ts"], r["author_id"], r["author_name"])
            for r in rows
        ]

    async def add_messages(
        self, thread_id: int, messages: Iterable[StoredMessage], *, replace: bool = False
    ) -> None:
        """Append turns to a thread (or replace all of them, after a rebuild from Slack).

        The thread's last activity follows by trigger (migration 7).
        """
        now = time.time()
        rows = [
            (thread_id, m.role.value, m.text, m.slack_ts, m.author_id, m.author_name, now)
            for m in messages
        ]
        insert = (
            "INSERT INTO messages (thread_id, role, text, slack_ts, author_id, author_name, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        async with self._write_lock:
            if not replace:
                await self.conn.executemany(insert, rows)
                return
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                await self.conn.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
                await self.conn.executemany(insert, rows)
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    # --- images ------------------------------------------------------------------------------

    async def add_images(self, thread_id: int, slack_ts: str, images: Iterable[StoredImage]) -> None:
        rows = [(thread_id, slack_ts, i.name, i.mimetype, i.data, time.time()) for i in images]
        async with self._write_lock:
            await self.conn.executemany(
                "INSERT INTO images (thread_id, slack_ts, name, mimetype, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    async def recent_images(
        self, thread_id: int, limit: int, *, shared_only: bool = False
    ) -> list[tuple[str, StoredImage]]:
        """The thread's newest `limit` images as (slack_ts, image), oldest first.

        `shared_only`: only images people shared, not the bot's own pictures (those are for
        edits; they must not take a shared image's place in the model's context).
        """
        generated = " AND slack_ts NOT LIKE ?" if shared_only else ""
        params = (thread_id, GENERATED_IMAGE_PREFIX + "%", limit) if shared_only else (thread_id, limit)
        rows = list(await self._all(
            f"SELECT slack_ts, name, mimetype, data FROM images WHERE thread_id = ?{generated} "
            "ORDER BY id DESC LIMIT ?",
            params,
        ))
        rows.reverse()
        return [(r["slack_ts"], StoredImage(r["name"], r["mimetype"], bytes(r["data"]))) for r in rows]

    # --- data files ---------------------------------------------------------------------------

    async def add_thread_file(self, thread_id: int, slack_ts: str, name: str, mimetype: str, data: bytes) -> None:
        async with self._write_lock:
            await self.conn.execute(
                "INSERT INTO thread_files (thread_id, slack_ts, name, mimetype, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (thread_id, slack_ts, name, mimetype, data, time.time()),
            )

    async def thread_files(self, thread_id: int) -> list[ThreadFile]:
        """The thread's data files, newest first (a name shared again: only its newest copy)."""
        rows = await self._all(
            "SELECT id, name, mimetype, LENGTH(data) AS size, slack_ts, uploaded_id, uploaded_at "
            "FROM thread_files WHERE thread_id = ? AND id IN "
            "(SELECT MAX(id) FROM thread_files WHERE thread_id = ? GROUP BY name) ORDER BY id DESC",
            (thread_id, thread_id),
        )
        return [ThreadFile(r["id"], r["name"], r["mimetype"], r["size"], r["slack_ts"], r["uploaded_id"],
                           r["uploaded_at"]) for r in rows]

    async def thread_file_data(self, file_id: int) -> bytes:
        row = await self._one("SELECT data FROM thread_files WHERE id = ?", (file_id,))
        if row is None:
            raise DatabaseError(f"thread file {file_id} is gone")
        return bytes(row["data"])

    async def set_file_upload(self, file_id: int, uploaded_id: str, uploaded_at: float) -> None:
        """Where the provider keeps this file now (so it is uploaded once, until it expires there)."""
        async with self._write_lock:
            await self.conn.execute(
                "UPDATE thread_files SET uploaded_id = ?, uploaded_at = ? WHERE id = ?",
                (uploaded_id, uploaded_at, file_id),
            )

    # --- settings ----------------------------------------------------------------------------

    async def user_settings(self, user_id: str) -> dict[str, Any]:
        row = await self._one(
            "SELECT overrides FROM user_settings WHERE user_id = ?", (user_id,)
        )
        return json.loads(row["overrides"]) if row else {}

    async def save_user_settings(self, user_id: str, overrides: dict[str, Any]) -> None:
        async with self._write_lock:
            await self.conn.execute(
                "INSERT INTO user_settings (user_id, overrides, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET overrides = excluded.overrides, "
                "updated_at = excluded.updated_at",
                (user_id, json.dumps(overrides), time.time()),
            )

    async def workspace_settings(self) -> dict[str, Any]:
        row = await self._one("SELECT overrides FROM workspace_settings WHERE id = 1")
        return json.loads(row["overrides"]) if row else {}

    async def save_workspace_settings(self, overrides: dict[str, Any], user_id: str) -> None:
        async with self._write_lock:
            await self.conn.execute(
                "INSERT INTO workspace_settings (id, overrides, updated_by, updated_at) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET overrides = excluded.overrides, "
                "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (json.dumps(overrides), user_id, time.time()),
            )

    async def thread_settings(self, channel_id: str, thread_ts: str) -> dict[str, Any]:
        row = await self._one(
            "SELECT s.overrides FROM thread_settings s JOIN threads t ON t.id = s.thread_id "
            "WHERE t.channel_id = ? AND t.thread_ts = ?",
            (channel_id, thread_ts),
        )
        return json.loads(row["overrides"]) if row else {}

    async def save_thread_settings(
        self, channel_id: str, thread_ts: str, overrides: dict[str, Any], user_id: str
    ) -> None:
        thread_id = await self.ensure_thread(channel_id, thread_ts)
        async with self._write_lock:
            await self.conn.execute(
                "INSERT INTO thread_settings (thread_id, overrides, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (thread_id) DO UPDATE SET "
                "overrides = excluded.overrides, updated_by = excluded.updated_by, "
                "updated_at = excluded.updated_at",
                (thread_id, json.dumps(overrides), user_id, time.time()),
            )

    async def thread_user_settings(self, channel_id: str, thread_ts: str, user_id: str) -> dict[str, Any]:
        row = await self._one(
            "SELECT s.overrides FROM thread_user_settings s JOIN threads t ON t.id = s.thread_id "
            "WHERE t.channel_id = ? AND t.thread_ts = ? AND s.user_id = ?",
            (channel_id, thread_ts, user_id),
        )
        return json.loads(row["overrides"]) if row else {}

    async def save_thread_user_settings(
        self, channel_id: str, thread_ts: str, user_id: str, overrides: dict[str, Any]
    ) -> None:
        thread_id = await self.ensure_thread(channel_id, thread_ts)
        async with self._write_lock:
            await self.conn.execute(
                "INSERT INTO thread_user_settings (thread_id, user_id, overrides, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (thread_id, user_id) DO UPDATE SET "
                "overrides = excluded.overrides, updated_at = excluded.updated_at",
                (thread_id, user_id, json.dumps(overrides), time.time()),
            )

    # --- people ------------------------------------------------------------------------------

    async def get_user(self, user_id: str, max_age_seconds: float) -> UserInfo | None:
        row = await self._one(
            "SELECT user_id, display_name, timezone FROM users "
            "WHERE user_id = ? AND updated_at >= ?",
            (user_id, time.time() - max_age_seconds),
        )
        return UserInfo(row["user_id"], row["display_name"], row["timezone"]) if row else None

    async def mark_welcomed(self, user_id: str) -> bool:
        """True exactly once per person: the first time they are marked as welcomed."""
        now = time.time()
        async with self._write_lock:
            # A stale placeholder row (updated_at 0) if the name lookup never stored one.
            await self.conn.execute(
                "INSERT OR IGNORE INTO users (user_id, display_name, timezone, updated_at) "
                "VALUES (?, ?, 'UTC', 0)",
                (user_id, user_id),
            )
            cursor = await self.conn.execute(
                "UPDATE users SET welcomed_at = ? WHERE user_id = ? AND welcomed_at IS NULL",
                (now, user_id),
            )
            return cursor.rowcount == 1

    async def save_user(self, user: UserInfo) -> None:
        async with self._write_lock:
            await self.conn.execute(
                "INSERT INTO users (user_id, display_name, timezone, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "display_name = excluded.display_name, timezone = excluded.timezone, "
                "updated_at = excluded.updated_at",
                (user.user_id, user.display_name, user.timezone, time.time()),
            )

    # --- usage -------------------------------------------------------------------------------

    async def record_usage(
        self, user_id: str, channel_id: str, thread_ts: str, model: str, kind: str,
        input_tokens: int, output_tokens: int,
    ) -> None:
        async with self._write_lock:
            await self.conn.execute(
                "INSERT INTO usage (user_id, channel_id, thread_ts, model, kind, input_tokens, "
                "output_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, channel_id, thread_ts, model, kind, input_tokens, output_tokens, time.time()),
            )

    async def record_tool_call(
        self, user_id: str, channel_id: str, thread_ts: str, tool: str, outcome: str, duration_ms: int
    ) -> None:
        async with self._write_lock:
            await self.conn.execute(
                "INSERT INTO tool_calls (user_id, channel_id, thread_ts, tool, outcome, duration_ms, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, channel_id, thread_ts, tool, outcome, duration_ms, time.time()),
            )

    async def tool_calls(self, channel_id: str, thread_ts: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT tool, outcome, duration_ms FROM tool_calls WHERE channel_id = ? AND thread_ts = ? ORDER BY id",
            (channel_id, thread_ts),
        )
        return [dict(row) for row in rows]

    async def tokens_used(self, user_id: str, since: float) -> int:
        """Input + output tokens a person used since `since` (epoch seconds)."""
        row = await self._one(
            "SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage "
            "WHERE user_id = ? AND created_at >= ?",
            (user_id, since),
        )
        return int(row[0]) if row else 0

    # --- answers and feedback ----------------------------------------------------------------

    async def record_answer(
        self, channel_id: str, message_ts: str, thread_ts: str, user_id: str, model: str,
        settings: dict[str, Any],
    ) -> None:
        async with self._write_lock:
            await self.conn.execute(
                "INSERT OR REPLACE INTO answers (channel_id, message_ts, thread_ts, user_id, model, "
                "settings, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (channel_id, message_ts, thread_ts, user_id, model, json.dumps(settings), time.time()),
            )

    async def record_feedback(self, channel_id: str, message_ts: str, user_id: str, value: str) -> None:
        """Store a click with the answer's model and settings (if the answer is known)."""
        async with self._write_lock:
            await self.conn.execute(
                "INSERT OR REPLACE INTO feedback (channel_id, message_ts, user_id, value, model, "
                "settings, created_at) SELECT ?, ?, ?, ?, a.model, a.settings, ? FROM (SELECT 1) "
                "LEFT JOIN answers a ON a.channel_id = ? AND a.message_ts = ?",
                (channel_id, message_ts, user_id, value, time.time(), channel_id, message_ts),
            )

    async def feedback_for(self, channel_id: str, message_ts: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT user_id, value, model, settings FROM feedback WHERE channel_id = ? AND message_ts = ?",
            (channel_id, message_ts),
        )
        return [dict(row) for row in rows]

    # --- data care ---------------------------------------------------------------------------

    async def backup_to(self, path: str) -> None:
        """A consistent copy while the bot runs, written to `path`.

        SQLite's online backup, in one step, from a second, read-only connection: under WAL
        that is one read transaction, so the bot's own connection (and its writes) never wait
        for it, and no write restarts it.
        """
        # 0600 before a byte of data lands in it (and its rollback journal takes the same mode).
        await asyncio.to_thread(make_private_file, path)
        source = await aiosqlite.connect(Path(self._path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            target = await aiosqlite.connect(path)
            try:
                await source.backup(target)
            finally:
                await target.close()
        finally:
            await source.close()

    async def delete_expired(self, before: float, keep_usage_since: float) -> dict[str, int]:
        """Forget what is older than `before`; returns how many rows went, per table.

        A thread is one unit: idle since `before`, it goes with its turns (files' text
        included), images and settings (cascade), and with the answers, feedback and usage
        recorded in it, even younger ones (a late click). Journal rows, answers, feedback and
        usage older than `before` go whatever their thread. Usage since `keep_usage_since`
        stays: the daily budget counts it. A person's cached name and own defaults go once
        they were not seen since `before`: no journal row left, no name refreshed, no welcome.
        The journal is cut by age only: a fresh row is a delivery still deduplicated, or a
        message in flight in an old thread that has not touched the thread yet.
        """
        of_expired_thread = (
            "(channel_id, thread_ts) IN "
            "(SELECT channel_id, thread_ts FROM threads WHERE last_activity < :before)"
        )
        unseen = (
            "user_id NOT IN (SELECT user_id FROM inbound_messages)"  # the journal is pruned first
        )
        statements = {  # in order: each before the rows it looks up go
            "feedback": "DELETE FROM feedback WHERE created_at < :before OR (channel_id, message_ts) "
                        f"IN (SELECT channel_id, message_ts FROM answers WHERE {of_expired_thread})",
            "answers": f"DELETE FROM answers WHERE created_at < :before OR {of_expired_thread}",
            "usage": "DELETE FROM usage WHERE created_at < :keep_usage_since "
                     f"AND (created_at < :before OR {of_expired_thread})",
            "tool_calls": f"DELETE FROM tool_calls WHERE created_at < :before OR {of_expired_thread}",
            "inbound_messages": "DELETE FROM inbound_messages WHERE updated_at < :before",
            "threads": "DELETE FROM threads WHERE last_activity < :before",
            "users": "DELETE FROM users "
                     f"WHERE MAX(updated_at, COALESCE(welcomed_at, 0)) < :before AND {unseen}",
            "user_settings": f"DELETE FROM user_settings WHERE updated_at < :before AND {unseen} "
                             "AND user_id NOT IN (SELECT user_id FROM users)",
        }
        params = {"before": before, "keep_usage_since": keep_usage_since}
        deleted: dict[str, int] = {}
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                for table, sql in statements.items():
                    cursor = await self.conn.execute(sql, params)
                    deleted[table] = cursor.rowcount
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")
            if any(deleted.values()):
                # The old page images also sit in the WAL until it is overwritten: fold it into
                # the (zeroed) file and truncate it now.
                await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted
