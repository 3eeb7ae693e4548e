"""Try the bot without a workspace: `python -m tests.fakes` (or `make fake-workspace`).

Starts the loopback Slack and OpenAI, prints the environment a bot needs to use them, then
posts every line you type as a DM from Alice and prints the bot's replies in that thread once
they have stopped changing for 2 s. Run the bot in a second terminal with the printed variables
exported. Ctrl-D or Ctrl-C quits.

`--bot` (`make demo`) runs the real bot too, in this process, against the two fakes, with a
throwaway database: each line is a DM to it through Slack's protocols, and its answer is
printed as it streams (its statuses on stderr). Ctrl-D stops all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import threading
from typing import TYPE_CHECKING

from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack

if TYPE_CHECKING:
    from console_client import Terminal
    from main import AssistantApp

SETTLE_SECONDS = 2.0
GIVE_UP_SECONDS = 300.0
USER, CHANNEL = "U0ALICE", "D0ALICE"
# A message is settled once its journal row leaves these.
IN_PROGRESS = (None, "received", "answering")
POLL_SECONDS = 0.05
MENTION = re.compile(r"<@(\w+)>")


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Feed stdin lines to the loop from a daemon thread (it never blocks interpreter exit)."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\n"))
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def replies_when_settled(slack: FakeSlack, channel: str, ts: str) -> list[str]:
    """The bot's messages in the thread once they have not changed for SETTLE_SECONDS."""
    loop = asyncio.get_running_loop()
    started = last_change = loop.time()
    last: list[str] | None = None
    while loop.time() - started < GIVE_UP_SECONDS:
        texts = [m.get("text", "") for m in slack.bot_messages(channel, ts)]
        if texts != last:
            last, last_change = texts, loop.time()
        elif texts and loop.time() - last_change >= SETTLE_SECONDS:
            return texts
        await asyncio.sleep(0.1)
    return last or []


async def main(args: argparse.Namespace) -> None:
    """Run both fakes until stdin ends."""
    slack, openai = FakeSlack(), FakeOpenAI()
    await slack.start(port=args.slack_port)
    await openai.start(port=args.openai_port)
    openai.default = Reply(latency=args.openai_latency, chunk_delay=0.05, chunk_size=6)
    print(f"export SLACK_BOT_TOKEN={slack.bot_token}")
    print(f"export SLACK_APP_TOKEN={slack.app_token}")
    print(f"export SLACK_API_URL={slack.api_url}")
    print(f"export OPENAI_API_KEY={openai.api_key}")
    print(f"export OPENAI_BASE_URL={openai.base_url}")
    print("# Start the bot with these, then type a message (Ctrl-D quits).", flush=True)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read_stdin, args=(loop, lines), daemon=True).start()
    try:
        while (line := await lines.get()) is not None:
            if not line.strip():
                continue
            if not slack.connected:
                print("# waiting for the bot to connect...", flush=True)
                await slack.wait_connected(timeout=24 * 3600)
            ts = await slack.user_says(USER, CHANNEL, line.strip())
            texts = await replies_when_settled(slack, CHANNEL, ts)
            for text in texts or [f"(no reply after {GIVE_UP_SECONDS:.0f} s)"]:
                print(f"bot> {text}", flush=True)
    finally:
        await slack.stop()
        await openai.stop()


def bot_environment(slack: FakeSlack, openai: FakeOpenAI, folder: str) -> dict[str, str]:
    """The bot's whole configuration for the demo: the fakes, a database in `folder`; nothing
    from this machine's environment or .env (no real token can be used by mistake)."""
    return {
        "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token, "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": openai.api_key, "OPENAI_BASE_URL": openai.base_url, "OPENAI_MODEL": "gpt-5.5",
        "DATABASE_URL": f"sqlite:///{folder}/demo.db", "BACKUP_KEEP": "0", "LOG_LEVEL": "warning",
    }


