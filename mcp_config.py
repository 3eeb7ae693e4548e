"""The `mcpServers` file (MCP_CONFIG_FILE), parsed and checked as a whole.

Pure: text and an environment in, `ServerConfig`s or every problem out, so `config.load_config`
can list them with the other settings' problems and stop the bot before it connects anywhere.
It imports nothing from the MCP SDK (that is `tools/mcp.py`'s business).

The format is the one Claude Desktop, Cursor and VS Code use, so a file can be copied over:

    {"mcpServers": {
        "orders": {"url": "https://…/mcp", "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"},
                   "allowedTools": ["lookup_order"]},
        "files": {"command": "python", "args": ["server.py"], "env": {"KEY": "${FILES_KEY}"}}}}

`url` (+ `headers`) is streamable HTTP, `command` (+ `args`, `env`) is stdio. `${VAR}` in any
string value is replaced from the environment (the file can then be committed without its
secrets); a variable that is unset or empty is a problem, not an empty string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping
from urllib.parse import urlparse

Transport = Literal["http", "stdio"]
# Server names become the prefix of tool names (`<server>__<tool>`, 64 characters at most for
# OpenAI), so they are short, and a name without "__" and no trailing "_" keeps the prefix
# unambiguous: two servers can never produce the same tool name.
SERVER_NAME = re.compile(r"[a-zA-Z0-9_-]{1,32}")
MAX_SERVER_NAME = 32
SERVER_KEYS = ("type", "url", "headers", "command", "args", "env", "allowedTools")
# `type` is optional (Claude Code and VS Code write it); when present it must match the shape.
TYPES: dict[str, Transport] = {"http": "http", "streamable-http": "http", "streamableHttp": "http", "stdio": "stdio"}
VARIABLE = re.compile(r"\$\{([^}]*)\}")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class McpConfigError(Exception):
    """Every problem in the file, one line each (`config.py` prefixes them with the setting)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server, with every `${VAR}` already replaced.

    Headers and env are tuples of pairs (the config stays hashable). Only the name and the
    allowed tools are in the repr: any other value may carry a secret (a token in a header, an
    argument or a URL), and a config is the kind of thing that gets logged.
    """

    name: str
    url: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    command: str | None = field(default=None, repr=False)
    args: tuple[str, ...] = field(default=(), repr=False)
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # None: every tool the server lists; otherwise only these (the server's own names).
    allowed_tools: tuple[str, ...] | None = None
    # The values that came from variables: never logged (see Config.secrets).
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def transport(self) -> Transport:
        return "http" if self.url is not None else "stdio"


@dataclass
class _Checker:
    environ: Mapping[str, str]
    problems: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def expand(self, where: str, value: str) -> str:
        """`value` with each `${VAR}` replaced; a missing or malformed one is a problem."""

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if not VARIABLE_NAME.fullmatch(name):
                self.problems.append(f"{where}: ${{{name}}} is not a variable name (letters, digits, _)")
                return ""
            found = (self.environ.get(name) or "").strip()
            if not found:
                self.problems.append(f"{where} uses ${{{name}}}, which is not set in the environment")
                return ""
            self.secrets.append(found)
            return found

        expanded = VARIABLE.sub(substitute, value)
        if "${" in VARIABLE.sub("", value):
            self.problems.append(f"{where}: '${{' without a closing '}}'")
        return expanded

    def string(self, where: str, value: Any) -> str | None:
        if not isinstance(value, str):
            self.problems.append(f"{where} must be a string, not {_kind(value)}")
            return None
        return self.expand(where, value)

    def strings(self, where: str, value: Any) -> tuple[str, ...] | None:
        if not isinstance(value, list):
            self.problems.append(f"{where} must be a list of strings, not {_kind(value)}")
            return None
        items = [self.string(f"{where}[{i}]", item) for i, item in enumerate(value)]
        return None if any(item is None for item in items) else tuple(item for item in items if item is not None)

    def pairs(self, where: str, value: Any) -> tuple[tuple[str, str], ...] | None:
        if not isinstance(value, dict):
            self.problems.append(f"{where} must be an object of strings, not {_kind(value)}")
            return None
        pairs = [(key, self.string(f"{where}.{key}", item)) for key, item in value.items()]
        if any(item is None for _, item in pairs):
            return None
        return tuple((key, item) for key, item in pairs if item is not None)

    def server(self, name: str, entry: Any) -> ServerConfig | None:
        where = f"mcpServers.{name}"
        before = len(self.problems)
        if not SERVER_NAME.fullmatch(name):
            self.problems.append(
                f"{where}: a server name is 1 to {MAX_SERVER_NAME} of a-z, A-Z, 0-9, _ and - "
                f"(it starts the names of its tools)"
            )
        elif "__" in name or name.endswith("_"):
            self.problems.append(f"{where}: a server name may not contain '__' or end with '_' "
                                 f"(tools are named <server>__<tool>)")
        if not isinstance(entry, dict):
            self.problems.append(f"{where} must be an object, not {_kind(entry)}")
            return None
        unknown = [key for key in entry if key not in SERVER_KEYS]
        for key in unknown:
            self.problems.append(f"{where}: unknown key {key!r} (use {', '.join(SERVER_KEYS)})")
        has_url, has_command = "url" in entry, "command" in entry
        if has_url and has_command:
            self.problems.append(f"{where} has both url and command: use url for streamable HTTP "
                                 f"or command for stdio, not both")
            return None
        if not has_url and not has_command:
            self.problems.append(f"{where} needs url (streamable HTTP) or command (stdio)")
            return None
        transport: Transport = "http" if has_url else "stdio"
        for key in (("headers",) if transport == "stdio" else ("args", "env")):
            if key in entry:
                self.problems.append(f"{where}: {key} is for {'url' if key == 'headers' else 'command'} servers")
        if "type" in entry:
            declared = TYPES.get(entry["type"]) if isinstance(entry["type"], str) else None
            if entry["type"] == "sse":
                self.problems.append(f"{where}: the SSE transport is not supported, only streamable HTTP")
            elif declared is None:
                self.problems.append(f"{where}: type {entry['type']!r} is not one of {', '.join(TYPES)}")
            elif declared != transport:
                self.problems.append(f"{where}: type {entry['type']!r} does not match its "
                                     f"{'url' if has_url else 'command'}")
        allowed = None
        if "allowedTools" in entry:
            allowed = self.strings(f"{where}.allowedTools", entry["allowedTools"])
        if transport == "http":
            problems = len(self.problems)
            url = self.string(f"{where}.url", entry["url"])
            if url is not None and len(self.problems) == problems:
                parsed = urlparse(url)
                if parsed.scheme not in ("http", "https") or not parsed.netloc:
                    self.problems.append(f"{where}.url {url!r} is not an http or https URL")
            headers = self.pairs(f"{where}.headers", entry.get("headers", {}))
            if len(self.problems) > before:
                return None
            return ServerConfig(name, url=url, headers=headers or (), allowed_tools=allowed)
        command = self.string(f"{where}.command", entry["command"])
        if command is not None and not command.strip():
            self.problems.append(f"{where}.command is empty")
        args = self.strings(f"{where}.args", entry.get("args", []))
        env = self.pairs(f"{where}.env", entry.get("env", {}))
        if len(self.problems) > before:
            return None
        return ServerConfig(name, command=command, args=args or (), env=env or (), allowed_tools=allowed)


def _kind(value: Any) -> str:
    """How a JSON value is called in a problem line."""
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key written twice is a problem (json.loads would keep the last)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"{key!r} appears twice in one object")
        result[key] = value
    return result


def load_mcp_config(text: str, environ: Mapping[str, str]) -> list[ServerConfig]:
    """The servers of an `mcpServers` file, or `McpConfigError` listing every problem."""
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise McpConfigError([f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]) from None
    except ValueError as exc:
        raise McpConfigError([f"not valid: {exc}"]) from None
    if not isinstance(document, dict):
        raise McpConfigError([f'must be an object like {{"mcpServers": {{…}}}}, not {_kind(document)}'])
    problems = [f"unknown key {key!r} at the top (only mcpServers)" for key in document if key != "mcpServers"]
    servers = document.get("mcpServers")
    if servers is None:
        raise McpConfigError([*problems, 'has no "mcpServers" object'])
    if not isinstance(servers, dict):
        raise McpConfigError([*problems, f"mcpServers must be an object of servers, not {_kind(servers)}"])
    checker = _Checker(environ, problems)
    configs: list[ServerConfig] = []
    for name, entry in servers.items():
        start = len(checker.secrets)
        server = checker.server(name, entry)
        if server is not None:
            configs.append(replace(server, secrets=tuple(dict.fromkeys(checker.secrets[start:]))))
    if checker.problems:
        raise McpConfigError(checker.problems)
    return configs


