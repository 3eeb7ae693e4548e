"""Secrets never reach the log: every formatted line, tracebacks included, is scrubbed.

Redacting at the formatter catches what any library logs (an SDK echoing a key in an error
message, a debug line with headers), not only our own lines. Two nets: the exact values of the
configured secrets, and the shapes of Slack and OpenAI credentials in case another one shows up.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable

REDACTED = "[redacted]"
# Slack tokens (xoxb-, xoxp-, xapp-...), OpenAI keys (sk-..., sk-proj-...), bearer headers.
TOKEN_SHAPES = re.compile(
    r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]{6,}"
    r"|\bsk-[A-Za-z0-9_-]{6,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
)
# Shorter values would redact ordinary words (a local server's key may be "ollama").
MIN_SECRET_LENGTH = 8


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return TOKEN_SHAPES.sub(REDACTED, text)


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)
