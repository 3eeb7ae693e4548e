"""The daily budget's day boundary and notice; the usage line of the settings window."""

from __future__ import annotations

from datetime import datetime, timezone

from message_processor.budget import budget_notice, day_start
from settings import UsageSummary
from settings_modal import usage_text

NOON = datetime(2026, 11, 23, 21, 30, tzinfo=timezone.utc).timestamp()


def test_the_day_starts_at_utc_midnight() -> None:
    assert day_start(NOON) == datetime(2026, 11, 23, tzinfo=timezone.utc).timestamp()


def test_the_notice_says_how_much_and_when_it_resets() -> None:
    text = budget_notice(123_456, 100_000, NOON)
    assert "allowance of 100,000 tokens (123,456 so far)" in text
    assert "in 2 h 30 min" in text


def test_usage_text_mentions_the_allowance_only_when_there_is_one() -> None:
    assert usage_text(UsageSummary(1500, 20000)) == (
        "Your usage: *1,500* tokens today, *20,000* in the last 30 days."
    )
    assert "(daily allowance 50,000)" in usage_text(UsageSummary(1, 2, 50_000))
