"""Text out of shared documents: PDF, Word, Excel, PowerPoint, CSV, web pages, e-mails and
text-like files (code, JSON, logs, …); scanned PDF pages as page images for the vision model.

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
import base64
import csv
import datetime
import io
import json
import logging
import math
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Mapping

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
    "e-mails (.eml) and text files"
)
UNSUPPORTED_REASON = f"I can't read this kind of file yet ({READABLE_KINDS} work)"
WORKER_MEMORY_BYTES = 1024 * 1024 * 1024
# The parent kills the worker at the timeout; the CPU limit ends it even if the parent is gone.
WORKER_CPU_MARGIN_SECONDS = 5
# It writes no files (its result goes to a pipe, which this does not limit) and starts no
# process or thread. RLIMIT_NPROC counts every process of the account and root is exempt.
WORKER_MAX_FILE_BYTES = 0
WORKER_MAX_PROCESSES = 0
# All of the worker's environment, from the bot's: what Python needs to start and decode names.
WORKER_ENV_KEYS = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "PYTHONHOME")
# .docx, .xlsx and .pptx are zips: refuse archives that would inflate past this, or by more than this ratio.
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100
# A password-protected Office file is not a zip but an OLE compound file holding the encrypted
# package; old binary .xls/.doc/.ppt files are OLE files too, without these stream names.
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OLE_ENCRYPTION_STREAMS = ("EncryptionInfo".encode("utf-16-le"), "EncryptedPackage".encode("utf-16-le"))
MEMORY_EXIT = 3
# Pages of a PDF without a text layer go to the vision model as images, within these bounds.
MAX_SCAN_IMAGES = 5
MAX_SCAN_IMAGE_BYTES = 5 * 1024 * 1024
# Rendered so the longest side is at most this (text stays legible; image_fit.py allows 2048),
# and never above this resolution (a small page is not blown up).
MAX_SCAN_SIDE_PX = 1600
MAX_SCAN_DPI = 200
# Spreadsheets (and CSV): what one sheet may show, and how many sheets are read.
MAX_SHEETS = 20
MAX_SHEET_ROWS = 500
MAX_SHEET_COLUMNS = 100
MAX_SHEET_CELLS = 20_000
# Reading a sheet stops after this many rows, empty ones included (styled empty rows cost time too).
MAX_SHEET_SCAN_ROWS = 100_000
# One cell's text past this is cut, so a cell holding an essay cannot crowd out the table.
MAX_CELL_CHARS = 1000
# The CSV delimiter is guessed from this much of the start of the file (the sniffer is slow).
CSV_SNIFF_CHARS = 8 * 1024
# An e-mail lists at most this many attachment names; a header is cut at this many characters.
MAX_ATTACHMENT_NAMES = 50
MAX_HEADER_CHARS = 500
# Link targets shown beside a web page's link text at most this long (longer ones are noise).
MAX_LINK_CHARS = 100
# A worker's answer bigger than this is decoded in a thread: JSON of 200,000 characters of text
# and a few page images is megabytes, milliseconds of CPU the loop owes to other conversations.
JSON_OFF_LOOP_BYTES = 256 * 1024
# What a damaged file makes the parsing libraries raise (MemoryError is not here: it has its own exit).
DAMAGED = (
    KeyError, ValueError, TypeError, AttributeError, IndexError, SyntaxError, OSError, EOFError,
    LookupError,  # an XML part declaring an encoding that does not exist
    NotImplementedError,  # a zip entry in a compression method or version zipfile does not know
    zipfile.BadZipFile, zlib.error,
)


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


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else name.lower()


def kind_of(name: str, mimetype: str) -> str | None:
    """'pdf', 'docx', 'xlsx', 'pptx', 'csv', 'html', 'eml', 'text', or None for what we do not
    read (images are handled elsewhere). The extension decides first, then the mimetype."""
    extension = _extension(name)
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


def _cap(text: str, limits: Limits) -> Extracted:
    if len(text) <= limits.max_chars:
        return Extracted(text)
    note = f"\n[… the rest is cut: the document is longer than {limits.max_chars:,} characters …]"
    return Extracted(text[: limits.max_chars] + note, truncated=True)


# --- PDF -------------------------------------------------------------------------------------


def _page_picture(page: Any) -> tuple[str, bytes] | None:
    """One page rendered by pdfium as PNG (gray when the page is) or JPEG, whichever is smaller."""
    from PIL import ImageChops

    width, height = page.get_size()
    if not (width > 0 and height > 0):
        return None
    scale = min(MAX_SCAN_SIDE_PX / max(width, height), MAX_SCAN_DPI / 72)
    bitmap = page.render(scale=scale, limit_image_cache=True)
    image = bitmap.to_pil()
    if image.mode == "RGB":
        red, green, blue = image.split()
        if ImageChops.difference(red, green).getbbox() is None and ImageChops.difference(green, blue).getbbox() is None:
            image = red  # a black-and-white or gray scan: one channel, a third of the bytes
    encoded = []
    for mimetype, form, options in (("image/png", "PNG", {}), ("image/jpeg", "JPEG", {"quality": 85})):
        out = io.BytesIO()
        image.save(out, form, **options)
        encoded.append((len(out.getvalue()), mimetype, out.getvalue()))
    _, mimetype, data = min(encoded)
    return mimetype, data


def _render_pages(data: bytes, indexes: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Page images (mimetype, base64) by page index, for the first `MAX_SCAN_IMAGES` of these
    pages that draw anything (an image, a path): pdfium decodes every image filter a scan uses
    (CCITT fax, JBIG2, JPEG 2000, 1-bit, …), so no format is left to hand-made decoding.

    pdfium is a single-threaded C++ library: it renders under the worker's limits as they are
    (1 GiB of address space, RLIMIT_NPROC 0, so no thread could even start; see
    tests/integration/test_document_sandbox.py, which renders as an unprivileged user).
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    drawn = (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_SHADING)
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise DocumentError("the file is damaged or is not a real PDF") from exc
    images: dict[int, tuple[str, str]] = {}
    try:
        for index in indexes:
            if len(images) == MAX_SCAN_IMAGES:
                break
            try:
                page = document[index]
            except pdfium.PdfiumError as exc:
                log.warning("page %d could not be loaded: %s", index + 1, exc)
                continue
            try:
                if next(page.get_objects(filter=drawn), None) is None:
                    continue  # a blank page, or one with an empty text object
                picture = _page_picture(page)
            except pdfium.PdfiumError as exc:
                log.warning("page %d could not be rendered: %s", index + 1, exc)
                continue
            finally:
                page.close()
            if picture is None:
                continue
            mimetype, encoded = picture
            if len(encoded) > MAX_SCAN_IMAGE_BYTES:
                log.warning("page %d image is %d bytes, over %d: left out", index + 1, len(encoded), MAX_SCAN_IMAGE_BYTES)
                continue
            images[index] = (mimetype, base64.b64encode(encoded).decode())
    finally:
        document.close()
    return images


def _pdf(data: bytes, limits: Limits) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("it is password-protected")
        total = len(reader.pages)
        texts = [(page.extract_text() or "").strip() for page in reader.pages[: limits.max_pages]]
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DocumentError("the file is damaged or is not a real PDF") from exc
    blank = [index for index, text in enumerate(texts) if not text]
    if len(blank) == len(texts):  # a scan: its page images are all there is
        images = _render_pages(data, blank)
        if not images:
            raise DocumentError("it has no text layer and no page images I can read")
        note = f"[A scanned document of {total} pages without text; {len(images)} page image(s) are attached.]"
        return Extracted(note, total, len(images) < total, tuple(images.values()))
    try:
        images = _render_pages(data, blank) if blank else {}
    except DocumentError as exc:  # the text is still worth reading
        log.warning("pages without text not rendered: %s", exc.reason)
        images = {}
    numbers = {index: n for n, index in enumerate(images, start=1)}
    parts = []
    for index, text in enumerate(texts):
        if index in numbers:
            text = f"[this page has no text layer; it is attached as page image {numbers[index]}]"
        parts.append(f"--- page {index + 1} ---\n{text}")
    text = "\n\n".join(parts)
    if total > limits.max_pages:
        text += f"\n\n[… only the first {limits.max_pages} of {total} pages were read …]"
    extracted = _cap(text, limits)
    return Extracted(extracted.text, total, extracted.truncated or total > limits.max_pages, tuple(images.values()))


# --- Office files (zips) ------------------------------------------------------------------------


def _check_zip(data: bytes, kind: str) -> None:
    """Before a library opens an Office file: a password-protected one, an old binary one, a
    damaged zip and a zip bomb each get their own reason. `kind` names it: "Word document"."""
    if data.startswith(OLE_SIGNATURE):
        if any(stream in data for stream in OLE_ENCRYPTION_STREAMS):
            raise DocumentError("it is password-protected")
        raise DocumentError(
            "it is an old binary Office file (.doc, .xls or .ppt); save it as .docx, .xlsx or .pptx and share it again"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError) as exc:
        raise DocumentError(f"the file is damaged or is not a real {kind}") from exc
    if any(info.flag_bits & 0x1 for info in archive.infolist()):  # zip-level encryption
        raise DocumentError("it is password-protected")
    inflated = sum(info.file_size for info in archive.infolist())
    if inflated > MAX_UNZIPPED_BYTES or inflated > MAX_ZIP_RATIO * max(len(data), 1):
        raise DocumentError("it would expand to an unreasonable size (it looks like a zip bomb)")


def _docx(data: bytes, limits: Limits) -> Extracted:
    _check_zip(data, "Word document")
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    lines = []
    try:
        document = docx.Document(io.BytesIO(data))
        # Paragraphs and tables in document order (document.paragraphs alone loses the tables).
        for child in document.element.body.iterchildren():
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "p":
                lines.append(Paragraph(child, document).text)
            elif tag == "tbl":
                for row in Table(child, document).rows:
                    lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    except DAMAGED as exc:
        raise DocumentError("the file is damaged or is not a real Word document") from exc
    return _cap("\n".join(lines).strip(), limits)


# --- Spreadsheets ------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A float as a person reads it: 15 significant digits as Excel shows them (0.1 + 0.2 is
    0.3), in the shortest form that round-trips, integers without '.0'."""
    if not math.isfinite(value):
        return str(value)
    shown = float(f"{value:.15g}")
    if shown.is_integer() and abs(shown) < 1e15:
        return str(int(shown))
    return repr(shown)


