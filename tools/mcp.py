"""The bot as an MCP client: every configured server's tools, as `tools.base.Tool`s.

`McpServers` is owned by the app: `start()` connects to every server of MCP_CONFIG_FILE,
`tools()` is what the turn loop offers the model, `stop()` closes everything. A server that is
down does not stop the bot: it is logged once, retried in the background with a doubling
backoff, and its tools are simply not offered until it is back.

**One task owns each connection.** The SDK is built on anyio: its transports and sessions are
async context managers holding task groups and cancel scopes, which must be exited by the task
that entered them. So each server has one long-running task (`_Server.run`) that enters the
httpx2 client, the transport and the `mcp.Client`, lists the tools, then waits (re-listing now
and then as a health check), and exits all of it itself: when the app stops, or when the
session fails (then it waits out the backoff and connects again). Turns call tools from their
own tasks through that live session, which multiplexes requests; cancelling a call (the person
pressed Stop, the turn's deadline) cancels that request only, and the session carries on.

**Failures are answers.** A tool of a server that is down, a call that times out, an MCP error:
each becomes `ToolResult(ok=False)` with a sentence the model can act on (answer without it),
and a failed call makes the owner check the connection at once. Only cancellation propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

import httpx2
from mcp import types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from supervision import backoff_seconds
from tools.base import MAX_OUTPUT_CHARS, Tool, ToolCall, ToolContext, ToolResult, bounded
from mcp_config import McpConfigError, ServerConfig, Transport, load_mcp_config

if TYPE_CHECKING:
    from config import Config

__all__ = [
    "McpConfigError", "McpServers", "McpTool", "ServerConfig", "ServerStatus", "load_mcp_config",
    "render_result", "tool_name",
]

log = logging.getLogger(__name__)

# OpenAI's function names: ^[a-zA-Z0-9_-]{1,64}$.
MAX_TOOL_NAME = 64
UNSAFE_NAME_CHARACTERS = re.compile(r"[^a-zA-Z0-9_-]")
# A server that keeps answering with a next cursor is not allowed to keep us listing forever.
MAX_TOOL_PAGES = 100
# HTTP: connect/write/pool limits; a tool's answer may stream for long (the tool timeout bounds it).
HTTP_TIMEOUT_SECONDS = 30.0
HTTP_READ_TIMEOUT_SECONDS = 300.0
# How long stop() lets each connection close itself (an HTTP DELETE, a process told to exit;
# the SDK bounds a stdio server's shutdown at about 6 s) before cancelling it.
STOP_GRACE_SECONDS = 10.0
# start() waits for every server's first attempt; a stdio server that must be killed may take
# this much beyond the connect timeout.
START_MARGIN_SECONDS = 10.0
CLIENT_INFO = types.Implementation(name="slack-assistant", version="1.0")
State = Literal["connecting", "connected", "down", "stopped"]


@dataclass
class ServerStatus:
    """What /health and the logs say about one server."""

    name: str
    transport: Transport
    state: State = "connecting"
    reason: str | None = None
    tools: int = 0
    # Failed connection attempts in a row (0 once connected).
    failures: int = 0
    # Sessions opened so far: more than one means it was reconnected.
    sessions: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport, "state": self.state, "reason": self.reason, "tools": self.tools,
            "failures": self.failures, "sessions": self.sessions,
        }


@dataclass(frozen=True)
class _Settings:
    tool_timeout: float
    max_result_chars: int
    connect_timeout: float
    check_interval: float
    base_backoff: float
    max_backoff: float


# --- Pure helpers ---------------------------------------------------------------------------


def tool_name(server: str, tool: str, taken: set[str]) -> str:
    """The model's name for `tool` of `server`: `<server>__<tool>`, only [a-zA-Z0-9_-], ≤ 64.

    A name that had to be cut, or that another tool of the server already took (`a.b` and
    `a_b` both become `a_b`), ends in a short hash of the tool's own name, so it stays unique
    and stable across reconnects. Server names cannot contain `__` (mcp_config), so tools of
    two servers never collide. `taken` is updated.
    """
    base = f"{server}__{UNSAFE_NAME_CHARACTERS.sub('_', tool)}"
    name = base
    if len(base) > MAX_TOOL_NAME or base in taken:
        suffix = "_" + hashlib.sha256(tool.encode()).hexdigest()[:8]
        name = base[: MAX_TOOL_NAME - len(suffix)] + suffix
    taken.add(name)
    return name


def object_schema(schema: Any) -> dict[str, Any]:
    """A tool's inputSchema as function parameters: an object schema, `properties` included
    (some APIs refuse an object schema without them); anything else gives no parameters."""
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        return {"type": "object", "properties": {}}
    schema = copy.deepcopy(schema)
    schema["type"] = "object"
    schema.setdefault("properties", {})
    return schema


def _size(base64_data: str) -> str:
    size = len(base64_data.rstrip("=")) * 3 // 4
    return f"{size / 1024:,.0f} KB" if size >= 1024 else f"{size} bytes"


def render_result(result: types.CallToolResult) -> str:
    """A tool's result as text for the model: the text parts joined, other parts named briefly.

    Pictures, audio and binary resources are not passed on: the model gets a line saying what
    came back. With no content at all, the structured result is given as JSON.
    """
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent):
            parts.append(f"[image: {block.mime_type}, {_size(block.data)}, not shown]")
        elif isinstance(block, types.AudioContent):
            parts.append(f"[audio: {block.mime_type}, {_size(block.data)}, not shown]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link: {block.name} <{block.uri}>]")
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, types.TextResourceContents):
                parts.append(f"[resource {resource.uri}]\n{resource.text}")
            else:
                kind = resource.mime_type or "binary"
                parts.append(f"[resource {resource.uri}: {kind}, {_size(resource.blob)}, not shown]")
        else:
            parts.append(f"[{getattr(block, 'type', 'unknown')} content, not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts) if parts else "(the tool returned nothing)"


def _plural(count: float, word: str) -> str:
    number = f"{int(count):,}" if count == int(count) else f"{count:g}"
    return f"{number} {word}" + ("" if count == 1 else "s")


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _leaf(exc: BaseException) -> BaseException:
    """The first real error in (nested) exception groups: what a task group raised for."""
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (real or list(exc.exceptions))[0]
    return exc


def describe(exc: BaseException) -> str:
    """One short line saying why a connection or call failed, for logs and /health."""
    exc = _leaf(exc)
    if isinstance(exc, TimeoutError):
        text = "no answer in time"
    elif isinstance(exc, httpx2.ConnectError):
        text = f"cannot connect: {exc}" if str(exc) else "cannot connect"
    elif isinstance(exc, httpx2.TimeoutException):
        text = "the HTTP request timed out"
    elif isinstance(exc, MCPError):
        text = f"{exc.message} (MCP error {exc.code})"
    elif isinstance(exc, FileNotFoundError):
        text = f"command not found: {exc.filename or exc}"
    elif isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"


# --- Tools ----------------------------------------------------------------------------------


class McpTool(Tool):
    """One tool of one MCP server, called through that server's live session."""

    def __init__(self, server: _Server, tool: types.Tool, name: str) -> None:
        self.name = name
        self.server_name = self.group = server.name
        self.tool_name = tool.name
        self.description = tool.description or f"The {tool.name} tool of the {server.name} MCP server."
        self._schema = object_schema(tool.input_schema)
        self._server = server

    def parameters(self) -> dict[str, Any]:
        return copy.deepcopy(self._schema)

    def title(self, arguments: dict[str, Any]) -> str:
        return f"{self.server_name}: {self.tool_name}"

    async def run(self, call: ToolCall, context: ToolContext) -> ToolResult:
        try:
            arguments = call.parsed()
        except ValueError as exc:
            return ToolResult(
                output=f"The arguments for {self.name} must be a JSON object ({exc}); call it again "
                       "with valid arguments.",
                ok=False, detail="invalid arguments",
            )
        return await self._server.call(self.tool_name, arguments)

    def __repr__(self) -> str:
        return f"McpTool({self.name!r})"


