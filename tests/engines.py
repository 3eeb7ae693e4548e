"""Which database engine the suite runs on, and a clean database for each test.

SQLite by default (a file in the test's `tmp_path`). With `TEST_DATABASE_URL` set to a
PostgreSQL server's URL (`make test-postgres` starts a throwaway one, tests/postgres_server.py),
each test that needs a database gets a new, empty one on that server (migrated from scratch by
the bot, like any new install), dropped when the test ends.
"""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
ON_POSTGRESQL = TEST_DATABASE_URL.startswith(("postgresql://", "postgres://"))
ENGINE = "postgresql" if ON_POSTGRESQL else "sqlite"


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """For what only SQLite has (its files, WAL, PRAGMAs, online backup): skipped on PostgreSQL."""
    return pytest.mark.skipif(ON_POSTGRESQL, reason=f"SQLite only: {reason}")


def postgresql_only(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not ON_POSTGRESQL, reason=f"PostgreSQL only: {reason}")


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@asynccontextmanager
async def fresh_database(tmp_path: Path) -> AsyncIterator[str]:
    """A `DATABASE_URL` no other test uses: SQLite's file, or a new PostgreSQL database."""
    if not ON_POSTGRESQL:
        yield f"sqlite:///{tmp_path}/bot.db"
        return
    import asyncpg

    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(TEST_DATABASE_URL, name)
    finally:
        admin = await asyncpg.connect(TEST_DATABASE_URL)
        try:
            # FORCE: a bot the test killed (kill -9) may still have a connection closing.
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
