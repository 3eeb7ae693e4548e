"""Run one bot process against fresh loopback fakes for one scenario, and measure it.

The fakes (tests/fakes) run on this process's event loop, so nothing here may block it: the bot
is an asyncio subprocess writing straight into a log file (no pipe to fill up), and completion
is polled from what the fake Slack recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import ApiCall, FakeSlack

ROOT = Path(__file__).resolve().parents[1]

#: Plain words (no Markdown, no &<>, one line), so every bot shows them verbatim.
ANSWER = (
    "The benchmark answer is plain text on purpose. It has no lists, no code and no links, so "
    "every bot shows it exactly as the model sent it. Each conversation waits for the same model "
    "delay, then streams these words in small pieces, and the reply counts as complete when a bot "
    "message in its thread shows all of them."
)
#: Deltas per answer: a few tokens each, as a real model streams (and cheap enough for 1000 streams).
CHUNKS = 15
#: Only these variables reach a bot: its settings come from the benchmark alone. Dropping the rest
#: also drops the proxy variables, which slack_sdk's socket client honours (it ignores NO_PROXY).
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
CONNECT_SECONDS = 60.0
#: Beyond the model's own time, how long the warm-up answer may take.
WARM_UP_SECONDS = 30.0
#: Longer than our bot's SHUTDOWN_GRACE_SECONDS default (10 s); then SIGKILL.
STOP_GRACE_SECONDS = 20.0
#: Seconds of bot CPU allowed per conversation when sizing timeouts (measured: about 0.01).
CPU_ALLOWANCE = 0.05
POLL_SECONDS = 0.1
PROGRESS_SECONDS = 15.0



@dataclass(frozen=True)
class Scenario:
    """N conversations started evenly within `spread` seconds, each answered by the same model."""

    conversations: int
    spread: float
    latency: float
    stream_seconds: float

    @property
    def model_seconds(self) -> float:
        """What the model alone takes per answer: first-token latency plus streaming."""
        return self.latency + self.stream_seconds

    def reply(self) -> Reply:
        """The fake model's answer: ANSWER in CHUNKS deltas spread over `stream_seconds`."""
        size = math.ceil(len(ANSWER) / CHUNKS)
        count = math.ceil(len(ANSWER) / size)
        return Reply(text=ANSWER, latency=self.latency, chunk_size=size,
                     chunk_delay=self.stream_seconds / count)


@dataclass(frozen=True)
class BotSpec:
    """How to start one bot; `parallelism` (answers at once, None: unbounded) sizes its timeout."""

    name: str
    script: str
    settings: dict[str, str] = field(default_factory=dict)
    parallelism: int | None = None

    def timeout(self, scenario: Scenario) -> float:
        """Generous: twice what `parallelism` answers at a time need, CPU_ALLOWANCE each, plus a minute."""
        waves = math.ceil(scenario.conversations / (self.parallelism or scenario.conversations))
        work = scenario.spread + waves * (scenario.model_seconds + 1.0) + scenario.conversations * CPU_ALLOWANCE
        return 2 * work + 60.0


@dataclass
class RunResult:
    """What one bot did in one scenario; `error` says why it did not finish cleanly."""

    bot: str
    scenario: Scenario
    answered: int = 0
    completion: float | None = None
    push_spread: float = 0.0
    acks: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rss_mb: float | None = None
    idle_rss_mb: float | None = None
    warm_rss_mb: float | None = None
    methods: Counter[str] = field(default_factory=Counter)
    bot_cpu: float | None = None  # during the run only, start-up excluded
    fakes_cpu: float = 0.0
    measured_seconds: float = 0.0
    peak_in_flight: int = 0
    exit_code: int | None = None
    error: str | None = None
    log_path: Path | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.answered == self.scenario.conversations


@dataclass
class Conversation:
    """One person's DM: set up before the run; `ts` and `pushed` are filled in when it starts."""

    channel: str
    user: str
    ts: str = ""
    pushed: float = 0.0


class BenchSlack(FakeSlack):
    """The fake Slack, noting when each thread first shows the complete answer.

    "Shows" means a bot message in the thread whose text is ANSWER right after a Web API call:
    a chat.postMessage or chat.update (edit in place), or the chat.startStream/appendStream/
    stopStream that completed a natively streamed message. The time noted is when the fake
    received that call (`ApiCall.time`). Other bot posts (a welcome note, a busy notice) never
    match. The answer is judged on the message as stored, whichever way a bot built it.
    """

    WATCHED = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream")

    def __init__(self) -> None:
        super().__init__()
        self.shown: dict[tuple[str, str], float] = {}

    def after_call(self, call: ApiCall, result: dict[str, Any]) -> None:
        if call.method not in self.WATCHED or not result.get("ok", True):
            return
        channel = result.get("channel") or call.params.get("channel")
        message = self.message(channel or "", result.get("ts") or call.params.get("ts") or "")
        if message is None or message.get("text") != ANSWER or not message.get("thread_ts"):
            return
        self.shown.setdefault((channel, message["thread_ts"]), call.time)

    def answered_at(self, conversation: Conversation) -> float | None:
        """When the conversation's thread first showed the complete answer, if it did."""
        return self.shown.get((conversation.channel, conversation.ts)) if conversation.ts else None


