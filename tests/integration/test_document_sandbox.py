"""The document worker runs without the bot's secrets and under its limits, as the parser starts it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

import document_handler
import sandbox
from document_handler import DocumentParser, Limits, worker_result
from sandbox import worker_cpu_seconds
from tests.documents import make_ccitt_scan, make_pptx, make_xlsx

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the worker's /proc entries"
)

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-sandbox-test-bot-token",
    "SLACK_APP_TOKEN": "xapp-sandbox-test-app-token",
    "OPENAI_API_KEY": "sk-sandbox-test-openai-key",
    "SOME_FUTURE_SECRET": "a-secret-nobody-listed-yet",
}
# More than a pipe holds (64 KiB), so a drained write means the worker has started reading.
DOCUMENT = b"quarterly notes\n" * (256 * 1024)
# /proc/<pid>/limits rows, and the soft and hard limits we expect in them.
LIMIT_ROWS = {
    "Max address space": sandbox.WORKER_MEMORY_BYTES,
    "Max file size": 0,
    "Max processes": 0,
    "Max core file size": 0,
}


def proc_limits(text: str) -> dict[str, tuple[str, str]]:
    """'Max cpu time  35  35  seconds' rows of /proc/<pid>/limits as {name: (soft, hard)}."""
    rows = {}
    for line in text.splitlines()[1:]:
        match = re.match(r"(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


async def test_the_worker_has_no_secrets_and_runs_under_its_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    parser = DocumentParser(Limits(max_pages=5, max_chars=1000), timeout=30)

    process = await sandbox.start(document_handler.WORKER, parser.worker_args("notes.txt", "text/plain"), 30)
    try:
        assert process.stdin is not None
        process.stdin.write(DOCUMENT)
        # Returns once the worker has read most of it: it sets its limits before reading.
        await process.stdin.drain()
        proc = Path(f"/proc/{process.pid}")
        environ = await asyncio.to_thread((proc / "environ").read_bytes)
        limits = proc_limits(await asyncio.to_thread((proc / "limits").read_text))
        process.stdin.close()  # the end of the document: now it parses
        out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    names = {entry.split(b"=", 1)[0].decode() for entry in environ.split(b"\0") if entry}
    assert names <= {*sandbox.WORKER_ENV_KEYS, "PYTHONDONTWRITEBYTECODE"}
    for name, value in SECRETS.items():
        assert name.encode() not in environ and value.encode() not in environ
    if "PATH" in os.environ:
        assert "PATH" in names
    cpu = str(worker_cpu_seconds(30))
    assert limits["Max cpu time"] == (cpu, cpu)
    for row, value in LIMIT_ROWS.items():
        assert limits[row] == (str(value), str(value)), row
    # And it still did its work: a real parse, read back the way the parser reads it.
    result = worker_result("notes.txt", process.returncode, out, err)
    assert result.text.startswith("quarterly notes\nquarterly notes") and result.truncated


async def test_the_image_worker_has_no_secrets_and_runs_under_the_same_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's decoders read what a stranger shared: in the same sandbox as documents."""
    from PIL import Image

    import image_fit

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    picture = io.BytesIO()
    Image.frombytes("RGB", (1500, 1500), os.urandom(1500 * 1500 * 3)).save(picture, "PNG")

    process = await sandbox.start(image_fit.WORKER, ["image/png", str(1024 * 1024)], 30)
    try:
        assert process.stdin is not None
        process.stdin.write(picture.getvalue())  # megabytes: more than a pipe holds
        await process.stdin.drain()  # the worker is reading: its limits are set
        proc = Path(f"/proc/{process.pid}")
        environ = await asyncio.to_thread((proc / "environ").read_bytes)
        limits = proc_limits(await asyncio.to_thread((proc / "limits").read_text))
        process.stdin.close()
        out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    for name, value in SECRETS.items():
        assert name.encode() not in environ and value.encode() not in environ
    for row, value in LIMIT_ROWS.items():
        assert limits[row] == (str(value), str(value)), row
    fitted = image_fit.fit_result(picture.getvalue(), "image/png", sandbox.Finished(process.returncode, out, err))
    assert fitted.shrunk and len(fitted.data) <= 1024 * 1024


@pytest.mark.parametrize(
    ("name", "mimetype", "make", "expected"),
    [
        ("budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         lambda: make_xlsx({"Budget": [["Project", "Cost"], ["Falcon", 0.1]]}, formulas={"Budget": ("B3", "=B2*3", 0.30000000000000004)}),
         "--- sheet 1: Budget ---\n| Project | Cost |\n| --- | --- |\n| Falcon | 0.1 |\n|  | 0.3 |"),
        ("launch.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
         make_pptx, "--- slide 2: Risks ---\nSupplier delay\nBudget overrun\nNotes: Mention the backup supplier in Lisbon"),
        ("signed.pdf", "application/pdf", lambda: make_ccitt_scan(pages=2),
         "[A scanned document of 2 pages without text; 2 page image(s) are attached.]"),
    ],
)
async def test_the_new_readers_work_in_the_sandboxed_worker(name: str, mimetype: str, make, expected: str) -> None:
    """openpyxl, python-pptx and pdfium, imported and run in the worker under its limits."""
    result = await DocumentParser(Limits(), timeout=60).parse(name, mimetype, make())
    assert expected in result.text
    if name.endswith(".pdf"):
        assert [mimetype for mimetype, _ in result.images] == ["image/png", "image/png"]


# Run as a user the kernel holds to RLIMIT_NPROC (root is exempt): every module is imported
# by a first parse (the user may not be able to read the interpreter's files), then the
# limits are set, a thread is shown not to start, and the scan is rendered again.
UNPRIVILEGED_RENDER = """
import json, os, resource, threading  # resource: for confine, after the user can no longer read it
import document_handler, sandbox
from tests.documents import make_ccitt_scan
data = make_ccitt_scan(pages=2)
document_handler.extract("scan.pdf", "application/pdf", data, document_handler.Limits())
if os.getuid() == 0:
    try:
        os.setgid(65534)
        os.setuid(65534)
    except PermissionError:  # root without CAP_SETUID (some containers)
        print(json.dumps({"skip": "cannot drop to an unprivileged user"}))
        raise SystemExit(0)
sandbox.confine(30)
try:
    threading.Thread(target=lambda: None).start()
    thread = "started"
except RuntimeError:
    thread = "refused"
result = document_handler.extract("scan.pdf", "application/pdf", data, document_handler.Limits())
print(json.dumps({"thread": thread, "images": [m for m, _ in result.images], "text": result.text}))
"""


async def test_pdfium_renders_with_no_thread_or_process_allowed() -> None:
    root = Path(__file__).resolve().parents[2]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", UNPRIVILEGED_RENDER, cwd=root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=sandbox.worker_environment(os.environ),
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    result = json.loads(out)
    if "skip" in result:
        pytest.skip(result["skip"])
    assert result["thread"] == "refused"  # RLIMIT_NPROC 0 binds this process
    assert result["images"] == ["image/png", "image/png"]
    assert "scanned document of 2 pages" in result["text"]
