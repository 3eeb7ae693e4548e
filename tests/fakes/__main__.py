"""Try the bot without a workspace: `python -m tests.fakes` (or `make fake-workspace`).

Starts the loopback Slack and OpenAI, prints the environment a bot needs to use them, then
posts every line you type as a DM from Alice and prints the bot's reply once it settles.
Run the bot in a second terminal with the printed variables exported.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack

SETTLE_SECONDS = 2.0


async def _reply_when_settled(slack: FakeSlack, channel: str, ts: str) -> str:
    """The bot's messages in the thread once they stop changing for SETTLE_SECONDS."""
    last, stable_since = None, asyncio.get_running_loop().time()
    while True:
        texts = "\n".join(m["text"] for m in slack.bot_messages(channel, ts))
        now = asyncio.get_running_loop().time()
        if texts != last:
            last, stable_since = texts, now
        elif texts and now - stable_since >= SETTLE_SECONDS:
            return texts
        await asyncio.sleep(0.1)


async def main(args: argparse.Namespace) -> None:
    slack, openai = FakeSlack(), FakeOpenAI()
    await slack.start(port=args.slack_port)
    await openai.start(port=args.openai_port)
    openai.default = Reply(latency=args.openai_latency, chunk_delay=0.05, chunk_size=6)
    print(f"export SLACK_BOT_TOKEN={slack.bot_token}")
    print(f"export SLACK_APP_TOKEN={slack.app_token}")
    print(f"export SLACK_API_URL={slack.api_url}")
    print(f"export OPENAI_API_KEY={openai.api_key}")
    print(f"export OPENAI_BASE_URL={openai.base_url}")
    print("# Start the bot with these, wait for it to connect, then type a message (Ctrl-D quits).")
    loop = asyncio.get_running_loop()
    try:
        await slack.wait_connected(timeout=3600)
        print("# bot connected")
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if line.strip():
                ts = await slack.user_says("U0ALICE", "D0ALICE", line.strip())
                print(f"bot> {await _reply_when_settled(slack, 'D0ALICE', ts)}")
    finally:
        await slack.stop()
        await openai.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slack-port", type=int, default=0)
    parser.add_argument("--openai-port", type=int, default=0)
    parser.add_argument("--openai-latency", type=float, default=1.0, help="seconds before each answer")
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        print()  # end the prompt line; nothing else to clean up
