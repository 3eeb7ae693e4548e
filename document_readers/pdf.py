"""PDF: the text of each page by pypdf, and pages without a text layer (scans) rendered by pdfium
as page images for the vision model; a document that is only scans becomes a note and its images.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence
from typing import Any

from document_readers.common import DocumentError, Extracted, Limits, cap

log = logging.getLogger(__name__)

# Pages of a PDF without a text layer go to the vision model as images, within these bounds.
MAX_SCAN_IMAGES = 5
MAX_SCAN_IMAGE_BYTES = 5 * 1024 * 1024
# Rendered so the longest side is at most this (text stays legible; image_fit.py allows 2048),
# and never above this resolution (a small page is not blown up).
MAX_SCAN_SIDE_PX = 1600
MAX_SCAN_DPI = 200


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
                log.warning(
                    "page %d image is %d bytes, over %d: left out", index + 1, len(encoded), MAX_SCAN_IMAGE_BYTES
                )
                continue
            images[index] = (mimetype, base64.b64encode(encoded).decode())
    finally:
        document.close()
    return images


def read_pdf(data: bytes, limits: Limits) -> Extracted:
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
    extracted = cap(text, limits)
    return Extracted(extracted.text, total, extracted.truncated or total > limits.max_pages, tuple(images.values()))
