"""Token usage is recorded as OpenAI reported it, shown to the person, and capped per day."""

from __future__ import annotations

from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies
from tests.integration.test_settings import blocks_of, open_settings


async def test_usage_rows_match_what_openai_reported_per_person_and_thread(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    openai.script(Reply(text="first", usage=(120, 30)), Reply(text="second", usage=(200, 45)),
                  Reply(text="other", usage=(10, 5)))
    root = await slack.user_says("U0ALICE", "D0ALICE", "one")
    await wait_replies(slack, "D0ALICE", root)
    await slack.user_says("U0ALICE", "D0ALICE", "two", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)
    bob = await slack.user_says("U0BOB", "D0BOB", "three")
    await wait_replies(slack, "D0BOB", bob)

    rows = [tuple(r) for r in await app.db.query(
        "SELECT user_id, channel_id, thread_ts, model, kind, input_tokens, output_tokens FROM usage ORDER BY id"
    )]
    assert rows == [
        ("U0ALICE", "D0ALICE", root, "test-model", "answer", 120, 30),
        ("U0ALICE", "D0ALICE", root, "test-model", "answer", 200, 45),
        ("U0BOB", "D0BOB", bob, "test-model", "answer", 10, 5),
    ]

    _, view = await open_settings(slack)
    usage = blocks_of(view)["usage"]["elements"][0]["text"]
    assert "*395* tokens today" in usage and "*395* in the last 30 days" in usage


async def test_a_spent_daily_budget_gets_a_notice_instead_of_an_answer(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(DAILY_TOKEN_BUDGET="100")
    openai.script(Reply(text="that was a big one", usage=(80, 40)))
    first = await slack.user_says("U0ALICE", "D0ALICE", "long question")
    assert await wait_replies(slack, "D0ALICE", first) == ["that was a big one"]
    # Its usage recorded and its hold released: on a pool the next message's reads may finish first.
    await app.processor.wait_idle()

    second = await slack.user_says("U0ALICE", "D0ALICE", "and another")
    [notice] = await wait_replies(slack, "D0ALICE", second)
    assert "today's allowance of 100 tokens (120 so far)" in notice and "resets at midnight UTC" in notice
    assert len(openai.responses_requests()) == 1

    bob = await slack.user_says("U0BOB", "D0BOB", "my turn")  # the budget is per person
    assert await wait_replies(slack, "D0BOB", bob) == ["You said: Bob: my turn"]
