"""Several real bot processes (`python main.py`) on one loopback Slack and one database.

Each bot is an asyncio subprocess writing its log into a file (no pipe to fill up while the
test's event loop serves the fakes), started with `bot_env` plus its own `INSTANCE_NAME`. A bot
counts as started once it logged `ready` and its Socket Mode connection is open: the fake Slack
numbers connections as they open, and the bots start one after the other, so the connection
that appears while a bot starts is that bot's (`BotProcess.connection`, for `slack.user_says(to=…)`).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import bot_env
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 30.0
STOP_SECONDS = 20.0
POLL_SECONDS = 0.05


@dataclass(eq=False)
class BotProcess:
    """One running bot: its name (`INSTANCE_NAME`), process, log file and Socket Mode connection."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    connection: int = 0
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def wait_log(self, text: str, timeout: float = 10.0, count: int = 1) -> None:
        """Until `text` appears `count` times in the log (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not log {text!r} {count}x within {timeout} s:\n{self.tail()}")
            await asyncio.sleep(POLL_SECONDS)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


class BotProcesses:
    """Starts, kills and stops bot processes for one test; whatever still runs is stopped at the end."""

    def __init__(self, slack: FakeSlack, openai: FakeOpenAI, database_url: str,
                 python_env: dict[str, str], folder: Path) -> None:
        self.slack = slack
        self.openai = openai
        self.database_url = database_url
        self.python_env = python_env
        self.folder = folder
        self.bots: list[BotProcess] = []

    async def start(self, name: str, *, identify: bool = True, **settings: str) -> BotProcess:
        """Start `python main.py` as INSTANCE_NAME=`name`; returns once it is ready and connected.

        `identify=False`: bots started at the same moment (`asyncio.gather`) cannot tell their
        connections apart; they get none (`connection` 0), and envelopes go by `delivery`."""
        known = {c.id for c in self.slack.connections()}
        env = {**self.python_env, **bot_env(self.slack, self.openai, self.database_url),
               "INSTANCE_NAME": name, **settings}
        log_path = self.folder / f"{name}-{len(self.bots)}.log"
        with open(log_path, "wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "main.py", cwd=ROOT, env=env, stdout=log, stderr=log,
            )
        bot = BotProcess(name, process, log_path, env=env)
        self.bots.append(bot)
        deadline = time.monotonic() + START_SECONDS
        while True:
            if not bot.running:
                raise AssertionError(f"{name} exited with {process.returncode} while starting:\n{bot.tail()}")
            new = [c.id for c in self.slack.connections() if c.id not in known]
            if "ready (instance" in bot.log() and (new or not identify):
                bot.connection = new[-1] if identify else 0
                return bot
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not ready and connected within {START_SECONDS} s:\n{bot.tail()}")
            await asyncio.sleep(POLL_SECONDS)

    async def kill(self, bot: BotProcess) -> None:
        """SIGKILL: no shutdown, no farewell, as a crash or a host gone."""
        if bot.running:
            bot.process.kill()
        await bot.process.wait()

    async def stop(self, bot: BotProcess) -> int:
        """SIGTERM, as PM2 stops a process; its exit code (killed after STOP_SECONDS)."""
        if bot.running:
            bot.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(bot.process.wait(), STOP_SECONDS)
            except asyncio.TimeoutError:
                bot.process.kill()
                await bot.process.wait()
        assert bot.process.returncode is not None
        return bot.process.returncode

    def of(self, name: str) -> BotProcess:
        """The running bot named `name`."""
        return next(b for b in self.bots if b.name == name and b.running)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(bot) for bot in self.bots))
        for bot in self.bots:  # shown by pytest when the test failed
            print(f"--- {bot.name} ({bot.log_path.name}), exit {bot.process.returncode} ---\n{bot.tail(80)}")
