"""The synchronous "before" bot: the architecture the async refactor replaced, kept as a baseline.

`slack_bolt.App` + the builtin `SocketModeHandler` + the sync `openai.OpenAI` client, one
`threading.Lock` per Slack thread. Each DM gets a placeholder in its thread, the streamed answer
is edited in at most once per second, then a final `chat_update` with the full text.

Every concurrency setting is left at its default, because those defaults are what capped the
old bot (slack_bolt 1.30.0, slack_sdk 3.47.0, as installed in .venv):

- `SocketModeHandler(concurrency=10)` gives slack_sdk's builtin `SocketModeClient` a
  `ThreadPoolExecutor(max_workers=10)`; each envelope runs Bolt's dispatch (middleware, ack) there.
- `App(listener_executor=None)` creates `ThreadPoolExecutor(max_workers=5)`. With
  `process_before_response=False` (the default) an event is acked on the socket worker and its
  listener is submitted to that pool. So at most 5 answers are in progress at once; the rest
  wait in the pool's unbounded queue, already acked, while Slack sees nothing happen.

Run: `python bench/sync_bot.py` with SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_API_URL,
OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL set; SIGTERM stops it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import openai
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

EDIT_SECONDS = 1.0
INSTRUCTIONS = "You are a helpful assistant in a Slack workspace. Answer the latest message."

log = logging.getLogger("sync_bot")
web = WebClient(token=os.environ["SLACK_BOT_TOKEN"],
                base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"))
app = App(client=web)  # default listener executor: 5 threads
ai = openai.OpenAI(max_retries=int(os.environ.get("OPENAI_MAX_RETRIES", "2")))
model = os.environ.get("OPENAI_MODEL", "gpt-5.5")

locks: dict[str, threading.Lock] = {}
locks_guard = threading.Lock()


def thread_lock(key: str) -> threading.Lock:
    """One lock per Slack thread, created on first use (the dict itself is shared by workers)."""
    with locks_guard:
        return locks.setdefault(key, threading.Lock())


def stream_answer(client: WebClient, channel: str, ts: str, question: str) -> None:
    """Stream the model's answer into the placeholder `ts`: blocks this worker for the whole call."""
    text, last_edit = "", time.monotonic()
    stream = ai.responses.create(model=model, instructions=INSTRUCTIONS, stream=True,
                                 input=[{"role": "user", "content": question}])
    for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
            if time.monotonic() - last_edit >= EDIT_SECONDS:
                client.chat_update(channel=channel, ts=ts, text=text)
                last_edit = time.monotonic()
    client.chat_update(channel=channel, ts=ts, text=text or "(no answer)")


def answer(client: WebClient, channel: str, thread_ts: str, question: str) -> None:
    """Post the placeholder, then stream; a model error ends as a visible notice."""
    placeholder = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="Thinking…")
    try:
        stream_answer(client, channel, placeholder["ts"], question)
    except openai.OpenAIError as exc:
        log.warning("model call failed: %s", exc)
        client.chat_update(channel=channel, ts=placeholder["ts"], text=f"Sorry, the model failed: {exc}")


@app.event("message")
def on_message(event: dict[str, Any], client: WebClient) -> None:
    """DMs only; one answer at a time per thread (a busy thread gets a short notice)."""
    if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
        return
    channel, thread_ts = event["channel"], event.get("thread_ts") or event["ts"]
    lock = thread_lock(f"{channel}:{thread_ts}")
    if not lock.acquire(blocking=False):
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="Still answering in this thread.")
        return
    try:
        answer(client, channel, thread_ts, event.get("text", ""))
    finally:
        lock.release()


def main() -> None:
    """Connect, then wait for SIGTERM/SIGINT and close the socket."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    handler = SocketModeHandler(app, os.environ["SLACK_APP_TOKEN"])  # default concurrency: 10
    handler.connect()
    log.info("ready")
    stop.wait()
    handler.close()
    log.info("stopped")


if __name__ == "__main__":
    main()
