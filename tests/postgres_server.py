"""A throwaway PostgreSQL server for `make test-postgres`, removed afterwards whatever happens.

    python -m tests.postgres_server -- python -m pytest    # runs the command against a new server
    python -m tests.postgres_server --check                 # exit 0 when the server binaries are found

The server lives in a new temporary folder: `initdb` with trust authentication, no TCP at all
(`listen_addresses` empty), only a unix socket in that folder, durability off (fsync, full page
writes: it is thrown away). The command gets `TEST_DATABASE_URL` pointing at it; when the command
ends, fails, or this script gets Ctrl-C or SIGTERM, the server is stopped and the folder removed.

`initdb` and `postgres` refuse to run as root. Run as root (CI is), the server runs as the
`postgres` account (the Debian package creates it) or else `nobody`: the folder is handed to that
account and the server's commands run with its uid and gid (`subprocess`'s `user`/`group`), so
no `su`, `runuser` or cluster of the system's is involved.

Where the binaries are: `$PG_BINDIR`, else `initdb` on PATH, else `pg_config --bindir`, else the
newest `/usr/lib/postgresql/*/bin` (where Debian puts them, off PATH).
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any, Sequence

SUPERUSER = "bot"
# How long the command may take to stop after Ctrl-C or SIGTERM before it is killed.
CHILD_GRACE_SECONDS = 30.0
# For speed only: the data is thrown away, so nothing needs to survive a crash.
SETTINGS = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}


def find_bindir() -> Path | None:
    """The folder holding `initdb`, `pg_ctl` and `postgres`, or None when none is installed."""
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(result.stdout.strip())
    # Debian: /usr/lib/postgresql/15/bin; the newest major version first.
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major, reverse=True)
    for folder in candidates:
        if all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _major(folder: str) -> int:
    name = Path(folder).parent.name
    return int(name) if name.isdigit() else 0


class ThrowawayServer:
    """One PostgreSQL cluster in a temporary folder; `url` once started, gone after `stop()`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="bot-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._account = self._server_account()
        self._started = False

    @staticmethod
    def _server_account() -> pwd.struct_passwd | None:
        """None: run as ourselves; as root, the account the server runs as instead."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise SystemExit("running as root, and neither a 'postgres' nor a 'nobody' account exists")

    @property
    def url(self) -> str:
        # No host in the authority: the socket folder is the `host` parameter (asyncpg, libpq).
        return f"postgresql://{SUPERUSER}@/postgres?host={self.folder}"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        extra: dict[str, Any] = {}
        if self._account is not None:
            extra = {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}
        result = subprocess.run(
            command, cwd=self.folder, capture_output=True, text=True, check=False, **extra
        )
        if result.returncode != 0:
            server_log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{server_log}"
            )

    def start(self) -> None:
        if self._account is not None:
            os.chown(self.folder, self._account.pw_uid, self._account.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )
        settings = {**SETTINGS, "unix_socket_directories": f"'{self.folder}'"}
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# tests/postgres_server.py\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self._started = True  # from here on, stop() has a server (or its remains) to stop
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server (fast, else immediate) and remove the folder, whatever state it is in."""
        try:
            if self._started and (self.data / "postmaster.pid").exists():
                try:
                    self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
                except RuntimeError as exc:
                    print(f"postgres_server: fast stop failed, stopping immediately: {exc}", file=sys.stderr)
                    self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=False)


class _Stopped(Exception):
    """SIGTERM or SIGHUP arrived: end like Ctrl-C, through the `finally` that removes the server."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


def _end_child(child: subprocess.Popen[bytes], signum: int) -> None:
    """Pass the signal on (Ctrl-C reached the child already: same process group), then wait."""
    if child.poll() is not None:
        return
    if signum != signal.SIGINT:
        child.send_signal(signum)
    try:
        child.wait(timeout=CHILD_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"postgres_server: {child.args[0]} did not stop; killing it", file=sys.stderr)
        child.kill()
        child.wait()


def run_with_server(command: Sequence[str]) -> int:
    """Run `command` with TEST_DATABASE_URL set to a new server; its exit code."""
    bindir = find_bindir()
    if bindir is None:
        print("postgres_server: no PostgreSQL server binaries found (apt-get install postgresql)", file=sys.stderr)
        return 2
    # SIGTERM and SIGHUP end us like Ctrl-C does: through the `finally` that removes the server.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_on_signal)
    server = ThrowawayServer(bindir)
    child: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        print(f"postgres_server: PostgreSQL from {bindir} at {server.folder}", file=sys.stderr)
        child = subprocess.Popen(command, env={**os.environ, "TEST_DATABASE_URL": server.url})
        return child.wait()
    except (KeyboardInterrupt, _Stopped) as exc:
        signum = exc.signum if isinstance(exc, _Stopped) else signal.SIGINT
        if child is not None:
            _end_child(child, signum)
        return 128 + signum
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave it behind
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 0 when the server binaries are found")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = parser.parse_args(argv)
    if args.check:
        bindir = find_bindir()
        print(bindir or "no PostgreSQL server binaries found")
        return 0 if bindir else 1
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run, after --")
    return run_with_server(command)


if __name__ == "__main__":
    sys.exit(main())
