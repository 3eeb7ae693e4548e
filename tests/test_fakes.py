"""Protocol fidelity of the loopback fakes, checked with the real SDKs.

slack_sdk's AsyncWebClient, slack_bolt's AsyncApp + AsyncSocketModeHandler and openai's AsyncOpenAI
(including the strict ``responses.stream()`` helper and ``_strict_response_validation``) all talk
to the fakes over real sockets. Nothing here imports the bot's own code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import struct
import time
import zlib
from typing import Any, AsyncIterator, Callable, get_args

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from openai.types import FileObject
from openai.types.audio import Transcription
from openai.types.audio.transcription import UsageDuration, UsageTokens
from openai.types.chat import ChatCompletionMessageFunctionToolCall
from openai.types.containers import FileRetrieveResponse
from openai.types.responses import (
    Response,
    ResponseCodeInterpreterToolCall,
    ResponseFunctionToolCall,
    ResponseFunctionWebSearch,
    ResponseOutputMessage,
    ResponseReasoningItem,
    ResponseStreamEvent,
)
from openai.types.responses.response_code_interpreter_tool_call import OutputLogs
from openai.types.responses.response_function_web_search import ActionSearch
from openai.types.responses.response_output_item import ImageGenerationCall
from openai.types.responses.response_output_text import AnnotationContainerFileCitation, AnnotationURLCitation
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.openai import (
    CodeRun,
    FakeOpenAI,
    FakeScriptError,
    FunctionCall,
    ImageCall,
    Reasoning,
    Reply,
    WebSearch,
    spoken_audio,
    tiny_png,
)
from tests.fakes.slack import FakeSlack


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """The fakes' aiohttp servers must not log handler errors (e.g. when a reply is cut)."""
    with caplog.at_level(logging.ERROR, logger="aiohttp"):
        yield
    errors = [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
async def fake_ai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def web_client(slack: FakeSlack, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(base_url=slack.api_url, token=token or slack.bot_token)


@contextlib.asynccontextmanager
async def oai(fake: FakeOpenAI, **kwargs: Any) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(base_url=fake.base_url, api_key=kwargs.pop("api_key", "sk-test"), max_retries=0, **kwargs)
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def bolt(slack: FakeSlack, setup: Callable[[AsyncApp], None], *,
               ping_interval: float = 10) -> AsyncIterator[AsyncSocketModeHandler]:
    """A real bolt app on Socket Mode against the fake, closed on exit."""
    app = AsyncApp(client=web_client(slack))
    setup(app)
    handler = AsyncSocketModeHandler(app, slack.app_token, ping_interval=ping_interval)
    await handler.connect_async()
    try:
        await slack.wait_connected()
        yield handler
    finally:
        await handler.close_async()


def echo_app(app: AsyncApp) -> None:
    @app.event("message")
    async def on_message(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.chat_postMessage(channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"],
                                      text=f"echo: {event['text']}")


# --- Slack Web API --------------------------------------------------------------------------


async def test_post_message_and_paginate_replies(slack: FakeSlack) -> None:
    client = web_client(slack)
    root = await client.chat_postMessage(channel="C0GENERAL", text="root")
    assert root["message"]["bot_id"] == slack.bot_id and root["message"]["user"] == slack.bot_user_id
    for i in range(4):
        await client.chat_postMessage(channel="C0GENERAL", thread_ts=root["ts"], text=f"reply {i}")

    texts, cursor, pages = [], None, 0
    while True:
        page = await client.conversations_replies(channel="C0GENERAL", ts=root["ts"], limit=2, cursor=cursor)
        pages += 1
        texts += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] == bool(cursor)
        if not cursor:
            break
    assert pages == 3
    assert texts == ["root", "reply 0", "reply 1", "reply 2", "reply 3"]
    stored = slack.thread("C0GENERAL", root["ts"])
    assert [m["ts"] for m in stored] == sorted({m["ts"] for m in stored})
    assert stored[0]["reply_count"] == 4 and stored[0]["thread_ts"] == root["ts"]
    assert len(slack.bot_messages("C0GENERAL", root["ts"])) == 5
    # bolt-style string limit, and an unknown thread
    assert len((await client.conversations_replies(channel="C0GENERAL", ts=root["ts"], limit="3"))["messages"]) == 3
    with pytest.raises(SlackApiError) as missing:
        await client.conversations_replies(channel="C0GENERAL", ts="1.000000")
    assert missing.value.response["error"] == "thread_not_found"


async def test_metadata_only_with_include_all_metadata(slack: FakeSlack) -> None:
    client = web_client(slack)
    metadata = {"event_type": "bot_answer", "event_payload": {"kind": "answer"}}
    ts = (await client.chat_postMessage(channel="D0ALICE", text="hi", metadata=metadata))["ts"]
    assert slack.message("D0ALICE", ts)["metadata"] == metadata  # type: ignore[index]
    plain = await client.conversations_replies(channel="D0ALICE", ts=ts)
    assert "metadata" not in plain["messages"][0]
    full = await client.conversations_replies(channel="D0ALICE", ts=ts, include_all_metadata=True)
    assert full["messages"][0]["metadata"] == metadata
    # form-encoded call: metadata arrives as a JSON string and is decoded
    await client.api_call("chat.update", params={"channel": "D0ALICE", "ts": ts, "text": "edited",
                                                 "metadata": json.dumps({**metadata, "event_type": "v2"})})
    assert slack.message("D0ALICE", ts)["metadata"]["event_type"] == "v2"  # type: ignore[index]
    assert "edited" in slack.message("D0ALICE", ts)  # type: ignore[operator]


async def test_ratelimit_retried_after_retry_after(slack: FakeSlack) -> None:
    client = web_client(slack)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    slack.fail("chat.postMessage", retry_after=1)
    response = await client.chat_postMessage(channel="D0BOB", text="after the limit")
    assert response["ok"]
    first, second = slack.calls_to("chat.postMessage")
    assert 0.95 <= second.time - first.time < 2.5  # slack_sdk sleeps Retry-After + random()
    assert [m["text"] for m in slack.bot_messages("D0BOB")] == ["after the limit"]

    bare = web_client(slack)  # no rate-limit handler: the 429 surfaces
    slack.fail("users.info")
    with pytest.raises(SlackApiError) as limited:
        await bare.users_info(user="U0BOB")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "1"


async def test_auth_errors_and_faults(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as wrong:
        await web_client(slack, token="xoxb-wrong").auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as app_token:
        await web_client(slack, token=slack.app_token).auth_test()
    assert app_token.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError):
        await web_client(slack).apps_connections_open(app_token="xapp-wrong")
    opened = await web_client(slack).apps_connections_open(app_token=slack.app_token)
    assert opened["url"].startswith(f"ws://127.0.0.1:{slack.port}/link/?ticket=")

    client = web_client(slack)
    identity = await client.auth_test()
    assert (identity["team_id"], identity["user_id"], identity["bot_id"]) == ("T0TEAM", "U0BOT", "B0BOT")
    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("nope.nothing")
    assert unknown.value.response["error"] == "unknown_method"
    slack.fail("chat.postMessage", error="msg_too_long", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as too_long:
            await client.chat_postMessage(channel="D0ALICE", text="x")
        assert too_long.value.response.status_code == 200
        assert too_long.value.response["error"] == "msg_too_long"
    assert (await client.chat_postMessage(channel="D0ALICE", text="x"))["ok"]
    with pytest.raises(SlackApiError) as no_channel:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert no_channel.value.response["error"] == "channel_not_found"
    assert len(slack.calls_to("chat.postMessage")) == 4  # recorded before the faults applied

    slack.set_latency("auth.test", 0.3)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.3


async def test_workspace_methods(slack: FakeSlack) -> None:
    client = web_client(slack)
    alice = (await client.users_info(user="U0ALICE"))["user"]
    assert alice["tz"] == "Europe/Paris" and alice["profile"]["display_name"] == "Alice"
    assert alice["tz_offset"] == 3600 and not alice["is_bot"]
    assert (await client.users_info(user="U0BOT"))["user"]["is_bot"]
    with pytest.raises(SlackApiError):
        await client.users_info(user="U0NOBODY")
    assert (await client.conversations_info(channel="D0BOB"))["channel"]["is_im"]

    first = slack.post_as_user("U0BOB", "C0GENERAL", "one")
    slack.post_as_user("U0BOB", "C0GENERAL", "in thread", thread_ts=first["ts"])
    second = slack.post_as_user("U0ALICE", "C0GENERAL", "two")
    history = await client.conversations_history(channel="C0GENERAL", limit=1)
    assert [m["text"] for m in history["messages"]] == ["two"] and history["has_more"]
    older = await client.conversations_history(channel="C0GENERAL", cursor=history["response_metadata"]["next_cursor"])
    assert [m["text"] for m in older["messages"]] == ["one"]
    upto = await client.conversations_history(channel="C0GENERAL", latest=second["ts"], inclusive=True)
    assert [m["text"] for m in upto["messages"]] == ["two", "one"]

    posted = await client.chat_postMessage(channel="C0GENERAL", thread_ts=first["ts"], text="bot")
    await client.reactions_add(channel="C0GENERAL", timestamp=first["ts"], name="eyes")
    await client.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="only you", thread_ts=first["ts"])
    assert slack.ephemerals[0]["user"] == "U0BOB" and slack.ephemerals[0]["thread_ts"] == first["ts"]
    view = await client.views_open(trigger_id="t", view={"type": "modal", "title": {"type": "plain_text", "text": "x"}})
    assert view["view"]["id"] in slack.views
    await client.assistant_threads_setStatus(channel_id="D0ALICE", thread_ts=first["ts"], status="thinking…")
    await client.chat_delete(channel="C0GENERAL", ts=posted["ts"])
    assert slack.message("C0GENERAL", posted["ts"]) is None


async def test_chat_stream(slack: FakeSlack) -> None:
    client = web_client(slack)
    root = slack.post_as_user("U0ALICE", "D0ALICE", "stream please")
    stream = await client.chat_stream(channel="D0ALICE", thread_ts=root["ts"], recipient_team_id=slack.team_id,
                                      recipient_user_id="U0ALICE", buffer_size=5)
    for piece in ("Hello ", "streamed ", "world"):
        await stream.append(markdown_text=piece)
    await stream.stop(markdown_text="!")
    [reply] = slack.bot_messages("D0ALICE", root["ts"])
    assert reply["text"] == "Hello streamed world!"
    assert [c.method for c in slack.calls if c.method.startswith("chat.")][0] == "chat.startStream"
    with pytest.raises(SlackApiError) as stopped:
        await client.chat_appendStream(channel="D0ALICE", ts=reply["ts"], markdown_text="late")
    assert stopped.value.response["error"] == "message_not_in_streaming_state"


async def test_file_upload_and_download(slack: FakeSlack) -> None:
    client = web_client(slack)
    root = slack.post_as_user("U0ALICE", "D0ALICE", "draw me something")
    png = tiny_png()
    result = await client.files_upload_v2(channel="D0ALICE", thread_ts=root["ts"], content=png, filename="a.png",
                                          initial_comment="here it is")
    file_id = result["file"]["id"]
    [reply] = slack.bot_messages("D0ALICE", root["ts"])
    assert reply["text"] == "here it is" and reply["files"][0]["id"] == file_id
    assert reply["files"][0]["mimetype"] == "image/png" and slack.file_bytes[file_id] == png
    info = (await client.files_info(file=file_id))["file"]
    assert info["size"] == len(png)

    async with aiohttp.ClientSession() as session:
        async with session.get(info["url_private"]) as anonymous:
            assert anonymous.status == 403 and "html" in anonymous.content_type
        headers = {"Authorization": f"Bearer {slack.bot_token}"}
        async with session.get(info["url_private_download"], headers=headers) as authorized:
            assert authorized.status == 200 and await authorized.read() == png
    assert slack.downloads == [(file_id, False), (file_id, True)]


async def test_held_downloads_hang_until_released(slack: FakeSlack) -> None:
    record = slack.add_file("notes.txt", b"meeting notes", "text/plain")
    headers = {"Authorization": f"Bearer {slack.bot_token}"}
    slack.hold_downloads()
    async with aiohttp.ClientSession(headers=headers) as session:
        pending = asyncio.ensure_future(session.get(record["url_private"]))
        await slack.wait_for(lambda: len(slack.downloads) == 1)
        assert not pending.done()  # the request was taken; no response has started
        slack.release_downloads()
        async with await pending as response:
            assert response.status == 200 and await response.read() == b"meeting notes"
        # A client that gives up on a held download leaves nothing behind on the server.
        slack.hold_downloads()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(session.get(record["url_private"]), 0.2)
        slack.release_downloads()


# --- Slack Socket Mode ----------------------------------------------------------------------


async def test_socket_mode_message_round_trip(slack: FakeSlack) -> None:
    async with bolt(slack, echo_app):
        assert slack.connections_opened == 1
        assert slack.calls_to("auth.test") == []  # AsyncApp authorizes lazily
        ts = await slack.user_says("U0ALICE", "D0ALICE", "hello bot")
        [envelope_id] = slack.envelopes
        ack = await slack.wait_for_ack(envelope_id)
        assert ack.payload is None and 0 <= ack.latency < 1.0
        await slack.wait_for(lambda: slack.bot_messages("D0ALICE", ts), message="no echo")
    [reply] = slack.bot_messages("D0ALICE", ts)
    assert reply["text"] == "echo: hello bot" and reply["thread_ts"] == ts
    post = slack.calls_to("chat.postMessage")[0]
    assert post.token == slack.bot_token and post.params["team_id"] == slack.team_id
    assert len(slack.calls_to("auth.test")) == 1
    assert slack.ack_latencies() == [ack.latency]
    event = slack.envelopes[envelope_id]["payload"]["event"]
    assert event["channel_type"] == "im" and event["team"] == slack.team_id and event["event_ts"] == ts


async def test_channel_mention_pushes_app_mention_then_message(slack: FakeSlack) -> None:
    seen: list[str] = []

    def setup(app: AsyncApp) -> None:
        @app.event("app_mention")
        async def on_mention(event: dict[str, Any]) -> None:
            seen.append("app_mention")

        @app.event("message")
        async def on_message(event: dict[str, Any]) -> None:
            seen.append("message")

    async with bolt(slack, setup):
        ts = await slack.user_says("U0BOB", "C0GENERAL", f"<@{slack.bot_user_id}> hi")
        await slack.user_says("U0BOB", "C0GENERAL", "follow-up without mention", thread_ts=ts)
        await slack.wait_for(lambda: len(seen) == 3 and len(slack.acks) == 3)
    kinds = [(e["payload"]["event"]["type"], e["payload"]["event"].get("channel_type"))
             for e in slack.envelopes.values()]
    assert kinds == [("app_mention", None), ("message", "channel"), ("message", "channel")]
    assert sorted(seen) == ["app_mention", "message", "message"]
    last = list(slack.envelopes.values())[-1]["payload"]["event"]
    assert last["thread_ts"] == ts


async def test_redelivery_and_slash_command_ack_payload(slack: FakeSlack) -> None:
    retries: list[tuple[str, Any]] = []

    def setup(app: AsyncApp) -> None:
        @app.event("message")
        async def on_message(body: dict[str, Any], request: Any) -> None:
            retries.append((body["event_id"], request.headers.get("x-slack-retry-num")))

        @app.command("/ask")
        async def on_ask(ack: Any, command: dict[str, Any]) -> None:
            await ack(f"thinking about {command['text']}")

    async with bolt(slack, setup):
        await slack.user_says("U0ALICE", "D0ALICE", "once")
        first = next(iter(slack.envelopes))
        again = await slack.redeliver(first)
        assert again != first and slack.envelopes[again]["retry_reason"] == "timeout"
        await slack.wait_for(lambda: len(retries) == 2)
        command = await slack.push_envelope("slash_commands", {
            "command": "/ask", "text": "tea", "user_id": "U0ALICE", "channel_id": "D0ALICE",
            "team_id": slack.team_id, "trigger_id": "1.2.3", "response_url": f"{slack.base}/response",
        }, accepts_response_payload=True)
        ack = await slack.wait_for_ack(command)
    assert retries[0][0] == retries[1][0]
    assert [r[1] for r in retries] == [["0"], ["1"]]  # bolt turns retry_attempt into x-slack-retry-num
    assert ack.payload == {"text": "thinking about tea"}


async def test_disconnect_frame_reconnects(slack: FakeSlack) -> None:
    async with bolt(slack, echo_app):
        await slack.disconnect()
        await slack.wait_connected(count=2, timeout=4)
        assert slack.connections_opened == 2 and len(slack.calls_to("apps.connections.open")) == 2
        ts = await slack.user_says("U0ALICE", "D0ALICE", "still there?")
        await slack.wait_for(lambda: slack.bot_messages("D0ALICE", ts))


async def test_dropped_connection_reconnects(slack: FakeSlack) -> None:
    # Observed: after the abort the client's receive() gets CLOSED (not CLOSE), so it does not
    # reconnect at once; its monitor loop, which wakes every ping_interval, sees the closed session
    # and reconnects. With bolt's default ping_interval=10 that took ~9.5 s here, hence 0.2 s.
    async with bolt(slack, echo_app, ping_interval=0.2):
        started = time.monotonic()
        await slack.drop_connections()
        await slack.wait_connected(count=2, timeout=4)
        reconnected_after = time.monotonic() - started
        assert reconnected_after < 2.0
        ts = await slack.user_says("U0BOB", "D0BOB", "after the drop")
        await slack.wait_for(lambda: slack.bot_messages("D0BOB", ts))


async def test_stop_never_hangs(slack: FakeSlack) -> None:
    """A connected client and a Web API call held by set_latency do not delay stop()."""
    fake = FakeSlack()
    await fake.start()
    app = AsyncApp(client=web_client(fake))
    handler = AsyncSocketModeHandler(app, fake.app_token)
    try:
        await handler.connect_async()
        await fake.wait_connected()
        fake.set_latency("chat.postMessage", 30)
        pending = asyncio.ensure_future(web_client(fake).chat_postMessage(channel="D0ALICE", text="slow"))
        await fake.wait_for(lambda: bool(fake.calls_to("chat.postMessage")))
        started = time.monotonic()
        await fake.stop()  # the socket client is still connected
        assert time.monotonic() - started < 2.5
        await asyncio.wait_for(asyncio.gather(pending, return_exceptions=True), 2)
    finally:
        await handler.close_async()
        await fake.stop()


# --- OpenAI ---------------------------------------------------------------------------------


async def test_responses_raw_stream(fake_ai: FakeOpenAI) -> None:
    fake_ai.script(Reply(text="The quick brown fox jumps over the lazy dog.", chunk_size=7))
    async with oai(fake_ai) as client:
        stream = await client.responses.create(model="gpt-5.5", input="tell me", stream=True)
        types, text = [], ""
        async for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                assert event.response.output_text == text
    assert text == "The quick brown fox jumps over the lazy dog."
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert types.count("response.output_text.delta") == 7
    assert fake_ai.responses_requests()[0]["stream"] is True


async def test_responses_stream_helper_strict(fake_ai: FakeOpenAI) -> None:
    fake_ai.script(Reply(text="Streamed through the helper.", chunk_size=5, chunk_delay=0.01))
    async with oai(fake_ai, _strict_response_validation=True) as client:
        snapshots = []
        async with client.responses.stream(model="gpt-5.5", input=[
            {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"},
        ]) as stream:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    snapshots.append(event.snapshot)
            final = await stream.get_final_response()
    assert final.output_text == "Streamed through the helper." == snapshots[-1]
    assert final.usage is not None and final.usage.total_tokens > 0
    # default reply echoes the last user text, whatever the input shape
    async with oai(fake_ai) as client:
        response = await client.responses.create(model="m", input=[
            {"role": "user", "content": [{"type": "input_text", "text": "parts"}]}])
        assert response.output_text == "You said: parts"


async def test_responses_stream_helper_with_web_search(fake_ai: FakeOpenAI) -> None:
    fake_ai.script(Reply(text="Found it."))
    async with oai(fake_ai, _strict_response_validation=True) as client:
        async with client.responses.stream(model="gpt-5.5", input="search", tools=[{"type": "web_search"}]) as stream:
            types = [event.type async for event in stream]
            final = await stream.get_final_response()
    assert final.output_text == "Found it."
    assert [item.type for item in final.output] == ["web_search_call", "message"]
    assert types.index("response.web_search_call.completed") < types.index("response.output_text.delta")


async def test_strict_non_stream_payloads(fake_ai: FakeOpenAI) -> None:
    fake_ai.script(Reply(text="strict answer", usage=(12, 3)), Reply(text="strict chat"))
    async with oai(fake_ai, _strict_response_validation=True) as client:
        response = await client.responses.create(model="gpt-5.5", input="hi", instructions="be brief")
        assert response.output_text == "strict answer" and response.status == "completed"
        assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)  # type: ignore[union-attr]
        chat = await client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}])
        assert chat.choices[0].message.content == "strict chat" and chat.choices[0].finish_reason == "stop"
        models = await client.models.list()
        assert "gpt-5.5" in [m.id for m in models.data]
    assert fake_ai.responses_requests()[0]["instructions"] == "be brief"
    assert fake_ai.chat_requests()[0]["messages"] == [{"role": "user", "content": "hi"}]