def cell_text(value: object) -> str:
    """One cell's value as table text: ISO dates, readable numbers, one line, no stray pipes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, float):
        text = _number(value)
    elif isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0):
            text = value.date().isoformat()
        else:
            text = value.isoformat(sep=" ", timespec="seconds" if value.second or value.microsecond else "minutes")
    elif isinstance(value, datetime.time):
        text = value.isoformat(timespec="seconds" if value.second or value.microsecond else "minutes")
    else:  # int, str, date, timedelta, an error such as '#DIV/0!'
        text = value.isoformat() if isinstance(value, datetime.date) else str(value)
    text = " ".join(text.split())
    if len(text) > MAX_CELL_CHARS:
        text = text[:MAX_CELL_CHARS] + "…"
    return text.replace("|", "\\|")


@dataclass
class _Table:
    rows: list[list[str]]
    # The sheet row (1-based, counting empty rows) where reading stopped at a limit, if it did.
    stopped_at: int | None = None
    columns_cut: bool = False


def _read_table(rows: Iterator[Sequence[object]]) -> _Table:
    """Rows until a limit: empty rows are skipped, trailing empty cells dropped, at most
    `MAX_SHEET_COLUMNS` columns (a value past them marks the table as cut)."""
    table = _Table([])
    cells = 0
    for number, row in enumerate(rows, start=1):
        if number > MAX_SHEET_SCAN_ROWS:
            table.stopped_at = number
            break
        if row.count(None) + row.count("") == len(row):  # an empty row, at C speed
            continue
        if len(row) > MAX_SHEET_COLUMNS and any(cell_text(value) for value in row[MAX_SHEET_COLUMNS:]):
            table.columns_cut = True
        texts = [cell_text(value) for value in row[:MAX_SHEET_COLUMNS]]
        while texts and not texts[-1]:
            texts.pop()
        if not texts:
            continue
        if len(table.rows) == MAX_SHEET_ROWS or cells + len(texts) > MAX_SHEET_CELLS:
            table.stopped_at = number
            break
        table.rows.append(texts)
        cells += len(texts)
    return table


def _table_lines(table: _Table, label: str, more_rows: int | None) -> list[str]:
    """A pipe table, its first row as the header, then what was left out, said in the text."""
    width = max(len(row) for row in table.rows)
    lines = []
    for number, row in enumerate(table.rows):
        lines.append("| " + " | ".join(row + [""] * (width - len(row))) + " |")
        if number == 0:
            lines.append("|" + " --- |" * width)
    if table.columns_cut:
        lines.append(f"[… columns after the first {MAX_SHEET_COLUMNS} of {label} not shown …]")
    if table.stopped_at is not None:
        count = f"{more_rows:,} more rows" if more_rows else "more rows"
        lines.append(f"[… {count} of {label} not shown …]")
    return lines


def _xlsx(data: bytes, limits: Limits) -> Extracted:
    """Every sheet by name as a table, cached formula results rather than formulas."""
    _check_zip(data, "Excel workbook")
    from openpyxl import load_workbook
    from openpyxl.chartsheet import Chartsheet
    from openpyxl.utils.exceptions import InvalidFileException

    damaged = "the file is damaged or is not a real Excel workbook"
    try:
        # Read-only streams each sheet (memory stays small); data_only gives the values Excel
        # cached at the last save (a workbook never opened in Excel has none: those cells are empty).
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, *DAMAGED) as exc:
        raise DocumentError(damaged) from exc
    sections = []
    truncated = False
    empty = 0
    try:
        names = workbook.sheetnames
        for number, name in enumerate(names[:MAX_SHEETS], start=1):
            sheet = workbook[name]
            state = "" if sheet.sheet_state == "visible" else f" ({sheet.sheet_state})"
            heading = f"--- sheet {number}: {name}{state} ---"
            if isinstance(sheet, Chartsheet):
                sections.append(f"{heading}\n(a chart, not read)")
                continue
            declared = sheet.max_row  # from the sheet's own <dimension>, which may be wrong:
            sheet.reset_dimensions()  # read what is there, not what the header claims
            table = _read_table(sheet.iter_rows(max_col=MAX_SHEET_COLUMNS + 1, values_only=True))
            if not table.rows:
                if table.stopped_at is not None:
                    truncated = True
                    sections.append(f"{heading}\n(no values in its first {MAX_SHEET_SCAN_ROWS:,} rows; the rest was not read)")
                else:
                    empty += 1
                    sections.append(f"{heading}\n(empty)")
                continue
            more = None
            if table.stopped_at is not None and declared and declared >= table.stopped_at:
                more = declared - table.stopped_at + 1
            truncated = truncated or table.stopped_at is not None or table.columns_cut
            sections.append("\n".join([heading, *_table_lines(table, name, more)]))
    except (InvalidFileException, *DAMAGED) as exc:
        raise DocumentError(damaged) from exc
    finally:
        workbook.close()
    if empty == len(names):
        raise DocumentError("its sheets are all empty")
    if len(names) > MAX_SHEETS:
        truncated = True
        rest = names[MAX_SHEETS:]
        sections.append(f"[… {len(rest)} more sheets not shown: {', '.join(rest[:MAX_SHEETS])}{', …' if len(rest) > MAX_SHEETS else ''} …]")
    extracted = _cap("\n\n".join(sections), limits)
    return Extracted(extracted.text, truncated=truncated or extracted.truncated)


def _delimiter(text: str) -> str:
    """The CSV's delimiter as the stdlib sniffer guesses it from the first lines, else a comma."""
    sample = text[:CSV_SNIFF_CHARS]
    if len(text) > CSV_SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error as exc:  # one column, or no consistent delimiter
        log.debug("CSV delimiter not sniffed (%s): a comma", exc)
        return ","


