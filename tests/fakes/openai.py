"""A loopback OpenAI: Responses (JSON and SSE in the SDK's strict order), Chat Completions, Images,
audio transcriptions.

Every request is recorded; replies are scripted per request (`script`), computed (`responder`)
or the `default`, with latency, hangs, HTTP errors and mid-stream failures on demand. The payloads
are complete enough for the SDK's strict response validation and its ``responses.stream()`` helper.

A reply can also play an agent (`Reply.calls`): function calls, and the hosted web_search,
code_interpreter (with container files to download) and image_generation tools, each streamed
with the real API's items and event order.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import mimetypes
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from tests.fakes.server import LoopbackServer


@dataclass
class FunctionCall:
    """The model calls a function tool (a ``function_call`` item; Chat: a ``tool_calls`` entry)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)  # a dict is JSON-encoded
    call_id: str | None = None  # None: generated, "call_1", "call_2", … over the fake's life


@dataclass
class WebSearch:
    """Hosted web_search (Responses only), then the answer text citing `sources`."""

    query: str
    sources: list[tuple[str, str]] = field(default_factory=list)  # (url, title): url_citation annotations


@dataclass
class CodeRun:
    """Hosted code_interpreter in an auto container (Responses only).

    `files` (filename, content) are written to the container: each becomes a container_file_citation
    annotation on the answer text and is served at
    ``GET /v1/containers/{container_id}/files/{file_id}/content``.
    """

    code: str
    logs: str = ""
    files: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class ImageCall:
    """Hosted image_generation (Responses only): one partial image event, then `png` as the result."""

    png: bytes
    revised_prompt: str = ""


@dataclass
class Reasoning:
    """A reasoning model thinks first (a ``reasoning`` item with a summary, Responses only).

    With ``include: ["reasoning.encrypted_content"]`` in the request the item carries encrypted
    content that a later request may send back. As the real API with ``store: false``, the fake
    refuses a reasoning input item whose content it did not issue, and one that is not followed
    by another item (the call or message it led to).
    """

    summary: str = "Thinking about which tool helps."


Call = FunctionCall | WebSearch | CodeRun | ImageCall | Reasoning


class FakeScriptError(AssertionError):
    """A reply the fake cannot play (a hosted tool in Chat Completions, an unknown call).

    The request gets an HTTP 400 naming the problem, and `FakeOpenAI.stop()` raises this, so a
    test whose code swallowed the 400 still fails.
    """


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
    None ends the stream (with ``[DONE]``) without a finish or usage chunk; a reply with function
    calls finishes with ``"tool_calls"`` instead of ``"stop"``.

    calls: what the model does before (or instead of) answering, in order (`FunctionCall`,
    `WebSearch`, `CodeRun`, `ImageCall`):
      - Responses: one output item per call, streamed in the real event order, then the message.
        With a FunctionCall and `text` None there is no message (the model waits for the function
        outputs); otherwise `text` None still means the default text.
      - The answer's ``output_text`` carries a url_citation per WebSearch source and a
        container_file_citation per CodeRun file (also sent as ``response.output_text.annotation.added``
        events); each spans the first occurrence of the url (of the filename) in the text, else
        the whole text.
      - Chat Completions: FunctionCalls become ``tool_calls``; a hosted call is a `FakeScriptError`.
      - Without `calls`, a request declaring a web_search tool still gets the implicit search item.
      - Ids: items ``fc_/ws_/ci_/ig_<response>_<index>``, the container ``cntr_<response>``, files
        ``cfile_<n>``, generated call ids ``call_<n>`` (n counts over the fake's life).
      - Deltas include function arguments and code (in `chunk_size` pieces): `chunk_delay`,
        `fail_after_chunks` and `error_event_after_chunks` count them with the text's.
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
    calls: list[FunctionCall | WebSearch | CodeRun | ImageCall | Reasoning] = field(default_factory=list)


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


# What the real transcription endpoint accepts, by the file name's extension.
TRANSCRIBE_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
# The spoken words `spoken_audio` hides in its bytes, after this marker, for the fake to "hear".
SPOKEN = b"\x00SPOKEN:"
_AUDIO_HEADS = {
    "wav": b"RIFF\x24\x00\x00\x00WAVEfmt ", "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00",
    "ogg": b"OggS\x00\x02", "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "flac": b"fLaC\x00\x00\x00\x22",
}


def spoken_audio(words: str, kind: str = "m4a", padding: int = 64) -> bytes:
    """Bytes that start like a real `kind` audio file (its magic) and carry `words`, which the fake
    transcribes them to; `words` empty: silence (the transcript is empty)."""
    head = _AUDIO_HEADS["ogg" if kind == "oga" else "mp3" if kind in ("mpga", "mpeg") else kind]
    return head + bytes(padding) + (SPOKEN + words.encode() if words else b"")


def _looks_like_audio(data: bytes) -> bool:
    """The container magic the real server's decoder would find (a check, not a parser)."""
    return (data.startswith((b"ID3", b"OggS", b"fLaC", b"\x1a\x45\xdf\xa3"))
            or (data[:4] == b"RIFF" and data[8:12] == b"WAVE") or data[4:8] == b"ftyp"
            or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0))


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


