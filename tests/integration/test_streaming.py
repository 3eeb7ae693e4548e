"""Streaming, progress, long replies and Slack rate limits, seen from the loopback Slack."""

from __future__ import annotations

from itertools import pairwise

from slack_client.formatting.text import MAX_MESSAGE_CHARS
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, kind, wait_replies


async def test_answer_streams_into_the_placeholder_throttled(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(STREAM_UPDATE_SECONDS="0.2")
    words = " ".join(f"word{i}" for i in range(120))
    openai.script(Reply(text=words, chunk_size=10, chunk_delay=0.02))  # ~1.3 s of streaming
    ts = await slack.user_says("U0ALICE", "D0ALICE", "talk to me")

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert text == words
    [placeholder] = bot_replies(slack, "D0ALICE", ts)
    updates = [c for c in slack.calls_to("chat.update") if c.params["ts"] == placeholder["ts"]]
    partial = [u.params["text"] for u in updates if u.params["text"].endswith("▍")]
    # Several visible partial frames, each longer than the last, then the full text.
    assert len(partial) >= 3
    assert all(len(a) < len(b) for a, b in pairwise(partial))
    assert updates[-1].params["text"] == words
    # Throttled: never more often than the configured interval (with scheduling slack).
    times = [u.time for u in updates]
    assert all(b - a >= 0.15 for a, b in pairwise(times[:-1]))


async def test_progress_indicator_keeps_running_while_the_model_thinks(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(PROGRESS_UPDATE_SECONDS="0.25")
    openai.script(Reply(text="done", latency=2.2))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "think hard")

    await wait_replies(slack, "D0ALICE", ts)

    texts = [c.params["text"] for c in slack.calls_to("chat.update")]
    statuses = [t for t in texts if t.startswith(":hourglass_flowing_sand:")]
    # The indicator ticked (with the elapsed time) during the 2.2 s model call: the loop was
    # free to run it beside the call.
    assert len(statuses) >= 2
    assert "(1 s)" in statuses[0] and "(2 s)" in statuses[-1]
    assert texts[-1] == "done"


async def test_long_reply_is_split_without_breaking_code_blocks(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    prose = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 20 for i in range(12))
    code = "\n".join(f"    line_{i} = compute({i})  # keep" for i in range(60))
    answer = f"{prose}\n\n```python\n{code}\n```\n\nThe end."
    openai.script(Reply(text=answer, chunk_size=400))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "write a lot")

    await wait_replies(slack, "D0ALICE", ts, count=2)
    await app.processor.wait_idle()
    texts = [m["text"] for m in bot_replies(slack, "D0ALICE", ts)]
    assert all(kind(m) == "answer" for m in bot_replies(slack, "D0ALICE", ts))

    assert len(texts) >= 3
    assert all(len(t) <= MAX_MESSAGE_CHARS for t in texts)
    assert all(t.count("```") % 2 == 0 for t in texts)
    # The code block (well under one message) is whole in exactly one message.
    [with_code] = [t for t in texts if "line_0 " in t]
    assert "line_59 " in with_code
    assert texts[-1].endswith("The end.")
    joined = "\n".join(texts)
    for i in range(12):
        assert f"Paragraph {i}:" in joined


async def test_slack_rate_limits_delay_but_never_drop_the_answer(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    slack.fail("chat.postMessage", error="ratelimited", retry_after=1, times=1)
    slack.fail("chat.update", error="ratelimited", retry_after=1, times=3)
    openai.script(Reply(text="the complete answer", chunk_size=4, chunk_delay=0.02))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    texts = await wait_replies(slack, "D0ALICE", ts, timeout=15)

    assert texts == ["the complete answer"]
    posts = [c for c in slack.calls_to("chat.postMessage") if "Thinking" in c.params["text"]]
    assert len(posts) == 2  # the 429, then the retry after Retry-After
    assert posts[1].time - posts[0].time >= 0.9


async def test_a_429_storm_in_one_channel_holds_its_replies_and_every_answer_completes(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(STREAM_UPDATE_SECONDS="0.1")
    answer = " ".join(f"part{i}" for i in range(80))
    openai.default = Reply(text=answer, chunk_size=10, chunk_delay=0.05)  # ~2.5 s of streaming
    slack.fail("chat.update", error="ratelimited", retry_after=1, times=12, channel="C0GENERAL")

    roots = [await slack.user_says("U0ALICE", "C0GENERAL", f"<@{slack.bot_user_id}> question {i}")
             for i in range(3)]
    dm = await slack.user_says("U0BOB", "D0BOB", "and mine")

    for channel, root in [*(("C0GENERAL", r) for r in roots), ("D0BOB", dm)]:
        assert await wait_replies(slack, channel, root, timeout=30) == [answer]
    updates = slack.calls_to("chat.update")
    general = [c for c in updates if c.params["channel"] == "C0GENERAL"]
    limited = [c for c in general if c.fault == "ratelimited"]
    assert limited and not [c for c in updates if c.fault and c.params["channel"] != "C0GENERAL"]
    # Every reply of the channel waits out Retry-After, not only the one that met the 429...
    first = limited[0].time
    assert not [c for c in general if first + 0.15 < c.time < first + 0.9]
    # ...while the DM, in another channel, keeps streaming at its normal pace.
    assert len([c for c in updates if c.params["channel"] == "D0BOB" and first < c.time < first + 0.9]) >= 3
