"""The daily token budget: when a person's day starts, and what to tell them when it is spent.

Pure. Days are UTC days, so every person's allowance resets at the same, documented moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def day_start(now: float) -> float:
    """Epoch seconds of the UTC midnight that began the day of `now`."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def budget_notice(used: int, budget: int, now: float) -> str:
    resets = day_start(now) + timedelta(days=1).total_seconds()
    hours, minutes = divmod(int(resets - now) // 60, 60)
    return (
        f":hourglass: You've used today's allowance of {budget:,} tokens ({used:,} so far). It "
        f"resets at midnight UTC, in {hours} h {minutes:02d} min. If you need more, ask the team "
        "that runs this assistant."
    )
