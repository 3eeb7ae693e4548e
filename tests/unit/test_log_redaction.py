"""Secrets are scrubbed from every formatted log line."""

from __future__ import annotations

import io
import logging

from log_redaction import REDACTED, RedactingFormatter, redact


def test_configured_secrets_and_credential_shapes_are_redacted() -> None:
    line = redact(
        "key local-server-key, bot xoxb-1234-5678-abcdef, app xapp-1-A0-99-ff, "
        "openai sk-proj-AbC_123-xyz, header Bearer abc.def.ghi123",
        secrets=["local-server-key"],
    )
    assert line.count(REDACTED) == 5
    for secret in ("local-server-key", "xoxb-", "xapp-", "sk-proj", "abc.def"):
        assert secret not in line


def test_ordinary_words_stay() -> None:
    text = "task-list, desk-123456, risk-assessment, xoxo, a key named ollama"
    assert redact(text, secrets=["ollama"]) == text  # too short to be told from a word


def test_the_formatter_scrubs_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s", ["very-secret-key"]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("calling with %s", "very-secret-key")
        try:
            raise RuntimeError("auth failed for very-secret-key")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    assert "very-secret-key" not in stream.getvalue()
    assert stream.getvalue().count(REDACTED) >= 2
