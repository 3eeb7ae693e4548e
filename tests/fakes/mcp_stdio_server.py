"""A real MCP server over stdio, for tests: `python tests/fakes/mcp_stdio_server.py`.

Built on the SDK's low-level `Server` so that it can page its tool list (two tools a page):
the client must follow `nextCursor`. Its tools tell the test what the process is (`pid`) and
what environment it got (`env`), so tests can see that `${VAR}`s arrived and that stop() ended it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

PAGE_SIZE = 2
TOOLS = [
    types.Tool(
        name="echo", description="Say the text back.",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ),
    types.Tool(name="pid", description="This server's process id.", input_schema={"type": "object"}),
    types.Tool(
        name="env", description="The value of one environment variable.",
        input_schema={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    ),
    types.Tool(
        name="sleep", description="Wait, then answer.",
        input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
    ),
    types.Tool(name="odd name!", description="A name a function tool cannot have.",
               input_schema={"type": "object", "properties": {}}),
]


async def list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    start = int(params.cursor) if params is not None and params.cursor else 0
    end = start + PAGE_SIZE
    return types.ListToolsResult(tools=TOOLS[start:end], next_cursor=str(end) if end < len(TOOLS) else None)


async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    arguments = params.arguments or {}
    if params.name == "echo":
        text = str(arguments.get("text", ""))
    elif params.name == "pid":
        text = str(os.getpid())
    elif params.name == "env":
        text = os.environ.get(str(arguments.get("name")), "(unset)")
    elif params.name == "sleep":
        await asyncio.sleep(float(arguments.get("seconds", 0)))
        text = "slept"
    else:
        return types.CallToolResult(content=[types.TextContent(text=f"no tool {params.name}")], is_error=True)
    return types.CallToolResult(content=[types.TextContent(text=text)])


async def main() -> None:
    server = Server("stdio-test", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    asyncio.run(main())
