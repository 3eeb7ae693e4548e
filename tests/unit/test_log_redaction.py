"""Secrets are scrubbed from every formatted log line."""

from __future__ import annotations

import base64
import io
import logging

import pytest

from log_redaction import (
    LIBRARY_LOGGERS,
    REDACTED,
    LibraryLevelFilter,
    RedactingFormatter,
    is_library,
    library_level,
    redact,
)

BASIC = base64.b64encode(b"deploy:hunter2-long").decode()


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


@pytest.mark.parametrize(
    ("line", "kept", "gone"),
    [
        # Socket Mode URLs, as slack_sdk logs the apps.connections.open answer and as a refused
        # handshake's error repeats them.
        ("body: {'ok': True, 'url': 'wss://wss-primary.slack.com/link/?ticket=0f1e2d3c-aaaa&app_id=A0APP'}",
         "wss://wss-primary.slack.com/link/?ticket=[redacted]&app_id=A0APP", "0f1e2d3c"),
        ("400, message='Invalid response status', url='ws://127.0.0.1:9/link/?ticket=abc-123'",
         "?ticket=[redacted]'", "abc-123"),
        # Credentials in a URL: everything before the authority's last "@".
        ("proxy https://deploy:hunter2@proxy.example:3128/ failed", "https://[redacted]@proxy.example:3128/",
         "hunter2"),
        ("GET http://user:p@ss@host.example/x", "http://[redacted]@host.example/x", "p@ss"),
        ("redis://:s3cretpass@cache:6379/0", "redis://[redacted]@cache:6379/0", "s3cretpass"),
        # Authorization values, any scheme and notation.
        (f"Authorization: Basic {BASIC}", "Authorization: Basic [redacted]", BASIC),
        (f"headers={{'authorization': 'Basic {BASIC}'}}", "'authorization': 'Basic [redacted]'", BASIC),
        ("Authorization: Bearer abc.def.ghi-1234", "Authorization: Bearer [redacted]", "abc.def"),
        ("Proxy-Authorization: Token 9f8e7d6c5b", "Proxy-Authorization: Token [redacted]", "9f8e7d6c5b"),
        ("authorization=opaque-value-99", "authorization=[redacted]", "opaque-value-99"),
        # Basic and Bearer credentials outside a header line (httpcore's tuples, a repr).
        (f"(b'Authorization', b'Basic {BASIC}')", "b'Basic [redacted]'", BASIC),
        ("token=Bearer eyJhbGciOi.payload.sig", "token=[redacted]", "eyJhbGciOi"),
    ],
)
def test_credential_shapes_are_redacted(line: str, kept: str, gone: str) -> None:
    redacted = redact(line)
    assert gone not in redacted
    assert kept in redacted


def test_prose_and_already_redacted_values_stay() -> None:
    text = ("a basic setup, basic test and Basic configuration; authorization failed for U1; "
            "mailto:a@b.example; https://example.com/@team/a.png?page=2; "
            "headers: {'Authorization': '(redacted)'}; the ticket=? question")
    assert redact(text) == text


def test_library_loggers_stay_at_info_under_debug_unless_asked() -> None:
    assert library_level("DEBUG", "INFO") == logging.INFO
    assert library_level("DEBUG", "DEBUG") == logging.DEBUG
    assert library_level("INFO", "DEBUG") == logging.INFO  # never louder than LOG_LEVEL
    assert library_level("WARNING", "INFO") == logging.WARNING
    assert library_level("debug", "error") == logging.ERROR


@pytest.mark.parametrize(
    ("name", "library"),
    [("slack_bolt.AsyncApp", True), ("slack_bolt.app:handle_message", True), ("slack_sdk.web.async_base_client", True),
     ("openai._base_client", True), ("httpx2", True), ("httpcore2.http11", True), ("aiohttp.client", True),
     ("urllib3.connectionpool", True), ("asyncio", True), ("websockets.client", True), ("aiosqlite", True),
     ("openai_client.responses", False), ("slack_client.base", False), ("message_processor.base", False),
     ("assistant", False), ("__main__", False), ("slack_boltish", False)],
)
def test_library_loggers_are_known_by_their_top_name(name: str, library: bool) -> None:
    assert is_library(name) is library


def test_the_handler_holds_library_debug_lines_whatever_the_loggers_own_level() -> None:
    """Bolt gives its loggers the root's level: the handler's filter is what keeps them quiet."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(LibraryLevelFilter(library_level("DEBUG", "INFO")))
    loggers = [logging.getLogger(n) for n in ("slack_bolt.AsyncApp", "slack_bolt.app:on_message", "tests.ours")]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        logger.propagate = False
    try:
        for logger in loggers:
            logger.debug("debug line")
            logger.info("info line")
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
    assert stream.getvalue().splitlines() == [
        "INFO slack_bolt.AsyncApp info line",
        "INFO slack_bolt.app:on_message info line",
        "DEBUG tests.ours debug line",
        "INFO tests.ours info line",
    ]
    assert {"slack_bolt", "slack_sdk", "openai", "httpx", "httpcore", "aiohttp", "urllib3", "asyncio",
            "websockets"} <= set(LIBRARY_LOGGERS)
