"""Tokens and keys never reach the log, and the bot token goes nowhere but Slack."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from tests.conftest import bot_env
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

ROOT = Path(__file__).resolve().parents[2]


async def test_a_debug_run_logs_no_secret_even_when_an_error_echoes_the_key(
    slack: FakeSlack, openai: FakeOpenAI, tmp_path: Path, python_env: dict[str, str]
):
    slack.bot_token = "xoxb-2024-loopback-bot-secret"
    slack.app_token = "xapp-1-A0APP-loopback-app-secret"
    openai.api_key = "local-server-secret-key"  # not shaped like an OpenAI key: only the value is known
    env = {**python_env, **bot_env(slack, openai, tmp_path, LOG_LEVEL="DEBUG")}
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
        openai.script(Reply(status=401, error_message=f"Incorrect API key provided: {openai.api_key}"))
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
    for secret in (slack.bot_token, slack.app_token, openai.api_key):
        assert secret not in log
        assert secret not in refused
    assert "Incorrect API key provided: [redacted]" in log  # the echo was logged, scrubbed
    assert all(slack.bot_token not in str(r.headers) + str(r.body) for r in openai.requests)
    assert {c.token for c in slack.calls} == {slack.bot_token, slack.app_token}