class Follower:
    """Prints one thread's bot messages as they grow, and the assistant statuses set meanwhile."""

    def __init__(self, slack: FakeSlack, terminal: Terminal, thread: str, ts: str) -> None:
        self.slack, self.terminal, self.thread, self.ts = slack, terminal, thread, ts
        self._calls = len(slack.calls)
        self._shown: dict[str, str] = {}

    def show_new(self) -> None:
        for call in self.slack.calls[self._calls:]:
            if call.method == "assistant.threads.setStatus" and call.params.get("status"):
                self.terminal.status(str(call.params["status"]))
        self._calls = len(self.slack.calls)
        for message in self.slack.bot_messages(CHANNEL, self.thread):
            if float(message["ts"]) < float(self.ts):
                continue  # an answer to an earlier line of this thread
            text = MENTION.sub(r"@\1", message.get("text", ""))
            before = self._shown.get(message["ts"], "")
            if text == before:
                continue
            if message["ts"] not in self._shown and self._shown:
                self.terminal.end_line()  # another message: on a line of its own
            if text.startswith(before):
                self.terminal.write(text[len(before):])
            else:  # an edited message: show it again, whole
                self.terminal.end_line()
                self.terminal.write(text)
            self._shown[message["ts"]] = text

    def streaming(self) -> bool:
        return any(m.get("streaming") for m in self.slack.bot_messages(CHANNEL, self.thread))


async def follow(app: AssistantApp, slack: FakeSlack, terminal: Terminal, thread: str, ts: str) -> None:
    """Print the answer to message `ts` (in `thread`) as it comes, until it is settled."""
    follower = Follower(slack, terminal, thread, ts)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GIVE_UP_SECONDS
    while loop.time() < deadline:
        follower.show_new()
        settled = await app.db.message_status(CHANNEL, ts) not in IN_PROGRESS
        if settled and not follower.streaming():
            await app.processor.wait_idle()  # the welcome, the feedback buttons
            follower.show_new()
            break
        await asyncio.sleep(POLL_SECONDS)
    else:
        terminal.note(f"(no answer after {GIVE_UP_SECONDS:.0f} s)")
    terminal.end_line()


async def demo(args: argparse.Namespace) -> None:
    """The fakes and the real bot in one process, chatting from this terminal."""
    from config import load_config
    from console_client import Terminal
    from main import create_app, setup_logging

    slack, openai = FakeSlack(), FakeOpenAI()
    await slack.start()
    await openai.start()
    openai.default = Reply(latency=args.openai_latency, chunk_delay=0.05, chunk_size=6)
    terminal = Terminal(sys.stdout, sys.stderr)
    with tempfile.TemporaryDirectory(prefix="assistant-demo-") as folder:
        config = load_config(bot_environment(slack, openai, folder))
        setup_logging(config.log_level, config.secrets, config.library_log_level)
        app = create_app(config)
        try:
            await app.start()
            terminal.note("The bot is running against a loopback Slack and OpenAI (the model says "
                          "\"You said: …\"). Type a message; /new starts another conversation; Ctrl-D ends the demo.")
            loop = asyncio.get_running_loop()
            lines: asyncio.Queue[str | None] = asyncio.Queue()
            threading.Thread(target=_read_stdin, args=(loop, lines), daemon=True).start()
            terminal.prompt()
            thread: str | None = None  # the conversation: the first line's thread, until /new
            while (line := await lines.get()) is not None:
                text = line.strip()
                if text == "/new":
                    thread = None
                    terminal.note("(a new conversation)")
                elif text:
                    ts = await slack.user_says(USER, CHANNEL, text, thread_ts=thread)
                    thread = thread or ts
                    await follow(app, slack, terminal, thread, ts)
                terminal.prompt()
            terminal.note("")
        finally:
            await app.stop()
            await slack.stop()
            await openai.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--slack-port", type=int, default=0, help="fixed port for the fake Slack (0 = any)")
    parser.add_argument("--openai-port", type=int, default=0, help="fixed port for the fake OpenAI (0 = any)")
    parser.add_argument("--openai-latency", type=float, default=1.0, help="seconds before each model answer")
    parser.add_argument("--bot", action="store_true", help="run the bot too and chat with it here (make demo)")
    try:
        arguments = parser.parse_args()
        asyncio.run(demo(arguments) if arguments.bot else main(arguments))
    except KeyboardInterrupt:
        print()
