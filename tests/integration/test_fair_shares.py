"""One person's burst takes their own share, not everyone's; budgets hold under a burst."""

from __future__ import annotations

from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import FINAL_KINDS, bot_replies, kind, settled, wait_handled, wait_replies

OTHERS = [f"U0P{i}" for i in range(5)]


def person_of(body: dict) -> str:
    """Who asked, from the last turn the model was sent ("Name: text")."""
    content = body["input"][-1]["content"]
    text = content if isinstance(content, str) else content[0]["text"]
    return text.split(":", 1)[0]


def add_people(slack: FakeSlack) -> None:
    for i, user in enumerate(OTHERS):
        slack.add_user(user, f"p{i}", display_name=f"P{i}")
        slack.add_channel(f"D0P{i}", f"p{i}", is_im=True, user=user)


async def test_a_burst_of_200_waits_in_its_own_line_while_others_are_answered(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    add_people(slack)
    app = await start_bot(MAX_CONCURRENT_REQUESTS="10", MAX_CONCURRENT_PER_PERSON="3")
    openai.default = Reply(latency=0.2)
    openai.tag = person_of

    burst = [await slack.user_says("U0ALICE", "D0ALICE", f"question {i}") for i in range(200)]
    others = [await slack.user_says(user, f"D0P{i}", "hello") for i, user in enumerate(OTHERS)]
    for i, ts in enumerate(others):
        assert await wait_replies(slack, f"D0P{i}", ts, timeout=20) == [f"You said: P{i}: hello"]
        # Answered while Alice's burst is still mostly in her line, not after it.
        answered = sum(settled(slack, "D0ALICE", t, 1) for t in burst)
        assert answered < 150, f"P{i} waited behind the burst ({answered} of Alice's 200 answered first)"

    await slack.wait_for(lambda: all(settled(slack, "D0ALICE", t, 1) for t in burst), timeout=90,
                         message="the burst was not fully answered")
    await app.processor.wait_idle()
    for ts in burst:
        finals = [m for m in bot_replies(slack, "D0ALICE", ts) if kind(m) in FINAL_KINDS]
        assert [kind(m) for m in finals] == ["answer"], ts  # each answered once, none lost
    assert openai.peak_in_flight_by["Alice"] <= 3
    assert len(openai.responses_requests()) == 205
    queued = [c for c in slack.calls_to("chat.postMessage")
              if c.params["channel"] == "D0ALICE" and "you have 3 answers in progress" in c.params["text"]]
    assert len(queued) >= 100  # the excess showed it was waiting its turn
    # Her line is first come first served: with 3 turns at once, no question overtakes another
    # by 3 or more places on its way to the model.
    asked = [b["input"][-1]["content"] for b in openai.responses_requests()]
    mine = [int(text.rsplit(" ", 1)[1]) for text in asked if text.startswith("Alice:")]
    assert sorted(mine) == list(range(200))
    assert all(abs(place - number) < 3 for place, number in enumerate(mine)), mine


async def test_twenty_at_once_pass_the_budget_by_at_most_one_answers_output(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(DAILY_TOKEN_BUDGET="2000", OPENAI_MAX_OUTPUT_TOKENS="200")
    # The usage the fake reports: the input as sent (about 4 bytes a token) and ~196 tokens out.
    openai.default = Reply(text="ok " * 260, latency=0.3)
    sent = [await slack.user_says("U0ALICE", "D0ALICE", f"q{i}") for i in range(20)]
    replies = [await wait_replies(slack, "D0ALICE", ts, timeout=20) for ts in sent]
    await app.processor.wait_idle()

    answered = [r for r in replies if r[0].startswith("ok ok")]
    refused = [r for r in replies if "today's allowance of 2,000 tokens" in r[0]]
    assert len(answered) + len(refused) == 20 and answered and refused
    spent = await app.db.tokens_used("U0ALICE", 0)
    assert len(answered) * 196 < spent <= 2000 + 200  # without reservations all 20 would pass
    assert "held by answers in progress" in refused[0][0]


async def test_a_failed_call_counts_the_usage_the_api_reported(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(DAILY_TOKEN_BUDGET="100000")
    openai.script(Reply(text="partial answer here", chunk_size=4, error_event_after_chunks=2, usage=(70, 9)))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "this will fail")
    await wait_replies(slack, "D0ALICE", ts)
    await app.processor.wait_idle()
    assert await app.db.tokens_used("U0ALICE", 0) == 79


async def test_a_burst_into_a_busy_thread_gets_one_busy_notice(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(THREAD_BUSY_POLICY="reject")
    openai.script(Reply(text="slow answer", latency=1.0))
    root = await slack.user_says("U0ALICE", "D0ALICE", "first")
    await openai.wait_for(lambda: openai.in_flight == 1)
    for i in range(10):
        await slack.user_says("U0ALICE", "D0ALICE", f"again {i}", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)
    await app.processor.wait_idle()

    statuses = [await app.db.message_status("D0ALICE", m["ts"]) for m in slack.thread("D0ALICE", root)
                if m.get("user") == "U0ALICE" and m["ts"] != root]
    assert statuses == ["rejected"] * 10  # every one was handled...
    notices = [m for m in bot_replies(slack, "D0ALICE", root) if kind(m) == "notice"]
    assert len(notices) == 1  # ...and the burst was told once


async def test_a_refused_persons_burst_into_a_thread_gets_one_refusal(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(ALLOWED_USER_IDS="U0BOB")
    root = await slack.user_says("U0ALICE", "D0ALICE", "let me in")
    for i in range(5):
        await slack.user_says("U0ALICE", "D0ALICE", f"please {i}", thread_ts=root)
    await wait_handled(slack, app, 6)
    await app.processor.wait_idle()

    messages = [m for m in slack.thread("D0ALICE", root) if m.get("user") == "U0ALICE"]
    statuses = [await app.db.message_status("D0ALICE", m["ts"]) for m in messages]
    assert statuses == ["rejected"] * 6  # every one was handled...
    refusals = [m for m in bot_replies(slack, "D0ALICE", root) if kind(m) == "notice"]
    assert len(refusals) == 1 and "not available to you" in refusals[0]["text"]  # ...and told once
    assert not openai.responses_requests()
