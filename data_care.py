"""Data care while the bot runs: online backups with retention, and forgetting old data.

Backups use SQLite's online backup from a read-only connection (see `Database.backup_to`), so
they are consistent while answers are being written, and land under a temporary name first: a
file named like a backup is always a whole one. Only files named like our backups are pruned.
A PostgreSQL database is not backed up by the bot (`pg_dump` does it); retention works on both,
and with several instances on one PostgreSQL database it runs on one of them at a time (a
database lock, `Database.job_lock`): the others skip the round.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import time
from datetime import datetime, timezone

from database import Database
from private_files import make_private_dir

log = logging.getLogger(__name__)

BACKUP_NAME = re.compile(r"^bot-(\d{8}-\d{6})\.db$")
RETENTION_CHECK_SECONDS = 3600.0


def backup_name(now: float) -> str:
    return datetime.fromtimestamp(now, timezone.utc).strftime("bot-%Y%m%d-%H%M%S.db")


def backups_oldest_first(names: list[str]) -> list[str]:
    """Our backup files among `names`; the timestamp in the name sorts them."""
    return sorted(n for n in names if BACKUP_NAME.match(n))


def to_prune(names: list[str], keep: int) -> list[str]:
    backups = backups_oldest_first(names)
    return backups[: max(len(backups) - keep, 0)]


def utc_day_start(now: float) -> float:
    """The UTC midnight that began `now`'s day: the daily token budget counts usage since then."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def describe_deleted(deleted: dict[str, int]) -> str:
    """'2 threads, 5 inbound_messages' for the log line: only the tables that lost rows."""
    return ", ".join(f"{count} {table}" for table, count in deleted.items() if count)


def newest_backup_time(names: list[str]) -> float | None:
    backups = backups_oldest_first(names)
    if not backups:
        return None
    stamp = BACKUP_NAME.match(backups[-1]).group(1)  # type: ignore[union-attr]
    return datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc).timestamp()


def _remove_if_present(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        return  # the backup failed before creating it: nothing to clean up


class DataCare:
    def __init__(
        self, db: Database, backup_dir: str | None, keep: int, interval_seconds: float,
        retention_days: float,
    ) -> None:
        self.db = db
        self.backup_dir = backup_dir
        self.keep = keep
        self.interval = interval_seconds
        self.retention_days = retention_days

    async def backup_now(self) -> str:
        """Write one backup and prune the oldest beyond `keep`; returns its path."""
        assert self.backup_dir is not None
        await asyncio.to_thread(make_private_dir, self.backup_dir)  # 0700 if we create it
        path = os.path.join(self.backup_dir, backup_name(time.time()))
        partial = path + ".partial"
        started = time.monotonic()
        try:
            await self.db.backup_to(partial)
        except BaseException:
            # A half-written copy is still people's data, under a name pruning never matches.
            await asyncio.to_thread(_remove_if_present, partial)
            raise
        await asyncio.to_thread(os.replace, partial, path)
        for name in to_prune(await self._listing(), self.keep):
            await asyncio.to_thread(os.remove, os.path.join(self.backup_dir, name))
        log.info("database backed up to %s in %.1f s", path, time.monotonic() - started)
        return path

    async def _listing(self) -> list[str]:
        assert self.backup_dir is not None
        folder = self.backup_dir
        return await asyncio.to_thread(lambda: os.listdir(folder) if os.path.isdir(folder) else [])

    async def _seconds_until_due(self) -> float:
        newest = newest_backup_time(await self._listing())
        if newest is None:
            return 0.0
        return max(newest + self.interval - time.time(), 0.0)

    async def run_backups(self) -> None:
        """Back up when the newest backup is older than the interval, forever."""
        while True:
            await asyncio.sleep(await self._seconds_until_due())
            try:
                await self.backup_now()
            except (OSError, sqlite3.Error) as exc:
                log.error("database backup to %s failed: %s; next try in %.0f s",
                          self.backup_dir, exc, self.interval)
                await asyncio.sleep(self.interval)

    async def forget_old_data(self) -> dict[str, int] | None:
        """Delete what is older than RETENTION_DAYS (see `Database.delete_expired`); None when
        another instance is doing it right now (once per deployment is enough)."""
        async with self.db.job_lock("retention") as ours:
            if not ours:
                log.info("retention: another instance is running it; skipping this round")
                return None
            now = time.time()
            deleted = await self.db.delete_expired(
                now - self.retention_days * 86400, keep_usage_since=utc_day_start(now)
            )
        if any(deleted.values()):
            log.info("retention: deleted %s (older than %g days)", describe_deleted(deleted), self.retention_days)
        return deleted

    async def run_retention(self) -> None:
        while True:
            try:
                await self.forget_old_data()
            except self.db.errors as exc:
                log.error("retention cleanup failed: %s", exc)
            await asyncio.sleep(RETENTION_CHECK_SECONDS)
