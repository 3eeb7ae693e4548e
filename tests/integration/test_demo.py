"""`make demo`: the loopback Slack and OpenAI and the real bot in one process, chatted with here."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def test_the_demo_streams_answers_keeps_the_conversation_and_ends_at_end_of_input(
    tmp_path: Path, python_env: dict[str, str]
):
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fakes", "--bot", "--openai-latency", "0", cwd=ROOT,
            env={**python_env, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )
    try:
        out, _ = await asyncio.wait_for(process.communicate(b"hello :wave:\nand again\n"), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    errors = (tmp_path / "stderr.txt").read_text()
    assert process.returncode == 0, errors
    lines = out.decode().splitlines()
    assert lines[0] == "You said: Alice: hello 👋"  # through Slack's protocols, shortcodes shown as emoji
    assert lines[1].startswith("👋 Welcome, @U0ALICE!")  # the first-time welcome, a message of its own
    assert lines[2] == "You said: Alice: and again"
    assert "Ctrl-D ends the demo" in errors and "Traceback" not in errors
