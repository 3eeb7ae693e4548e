"""Console mode without a process: what a reply prints, and how stdin lines become messages."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from base_client import Attachment, DownloadError, Message
from config import ConfigError, load_config
from console_client import CHANNEL_ID, ConsoleClient, ConsoleReply, Terminal, local_timezone


def terminal(in_place: bool = False) -> tuple[Terminal, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Terminal(out, err, in_place=in_place), out, err


# --- ConsoleReply ------------------------------------------------------------------------------


async def test_a_streamed_answer_is_printed_delta_by_delta_then_a_newline() -> None:
    term, out, err = terminal()
    reply = ConsoleReply(term, live=True, reply_id="1.000001")
    await reply.start("Thinking…")
    seen = []
    for delta in ("Hel", "lo, ", "world"):
        await reply.append(delta)
        seen.append(out.getvalue())
    outcome = await reply.finish()

    assert seen == ["Hel", "Hello, ", "Hello, world"]  # appended, never re-printed
    assert out.getvalue() == "Hello, world\n"
    assert err.getvalue() == "· Thinking…\n"  # statuses stay off stdout
    assert outcome.message_ids == ["1.000001"]


async def test_shortcodes_are_shown_as_emoji_even_when_a_stream_splits_one() -> None:
    term, out, err = terminal()
    reply = ConsoleReply(term, live=True)
    await reply.start(":hourglass_flowing_sand: Thinking…")
    seen = []
    for delta in ("Done :white_check", "_mark: at 10:", "30 :no_such_code:", " ok:", " :wav", "e:", "!"):
        await reply.append(delta)
        seen.append(out.getvalue())
    await reply.fail(":warning: I couldn't read a.pdf.")

    assert seen[0] == "Done "  # the half shortcode waits for its end
    assert seen[1] == "Done ✅ at 10"
    assert seen[5] == "Done ✅ at 10:30 :no_such_code: ok: 👋"  # a closing colon shows it at once
    assert out.getvalue() == "Done ✅ at 10:30 :no_such_code: ok: 👋!\n⚠️ I couldn't read a.pdf.\n"
    assert err.getvalue() == "· ⏳ Thinking…\n"


async def test_progress_shows_until_text_arrives_then_the_text_is_the_progress() -> None:
    term, out, err = terminal()
    reply = ConsoleReply(term, live=True)
    await reply.start("Thinking…")
    await reply.progress("Thinking…")  # the same status is not repeated
    await reply.progress("Searching the web…")
    await reply.append("Found it.")
    await reply.progress("Still thinking… (12 s)")
    await reply.finish()

    assert err.getvalue() == "· Thinking…\n· Searching the web…\n"
    assert out.getvalue() == "Found it.\n"


async def test_without_streaming_the_whole_text_is_printed_at_the_end() -> None:
    term, out, _ = terminal()
    reply = ConsoleReply(term, live=False)
    await reply.start("Thinking…")
    await reply.append("Hello, ")
    await reply.append("world\n")
    await reply.progress("Still thinking…")  # shown: the text is not
    assert out.getvalue() == ""

    await reply.finish()
    assert out.getvalue() == "Hello, world\n"  # no second newline after one the text had


async def test_a_failure_keeps_the_partial_text_and_puts_the_notice_on_its_own_line() -> None:
    term, out, _ = terminal()
    reply = ConsoleReply(term, live=True)
    await reply.start("Thinking…")
    await reply.append("The answer is")
    await reply.fail(":warning: I couldn't reach OpenAI.")
    await reply.fail("a second ending is ignored")

    assert out.getvalue() == "The answer is\n⚠️ I couldn't reach OpenAI.\n"


async def test_a_failure_before_any_text_prints_only_the_notice() -> None:
    term, out, err = terminal()
    reply = ConsoleReply(term, live=False)
    await reply.start("Thinking…")
    await reply.fail(":warning: OpenAI is rate-limiting requests right now.")

    assert out.getvalue() == "⚠️ OpenAI is rate-limiting requests right now.\n"
    assert "Thinking" in err.getvalue()


async def test_on_a_terminal_the_status_is_rewritten_in_place_and_wiped_before_text() -> None:
    term, out, err = terminal(in_place=True)
    reply = ConsoleReply(term, live=True)
    await reply.start("Thinking…")
    await reply.progress("Thinking… (5 s)")
    await reply.append("Hi")
    await reply.finish()

    assert err.getvalue() == "\r\033[K· Thinking…\r\033[K· Thinking… (5 s)\r\033[K"
    assert out.getvalue() == "Hi\n"


# --- ConsoleClient -----------------------------------------------------------------------------


class Session:
    """A ConsoleClient reading from a pipe, with a deliver whose answers the test settles."""

    def __init__(self, tmp_path: Path) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.out, self.err = io.StringIO(), io.StringIO()
        self.delivered: list[Message] = []
        self.answers: list[asyncio.Future[None]] = []
        self.ended = asyncio.Event()
        self.client = ConsoleClient(
            self.deliver, self.ended.set, input_fd=self.read_fd, out=self.out, err=self.err,
            user_name="ada", save_dir=tmp_path,
        )

    def deliver(self, message: Message) -> asyncio.Future[None]:
        self.delivered.append(message)
        self.answers.append(asyncio.get_running_loop().create_future())
        return self.answers[-1]

    def type(self, text: str) -> None:
        os.write(self.write_fd, text.encode())

    def close_input(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    async def until(self, predicate, timeout: float = 5.0) -> None:
        async def poll() -> None:
            while not predicate():
                await asyncio.sleep(0.01)
        await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def session(tmp_path: Path):
    s = Session(tmp_path)
    await s.client.start()
    yield s
    await s.client.close()
    s.close_input()
    # The reader ends at end of input; only then may its descriptor be closed (and reused).
    s.client.reader.join(5)
    os.close(s.read_fd)


async def test_lines_become_messages_of_one_thread_one_at_a_time(session: Session) -> None:
    session.type("hello\n  \nwhat did I say?\n")
    await session.until(lambda: len(session.delivered) == 1)
    await session.until(lambda: session.client.lines_waiting == 2)  # the blank one and the next
    assert len(session.delivered) == 1  # the second waits for the first answer

    session.answers[0].set_result(None)
    await session.until(lambda: len(session.delivered) == 2)
    first, second = session.delivered
    assert (first.text, second.text) == ("hello", "what did I say?")  # blank lines skipped
    assert first.channel_id == second.channel_id == CHANNEL_ID
    assert first.user_id == "console:ada" and first.is_direct
    assert first.starts_thread and not second.starts_thread
    assert second.thread_id == first.thread_id
    assert float(second.message_id) > float(first.message_id)


async def test_new_starts_another_thread_and_end_of_input_ends_the_session(session: Session) -> None:
    session.type("one\n/new\ntwo")  # the last line has no newline: it counts at end of input
    session.close_input()
    await session.until(lambda: len(session.delivered) == 1)
    session.answers[0].set_result(None)
    await session.until(lambda: len(session.delivered) == 2)
    session.answers[1].set_result(None)

    await asyncio.wait_for(session.ended.wait(), 5)
    one, two = session.delivered
    assert two.text == "two" and two.starts_thread and two.thread_id != one.thread_id
    assert "(new conversation)" in session.err.getvalue()


async def test_quit_ends_the_session_with_input_still_open(session: Session) -> None:
    session.type("/quit\n")
    await asyncio.wait_for(session.ended.wait(), 5)
    assert session.delivered == []


async def test_end_of_input_waits_for_the_answer_in_flight(session: Session) -> None:
    session.type("last question\n")
    session.close_input()
    await session.until(lambda: len(session.delivered) == 1)
    await session.until(lambda: session.client.lines_waiting == 1)  # the end of input, read
    assert not session.ended.is_set()

    session.answers[0].set_result(None)
    await asyncio.wait_for(session.ended.wait(), 5)


async def test_a_failed_answer_does_not_end_the_session(session: Session) -> None:
    session.type("first\nsecond\n")
    await session.until(lambda: len(session.delivered) == 1)
    session.answers[0].set_exception(RuntimeError("processor bug"))
    session.answers[0].exception()  # retrieved, as the processor's done-callback does (it logs it)
    await session.until(lambda: len(session.delivered) == 2)
    assert not session.ended.is_set()


async def test_pictures_are_saved_in_the_folder_without_overwriting(tmp_path: Path) -> None:
    out = io.StringIO()
    client = ConsoleClient(lambda m: None, lambda: None, out=out, err=io.StringIO(), save_dir=tmp_path)
    (tmp_path / "image.png").write_bytes(b"older picture")

    path = await client.upload_file(CHANNEL_ID, "1.0", "image.png", b"\x89PNG new", "a cat")

    assert path == str((tmp_path / "image-2.png").resolve())
    assert (tmp_path / "image-2.png").read_bytes() == b"\x89PNG new"
    assert (tmp_path / "image.png").read_bytes() == b"older picture"
    assert out.getvalue() == f"[saved {path}]\n"


async def test_what_the_console_cannot_do() -> None:
    client = ConsoleClient(lambda m: None, lambda: None, out=io.StringIO(), err=io.StringIO(), user_name="ada")
    attachment = Attachment("F1", "notes.txt", "text/plain", 10, "https://example.com/notes.txt")

    with pytest.raises(DownloadError):
        await client.download_file(attachment, max_bytes=100)
    assert (await client.get_thread_history(CHANNEL_ID, "1.0")).messages == []
    assert await client.close_stale_progress(CHANNEL_ID, "1.0", "restarted") == 0
    assert await client.socket_connected()
    user = await client.get_user_info(client.user_id)
    assert user.display_name == "ada"
    ZoneInfo(user.timezone)  # a real zone name, usable in the system prompt


def test_local_timezone_prefers_tz_and_falls_back_to_a_valid_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert local_timezone() == "Europe/Berlin"
    monkeypatch.setenv("TZ", "not/a-zone")
    ZoneInfo(local_timezone())


# --- configuration -----------------------------------------------------------------------------

OPENAI_ONLY = {"OPENAI_API_KEY": "sk-test"}


def test_console_mode_needs_no_slack_tokens() -> None:
    config = load_config(OPENAI_ONLY, require_slack=False)
    assert config.slack_bot_token == "" and config.slack_app_token == ""

    with pytest.raises(ConfigError) as slack_mode:
        load_config(OPENAI_ONLY)
    assert any(p.startswith("SLACK_BOT_TOKEN is missing") for p in slack_mode.value.problems)


def test_console_mode_keeps_every_other_check() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxp-wrong-kind", "OPENAI_TIMEOUT_SECONDS": "soon"}
    with pytest.raises(ConfigError) as exc:
        load_config(env, require_slack=False)
    problems = exc.value.problems
    assert any(p.startswith("OPENAI_API_KEY is missing") for p in problems)
    assert any("OPENAI_TIMEOUT_SECONDS='soon'" in p for p in problems)
    assert any(p.startswith("SLACK_BOT_TOKEN must start with 'xoxb-'") for p in problems)  # set: checked
    assert not any("SLACK_APP_TOKEN" in p for p in problems)
