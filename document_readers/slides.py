"""PowerPoint (.pptx, .pptm): slide by slide, the title, the text of every shape (grouped ones
too), tables as rows, charts by their titles and the speaker notes, by python-pptx.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from document_readers.common import DAMAGED, DocumentError, Extracted, Limits, cap, check_zip


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


def read_pptx(data: bytes, limits: Limits) -> Extracted:
    """Slide by slide: title, the text of every shape (grouped ones too), tables, notes."""
    check_zip(data, "PowerPoint presentation")
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
    extracted = cap(text, limits)
    return Extracted(extracted.text, truncated=extracted.truncated or len(slides) > limits.max_pages)