class _Failed(Exception):
    """The reply ends the stream with an error event (`error_event_after_chunks`)."""


class _Stream:
    """One SSE body. Every delta goes through the reply's faults and cadence, whatever it carries."""

    def __init__(self, response: web.StreamResponse, reply: Reply, sleep: Callable[[float], Awaitable[None]]):
        self.response, self.reply, self._sleep = response, reply, sleep
        self.deltas = 0

    async def write(self, data: dict[str, Any], event: str | None = None) -> None:
        head = f"event: {event}\n" if event else ""
        await self.response.write(f"{head}data: {json.dumps(data)}\n\n".encode())

    def before_delta(self) -> None:
        """Cut (`fail_after_chunks`) or fail (`error_event_after_chunks`) instead of the next delta."""
        if self.reply.fail_after_chunks is not None and self.deltas >= self.reply.fail_after_chunks:
            raise _Aborted
        if self.reply.error_event_after_chunks is not None and self.deltas >= self.reply.error_event_after_chunks:
            raise _Failed

    async def after_delta(self) -> None:
        self.deltas += 1
        if self.reply.chunk_delay:
            await self._sleep(self.reply.chunk_delay)

    async def delta(self, data: dict[str, Any]) -> None:
        self.before_delta()
        await self.write(data)
        await self.after_delta()


class _EventStream(_Stream):
    """A Responses stream: typed events with increasing ``sequence_number``."""

    def __init__(self, response: web.StreamResponse, reply: Reply, sleep: Callable[[float], Awaitable[None]]):
        super().__init__(response, reply, sleep)
        self._seq = itertools.count()

    async def send(self, kind: str, **fields: Any) -> None:
        await self.write({"type": kind, "sequence_number": next(self._seq), **fields}, kind)

    async def send_delta(self, kind: str, **fields: Any) -> None:
        self.before_delta()
        await self.send(kind, **fields)
        await self.after_delta()


def _span(text: str, needle: str) -> tuple[int, int]:
    """Where `needle` first occurs in `text`, else the whole text."""
    start = text.find(needle) if needle else -1
    return (start, start + len(needle)) if start >= 0 else (0, len(text))


