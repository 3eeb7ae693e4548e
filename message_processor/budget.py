"""The daily token budget: when a person's day starts, and what to tell them when it is spent.

Pure. Days are UTC days, so every person's allowance resets at the same, documented moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def day_start(now: float) -> float:
    """Epoch seconds of the UTC midnight that began the day of `now`."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def estimate_tokens(*texts: str) -> int:
    """A request's input tokens, before the API says: about four bytes of UTF-8 a token."""
    return sum(len(text.encode()) for text in texts) // 4 + 1


def budget_notice(used: int, budget: int, now: float, held: int = 0) -> str:
    resets = day_start(now) + timedelta(days=1).total_seconds()
    hours, minutes = divmod(int(resets - now) // 60, 60)
    so_far = f"{used:,} so far" + (f", {held:,} more held by answers in progress" if held else "")
    return (
        f":hourglass: You've used today's allowance of {budget:,} tokens ({so_far}). It "
        f"resets at midnight UTC, in {hours} h {minutes:02d} min. If you need more, ask the team "
        "that runs this assistant."
    )
