"""Text out of shared documents: PDF, Word, and text-like files (code, CSV, JSON, logs, …).

Parsing is CPU work in pure-Python libraries that hold the GIL, so it never runs on the event
loop, nor in a thread: `DocumentParser` runs this file as a short-lived worker process per
document (bytes on stdin, JSON on stdout) and kills it at the time limit. The worker is
sandboxed, since a document is whatever a stranger uploaded: an environment without the bot's
tokens or keys, and limits on memory, CPU time, processes and file size set before it reads a
byte of the document.
Every way a file can be unreadable becomes a `DocumentError` whose reason a person can read.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
import os
import struct
import sys
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = {
    "txt", "md", "markdown", "rst", "csv", "tsv", "json", "jsonl", "yaml", "yml", "toml", "ini",
    "cfg", "conf", "xml", "html", "htm", "css", "log", "sql", "py", "js", "ts", "tsx", "jsx",
    "java", "kt", "go", "rs", "rb", "php", "c", "h", "cpp", "hpp", "cs", "swift", "sh", "bash",
    "zsh", "ps1", "r", "scala", "lua", "pl", "dockerfile", "makefile", "env", "tf", "vue",
}
WORKER_MEMORY_BYTES = 1024 * 1024 * 1024
# The parent kills the worker at the timeout; the CPU limit ends it even if the parent is gone.
WORKER_CPU_MARGIN_SECONDS = 5
# It writes no files (its result goes to a pipe, which this does not limit) and starts no
# process or thread. RLIMIT_NPROC counts every process of the account and root is exempt.
WORKER_MAX_FILE_BYTES = 0
WORKER_MAX_PROCESSES = 0
# All of the worker's environment, from the bot's: what Python needs to start and decode names.
WORKER_ENV_KEYS = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "PYTHONHOME")
# A .docx is a zip: refuse archives that would inflate past this, or by more than this ratio.
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100
MEMORY_EXIT = 3
# Scanned PDFs go to the vision model as the page images they contain, within these bounds.
MAX_SCAN_IMAGES = 5
MAX_SCAN_IMAGE_BYTES = 5 * 1024 * 1024
# A worker's answer bigger than this is decoded in a thread: JSON of 200,000 characters of text
# and a few page images is megabytes, milliseconds of CPU the loop owes to other conversations.
JSON_OFF_LOOP_BYTES = 256 * 1024


class DocumentError(Exception):
    """A document that cannot be read; `reason` completes "I couldn't read <name>: …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_pages: int = 300
    max_chars: int = 200_000


@dataclass(frozen=True)
class Extracted:
    text: str
    pages: int | None = None
    truncated: bool = False
    # (mimetype, base64) page images of a scanned PDF, for the vision model.
    images: tuple[tuple[str, str], ...] = ()


def kind_of(name: str, mimetype: str) -> str | None:
    """'pdf', 'docx', 'text', or None for what we do not read (images are handled elsewhere)."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else name.lower()
    if extension == "pdf" or mimetype == "application/pdf":
        return "pdf"
    if extension == "docx" or "wordprocessingml" in mimetype:
        return "docx"
    if extension in TEXT_EXTENSIONS or mimetype.startswith("text/") or mimetype in (
        "application/json", "application/xml", "application/x-yaml", "application/yaml",
    ):
        return "text"
    return None


def _cap(text: str, limits: Limits) -> Extracted:
    if len(text) <= limits.max_chars:
        return Extracted(text)
    note = f"\n[… the rest is cut: the document is longer than {limits.max_chars:,} characters …]"
    return Extracted(text[: limits.max_chars] + note, truncated=True)


def _png(width: int, height: int, channels: int, pixels: bytes) -> bytes:
    """8-bit gray or RGB pixels as a PNG, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    stride = width * channels
    rows = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if channels == 3 else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _page_images(page: Any) -> list[tuple[str, bytes]]:
    """The images a page draws, where we can pass them on as JPEG or PNG without decoding art."""
    found: list[tuple[str, bytes]] = []
    resources = page.get("/Resources") or {}
    xobjects = resources.get("/XObject") or {}
    for reference in xobjects.values():
        image = reference.get_object()
        if image.get("/Subtype") != "/Image":
            continue
        filters = image.get("/Filter")
        filters = [filters] if isinstance(filters, str) else list(filters or [])
        if filters == ["/DCTDecode"]:
            found.append(("image/jpeg", bytes(image._data)))
            continue
        channels = {"/DeviceRGB": 3, "/DeviceGray": 1}.get(image.get("/ColorSpace"))
        if filters in ([], ["/FlateDecode"]) and channels and image.get("/BitsPerComponent") == 8:
            width, height = int(image["/Width"]), int(image["/Height"])
            pixels = image.get_data()
            if len(pixels) >= width * height * channels:
                found.append(("image/png", _png(width, height, channels, pixels)))
    return found


