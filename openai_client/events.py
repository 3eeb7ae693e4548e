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


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolActivity:
    """The model is using a built-in tool (e.g. web search); shown as progress."""

    tool: str


@dataclass(frozen=True)
class Completed:
    input_tokens: int = 0
    output_tokens: int = 0
    # Set when the model stopped early (e.g. "max_output_tokens"); the text so far is valid.
    incomplete_reason: str | None = None


StreamEvent = Union[TextDelta, ToolActivity, Completed]


@dataclass(frozen=True)
class Classification:
    """The utility model's one-word answer, and what it cost."""

    word: str
    input_tokens: int = 0
    output_tokens: int = 0


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
        usage: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status
        # (input, output) tokens the API reported for the failed call, if it said.
        self.usage = usage
