"""Word (.docx): paragraphs and tables, as `cell | cell` rows, in document order, by python-docx."""

from __future__ import annotations

import io

from document_readers.common import DAMAGED, DocumentError, Extracted, Limits, cap, check_zip


def read_docx(data: bytes, limits: Limits) -> Extracted:
    check_zip(data, "Word document")
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
    return cap("\n".join(lines).strip(), limits)
