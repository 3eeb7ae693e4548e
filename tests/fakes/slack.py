"""A loopback Slack: the Web API over an in-memory workspace, and the Socket Mode websocket.

Tests push events as Slack would (`user_says`), see every Web API call the bot made, read the
workspace as a person would (threads, edits, files), and inject faults (429, errors, latency,
dropped sockets). One aiohttp server on 127.0.0.1 serves:

- ``/api/{method}``: the Web API (GET or POST; query, form, multipart and JSON bodies);
- ``/link/``: the Socket Mode websocket that ``apps.connections.open`` points to;
- ``/upload/{file_id}`` and ``/files/{file_id}/{name}``: file upload and ``url_private`` downloads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import math
import mimetypes
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Union

from aiohttp import WSMsgType, web

from tests.fakes.server import LoopbackServer

#: Parameters that clients send as JSON strings inside form bodies.
JSON_PARAMS = ("metadata", "blocks", "files", "chunks", "view", "attachments", "prompts",
               "loading_messages", "unfurl_media")

#: Labels and offsets for the time zones tests use; others get the zone name and offset 0.
TZ_INFO = {
    "America/New_York": ("Eastern Standard Time", -18000),
    "America/Los_Angeles": ("Pacific Standard Time", -28800),
    "Europe/Paris": ("Central European Time", 3600),
    "Europe/London": ("Greenwich Mean Time", 0),
    "Asia/Tokyo": ("Japan Standard Time", 32400),
    "UTC": ("Coordinated Universal Time", 0),
}


@dataclass
class ApiCall:
    """One Web API call as the fake received it; `fault` names the error injected into it, if any."""

    method: str
    params: dict[str, Any]
    token: str | None
    time: float = field(default_factory=time.monotonic)
    fault: str | None = None


@dataclass
class Ack:
    """A Socket Mode ack: seconds since the envelope was sent, and the ack's payload if any."""

    latency: float
    payload: Any = None


@dataclass(eq=False)
class Connection:
    """One Socket Mode connection, numbered in the order connections were opened (from 1).

    Several processes of one app each hold their own connection (Slack allows up to 10): the
    fake spreads envelopes over the open ones (`FakeSlack.delivery`), or sends one where a test
    says (`to=`).
    """

    id: int
    ws: web.WebSocketResponse = field(repr=False)
    transport: asyncio.BaseTransport | None = field(repr=False)
    # Envelope ids sent on this connection, in order.
    envelopes: list[str] = field(default_factory=list)
    silent: bool = False

    @property
    def open(self) -> bool:
        return not self.ws.closed and not self.silent


#: Where an envelope goes: a connection's id, every open connection ("all"), or None for the
#: fake's `delivery` policy.
Target = Union[int, str, None]


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: float
    times: int
    channel: str | None


