"""A 429 storm from the provider slows answers down instead of failing them; the limit follows it."""

from __future__ import annotations

from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

STORM = Reply(status=429, error_message="Rate limit reached for requests", retry_after=0.1)


async def test_a_429_storm_slows_answers_down_and_cuts_the_limit(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot(OPENAI_MAX_RETRIES="0")
    slack.add_user("U0CAROL", "carol", display_name="Carol")
    slack.add_channel("D0CAROL", "carol", is_im=True, user="U0CAROL")
    openai.script(*[STORM] * 8)
    people = [("U0ALICE", "D0ALICE"), ("U0BOB", "D0BOB"), ("U0CAROL", "D0CAROL")]
    sent = [(channel, await slack.user_says(user, channel, f"hello from {user}")) for user, channel in people]

    for (channel, ts), (user, _) in zip(sent, people):
        [text] = await wait_replies(slack, channel, ts, timeout=20)
        assert text.startswith(f"You said: {user[2:].title()}: hello")  # answered, late, not failed
    await app.processor.wait_idle()
    assert len(openai.responses_requests()) == 8 + 3  # every refusal was asked again
    assert app.processor.stats.outcome("answered") == 3 and app.processor.stats.outcome("failed") == 0
    limit = app.processor.model_slots.limit
    assert limit.current < limit.ceiling  # the 429s cut it; the three successes gave back only three


async def test_a_storm_longer_than_the_deadline_allows_ends_in_the_rate_limit_notice(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(OPENAI_MAX_RETRIES="0", OPENAI_TIMEOUT_SECONDS="6", TURN_TIMEOUT_SECONDS="6")
    openai.script(Reply(status=429, error_message="Rate limit reached", retry_after=3))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hello")

    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert "rate" in text.lower()  # said plainly, not hung until the deadline
    assert len(openai.responses_requests()) == 1  # 3 s of waiting + a round would pass the deadline
    await app.processor.wait_idle()
    assert await app.db.message_status("D0ALICE", ts) == "failed"


async def test_nearly_spent_rate_limit_headers_trim_the_limit(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot()
    openai.headers = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "10",
                      "x-ratelimit-limit-tokens": "100000", "x-ratelimit-remaining-tokens": "90000"}
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hello")
    await wait_replies(slack, "D0ALICE", ts)
    await app.processor.wait_idle()
    assert app.processor.model_slots.limit.current == 750  # 2% of the requests left: a quarter off
