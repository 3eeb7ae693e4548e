"""Try the bot without a workspace: `python -m tests.fakes` (or `make fake-workspace`).

Starts the loopback Slack and OpenAI, prints the environment a bot needs to use them, then
posts every line you type as a DM from Alice and prints the bot's replies in that thread once
they have stopped changing for 2 s. Run the bot in a second terminal with the printed variables
exported. Ctrl-D or Ctrl-C quits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading

from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack

SETTLE_SECONDS = 2.0
GIVE_UP_SECONDS = 300.0
USER, CHANNEL = "U0ALICE", "D0ALICE"


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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--slack-port", type=int, default=0, help="fixed port for the fake Slack (0 = any)")
    parser.add_argument("--openai-port", type=int, default=0, help="fixed port for the fake OpenAI (0 = any)")
    parser.add_argument("--openai-latency", type=float, default=1.0, help="seconds before each model answer")
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        print()