def _csv(name: str, mimetype: str, data: bytes, limits: Limits) -> Extracted:
    """A CSV or TSV file as one table; a file the csv module cannot split is read as text."""
    text = _decode(data)
    tab = _extension(name) in ("tsv", "tab") or "tab-separated" in mimetype
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tab else _delimiter(text))
    try:
        table = _read_table(reader)
    except csv.Error as exc:  # e.g. an unclosed quote swallowing the file
        log.warning("not well-formed CSV (%s): read as text", exc)
        return _cap(text, limits)
    more = None
    if table.stopped_at is not None:  # the C parser counts the rest quickly
        try:
            more = 1 + sum(1 for row in reader if any(field.strip() for field in row))
        except csv.Error as exc:  # past what is shown: the note just gives no count
            log.warning("CSV not well-formed after row %d (%s): the rows left out are not counted", table.stopped_at, exc)
    if not table.rows:
        return Extracted("")
    extracted = _cap("\n".join(_table_lines(table, name, more)), limits)
    return Extracted(extracted.text, truncated=extracted.truncated or table.stopped_at is not None or table.columns_cut)


# --- Presentations -----------------------------------------------------------------------------


def _frame_text(text: str) -> str:
    # python-pptx gives a line break inside a paragraph as a vertical tab.
    return text.replace("\v", "\n").strip()


