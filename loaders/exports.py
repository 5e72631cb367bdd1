"""Tables written out for people: CSV (cli.md's shapes), Markdown for a terminal, and XLSX for Excel.

Every text cell is made safe for where it lands: spreadsheets (CSV, XLSX) get grants.escape's
formula guard; a terminal gets control characters shown as \\xNN instead of obeyed (no escape
sequences from an email address repainting the screen); Markdown gets its pipes escaped.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from grants.escape import safe_cell
from grants.outcome import iso

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(value: object) -> str:
    """Text for a terminal: control characters (newlines, ESC ...) shown as \\xNN, not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", "" if value is None else str(value))


# ------------------------------------------------------------------------------------------ CSV


def csv_cell(value: object) -> object:
    """A CSV cell: empty for None, ISO 8601 UTC for times, formula-safe text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    return safe_cell(str(value))


def write_csv(handle: IO[str], columns: Sequence[str], rows: Iterable[dict]) -> int:
    """Write the header and rows (LF line ends); the number of rows written."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([csv_cell(row[c]) for c in columns])
        n += 1
    return n


# ------------------------------------------------------------------------------------- Markdown


def _md_cell(value: object) -> str:
    if value is None:
        return ""
    text = iso(value) if isinstance(value, datetime) else str(value)
    # backslashes first, so that the \xNN shown for control characters stay single
    return printable(text.replace("\\", "\\\\")).replace("|", "\\|")


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, right: Sequence[str] = ()) -> str:
    """A pipe table padded to its widest cell per column, so it reads well raw in a terminal."""
    cells = [[_md_cell(v) for v in row] for row in rows]
    titles = [_md_cell(c) for c in columns]
    widths = [max([len(t), 3, *(len(r[i]) for r in cells)]) for i, t in enumerate(titles)]

    def line(values: Sequence[str]) -> str:
        padded = [v.rjust(w) if c in right else v.ljust(w) for v, w, c in zip(values, widths, columns, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if c in right else "-" * w
                              for w, c in zip(widths, columns, strict=True)) + " |"
    return "\n".join([line(titles), rule, *(line(r) for r in cells)])


# ----------------------------------------------------------------------------------------- XLSX

_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MAX_WIDTH = 70


def xlsx_cell(value: object) -> object:
    """An XLSX cell value: times as Excel datetimes (UTC, no zone: Excel has none), text formula-safe
    and without the control characters XML cannot carry."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    if isinstance(value, int | float):
        return value
    return safe_cell(_XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)))


def write_xlsx(
    path: Path,
    sheets: Sequence[tuple[str, Sequence[str], Sequence[Sequence[object]]]],
) -> None:
    """Write each (title, column titles, rows) as a sheet: bold header row, frozen below it, an
    autofilter, columns as wide as their content (capped), times as 'yyyy-mm-dd hh:mm:ss'."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDE4EE")
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        values = [[xlsx_cell(v) for v in row] for row in rows]
        widths = [len(c) + 2 for c in columns]
        for row in values:
            for i, v in enumerate(row):
                shown = 19 if isinstance(v, datetime) else len(str(v)) if v is not None else 0
                widths[i] = max(widths[i], min(shown + 2, _MAX_WIDTH))
        for i, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = width
        sheet.freeze_panes = "A2"
        last = get_column_letter(len(columns))
        sheet.auto_filter.ref = f"A1:{last}{len(values) + 1}"
        header = []
        for name in columns:
            cell = WriteOnlyCell(sheet, value=xlsx_cell(name))
            cell.font, cell.fill = bold, fill
            cell.alignment = Alignment(vertical="center")
            header.append(cell)
        sheet.append(header)
        for row in values:
            out = []
            for v in row:
                if isinstance(v, datetime):
                    cell = WriteOnlyCell(sheet, value=v)
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                    out.append(cell)
                else:
                    out.append(v)
            sheet.append(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
