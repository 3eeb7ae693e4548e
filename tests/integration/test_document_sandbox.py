"""The document worker runs without the bot's secrets and under its limits, as the parser starts it."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

import document_handler
from document_handler import DocumentParser, Limits, worker_cpu_seconds, worker_result

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the worker's /proc entries"
)

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-sandbox-test-bot-token",
    "SLACK_APP_TOKEN": "xapp-sandbox-test-app-token",
    "OPENAI_API_KEY": "sk-sandbox-test-openai-key",
    "SOME_FUTURE_SECRET": "a-secret-nobody-listed-yet",
}
# More than a pipe holds (64 KiB), so a drained write means the worker has started reading.
DOCUMENT = b"quarterly notes\n" * (256 * 1024)
# /proc/<pid>/limits rows, and the soft and hard limits we expect in them.
LIMIT_ROWS = {
    "Max address space": document_handler.WORKER_MEMORY_BYTES,
    "Max file size": 0,
    "Max processes": 0,
    "Max core file size": 0,
}


def proc_limits(text: str) -> dict[str, tuple[str, str]]:
    """'Max cpu time  35  35  seconds' rows of /proc/<pid>/limits as {name: (soft, hard)}."""
    rows = {}
    for line in text.splitlines()[1:]:
        match = re.match(r"(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


async def test_the_worker_has_no_secrets_and_runs_under_its_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    parser = DocumentParser(Limits(max_pages=5, max_chars=1000), timeout=30)

    process = await parser.start_worker("notes.txt", "text/plain")
    try:
        assert process.stdin is not None
        process.stdin.write(DOCUMENT)
        # Returns once the worker has read most of it: it sets its limits before reading.
        await process.stdin.drain()
        proc = Path(f"/proc/{process.pid}")
        environ = await asyncio.to_thread((proc / "environ").read_bytes)
        limits = proc_limits(await asyncio.to_thread((proc / "limits").read_text))
        process.stdin.close()  # the end of the document: now it parses
        out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    names = {entry.split(b"=", 1)[0].decode() for entry in environ.split(b"\0") if entry}
    assert names <= {*document_handler.WORKER_ENV_KEYS, "PYTHONDONTWRITEBYTECODE"}
    for name, value in SECRETS.items():
        assert name.encode() not in environ and value.encode() not in environ
    if "PATH" in os.environ:
        assert "PATH" in names
    cpu = str(worker_cpu_seconds(30))
    assert limits["Max cpu time"] == (cpu, cpu)
    for row, value in LIMIT_ROWS.items():
        assert limits[row] == (str(value), str(value)), row
    # And it still did its work: a real parse, read back the way the parser reads it.
    result = worker_result("notes.txt", process.returncode, out, err)
    assert result.text.startswith("quarterly notes\nquarterly notes") and result.truncated
