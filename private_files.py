"""Files and folders only the bot's own account can read: the database, its WAL, backups.

Why: the database holds what people wrote and who they are, and the usual umask (022) would
leave a new file readable by every account on the machine. SQLite creates a database's -wal,
-shm and -journal files with the main file's permissions (and fixes them up after the umask),
so the main file being 0600 *before SQLite first opens it* keeps those private too, without
touching the process-wide umask while other threads run.

These are short blocking system calls: call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# Files SQLite keeps beside a database; ones a previous version left may be looser than 0600.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Create `path` and any missing parents as 0700; folders that exist are left as they are.

    An existing folder may be the operator's (the working directory, /var/backups): changing
    its mode is not ours to do. The files we put in it are private either way.
    """
    folder = Path(path)
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(new, PRIVATE_DIR)  # mkdir's mode is narrowed by the umask; this is exact


def make_private_file(path: str | os.PathLike[str]) -> None:
    """Create `path` empty if missing (never truncating it), and make it and its companions 0600.

    Run before SQLite opens `path`: an empty file is an empty database to SQLite, and the
    -wal/-shm it creates next take this file's mode.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE)  # an existing file keeps its old mode otherwise
    finally:
        os.close(descriptor)
    for suffix in SQLITE_COMPANIONS:
        try:
            os.chmod(f"{os.fspath(path)}{suffix}", PRIVATE_FILE)
        except FileNotFoundError:
            continue  # none there (the usual case): SQLite makes it with the main file's mode