async def test_chat_completions_stream(fake_ai: FakeOpenAI) -> None:
    fake_ai.responder = lambda body: Reply(text=f"{len(body['messages'])} messages", chunk_size=3)
    async with oai(fake_ai, _strict_response_validation=True) as client:
        stream = await client.chat.completions.create(
            model="gpt-5.5", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            stream=True, stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "2 messages"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


async def test_chat_completions_stream_finish_reasons(fake_ai: FakeOpenAI) -> None:
    fake_ai.script(Reply(text="cut sho", chunk_size=3, finish_reason="length", usage=(7, 2)),
                   Reply(text="no end", finish_reason=None), Reply(text="short", finish_reason="length"))
    messages = [{"role": "user", "content": [{"type": "text", "text": "u"},
                                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]
    async with oai(fake_ai, _strict_response_validation=True) as client:
        stream = await client.chat.completions.create(model="m", messages=messages, stream=True,  # type: ignore[arg-type]
                                                      stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        assert chunks[-2].choices[0].finish_reason == "length"
        assert chunks[-1].usage is not None and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 2)
        bare = [chunk async for chunk in await client.chat.completions.create(model="m", messages=messages, stream=True)]  # type: ignore[arg-type]
        assert [c.choices[0].finish_reason for c in bare] == [None, None] and all(c.usage is None for c in bare)
        whole = await client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        assert whole.choices[0].finish_reason == "length" and whole.choices[0].message.content == "short"
    assert fake_ai.chat_requests()[0]["messages"] == messages


async def test_http_errors_and_wrong_key(fake_ai: FakeOpenAI) -> None:
    fake_ai.script(Reply(status=500, error_message="boom"), Reply(status=429, retry_after=1))
    async with oai(fake_ai) as client:
        with pytest.raises(openai.InternalServerError) as boom:
            await client.responses.create(model="m", input="x")
        assert boom.value.status_code == 500 and "boom" in boom.value.message
        with pytest.raises(openai.RateLimitError) as limited:
            await client.responses.create(model="m", input="x")
        assert limited.value.response.headers["retry-after"] == "1"
    async with oai(fake_ai, api_key="sk-wrong") as client:
        with pytest.raises(openai.AuthenticationError) as denied:
            await client.responses.create(model="m", input="x")
        assert denied.value.code == "invalid_api_key"
    assert len(fake_ai.requests) == 3 and fake_ai.in_flight == 0


async def test_hanging_reply_times_out_and_is_released_on_stop() -> None:
    fake = FakeOpenAI()
    await fake.start()
    try:
        fake.script(Reply(hang=True))
        async with oai(fake, timeout=0.5) as client:
            started = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                await client.responses.create(model="m", input="x")
            assert 0.4 < time.monotonic() - started < 2
        assert fake.in_flight == 1
        started = time.monotonic()
        await fake.stop()
        assert time.monotonic() - started < 1.5 and fake.in_flight == 0
    finally:
        await fake.stop()


async def test_failures_mid_stream(fake_ai: FakeOpenAI) -> None:
    fake_ai.script(Reply(text="a" * 100, chunk_size=10, fail_after_chunks=3),
                   Reply(text="b" * 100, chunk_size=10, error_event_after_chunks=2, error_message="overloaded"),
                   Reply(text="c" * 100, chunk_size=10, fail_after_chunks=2))
    async with oai(fake_ai) as client:
        deltas = []
        stream = await client.responses.create(model="m", input="x", stream=True)
        with pytest.raises(openai.APIConnectionError):  # APITimeoutError is a subclass
            async for event in stream:
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
        assert deltas == ["a" * 10] * 3

        events = [event async for event in await client.responses.create(model="m", input="x", stream=True)]
        assert events[-1].type == "response.failed"
        assert events[-1].response.error.message == "overloaded"  # type: ignore[union-attr]
        assert sum(e.type == "response.output_text.delta" for e in events) == 2

        chat = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                    stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for _ in chat:
                pass
    assert fake_ai.in_flight == 0


async def test_images_generate_and_edit(fake_ai: FakeOpenAI) -> None:
    async with oai(fake_ai, _strict_response_validation=True) as client:
        generated = await client.images.generate(model="gpt-image-1", prompt="a cat", size="1024x1024")
        png = base64.b64decode(generated.data[0].b64_json)  # type: ignore[index, arg-type]
        edited = await client.images.edit(model="gpt-image-1", image=("in.png", png, "image/png"), prompt="hat")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # walk the chunks: CRCs valid, pixels decompress to 4 rows of filter byte + 4 RGB pixels
    pos, chunks = 8, {}
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + data)
        chunks[kind] = data
        pos += 12 + length
    assert struct.unpack(">II", chunks[b"IHDR"][:8]) == (4, 4)
    assert len(zlib.decompress(chunks[b"IDAT"])) == 4 * (1 + 4 * 3) and b"IEND" in chunks
    assert edited.data and edited.data[0].b64_json
    generate, edit = fake_ai.image_requests()
    assert generate["prompt"] == "a cat"
    assert edit["prompt"] == "hat" and png in (edit.get("image"), edit.get("image[]"))


# --- OpenAI as an agent: function calls and hosted tools --------------------------------------

# Every Responses stream event type the SDK knows, to its class (the `ResponseStreamEvent` union).
RESPONSE_EVENT_CLASSES = {get_args(cls.model_fields["type"].annotation)[0]: cls
                          for cls in get_args(get_args(ResponseStreamEvent)[0])}
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
LOOKUP_TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}


async def agent_turn(fake: FakeOpenAI, reply: Reply, **request: Any) -> tuple[list[Any], Response]:
    """Play `reply` three times with the strict SDK and return the raw stream's events and response.

    Raw ``create(stream=True)``: every event must parse into the SDK's class for its type. The
    ``responses.stream()`` helper: the strict order must hold and give the same final output.
    Non-streamed: the same output list in one JSON response.
    """
    fake.script(reply, reply, reply)
    request = {"model": "gpt-5.5", "input": "go", **request}
    async with oai(fake, _strict_response_validation=True) as client:
        events = [event async for event in await client.responses.create(**request, stream=True)]
        async with client.responses.stream(**request) as stream:
            helped = [event.type async for event in stream]
            final = await stream.get_final_response()
        whole = await client.responses.create(**request)
    for event in events:
        assert type(event) is RESPONSE_EVENT_CLASSES[event.type], event
    assert helped == [event.type for event in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    for response in (final, whole):
        assert [item.type for item in response.output] == [item.type for item in completed.response.output]
        assert response.output_text == completed.response.output_text
    return events, completed.response


def of_type(events: list[Any], kind: str) -> list[Any]:
    return [event for event in events if event.type == kind]


async def test_responses_parallel_function_calls(fake_ai: FakeOpenAI) -> None:
    reply = Reply(chunk_size=4, calls=[FunctionCall("get_weather", {"city": "Paris", "unit": "°C"}),
                                       FunctionCall("lookup", '{"q":"x"}', call_id="call_mine")])
    events, response = await agent_turn(fake_ai, reply, tools=[WEATHER_TOOL, LOOKUP_TOOL])
    weather, lookup = response.output  # no message: the model waits for the function outputs
    assert type(weather) is ResponseFunctionToolCall and type(lookup) is ResponseFunctionToolCall
    assert (weather.name, json.loads(weather.arguments)) == ("get_weather", {"city": "Paris", "unit": "°C"})
    assert (lookup.name, lookup.arguments, lookup.call_id) == ("lookup", '{"q":"x"}', "call_mine")
    assert re.fullmatch(r"call_\d+", weather.call_id) and weather.id.startswith("fc_")  # type: ignore[union-attr]
    assert weather.status == lookup.status == "completed" and response.output_text == ""
    assert response.usage is not None and response.usage.output_tokens > 0

    added, done = of_type(events, "response.output_item.added"), of_type(events, "response.output_item.done")
    for index, item in enumerate(response.output):
        assert added[index].output_index == done[index].output_index == index
        assert added[index].item.status == "in_progress" and added[index].item.arguments == ""
        assert added[index].item.call_id == item.call_id  # type: ignore[union-attr]
        assert done[index].item == item
        deltas = [e for e in of_type(events, "response.function_call_arguments.delta") if e.output_index == index]
        assert len(deltas) > 1 and {e.item_id for e in deltas} == {item.id}  # type: ignore[union-attr]
        assert "".join(e.delta for e in deltas) == item.arguments  # type: ignore[union-attr]
    assert [e.type for e in events if e.type.startswith("response.output_item") or "arguments.done" in e.type] == [
        "response.output_item.added", "response.function_call_arguments.done", "response.output_item.done"] * 2
    body = fake_ai.responses_requests()[0]
    assert fake_ai.declared_tools(body) == ["get_weather", "lookup"] and body["tools"][0] == WEATHER_TOOL
    assert fake_ai.function_outputs(body) == []


async def test_reasoning_items_carry_encrypted_content_and_must_come_back_whole(fake_ai: FakeOpenAI) -> None:
    reply = Reply(chunk_size=8, calls=[Reasoning("Look it up first."), FunctionCall("lookup", {"q": "x"}, call_id="c1")])
    events, response = await agent_turn(fake_ai, reply, tools=[LOOKUP_TOOL], store=False,
                                        include=["reasoning.encrypted_content"])
    thought, call = response.output
    assert type(thought) is ResponseReasoningItem and type(call) is ResponseFunctionToolCall
    assert thought.summary[0].text == "Look it up first." and thought.encrypted_content
    deltas = of_type(events, "response.reasoning_summary_text.delta")
    assert len(deltas) > 1 and "".join(e.delta for e in deltas) == "Look it up first."
    assert of_type(events, "response.output_item.added")[0].item.encrypted_content is None  # only on done

    item = thought.model_dump(exclude_none=True)
    call_item = {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"q":"x"}'}
    output = {"type": "function_call_output", "call_id": "c1", "output": "found"}
    async with oai(fake_ai, _strict_response_validation=True) as client:
        answer = await client.responses.create(model="gpt-5.5", store=False, input=[item, call_item, output])
        assert answer.output_text.startswith("You said")
        with pytest.raises(openai.BadRequestError, match="without its required following item"):
            await client.responses.create(model="gpt-5.5", store=False, input=[call_item, item])
        with pytest.raises(openai.BadRequestError, match="not persisted"):
            await client.responses.create(model="gpt-5.5", store=False,
                                          input=[{**item, "encrypted_content": "forged"}, call_item, output])
    without = await agent_turn(fake_ai, Reply(calls=[Reasoning()]))
    assert without[1].output[0].encrypted_content is None  # not asked for: not sent


async def test_function_outputs_answered_with_text(fake_ai: FakeOpenAI) -> None:
    fake_ai.script(Reply(calls=[FunctionCall("get_weather", {"city": "Paris"})]),
                   Reply(text="It is 18 °C in Paris.", chunk_size=6))
    user: Any = {"role": "user", "content": "weather in Paris?"}
    tools: Any = [WEATHER_TOOL]
    async with oai(fake_ai, _strict_response_validation=True) as client:
        first = await client.responses.create(model="gpt-5.5", input=[user], tools=tools)
        [call] = first.output
        assert isinstance(call, ResponseFunctionToolCall)
        outputs: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 18}'}]
        # the earlier items sent again, then the outputs
        resent: Any = [user, call.to_dict(), *outputs]
        async with client.responses.stream(model="gpt-5.5", input=resent, tools=tools) as stream:
            final = await stream.get_final_response()
        # or only the outputs, after previous_response_id
        fake_ai.script(Reply(text="Still 18 °C."))
        again = await client.responses.create(model="gpt-5.5", previous_response_id=first.id, input=outputs)
    [message] = final.output
    assert isinstance(message, ResponseOutputMessage) and final.output_text == "It is 18 °C in Paris."
    assert again.output_text == "Still 18 °C." and again.previous_response_id == first.id
    first_body, second_body, third_body = fake_ai.responses_requests()
    assert fake_ai.function_outputs(first_body) == []
    assert fake_ai.function_outputs(second_body) == outputs == fake_ai.function_outputs()
    assert [i.get("type") for i in second_body["input"]] == [None, "function_call", "function_call_output"]
    assert third_body["previous_response_id"] == first.id and fake_ai.function_outputs(third_body) == outputs


async def test_function_call_deltas_take_the_reply_faults(fake_ai: FakeOpenAI) -> None:
    long_call = FunctionCall("lookup", {"q": "x" * 40})
    fake_ai.script(Reply(calls=[long_call], chunk_size=5, fail_after_chunks=2),
                   Reply(calls=[long_call], chunk_size=5, error_event_after_chunks=3))
    async with oai(fake_ai) as client:
        seen = []
        with pytest.raises(openai.APIConnectionError):
            async for event in await client.responses.create(model="m", input="x", stream=True):
                seen.append(event.type)
        assert seen.count("response.function_call_arguments.delta") == 2
        events = [event async for event in await client.responses.create(model="m", input="x", stream=True)]
    assert events[-1].type == "response.failed" and len(of_type(events, "response.function_call_arguments.delta")) == 3
    assert fake_ai.in_flight == 0


async def test_hosted_web_search_cites_sources(fake_ai: FakeOpenAI) -> None:
    text = "Sunny all week, says https://example.com/paris (and a second source)."
    sources = [("https://example.com/paris", "Paris weather"), ("https://news.example/fr", "News")]
    reply = Reply(text=text, chunk_size=9, calls=[WebSearch("paris weather this week", sources=sources)])
    events, response = await agent_turn(fake_ai, reply, tools=[{"type": "web_search"}])
    search, message = response.output  # no implicit second search: the script decides
    assert type(search) is ResponseFunctionWebSearch and search.status == "completed"
    assert isinstance(search.action, ActionSearch) and search.action.query == "paris weather this week"
    assert [s.url for s in search.action.sources or []] == [url for url, _ in sources]
    assert type(message) is ResponseOutputMessage and response.output_text == text
    first, second = message.content[0].annotations  # type: ignore[union-attr]
    assert type(first) is AnnotationURLCitation and type(second) is AnnotationURLCitation
    assert (first.url, first.title, text[first.start_index:first.end_index]) == (*sources[0], sources[0][0])
    assert (second.url, second.title, second.start_index, second.end_index) == (*sources[1], 0, len(text))

    types = [e.type for e in events]
    assert types[2:7] == ["response.output_item.added", "response.web_search_call.in_progress",
                          "response.web_search_call.searching", "response.web_search_call.completed",
                          "response.output_item.done"]
    assert of_type(events, "response.output_item.added")[0].item.status == "in_progress"
    added = of_type(events, "response.output_text.annotation.added")
    assert [a.annotation_index for a in added] == [0, 1] and all(a.output_index == 1 for a in added)
    assert [a.annotation.url for a in added] == [url for url, _ in sources]  # type: ignore[union-attr]
    assert types.index("response.output_text.annotation.added") > types.index("response.output_text.delta")
    assert types.index("response.output_text.annotation.added") < types.index("response.output_text.done")
    assert of_type(events, "response.content_part.done")[0].part.annotations == [first, second]


async def test_hosted_code_interpreter_files_download(fake_ai: FakeOpenAI) -> None:
    png, csv = tiny_png((10, 200, 10)), b"a,b\n1,2\n"
    code = "import pandas as pd\ndf = pd.DataFrame({'a': [1], 'b': [2]})\ndf.to_csv('/mnt/data/data.csv')\n"
    text = "The chart: [chart.png](sandbox:/mnt/data/chart.png)"
    reply = Reply(text=text, chunk_size=16, calls=[CodeRun(code=code, logs="saved 2 files",
                                                           files=[("chart.png", png), ("data.csv", csv)])])
    events, response = await agent_turn(fake_ai, reply, tools=[{"type": "code_interpreter",
                                                                "container": {"type": "auto"}}])
    run, message = response.output
    assert type(run) is ResponseCodeInterpreterToolCall and run.code == code and run.status == "completed"
    assert run.container_id.startswith("cntr_") and run.outputs == [OutputLogs(type="logs", logs="saved 2 files")]
    chart, data = message.content[0].annotations  # type: ignore[union-attr]
    assert type(chart) is AnnotationContainerFileCitation and type(data) is AnnotationContainerFileCitation
    assert chart.container_id == data.container_id == run.container_id
    assert (chart.filename, text[chart.start_index:chart.end_index]) == ("chart.png", "chart.png")
    assert (data.filename, data.start_index, data.end_index) == ("data.csv", 0, len(text))

    types = [e.type for e in events]
    assert types[2:4] == ["response.output_item.added", "response.code_interpreter_call.in_progress"]
    assert types[types.index("response.code_interpreter_call_code.done"):][:4] == [
        "response.code_interpreter_call_code.done", "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed", "response.output_item.done"]
    start = of_type(events, "response.output_item.added")[0].item
    assert start.status == "in_progress" and start.code == "" and start.container_id == run.container_id
    code_deltas = of_type(events, "response.code_interpreter_call_code.delta")
    assert len(code_deltas) > 1 and "".join(e.delta for e in code_deltas) == code

    async with oai(fake_ai, _strict_response_validation=True) as client:
        content = await client.containers.files.content.retrieve(chart.file_id, container_id=run.container_id)
        assert content.content == png
        content = await client.containers.files.content.retrieve(data.file_id, container_id=run.container_id)
        assert content.read() == csv
        info = await client.containers.files.retrieve(chart.file_id, container_id=run.container_id)
        assert type(info) is FileRetrieveResponse and info.object == "container.file"
        assert (info.id, info.container_id, info.path, info.bytes) == (chart.file_id, run.container_id,
                                                                        "/mnt/data/chart.png", len(png))
        with pytest.raises(openai.NotFoundError):
            await client.containers.files.content.retrieve("cfile_nope", container_id=run.container_id)
        with pytest.raises(openai.NotFoundError):
            await client.containers.files.retrieve(chart.file_id, container_id="cntr_other")
    assert fake_ai.container_files[(run.container_id, chart.file_id)][1] == png


async def test_file_uploads_for_the_code_interpreter_container(fake_ai: FakeOpenAI) -> None:
    csv = b"month,total\n1,2\n"
    async with oai(fake_ai, _strict_response_validation=True) as client:
        uploaded = await client.files.create(file=("sales.csv", csv, "text/csv"), purpose="user_data",
                                             expires_after={"anchor": "created_at", "seconds": 86400})
        assert type(uploaded) is FileObject and uploaded.filename == "sales.csv" and uploaded.bytes == len(csv)
        assert uploaded.purpose == "user_data" and uploaded.expires_at == uploaded.created_at + 86400
        with pytest.raises(openai.BadRequestError):
            await client.files.create(file=("x.csv", csv, "text/csv"), purpose="user_data",
                                      expires_after={"anchor": "created_at", "seconds": 60})
        tools: Any = [{"type": "code_interpreter", "container": {"type": "auto", "file_ids": [uploaded.id]}}]
        response = await client.responses.create(model="test-model", input="hi", tools=tools)
        assert response.output_text == "You said: hi"
        tools[0]["container"]["file_ids"] = ["file-never-uploaded"]
        with pytest.raises(openai.NotFoundError):
            await client.responses.create(model="test-model", input="hi", tools=tools)
    assert fake_ai.uploads()[0]["data"] == csv


async def test_audio_transcriptions(fake_ai: FakeOpenAI) -> None:
    clip = spoken_audio("what is on my calendar today", "m4a")
    async with oai(fake_ai, _strict_response_validation=True) as client:
        heard = await client.audio.transcriptions.create(
            file=("voice.m4a", clip, "audio/mp4"), model="gpt-4o-mini-transcribe", response_format="json",
            language="en", prompt="Calendar words",
        )
        assert type(heard) is Transcription and heard.text == "what is on my calendar today"
        assert isinstance(heard.usage, UsageTokens) and heard.usage.type == "tokens"
        assert heard.usage.total_tokens == heard.usage.input_tokens + heard.usage.output_tokens
        assert heard.usage.input_token_details and heard.usage.input_token_details.audio_tokens
        whisper = await client.audio.transcriptions.create(file=("a.wav", spoken_audio("hi", "wav"), "audio/wav"),
                                                           model="whisper-1")
        assert isinstance(whisper.usage, UsageDuration) and whisper.text == "hi"
        plain = await client.audio.transcriptions.create(file=("a.ogg", spoken_audio("plain", "ogg"), "audio/ogg"),
                                                         model="gpt-4o-transcribe", response_format="text")
        assert plain.strip() == "plain"
        silence = await client.audio.transcriptions.create(file=("s.webm", spoken_audio(""), "audio/webm"),
                                                           model="gpt-4o-transcribe")
        assert silence.text == ""
        with pytest.raises(openai.BadRequestError, match="corrupted or unsupported"):
            await client.audio.transcriptions.create(file=("bad.mp3", b"not audio", "audio/mpeg"), model="whisper-1")
        with pytest.raises(openai.BadRequestError, match="Invalid file format"):
            await client.audio.transcriptions.create(file=("clip.aiff", clip, "audio/aiff"), model="whisper-1")
        with pytest.raises(openai.BadRequestError, match="not compatible"):
            await client.audio.transcriptions.create(file=("v.m4a", clip, "audio/mp4"), model="gpt-4o-transcribe",
                                                     response_format="verbose_json")
        fake_ai.transcription_status = 404  # a server without the route: not an OpenAI error body
        with pytest.raises(openai.NotFoundError):
            await client.audio.transcriptions.create(file=("v.m4a", clip, "audio/mp4"), model="whisper-1")
    first = fake_ai.transcription_requests()[0]
    assert first["file"] == ("voice.m4a", clip) and first["file_type"] == "audio/mp4"
    assert (first["model"], first["response_format"], first["language"], first["prompt"]) == (
        "gpt-4o-mini-transcribe", "json", "en", "Calendar words")


async def test_hosted_image_generation(fake_ai: FakeOpenAI) -> None:
    png = tiny_png((200, 30, 30))
    reply = Reply(calls=[ImageCall(png=png, revised_prompt="a small red square")])  # text None: the default
    events, response = await agent_turn(fake_ai, reply, input="draw a red square",
                                        tools=[{"type": "image_generation"}])
    image, message = response.output
    assert type(image) is ImageGenerationCall and image.status == "completed"
    assert base64.b64decode(image.result or "") == png and image.revised_prompt == "a small red square"
    assert type(message) is ResponseOutputMessage and response.output_text == "You said: draw a red square"
    assert [e.type for e in events][2:8] == [
        "response.output_item.added", "response.image_generation_call.in_progress",
        "response.image_generation_call.generating", "response.image_generation_call.partial_image",
        "response.image_generation_call.completed", "response.output_item.done"]
    [partial] = of_type(events, "response.image_generation_call.partial_image")
    assert partial.partial_image_index == 0 and base64.b64decode(partial.partial_image_b64) == png
    assert of_type(events, "response.output_item.added")[0].item.result is None


async def test_one_reply_with_every_kind_of_call(fake_ai: FakeOpenAI) -> None:
    calls = [WebSearch("q", sources=[("https://a.example", "A")]), CodeRun("print(1)", files=[("out.txt", b"1")]),
             ImageCall(png=tiny_png()), FunctionCall("lookup", {})]
    events, response = await agent_turn(fake_ai, Reply(text="Partial answer.", calls=calls))
    assert [type(i) for i in response.output] == [ResponseFunctionWebSearch, ResponseCodeInterpreterToolCall,
                                                   ImageGenerationCall, ResponseFunctionToolCall, ResponseOutputMessage]
    assert [e.output_index for e in of_type(events, "response.output_item.done")] == [0, 1, 2, 3, 4]
    [url, file] = response.output[-1].content[0].annotations  # type: ignore[union-attr]
    assert type(url) is AnnotationURLCitation and type(file) is AnnotationContainerFileCitation
    assert response.output[1].outputs == []  # type: ignore[union-attr]  # no logs
    assert response.output[3].arguments == "{}"  # type: ignore[union-attr]


async def test_chat_tool_calls(fake_ai: FakeOpenAI) -> None:
    calls = [FunctionCall("get_weather", {"city": "Paris"}), FunctionCall("lookup", {}, call_id="call_t")]
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL["parameters"]}},
                  {"type": "function", "function": {"name": "lookup", "parameters": LOOKUP_TOOL["parameters"]}}]
    request: Any = {"model": "m", "messages": [{"role": "user", "content": "weather?"}], "tools": tools}
    fake_ai.script(Reply(calls=calls, chunk_size=4), Reply(calls=calls, chunk_size=4),
                   Reply(calls=calls), Reply(text="Looking.", calls=calls[:1]))
    async with oai(fake_ai, _strict_response_validation=True) as client:
        stream_options: Any = {"include_usage": True}
        raw = [c async for c in await client.chat.completions.create(**request, stream=True,
                                                                      stream_options=stream_options)]
        async with client.chat.completions.stream(**request) as stream:
            assembled = (await stream.get_final_completion()).choices[0]
        whole = (await client.chat.completions.create(**request)).choices[0]
        mixed = (await client.chat.completions.create(**request)).choices[0]

        # The raw chunks: each call's head (index, id, type, name, "" arguments), then argument pieces.
        deltas: list[Any] = [tc for c in raw if c.choices for tc in c.choices[0].delta.tool_calls or []]
        heads = [tc for tc in deltas if tc.id is not None]
        assert [(h.index, h.type, h.function.name, h.function.arguments) for h in heads] == [
            (0, "function", "get_weather", ""), (1, "function", "lookup", "")]
        pieces = [tc for tc in deltas if tc.id is None]
        assert all(p.type is None and p.function.name is None for p in pieces)
        assert "".join(p.function.arguments for p in pieces if p.index == 0) == '{"city":"Paris"}'
        assert raw[0].choices[0].delta.role == "assistant" and raw[0].choices[0].delta.content is None
        assert raw[-2].choices[0].finish_reason == "tool_calls" and raw[-1].usage is not None

        for choice in (assembled, whole):
            assert choice.finish_reason == "tool_calls" and choice.message.content is None
            weather, lookup = choice.message.tool_calls or []
            assert isinstance(weather, ChatCompletionMessageFunctionToolCall)  # the helper's is a subclass
            assert isinstance(lookup, ChatCompletionMessageFunctionToolCall)
            assert (weather.function.name, json.loads(weather.function.arguments)) == ("get_weather", {"city": "Paris"})
            assert re.fullmatch(r"call_\d+", weather.id) and (lookup.id, lookup.function.arguments) == ("call_t", "{}")
        assert type((whole.message.tool_calls or [])[0]) is ChatCompletionMessageFunctionToolCall
        assert mixed.finish_reason == "tool_calls" and mixed.message.content == "Looking."
        assert len(mixed.message.tool_calls or []) == 1

        follow_up = request["messages"] + [whole.message.to_dict(),
                                           {"role": "tool", "tool_call_id": weather.id, "content": "18 °C"},
                                           {"role": "tool", "tool_call_id": "call_t", "content": "nothing"}]
        fake_ai.script(Reply(text="It is 18 °C."))
        answer = await client.chat.completions.create(**{**request, "messages": follow_up})
    assert answer.choices[0].message.content == "It is 18 °C." and answer.choices[0].message.tool_calls is None
    assert fake_ai.tool_messages() == follow_up[2:] and fake_ai.tool_messages(fake_ai.chat_requests()[0]) == []
    assert fake_ai.declared_tools(fake_ai.chat_requests()[0]) == ["get_weather", "lookup"]


