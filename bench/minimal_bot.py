"""The floor: the least an async bot can do for the same Slack traffic as the others.

`AsyncApp` + `AsyncSocketModeHandler` + `AsyncOpenAI`, one coroutine per DM: placeholder in the
thread, the streamed answer edited in at most once per second, then a final `chat_update`.
No database, no locks, no settings, no error notices: whatever this costs, any real bot costs too,
so the distance between this bot and ours is what our features cost.

Run: `python bench/minimal_bot.py` with SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_API_URL,
OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL set; SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import aiohttp
from openai import AsyncOpenAI
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

EDIT_SECONDS = 1.0
INSTRUCTIONS = "You are a helpful assistant in a Slack workspace. Answer the latest message."

log = logging.getLogger("minimal_bot")
web = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"],
                     base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"))
app = AsyncApp(client=web)
ai = AsyncOpenAI(max_retries=int(os.environ.get("OPENAI_MAX_RETRIES", "2")))
model = os.environ.get("OPENAI_MODEL", "gpt-5.5")


async def answer(client: AsyncWebClient, channel: str, thread_ts: str, question: str) -> None:
    """Placeholder, throttled edits while the model streams, final edit with the full text."""
    loop = asyncio.get_running_loop()
    placeholder = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="Thinking…")
    ts, text, last_edit = placeholder["ts"], "", loop.time()
    stream = await ai.responses.create(model=model, instructions=INSTRUCTIONS, stream=True,
                                       input=[{"role": "user", "content": question}])
    async for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
            if loop.time() - last_edit >= EDIT_SECONDS:
                await client.chat_update(channel=channel, ts=ts, text=text)
                last_edit = loop.time()
    await client.chat_update(channel=channel, ts=ts, text=text or "(no answer)")


@app.event("message")
async def on_message(event: dict[str, Any], client: AsyncWebClient) -> None:
    """DMs only; Bolt has already acked the envelope and runs this as its own task."""
    if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
        return
    await answer(client, event["channel"], event.get("thread_ts") or event["ts"], event.get("text", ""))


async def main() -> None:
    """Connect, then wait for SIGTERM/SIGINT and close the socket and the model client."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    # One pooled HTTP session for every Web API call, as our bot does (the SDK's default is a
    # new session, so a new connection, per call: that would handicap the floor).
    web.session = aiohttp.ClientSession()
    handler = AsyncSocketModeHandler(app, os.environ["SLACK_APP_TOKEN"])
    await handler.connect_async()
    log.info("ready")
    await stop.wait()
    await handler.close_async()
    await ai.close()
    await web.session.close()
    log.info("stopped")


if __name__ == "__main__":
    asyncio.run(main())
