"""A loopback OpenAI: Responses (JSON and SSE in the SDK's strict order), Chat Completions, Images.

Every request is recorded; replies are scripted per request (`script`), computed (`responder`)
or the `default`, with latency, hangs, HTTP errors and mid-stream failures on demand. The payloads
are complete enough for the SDK's strict response validation and its ``responses.stream()`` helper.
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
from typing import Any, Awaitable, Callable

from aiohttp import web

from tests.fakes.server import LoopbackServer


@dataclass
class Reply:
    """How the fake answers one model request.

    text: the answer (None: ``"You said: <last user text>"``); latency: seconds before the response
    starts; chunk_delay/chunk_size: streaming cadence; hang: never answer until the fake stops;
    gate: answer only once the test sets this event (or the fake stops);
    status/error_message/retry_after: answer with an OpenAI-style HTTP error;
    fail_after_chunks: cut the connection after that many deltas;
    error_event_after_chunks: send ``response.failed`` (chat: an ``error`` chunk) after that many deltas;
    usage: (input_tokens, output_tokens), else estimated from the lengths;
    finish_reason: Chat Completions only: the last choice's reason (``"length"``: cut at the limit);
    None ends the stream (with ``[DONE]``) without a finish or usage chunk.
    """

    text: str | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0
    chunk_size: int = 20
    hang: bool = False
    gate: asyncio.Event | None = None
    status: int | None = None
    error_message: str = "fake error"
    retry_after: float | None = None
    fail_after_chunks: int | None = None
    error_event_after_chunks: int | None = None
    usage: tuple[int, int] | None = None
    finish_reason: str | None = "stop"


@dataclass
class Recorded:
    """One request: path, parsed body (multipart: fields, file parts as bytes), headers, time."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    time: float = field(default_factory=time.monotonic)


