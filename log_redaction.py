"""Secrets never reach the log: every formatted line, tracebacks included, is scrubbed.

Redacting at the formatter catches what any library logs (an SDK echoing a key in an error
message, a debug line with headers), not only our own lines. Two nets: the exact values of the
configured secrets, and the shapes of credentials in case another one shows up (Slack and
OpenAI tokens, `Authorization` values, Basic and Bearer credentials, `user:pass@` in URLs,
Socket Mode `?ticket=`s).

A third measure keeps most of them from being written at all: the Slack, OpenAI, HTTP and
database libraries' DEBUG lines carry URLs, headers and payloads, so those libraries stay at
INFO unless `LIBRARY_LOG_LEVEL=DEBUG` asks for them (`LibraryLevelFilter`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Iterable

REDACTED = "[redacted]"
# Slack tokens (xoxb-, xoxp-, xapp-...), OpenAI keys (sk-..., sk-proj-...), bearer credentials.
TOKEN_SHAPES = re.compile(
    r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]{6,}"
    r"|\bsk-[A-Za-z0-9_-]{6,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
)
# The value of an Authorization header in any notation (`Authorization: Basic …`,
# `'Authorization': 'Bearer …'`, `authorization=…`); the scheme word is kept, the credential goes.
# A value a library already redacted ("(redacted)", "<redacted>") is left as it is.
AUTHORIZATION_VALUE = re.compile(
    r"(?i)(\b(?:proxy-)?authorization['\"]?\s*[:=]\s*b?['\"]?)(?![(<\[]redacted[)>\]])"
    r"([A-Za-z]+\s+)?[^\s'\",;}\]]+"
)
# `Basic <base64>` anywhere: redacted when the base64 decodes to `user:password`, so that
# "basic setup" and other prose stay.
BASIC_CREDENTIAL = re.compile(r"(?i)\b(basic\s+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])")
# `scheme://user:password@host`: everything before the last "@" of the authority.
URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#'\"<>]+@")
# Socket Mode URLs (wss://…/link/?ticket=…): the ticket opens a connection as the app.
URL_TICKET = re.compile(r"(?i)([?&;]ticket=)[^&#\s'\"<>]+")
# Shorter values would redact ordinary words (a local server's key may be "ollama").
MIN_SECRET_LENGTH = 8


def _basic(match: re.Match[str]) -> str:
    """Redact a Basic credential only when it really is base64 of `user:password`."""
    try:
        decoded = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)  # not base64: a word after "basic"
    return match.group(1) + REDACTED if b":" in decoded else match.group(0)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the configured secrets and every credential shape replaced by REDACTED."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = AUTHORIZATION_VALUE.sub(lambda m: m.group(1) + (m.group(2) or "") + REDACTED, text)
    text = BASIC_CREDENTIAL.sub(_basic, text)
    text = URL_USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
    text = URL_TICKET.sub(lambda m: m.group(1) + REDACTED, text)
    return TOKEN_SHAPES.sub(REDACTED, text)


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


# Loggers of the libraries whose DEBUG lines print requests, responses and Socket Mode frames.
# The bot's own Bolt app logs as "slack_bolt.app" (see slack_client/base.py).
LIBRARY_LOGGERS = (
    "slack_bolt", "slack_sdk", "slack", "openai", "httpx", "httpx2", "httpcore", "httpcore2",
    "aiohttp", "urllib3", "asyncio", "websockets", "aiosqlite", "mcp", "uvicorn",
)


def library_level(level: str, library: str) -> int:
    """The libraries' level: `library` (LIBRARY_LOG_LEVEL), but never more verbose than LOG_LEVEL.

    So LOG_LEVEL=DEBUG shows the bot's own debug lines and the libraries' INFO; only both at
    DEBUG show the libraries' debug lines, and LOG_LEVEL=WARNING still quiets everything.
    """
    names = logging.getLevelNamesMapping()
    return max(names[level.upper()], names[library.upper()])


def is_library(logger_name: str) -> bool:
    """Whether a logger belongs to one of LIBRARY_LOGGERS ("slack_bolt.app:handler" included)."""
    return logger_name.split(".", 1)[0].split(":", 1)[0] in LIBRARY_LOGGERS


class LibraryLevelFilter(logging.Filter):
    """Drops library records below the libraries' level, whatever their own logger's level.

    Setting the level of `slack_bolt` is not enough: Bolt gives each logger it creates the
    root logger's level (DEBUG under LOG_LEVEL=DEBUG), so the handler has the last word.
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or not is_library(record.name)
