"""The team's own tools in a real turn: the bot connects to MCP servers from MCP_CONFIG_FILE
(a real SDK server over streamable HTTP, one over stdio, one that is down) and the model calls
them, in both API styles."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest

from tests.fakes.mcp_http import LoopbackMcpServer
from tests.fakes.openai import FakeOpenAI, FunctionCall, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "mcp-secret-token"


@pytest.fixture
async def orders() -> AsyncIterator[LoopbackMcpServer]:
    async with LoopbackMcpServer(token=TOKEN) as server:
        yield server


def mcp_file(tmp_path: Path, orders: LoopbackMcpServer) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "orders": {"url": orders.url, "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"},
                   "allowedTools": ["lookup_order"]},
        "files": {"command": sys.executable, "args": [str(ROOT / "tests" / "fakes" / "mcp_stdio_server.py")]},
        "down": {"url": "http://127.0.0.1:9/mcp"},
    }}))
    return str(path)


@pytest.mark.parametrize("style", ["responses", "chat_completions"])
async def test_the_model_calls_the_teams_mcp_tools_and_a_down_server_is_left_out(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, orders: LoopbackMcpServer, tmp_path: Path, style: str,
):
    app = await start_bot(MCP_CONFIG_FILE=mcp_file(tmp_path, orders), ORDERS_TOKEN=TOKEN,  # ${ORDERS_TOKEN} comes from the environment
                          OPENAI_API_STYLE=style, OPENAI_IMAGE_MODEL="off")
    status = {name: s.as_dict()["state"] for name, s in app.mcp.status().items()}
    assert status == {"orders": "connected", "files": "connected", "down": "down"}
    openai.script(
        Reply(calls=[FunctionCall("orders__lookup_order", {"order_id": "A7"}, call_id="o1"),
                     FunctionCall("files__echo", {"text": "from stdio"}, call_id="f1")]),
        Reply(text="A7 has 2 parcels."),
    )
    ts = await slack.user_says("U0ALICE", "D0ALICE", "where is A7?")

    assert await wait_replies(slack, "D0ALICE", ts, timeout=15) == ["A7 has 2 parcels."]
    await app.processor.wait_idle()
    first, second = (openai.responses_requests() if style == "responses" else openai.chat_requests())
    declared = openai.declared_tools(first)
    assert "orders__lookup_order" in declared and "files__echo" in declared
    assert not any(name.startswith("down__") for name in declared)
    assert "orders__add" not in declared  # not in allowedTools
    outputs = (
        {o["call_id"]: o["output"] for o in openai.function_outputs(second)} if style == "responses"
        else {m["tool_call_id"]: m["content"] for m in openai.tool_messages(second)}
    )
    assert outputs == {"o1": "Order A7: 2 parcels, shipped", "f1": "from stdio"}
    assert orders.events.calls == ["lookup_order:A7"]
    recorded = sorted((r["tool"], r["outcome"]) for r in await app.db.tool_calls("D0ALICE", ts))
    assert recorded == [("files__echo", "ok"), ("orders__lookup_order", "ok")]


async def test_people_switch_the_teams_tool_servers_off_and_admins_set_everyones_default(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, orders: LoopbackMcpServer, tmp_path: Path,
):
    from tests.integration.test_settings import blocks_of, open_settings, submit

    slack.add_user("U0ADMIN", "admin", display_name="Admin")
    slack.add_channel("D0ADMIN", "admin", is_im=True, user="U0ADMIN")
    await start_bot(MCP_CONFIG_FILE=mcp_file(tmp_path, orders), ORDERS_TOKEN=TOKEN, OPENAI_IMAGE_MODEL="off",
                    ADMIN_USER_IDS="U0ADMIN")
    view_id, view = await open_settings(slack)
    groups = blocks_of(view)["tool_groups"]["element"]
    assert [o["value"] for o in groups["options"]] == ["orders", "files", "down"]
    assert [o["value"] for o in groups["initial_options"]] == ["orders", "files", "down"]
    await submit(slack, view_id, view, tool_groups=["files"])  # Alice: no orders, no down

    admin_view_id, admin_view = await open_settings(slack, user="U0ADMIN")
    await submit(slack, admin_view_id, admin_view, user="U0ADMIN", scope="workspace",
                 tool_groups=["orders", "down"])  # everyone's default: files off

    asked = []
    for user, channel in (("U0ALICE", "D0ALICE"), ("U0BOB", "D0BOB")):
        ts = await slack.user_says(user, channel, "which tools?")
        await wait_replies(slack, channel, ts, timeout=15)
        asked.append(openai.declared_tools(openai.responses_requests()[-1]))
    alice, bob = asked
    assert "files__echo" in alice and not any(t.startswith("orders__") for t in alice)
    assert "orders__lookup_order" in bob and not any(t.startswith("files__") for t in bob)
