"""What people read when things go wrong, and what the model is told."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from message_processor.utilities import (
    HISTORY_CUT_NOTE,
    build_instructions,
    error_notice,
    progress_status,
    turn_timeout_notice,
)
from openai_client.events import ErrorKind, ModelError


def test_progress_status_changes_as_time_passes() -> None:
    assert progress_status(0) == "Thinking…"
    assert progress_status(12) == "Still thinking… (12 s)"
    assert progress_status(45).startswith("Working on a longer answer")


def test_timeout_notice_names_the_configured_limit() -> None:
    assert "within 305 seconds" in error_notice(TimeoutError(), 305)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_model_error_kind_has_a_plain_reply(kind: ErrorKind) -> None:
    text = error_notice(ModelError(kind, "raw {json} detail", 500), 305)
    assert text.startswith(":warning:") and "raw" not in text


def test_unexpected_errors_point_to_the_log() -> None:
    assert "log" in error_notice(KeyError("x"), 305)


def test_instructions_carry_the_date_in_the_persons_timezone() -> None:
    now = datetime(2026, 11, 23, 23, 30, tzinfo=timezone.utc)
    text = build_instructions("Be brief.", "Asia/Tokyo", trimmed=False, now=now)
    assert text.startswith("Be brief.")
    assert "Tuesday, 24 November 2026" in text and "08:30" in text
    assert "left out" not in text
    assert "left out" in build_instructions("Be brief.", "Nowhere/Invalid", trimmed=True, now=now)


def test_the_turn_deadline_notice_says_what_happened_and_what_to_do() -> None:
    text = turn_timeout_notice(365)
    assert text.startswith(":warning:") and "365 seconds" in text and "send your message again" in text


def test_the_model_is_told_when_a_thread_was_rebuilt_in_part() -> None:
    assert HISTORY_CUT_NOTE not in build_instructions("Be brief.", "UTC", trimmed=False)
    assert HISTORY_CUT_NOTE in build_instructions("Be brief.", "UTC", trimmed=False, history_cut=True)
