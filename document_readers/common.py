"""What every reader shares: the `DocumentError` a person can read, the `Limits` of a read, the
`Extracted` result, the visible cut at the character limit, and the checks an Office file (a zip)
passes before a parsing library opens it (password, old binary format, damage, zip bomb).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass

# .docx, .xlsx and .pptx are zips: refuse archives that would inflate past this, or by more than this ratio.
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100
# A password-protected Office file is not a zip but an OLE compound file holding the encrypted
# package; old binary .xls/.doc/.ppt files are OLE files too, without these stream names.
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OLE_ENCRYPTION_STREAMS = ("EncryptionInfo".encode("utf-16-le"), "EncryptedPackage".encode("utf-16-le"))
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


def file_extension(name: str) -> str:
    """What a file's name ends in, lowercased: "pdf" for "Report.PDF"; a name without a dot is its own."""
    return name.rsplit(".", 1)[-1].lower() if "." in name else name.lower()


def cap(text: str, limits: Limits) -> Extracted:
    """The text within `limits.max_chars`, a longer one cut with a note that says so."""
    if len(text) <= limits.max_chars:
        return Extracted(text)
    note = f"\n[… the rest is cut: the document is longer than {limits.max_chars:,} characters …]"
    return Extracted(text[: limits.max_chars] + note, truncated=True)


def check_zip(data: bytes, kind: str) -> None:
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
