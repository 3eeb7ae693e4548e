"""Real documents built in memory for the tests (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import zipfile
import zlib

import docx
from pypdf import PdfWriter
from pypdf.generic import (
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
)


def make_pdf(pages: list[str], password: str | None = None) -> bytes:
    """A PDF whose pages carry `pages` as real text (extractable by any PDF reader)."""
    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    }))
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): font}),
        })
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(content)
    if password:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None, after: str = "") -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    if after:
        document.add_paragraph(after)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_zip_bomb(inflated_mb: int = 300) -> bytes:
    """A small .docx-shaped zip that declares a huge entry (zeros compress ~1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as entry:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(inflated_mb):
                entry.write(chunk)
    return out.getvalue()


def make_scanned_pdf(pages: int = 2, size: int = 8) -> bytes:
    """Pages that are only an image each (like a scan): no text layer, one RGB image per page."""
    writer = PdfWriter()
    for number in range(pages):
        page = writer.add_blank_page(200, 200)
        image = StreamObject()
        image._data = zlib.compress(bytes([40 * number, 90, 200]) * size * size)
        image.update({
            NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(size), NameObject("/Height"): NumberObject(size),
            NameObject("/ColorSpace"): NameObject("/DeviceRGB"),
            NameObject("/BitsPerComponent"): NumberObject(8), NameObject("/Filter"): NameObject("/FlateDecode"),
        })
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(image)}),
        })
        content = DecodedStreamObject()
        content.set_data(b"q 200 0 0 200 0 0 cm /Im0 Do Q")
        page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
