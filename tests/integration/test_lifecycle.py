"""Start-up, restart and shutdown of the real process."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from message_processor.utilities import RESTARTED_NOTICE
from tests.conftest import bot_env
from tests.engines import postgresql_only, sqlite_only
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, leave_progress, wait_handled, wait_replies

ROOT = Path(__file__).resolve().parents[2]


async def test_shutdown_lets_the_answer_in_flight_finish(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(SHUTDOWN_GRACE_SECONDS="5")
    openai.script(Reply(text="finished despite the shutdown", latency=0.6))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "quick, before you go")
    await openai.wait_for(lambda: openai.in_flight == 1)

    await app.stop()

    assert await wait_replies(slack, "D0ALICE", ts, timeout=1) == ["finished despite the shutdown"]


async def test_answers_that_outlive_the_grace_period_are_told(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(SHUTDOWN_GRACE_SECONDS="0.3")
    openai.script(Reply(hang=True))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "long question")
    await openai.wait_for(lambda: openai.in_flight == 1)

    await asyncio.wait_for(app.stop(), 5)

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=1)
    assert "restarted before I could finish" in text


async def test_conversation_survives_a_restart(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    first = await start_bot()
    root = await slack.user_says("U0ALICE", "D0ALICE", "remember the word kiwi")
    await wait_replies(slack, "D0ALICE", root)
    await first.stop()

    await start_bot()
    await slack.user_says("U0ALICE", "D0ALICE", "what was the word?", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)

    contents = [i["content"] for i in openai.responses_requests()[1]["input"]]
    assert contents[0] == "Alice: remember the word kiwi"
    assert slack.calls_to("conversations.replies") == []  # from the database, not rebuilt


async def _read_until(stream: asyncio.StreamReader, marker: str, timeout: float) -> str:
    seen = []
    async def read() -> None:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"process ended before {marker!r}:\n{''.join(seen)}")
            seen.append(line)
            if marker in line:
                return
    await asyncio.wait_for(read(), timeout)
    return "".join(seen)


async def test_sigterm_finishes_the_answer_in_flight_and_exits_zero(
    slack: FakeSlack, openai: FakeOpenAI, database_url: str, python_env: dict[str, str]
):
    env = {**python_env, **bot_env(slack, openai, database_url)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "main.py", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _read_until(process.stderr, "ready", timeout=20)
        openai.script(Reply(text="answered before exiting", latency=0.8))
        ts = await slack.user_says("U0ALICE", "D0ALICE", "hello")
        await openai.wait_for(lambda: openai.in_flight == 1)

        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert code == 0
    assert await wait_replies(slack, "D0ALICE", ts, timeout=1) == ["answered before exiting"]


async def test_invalid_configuration_exits_with_one_line_per_problem(
    tmp_path: Path, python_env: dict[str, str]
):
    env = {k: v for k, v in python_env.items() if not k.startswith(("SLACK_", "OPENAI_"))}
    env.update(SLACK_BOT_TOKEN="xoxp-wrong-kind", OPENAI_TIMEOUT_SECONDS="soon",
               THREAD_BUSY_POLICY="panic")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "main.py"), cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 20)
    lines = [line.strip() for line in err.decode().splitlines() if line.strip().startswith("-")]

    assert process.returncode == 2
    assert any(line.startswith("- SLACK_BOT_TOKEN must start with 'xoxb-'") for line in lines)
    assert any(line.startswith("- SLACK_APP_TOKEN is missing") for line in lines)
    assert any(line.startswith("- OPENAI_API_KEY is missing") for line in lines)
    assert any("OPENAI_TIMEOUT_SECONDS='soon' is not a number" in line for line in lines)
    assert any("THREAD_BUSY_POLICY='panic'" in line for line in lines)
    assert all(".env.example" in line or "one of" in line or "number" in line for line in lines)


async def test_a_rejected_bot_token_stops_start_up_with_a_clear_line(
    slack: FakeSlack, openai: FakeOpenAI, database_url: str, python_env: dict[str, str]
):
    env = {**python_env, **bot_env(slack, openai, database_url), "SLACK_BOT_TOKEN": "xoxb-revoked"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "main.py", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 20)

    assert process.returncode == 1
    assert "Slack rejected SLACK_BOT_TOKEN (invalid_auth)" in err.decode()
    assert "Traceback" not in err.decode()


async def _kill_mid_answer(slack: FakeSlack, openai: FakeOpenAI, database_url: str, env: dict[str, str]) -> str:
    """Start the real bot process, let it start answering, then SIGKILL it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "main.py", cwd=ROOT, env={**env, **bot_env(slack, openai, database_url)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _read_until(process.stderr, "ready", timeout=20)
        openai.script(Reply(hang=True))
        ts = await slack.user_says("U0ALICE", "D0ALICE", "are you still there?")
        await openai.wait_for(lambda: openai.in_flight == 1)
        process.kill()  # no shutdown, no farewell: like a crash or `kill -9`
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return ts


# As PM2 restarts it: under the same name, so the restart knows (on PostgreSQL, where several
# instances may run) that what that name was answering is its own to recover, at once.
SAME_NAME = {"INSTANCE_NAME": "bot-1"}


async def test_a_message_in_flight_at_kill_9_is_answered_after_restart(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, database_url: str, python_env: dict[str, str]
):
    ts = await _kill_mid_answer(slack, openai, database_url, {**python_env, **SAME_NAME})
    [left_behind] = bot_replies(slack, "D0ALICE", ts)
    assert "Thinking" in left_behind["text"]

    await start_bot(**SAME_NAME)  # same database: the journal says the message was never answered
    texts = await wait_replies(slack, "D0ALICE", ts, count=2, timeout=10)

    assert texts == [":warning: This answer was interrupted by a restart.", "You said: Alice: are you still there?"]


@postgresql_only("leases: which instance's work is whose")
async def test_a_restart_under_another_name_answers_once_the_dead_runs_lease_ran_out(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, database_url: str, python_env: dict[str, str]
):
    lease = {"LEASE_SECONDS": "2"}
    ts = await _kill_mid_answer(slack, openai, database_url, {**python_env, **lease, "INSTANCE_NAME": "old"})

    app = await start_bot(**lease, INSTANCE_NAME="new")  # the default <hostname>:<pid> changes too
    texts = await wait_replies(slack, "D0ALICE", ts, count=2, timeout=15)

    assert texts == [RESTARTED_NOTICE, "You said: Alice: are you still there?"]
    await app.processor.wait_idle()
    assert await app.db.message_status("D0ALICE", ts) == "answered"


async def test_a_message_too_old_to_recover_gets_a_notice(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, database_url: str, python_env: dict[str, str]
):
    ts = await _kill_mid_answer(slack, openai, database_url, {**python_env, **SAME_NAME})
    requests = len(openai.responses_requests())

    await start_bot(RECOVERY_WINDOW_MINUTES="0", **SAME_NAME)
    texts = await wait_replies(slack, "D0ALICE", ts, count=2, timeout=10)

    assert "lost track of your message" in texts[-1]
    assert len(openai.responses_requests()) == requests  # not answered late


async def test_a_redelivery_after_a_restart_is_not_answered_again(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    first = await start_bot()
    ts = await slack.user_says("U0ALICE", "D0ALICE", "answer me once")
    await wait_replies(slack, "D0ALICE", ts)
    [envelope] = [e for e, env in slack.envelopes.items() if env["payload"]["event"].get("ts") == ts]
    await first.stop()

    second = await start_bot()
    await slack.redeliver(envelope, retry_reason="timeout")
    await wait_handled(slack, second, 1)

    assert len(openai.responses_requests()) == 1
    assert len(bot_replies(slack, "D0ALICE", ts)) == 1


@sqlite_only("the bot's own backups (PostgreSQL is backed up with pg_dump)")
async def test_the_running_bot_backs_up_its_database_at_start(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, tmp_path: Path
):
    folder = tmp_path / "backups"
    await start_bot(BACKUP_DIR=str(folder), BACKUP_KEEP="3")
    await slack.wait_for(lambda: bool(list(folder.glob("bot-*.db"))), 5, "no backup was written")


async def test_recovery_goes_on_past_a_conversation_slack_refuses(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    first = await start_bot()
    ts = slack.post_as_user("U0ALICE", "D0ALICE", "still waiting")["ts"]
    await first.db.claim_message("C0DELETED", "1.000001", "1.000001", "U0ALICE", "lost channel", None)
    await first.db.claim_message("D0ALICE", ts, ts, "U0ALICE", "still waiting", None)
    await first.stop()

    await start_bot()  # conversations.replies on the deleted channel fails: logged, not fatal

    assert await wait_replies(slack, "D0ALICE", ts) == ["You said: Alice: still waiting"]


async def test_recovery_tidies_and_answers_before_the_socket_opens(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    first = await start_bot()
    ts = slack.post_as_user("U0ALICE", "D0ALICE", "are you there?")["ts"]
    stale = leave_progress(slack, "D0ALICE", ts)  # the placeholder of a process that died
    await first.db.claim_message("D0ALICE", ts, ts, "U0ALICE", "are you there?", None)
    await first.db.set_message_status("D0ALICE", ts, "answering")
    await first.stop()
    since = len(slack.calls)

    second = await start_bot()
    texts = await wait_replies(slack, "D0ALICE", ts, count=2)
    await second.processor.wait_idle()

    assert texts == [RESTARTED_NOTICE, "You said: Alice: are you there?"]
    assert len(openai.responses_requests()) == 1
    assert await second.db.message_status("D0ALICE", ts) == "answered"
    calls = slack.calls[since:]
    tidied = next(i for i, c in enumerate(calls) if c.method == "chat.update" and c.params.get("ts") == stale)
    socket = next(i for i, c in enumerate(calls) if c.method == "apps.connections.open")
    assert tidied < socket  # recovery was done before any event could arrive
    # The answer's own placeholder became the answer; recovery never touched it.
    [answer] = [m for m in bot_replies(slack, "D0ALICE", ts) if m["ts"] != stale]
    assert all(c.params.get("ts") != answer["ts"] or c.params.get("text") != RESTARTED_NOTICE
               for c in slack.calls_to("chat.update"))


async def test_a_live_placeholder_of_this_process_is_never_closed_as_stale(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    gate = asyncio.Event()
    openai.script(Reply(text="still mine", gate=gate))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "take your time")
    await openai.wait_for(lambda: openai.in_flight == 1)
    [live] = bot_replies(slack, "D0ALICE", ts)  # "Thinking…", being written by this process
    stale = leave_progress(slack, "D0ALICE", ts)

    closed = await app.client.close_stale_progress("D0ALICE", ts, RESTARTED_NOTICE)

    assert closed == 1
    assert slack.message("D0ALICE", stale)["text"] == RESTARTED_NOTICE
    assert all(c.params.get("ts") != live["ts"] or c.params.get("text") != RESTARTED_NOTICE
               for c in slack.calls_to("chat.update"))
    gate.set()
    texts = await wait_replies(slack, "D0ALICE", ts, count=2)
    await app.processor.wait_idle()
    assert slack.message("D0ALICE", live["ts"])["text"] == "still mine"
    assert sorted(texts) == sorted([RESTARTED_NOTICE, "still mine"])
    assert app.client.live_messages == set()  # finished replies are forgotten
