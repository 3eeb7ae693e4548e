"""Text files (code, JSON, logs, …), and the decoding every text-like kind uses: UTF-8, UTF-16
with a byte-order mark, else cp1252.
"""

from __future__ import annotations

from document_readers.common import Extracted, Limits, cap


def decode(data: bytes) -> str:
    """Bytes as text: by their byte-order mark, else as UTF-8, else as cp1252 (never fails)."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_text(data: bytes, limits: Limits) -> Extracted:
    """A text file as it is, cut at the character limit."""
    return cap(decode(data), limits)
