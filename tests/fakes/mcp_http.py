"""A real MCP server (the SDK's `MCPServer`) over streamable HTTP on 127.0.0.1, in this process.

No mocks: the bot's MCP client talks HTTP to the SDK's own server under uvicorn. The server
can be stopped and started again on the same port (reconnects), can demand a bearer token (it
records every Authorization header it saw), and tells the test what its tools are doing
through asyncio events (the server runs on the test's loop).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from dataclasses import dataclass, field
from typing import Any, Iterator

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from mcp.server.transport_security import TransportSecuritySettings

# A 1×1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
START_TIMEOUT = 10.0


@dataclass
class ToolEvents:
    """What the server's tools did, for tests to wait on."""

    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    slow_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[str] = field(default_factory=list)


def build_server(events: ToolEvents) -> MCPServer:
    """The tools the tests call: plain, slow, failing, large, a picture, one not allowed."""
    server = MCPServer("orders-test")

    @server.tool()
    def lookup_order(order_id: str) -> str:
        """Look up an order by its id."""
        events.calls.append(f"lookup_order:{order_id}")
        return f"Order {order_id}: 2 parcels, shipped"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def slow(seconds: float) -> str:
        """Wait this many seconds, then answer."""
        events.slow_started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            events.slow_cancelled.set()
            raise
        return "finally done"

    @server.tool()
    def fail(why: str) -> str:
        """Always fails, saying why."""
        raise ToolError(f"cannot do that: {why}")

    @server.tool()
    def big(size: int) -> str:
        """A text of `size` characters."""
        return "x" * size

    @server.tool()
    def picture() -> Image:
        """A tiny picture."""
        return Image(data=PNG, format="png")

    @server.tool(name="report.v2")
    def report() -> str:
        """A tool whose name has a dot."""
        return "report"

    @server.tool()
    def admin_reset() -> str:
        """Something the bot must not be offered."""
        return "reset!"

    return server


class _Server(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        # The test's signal handlers stay: this server is stopped by the test, not by SIGINT.
        return contextlib.nullcontext()


class _RequireToken:
    """ASGI middleware: records each request's Authorization; 401 unless it is the token."""

    def __init__(self, app: Any, token: str | None, seen: list[str]) -> None:
        self.app, self.token, self.seen = app, token, seen

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            value = dict(scope["headers"]).get(b"authorization", b"").decode()
            self.seen.append(value)
            if self.token is not None and value != f"Bearer {self.token}":
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"missing or wrong token"})
                return
        await self.app(scope, receive, send)


class LoopbackMcpServer:
    """`async with LoopbackMcpServer(token="…") as server:` … `server.url`, `await server.stop()`."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.events = ToolEvents()
        self.authorization_seen: list[str] = []
        self.port = _free_port()
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> None:
        """Serve on `self.port` (the same port again after a stop)."""
        app = build_server(self.events).streamable_http_app(
            # The client sends no Origin and connects to 127.0.0.1: nothing to rebind.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        config = uvicorn.Config(
            _RequireToken(app, self.token, self.authorization_seen), log_level="warning",
            lifespan="on", timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        sock = _bound_socket(self.port)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"mcp-http-{self.port}")
        async with asyncio.timeout(START_TIMEOUT):
            while not self._server.started:  # uvicorn has no event for it: poll the flag
                if self._task.done():
                    await self._task  # it failed: raise why
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None

    async def __aenter__(self) -> LoopbackMcpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bound_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening, so nobody else takes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