# --- Connections ----------------------------------------------------------------------------


class _Server:
    """One configured server: the task that owns its connection, and what it currently offers."""

    def __init__(self, config: ServerConfig, settings: _Settings, changed: Callable[[], None]) -> None:
        self.config = config
        self.name = config.name
        self.status = ServerStatus(config.name, config.transport)
        self.task: asyncio.Task[None] | None = None
        # Set once the first connection attempt has ended (either way): start() waits for it.
        self.attempted = False
        self._settings = settings
        self._changed = changed
        self._client: Client | None = None
        self._tools: tuple[McpTool, ...] = ()
        self._stopping = False
        # Wakes the owner from its wait: a check was asked for, or stop().
        self._wake = asyncio.Event()
        # What the owner is doing; only "connecting" is cancelled by stop() (nothing to close yet
        # that would close more cleanly), the others notice the wake-up or finish first.
        self._phase: Literal["connecting", "serving", "checking", "closing", "waiting"] = "connecting"
        # The last HTTP error status in this attempt: the SDK's MCPError does not carry it.
        self._http_status: int | None = None

    @property
    def tools(self) -> tuple[McpTool, ...]:
        return self._tools if self._client is not None else ()

    def check(self) -> None:
        """Ask the owner to check the connection now (a call failed, the tools changed)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Make the owner close the connection and end; while connecting, it is cancelled."""
        self._stopping = True
        self._wake.set()
        if self._phase == "connecting" and self.task is not None:
            self.task.cancel()

    # -- the owner task --

    async def run(self) -> None:
        """The server's whole life: connect, serve, and after a failure retry, until stopped."""
        try:
            while not self._stopping:
                try:
                    await self._connection()
                except (Exception, BaseExceptionGroup) as exc:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise  # stop() cancelled us while it failed: that is not a failure
                    delay = self._failed(exc)
                    if not self._stopping:
                        self._phase = "waiting"
                        await self._nap(delay)
        finally:
            self._client = None
            self.status.state, self.status.tools = "stopped", 0
            self.attempted = True
            self._changed()

    async def _connection(self) -> None:
        """One session, start to end: returns when stopped, raises when it fails."""
        self._phase = "connecting"
        self._http_status = None
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._settings.connect_timeout):
                client = await self._open(stack)
                listing = await self._list(client)
            self._client = client
            self._offer(listing, connecting=True)
            try:
                await self._serve(client)
            finally:
                self._client = None
                self._phase = "closing"

    async def _open(self, stack: contextlib.AsyncExitStack) -> Client:
        """Enter the transport and the session on `stack` (so this task exits them too)."""
        config = self.config
        if config.url is not None:
            http = await stack.enter_async_context(httpx2.AsyncClient(
                headers=dict(config.headers),
                timeout=httpx2.Timeout(HTTP_TIMEOUT_SECONDS, read=HTTP_READ_TIMEOUT_SECONDS),
                event_hooks={"response": [self._note_status]},
            ))
            transport = streamable_http_client(config.url, http_client=http)
        else:
            assert config.command is not None
            # The SDK gives the process only PATH, HOME and a few more, plus `env`: none of the
            # bot's own tokens. Its stderr is the bot's stderr (its lines are not redacted).
            parameters = StdioServerParameters(command=config.command, args=list(config.args), env=dict(config.env))
            transport = stdio_client(parameters, errlog=sys.stderr)
        # No response cache: the periodic re-listing is the health check, it must reach the server.
        client = Client(transport, cache=None, client_info=CLIENT_INFO, message_handler=self._on_message)
        return await stack.enter_async_context(client)

    async def _note_status(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self._http_status = response.status_code

    async def _on_message(self, message: Any) -> None:
        """Server notifications: a changed tool list, or a transport error, means: check now."""
        if isinstance(message, types.ToolListChangedNotification):
            log.info("MCP server %r says its tools changed", self.name)
            self.check()
        elif isinstance(message, Exception):
            log.warning("MCP server %r: transport error: %s", self.name, describe(message))
            self.check()

    async def _list(self, client: Client) -> list[types.Tool]:
        """Every page of tools/list."""
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                return tools
        log.warning("MCP server %r listed more than %d pages of tools; using those", self.name, MAX_TOOL_PAGES)
        return tools

    async def _serve(self, client: Client) -> None:
        """Keep the session: re-list now and then (the health check and news of the tools)."""
        while True:
            self._phase = "serving"
            await self._nap(self._settings.check_interval)
            if self._stopping:
                return
            self._phase = "checking"
            async with asyncio.timeout(self._settings.connect_timeout):
                listing = await self._list(client)
            self._offer(listing, connecting=False)

    async def _nap(self, seconds: float) -> None:
        """Wait `seconds`, or less if woken (a check asked for, stop)."""
        with contextlib.suppress(TimeoutError):  # the usual end of a nap, not an error
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    def _offer(self, listing: list[types.Tool], connecting: bool) -> None:
        """Turn the listing into Tools (allowedTools applied, names made safe), and say so."""
        allowed = self.config.allowed_tools
        taken: set[str] = set()
        seen: set[str] = set()
        tools: list[McpTool] = []
        for tool in listing:
            if tool.name in seen or (allowed is not None and tool.name not in allowed):
                continue
            seen.add(tool.name)
            tools.append(McpTool(self, tool, tool_name(self.name, tool.name, taken)))
        names = [t.name for t in tools]
        changed = names != [t.name for t in self._tools]
        self._tools = tuple(tools)
        self.status.tools = len(tools)
        if connecting:
            self.status.sessions += 1
            again = f" again after {_plural(self.status.failures, 'failed attempt')}" if self.status.failures else ""
            offered = f", {len(tools)} offered (allowedTools)" if allowed is not None else ""
            log.info("MCP server %r connected%s: %d tools%s", self.name, again, len(listing), offered)
            missing = sorted(set(allowed or ()) - {tool.name for tool in listing})
            if missing:
                log.warning("MCP server %r has no tools named %s (allowedTools)", self.name, ", ".join(missing))
        elif changed:
            log.info("MCP server %r now offers %d tools", self.name, len(tools))
        self.status.state, self.status.reason, self.status.failures = "connected", None, 0
        self.attempted = True
        self._changed()

    def _failed(self, exc: BaseException) -> float:
        """Record a failed or lost session; returns the backoff before the next attempt."""
        reason = self._reason(exc)
        was = self.status.state
        self.status.failures += 1
        delay = backoff_seconds(self.status.failures, self._settings.base_backoff, self._settings.max_backoff)
        if self._stopping:
            log.info("MCP server %r closed while stopping: %s", self.name, reason)
        elif was != "down" or reason != self.status.reason:
            lost = "lost its session" if was == "connected" else "is not available"
            log.warning("MCP server %r %s: %s; retrying in %g s", self.name, lost, reason, delay)
        else:
            log.debug("MCP server %r still not available: %s; retrying in %g s", self.name, reason, delay)
        self.status.state, self.status.reason, self.status.tools = "down", reason, 0
        self._tools = ()
        self.attempted = True
        self._changed()
        return delay

    def _reason(self, exc: BaseException) -> str:
        leaf = _leaf(exc)
        if isinstance(leaf, TimeoutError):
            return f"no answer within {self._settings.connect_timeout:g} s"
        reason = describe(leaf)
        if isinstance(leaf, MCPError):
            if self.config.transport == "stdio" and leaf.code == types.CONNECTION_CLOSED:
                return "the server process closed the connection (did the command exit? its stderr is in the log)"
            if self._http_status is not None:
                return f"{reason}, HTTP {self._http_status}"
        return reason

    # -- calls, from the turns' tasks --

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Call `tool` through the live session; every failure is a result, not an exception."""
        client = self._client
        which = f"The {tool} tool (MCP server {self.name!r})"
        if client is None:
            why = self.status.reason or "not connected yet"
            return ToolResult(
                output=f"{which} is not available right now: the server is not connected ({why}). "
                       "Answer without it, and say so if it matters.",
                ok=False, detail="server not connected",
            )
        timeout = self._settings.tool_timeout
        try:
            async with asyncio.timeout(timeout):
                result = await client.call_tool(tool, arguments)
        except TimeoutError:
            log.warning("MCP tool %s: %s did not answer within %g s", self.name, tool, timeout)
            self.check()
            return ToolResult(
                output=f"{which} did not answer within {_plural(timeout, 'second')} and was stopped. Answer "
                       "without it, or suggest trying again later.",
                ok=False, detail=f"no answer within {timeout:g} s",
            )
        except Exception as exc:  # an MCP error, a result that does not validate, a closed session
            reason = describe(exc)
            log.warning("MCP tool %s: %s failed: %s", self.name, tool, reason)
            self.check()
            return ToolResult(output=f"{which} failed: {reason}. Answer without it.", ok=False,
                              detail=_first_line(reason))
        text = render_result(result)
        output = bounded(text, self._settings.max_result_chars)
        if result.is_error:
            return ToolResult(output=f"The tool reported an error:\n{output}", ok=False,
                              detail=f"error: {_first_line(text)}")
        cut = " (cut)" if len(output) != len(text) else ""
        return ToolResult(output=output, detail=f"{_plural(len(text), 'character')}{cut}")


class McpServers:
    """Every MCP server of the configuration: connected in the background, offered as tools.

    `McpServers.from_config(config)`, `await start()` once the loop runs, `tools()` per turn,
    `await stop()` at shutdown (after the turns, so no call loses its session midway).
    """

    def __init__(
        self, servers: Sequence[ServerConfig], *, tool_timeout: float = 30.0,
        max_result_chars: int = MAX_OUTPUT_CHARS, connect_timeout: float = 30.0, check_interval: float = 60.0,
        base_backoff: float = 1.0, max_backoff: float = 60.0,
    ) -> None:
        settings = _Settings(tool_timeout, max_result_chars, connect_timeout, check_interval, base_backoff, max_backoff)
        self._settings = settings
        self._servers = [_Server(config, settings, self._notify) for config in servers]
        self._changed = asyncio.Event()
        self._started = False

    @classmethod
    def from_config(cls, config: Config, **options: Any) -> McpServers:
        """The servers of MCP_CONFIG_FILE with MCP_TOOL_TIMEOUT_SECONDS and MCP_MAX_RESULT_CHARS;
        `options` override the other keyword arguments (timeouts and backoff, for tests)."""
        return cls(
            config.mcp_servers, tool_timeout=config.mcp_tool_timeout_seconds,
            max_result_chars=config.mcp_max_result_chars, **options,
        )

    async def start(self) -> None:
        """Connect to every server, in the background; returns once each first attempt ended
        (connected, or down and logged), so the first turn already sees the tools."""
        if self._started:
            raise RuntimeError("McpServers.start() was already called")
        self._started = True
        for server in self._servers:
            server.task = asyncio.create_task(server.run(), name=f"mcp:{server.name}")
        if not self._servers:
            return
        try:
            await self.wait_until(
                lambda: all(s.attempted for s in self._servers),
                timeout=self._settings.connect_timeout + START_MARGIN_SECONDS,
            )
        except TimeoutError:
            pending = [s.name for s in self._servers if not s.attempted]
            log.warning("MCP servers still connecting after %g s: %s; carrying on",
                        self._settings.connect_timeout + START_MARGIN_SECONDS, ", ".join(pending))

    async def stop(self) -> None:
        """Close every session in its own task (stdio servers are told to exit, or killed)."""
        tasks = [s.task for s in self._servers if s.task is not None]
        for server in self._servers:
            server.request_stop()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
        for task in pending:
            log.warning("MCP connection %s did not close within %g s; cancelling it", task.get_name(),
                        STOP_GRACE_SECONDS)
            task.cancel()
        for task, outcome in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True)):
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                log.error("MCP connection %s ended with an error", task.get_name(), exc_info=outcome)

    def tools(self) -> list[Tool]:
        """The tools of the servers connected now (allowedTools applied), in configuration order."""
        return [tool for server in self._servers for tool in server.tools]

    def status(self) -> dict[str, ServerStatus]:
        """Each server's state (connecting, connected, down with the reason, stopped)."""
        return {server.name: server.status for server in self._servers}

    async def wait_until(self, condition: Callable[[], bool], timeout: float | None = None) -> None:
        """Return once `condition()` holds; it is checked whenever a server's state changes.
        TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed  # taken before the check: no change can slip between
                if condition():
                    return
                await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