def bot_env(spec: BotSpec, slack: FakeSlack, openai: FakeOpenAI, workdir: Path) -> dict[str, str]:
    """The fakes' addresses and the spec's settings; everything else at the bot's defaults."""
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV}
    env.update(
        SLACK_BOT_TOKEN=slack.bot_token, SLACK_APP_TOKEN=slack.app_token, SLACK_API_URL=slack.api_url,
        OPENAI_API_KEY=openai.api_key, OPENAI_BASE_URL=openai.base_url, OPENAI_MODEL="test-model",
        OPENAI_MAX_RETRIES="0", DATABASE_URL=f"sqlite:///{workdir}/bot.db",
        # A developer's .env must not change what is measured (main.py calls load_dotenv()).
        PYTHON_DOTENV_DISABLED="1", PYTHONUNBUFFERED="1",
    )
    env.update(spec.settings)
    assert not any(name in env for name in PROXY_VARS)
    return env


def add_people(slack: FakeSlack, count: int) -> list[Conversation]:
    """One person and one DM per conversation, so each conversation is its own thread."""
    conversations = []
    for n in range(count):
        user, channel = f"U{n:06d}", f"D{n:06d}"
        slack.add_user(user, f"person{n}", display_name=f"Person {n}")
        slack.add_channel(channel, f"person{n}", is_im=True, user=user)
        conversations.append(Conversation(channel, user))
    return conversations


async def push_all(slack: FakeSlack, conversations: list[Conversation], spread: float) -> None:
    """Start every conversation on an even schedule over `spread` seconds (late pushes catch up)."""
    start = time.monotonic()
    step = spread / len(conversations)
    for n, conversation in enumerate(conversations):
        delay = start + n * step - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        conversation.pushed = time.monotonic()
        conversation.ts = await slack.user_says(conversation.user, conversation.channel,
                                                f"Question {n}: how does the benchmark work?")


def read_memory_mb(pid: int, field: str = "VmHWM") -> float | None:
    """A memory line of a live process's /proc status in MB (VmHWM: peak resident set); None once gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def read_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a live process (all its threads), in seconds."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def log_tail(path: Path | None, lines: int = 25) -> str:
    """The last lines of a bot's log, to show why it failed."""
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def start_process(spec: BotSpec, env: dict[str, str], log: IO[bytes]) -> asyncio.subprocess.Process:
    """Start the bot with its output going straight to `log`."""
    return await asyncio.create_subprocess_exec(
        sys.executable, spec.script, cwd=ROOT, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )


async def stop_process(process: asyncio.subprocess.Process) -> int:
    """SIGTERM, then SIGKILL after STOP_GRACE_SECONDS; always reaps the process."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    return await process.wait()


async def wait_until(predicate: Callable[[], bool], process: asyncio.subprocess.Process,
                     timeout: float, what: str) -> str | None:
    """Poll `predicate`: None once true, else why not (the bot exited, or `what` took too long)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.returncode is not None:
            return f"bot exited with code {process.returncode} while waiting for {what}"
        if time.monotonic() > deadline:
            return f"no {what} within {timeout:.0f} s (the bot process was still running)"
        await asyncio.sleep(POLL_SECONDS)
    return None


async def warm_up(slack: BenchSlack, process: asyncio.subprocess.Process, scenario: Scenario) -> str | None:
    """One conversation answered before the burst, not counted: one-time costs (lazy imports,
    caches filled on first use) then stay out of the measured burst; their memory still shows."""
    warm = Conversation("D0WARMUP", "U0WARMUP")
    slack.add_user(warm.user, "warmup", display_name="Warm-up")
    slack.add_channel(warm.channel, "warmup", is_im=True, user=warm.user)
    warm.ts = await slack.user_says(warm.user, warm.channel, "Warming up: are you there?")
    return await wait_until(lambda: slack.answered_at(warm) is not None, process,
                            scenario.model_seconds + WARM_UP_SECONDS, "answer to the warm-up conversation")


