"""The bot as an MCP client, against real MCP servers of the SDK on loopback (no mocks).

Streamable HTTP: `MCPServer` under uvicorn in this process (tests/fakes/mcp_http.py), which
can restart on its port and demands a bearer token. Stdio: tests/fakes/mcp_stdio_server.py
run with this Python. Plus a port nobody listens on and commands that exit or do not exist.
Nothing waits a fixed time: every wait is for a condition, bounded by WAIT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from tools.base import ToolCall, ToolContext, ToolResult
from tools.mcp import McpServers, McpTool
from mcp_config import load_mcp_config
from tests.fakes.mcp_http import PNG, LoopbackMcpServer, closed_port

ROOT = Path(__file__).resolve().parents[2]
STDIO = {"command": sys.executable, "args": [str(ROOT / "tests" / "fakes" / "mcp_stdio_server.py")]}
TOKEN = "orders-token-7f3a9c"
CONTEXT = ToolContext(user_id="U1", channel_id="C1", thread_id="C1:1.0")
WAIT = 20.0
# Short backoffs so that reconnects happen quickly; no periodic check unless a test asks.
FAST: dict[str, Any] = {
    "tool_timeout": 10.0, "connect_timeout": 10.0, "check_interval": 300.0, "base_backoff": 0.05,
    "max_backoff": 0.2,
}

MakeServers = Callable[..., McpServers]


@pytest.fixture
async def http() -> AsyncIterator[LoopbackMcpServer]:
    async with LoopbackMcpServer(token=TOKEN) as server:
        yield server


@pytest.fixture
async def make_servers() -> AsyncIterator[MakeServers]:
    """`make_servers({"name": {...}}, environ={...}, tool_timeout=…)`: stopped after the test."""
    made: list[McpServers] = []

    def make(entries: dict[str, Any], environ: dict[str, str] | None = None, **options: Any) -> McpServers:
        configs = load_mcp_config(json.dumps({"mcpServers": entries}), environ or {})
        servers = McpServers(configs, **{**FAST, **options})
        made.append(servers)
        return servers

    yield make
    for servers in made:
        await servers.stop()


def orders(http: LoopbackMcpServer, **extra: Any) -> dict[str, Any]:
    return {"url": http.url, "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"}, **extra}


ENVIRON = {"ORDERS_TOKEN": TOKEN}


def by_name(servers: McpServers) -> dict[str, McpTool]:
    return {tool.name: tool for tool in servers.tools()}  # type: ignore[misc]


async def call(tool: McpTool, **arguments: Any) -> ToolResult:
    return await tool.run(ToolCall("call-1", tool.name, json.dumps(arguments)), CONTEXT)


def state(servers: McpServers, name: str) -> str:
    return servers.status()[name].state


def sessions(servers: McpServers, name: str) -> int:
    return servers.status()[name].sessions


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tools.mcp" and r.levelno >= logging.WARNING]


# --- listing, naming, filtering -----------------------------------------------------------


async def test_every_servers_tools_are_listed_prefixed_and_filtered(
    http: LoopbackMcpServer, make_servers: MakeServers, caplog: pytest.LogCaptureFixture
) -> None:
    servers = make_servers({
        "orders": orders(http, allowedTools=["lookup_order", "report.v2", "fail", "not_there"]),
        "files": STDIO,
    }, ENVIRON)
    await servers.start()
    tools = by_name(servers)
    # HTTP: only the allowed tools (admin_reset and the others are never offered); a dotted
    # name made safe. Stdio: five tools over three pages of tools/list, every page followed.
    assert list(tools) == [
        "orders__lookup_order", "orders__fail", "orders__report_v2",
        "files__echo", "files__pid", "files__env", "files__sleep", "files__odd_name_",
    ]
    lookup = tools["orders__lookup_order"]
    assert lookup.description == "Look up an order by its id."
    assert lookup.parameters()["properties"]["order_id"]["type"] == "string"
    assert lookup.parameters()["required"] == ["order_id"]
    assert lookup.title({"order_id": "A1"}) == "orders: lookup_order"
    assert tools["orders__report_v2"].title({}) == "orders: report.v2"
    assert tools["files__pid"].parameters() == {"type": "object", "properties": {}}
    assert lookup.declaration("responses")["name"] == "orders__lookup_order"  # type: ignore[index]
    status = servers.status()
    assert status["orders"].as_dict() == {
        "transport": "http", "state": "connected", "reason": None, "tools": 3, "failures": 0, "sessions": 1,
    }
    assert status["files"].state == "connected" and status["files"].tools == 5
    assert warnings(caplog) == ["MCP server 'orders' has no tools named not_there (allowedTools)"]


async def test_a_config_without_servers_offers_nothing(make_servers: MakeServers) -> None:
    servers = make_servers({})
    await servers.start()
    assert servers.tools() == [] and servers.status() == {}
    await servers.stop()


# --- calls --------------------------------------------------------------------------------


async def test_a_call_sends_its_arguments_and_returns_the_text(
    http: LoopbackMcpServer, make_servers: MakeServers
) -> None:
    servers = make_servers({"orders": orders(http), "files": STDIO}, ENVIRON)
    await servers.start()
    tools = by_name(servers)
    result = await call(tools["orders__lookup_order"], order_id="A-17")
    assert result == ToolResult(output="Order A-17: 2 parcels, shipped", ok=True, detail="30 characters")
    assert http.events.calls == ["lookup_order:A-17"]
    assert (await call(tools["files__echo"], text="hello from stdio")).output == "hello from stdio"
    assert (await call(tools["orders__add"], a=2, b=40)).output == "42"


async def test_a_long_result_is_cut_to_mcp_max_result_chars(
    http: LoopbackMcpServer, make_servers: MakeServers
) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON, max_result_chars=1000)
    await servers.start()
    result = await call(by_name(servers)["orders__big"], size=5000)
    assert result.ok and result.output.startswith("x" * 1000 + "\n[… cut: 4,000 more characters")
    assert "x" * 1001 not in result.output
    assert result.detail == "5,000 characters (cut)"


async def test_an_error_the_tool_reports_is_a_failed_result_for_the_model(
    http: LoopbackMcpServer, make_servers: MakeServers
) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON)
    await servers.start()
    tools = by_name(servers)
    result = await call(tools["orders__fail"], why="the warehouse is closed")
    assert not result.ok
    assert result.output == "The tool reported an error:\nError executing tool fail: cannot do that: the warehouse is closed"
    assert result.detail == "error: Error executing tool fail: cannot do that: the warehouse is closed"
    # Arguments the server's schema refuses come back the same way.
    refused = await call(tools["orders__add"], a="many")
    assert not refused.ok and "validation error" in refused.output
    assert state(servers, "orders") == "connected"


async def test_arguments_that_are_not_an_object_never_reach_the_server(
    http: LoopbackMcpServer, make_servers: MakeServers
) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON)
    await servers.start()
    tool = by_name(servers)["orders__lookup_order"]
    for arguments in ("[1, 2]", "{not json"):
        result = await tool.run(ToolCall("c", tool.name, arguments), CONTEXT)
        assert not result.ok and result.output.startswith("The arguments for orders__lookup_order must be a JSON")
    assert http.events.calls == []


async def test_pictures_in_a_result_are_named_not_sent(http: LoopbackMcpServer, make_servers: MakeServers) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON)
    await servers.start()
    result = await call(by_name(servers)["orders__picture"])
    assert result.ok and result.output == f"[image: image/png, {len(PNG)} bytes, not shown]"


async def test_a_call_that_takes_too_long_times_out_and_the_session_carries_on(
    http: LoopbackMcpServer, make_servers: MakeServers
) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON, tool_timeout=0.5)
    await servers.start()
    tools = by_name(servers)
    result = await call(tools["orders__slow"], seconds=60)
    assert result == ToolResult(
        output="The slow tool (MCP server 'orders') did not answer within 0.5 seconds and was stopped. "
               "Answer without it, or suggest trying again later.",
        ok=False, detail="no answer within 0.5 s",
    )
    assert (await call(tools["orders__add"], a=1, b=2)).output == "3"
    assert state(servers, "orders") == "connected"


async def test_a_cancelled_call_propagates_and_the_next_call_works(
    http: LoopbackMcpServer, make_servers: MakeServers
) -> None:
    servers = make_servers({"orders": orders(http), "files": STDIO}, ENVIRON)
    await servers.start()
    tools = by_name(servers)
    # The person presses Stop while the tool runs: the turn's task is cancelled.
    running = asyncio.create_task(call(tools["orders__slow"], seconds=60))
    async with asyncio.timeout(WAIT):
        await http.events.slow_started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    async with asyncio.timeout(WAIT):  # the server was told too: its tool was cancelled
        await http.events.slow_cancelled.wait()
    assert (await call(tools["orders__add"], a=20, b=22)).output == "42"
    # The same over stdio.
    sleeping = asyncio.create_task(call(tools["files__sleep"], seconds=60))
    await asyncio.sleep(0)  # let it send the request
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    assert (await call(tools["files__echo"], text="still here")).output == "still here"
    assert {s.state for s in servers.status().values()} == {"connected"}
    assert {s.failures for s in servers.status().values()} == {0}


# --- headers ------------------------------------------------------------------------------


async def test_the_authorization_header_carries_the_expanded_secret(
    http: LoopbackMcpServer, make_servers: MakeServers
) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON)
    await servers.start()
    assert state(servers, "orders") == "connected"
    assert (await call(by_name(servers)["orders__add"], a=1, b=1)).ok
    assert http.authorization_seen and set(http.authorization_seen) == {f"Bearer {TOKEN}"}


async def test_a_wrong_token_leaves_the_server_down_saying_why(
    http: LoopbackMcpServer, make_servers: MakeServers, caplog: pytest.LogCaptureFixture
) -> None:
    servers = make_servers({"orders": orders(http)}, {"ORDERS_TOKEN": "not-the-token"})
    await servers.start()
    status = servers.status()["orders"]
    assert status.state == "down" and status.reason is not None and status.reason.endswith("HTTP 401")
    assert servers.tools() == []
    assert set(http.authorization_seen) == {"Bearer not-the-token"}
    logged = warnings(caplog)
    assert len(logged) == 1 and logged[0].startswith("MCP server 'orders' is not available: ")
    assert "not-the-token" not in logged[0]


# --- servers that are down, fail, drop and come back ----------------------------------------


async def test_servers_that_are_down_or_exit_are_logged_once_and_do_not_stop_the_others(
    make_servers: MakeServers, caplog: pytest.LogCaptureFixture
) -> None:
    with closed_port() as port:
        servers = make_servers({
            "down": {"url": f"http://127.0.0.1:{port}/mcp"},
            "exits": {"command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]},
            "missing": {"command": str(ROOT / "no-such-command")},
            "files": STDIO,
        })
        await servers.start()
        status = servers.status()
        assert {name: s.state for name, s in status.items()} == {
            "down": "down", "exits": "down", "missing": "down", "files": "connected",
        }
        assert status["down"].reason == "cannot connect: All connection attempts failed"
        assert status["exits"].reason is not None and "closed the connection" in status["exits"].reason
        assert status["missing"].reason == f"command not found: {ROOT / 'no-such-command'}"
        assert [t.name for t in servers.tools()][0] == "files__echo"
        assert all(t.name.startswith("files__") for t in servers.tools())
        # They are retried in the background; the same reason again is not logged again.
        await servers.wait_until(lambda: all(s.failures >= 3 for n, s in servers.status().items() if n != "files"),
                                 timeout=WAIT)
    assert sorted(w.split(" is not available")[0] for w in warnings(caplog)) == [
        "MCP server 'down'", "MCP server 'exits'", "MCP server 'missing'",
    ]


async def test_a_tool_of_a_server_that_went_down_says_so(http: LoopbackMcpServer, make_servers: MakeServers) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON)
    await servers.start()
    add = by_name(servers)["orders__add"]
    await http.stop()
    failed = await call(add, a=1, b=2)
    assert not failed.ok and failed.output.startswith("The add tool (MCP server 'orders') failed: ")
    await servers.wait_until(lambda: state(servers, "orders") == "down", timeout=WAIT)
    assert servers.tools() == []
    # A turn that still holds the tool gets a sentence, not an exception.
    result = await call(add, a=1, b=2)
    assert result == ToolResult(
        output="The add tool (MCP server 'orders') is not available right now: the server is not connected "
               "(cannot connect: All connection attempts failed). Answer without it, and say so if it matters.",
        ok=False, detail="server not connected",
    )


async def test_the_http_server_restarting_is_reconnected(
    http: LoopbackMcpServer, make_servers: MakeServers, caplog: pytest.LogCaptureFixture
) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON)
    await servers.start()
    add = by_name(servers)["orders__add"]
    assert (await call(add, a=1, b=2)).ok
    await http.stop()
    assert not (await call(add, a=1, b=2)).ok  # the failed call makes the owner check at once
    await servers.wait_until(lambda: state(servers, "orders") == "down", timeout=WAIT)
    await http.start()
    await servers.wait_until(lambda: state(servers, "orders") == "connected", timeout=WAIT)
    assert (await call(by_name(servers)["orders__add"], a=2, b=3)).output == "5"
    assert (await call(add, a=3, b=4)).output == "7"  # the tool a turn kept works again too
    assert any("MCP server 'orders' lost its session" in r.getMessage() for r in caplog.records)


async def test_a_stdio_server_that_dies_is_started_again(make_servers: MakeServers) -> None:
    servers = make_servers({"files": STDIO})
    await servers.start()
    first = int((await call(by_name(servers)["files__pid"])).output)
    os.kill(first, signal.SIGKILL)
    failed = await call(by_name(servers)["files__pid"])
    assert not failed.ok
    await servers.wait_until(lambda: sessions(servers, "files") == 2 and state(servers, "files") == "connected",
                             timeout=WAIT)
    second = int((await call(by_name(servers)["files__pid"])).output)
    assert second != first


async def test_a_dropped_session_is_noticed_by_the_periodic_check(make_servers: MakeServers) -> None:
    servers = make_servers({"files": STDIO}, check_interval=0.05)
    await servers.start()
    first = int((await call(by_name(servers)["files__pid"])).output)
    os.kill(first, signal.SIGKILL)  # no call notices it: the re-listing does
    await servers.wait_until(lambda: sessions(servers, "files") == 2 and state(servers, "files") == "connected",
                             timeout=WAIT)
    assert int((await call(by_name(servers)["files__pid"])).output) != first


async def test_a_stdio_server_gets_its_env_and_not_the_bots_secrets(
    make_servers: MakeServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-bots-own-key")
    servers = make_servers({"files": {**STDIO, "env": {"FILES_KEY": "${FILES_KEY}"}}}, {"FILES_KEY": "key-123"})
    await servers.start()
    env = by_name(servers)["files__env"]
    assert (await call(env, name="FILES_KEY")).output == "key-123"
    assert (await call(env, name="OPENAI_API_KEY")).output == "(unset)"


# --- stop ---------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_stop_leaves_no_tasks_or_processes_behind(make_servers: MakeServers) -> None:
    before = asyncio.all_tasks()
    with closed_port() as port:
        servers = make_servers({
            "files": STDIO, "more": STDIO, "down": {"url": f"http://127.0.0.1:{port}/mcp"},
            "exits": {"command": sys.executable, "args": ["-c", "raise SystemExit(1)"]},
        })
        await servers.start()
        pids = [int((await call(by_name(servers)[f"{name}__pid"])).output) for name in ("files", "more")]
        assert all(_alive(pid) for pid in pids)
        await servers.stop()
    assert not any(_alive(pid) for pid in pids)
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == [], [t.get_coro() for t in left]
    assert {s.state for s in servers.status().values()} == {"stopped"}
    assert servers.tools() == []
    await servers.stop()  # twice is harmless


async def test_stop_while_a_server_is_still_connecting(make_servers: MakeServers, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    # Starts, writes its pid, then never answers: the first attempt is still under way.
    silent = {"command": sys.executable, "args": [
        "-c", "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid())); sys.stdin.read()", str(pid_file),
    ]}
    before = asyncio.all_tasks()
    servers = make_servers({"silent": silent}, connect_timeout=60.0)
    starting = asyncio.create_task(servers.start())
    async with asyncio.timeout(WAIT):
        while not pid_file.exists() or not pid_file.read_text():  # a condition: the process runs
            await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    assert state(servers, "silent") == "connecting" and servers.tools() == []
    await servers.stop()
    await starting
    assert not _alive(pid)
    assert [t for t in asyncio.all_tasks() - before if not t.done()] == []


async def test_stop_with_a_live_http_session(http: LoopbackMcpServer, make_servers: MakeServers) -> None:
    servers = make_servers({"orders": orders(http)}, ENVIRON)
    await servers.start()
    add = by_name(servers)["orders__add"]
    assert (await call(add, a=1, b=1)).ok
    await servers.stop()
    assert state(servers, "orders") == "stopped" and servers.tools() == []
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("mcp:")]
    # The tool a turn kept answers with a sentence after stop too.
    late = await call(add, a=1, b=1)
    assert not late.ok and late.detail == "server not connected"