def _shape_lines(shape: Any) -> Iterator[str]:
    """A shape's text: grouped shapes in order, a table as rows, a chart by its title."""
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        for inner in shape.shapes:
            yield from _shape_lines(inner)
    elif shape.has_table:
        for row in shape.table.rows:
            yield " | ".join(" ".join(_frame_text(cell.text).split()) for cell in row.cells)
    elif shape.has_chart:
        chart = shape.chart
        title = _frame_text(chart.chart_title.text_frame.text) if chart.has_title else ""
        yield f"[chart{': ' + title if title else ''}]"
    elif shape.has_text_frame and (text := _frame_text(shape.text_frame.text)):
        yield text


def _slide_lines(number: int, slide: Any) -> tuple[list[str], bool]:
    """'--- slide 3: Title ---', the text of its shapes, its speaker notes; and whether it had text."""
    title_shape = slide.shapes.title
    title = _frame_text(title_shape.text_frame.text) if title_shape is not None else ""
    title_id = title_shape.shape_id if title_shape is not None else None
    lines = [f"--- slide {number}: {' '.join(title.split())} ---" if title else f"--- slide {number} ---"]
    for shape in slide.shapes:
        if shape.shape_id != title_id:
            lines.extend(_shape_lines(shape))
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = _frame_text(frame.text) if frame is not None else ""
        if notes:
            lines.append(f"Notes: {notes}")
    return lines, bool(title) or len(lines) > 1