class FakeSlack(LoopbackServer):
    """An in-memory Slack workspace served over HTTP and Socket Mode on 127.0.0.1."""

    team_id = "T0TEAM"
    bot_user_id = "U0BOT"
    bot_id = "B0BOT"
    app_id = "A0APP"
    bot_token = "xoxb-test-token"
    app_token = "xapp-test-token"

    name = "fake Slack"

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.downloads: list[tuple[str, bool]] = []
        # Cleared by `hold_downloads`: file downloads then wait without answering.
        self._downloads_open = asyncio.Event()
        self._downloads_open.set()
        self.calls: list[ApiCall] = []
        self.envelopes: dict[str, dict[str, Any]] = {}
        self.acks: dict[str, Ack] = {}
        self.connections_opened = 0
        self.tickets: list[str] = []  # every Socket Mode ticket handed out (none may be logged)
        self._sent_at: dict[str, float] = {}
        self._connections: list[Connection] = []
        # How envelopes without a `to=` are spread over the open connections: "newest" (the
        # most recently opened one gets everything, as one process reconnecting sees it) or
        # "round_robin" (each next envelope to the next connection, as Slack spreads them over
        # the processes of one app).
        self.delivery = "newest"
        self._turn = itertools.count()
        # envelope_id -> the ids of the connections it was sent on, and those that acked it
        # (`acks` keeps the first ack only).
        self.delivered_to: dict[str, list[int]] = {}
        self.acked_by: dict[str, set[int]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        # (channel, thread_ts) -> the assistant status shown there (setStatus; a bot reply clears it).
        self.assistant_status: dict[tuple[str, str], str] = {}
        self._latency: dict[str, float] = {}
        self._held: dict[str, asyncio.Event] = {}
        self._ts = itertools.count(100)
        self._ids = itertools.count(1)
        self.add_user(self.bot_user_id, "assistant", display_name="Assistant", is_bot=True)
        self.add_user("U0ALICE", "alice", display_name="Alice", real_name="Alice Martin", tz="Europe/Paris")
        self.add_user("U0BOB", "bob", display_name="Bob", real_name="Bob Stone", tz="America/New_York")
        self.add_channel("D0ALICE", "alice", is_im=True, user="U0ALICE")
        self.add_channel("D0BOB", "bob", is_im=True, user="U0BOB")
        self.add_channel("C0GENERAL", "general")

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The Web API base URL to give ``AsyncWebClient(base_url=...)``."""
        return f"{self.base}/api/"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._link)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files/{file_id}/{name}", self._download)

    async def before_stop(self) -> None:
        """Close every websocket so the bot's socket client sees the server go."""
        self._downloads_open.set()  # held downloads end with the server
        for held in self._held.values():
            held.set()
        for connection in list(self._connections):
            if connection.ws.closed:
                continue
            # A client that no longer answers the close handshake is cut off below instead.
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError, RuntimeError):
                await asyncio.wait_for(connection.ws.close(code=1001, message=b"server stopping"), 0.5)
            transport = connection.transport
            if transport is not None and not transport.is_closing():
                transport.abort()

    # --- workspace ---------------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, *, display_name: str | None = None,
                 real_name: str | None = None, tz: str = "America/New_York", tz_label: str | None = None,
                 tz_offset: int | None = None, is_bot: bool = False) -> dict[str, Any]:
        """Add (or replace) a workspace member and return its users.info record."""
        label, offset = TZ_INFO.get(tz, (tz, 0))
        self.users[user_id] = {
            "id": user_id, "team_id": self.team_id, "name": name, "real_name": real_name or name,
            "tz": tz, "tz_label": tz_label or label, "tz_offset": offset if tz_offset is None else tz_offset,
            "is_bot": is_bot, "deleted": False,
            "profile": {"display_name": display_name or "", "real_name": real_name or name},
        }
        return self.users[user_id]

    def add_channel(self, channel_id: str, name: str, *, is_im: bool = False,
                    user: str | None = None) -> dict[str, Any]:
        """Add a channel; ids starting with D are IMs (with `user`)."""
        is_im = is_im or channel_id.startswith("D")
        self.channels[channel_id] = {
            "id": channel_id, "name": name, "is_im": is_im, "is_channel": not is_im,
            "is_private": False, "is_member": True, "user": user,
        }
        self.messages.setdefault(channel_id, [])
        return self.channels[channel_id]

    def _new_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The stored message `ts` of `channel`, or None."""
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The thread root and its replies, oldest first."""
        found = [m for m in self.messages.get(channel, [])
                 if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]
        return sorted(found, key=lambda m: m["ts"])

    def bot_messages(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted in `channel` (only in that thread if `thread_ts` is given)."""
        source = self.thread(channel, thread_ts) if thread_ts else self.messages.get(channel, [])
        return [m for m in source if m.get("bot_id") == self.bot_id]

    def _store(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        self.messages[channel].append(message)
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            root = self.message(channel, thread_ts)
            if root is not None:
                root["thread_ts"] = thread_ts
                root["reply_count"] = root.get("reply_count", 0) + 1
        return message

    def post_as_user(self, user: str, channel: str, text: str, *, thread_ts: str | None = None,
                     files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Store a message written by a person, without pushing any event."""
        if channel not in self.channels:
            raise KeyError(f"unknown channel {channel}")
        message: dict[str, Any] = {"type": "message", "ts": self._new_ts(), "user": user, "text": text}
        if thread_ts:
            message["thread_ts"] = thread_ts
        if files:
            message["files"] = files
        return self._store(channel, message)

    async def user_says(self, user: str, channel: str, text: str, *, thread_ts: str | None = None,
                        files: list[dict[str, Any]] | None = None, to: Target = None) -> str:
        """Post as a person and push the events Slack would send; returns the message ts.

        In a channel, a text mentioning the bot first pushes ``app_mention``; a ``message``
        event is always pushed (with ``subtype: file_share`` when files are attached, as Slack does).
        `to`: the connection(s) both go to (default: the `delivery` policy, envelope by envelope).
        """
        message = self.post_as_user(user, channel, text, thread_ts=thread_ts, files=files)
        event: dict[str, Any] = {"user": user, "text": text, "ts": message["ts"], "event_ts": message["ts"],
                                 "channel": channel, "team": self.team_id}
        if thread_ts:
            event["thread_ts"] = thread_ts
        is_im = self.channels[channel]["is_im"]
        if not is_im and f"<@{self.bot_user_id}>" in text:
            await self.push_event({"type": "app_mention", **event}, to=to)
        message_event = {"type": "message", **event, "channel_type": "im" if is_im else "channel"}
        if files:
            message_event["files"] = files
            message_event["subtype"] = "file_share"
        await self.push_event(message_event, to=to)
        return message["ts"]

    def _file_record(self, file_id: str, name: str, mimetype: str, size: int, user: str) -> dict[str, Any]:
        url = f"{self.base}/files/{file_id}/{name}"
        record = {
            "id": file_id, "name": name, "title": name, "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary", "size": size,
            "user": user, "created": int(time.time()), "url_private": url, "url_private_download": url,
        }
        self.files[file_id] = record
        return record

    def add_file(self, name: str, content: bytes, mimetype: str, *, user: str = "U0ALICE",
                 subtype: str | None = None) -> dict[str, Any]:
        """Register a file a person uploaded; returns its file dict (for ``user_says(files=[...])``).

        ``subtype="slack_audio"``: a voice clip recorded in Slack, with the fields Slack adds to one."""
        record = self._file_record(self._new_id("F"), name, mimetype, len(content), user)
        if subtype:
            record["subtype"] = subtype
        if subtype == "slack_audio":
            record.update(media_display_type="audio", duration_ms=max(1000, len(content) // 4),
                          transcription={"status": "processing"})
        self.file_bytes[record["id"]] = content
        return record

    # --- faults and waiting ------------------------------------------------------------------

    def fail(self, method: str, *, error: str = "ratelimited", status: int | None = None,
             retry_after: float = 1, times: int = 1, channel: str | None = None) -> None:
        """Make the next `times` calls of `method` fail (429 + Retry-After for ``ratelimited``).

        With `channel`, only calls to that channel fail (Slack limits some methods per channel).
        """
        if status is None:
            status = 429 if error == "ratelimited" else 200
        self._faults.setdefault(method, []).append(_Fault(error, status, retry_after, times, channel))

    def expire_streams(self) -> None:
        """End every native stream now, as Slack does about 5 minutes after it started."""
        for messages in self.messages.values():
            for message in messages:
                message["streaming"] = False

    def hold_downloads(self) -> None:
        """From now on, file downloads (``url_private``) hang: the request is taken, no response
        starts, as with a stalled file host, until `release_downloads` (or the fake stops)."""
        self._downloads_open.clear()

    def release_downloads(self) -> None:
        self._downloads_open.set()

    def hold(self, method: str) -> None:
        """From now on, calls of `method` are recorded but not answered until `release(method)`
        (or the fake stops): a Slack that is slow to answer one kind of call."""
        self._held.setdefault(method, asyncio.Event()).clear()

    def release(self, method: str) -> None:
        self._held.pop(method, asyncio.Event()).set()

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay every response of `method` ("*" = all methods) by `seconds`."""
        self._latency[method] = seconds

    def calls_to(self, method: str) -> list[ApiCall]:
        """The recorded calls of one Web API method."""
        return [c for c in self.calls if c.method == method]

    # --- Socket Mode -------------------------------------------------------------------------

    def connections(self) -> list[Connection]:
        """The open connections (half-open ones left out), oldest first."""
        return [c for c in self._connections if c.open]

    @property
    def connected(self) -> bool:
        """Whether a Socket Mode connection is open now."""
        return bool(self.connections())

    async def wait_connected(self, count: int = 1, timeout: float = 5.0, open_now: int = 1) -> None:
        """Wait until `count` connections were opened in all and `open_now` are open now."""
        await self.wait_for(
            lambda: self.connections_opened >= count and len(self.connections()) >= open_now,
            timeout, f"no Socket Mode connection #{count} with {open_now} open "
                     f"(opened so far: {self.connections_opened}, open: {len(self.connections())})",
        )

    def _targets(self, to: Target) -> list[Connection]:
        """The open connections an envelope goes to (see `Target`); [] while none fits."""
        open_ = self.connections()
        if to == "all":
            return open_
        if isinstance(to, int):
            return [c for c in open_ if c.id == to]
        if to is not None:
            raise ValueError(f"to={to!r}: give a connection id, 'all' or None")
        if not open_:
            return []
        if self.delivery == "round_robin":
            return [open_[next(self._turn) % len(open_)]]
        if self.delivery != "newest":
            raise ValueError(f"delivery={self.delivery!r}: 'newest' or 'round_robin'")
        return [open_[-1]]

    async def _send(self, envelope: dict[str, Any], to: Target = None) -> str:
        """Send `envelope` on the connection(s) `to` names, waiting a moment for one to be open."""
        def ready() -> bool:
            open_ = self.connections()
            return any(c.id == to for c in open_) if isinstance(to, int) else bool(open_)

        await self.wait_for(ready, 5.0, f"no open Socket Mode connection to push to (to={to!r})")
        envelope_id = envelope["envelope_id"]
        self.envelopes[envelope_id] = envelope
        self._sent_at[envelope_id] = time.monotonic()
        for connection in self._targets(to):
            connection.envelopes.append(envelope_id)
            self.delivered_to.setdefault(envelope_id, []).append(connection.id)
            await connection.ws.send_json(envelope)
        return envelope_id

    async def push_event(self, event: dict[str, Any], *, event_id: str | None = None,
                         retry_attempt: int = 0, retry_reason: str = "", to: Target = None) -> str:
        """Send an ``events_api`` envelope holding `event`; returns its envelope_id.

        `to="all"` sends the one envelope to every open connection (a test of two processes
        both given the same delivery); a connection id sends it on that one only."""
        payload = {
            "token": "x", "team_id": self.team_id, "api_app_id": self.app_id, "event": event,
            "type": "event_callback", "event_id": event_id or self._new_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [{"team_id": self.team_id, "user_id": self.bot_user_id, "is_bot": True}],
        }
        return await self._send({
            "envelope_id": str(uuid.uuid4()), "type": "events_api", "accepts_response_payload": False,
            "retry_attempt": retry_attempt, "retry_reason": retry_reason, "payload": payload,
        }, to)

    async def push_envelope(self, type: str, payload: dict[str, Any], *,
                            accepts_response_payload: bool = False, to: Target = None) -> str:
        """Send any envelope (``slash_commands``, ``interactive``...); returns its envelope_id."""
        return await self._send({
            "envelope_id": str(uuid.uuid4()), "type": type, "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }, to)

    async def redeliver(self, envelope_id: str, *, retry_reason: str = "timeout", to: Target = None) -> str:
        """Resend an envelope's payload (same event_id) as Slack's retry: new envelope_id, attempt+1.

        Slack may retry on any of the app's connections: `to` picks one (default: `delivery`)."""
        old = self.envelopes[envelope_id]
        return await self._send({
            **old, "envelope_id": str(uuid.uuid4()),
            "retry_attempt": old.get("retry_attempt", 0) + 1, "retry_reason": retry_reason,
        }, to)

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """Wait for the client's ack of one envelope."""
        await self.wait_for(lambda: envelope_id in self.acks, timeout, f"no ack for envelope {envelope_id}")
        return self.acks[envelope_id]

    def ack_latencies(self) -> list[float]:
        """Seconds between sending each acked envelope and receiving its ack."""
        return [ack.latency for ack in self.acks.values()]

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Send a ``disconnect`` frame on the current connection; the client reconnects by itself."""
        for connection in self.connections()[-1:]:
            await connection.ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}})

    async def drop_connections(self) -> None:
        """Cut every connection at the TCP level, with no close frame (a network loss)."""
        for connection in self._connections:
            transport = connection.transport
            if transport is not None and not transport.is_closing():
                transport.abort()

    def go_silent(self) -> None:
        """Make every current connection half-open: it stays up but nothing is read or answered.

        The server stops reading the socket, so the client's pings get no pong and its frames
        no reply, as when a NAT or proxy silently forgets the connection. New connections work.
        """
        for connection in self._connections:
            if connection.transport is not None and not connection.ws.closed:
                connection.transport.pause_reading()
                connection.silent = True

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, timeout=1.0)
        await ws.prepare(request)
        self.connections_opened += 1
        entry = Connection(self.connections_opened, ws, request.transport)
        self._connections.append(entry)
        try:
            await ws.send_json({
                "type": "hello", "num_connections": len(self.connections()),
                "debug_info": {"host": "fake", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            })
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._on_frame(frame.data, entry)
        except ConnectionError:
            pass
        finally:
            self._connections.remove(entry)
        return ws

    def _on_frame(self, text: str, connection: Connection) -> None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return
        envelope_id = data.get("envelope_id") if isinstance(data, dict) else None
        if envelope_id:
            self.acked_by.setdefault(envelope_id, set()).add(connection.id)
        if envelope_id and envelope_id not in self.acks:
            sent = self._sent_at.get(envelope_id, time.monotonic())
            self.acks[envelope_id] = Ack(time.monotonic() - sent, data.get("payload"))

    # --- Web API plumbing --------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except json.JSONDecodeError:
                    body = {}
                params.update(body if isinstance(body, dict) else {})
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key in JSON_PARAMS:
            if isinstance(params.get(key), str) and params[key][:1] in ("{", "["):
                try:
                    params[key] = json.loads(params[key])
                except json.JSONDecodeError:
                    pass
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        call = ApiCall(method, params, token)
        self.calls.append(call)
        delay = self._latency.get(method, self._latency.get("*", 0))
        if delay:
            await self._sleep(delay)
        held = self._held.get(method)
        if held is not None:
            await held.wait()
        faults = self._faults.get(method, [])
        fault = next((f for f in faults if f.channel in (None, params.get("channel"))), None)
        if fault is not None:
            call.fault = fault.error
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
            headers = {"Retry-After": str(math.ceil(fault.retry_after))} if fault.status == 429 else {}
            return web.json_response({"ok": False, "error": fault.error}, status=fault.status, headers=headers)
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = handler(params)
        if "ok" not in result:
            result = {"ok": True, **result}
        self.after_call(call, result)
        return web.json_response(result)

    def after_call(self, call: ApiCall, result: dict[str, Any]) -> None:
        """Called with every handled Web API call and its result (a hook for the benchmark)."""

    @staticmethod
    def _err(error: str) -> dict[str, Any]:
        return {"ok": False, "error": error}

    @staticmethod
    def _truthy(value: Any) -> bool:
        return value is True or str(value).lower() in ("true", "1")

    @staticmethod
    def _page(items: list[dict[str, Any]], p: dict[str, Any], default: int) -> dict[str, Any]:
        """One page of `items`; the cursor is the base64 of the next offset."""
        try:
            limit = max(1, int(p.get("limit") or default))
            start = int(base64.b64decode(p["cursor"]).decode()) if p.get("cursor") else 0
        except (ValueError, binascii.Error):
            return {"ok": False, "error": "invalid_cursor"}
        page = items[start:start + limit]
        more = start + limit < len(items)
        cursor = base64.b64encode(str(start + limit).encode()).decode() if more else ""
        return {"messages": page, "has_more": more, "response_metadata": {"next_cursor": cursor}}

    # --- Web API methods ---------------------------------------------------------------------

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://fake.slack.com/", "team": "Fake", "user": "assistant",
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id}

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        self.tickets.append(str(uuid.uuid4()))
        return {"url": f"ws://127.0.0.1:{self._port}/link/?ticket={self.tickets[-1]}"}

    def _bot_message(self, p: dict[str, Any], text: str) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "ts": self._new_ts(), "user": self.bot_user_id,
                                   "bot_id": self.bot_id, "text": text}
        if p.get("thread_ts"):
            message["thread_ts"] = p["thread_ts"]
            # As Slack does: the app's reply in a thread clears the assistant status shown there.
            self.assistant_status.pop((p.get("channel", ""), p["thread_ts"]), None)
        for key in ("metadata", "blocks"):
            if p.get(key):
                message[key] = p[key]
        return message

    def _im_of(self, channel: str | None) -> str | None:
        """Like Slack, a bot posting to a user id posts in that person's DM with the app."""
        for channel_id, info in self.channels.items():
            if info.get("is_im") and info.get("user") == channel:
                return channel_id
        return channel

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._im_of(p.get("channel"))
        if channel not in self.channels:
            return self._err("channel_not_found")
        if not p.get("text") and not p.get("blocks"):
            return self._err("no_text")
        message = self._store(channel, self._bot_message(p, p.get("text") or ""))
        return {"channel": channel, "ts": message["ts"], "message": message}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self.message(p.get("channel", ""), p.get("ts", ""))
        if message is None:
            return self._err("message_not_found")
        for key in ("text", "blocks", "metadata"):
            if key in p:
                message[key] = p[key]
        message["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        return {"channel": p["channel"], "ts": p["ts"], "text": message.get("text", "")}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self.message(p.get("channel", ""), p.get("ts", ""))
        if message is None:
            return self._err("message_not_found")
        self.messages[p["channel"]].remove(message)
        return {"channel": p["channel"], "ts": p["ts"]}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("channel") not in self.channels:
            return self._err("channel_not_found")
        self.ephemerals.append({k: p.get(k) for k in ("channel", "user", "text", "thread_ts", "blocks")})
        return {"message_ts": self._new_ts()}

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel", "")
        if channel not in self.channels:
            return self._err("channel_not_found")
        if self.message(channel, p.get("ts", "")) is None:
            return self._err("thread_not_found")
        items = [dict(m) for m in self.thread(channel, p["ts"])]
        if not self._truthy(p.get("include_all_metadata")):
            for m in items:
                m.pop("metadata", None)
        return self._page(items, p, 100)

    def _m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel", "")
        if channel not in self.channels:
            return self._err("channel_not_found")
        inclusive = self._truthy(p.get("inclusive"))
        latest, oldest = p.get("latest"), p.get("oldest")
        items = [dict(m) for m in self.messages[channel] if m.get("thread_ts") in (None, m["ts"])]
        if latest:
            items = [m for m in items if m["ts"] < latest or (inclusive and m["ts"] == latest)]
        if oldest:
            items = [m for m in items if m["ts"] > oldest or (inclusive and m["ts"] == oldest)]
        if not self._truthy(p.get("include_all_metadata")):
            for m in items:
                m.pop("metadata", None)
        items.sort(key=lambda m: m["ts"], reverse=True)
        return self._page(items, p, 100)

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(p.get("channel", ""))
        return {"channel": dict(channel)} if channel else self._err("channel_not_found")

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(p.get("user", ""))
        return {"user": dict(user)} if user else self._err("user_not_found")

    def _reaction(self, p: dict[str, Any], action: str) -> dict[str, Any]:
        if self.message(p.get("channel", ""), p.get("timestamp", "")) is None:
            return self._err("message_not_found")
        self.reactions.append({"action": action, "channel": p["channel"], "timestamp": p["timestamp"],
                               "name": p.get("name")})
        return {}

    def _m_reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._reaction(p, "add")

    def _m_reactions_remove(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._reaction(p, "remove")

    def _ok(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _m_assistant_threads_setStatus(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (p.get("channel_id", ""), p.get("thread_ts", ""))
        if p.get("status"):
            self.assistant_status[key] = p["status"]
        else:
            self.assistant_status.pop(key, None)
        return {}

    def status_shown(self, channel: str, thread_ts: str) -> str:
        """The assistant status people see in a thread now ("" when none)."""
        return self.assistant_status.get((channel, thread_ts), "")

    _m_assistant_threads_setTitle = _ok
    _m_assistant_threads_setSuggestedPrompts = _ok

    def _store_view(self, p: dict[str, Any]) -> dict[str, Any]:
        view_id = p.get("view_id") or self._new_id("V")
        view = {**(p.get("view") or {}), "id": view_id}
        self.views[view_id] = view
        return {"view": view}

    _m_views_open = _m_views_update = _m_views_push = _m_views_publish = _store_view

    @staticmethod
    def _stream_text(p: dict[str, Any]) -> str:
        text = p.get("markdown_text") or ""
        for chunk in p.get("chunks") or []:
            if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                text += chunk.get("text", "")
        return text

    def _m_chat_startStream(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("channel") not in self.channels:
            return self._err("channel_not_found")
        message = self._store(p["channel"], self._bot_message(p, self._stream_text(p)))
        message["streaming"] = True
        return {"channel": p["channel"], "ts": message["ts"]}

    def _m_chat_appendStream(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self.message(p.get("channel", ""), p.get("ts", ""))
        if message is None:
            return self._err("message_not_found")
        if not message.get("streaming"):
            return self._err("message_not_in_streaming_state")
        message["text"] += self._stream_text(p)
        return {"channel": p["channel"], "ts": p["ts"]}

    def _m_chat_stopStream(self, p: dict[str, Any]) -> dict[str, Any]:
        result = self._m_chat_appendStream(p)
        if result.get("ok") is False:
            return result
        message = self.message(p["channel"], p["ts"])
        assert message is not None
        message["streaming"] = False
        for key in ("blocks", "metadata"):
            if p.get(key):
                message[key] = p[key]
        return {"channel": p["channel"], "ts": p["ts"], "message": message}

    # --- files -------------------------------------------------------------------------------

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("filename") or "file"
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        record = self._file_record(self._new_id("F"), name, mimetype, int(p.get("length") or 0),
                                   self.bot_user_id)
        return {"upload_url": f"{self.base}/upload/{record['id']}", "file_id": record["id"]}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        specs = [f for f in p.get("files") or [] if isinstance(f, dict)]
        if not specs or any(f.get("id") not in self.files for f in specs):
            return self._err("file_not_found")
        files = []
        for spec in specs:
            record = self.files[spec["id"]]
            record["title"] = spec.get("title") or record["title"]
            files.append(record)
        channel = p.get("channel_id") or (p.get("channels") or "").split(",")[0]
        if channel:
            if channel not in self.channels:
                return self._err("channel_not_found")
            message = self._bot_message(p, p.get("initial_comment") or "")
            message["files"] = files
            self._store(channel, message)
        return {"files": files}

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self.files.get(p.get("file", ""))
        return {"file": record} if record else self._err("file_not_found")

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.files:
            return web.Response(status=404, text="not found")
        if request.content_type.startswith("multipart/"):
            data = b""
            async for part in await request.multipart():
                data += await part.read()  # type: ignore[union-attr]
        else:
            data = await request.read()
        self.file_bytes[file_id] = data
        self.files[file_id]["size"] = len(data)
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        authorized = request.headers.get("Authorization") == f"Bearer {self.bot_token}"
        self.downloads.append((file_id, authorized))
        await self._downloads_open.wait()
        if not authorized:
            return web.Response(status=403, text="<!DOCTYPE html><html><body>Sign in to Slack</body></html>",
                                content_type="text/html")
        if file_id not in self.file_bytes:
            return web.Response(status=404, text="not found")
        mimetype = self.files[file_id].get("mimetype", "application/octet-stream")
        return web.Response(body=self.file_bytes[file_id], content_type=mimetype)
