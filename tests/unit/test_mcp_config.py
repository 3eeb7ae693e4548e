"""MCP_CONFIG_FILE: the mcpServers format, `${VAR}`s, and one clear line per problem.

Also the pure parts of tools/mcp.py: tool names, schemas, and how a result becomes text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import types

import main
from config import ConfigError, load_config
from tools.base import ToolCall
from tools.mcp import object_schema, render_result, tool_name
from mcp_config import McpConfigError, ServerConfig, load_mcp_config

ROOT = Path(__file__).resolve().parents[2]
VALID_ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "OPENAI_API_KEY": "sk-1"}
ENVIRON = {"ORDERS_TOKEN": "orders-secret-123", "FILES_KEY": "files-key-456"}
EXAMPLE = {
    "mcpServers": {
        "orders": {
            "url": "https://orders.example.com/mcp",
            "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"},
            "allowedTools": ["lookup_order"],
        },
        "files": {"command": "python", "args": ["server.py", "--key=${FILES_KEY}"], "env": {"KEY": "${FILES_KEY}"}},
    }
}


def problems_of(document: Any, environ: dict[str, str] | None = None) -> list[str]:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(McpConfigError) as caught:
        load_mcp_config(text, ENVIRON if environ is None else environ)
    return caught.value.problems


def servers(entries: dict[str, Any]) -> dict[str, Any]:
    return {"mcpServers": entries}


# --- the good case ------------------------------------------------------------------------


def test_the_documented_example_parses_with_every_variable_expanded() -> None:
    orders, files = load_mcp_config(json.dumps(EXAMPLE), ENVIRON)
    assert orders == ServerConfig(
        "orders", url="https://orders.example.com/mcp",
        headers=(("Authorization", "Bearer orders-secret-123"),), allowed_tools=("lookup_order",),
    )
    assert orders.transport == "http" and orders.secrets == ("orders-secret-123",)
    assert files.transport == "stdio"
    assert files.command == "python" and files.args == ("server.py", "--key=files-key-456")
    assert files.env == (("KEY", "files-key-456"),) and files.allowed_tools is None
    assert files.secrets == ("files-key-456",)  # once, though used twice


def test_secrets_stay_out_of_the_repr() -> None:
    orders, files = load_mcp_config(json.dumps(EXAMPLE), ENVIRON)
    assert repr(orders) == "ServerConfig(name='orders', allowed_tools=('lookup_order',))"
    assert "files-key-456" not in repr(files) and "files-key-456" not in repr([orders, files])


def test_variables_are_expanded_in_every_string_value_and_only_there() -> None:
    environ = {"HOST": "mcp.example.com", "TOOL": "search", "BIN": "/usr/bin/node"}
    http, stdio = load_mcp_config(json.dumps(servers({
        "web": {"url": "https://${HOST}/mcp", "headers": {"X-${HOST}": "v"}, "allowedTools": ["${TOOL}"]},
        "node": {"command": "${BIN}", "args": ["a", "${TOOL}-b"]},
    })), environ)
    assert http.url == "https://mcp.example.com/mcp" and http.allowed_tools == ("search",)
    assert http.headers == (("X-${HOST}", "v"),)  # names are not values
    assert stdio.command == "/usr/bin/node" and stdio.args == ("a", "search-b")


def test_optional_parts_and_a_matching_type_are_accepted() -> None:
    configs = load_mcp_config(json.dumps(servers({
        "a": {"url": "http://127.0.0.1:8000/mcp"},
        "b-2": {"command": "server", "type": "stdio"},
        "C_3": {"url": "http://x/mcp", "type": "http", "allowedTools": []},
    })), {})
    assert [(c.name, c.transport) for c in configs] == [("a", "http"), ("b-2", "stdio"), ("C_3", "http")]
    assert configs[2].allowed_tools == ()
    assert load_mcp_config('{"mcpServers": {}}', {}) == []


# --- one line per problem -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
    ("", "not valid JSON"),
    ("[]", 'must be an object like {"mcpServers": {…}}, not a list'),
    ("{}", 'has no "mcpServers" object'),
    ('{"mcpServers": []}', "mcpServers must be an object of servers, not a list"),
    ('{"mcpServers": {"a": {"url": "http://x/mcp"}, "a": {"command": "c"}}}', "not valid: 'a' appears twice"),
])
def test_a_file_that_is_not_an_mcp_servers_object(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize(("entries", "expected"), [
    ({"orders": {"url": "http://x/mcp", "header": {}}}, "mcpServers.orders: unknown key 'header' (use type, url,"),
    ({"orders": {"headers": {}}}, "mcpServers.orders needs url (streamable HTTP) or command (stdio)"),
    ({"x": {"url": "http://x/mcp", "command": "c"}}, "mcpServers.x has both url and command"),
    ({"my.server": {"url": "http://x/mcp"}}, "mcpServers.my.server: a server name is 1 to 32 of a-z"),
    ({"": {"url": "http://x/mcp"}}, "mcpServers.: a server name is 1 to 32"),
    ({"a" * 33: {"url": "http://x/mcp"}}, f"mcpServers.{'a' * 33}: a server name is 1 to 32"),
    ({"a__b": {"url": "http://x/mcp"}}, "mcpServers.a__b: a server name may not contain '__' or end with '_'"),
    ({"ab_": {"url": "http://x/mcp"}}, "mcpServers.ab_: a server name may not contain '__'"),
    ({"x": "http://x/mcp"}, "mcpServers.x must be an object, not a string"),
    ({"x": {"url": "ftp://x/mcp"}}, "mcpServers.x.url 'ftp://x/mcp' is not an http or https URL"),
    ({"x": {"url": "/mcp"}}, "mcpServers.x.url '/mcp' is not an http or https URL"),
    ({"x": {"url": 8000}}, "mcpServers.x.url must be a string, not a number"),
    ({"x": {"url": "http://x/mcp", "headers": ["Authorization: x"]}}, "mcpServers.x.headers must be an object"),
    ({"x": {"url": "http://x/mcp", "headers": {"A": 1}}}, "mcpServers.x.headers.A must be a string, not a number"),
    ({"x": {"url": "http://x/mcp", "args": ["a"]}}, "mcpServers.x: args is for command servers"),
    ({"x": {"command": "c", "headers": {}}}, "mcpServers.x: headers is for url servers"),
    ({"x": {"command": ""}}, "mcpServers.x.command is empty"),
    ({"x": {"command": ["python", "s.py"]}}, "mcpServers.x.command must be a string, not a list"),
    ({"x": {"command": "c", "args": "s.py"}}, "mcpServers.x.args must be a list of strings, not a string"),
    ({"x": {"command": "c", "args": ["s.py", 2]}}, "mcpServers.x.args[1] must be a string, not a number"),
    ({"x": {"command": "c", "env": {"K": True}}}, "mcpServers.x.env.K must be a string, not true/false"),
    ({"x": {"command": "c", "allowedTools": "a"}}, "mcpServers.x.allowedTools must be a list of strings"),
    ({"x": {"command": "c", "type": "sse"}}, "mcpServers.x: the SSE transport is not supported"),
    ({"x": {"command": "c", "type": "http"}}, "mcpServers.x: type 'http' does not match its command"),
    ({"x": {"url": "http://x/mcp", "type": "websocket"}}, "mcpServers.x: type 'websocket' is not one of"),
])
def test_each_bad_server_is_one_clear_line(entries: dict[str, Any], expected: str) -> None:
    problems = problems_of(servers(entries))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize(("value", "expected"), [
    ("Bearer ${MISSING}", "mcpServers.x.headers.Authorization uses ${MISSING}, which is not set in the environment"),
    ("Bearer ${EMPTY}", "mcpServers.x.headers.Authorization uses ${EMPTY}, which is not set"),
    ("Bearer ${ORDERS-TOKEN}", "mcpServers.x.headers.Authorization: ${ORDERS-TOKEN} is not a variable name"),
    ("Bearer ${}", "mcpServers.x.headers.Authorization: ${} is not a variable name"),
    ("Bearer ${ORDERS_TOKEN", "mcpServers.x.headers.Authorization: '${' without a closing '}'"),
])
def test_a_variable_that_is_missing_or_malformed_is_a_problem(value: str, expected: str) -> None:
    problems = problems_of(servers({"x": {"url": "http://x/mcp", "headers": {"Authorization": value}}}),
                           {**ENVIRON, "EMPTY": "  "})
    assert problems == [expected] or (len(problems) == 1 and problems[0].startswith(expected)), problems


def test_a_misspelt_url_says_both_what_is_unknown_and_what_is_missing() -> None:
    assert problems_of(servers({"orders": {"urll": "http://x/mcp"}})) == [
        "mcpServers.orders: unknown key 'urll' (use type, url, headers, command, args, env, allowedTools)",
        "mcpServers.orders needs url (streamable HTTP) or command (stdio)",
    ]


def test_every_problem_of_every_server_is_listed_at_once() -> None:
    problems = problems_of({
        "mcpServers": {
            "ok": {"url": "http://x/mcp"},
            "bad name": {"url": "http://x/mcp"},
            "both": {"url": "http://x/mcp", "command": "c"},
            "stdio": {"command": "c", "env": {"K": "${NOPE}"}, "extra": 1},
        },
        "mcpservers": {},
    })
    assert problems == [
        "unknown key 'mcpservers' at the top (only mcpServers)",
        "mcpServers.bad name: a server name is 1 to 32 of a-z, A-Z, 0-9, _ and - (it starts the names of its tools)",
        "mcpServers.both has both url and command: use url for streamable HTTP or command for stdio, not both",
        "mcpServers.stdio: unknown key 'extra' (use type, url, headers, command, args, env, allowedTools)",
        "mcpServers.stdio.env.K uses ${NOPE}, which is not set in the environment",
    ]


@pytest.mark.parametrize("document", ["docs/configuration.md", "README.md"])
def test_the_examples_in_the_docs_are_valid(document: str) -> None:
    text = (ROOT / document).read_text()
    blocks = [b for b in re.findall(r"```json\n(.*?)```", text, re.S) if "mcpServers" in b]
    assert blocks, f"{document} shows an mcpServers example"
    for block in blocks:
        configs = load_mcp_config(block, {"ORDERS_TOKEN": "t-1", "FILES_KEY": "k-1"})
        assert [(c.name, c.transport) for c in configs] == [("orders", "http"), ("files", "stdio")]


# --- wired into config.py -----------------------------------------------------------------


def test_no_file_means_no_servers_and_the_defaults() -> None:
    config = load_config(VALID_ENV)
    assert config.mcp_config_file == "" and config.mcp_servers == ()
    assert config.mcp_tool_timeout_seconds == 30 and config.mcp_max_result_chars == 20_000


def test_the_file_is_read_with_variables_from_the_same_environment() -> None:
    read: list[str] = []

    def read_text(path: str) -> str:
        read.append(path)
        return json.dumps(EXAMPLE)

    env = {**VALID_ENV, **ENVIRON, "MCP_CONFIG_FILE": "mcp.json", "MCP_TOOL_TIMEOUT_SECONDS": "5",
           "MCP_MAX_RESULT_CHARS": "1000"}
    config = load_config(env, read_text=read_text)
    assert read == ["mcp.json"]
    assert [s.name for s in config.mcp_servers] == ["orders", "files"]
    assert config.mcp_tool_timeout_seconds == 5 and config.mcp_max_result_chars == 1000
    # The expanded secrets are redacted from the log like the bot's own tokens.
    assert {"orders-secret-123", "files-key-456", "xoxb-1"} <= set(config.secrets)


def test_a_bad_file_is_listed_with_the_other_problems() -> None:
    env = {**VALID_ENV, "MCP_CONFIG_FILE": "mcp.json", "MCP_TOOL_TIMEOUT_SECONDS": "0", "OPENAI_MODEL": "m"}
    with pytest.raises(ConfigError) as caught:
        load_config(env, read_text=lambda path: json.dumps(servers({"x": {"url": "http://x/mcp", "cmd": "c"}})))
    assert caught.value.problems == [
        "MCP_CONFIG_FILE='mcp.json': mcpServers.x: unknown key 'cmd' (use type, url, headers, command, args, env, "
        "allowedTools)",
        "MCP_TOOL_TIMEOUT_SECONDS=0 is out of range: use 0.1 to 3600",
    ]


def test_a_file_that_cannot_be_read(tmp_path: Any) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID_ENV, "MCP_CONFIG_FILE": str(missing)})
    assert caught.value.problems == [f"MCP_CONFIG_FILE={str(missing)!r} cannot be read: No such file or directory"]
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID_ENV, "MCP_CONFIG_FILE": str(binary)})
    assert caught.value.problems[0].startswith(f"MCP_CONFIG_FILE={str(binary)!r} cannot be read: 'utf-8' codec")


def test_a_bad_file_stops_the_bot_with_exit_2_and_one_line_per_problem(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(servers({"orders": {"url": "http://x/mcp", "headers": {"A": "${ORDERS_TOKEN}"}},
                                        "two": {"url": "http://x/mcp", "command": "c"}})))
    for name, value in {**VALID_ENV, "MCP_CONFIG_FILE": str(path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ORDERS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout is read
    assert main.main([]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "Configuration problems:",
        f"  - MCP_CONFIG_FILE={str(path)!r}: mcpServers.orders.headers.A uses ${{ORDERS_TOKEN}}, which is not set "
        "in the environment",
        f"  - MCP_CONFIG_FILE={str(path)!r}: mcpServers.two has both url and command: use url for streamable HTTP "
        "or command for stdio, not both",
    ]


# --- names, schemas, results (tools/mcp.py, pure) -------------------------------------------


def test_tool_names_are_prefixed_safe_and_unique() -> None:
    taken: set[str] = set()
    assert tool_name("orders", "lookup_order", taken) == "orders__lookup_order"
    assert tool_name("orders", "report.v2", taken) == "orders__report_v2"
    # A second tool that sanitises to a taken name gets a stable hash of its own name.
    clash = tool_name("orders", "report_v2", taken)
    assert clash.startswith("orders__report_v2_") and clash != "orders__report_v2"
    assert clash == tool_name("orders", "report_v2", {"orders__report_v2"})
    long = tool_name("orders", "a" * 100, taken)
    other = tool_name("orders", "a" * 99 + "b", taken)
    assert len(long) == len(other) == 64 and long != other
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) for name in taken)


def test_parameters_are_an_object_schema() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    assert object_schema(schema) == schema and object_schema(schema) is not schema
    assert object_schema({"type": "object"}) == {"type": "object", "properties": {}}
    assert object_schema({}) == {"type": "object", "properties": {}}
    assert object_schema({"type": "string"}) == {"type": "object", "properties": {}}
    assert object_schema(None) == {"type": "object", "properties": {}}


def test_a_result_is_its_text_with_other_content_named_briefly() -> None:
    result = types.CallToolResult(content=[
        types.TextContent(text="first"),
        types.ImageContent(data="A" * 4096, mime_type="image/png"),
        types.AudioContent(data="AAAA", mime_type="audio/wav"),
        types.ResourceLink(name="report", uri="file:///r.pdf"),
        types.EmbeddedResource(resource=types.TextResourceContents(uri="mem://note", text="embedded text")),
        types.EmbeddedResource(resource=types.BlobResourceContents(uri="mem://blob", blob="AAAA", mime_type="x/y")),
        types.TextContent(text="last"),
    ])
    assert render_result(result).split("\n") == [
        "first",
        "[image: image/png, 3 KB, not shown]",
        "[audio: audio/wav, 3 bytes, not shown]",
        "[resource link: report <file:///r.pdf>]",
        "[resource mem://note]",
        "embedded text",
        "[resource mem://blob: x/y, 3 bytes, not shown]",
        "last",
    ]


def test_a_result_without_content() -> None:
    assert render_result(types.CallToolResult(content=[], structured_content={"n": 1})) == '{"n": 1}'
    assert render_result(types.CallToolResult(content=[])) == "(the tool returned nothing)"


def test_declarations_use_the_prefixed_name_and_the_schema() -> None:
    from tools.mcp import McpTool

    class Owner:  # what McpTool needs of its server when it is only declared
        name = "files"

    tool = McpTool(Owner(), types.Tool(name="odd name!", input_schema={"type": "object"}), "files__odd_name_")  # type: ignore[arg-type]
    assert tool.declaration("responses") == {
        "type": "function", "name": "files__odd_name_",
        "description": "The odd name! tool of the files MCP server.",
        "parameters": {"type": "object", "properties": {}},
    }
    assert tool.declaration("chat_completions")["function"]["name"] == "files__odd_name_"  # type: ignore[index]
    assert tool.title({}) == "files: odd name!"
    assert ToolCall("c", tool.name, "").parsed() == {}
