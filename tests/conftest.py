"""Shared fixtures: the loopback Slack and OpenAI, and the real bot built by `create_app`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

import pytest

from config import Config, load_config
from main import AssistantApp, create_app
from tests.engines import fresh_database
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack

if TYPE_CHECKING:
    from tests.instances import BotProcesses

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk's socket client honours proxy variables and ignores NO_PROXY.
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """This test's own database: SQLite in `tmp_path`, or PostgreSQL's (tests/engines.py)."""
    async with fresh_database(tmp_path) as url:
        yield url


def bot_env(slack: FakeSlack, openai: FakeOpenAI, database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": openai.api_key,
        "OPENAI_BASE_URL": openai.base_url,
        "OPENAI_MODEL": "test-model",
        "OPENAI_MAX_RETRIES": "0",
        "DATABASE_URL": database_url,
        "STREAM_UPDATE_SECONDS": "0.1",
        "PROGRESS_UPDATE_SECONDS": "0.2",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "SLACK_MAX_RETRIES": "5",
        "SOCKET_PING_SECONDS": "0.5",
        # Most tests read the edited-in-place reply; tests of Slack's native streaming opt in.
        "SLACK_NATIVE_STREAMING": "false",
    }
    env.update(overrides)
    return env


StartBot = Callable[..., Awaitable[AssistantApp]]


@pytest.fixture
async def start_bot(
    slack: FakeSlack, openai: FakeOpenAI, database_url: str
) -> AsyncIterator[StartBot]:
    """Start the real bot against the fakes; `await start_bot(THREAD_BUSY_POLICY="queue")`.

    Every bot a test starts shares the test's database (a restart finds what the last one left).
    """
    running: list[AssistantApp] = []

    async def start(**overrides: str) -> AssistantApp:
        config: Config = load_config(bot_env(slack, openai, database_url, **overrides))
        app = create_app(config)
        await app.start()
        running.append(app)
        await slack.wait_connected(count=len(running))
        return app

    yield start
    for app in running:
        if not app.closed:  # not stopped by the test itself
            await app.stop()


@pytest.fixture
def python_env() -> dict[str, str]:
    """Environment for a bot subprocess: this interpreter's, minus proxies."""
    return {k: v for k, v in os.environ.items() if k not in PROXY_VARS}


@pytest.fixture
async def bots(
    slack: FakeSlack, openai: FakeOpenAI, database_url: str, python_env: dict[str, str], tmp_path: Path
) -> AsyncIterator["BotProcesses"]:
    """Real bot processes on the fakes and the test's database (tests/instances.py)."""
    from tests.instances import BotProcesses  # it imports this module (bot_env)

    processes = BotProcesses(slack, openai, database_url, python_env, tmp_path)
    try:
        yield processes
    finally:
        await processes.close()