def _scanned(reader: Any, limits: Limits) -> Extracted:
    """A PDF without a text layer: its page images, bounded, for the vision model."""
    images: list[tuple[str, str]] = []
    for page in reader.pages[: limits.max_pages]:
        for mimetype, data in _page_images(page):
            if len(data) <= MAX_SCAN_IMAGE_BYTES and len(images) < MAX_SCAN_IMAGES:
                images.append((mimetype, base64.b64encode(data).decode()))
    if not images:
        raise DocumentError("it has no text layer and no page images I can read")
    total = len(reader.pages)
    note = f"[A scanned document of {total} pages without text; {len(images)} page image(s) are attached.]"
    return Extracted(note, total, len(images) < total, tuple(images))


def _pdf(data: bytes, limits: Limits) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("it is password-protected")
        total = len(reader.pages)
        parts = []
        for number, page in enumerate(reader.pages[: limits.max_pages], start=1):
            parts.append(f"--- page {number} ---\n{(page.extract_text() or '').strip()}")
        if not any(part.split("\n", 1)[1].strip() for part in parts):
            return _scanned(reader, limits)
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DocumentError("the file is damaged or is not a real PDF") from exc
    text = "\n\n".join(parts)
    if total > limits.max_pages:
        text += f"\n\n[… only the first {limits.max_pages} of {total} pages were read …]"
    extracted = _cap(text, limits)
    return Extracted(extracted.text, total, extracted.truncated or total > limits.max_pages)


def _check_zip(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DocumentError("the file is damaged or is not a real Word document") from exc
    inflated = sum(info.file_size for info in archive.infolist())
    if inflated > MAX_UNZIPPED_BYTES or inflated > MAX_ZIP_RATIO * max(len(data), 1):
        raise DocumentError("it would expand to an unreasonable size (it looks like a zip bomb)")


def _docx(data: bytes, limits: Limits) -> Extracted:
    _check_zip(data)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DocumentError("the file is damaged or is not a real Word document") from exc
    lines = []
    # Paragraphs and tables in document order (document.paragraphs alone loses the tables).
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(child, document).text)
        elif tag == "tbl":
            for row in Table(child, document).rows:
                lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return _cap("\n".join(lines).strip(), limits)


def _decode(data: bytes) -> str:
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def extract(name: str, mimetype: str, data: bytes, limits: Limits) -> Extracted:
    """Pure and CPU-bound: call it through `DocumentParser`, never on the event loop."""
    kind = kind_of(name, mimetype)
    if kind is None:
        raise DocumentError("I can't read this kind of file yet")
    if not data:
        raise DocumentError("it is empty")
    if kind == "pdf":
        extracted = _pdf(data, limits)
    elif kind == "docx":
        extracted = _docx(data, limits)
    else:
        if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DocumentError("it is a binary file, not text")
        extracted = _cap(_decode(data), limits)
    if not extracted.text.strip():
        raise DocumentError("it has no text in it")
    return extracted


