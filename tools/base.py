"""What every tool the model may call is, to the turn loop.

A tool is either *hosted* (declared in the request; the provider runs it, e.g. OpenAI's
`web_search`) or *local* (a function tool: the model asks, the bot runs `run` and sends the
output back in the next round). The turn loop knows tools only through this interface: a new
tool is one module with one `Tool` subclass, added to the registry.

Pure: no I/O here. A local tool's `run` does its own I/O and is cancelled like any task (the
turn's stop or deadline cancels it); it must not swallow `CancelledError`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

ApiStyle = Literal["responses", "chat_completions"]
# A tool result longer than this many characters is cut (with a note) before the model sees it.
MAX_OUTPUT_CHARS = 20_000


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for."""

    call_id: str
    name: str
    arguments: str  # JSON text, as the model wrote it

    def parsed(self) -> dict[str, Any]:
        """The arguments as an object; `{}` for empty, ValueError for anything else."""
        if not self.arguments.strip():
            return {}
        value = json.loads(self.arguments)
        if not isinstance(value, dict):
            raise ValueError("the arguments are not a JSON object")
        return value


@dataclass(frozen=True)
class OutputFile:
    """A file a tool made that belongs in the thread (a picture, a chart)."""

    name: str
    data: bytes
    mimetype: str


@dataclass(frozen=True)
class ToolResult:
    """What a local call produced: `output` goes back to the model, the rest to the person."""

    output: str
    ok: bool = True
    # Files for the thread (uploaded by the turn loop); `picture` ones are kept for later edits.
    files: tuple[OutputFile, ...] = ()
    # A short line for the step's card (what was found, why it failed).
    detail: str = ""
    # Tokens a model call inside the tool used, as the API reported: (model, input, output).
    usage: tuple[str, int, int] | None = None


def bounded(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """`text` cut to `limit` characters, saying so: the model must know it did not see it all."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[… cut: {len(text) - limit:,} more characters not shown]"


@dataclass(frozen=True)
class ToolContext:
    """What a running tool may know about the turn (never a platform payload)."""

    user_id: str
    channel_id: str
    thread_id: str
    # The thread's newest picture (shared or drawn), for "make it blue".
    latest_image: Callable[[], Awaitable[OutputFile | None]] | None = None
    # The person's picture settings (size, quality).
    image_size: str = "auto"
    image_quality: str = "auto"


class Tool(ABC):
    """One tool. `name` is what the model calls it (function tools: `[a-zA-Z0-9_-]{1,64}`)."""

    name: str
    hosted: bool = False
    description: str = ""
    # The team's tools come in groups (one per MCP server) that people switch on or off.
    group: str = ""

    def declaration(self, style: ApiStyle) -> dict[str, Any] | None:
        """The `tools` entry for this API style, or None when the style has no such tool
        (hosted tools do not exist in Chat Completions). Function tools by default."""
        if self.hosted:
            return None
        schema = self.parameters()
        if style == "chat_completions":
            return {"type": "function", "function": {
                "name": self.name, "description": self.description, "parameters": schema,
            }}
        return {"type": "function", "name": self.name, "description": self.description, "parameters": schema}

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of a function tool's arguments."""
        return {"type": "object", "properties": {}}

    @abstractmethod
    def title(self, arguments: dict[str, Any]) -> str:
        """The step's title people see while it runs: "Searching the web for …"."""

    async def run(self, call: ToolCall, context: ToolContext) -> ToolResult:
        """Run a local call (hosted tools are run by the provider and never get here)."""
        raise NotImplementedError(f"{self.name} is run by the provider")
