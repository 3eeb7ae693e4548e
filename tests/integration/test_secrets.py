"""Tokens and keys never reach the log, and the bot token goes nowhere but Slack."""

from __future__ import annotations

import asyncio
import base64
import re
import signal
import sys
from pathlib import Path

import pytest

from log_redaction import is_library
from tests.conftest import bot_env
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

ROOT = Path(__file__).resolve().parents[2]
# "2026-01-01 12:00:00,123 DEBUG slack_sdk.web.async_base_client: …" (main.setup_logging's format)
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) (\S+): ", re.M)


@pytest.mark.parametrize("library_level", ["INFO", "DEBUG"])
async def test_a_debug_run_logs_no_secret_even_when_an_error_echoes_the_key(
    slack: FakeSlack, openai: FakeOpenAI, database_url: str, python_env: dict[str, str], library_level: str
):
    """LOG_LEVEL=DEBUG, with the libraries at their default INFO and at DEBUG (the worst case).

    OPENAI_LOG=debug makes the openai SDK install its own, unredacted, handler at import: the
    bot's handler must replace it.
    """
    slack.bot_token = "xoxb-2024-loopback-bot-secret"
    slack.app_token = "xapp-1-A0APP-loopback-app-secret"
    openai.api_key = "local-server-secret-key"  # not shaped like an OpenAI key: only the value is known
    basic = base64.b64encode(b"deploy:basic-secret").decode()
    env = {**python_env, **bot_env(slack, openai, database_url, LOG_LEVEL="DEBUG", LIBRARY_LOG_LEVEL=library_level),
           "OPENAI_LOG": "debug"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "main.py", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []

    async def drain() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            lines.append(line.decode(errors="replace"))

    reader = asyncio.create_task(drain())
    try:
        await slack.wait_for(lambda: any(" ready" in line for line in lines), 20, "the bot did not start")
        ts = await slack.user_says("U0ALICE", "D0ALICE", "hello")
        await wait_replies(slack, "D0ALICE", ts)
        openai.script(Reply(status=401, error_message=(
            f"Incorrect API key provided: {openai.api_key}; via https://deploy:url-secret@proxy.example/ "
            f"with Authorization: Basic {basic}"
        )))
        ts = await slack.user_says("U0ALICE", "D0ALICE", "again")
        [refused] = await wait_replies(slack, "D0ALICE", ts)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        await asyncio.wait_for(reader, 5)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    log = "".join(lines)
    assert slack.tickets  # the socket was opened with a ticket
    for secret in (slack.bot_token, slack.app_token, openai.api_key):
        assert secret not in log
        assert secret not in refused
    for secret in (*slack.tickets, "url-secret", basic):
        assert secret not in log
    assert "Incorrect API key provided: [redacted]" in log  # the echo was logged, scrubbed
    assert "https://[redacted]@proxy.example/ with Authorization: Basic [redacted]" in log
    assert all(slack.bot_token not in str(r.headers) + str(r.body) for r in openai.requests)
    assert {c.token for c in slack.calls} == {slack.bot_token, slack.app_token}

    records = LINE.findall(log)
    library_debug = [name for level, name in records if level == "DEBUG" and is_library(name)]
    assert f"DEBUG assistant: logging at DEBUG, the libraries at {library_level} (LIBRARY_LOG_LEVEL)" in log
    if library_level == "INFO":
        assert library_debug == []
        assert any(level == "INFO" and is_library(name) for level, name in records)  # INFO still shows
    else:
        assert {"slack_sdk.web.async_base_client", "slack_bolt.AsyncApp", "openai._base_client"} <= set(library_debug)
        assert "/link/?ticket=[redacted]" in log  # slack_sdk logged the Socket Mode URL, scrubbed
