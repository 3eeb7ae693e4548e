"""What both loopback fakes share: an aiohttp server on 127.0.0.1 in the test's event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from aiohttp import web


class LoopbackServer:
    """Start/stop, `async with`, stop-aware sleeps and polling; subclasses add routes."""

    name = "fake"

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._stopping = asyncio.Event()

    @property
    def port(self) -> int:
        """The TCP port the server listens on (0 before start)."""
        return self._port

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._port}"

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self, port: int = 0) -> None:
        """Serve on 127.0.0.1:`port` (0 = any free port) in the running event loop."""
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def before_stop(self) -> None:
        """Close what the subclass holds open (websockets) before the server goes."""

    async def stop(self) -> None:
        """Release delayed and hanging handlers, then stop the server; never hangs."""
        self._stopping.set()
        await self.before_stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the fake stops."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            return

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, message: str = "") -> None:
        """Poll `predicate` every 20 ms; AssertionError if still false after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(message or f"condition not met on the {self.name} within {timeout} s")
            await asyncio.sleep(0.02)
