"""The per-channel pace of streaming edits under Slack's 429s."""

from __future__ import annotations

from slack_client.pacing import CALM_SECONDS, MAX_BACKOFF, ChannelPacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_429_holds_the_channel_and_doubles_its_interval_once_per_episode() -> None:
    clock = Clock()
    pacer = ChannelPacer(1.0, clock)

    pacer.rate_limited("C1", retry_after=3)
    pacer.rate_limited("C1", retry_after=2)  # another reply of the same burst

    assert pacer.clear_at("C1") == 1003.0
    assert pacer.interval("C1") == 2.0
    assert pacer.interval("C2") == 1.0 and pacer.clear_at("C2") == 0.0  # other channels untouched


def test_the_interval_backs_off_up_to_a_ceiling() -> None:
    clock = Clock()
    pacer = ChannelPacer(0.5, clock)
    for _ in range(10):
        pacer.rate_limited("C1", retry_after=1)
        clock.now += 1

    assert pacer.interval("C1") == 0.5 * MAX_BACKOFF


def test_calm_brings_the_pace_back_step_by_step_and_forgets_the_channel() -> None:
    clock = Clock()
    pacer = ChannelPacer(1.0, clock)
    for _ in range(2):
        pacer.rate_limited("C1", retry_after=1)
        clock.now += 1
    assert pacer.interval("C1") == 4.0

    pacer.succeeded("C1")  # too soon: still 4 s
    assert pacer.interval("C1") == 4.0
    clock.now += CALM_SECONDS
    pacer.succeeded("C1")
    assert pacer.interval("C1") == 2.0
    clock.now += CALM_SECONDS
    pacer.succeeded("C1")
    assert pacer.interval("C1") == 1.0
    assert pacer.clear_at("C1") == 0.0  # forgotten
