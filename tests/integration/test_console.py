"""`python main.py --console`: the real process, the real processor, the loopback OpenAI, no Slack."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.fakes.openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


async def start_console(
    openai: FakeOpenAI, tmp_path: Path, python_env: dict[str, str], database_url: str
) -> asyncio.subprocess.Process:
    """The console in `tmp_path` (pictures would be saved there), stderr into a file there."""
    env = {k: v for k, v in python_env.items() if not k.startswith(("SLACK_", "OPENAI_"))}
    env.update(
        OPENAI_API_KEY=openai.api_key, OPENAI_BASE_URL=openai.base_url, OPENAI_MODEL="test-model",
        OPENAI_MAX_RETRIES="0", DATABASE_URL=database_url, USER="ada",
        PYTHONPATH=str(ROOT),
    )
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "main.py"), "--console", cwd=tmp_path, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )


async def say(process: asyncio.subprocess.Process, line: str, tmp_path: Path) -> str:
    """Type a line; the answer's line from stdout."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(line.encode() + b"\n")
    await process.stdin.drain()
    try:
        answer = await asyncio.wait_for(process.stdout.readline(), 20)
    except TimeoutError:
        raise AssertionError(f"no answer to {line!r}; stderr:\n{(tmp_path / 'stderr.txt').read_text()}") from None
    return answer.decode()


async def end(process: asyncio.subprocess.Process, close_stdin: bool = True) -> tuple[int, str]:
    """Exit code and the rest of stdout, once the process ends."""
    assert process.stdin is not None and process.stdout is not None
    try:
        if close_stdin:
            process.stdin.close()
        rest = await asyncio.wait_for(process.stdout.read(), 15)
        return await asyncio.wait_for(process.wait(), 15), rest.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_console_conversation_keeps_context_and_ends_cleanly_at_end_of_input(
    openai: FakeOpenAI, tmp_path: Path, python_env: dict[str, str], database_url: str
):
    process = await start_console(openai, tmp_path, python_env, database_url)
    try:
        first = await say(process, "remember the word kiwi", tmp_path)
        second = await say(process, "what was the word?", tmp_path)
    finally:
        code, rest = await end(process)

    assert first == "You said: ada: remember the word kiwi\n"
    assert second == "You said: ada: what was the word?\n"
    assert code == 0
    assert rest == ""  # statuses and logs went to stderr: stdout is the conversation
    contents = [item["content"] for item in openai.responses_requests()[1]["input"]]
    assert contents == [
        "ada: remember the word kiwi", "You said: ada: remember the word kiwi", "ada: what was the word?",
    ]
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Thinking" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "backups").exists()  # backups are the Slack bot's job


async def test_quit_ends_the_session_while_stdin_is_still_open(
    openai: FakeOpenAI, tmp_path: Path, python_env: dict[str, str], database_url: str
):
    process = await start_console(openai, tmp_path, python_env, database_url)
    try:
        assert await say(process, "hello", tmp_path) == "You said: ada: hello\n"
        assert process.stdin is not None
        process.stdin.write(b"/quit\n")
        await process.stdin.drain()
    finally:
        # stdin stays open: the reader thread is still blocked in read() when the process exits.
        code, rest = await end(process, close_stdin=False)

    assert code == 0 and rest == ""
    assert "Fatal Python error" not in (tmp_path / "stderr.txt").read_text()