def worker_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The worker's whole environment: what Python needs, never the bot's tokens or keys.

    An allow list, so a secret added to the bot's environment later stays out as well.
    """
    env = {key: parent[key] for key in WORKER_ENV_KEYS if key in parent}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no .pyc files: it may write no files at all
    return env


def worker_cpu_seconds(timeout: float) -> int:
    return math.ceil(timeout) + WORKER_CPU_MARGIN_SECONDS


def worker_limits(cpu_seconds: int) -> dict[str, int]:
    """The worker's resource limits by `resource` name, each set as soft = hard."""
    return {
        "RLIMIT_AS": WORKER_MEMORY_BYTES,
        "RLIMIT_CPU": cpu_seconds,
        "RLIMIT_FSIZE": WORKER_MAX_FILE_BYTES,
        "RLIMIT_NPROC": WORKER_MAX_PROCESSES,
        "RLIMIT_CORE": 0,  # a crash leaves no core file with the document in it
    }


def worker_result(name: str, returncode: int | None, out: bytes, err: bytes) -> Extracted:
    """What a finished worker produced, or the `DocumentError` it amounts to."""
    if err:
        log.warning("document worker for %s: %s", name, err.decode(errors="replace")[-2000:])
    if returncode == MEMORY_EXIT:
        raise DocumentError("it needs more memory to read than I allow for one file")
    if returncode != 0 or not out:
        raise DocumentError("the file is damaged or in a form I can't read")
    try:
        result = json.loads(out)
    except json.JSONDecodeError as exc:
        log.warning("document worker for %s wrote something that is not JSON: %s", name, exc)
        raise DocumentError("the file is damaged or in a form I can't read") from exc
    if "error" in result:
        raise DocumentError(result["error"])
    images = tuple((mimetype, data) for mimetype, data in result.pop("images", ()))
    return Extracted(**result, images=images)


class DocumentParser:
    """Runs `extract` in a worker process per document, a few at a time, killed at the limit."""

    def __init__(self, limits: Limits, timeout: float, concurrency: int = 2) -> None:
        self._limits = limits
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)

    async def parse(self, name: str, mimetype: str, data: bytes) -> Extracted:
        async with self._slots:
            process = await self.start_worker(name, mimetype)
            try:
                out, err = await asyncio.wait_for(process.communicate(data), self._timeout)
            except TimeoutError:
                await self._kill(process)
                log.warning("parsing %s took longer than %g s; worker killed", name, self._timeout)
                raise DocumentError(f"it took longer than {self._timeout:g} seconds to read") from None
            except asyncio.CancelledError:
                await self._kill(process)
                raise
        if len(out) > JSON_OFF_LOOP_BYTES:  # a long text or page images: decoding is CPU work
            return await asyncio.to_thread(worker_result, name, process.returncode, out, err)
        return worker_result(name, process.returncode, out, err)

    async def start_worker(self, name: str, mimetype: str) -> asyncio.subprocess.Process:
        """A sandboxed worker for one document, waiting for its bytes on stdin."""
        return await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), name, mimetype,
            json.dumps(asdict(self._limits)), str(worker_cpu_seconds(self._timeout)),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=worker_environment(os.environ),
        )

    @staticmethod
    async def _kill(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _confine(cpu_seconds: int) -> None:
    """Set this worker's limits, in the worker itself: a `preexec_fn` is unsafe in the bot,
    whose other threads (aiosqlite's, `to_thread`'s) may hold locks at the fork.

    A limit never goes above the hard limit the bot itself runs under.
    """
    import resource

    for name, value in worker_limits(cpu_seconds).items():
        limit = getattr(resource, name)
        _, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, value))


def _worker() -> None:
    """Entry point of the worker process: argv name, mimetype, limits, CPU seconds; stdin bytes;
    stdout JSON. Confined first, before it reads the document."""
    _confine(int(sys.argv[4]))
    name, mimetype, limits = sys.argv[1], sys.argv[2], Limits(**json.loads(sys.argv[3]))
    data = sys.stdin.buffer.read()
    try:
        result: dict[str, object] = asdict(extract(name, mimetype, data, limits))
    except DocumentError as exc:
        result = {"error": exc.reason}
    except MemoryError:
        sys.exit(MEMORY_EXIT)
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    _worker()
