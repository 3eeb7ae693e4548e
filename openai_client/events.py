"""The vocabulary between the model client and the processor: no SDK types leak past here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union


@dataclass(frozen=True)
class ModelRequest:
    model: str
    instructions: str
    # Conversation turns as {"role": "user"|"assistant", "content": str}, oldest first.
    turns: list[dict[str, Any]]
    max_output_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)
    # The `tools` entries, already in this API style's shape (see tools/base.py).
    tools: tuple[dict[str, Any], ...] = ()
    # What earlier rounds of this turn said and got, after `turns`, in a shape of our own that
    # the client translates per API style: {"kind": "text", "text"}, {"kind": "call",
    # "call_id", "name", "arguments"}, {"kind": "output", "call_id", "output"}, {"kind":
    # "reasoning", "item"} (Responses only: Chat Completions has no reasoning items to send back).
    items: tuple[dict[str, Any], ...] = ()
    # "none": the model must answer with what it has (the last round of a turn).
    tool_choice: str | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolActivity:
    """A hosted tool's step (the provider runs it): started, then complete or failed."""

    tool: str  # "web_search", "code_interpreter", "image_generation", "file_search"
    step_id: str = ""
    status: str = "in_progress"  # in_progress, complete, error
    detail: str = ""  # e.g. the search query
    sources: tuple[str, ...] = ()  # URLs the step looked at


@dataclass(frozen=True)
class FunctionCall:
    """The model asks the bot to run one of its function tools."""

    call_id: str
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True)
class Reasoning:
    """A reasoning model's reasoning item, as the API gave it (encrypted): with `store` off, the
    next round of the turn must get it back, before the calls it led to, or the model starts
    its thinking over."""

    item: dict[str, Any]


@dataclass(frozen=True)
class Citation:
    """A source the answer's text cites (a web search's `url_citation`)."""

    url: str
    title: str = ""


@dataclass(frozen=True)
class ContainerFile:
    """A file the code interpreter wrote, cited by the answer (`container_file_citation`)."""

    container_id: str
    file_id: str
    filename: str


@dataclass(frozen=True)
class Completed:
    input_tokens: int = 0
    output_tokens: int = 0
    # Set when the model stopped early (e.g. "max_output_tokens"); the text so far is valid.
    incomplete_reason: str | None = None
    citations: tuple[Citation, ...] = ()
    files: tuple[ContainerFile, ...] = ()


StreamEvent = Union[TextDelta, ToolActivity, FunctionCall, Reasoning, Completed]


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    input_tokens: int = 0
    output_tokens: int = 0


class ErrorKind(str, Enum):
    TIMEOUT = "timeout"
    RATE_LIMIT = "rate_limit"
    CONNECTION = "connection"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    SERVER = "server"
    FAILED = "failed"


class ModelError(Exception):
    """A model call that did not produce an answer, classified for the person and the log."""

    def __init__(
        self, kind: ErrorKind, detail: str, status: int | None = None,
        usage: tuple[int, int] | None = None, retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status
        # (input, output) tokens the API reported for the failed call, if it said.
        self.usage = usage
        # Seconds the provider asked to wait before trying again (a 429's Retry-After).
        self.retry_after = retry_after
