"""How fast streaming edits may go to each channel, learnt from Slack's 429s.

Slack rate-limits `chat.update` per channel and answers a burst with 429 + `Retry-After`. Every
reply streaming into a channel shares one pace: a 429 seen by any of them holds all of them
until `Retry-After` has passed, and doubles the channel's interval between edits (up to
`MAX_BACKOFF` times the configured one). After `CALM_SECONDS` without a 429 the interval halves
again, step by step, back to the configured value. Pure logic over an injectable clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

MAX_BACKOFF = 16
CALM_SECONDS = 10.0


@dataclass
class _Pace:
    interval: float
    clear_at: float = 0.0
    changed_at: float = 0.0


class ChannelPacer:
    def __init__(self, base_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base_interval
        self._clock = clock
        self._paces: dict[str, _Pace] = {}

    def interval(self, channel: str) -> float:
        """Minimum seconds between two edits of one reply in `channel`."""
        pace = self._paces.get(channel)
        return pace.interval if pace else self.base

    def clear_at(self, channel: str) -> float:
        """Clock time before which nothing should be sent to `channel` (0 when not held)."""
        pace = self._paces.get(channel)
        return pace.clear_at if pace else 0.0

    def rate_limited(self, channel: str, retry_after: float) -> None:
        now = self._clock()
        pace = self._paces.setdefault(channel, _Pace(self.base))
        # The replies of one channel hit the same limit together: one 429 episode, one doubling.
        if now >= pace.clear_at:
            pace.interval = min(pace.interval * 2, self.base * MAX_BACKOFF)
        pace.clear_at = max(pace.clear_at, now + retry_after)
        pace.changed_at = now

    def succeeded(self, channel: str) -> None:
        pace = self._paces.get(channel)
        if pace is None:
            return
        now = self._clock()
        if now - pace.changed_at < CALM_SECONDS:
            return
        pace.interval = max(self.base, pace.interval / 2)
        pace.changed_at = now
        if pace.interval == self.base and now >= pace.clear_at:
            del self._paces[channel]  # back to normal: forget the channel
