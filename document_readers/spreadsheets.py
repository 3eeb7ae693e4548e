"""Excel workbooks (.xlsx, .xlsm) and CSV/TSV files as pipe tables: every sheet by name with the
values Excel cached, cells as a person reads them, and what the limits left out said in the text.
"""

from __future__ import annotations

import csv
import datetime
import io
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from document_readers.common import DAMAGED, DocumentError, Extracted, Limits, cap, check_zip, file_extension
from document_readers.text import decode

log = logging.getLogger(__name__)

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


def read_xlsx(data: bytes, limits: Limits) -> Extracted:
    """Every sheet by name as a table, cached formula results rather than formulas."""
    check_zip(data, "Excel workbook")
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
                    sections.append(
                        f"{heading}\n(no values in its first {MAX_SHEET_SCAN_ROWS:,} rows; the rest was not read)"
                    )
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
        listed = ", ".join(rest[:MAX_SHEETS]) + (", …" if len(rest) > MAX_SHEETS else "")
        sections.append(f"[… {len(rest)} more sheets not shown: {listed} …]")
    extracted = cap("\n\n".join(sections), limits)
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


def read_csv(name: str, mimetype: str, data: bytes, limits: Limits) -> Extracted:
    """A CSV or TSV file as one table; a file the csv module cannot split is read as text."""
    text = decode(data)
    tab = file_extension(name) in ("tsv", "tab") or "tab-separated" in mimetype
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tab else _delimiter(text))
    try:
        table = _read_table(reader)
    except csv.Error as exc:  # e.g. an unclosed quote swallowing the file
        log.warning("not well-formed CSV (%s): read as text", exc)
        return cap(text, limits)
    more = None
    if table.stopped_at is not None:  # the C parser counts the rest quickly
        try:
            more = 1 + sum(1 for row in reader if any(field.strip() for field in row))
        except csv.Error as exc:  # past what is shown: the note just gives no count
            log.warning(
                "CSV not well-formed after row %d (%s): the rows left out are not counted", table.stopped_at, exc
            )
    if not table.rows:
        return Extracted("")
    extracted = cap("\n".join(_table_lines(table, name, more)), limits)
    return Extracted(extracted.text, truncated=extracted.truncated or table.stopped_at is not None or table.columns_cut)
