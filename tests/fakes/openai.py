"""A loopback OpenAI: Responses (JSON and SSE in the SDK's strict order), Chat Completions, Images.

Every request is recorded; replies are scripted per request (`script`) or computed by default,
with latency, hangs, HTTP errors and mid-stream failures on demand.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web


@dataclass
class Reply:
    text: str | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0
    chunk_size: int = 20
    hang: bool = False
    status: int | None = None
    error_message: str = "fake error"
    retry_after: float | None = None
    fail_after_chunks: int | None = None
    error_event_after_chunks: int | None = None
    usage: tuple[int, int] | None = None


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    time: float = field(default_factory=time.monotonic)


def tiny_png(rgb: tuple[int, int, int] = (40, 120, 200), size: int = 4) -> bytes:
    """A valid PNG of one colour, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b"")
    )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    items = body.get("input")
    if items is None:
        items = body.get("messages", [])
    if isinstance(items, str):
        return items
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            return _text_of(item.get("content"))
    return ""


_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class FakeOpenAI:
    api_key = "sk-test"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default = Reply()
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.in_flight = 0
        self._queue: list[Reply] = []
        self._ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/images/edits", self._images)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- scripting and inspection ------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        if self._queue:
            return self._queue.pop(0)
        if self.responder is not None:
            return self.responder(body)
        return self.default

    def responses_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/v1/responses"]

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/v1/chat/completions"]

    def image_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path.startswith("/v1/images")]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, message: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(message or "condition not met on the fake OpenAI")
            await asyncio.sleep(0.02)

    # --- HTTP --------------------------------------------------------------------------------

    async def _receive(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        if request.content_type.startswith("multipart/"):
            body: dict[str, Any] = {}
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()
                value: Any = data if part.filename else data.decode()
                if part.name in body:
                    existing = body[part.name]
                    body[part.name] = (existing if isinstance(existing, list) else [existing]) + [value]
                else:
                    body[part.name] = value
        else:
            body = await request.json()
        self.requests.append(Recorded(request.path, body, dict(request.headers)))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return body, self._error(401, "Incorrect API key provided")
        return body, None

    def _error(self, status: int, message: str, retry_after: float | None = None) -> web.Response:
        kind, code = _ERROR_TYPES.get(status, ("server_error", "server_error"))
        headers = {"x-should-retry": "false"}
        if retry_after is not None:
            headers = {"retry-after": str(retry_after)}
        return web.json_response(
            {"error": {"message": message, "type": kind, "code": code, "param": None}},
            status=status, headers=headers,
        )

    async def _wait(self, reply: Reply) -> None:
        if reply.hang:
            await self._stopping.wait()
            raise ConnectionResetError("fake stopped")
        if reply.latency:
            await asyncio.sleep(reply.latency)

    def _text(self, reply: Reply, body: dict[str, Any]) -> str:
        return reply.text if reply.text is not None else f"You said: {last_user_text(body)}"

    @staticmethod
    def _chunks(text: str, size: int) -> list[str]:
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]

    async def _serve(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        body, refused = await self._receive(request)
        if refused is not None:
            return refused
        reply = self._next_reply(body)
        self.in_flight += 1
        try:
            await self._wait(reply)
            if reply.status is not None:
                return self._error(reply.status, reply.error_message, reply.retry_after)
            return await handler(request, body, reply)
        finally:
            self.in_flight -= 1

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._respond)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._complete)

    async def _images(self, request: web.Request) -> web.StreamResponse:
        async def handler(_: web.Request, body: dict[str, Any], reply: Reply) -> web.Response:
            n = int(body.get("n") or 1)
            data = [{"b64_json": base64.b64encode(tiny_png()).decode()} for _ in range(n)]
            return web.json_response({"created": int(time.time()), "data": data})

        return await self._serve(request, handler)

    async def _models(self, request: web.Request) -> web.Response:
        ids = ["gpt-5.5", "gpt-5.5-mini", "gpt-image-2", "test-model"]
        models = [{"id": i, "object": "model", "created": 0, "owned_by": "fake"} for i in ids]
        return web.json_response({"object": "list", "data": models})

    # --- Responses API -----------------------------------------------------------------------

    def _usage(self, reply: Reply, body: dict[str, Any], text: str) -> dict[str, Any]:
        tokens_in, tokens_out = reply.usage or (len(json.dumps(body.get("input", ""))) // 4, len(text) // 4 + 1)
        return {
            "input_tokens": tokens_in, "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }

    def _response(self, rid: str, body: dict[str, Any], status: str, output: list, usage: Any) -> dict[str, Any]:
        return {
            "id": rid, "object": "response", "created_at": int(time.time()), "status": status,
            "model": body.get("model", "test-model"), "output": output,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": body.get("tools") or [],
            "usage": usage, "error": None, "incomplete_details": None,
        }

    @staticmethod
    def _message_item(mid: str, text: str, status: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text, "annotations": []}]
        return {"id": mid, "type": "message", "role": "assistant", "status": status, "content": content}

    def _wants_search(self, body: dict[str, Any]) -> bool:
        return any(t.get("type") in ("web_search", "web_search_preview") for t in body.get("tools") or [])

    async def _respond(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        n = next(self._ids)
        rid, mid, sid = f"resp_{n}", f"msg_{n}", f"ws_{n}"
        text = self._text(reply, body)
        search_item = {"id": sid, "type": "web_search_call", "status": "completed",
                       "action": {"type": "search", "query": "fake"}}
        output = ([search_item] if self._wants_search(body) else []) + [self._message_item(mid, text, "completed")]
        usage = self._usage(reply, body, text)
        if not body.get("stream"):
            return web.json_response(self._response(rid, body, "completed", output, usage))

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        seq = itertools.count()

        async def send(kind: str, **fields: Any) -> None:
            event = {"type": kind, "sequence_number": next(seq), **fields}
            await response.write(f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode())

        await send("response.created", response=self._response(rid, body, "in_progress", [], None))
        await send("response.in_progress", response=self._response(rid, body, "in_progress", [], None))
        index = 0
        if self._wants_search(body):
            await send("response.output_item.added", output_index=0, item={**search_item, "status": "in_progress"})
            for step in ("in_progress", "searching", "completed"):
                await send(f"response.web_search_call.{step}", output_index=0, item_id=sid)
            await send("response.output_item.done", output_index=0, item=search_item)
            index = 1
        await send("response.output_item.added", output_index=index,
                   item={**self._message_item(mid, "", "in_progress"), "content": []})
        part = {"type": "output_text", "text": "", "annotations": []}
        await send("response.content_part.added", item_id=mid, output_index=index, content_index=0, part=part)
        for count, delta in enumerate(self._chunks(text, reply.chunk_size)):
            if reply.fail_after_chunks is not None and count >= reply.fail_after_chunks:
                request.transport.abort()  # type: ignore[union-attr]
                return response
            if reply.error_event_after_chunks is not None and count >= reply.error_event_after_chunks:
                failed = self._response(rid, body, "failed", [], None)
                failed["error"] = {"code": "server_error", "message": reply.error_message}
                await send("response.failed", response=failed)
                return response
            await send("response.output_text.delta", item_id=mid, output_index=index, content_index=0,
                       delta=delta, logprobs=[])
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        await send("response.output_text.done", item_id=mid, output_index=index, content_index=0,
                   text=text, logprobs=[])
        await send("response.content_part.done", item_id=mid, output_index=index, content_index=0,
                   part={**part, "text": text})
        await send("response.output_item.done", output_index=index, item=output[-1])
        await send("response.completed", response=self._response(rid, body, "completed", output, usage))
        await response.write_eof()
        return response

    # --- Chat Completions --------------------------------------------------------------------

    async def _complete(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        n = next(self._ids)
        cid, created, model = f"chatcmpl-{n}", int(time.time()), body.get("model", "test-model")
        text = self._text(reply, body)
        tokens_in = len(json.dumps(body.get("messages", ""))) // 4
        usage = {"prompt_tokens": tokens_in, "completion_tokens": len(text) // 4 + 1,
                 "total_tokens": tokens_in + len(text) // 4 + 1}
        if not body.get("stream"):
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": usage,
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(choices: list, **extra: Any) -> None:
            chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": choices, **extra}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for count, delta in enumerate(self._chunks(text, reply.chunk_size)):
            if reply.fail_after_chunks is not None and count >= reply.fail_after_chunks:
                request.transport.abort()  # type: ignore[union-attr]
                return response
            await send([{"index": 0, "delta": {"content": delta}, "finish_reason": None}])
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        await send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if (body.get("stream_options") or {}).get("include_usage"):
            await send([], usage=usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