def tiny_png(rgb: tuple[int, int, int] = (40, 120, 200), size: int = 4) -> bytes:
    """A valid PNG of one colour, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * size  # filter byte 0, then RGB pixels
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b""))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    """Text of the last user message of a Responses (`input`) or Chat (`messages`) request."""
    items = body.get("input")
    if items is None:
        items = body.get("messages") or []
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

_SSE = web.RequestKey("fake_sse", web.StreamResponse)
Handler = Callable[[web.Request, dict[str, Any], Reply], Awaitable[web.StreamResponse]]


class _Aborted(Exception):
    """The reply cut the connection; nothing more to send."""


class FakeOpenAI(LoopbackServer):
    """The OpenAI HTTP API on 127.0.0.1, answering from a script of `Reply` objects."""

    api_key = "sk-test"
    models = ("gpt-5.5", "gpt-5.5-mini", "gpt-image-2", "test-model")

    name = "fake OpenAI"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []
        self.default = Reply()
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.in_flight = 0
        # With `tag` set (body -> label), requests in flight are also counted per label.
        self.tag: Callable[[dict[str, Any]], str] | None = None
        self.in_flight_by: dict[str, int] = {}
        self.peak_in_flight_by: dict[str, int] = {}
        self._queue: list[Reply] = []
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """The URL to give ``AsyncOpenAI(base_url=...)``."""
        return f"{self.base}/v1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/images/edits", self._images)
        app.router.add_get("/v1/models", self._models)

    # --- scripting and inspection ------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies; each model request consumes the next one."""
        self._queue.extend(replies)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        if self._queue:
            return self._queue.pop(0)
        if self.responder is not None:
            return self.responder(body)
        return self.default

    def responses_requests(self) -> list[dict[str, Any]]:
        """Bodies sent to /v1/responses."""
        return [r.body for r in self.requests if r.path == "/v1/responses"]

    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies sent to /v1/chat/completions."""
        return [r.body for r in self.requests if r.path == "/v1/chat/completions"]

    def image_requests(self) -> list[dict[str, Any]]:
        """Bodies (multipart fields for edits) sent to /v1/images/*."""
        return [r.body for r in self.requests if r.path.startswith("/v1/images")]

    # --- HTTP plumbing -----------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type.startswith("multipart/"):
            body: dict[str, Any] = {}
            async for part in await request.multipart():
                data = await part.read()  # type: ignore[union-attr]
                value: Any = bytes(data) if part.filename else bytes(data).decode()  # type: ignore[union-attr]
                if part.name in body:
                    previous = body[part.name]
                    body[part.name] = (previous if isinstance(previous, list) else [previous]) + [value]
                else:
                    body[str(part.name)] = value
            return body
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {"_invalid_json": True}
        return body if isinstance(body, dict) else {"_invalid_json": True}

    def _refuse(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided")
        if body.get("_invalid_json"):
            return self._error(400, "We could not parse the JSON body of your request.")
        return None

    @staticmethod
    def _error(status: int, message: str, retry_after: float | None = None) -> web.Response:
        kind, code = _ERROR_TYPES.get(status, ("server_error", "server_error"))
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
        return web.json_response({"error": {"message": message, "type": kind, "code": code, "param": None}},
                                 status=status, headers=headers)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but raise `_Aborted` at once if the fake stops meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            return
        raise _Aborted

    async def _until(self, gate: asyncio.Event) -> None:
        """Wait for `gate`, but raise `_Aborted` at once if the fake stops meanwhile."""
        opened = asyncio.ensure_future(gate.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([opened, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            stopping.cancel()
        if not gate.is_set():
            raise _Aborted

    @staticmethod
    def _cut(request: web.Request) -> web.StreamResponse:
        """Abort the connection abruptly (no final chunk, no close)."""
        if request.transport is not None:
            request.transport.abort()
        return request.get(_SSE) or web.Response(status=499)

    def _text(self, reply: Reply, body: dict[str, Any]) -> str:
        return reply.text if reply.text is not None else f"You said: {last_user_text(body)}"

    @staticmethod
    def _chunks(text: str, size: int) -> list[str]:
        size = max(1, size)
        return [text[i:i + size] for i in range(0, len(text), size)] or [""]

    async def _serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await self._read_body(request)
        self.requests.append(Recorded(request.path, body, dict(request.headers)))
        refused = self._refuse(request, body)
        if refused is not None:
            return refused
        reply = self._next_reply(body)
        self.in_flight += 1
        label = self.tag(body) if self.tag is not None else None
        if label is not None:
            self.in_flight_by[label] = self.in_flight_by.get(label, 0) + 1
            self.peak_in_flight_by[label] = max(self.peak_in_flight_by.get(label, 0), self.in_flight_by[label])
        try:
            if reply.hang:
                await self._stopping.wait()
                raise _Aborted
            if reply.gate is not None:
                await self._until(reply.gate)
            if reply.latency:
                await self._sleep(reply.latency)
            if reply.status is not None:
                return self._error(reply.status, reply.error_message, reply.retry_after)
            return await handler(request, body, reply)
        except _Aborted:
            return self._cut(request)
        finally:
            self.in_flight -= 1
            if label is not None:
                self.in_flight_by[label] -= 1

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        request[_SSE] = response
        return response

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._respond)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._complete)

    async def _images(self, request: web.Request) -> web.StreamResponse:
        async def handler(_: web.Request, body: dict[str, Any], reply: Reply) -> web.Response:
            count = int(body.get("n") or 1)
            data = [{"b64_json": base64.b64encode(tiny_png()).decode()} for _ in range(count)]
            usage = {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110,
                     "input_tokens_details": {"image_tokens": 0, "text_tokens": 10}}
            return web.json_response({"created": int(time.time()), "data": data, "usage": usage})

        return await self._serve(request, handler)

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, {}, dict(request.headers)))
        refused = self._refuse(request, {})
        if refused is not None:
            return refused
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    # --- Responses API -----------------------------------------------------------------------

    @staticmethod
    def _usage(reply: Reply, body: dict[str, Any], text: str) -> dict[str, Any]:
        tokens_in, tokens_out = reply.usage or (len(json.dumps(body.get("input", ""))) // 4 + 1, len(text) // 4 + 1)
        return {
            "input_tokens": tokens_in, "output_tokens": tokens_out, "total_tokens": tokens_in + tokens_out,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }

    @staticmethod
    def _response(rid: str, body: dict[str, Any], status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        return {
            "id": rid, "object": "response", "created_at": int(time.time()), "status": status,
            "model": body.get("model", "test-model"), "output": output,
            "parallel_tool_calls": True, "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [], "usage": usage, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "previous_response_id": body.get("previous_response_id"),
            "metadata": {}, "temperature": 1.0, "top_p": 1.0,
        }

    @staticmethod
    def _message_item(mid: str, text: str, status: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text, "annotations": []}]
        return {"id": mid, "type": "message", "role": "assistant", "status": status, "content": content}

    @staticmethod
    def _wants_search(body: dict[str, Any]) -> bool:
        return any(isinstance(t, dict) and t.get("type") in ("web_search", "web_search_preview")
                   for t in body.get("tools") or [])

    async def _respond(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        n = next(self._ids)
        rid, mid, sid = f"resp_{n:06d}", f"msg_{n:06d}", f"ws_{n:06d}"
        text = self._text(reply, body)
        search_item = {"id": sid, "type": "web_search_call", "status": "completed",
                       "action": {"type": "search", "query": last_user_text(body)[:100]}}
        output = ([search_item] if self._wants_search(body) else []) + [self._message_item(mid, text, "completed")]
        usage = self._usage(reply, body, text)
        if not body.get("stream"):
            return web.json_response(self._response(rid, body, "completed", output, usage),
                                     headers={"x-request-id": f"req_{n:06d}"})

        response = await self._sse(request)
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
        ids = {"item_id": mid, "output_index": index, "content_index": 0}
        await send("response.output_item.added", output_index=index,
                   item={**self._message_item(mid, "", "in_progress"), "content": []})
        part = {"type": "output_text", "text": "", "annotations": []}
        await send("response.content_part.added", **ids, part=part)
        for count, delta in enumerate(self._chunks(text, reply.chunk_size)):
            if reply.fail_after_chunks is not None and count >= reply.fail_after_chunks:
                return self._cut(request)
            if reply.error_event_after_chunks is not None and count >= reply.error_event_after_chunks:
                failed = self._response(rid, body, "failed", [], usage if reply.usage else None)
                failed["error"] = {"code": "server_error", "message": reply.error_message}
                await send("response.failed", response=failed)
                await response.write_eof()
                return response
            await send("response.output_text.delta", **ids, delta=delta, logprobs=[])
            if reply.chunk_delay:
                await self._sleep(reply.chunk_delay)
        await send("response.output_text.done", **ids, text=text, logprobs=[])
        await send("response.content_part.done", **ids, part={**part, "text": text})
        await send("response.output_item.done", output_index=index, item=output[-1])
        await send("response.completed", response=self._response(rid, body, "completed", output, usage))
        await response.write_eof()
        return response

    # --- Chat Completions --------------------------------------------------------------------

    async def _complete(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        n = next(self._ids)
        cid, created, model = f"chatcmpl-{n:06d}", int(time.time()), body.get("model", "test-model")
        text = self._text(reply, body)
        if reply.usage:
            tokens_in, tokens_out = reply.usage
        else:
            tokens_in, tokens_out = len(json.dumps(body.get("messages", ""))) // 4 + 1, len(text) // 4 + 1
        usage = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}
        if not body.get("stream"):
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": reply.finish_reason or "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": text, "refusal": None}}],
                "usage": usage,
            })
        response = await self._sse(request)

        async def send(choices: list[Any], **extra: Any) -> None:
            chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": choices, **extra}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for count, delta in enumerate(self._chunks(text, reply.chunk_size)):
            if reply.fail_after_chunks is not None and count >= reply.fail_after_chunks:
                return self._cut(request)
            if reply.error_event_after_chunks is not None and count >= reply.error_event_after_chunks:
                error = {"message": reply.error_message, "type": "server_error", "code": "server_error"}
                await response.write(f"data: {json.dumps({'error': error})}\n\n".encode())
                await response.write_eof()
                return response
            await send([{"index": 0, "delta": {"content": delta}, "finish_reason": None}])
            if reply.chunk_delay:
                await self._sleep(reply.chunk_delay)
        if reply.finish_reason is not None:
            await send([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])
            if (body.get("stream_options") or {}).get("include_usage"):
                await send([], usage=usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