class Progress:
    """A line on stderr every PROGRESS_SECONDS, so a minutes-long run shows it is alive."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total = name, total
        self.started = self.last = time.monotonic()

    def tick(self, answered: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            print(f"  {self.name}: {answered}/{self.total} answered after {now - self.started:.0f} s",
                  file=sys.stderr, flush=True)


async def follow(result: RunResult, slack: BenchSlack, openai: FakeOpenAI, conversations: list[Conversation],
                 pushing: asyncio.Future[None], process: asyncio.subprocess.Process, timeout: float) -> None:
    """Poll until every conversation is answered, the bot dies, pushing fails, or time runs out."""
    total = result.scenario.conversations
    deadline = time.monotonic() + timeout
    progress = Progress(result.bot, total)
    while True:
        result.answered = sum(slack.answered_at(c) is not None for c in conversations)
        result.peak_in_flight = max(result.peak_in_flight, openai.in_flight)
        if pushing.done() and pushing.exception() is not None:
            result.error = f"pushing events failed: {pushing.exception()}"
            return
        if pushing.done() and result.answered >= total:
            return
        if process.returncode is not None:
            result.error = f"bot exited with code {process.returncode} during the run"
            return
        if time.monotonic() > deadline:
            result.error = f"timed out after {timeout:.0f} s with {result.answered}/{total} answered"
            return
        progress.tick(result.answered)
        await asyncio.sleep(POLL_SECONDS)


def summarize(result: RunResult, slack: BenchSlack, conversations: list[Conversation],
              marks: tuple[int, int]) -> None:
    """Fill the timings in from what the fakes recorded after `marks` (calls, acks before the burst)."""
    pushed = sorted(c.pushed for c in conversations if c.ts)
    shown = {id(c): slack.answered_at(c) for c in conversations}
    result.push_spread = pushed[-1] - pushed[0] if pushed else 0.0
    result.acks = slack.ack_latencies()[marks[1]:]
    result.latencies = [t - c.pushed for c in conversations if (t := shown[id(c)]) is not None]
    if result.complete and pushed:
        result.completion = max(t for t in shown.values() if t is not None) - pushed[0]


async def run_bot(spec: BotSpec, scenario: Scenario, workdir: Path) -> RunResult:
    """Fresh fakes, one bot process, one scenario; the process and the fakes are always stopped."""
    result = RunResult(spec.name, scenario, log_path=workdir / "bot.log")
    workdir.mkdir(parents=True, exist_ok=True)
    async with BenchSlack() as slack, FakeOpenAI() as openai:
        openai.default = scenario.reply()
        conversations = add_people(slack, scenario.conversations)
        with open(result.log_path, "wb") as log:
            process = await start_process(spec, bot_env(spec, slack, openai, workdir), log)
            first_call = None
            try:
                first_call = await measure(result, spec, slack, openai, conversations, process)
            finally:
                result.exit_code = await stop_process(process)
        if first_call is not None:  # counted once the bot is gone: its last calls are in too
            result.methods = Counter(call.method for call in slack.calls[first_call:])
    return result


async def measure(result: RunResult, spec: BotSpec, slack: BenchSlack, openai: FakeOpenAI,
                  conversations: list[Conversation], process: asyncio.subprocess.Process) -> int | None:
    """Connect, warm up, push, follow, then read the bot's peak RSS and CPU before it is stopped.

    Returns the index of the first Web API call of the burst (None if the burst never started).
    """
    result.error = await wait_until(lambda: slack.connected, process, CONNECT_SECONDS, "Socket Mode connection")
    if result.error is not None:
        return None
    result.idle_rss_mb = read_memory_mb(process.pid, "VmRSS")
    result.error = await warm_up(slack, process, result.scenario)
    if result.error is not None:
        return None
    result.warm_rss_mb = read_memory_mb(process.pid, "VmRSS")
    marks = len(slack.calls), len(slack.acks)
    bot_cpu_before = read_cpu_seconds(process.pid)
    cpu_before, wall_before = time.process_time(), time.monotonic()
    pushing = asyncio.ensure_future(push_all(slack, conversations, result.scenario.spread))
    try:
        await follow(result, slack, openai, conversations, pushing, process, spec.timeout(result.scenario))
    finally:
        if not pushing.done():
            pushing.cancel()
        await asyncio.gather(pushing, return_exceptions=True)
    result.fakes_cpu = time.process_time() - cpu_before
    result.measured_seconds = time.monotonic() - wall_before
    result.rss_mb = read_memory_mb(process.pid)
    bot_cpu_after = read_cpu_seconds(process.pid)
    if bot_cpu_before is not None and bot_cpu_after is not None:
        result.bot_cpu = bot_cpu_after - bot_cpu_before
    summarize(result, slack, conversations, marks)
    return marks[0]