def _pptx(data: bytes, limits: Limits) -> Extracted:
    """Slide by slide: title, the text of every shape (grouped ones too), tables, notes."""
    _check_zip(data, "PowerPoint presentation")
    from pptx import Presentation
    from pptx.exc import PythonPptxError

    try:
        slides = list(Presentation(io.BytesIO(data)).slides)
        read = [_slide_lines(number, slide) for number, slide in enumerate(slides[: limits.max_pages], start=1)]
    except (PythonPptxError, *DAMAGED) as exc:
        raise DocumentError("the file is damaged or is not a real PowerPoint presentation") from exc
    if not any(has_text for _, has_text in read):
        raise DocumentError("its slides have no text in them")
    text = "\n\n".join("\n".join(lines) for lines, _ in read)
    if len(slides) > limits.max_pages:
        text += f"\n\n[… only the first {limits.max_pages} of {len(slides)} slides were read …]"
    extracted = _cap(text, limits)
    return Extracted(extracted.text, truncated=extracted.truncated or len(slides) > limits.max_pages)


# --- Web pages and e-mails ---------------------------------------------------------------------


class _HtmlText(HTMLParser):
    """A web page's readable text: block structure as line breaks, link text (with short web
    targets), no scripts, styles, head content, comments or hidden elements (text a person
    never sees is where instructions to the model would hide)."""

    SKIP = {"head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "select"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
    PARAGRAPH = {"p", "table", "pre", "blockquote", "ul", "ol", "dl", "figure", "form", "fieldset", "address",
                 "h1", "h2", "h3", "h4", "h5", "h6"}
    LINE = {"div", "section", "article", "header", "footer", "main", "aside", "nav", "li", "dt", "dd", "tr",
            "caption", "figcaption", "details", "summary", "hr", "body"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.title = ""
        self._in_title = False
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._newlines = 0
        self._pre = 0
        self._lists: list[list[int]] = []  # per open list: [is ordered, items so far]
        self._cells = 0
        self._links: list[tuple[str | None, int]] = []  # (target shown, len(parts) at the start)

    @staticmethod
    def _hidden(attrs: dict[str, str | None]) -> bool:
        style = re.sub(r"\s+", "", (attrs.get("style") or "").lower())
        return (
            "hidden" in attrs
            or (attrs.get("aria-hidden") or "").lower() == "true"
            or "display:none" in style
            or "visibility:hidden" in style
        )

    def _break(self, count: int) -> None:
        if not self.parts:
            return
        if self.parts[-1].endswith(" "):
            self.parts[-1] = self.parts[-1].rstrip(" ")
        while self._newlines < count:
            self.parts.append("\n")
            self._newlines += 1
            self.size += 1

    def _write(self, text: str) -> None:
        if not self._pre:
            text = re.sub(r"\s+", " ", text)
            if self._newlines or not self.parts or self.parts[-1].endswith(" "):
                text = text.lstrip(" ")
        if not text:
            return
        self.parts.append(text)
        self.size += len(text)
        self._newlines = len(text) - len(text.rstrip("\n")) if self._pre else 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self._skip_tag in (None, "head") and not self.title:
            self._in_title = True  # the one part of the head a reader sees (as the tab's name)
            return
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            elif tag == "body" and self._skip_tag == "head":  # a head that was never closed
                self._skip_tag = None
            if self._skip_tag is not None:
                return
        attributes = dict(attrs)
        if tag in self.SKIP or self._hidden(attributes):
            if tag not in self.VOID:
                self._skip_tag, self._skip_depth = tag, 1
            return
        if tag == "br":
            if self._pre:
                self._write("\n")
            else:
                self._break(self._newlines + 1)
        elif tag in self.PARAGRAPH:
            self._break(1 if self._lists else 2)
            if tag[0] == "h" and tag[1:].isdigit():
                self._write("#" * int(tag[1:]) + " ")
            elif tag in ("ul", "ol"):
                self._lists.append([tag == "ol", 0])
            elif tag == "pre":
                self._pre += 1
        elif tag in self.LINE:
            self._break(1)
            if tag == "li":
                ordered, count = self._lists[-1] if self._lists else (False, 0)
                if self._lists:
                    self._lists[-1][1] = count + 1
                self._write(f"{count + 1}. " if ordered else "- ")
            elif tag == "tr":
                self._cells = 0
        elif tag in ("td", "th"):
            if self._cells:
                self._write(" | ")
            self._cells += 1
        elif tag == "a":
            self._links.append((self._target(attributes.get("href")), len(self.parts)))
        elif tag == "img" and (alt := " ".join((attributes.get("alt") or "").split())):
            self._write(f" [image: {alt}] ")

    @staticmethod
    def _target(href: str | None) -> str | None:
        """A link target worth showing: a short web or mail address, nothing that runs."""
        href = (href or "").strip()
        if len(href) > MAX_LINK_CHARS or not href.lower().startswith(("https://", "http://", "mailto:")):
            return None
        if any(ch.isspace() or not ch.isprintable() or ch in "()<>[]" for ch in href):
            return None
        return href

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if tag in self.PARAGRAPH:
            if tag in ("ul", "ol") and self._lists:
                self._lists.pop()
            elif tag == "pre" and self._pre:
                self._pre -= 1
            self._break(1 if self._lists else 2)  # a list inside a list is no new paragraph
        elif tag in self.LINE:
            self._break(1)
        elif tag == "a" and self._links:
            target, start = self._links.pop()
            label = "".join(self.parts[start:]).strip()
            if target and label and target not in label and target.removeprefix("mailto:") not in label:
                self._write(f" ({target})")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip_tag is None:
            self._write(data)

    def text(self) -> str:
        body = re.sub(r"\n{3,}", "\n\n", "".join(self.parts)).strip()
        title = " ".join(self.title.split())
        return f"Title: {title}\n\n{body}" if title and body else title or body


def html_text(html: str, max_chars: int) -> str:
    """The readable text of a web page, fed in pieces and stopped once past `max_chars`."""
    parser = _HtmlText()
    for start in range(0, len(html), 64 * 1024):
        parser.feed(html[start : start + 64 * 1024])
        if parser.size > max_chars:
            break
    else:
        # What is still buffered is trailing text, or markup never closed: an unclosed comment
        # or tag, which close() would hand over as text though a browser shows none of it.
        end = parser.rawdata.find("<")
        if end >= 0:
            parser.rawdata = parser.rawdata[:end]
        parser.close()
    return parser.text()


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


def _part_text(part: Any) -> str:
    """A text part's content, decoded; a charset Python does not know falls back to our guess."""
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError, ValueError) as exc:
        log.warning("e-mail part in charset %r not decoded by the email package (%s)", part.get_content_charset(), type(exc).__name__)
        return _decode(part.get_payload(decode=True) or b"")


def _header(message: Any, field: str) -> str:
    try:
        value = str(message.get(field) or "")
    except (IndexError, ValueError, TypeError, AttributeError) as exc:  # a malformed address list
        log.warning("e-mail header %s not parsed (%s): shown as written", field, type(exc).__name__)
        value = next((raw for name, raw in message.raw_items() if name.lower() == field.lower()), "")
    value = " ".join(value.split())
    return value[:MAX_HEADER_CHARS] + "…" if len(value) > MAX_HEADER_CHARS else value


def _eml(data: bytes, limits: Limits) -> Extracted:
    """From, To, Cc, Date and Subject; the body (plain text, else the HTML part as text); the
    attachments by name, type and size only: their content is never read."""
    import email
    from email import policy

    message = email.message_from_bytes(data, policy=policy.default)
    headers = [f"{field}: {value}" for field in ("From", "To", "Cc", "Date", "Subject") if (value := _header(message, field))]
    if not headers:
        raise DocumentError("it does not look like an e-mail message (it has no From, To, Date or Subject)")
    body = ""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is not None:
        content = _part_text(part)
        body = html_text(content, limits.max_chars) if part.get_content_type() == "text/html" else content.strip()
    attachments = []
    for attachment in message.iter_attachments():
        payload = attachment.get_payload(decode=True)
        details = attachment.get_content_type() + (f", {_size(len(payload))}" if isinstance(payload, bytes) else "")
        attachments.append(f"{' '.join((attachment.get_filename() or 'unnamed').split())[:200]} ({details})")
    tail = ""
    if attachments:
        shown = attachments[:MAX_ATTACHMENT_NAMES]
        more = f", and {len(attachments) - len(shown)} more" if len(attachments) > len(shown) else ""
        tail = "\n\nAttachments: " + ", ".join(shown) + more
    head = "\n".join(headers) + "\n\n"
    room = max(limits.max_chars - len(head) - len(tail), 0)
    truncated = len(body) > room
    if truncated:  # the body is cut, so the attachments still show
        body = body[:room] + "\n[… the rest of the message is cut …]"
    return Extracted(head + (body or "(no text in the body)") + tail, truncated=truncated)


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
        raise DocumentError(UNSUPPORTED_REASON)
    if not data:
        raise DocumentError("it is empty")
    if kind in ("text", "csv", "html", "eml"):
        if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DocumentError("it is a binary file, not text")
    if kind == "pdf":
        extracted = _pdf(data, limits)
    elif kind == "docx":
        extracted = _docx(data, limits)
    elif kind == "xlsx":
        extracted = _xlsx(data, limits)
    elif kind == "pptx":
        extracted = _pptx(data, limits)
    elif kind == "csv":
        extracted = _csv(name, mimetype, data, limits)
    elif kind == "html":
        extracted = _cap(html_text(_decode(data), limits.max_chars), limits)
    elif kind == "eml":
        extracted = _eml(data, limits)
    else:
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
