"""Text out of shared documents, read in a sandboxed worker process: which kind a file is
(`kind_of`), the reader of that kind (`extract`; one module a kind in document_readers/: PDF,
Word, Excel, PowerPoint, CSV, web pages, e-mails, text), and the worker that runs it.

Parsing is CPU work in libraries that mostly hold the GIL, so it never runs on the event
loop, nor in a thread: `DocumentParser` runs this file as a short-lived worker process per
document (bytes on stdin, JSON on stdout) and kills it at the time limit. The worker is
sandboxed, since a document is whatever a stranger uploaded: an environment without the bot's
tokens or keys, and limits on memory, CPU time, processes and file size set before it reads a
byte of the document. The parsing libraries (pypdf, pypdfium2, python-docx, openpyxl,
python-pptx) are imported inside the readers, so only the worker pays for them.
Every way a file can be unreadable becomes a `DocumentError` whose reason a person can read.
docs/file-types.md lists what each kind becomes and its limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from pathlib import Path

from document_readers.common import DocumentError, Extracted, Limits, file_extension
from document_readers.email_messages import read_eml
from document_readers.pdf import read_pdf
from document_readers.slides import read_pptx
from document_readers.spreadsheets import read_csv, read_xlsx
from document_readers.text import read_text
from document_readers.web_pages import read_html
from document_readers.word import read_docx
import sandbox

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = {
    "txt", "md", "markdown", "rst", "json", "jsonl", "yaml", "yml", "toml", "ini",
    "cfg", "conf", "xml", "css", "log", "sql", "py", "js", "ts", "tsx", "jsx",
    "java", "kt", "go", "rs", "rb", "php", "c", "h", "cpp", "hpp", "cs", "swift", "sh", "bash",
    "zsh", "ps1", "r", "scala", "lua", "pl", "dockerfile", "makefile", "env", "tf", "vue",
}
# Kinds by extension (checked first: a name says more than the mimetype a browser guessed).
KIND_BY_EXTENSION = {
    "pdf": "pdf", "docx": "docx", "xlsx": "xlsx", "xlsm": "xlsx", "pptx": "pptx", "pptm": "pptx",
    "csv": "csv", "tsv": "csv", "tab": "csv", "html": "html", "htm": "html", "xhtml": "html",
    "eml": "eml",
}
KIND_BY_MIMETYPE = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.ms-powerpoint.presentation.macroenabled.12": "pptx",
    "text/csv": "csv", "application/csv": "csv", "text/tab-separated-values": "csv",
    "text/html": "html", "application/xhtml+xml": "html",
    "message/rfc822": "eml",
}
TEXT_MIMETYPES = ("application/json", "application/xml", "application/x-yaml", "application/yaml")
# What the bot reads, for the reply to a file it does not.
READABLE_KINDS = (
    "PDF, Word (.docx), Excel (.xlsx, .xlsm), PowerPoint (.pptx), CSV and TSV, web pages (.html), "
    "e-mails (.eml), text files, images, and voice clips and audio (.m4a, .mp3, .wav, .webm, .ogg)"
)
UNSUPPORTED_REASON = f"I can't read this kind of file yet ({READABLE_KINDS} work)"
# A worker's answer bigger than this is decoded in a thread: JSON of 200,000 characters of text
# and a few page images is megabytes, milliseconds of CPU the loop owes to other conversations.
JSON_OFF_LOOP_BYTES = 256 * 1024


def kind_of(name: str, mimetype: str) -> str | None:
    """'pdf', 'docx', 'xlsx', 'pptx', 'csv', 'html', 'eml', 'text', or None for what we do not
    read (images are handled elsewhere). The extension decides first, then the mimetype."""
    extension = file_extension(name)
    mimetype = mimetype.lower().split(";", 1)[0].strip()
    if extension in KIND_BY_EXTENSION:
        return KIND_BY_EXTENSION[extension]
    if extension in TEXT_EXTENSIONS:
        return "text"
    if mimetype in KIND_BY_MIMETYPE:
        return KIND_BY_MIMETYPE[mimetype]
    if mimetype.startswith("text/") or mimetype in TEXT_MIMETYPES:
        return "text"
    return None


def extract(name: str, mimetype: str, data: bytes, limits: Limits) -> Extracted:
    """Pure and CPU-bound: call it through `DocumentParser`, never on the event loop."""
    kind = kind_of(name, mimetype)
    if kind is None:
        raise DocumentError(UNSUPPORTED_REASON)
    if not data:
        raise DocumentError("it is empty")
    if kind in ("text", "csv", "html", "eml"):
        if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DocumentError("it is a binary file, not text")
    if kind == "pdf":
        extracted = read_pdf(data, limits)
    elif kind == "docx":
        extracted = read_docx(data, limits)
    elif kind == "xlsx":
        extracted = read_xlsx(data, limits)
    elif kind == "pptx":
        extracted = read_pptx(data, limits)
    elif kind == "csv":
        extracted = read_csv(name, mimetype, data, limits)
    elif kind == "html":
        extracted = read_html(data, limits)
    elif kind == "eml":
        extracted = read_eml(data, limits)
    else:
        extracted = read_text(data, limits)
    if not extracted.text.strip():
        raise DocumentError("it has no text in it")
    return extracted


def worker_result(name: str, returncode: int | None, out: bytes, err: bytes) -> Extracted:
    """What a finished worker produced, or the `DocumentError` it amounts to."""
    if err:
        log.warning("document worker for %s: %s", name, err.decode(errors="replace")[-2000:])
    if returncode == sandbox.MEMORY_EXIT:
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
    """Runs `extract` in a worker process per document (sandbox.py), a few at a time."""

    def __init__(self, limits: Limits, timeout: float, concurrency: int = 2) -> None:
        self._limits = limits
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)

    def worker_args(self, name: str, mimetype: str) -> list[str]:
        return [name, mimetype, json.dumps(asdict(self._limits))]

    async def parse(self, name: str, mimetype: str, data: bytes) -> Extracted:
        async with self._slots:
            try:
                done = await sandbox.run(WORKER, self.worker_args(name, mimetype), data, self._timeout)
            except sandbox.WorkerTimeout:
                log.warning("parsing %s took longer than %g s; worker killed", name, self._timeout)
                raise DocumentError(f"it took longer than {self._timeout:g} seconds to read") from None
        if len(done.out) > JSON_OFF_LOOP_BYTES:  # a long text or page images: decoding is CPU work
            return await asyncio.to_thread(worker_result, name, done.returncode, done.out, done.err)
        return worker_result(name, done.returncode, done.out, done.err)


def _job(args: list[str], data: bytes) -> dict[str, object]:
    """The worker's job (`sandbox.serve`): arguments name, mimetype, limits; the document."""
    name, mimetype, limits = args[0], args[1], Limits(**json.loads(args[2]))
    try:
        return asdict(extract(name, mimetype, data, limits))
    except DocumentError as exc:
        return {"error": exc.reason}


WORKER = Path(__file__).resolve()

if __name__ == "__main__":
    sandbox.serve(_job)