async def test_hosted_call_in_chat_is_a_script_error() -> None:
    fake = FakeOpenAI()
    await fake.start()
    try:
        fake.script(Reply(calls=[FunctionCall("lookup"), WebSearch("q")]), Reply(text="next"))
        async with oai(fake) as client:
            with pytest.raises(openai.BadRequestError) as refused:
                await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            assert "WebSearch" in refused.value.message
            # the 400 is not retried: the next reply is still there
            next_one = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            assert next_one.choices[0].message.content == "next"
        with pytest.raises(FakeScriptError, match="WebSearch"):
            await fake.stop()
    finally:
        await fake.stop()


async def test_plain_replies_unchanged(fake_ai: FakeOpenAI) -> None:
    """Without `calls`, the shapes are those the fake always sent (the bot's tests rely on them)."""
    events, response = await agent_turn(fake_ai, Reply(text="plain answer", chunk_size=6))
    assert [e.type for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    [message] = response.output
    assert message.id == "msg_000001" and message.content[0].annotations == []  # type: ignore[union-attr]
    events, response = await agent_turn(fake_ai, Reply(text="found"), input="news", tools=[{"type": "web_search"}])
    search, _ = response.output
    assert type(search) is ResponseFunctionWebSearch and search.id == "ws_000004"
    assert search.action.query == "news" and search.action.sources is None  # type: ignore[union-attr]
    assert not of_type(events, "response.output_text.annotation.added")
    fake_ai.script(Reply(text="chat"))
    async with oai(fake_ai, _strict_response_validation=True) as client:
        chat = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert chat.choices[0].finish_reason == "stop" and chat.choices[0].message.tool_calls is None


async def test_two_connections_of_one_app_share_the_envelopes(slack: FakeSlack) -> None:
    """Two processes of one app: envelopes spread round-robin, or go where a test says, or to both."""
    seen: dict[str, list[str]] = {"first": [], "second": []}

    def recorder(name: str) -> Callable[[AsyncApp], None]:
        def setup(app: AsyncApp) -> None:
            @app.event("message")
            async def on_message(event: dict[str, Any]) -> None:
                seen[name].append(event["text"])
        return setup

    async with bolt(slack, recorder("first")):
        first = slack.connections()[-1].id
        async with bolt(slack, recorder("second")):
            await slack.wait_connected(count=2, open_now=2)
            second = next(c.id for c in slack.connections() if c.id != first)
            slack.delivery = "round_robin"
            for i in range(4):
                await slack.user_says("U0ALICE", "D0ALICE", f"spread {i}")
            await slack.wait_for(lambda: len(seen["first"]) + len(seen["second"]) == 4)
            assert len(seen["first"]) == len(seen["second"]) == 2

            await slack.user_says("U0ALICE", "D0ALICE", "to the second", to=second)
            await slack.wait_for(lambda: "to the second" in seen["second"])
            envelope = await slack.push_event({"type": "message", "user": "U0BOB", "channel": "D0BOB",
                                               "text": "to both", "ts": "1.000001", "channel_type": "im"},
                                              to="all")
            await slack.wait_for(lambda: "to both" in seen["first"] and "to both" in seen["second"])
            assert sorted(slack.delivered_to[envelope]) == sorted([first, second])
            assert "to the second" not in seen["first"]
