"""Real documents built in memory for the tests (no binary fixtures in the repository)."""

from __future__ import annotations

import datetime
import io
import zipfile
import zlib
from email.message import EmailMessage

import docx
import msoffcrypto.format.ooxml
import xlsxwriter
from PIL import Image, ImageDraw
from pptx import Presentation
from pptx.util import Inches
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


def make_zip_bomb(inflated_mb: int = 300, entry_name: str = "word/document.xml") -> bytes:
    """A small Office-shaped zip that declares a huge entry (zeros compress ~1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(entry_name, "w") as entry:
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


def _scan_page(number: int, width: int = 850, height: int = 1100) -> Image.Image:
    """A black-and-white page as a scanner makes it: 1 bit per pixel, some words and a frame."""
    page = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(page)
    draw.rectangle((40, 40, width - 40, height - 40), outline=0, width=6)
    draw.text((80, 80), f"SIGNED CONTRACT PAGE {number}", fill=0)
    return page


def make_ccitt_scan(pages: int = 1) -> bytes:
    """A scanned PDF as Pillow writes one from 1-bit pages: each page one CCITT G4 fax image
    (/CCITTFaxDecode, /BitsPerComponent 1), which the old hand-made page image reader skipped."""
    images = [_scan_page(number) for number in range(1, pages + 1)]
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=100, save_all=True, append_images=images[1:])
    return out.getvalue()


def make_image_pdf(image: str, pages: int = 1) -> bytes:
    """Pages that are one image each, in a form a scanner writes: "bitonal" (1 bit per pixel,
    FlateDecode, /DeviceGray) or "jpx" (JPEG 2000, /JPXDecode)."""
    writer = PdfWriter()
    for number in range(1, pages + 1):
        picture = _scan_page(number, 400, 520)
        stream = StreamObject()
        fields = {
            "/Type": NameObject("/XObject"), "/Subtype": NameObject("/Image"),
            "/Width": NumberObject(picture.width), "/Height": NumberObject(picture.height),
        }
        if image == "bitonal":  # rows of packed bits; in a PDF a 1 bit is white (/Decode [0 1])
            stream._data = zlib.compress(picture.tobytes())
            fields.update({"/ColorSpace": NameObject("/DeviceGray"), "/BitsPerComponent": NumberObject(1),
                           "/Filter": NameObject("/FlateDecode")})
        elif image == "jpx":
            encoded = io.BytesIO()
            picture.convert("RGB").save(encoded, "JPEG2000")
            stream._data = encoded.getvalue()
            fields.update({"/Filter": NameObject("/JPXDecode")})
        else:
            raise ValueError(image)
        stream.update({NameObject(key): value for key, value in fields.items()})
        page = writer.add_blank_page(400, 520)
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(stream)}),
        })
        content = DecodedStreamObject()
        content.set_data(b"q 400 0 0 520 0 0 cm /Im0 Do Q")
        page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_xlsx(sheets: dict[str, list[list[object]]], formulas: dict[str, tuple[str, str, object]] | None = None,
              hidden: tuple[str, ...] = ()) -> bytes:
    """A workbook as Excel saves one. `formulas` maps a sheet to (cell, formula, cached value):
    XlsxWriter stores the cached result beside the formula, as Excel does after calculating
    (openpyxl writes formulas without results, so it cannot make this file)."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, (datetime.date, datetime.datetime)):
                    sheet.write_datetime(r, c, value, dates)
                elif value is not None:
                    sheet.write(r, c, value)
        if name in hidden:
            sheet.hide()
    for name, (cell, formula, cached) in (formulas or {}).items():
        book.get_worksheet_by_name(name).write_formula(cell, formula, None, cached)
    book.close()
    return out.getvalue()


def make_pptx(with_notes: bool = True) -> bytes:
    """A deck with a title slide, a bulleted slide with speaker notes, a grouped pair of text
    boxes and a table."""
    deck = Presentation()
    cover = deck.slides.add_slide(deck.slide_layouts[0])
    cover.shapes.title.text = "Falcon launch plan"
    cover.placeholders[1].text = "Quarterly review"
    bullets = deck.slides.add_slide(deck.slide_layouts[1])
    bullets.shapes.title.text = "Risks"
    body = bullets.placeholders[1].text_frame
    body.text = "Supplier delay"
    body.add_paragraph().text = "Budget overrun"
    if with_notes:
        bullets.notes_slide.notes_text_frame.text = "Mention the backup supplier in Lisbon"
    grid = deck.slides.add_slide(deck.slide_layouts[5])
    grid.shapes.title.text = "Owners"
    group = grid.shapes.add_group_shape()
    for n, words in enumerate(("Grouped left box", "Grouped right box")):
        group.shapes.add_textbox(Inches(1 + 4 * n), Inches(1.5), Inches(3), Inches(1)).text_frame.text = words
    table = grid.shapes.add_table(3, 2, Inches(1), Inches(3), Inches(6), Inches(2)).table
    for r, row in enumerate((("Owner", "Task"), ("Dana", "Ship v2"), ("Lee", "Hire"))):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_eml(html_only: bool = False) -> bytes:
    """An e-mail with a plain and an HTML body (or only the HTML one) and two attachments."""
    message = EmailMessage()
    message["From"] = "Dana Scully <dana@example.com>"
    message["To"] = "Alice <alice@example.com>, Bob <bob@example.com>"
    message["Cc"] = "Lee <lee@example.com>"
    message["Date"] = "Tue, 03 Mar 2026 09:15:00 +0000"
    message["Subject"] = "Falcon budget, v2"
    html = ("<html><head><style>p{color:red}</style></head><body><p>Hi all,</p>"
            "<p>The <b>budget</b> is in the <a href='https://example.com/b'>sheet</a>.</p></body></html>")
    if html_only:
        message.set_content(html, subtype="html")
    else:
        message.set_content("Hi all,\n\nThe budget is attached. Please review by Friday.\n")
        message.add_alternative(html, subtype="html")
    message.add_attachment(b"SECRET-ATTACHMENT-CONTENT" * 100, maintype="application", subtype="pdf",
                           filename="budget.pdf")
    message.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="chart.png")
    return message.as_bytes()


def encrypt_office(data: bytes, password: str = "pw") -> bytes:
    """An Office file as Office saves it with a password: an encrypted OLE compound file."""
    out = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()