def _arguments(call: FunctionCall) -> str:
    if isinstance(call.arguments, str):
        return call.arguments
    return json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))


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
        self._call_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        # (container_id, file_id) -> (the container.file object, its bytes), from CodeRun files.
        self.container_files: dict[tuple[str, str], tuple[dict[str, Any], bytes]] = {}
        # file_id -> (the file object, its bytes), from POST /v1/files.
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.upload_status: int | None = None  # set: uploads answer with this HTTP error
        self.models_status: int | None = None  # set: GET /v1/models answers with this HTTP error
        # Extra headers on every streamed model answer (e.g. x-ratelimit-remaining-requests).
        self.headers: dict[str, str] = {}
        self._upload_ids = itertools.count(1)
        # POST /v1/audio/transcriptions: set, it answers with this HTTP status (404 or 405: as a
        # server without the route, aiohttp's plain "404: Not Found"; others: an OpenAI error);
        # with `transcription_gate` set, it answers only once the test sets it (or the fake stops).
        self.transcription_status: int | None = None
        self.transcription_error = "fake transcription failure"
        self.transcription_gate: asyncio.Event | None = None
        # Encrypted reasoning the fake handed out (a request may send back only these).
        self.reasoning_issued: set[str] = set()
        # Replies the fake could not play; `stop()` raises FakeScriptError if any.
        self.script_errors: list[str] = []

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
        app.router.add_post("/v1/files", self._upload)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_get("/v1/containers/{container_id}/files/{file_id}", self._container_file)
        app.router.add_get("/v1/containers/{container_id}/files/{file_id}/content", self._container_file)

    async def stop(self) -> None:
        """Stop (never hangs); then raise `FakeScriptError` if a reply could not be played."""
        await super().stop()
        if self.script_errors:
            errors, self.script_errors = self.script_errors, []
            raise FakeScriptError("; ".join(errors))

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

    def transcription_requests(self) -> list[dict[str, Any]]:
        """Bodies sent to /v1/audio/transcriptions: the form fields, ``file`` as (filename, bytes)
        and ``file_type`` (the part's content type)."""
        return [r.body for r in self.requests if r.path == "/v1/audio/transcriptions"]

    def image_requests(self) -> list[dict[str, Any]]:
        """Bodies (multipart fields for edits) sent to /v1/images/*."""
        return [r.body for r in self.requests if r.path.startswith("/v1/images")]

    def function_outputs(self, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The ``function_call_output`` input items (``call_id``, ``output``) of a Responses request.

        `body`: a request body (default: the last /v1/responses request).
        """
        if body is None:
            body = self.responses_requests()[-1]
        items = body.get("input")
        if not isinstance(items, list):
            return []
        return [i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]

    def tool_messages(self, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The ``role: "tool"`` messages (``tool_call_id``, ``content``) of a Chat request (default: the last)."""
        if body is None:
            body = self.chat_requests()[-1]
        return [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "tool"]

    @staticmethod
    def declared_tools(body: dict[str, Any]) -> list[str]:
        """The tools a request declared, in order: function tools by name, hosted tools by type.

        Works for both APIs (Chat nests the name under ``function``); the full declarations are
        ``body["tools"]``.
        """
        names = []
        for tool in body.get("tools") or []:
            if not isinstance(tool, dict):
                continue
            if tool.get("type") == "function":
                names.append(tool.get("name") or (tool.get("function") or {}).get("name", ""))
            else:
                names.append(str(tool.get("type")))
        return names

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
    def _error(status: int, message: str, retry_after: float | None = None, code: str | None = None) -> web.Response:
        kind, default_code = _ERROR_TYPES.get(status, ("server_error", "server_error"))
        code = code or default_code
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
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               **self.headers})
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

    def _script_error(self, message: str) -> web.Response:
        """Record a reply the fake cannot play (raised again by `stop`); answer 400, never retried."""
        self.script_errors.append(message)
        return self._error(400, f"fake OpenAI script error: {message}", code="fake_script_error")

    async def _container_file(self, request: web.Request) -> web.Response:
        """``GET /v1/containers/{c}/files/{f}`` (the container.file object) and ``…/content`` (its bytes)."""
        self.requests.append(Recorded(request.path, {}, dict(request.headers)))
        refused = self._refuse(request, {})
        if refused is not None:
            return refused
        key = (request.match_info["container_id"], request.match_info["file_id"])
        if key not in self.container_files:
            return self._error(404, f"No such file: {key[1]} in container {key[0]}", code="not_found")
        meta, data = self.container_files[key]
        if not request.path.endswith("/content"):
            return web.json_response(meta)
        mime = mimetypes.guess_type(meta["path"])[0] or "application/octet-stream"
        return web.Response(body=data, content_type=mime)

    async def _upload(self, request: web.Request) -> web.Response:
        """``POST /v1/files`` (multipart: ``file``, ``purpose``, optional ``expires_after[anchor|seconds]``):
        the file object, as the real API answers; a missing part or an out-of-range expiry is a 400."""
        fields: dict[str, str] = {}
        upload: tuple[str, bytes] | None = None
        async for part in await request.multipart():
            data = bytes(await part.read())  # type: ignore[union-attr]
            if part.name == "file" and part.filename:  # type: ignore[union-attr]
                upload = (part.filename, data)  # type: ignore[union-attr]
            else:
                fields[str(part.name)] = data.decode()  # type: ignore[union-attr]
        self.requests.append(Recorded(request.path, {**fields, "file": upload}, dict(request.headers)))
        refused = self._refuse(request, {})
        if refused is not None:
            return refused
        if self.upload_status is not None:
            return self._error(self.upload_status, "fake upload failure")
        if upload is None or fields.get("purpose") not in ("assistants", "batch", "fine-tune", "vision", "user_data", "evals"):
            return self._error(400, "A file and a valid purpose are required.", code="invalid_request")
        created = int(time.time())
        meta: dict[str, Any] = {"id": f"file-{next(self._upload_ids):06d}", "object": "file", "bytes": len(upload[1]),
                                "created_at": created, "filename": upload[0], "purpose": fields["purpose"],
                                "status": "processed"}
        if "expires_after[seconds]" in fields:
            seconds = int(fields["expires_after[seconds]"])
            if fields.get("expires_after[anchor]") != "created_at" or not 3600 <= seconds <= 2592000:
                return self._error(400, "expires_after must be created_at and 3600 to 2592000 seconds.")
            meta["expires_at"] = created + seconds
        self.files[meta["id"]] = (meta, upload[1])
        return web.json_response(meta)

    async def _transcribe(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/audio/transcriptions`` (multipart: ``file``, ``model``, optional
        ``response_format`` json or text, ``language``, ``prompt``), answered as the real API does:
        ``{"text", "usage"}`` (tokens for the gpt-4o models, duration for whisper-1), or the text.

        The transcript is what `spoken_audio` hid in the bytes. A name the API does not take is a
        400 "Invalid file format"; bytes that are not audio, a 400 "might be corrupted"."""
        fields: dict[str, str] = {}
        upload: tuple[str, bytes] | None = None
        file_type = ""
        async for part in await request.multipart():
            data = bytes(await part.read())  # type: ignore[union-attr]
            if part.name == "file" and part.filename:  # type: ignore[union-attr]
                upload, file_type = (part.filename, data), part.headers.get("Content-Type", "")  # type: ignore[union-attr]
            else:
                fields[str(part.name)] = data.decode()  # type: ignore[union-attr]
        self.requests.append(Recorded(request.path, {**fields, "file": upload, "file_type": file_type},
                                      dict(request.headers)))
        refused = self._refuse(request, {})
        if refused is not None:
            return refused
        if self.transcription_gate is not None:
            try:
                await self._until(self.transcription_gate)
            except _Aborted:
                return self._cut(request)
        if self.transcription_status in (404, 405):
            status = self.transcription_status
            return web.Response(status=status, text="404: Not Found" if status == 404 else "405: Method Not Allowed")
        if self.transcription_status is not None:
            return self._error(self.transcription_status, self.transcription_error)
        model, form = fields.get("model", ""), fields.get("response_format", "json")
        if upload is None or not model:
            return self._error(400, "A file and a model are required.", code="invalid_request")
        name, data = upload
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension not in TRANSCRIBE_FORMATS:
            return self._error(400, f"Invalid file format. Supported formats: {list(TRANSCRIBE_FORMATS)}",
                               code="invalid_value")
        if not _looks_like_audio(data):
            return self._error(400, "Audio file might be corrupted or unsupported", code="invalid_value")
        if form not in ("json", "text") and model != "whisper-1":
            return self._error(400, f"response_format '{form}' is not compatible with model '{model}'. "
                               "Use 'json' or 'text' instead.", code="unsupported_value")
        if form not in ("json", "text"):
            return self._error(400, f"fake OpenAI: response_format {form!r} is not served here", code="invalid_value")
        text = data.split(SPOKEN, 1)[1].decode(errors="replace") if SPOKEN in data else ""
        if form == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        audio_tokens = len(data) // 100 + 1
        prompt_tokens = len(fields.get("prompt", "")) // 4
        usage: dict[str, Any] = (
            {"type": "duration", "seconds": round(len(data) / 16000, 2)} if model == "whisper-1" else
            {"type": "tokens", "input_tokens": audio_tokens + prompt_tokens, "output_tokens": len(text) // 4 + 1,
             "total_tokens": audio_tokens + prompt_tokens + len(text) // 4 + 1,
             "input_token_details": {"text_tokens": prompt_tokens, "audio_tokens": audio_tokens}}
        )
        return web.json_response({"text": text, "usage": usage})

    def uploads(self) -> list[dict[str, Any]]:
        """The files uploaded, oldest first: their file objects, each with its ``data``."""
        return [{**meta, "data": data} for meta, data in self.files.values()]

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, {}, dict(request.headers)))
        refused = self._refuse(request, {})
        if refused is not None:
            return refused
        if self.models_status is not None:
            return self._error(self.models_status, "fake model list failure")
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
    def _message_item(mid: str, text: str, status: str,
                      annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text, "annotations": annotations or []}]
        return {"id": mid, "type": "message", "role": "assistant", "status": status, "content": content}

    @staticmethod
    def _wants_search(body: dict[str, Any]) -> bool:
        return any(isinstance(t, dict) and t.get("type") in ("web_search", "web_search_preview")
                   for t in body.get("tools") or [])

    def _call_id(self, call: FunctionCall) -> str:
        return call.call_id or f"call_{next(self._call_ids)}"

    @staticmethod
    def _search_item(sid: str, query: str, sources: list[tuple[str, str]] | None) -> dict[str, Any]:
        action: dict[str, Any] = {"type": "search", "query": query}
        if sources is not None:
            action["sources"] = [{"type": "url", "url": url} for url, _ in sources]
        return {"id": sid, "type": "web_search_call", "status": "completed", "action": action}

    def _code_item(self, iid: str, container_id: str, run: CodeRun) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The code_interpreter_call item, and its files (now downloadable) as citations to be."""
        cites = []
        for filename, data in run.files:
            file_id = f"cfile_{next(self._file_ids):06d}"
            meta = {"id": file_id, "object": "container.file", "container_id": container_id,
                    "path": f"/mnt/data/{filename}", "bytes": len(data), "created_at": int(time.time()),
                    "source": "assistant"}
            self.container_files[(container_id, file_id)] = (meta, data)
            cites.append({"type": "container_file_citation", "container_id": container_id, "file_id": file_id,
                          "filename": filename})
        outputs = [{"type": "logs", "logs": run.logs}] if run.logs else []
        item = {"id": iid, "type": "code_interpreter_call", "status": "completed", "code": run.code,
                "container_id": container_id, "outputs": outputs}
        return item, cites

    def _reasoning_item(self, iid: str, call: Reasoning, body: dict[str, Any]) -> dict[str, Any]:
        encrypted = None
        if "reasoning.encrypted_content" in (body.get("include") or []):
            encrypted = f"enc_{iid}_" + base64.b64encode(call.summary.encode()).decode()
            self.reasoning_issued.add(encrypted)
        return {"id": iid, "type": "reasoning", "summary": [{"type": "summary_text", "text": call.summary}],
                "encrypted_content": encrypted}

    def _check_reasoning_inputs(self, body: dict[str, Any]) -> str | None:
        """Why the input's reasoning items would be refused by the real API (store off), or None."""
        items = body.get("input")
        if not isinstance(items, list):
            return None
        for index, item in enumerate(items):
            if not (isinstance(item, dict) and item.get("type") == "reasoning"):
                continue
            if item.get("encrypted_content") not in self.reasoning_issued:
                return (f"Item with id '{item.get('id')}' not found. Items are not persisted when `store` is set "
                        "to false. Try again with `store` set to true, or remove this item from your input.")
            following = items[index + 1] if index + 1 < len(items) else None
            if not isinstance(following, dict) or following.get("type") == "reasoning":
                return f"Item '{item.get('id')}' of type 'reasoning' was provided without its required following item."
        return None

    @staticmethod
    def _image_item(iid: str, image: ImageCall) -> dict[str, Any]:
        return {"id": iid, "type": "image_generation_call", "status": "completed",
                "result": base64.b64encode(image.png).decode(), "revised_prompt": image.revised_prompt,
                "output_format": "png"}

    def _output(self, n: int, reply: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The response's output items, in order, as `response.completed` lists them."""
        output: list[dict[str, Any]] = []
        cites: list[dict[str, Any]] = []  # annotations still without their span of the text
        waits_for_functions = False
        if not reply.calls and self._wants_search(body):  # the implicit search of a plain reply
            output.append(self._search_item(f"ws_{n:06d}", last_user_text(body)[:100], None))
        for index, call in enumerate(reply.calls):
            iid = f"{n:06d}_{index}"
            if isinstance(call, FunctionCall):
                waits_for_functions = True
                output.append({"id": f"fc_{iid}", "type": "function_call", "status": "completed",
                               "call_id": self._call_id(call), "name": call.name, "arguments": _arguments(call)})
            elif isinstance(call, WebSearch):
                output.append(self._search_item(f"ws_{iid}", call.query, call.sources))
                cites += [{"type": "url_citation", "url": url, "title": title} for url, title in call.sources]
            elif isinstance(call, CodeRun):
                item, files = self._code_item(f"ci_{iid}", f"cntr_{n:06d}", call)
                output.append(item)
                cites += files
            elif isinstance(call, ImageCall):
                output.append(self._image_item(f"ig_{iid}", call))
            elif isinstance(call, Reasoning):
                output.append(self._reasoning_item(f"rs_{iid}", call, body))
            else:
                raise FakeScriptError(f"Reply.calls[{index}] is a {type(call).__name__}, not a tool call")
        if reply.text is not None or not waits_for_functions:
            text = self._text(reply, body)
            annotations = [{**cite, **dict(zip(("start_index", "end_index"),
                                               _span(text, cite.get("url") or cite.get("filename", ""))))}
                           for cite in cites]
            output.append(self._message_item(f"msg_{n:06d}", text, "completed", annotations))
        return output

    @staticmethod
    def _generated(output: list[dict[str, Any]]) -> str:
        """Everything the model wrote (text, arguments, code), for the usage estimate."""
        parts = []
        for item in output:
            if item["type"] == "message":
                parts.append(item["content"][0]["text"])
            parts.append(item.get("arguments") or item.get("code") or "")
        return "".join(parts)

    async def _respond(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        for tool in body.get("tools") or []:  # the container's files must have been uploaded
            container = tool.get("container") if isinstance(tool, dict) else None
            for file_id in (container or {}).get("file_ids", []) if isinstance(container, dict) else []:
                if file_id not in self.files:
                    return self._error(404, f"No such File object: {file_id}", code="not_found")
        refusal = self._check_reasoning_inputs(body)
        if refusal is not None:
            return self._error(400, refusal)
        n = next(self._ids)
        rid = f"resp_{n:06d}"
        try:
            output = self._output(n, reply, body)
        except FakeScriptError as error:
            return self._script_error(str(error))
        usage = self._usage(reply, body, self._generated(output))
        if not body.get("stream"):
            return web.json_response(self._response(rid, body, "completed", output, usage),
                                     headers={"x-request-id": f"req_{n:06d}"})

        stream = _EventStream(await self._sse(request), reply, self._sleep)
        await stream.send("response.created", response=self._response(rid, body, "in_progress", [], None))
        await stream.send("response.in_progress", response=self._response(rid, body, "in_progress", [], None))
        streamers = {"function_call": self._stream_function_call, "web_search_call": self._stream_web_search,
                     "code_interpreter_call": self._stream_code, "image_generation_call": self._stream_image,
                     "reasoning": self._stream_reasoning,
                     "message": self._stream_message}
        try:
            for index, item in enumerate(output):
                await streamers[item["type"]](stream, index, item)
        except _Failed:
            failed = self._response(rid, body, "failed", [], usage if reply.usage else None)
            failed["error"] = {"code": "server_error", "message": reply.error_message}
            await stream.send("response.failed", response=failed)
            await stream.response.write_eof()
            return stream.response
        await stream.send("response.completed", response=self._response(rid, body, "completed", output, usage))
        await stream.response.write_eof()
        return stream.response

    # One streamer per output item kind: `item` is the finished item (as output_item.done sends it).

    async def _stream_function_call(self, stream: _EventStream, index: int, item: dict[str, Any]) -> None:
        ids = {"item_id": item["id"], "output_index": index}
        await stream.send("response.output_item.added", output_index=index,
                          item={**item, "status": "in_progress", "arguments": ""})
        for piece in self._chunks(item["arguments"], stream.reply.chunk_size):
            await stream.send_delta("response.function_call_arguments.delta", **ids, delta=piece)
        await stream.send("response.function_call_arguments.done", **ids, arguments=item["arguments"])
        await stream.send("response.output_item.done", output_index=index, item=item)

    async def _stream_web_search(self, stream: _EventStream, index: int, item: dict[str, Any]) -> None:
        action = {k: v for k, v in item["action"].items() if k != "sources"}
        await stream.send("response.output_item.added", output_index=index,
                          item={**item, "status": "in_progress", "action": action})
        for step in ("in_progress", "searching", "completed"):
            await stream.send(f"response.web_search_call.{step}", output_index=index, item_id=item["id"])
        await stream.send("response.output_item.done", output_index=index, item=item)

    async def _stream_code(self, stream: _EventStream, index: int, item: dict[str, Any]) -> None:
        ids = {"item_id": item["id"], "output_index": index}
        await stream.send("response.output_item.added", output_index=index,
                          item={**item, "status": "in_progress", "code": "", "outputs": None})
        await stream.send("response.code_interpreter_call.in_progress", **ids)
        for piece in self._chunks(item["code"], stream.reply.chunk_size):
            await stream.send_delta("response.code_interpreter_call_code.delta", **ids, delta=piece)
        await stream.send("response.code_interpreter_call_code.done", **ids, code=item["code"])
        await stream.send("response.code_interpreter_call.interpreting", **ids)
        await stream.send("response.code_interpreter_call.completed", **ids)
        await stream.send("response.output_item.done", output_index=index, item=item)

    async def _stream_image(self, stream: _EventStream, index: int, item: dict[str, Any]) -> None:
        ids = {"item_id": item["id"], "output_index": index}
        await stream.send("response.output_item.added", output_index=index,
                          item={"id": item["id"], "type": item["type"], "status": "in_progress", "result": None})
        await stream.send("response.image_generation_call.in_progress", **ids)
        await stream.send("response.image_generation_call.generating", **ids)
        await stream.send("response.image_generation_call.partial_image", **ids, partial_image_b64=item["result"],
                          partial_image_index=0, output_format="png")
        await stream.send("response.image_generation_call.completed", **ids)
        await stream.send("response.output_item.done", output_index=index, item=item)

    async def _stream_reasoning(self, stream: _EventStream, index: int, item: dict[str, Any]) -> None:
        ids = {"item_id": item["id"], "output_index": index, "summary_index": 0}
        text = item["summary"][0]["text"]
        await stream.send("response.output_item.added", output_index=index,
                          item={**item, "summary": [], "encrypted_content": None})
        await stream.send("response.reasoning_summary_part.added", **ids, part={"type": "summary_text", "text": ""})
        for piece in self._chunks(text, stream.reply.chunk_size):
            await stream.send_delta("response.reasoning_summary_text.delta", **ids, delta=piece)
        await stream.send("response.reasoning_summary_text.done", **ids, text=text)
        await stream.send("response.reasoning_summary_part.done", **ids, part={"type": "summary_text", "text": text})
        await stream.send("response.output_item.done", output_index=index, item=item)

    async def _stream_message(self, stream: _EventStream, index: int, item: dict[str, Any]) -> None:
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        text, annotations = item["content"][0]["text"], item["content"][0]["annotations"]
        await stream.send("response.output_item.added", output_index=index,
                          item={**item, "status": "in_progress", "content": []})
        part = {"type": "output_text", "text": "", "annotations": []}
        await stream.send("response.content_part.added", **ids, part=part)
        for delta in self._chunks(text, stream.reply.chunk_size):
            await stream.send_delta("response.output_text.delta", **ids, delta=delta, logprobs=[])
        for number, annotation in enumerate(annotations):
            await stream.send("response.output_text.annotation.added", **ids, annotation_index=number,
                              annotation=annotation)
        await stream.send("response.output_text.done", **ids, text=text, logprobs=[])
        await stream.send("response.content_part.done", **ids, part={**part, "text": text, "annotations": annotations})
        await stream.send("response.output_item.done", output_index=index, item=item)

    # --- Chat Completions --------------------------------------------------------------------

    def _tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        """The reply's FunctionCalls as Chat ``tool_calls``; a hosted call is a script error."""
        hosted = [type(c).__name__ for c in reply.calls if not isinstance(c, (FunctionCall, Reasoning))]
        if hosted:
            raise FakeScriptError(f"Chat Completions has no hosted tools: {', '.join(hosted)} in a chat reply")
        return [{"id": self._call_id(c), "type": "function", "function": {"name": c.name, "arguments": _arguments(c)}}
                for c in reply.calls if isinstance(c, FunctionCall)]

    async def _complete(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        n = next(self._ids)
        cid, created, model = f"chatcmpl-{n:06d}", int(time.time()), body.get("model", "test-model")
        try:
            tool_calls = self._tool_calls(reply)
        except FakeScriptError as error:
            return self._script_error(str(error))
        text = self._text(reply, body) if reply.text is not None or not tool_calls else None
        written = (text or "") + "".join(c["function"]["arguments"] for c in tool_calls)
        if reply.usage:
            tokens_in, tokens_out = reply.usage
        else:
            tokens_in, tokens_out = len(json.dumps(body.get("messages", ""))) // 4 + 1, len(written) // 4 + 1
        usage = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}
        finish_reason = reply.finish_reason
        if tool_calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": finish_reason or "stop", "logprobs": None,
                             "message": message}],
                "usage": usage,
            })
        stream = _Stream(await self._sse(request), reply, self._sleep)

        def chunk(choices: list[Any], **extra: Any) -> dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": choices, **extra}

        def delta(fields: dict[str, Any]) -> dict[str, Any]:
            return chunk([{"index": 0, "delta": fields, "finish_reason": None}])

        await stream.write(delta({"role": "assistant", "content": "" if text is not None else None}))
        try:
            for piece in self._chunks(text, reply.chunk_size) if text is not None else []:
                await stream.delta(delta({"content": piece}))
            for number, call in enumerate(tool_calls):  # the head, then the arguments in pieces
                await stream.write(delta({"tool_calls": [{"index": number, **call,
                                                          "function": {**call["function"], "arguments": ""}}]}))
                for piece in self._chunks(call["function"]["arguments"], reply.chunk_size):
                    await stream.delta(delta({"tool_calls": [{"index": number, "function": {"arguments": piece}}]}))
        except _Failed:
            error = {"message": reply.error_message, "type": "server_error", "code": "server_error"}
            await stream.write({"error": error})
            await stream.response.write_eof()
            return stream.response
        if finish_reason is not None:
            await stream.write(chunk([{"index": 0, "delta": {}, "finish_reason": finish_reason}]))
            if (body.get("stream_options") or {}).get("include_usage"):
                await stream.write(chunk([], usage=usage))
        await stream.response.write(b"data: [DONE]\n\n")
        await stream.response.write_eof()
        return stream.response
