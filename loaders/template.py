"""The official blank Delegate User Form (`delegation template`), written deterministically.

The workbook holds the `Delegate Form` sheet (bold, frozen titles; Account ID formatted as text;
drop-downs with stop alerts) and an `Example` sheet with filled rows and a short how-to, so that a
person opening it in Excel or LibreOffice needs nothing else.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from grants.escape import safe_cell
from grants.form import (
    EXAMPLE_SHEET,
    FORM_SHEET,
    LETTER_OF,
    MAX_ACCOUNTS,
    MIN_ACCOUNTS,
    TITLES,
    AccessLevel,
    PhoneType,
)

TEXT_FORMAT = "@"
# Rows 2..FORMATTED_LAST_ROW get explicit text-formatted Account ID cells; the column style covers
# the rest, but some programs only honour a cell's own format when pasting.
FORMATTED_LAST_ROW = MAX_ACCOUNTS + 1
# A fixed time keeps regenerated workbooks identical, byte for byte.
FIXED_TIME = datetime(2026, 1, 1, 0, 0, 0)
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)

_WIDTHS = {
    "Requester First Name": 22,
    "Requester Last Name": 22,
    "Requester Primary Email": 34,
    "Requester Primary Phone": 24,
    "Delegate First Name": 21,
    "Delegate Last Name": 21,
    "Delegate Email": 34,
    "Delegate Primary Phone": 23,
    "Delegate Phone Type": 21,
    "Account ID": 14,
    "Access Level": 14,
}
_TITLE_FONT = Font(bold=True)
_TITLE_FILL = PatternFill("solid", fgColor="FFD9E1F2")
_TITLE_ALIGN = Alignment(vertical="center")
_ALL_ROWS = 1_048_576  # the last row of a sheet: the drop-downs cover the whole column

EXAMPLE_ROWS: tuple[tuple[str, ...], ...] = tuple(
    ("花子", "山田", "hanako.yamada@sakura-trading.example", "415-555-0101",
     "Văn An", "Nguyễn", "an.nguyen@mekong-energy.example", "(408) 555-0123", "Mobile",
     account_id, level)
    for account_id, level in (
        ("0012345678", "High"),
        ("0012345679", "Read Only"),
        ("0012345680", "High"),
        ("0012345681", "Read Only"),
    )
)  # fmt: skip

HOW_TO: tuple[str, ...] = (
    "How to fill in the Delegate Form",
    "1. Fill in the 'Delegate Form' sheet, one row per account. This 'Example' sheet is never read.",
    "2. Keep row 1 (the titles) as it is, use only columns A to K, and do not add, rename or delete sheets.",
    f"3. One form gives ONE delegate access to {MIN_ACCOUNTS} to {MAX_ACCOUNTS} accounts."
    f" Fewer than {MIN_ACCOUNTS}, invite the delegate to each account online instead;"
    f" more than {MAX_ACCOUNTS}, split the accounts over several forms.",
    "4. Every row repeats the same requester details (yours, exactly as on your login) and the same"
    " delegate details (exactly as on the delegate's first invitation).",
    "5. The delegate must first have accepted an invitation to one of your accounts online;"
    " the form adds the other accounts.",
    "6. Phones are North American numbers, e.g. 415-555-0100 or (415) 555-0100.",
    "7. Account ID is the 10 digits of the account with its leading zeros, e.g. 0012345678."
    " The column is formatted as text; keep it so, or Excel drops the leading zeros.",
    "8. Delegate Phone Type and Access Level are chosen from the drop-down lists.",
    "9. Full access on a business account is only for a direct employee of the business;"
    " a third party (not an employee) may get High or Read Only."
    " The primary account holder of a residential account may give any level to anyone.",
    "10. Do not type an equals sign or a colon in any cell and do not use formulas; such cells are refused.",
    "11. Each account appears once. A form with any error is rejected whole: you get every error"
    " back with a copy of your workbook, the cells to fix marked in red.",
)


def build_template() -> Workbook:
    """The blank official form as an openpyxl workbook (Delegate Form, then Example)."""
    wb = Workbook()
    form = wb.active
    form.title = FORM_SHEET
    _lay_out_titles(form)
    _format_account_id_column(form)
    _add_drop_downs(form)
    form.page_setup.orientation = "landscape"
    form.page_setup.fitToWidth = 1
    form.page_setup.fitToHeight = 0
    form.sheet_properties.pageSetUpPr.fitToPage = True
    form.print_title_rows = "1:1"

    example = wb.create_sheet(EXAMPLE_SHEET)
    _lay_out_titles(example)
    for r, row in enumerate(EXAMPLE_ROWS, start=2):
        for c, value in enumerate(row, start=1):
            example.cell(r, c, safe_cell(value))
        example.cell(r, TITLES.index("Account ID") + 1).number_format = TEXT_FORMAT
    first = len(EXAMPLE_ROWS) + 3
    for r, line in enumerate(HOW_TO, start=first):
        example.cell(r, 1, safe_cell(line))
    example.cell(first, 1).font = Font(bold=True, size=13)

    wb.active = 0
    _fix_properties(wb)
    return wb


def workbook_bytes(wb: Workbook) -> bytes:
    """The workbook as .xlsx bytes, identical for identical content (fixed times, fixed zip order)."""
    _fix_properties(wb)
    raw = io.BytesIO()
    # openpyxl's own save() stamps "modified" with the current time; its writer does not.
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def template_bytes() -> bytes:
    """The blank official form as .xlsx bytes."""
    return workbook_bytes(build_template())


def write_template(target: str | os.PathLike[str] | BinaryIO) -> None:
    """Write the blank official form to a path (atomically) or to a binary file object."""
    write_bytes(target, template_bytes())


def write_bytes(target: str | os.PathLike[str] | BinaryIO, data: bytes) -> None:
    """Write bytes to a binary file object, or to a path via a temporary file and a rename."""
    if hasattr(target, "write"):
        target.write(data)
        return
    path = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_template() -> Workbook:
    """The template as written and read back, as a person's copy would be (validations kept)."""
    return load_workbook(io.BytesIO(template_bytes()))


def fill_rows(ws: Worksheet, rows: Iterable[Sequence[object]], first_row: int = 2) -> int:
    """Write rows of up to 11 values from `first_row` on; returns the row after the last one.

    Values are written as given: a str Account ID stays text (the column is formatted as text), an
    int is a number, and a str starting with '=' becomes a formula (openpyxl's rule), so callers that
    want such text as a string must set the cell's data_type themselves.
    """
    account_col = TITLES.index("Account ID") + 1
    r = first_row - 1
    for r, row in enumerate(rows, start=first_row):
        for c, value in enumerate(row, start=1):
            if value is not None and value != "":
                ws.cell(r, c, value)
        if r > FORMATTED_LAST_ROW:
            ws.cell(r, account_col).number_format = TEXT_FORMAT
    return r + 1


def _lay_out_titles(ws: Worksheet) -> None:
    for c, title in enumerate(TITLES, start=1):
        cell = ws.cell(1, c, title)
        cell.font = _TITLE_FONT
        cell.fill = _TITLE_FILL
        cell.alignment = _TITLE_ALIGN
        ws.column_dimensions[get_column_letter(c)].width = _WIDTHS[title]
    ws.row_dimensions[1].height = 20
    ws.freeze_panes = "A2"


def _format_account_id_column(ws: Worksheet) -> None:
    letter = LETTER_OF["Account ID"]
    # The column's own style makes every new cell text; explicit cells cover the form's 500 rows.
    ws.column_dimensions[letter].number_format = TEXT_FORMAT
    ws.column_dimensions[letter].width = _WIDTHS["Account ID"]
    col = TITLES.index("Account ID") + 1
    for r in range(2, FORMATTED_LAST_ROW + 1):
        ws.cell(r, col).number_format = TEXT_FORMAT


def _list_validation(title: str, values: Iterable[str], prompt: str) -> DataValidation:
    choices = list(values)
    letter = LETTER_OF[title]
    dv = DataValidation(
        type="list",
        formula1='"' + ",".join(choices) + '"',
        allow_blank=True,
        showDropDown=False,  # (sic) False shows the in-cell arrow
        showErrorMessage=True,
        errorStyle="stop",
        errorTitle=f"Not a {title.lower()}"[:32],
        error=f"{title} must be one of: {', '.join(choices)}. Pick it from the drop-down list.",
        showInputMessage=True,
        promptTitle=title[:32],
        prompt=prompt,
    )
    dv.add(f"{letter}2:{letter}{_ALL_ROWS}")
    return dv


def _add_drop_downs(ws: Worksheet) -> None:
    ws.add_data_validation(
        _list_validation("Delegate Phone Type", (t.value for t in PhoneType), "Pick Mobile, Home or Work.")
    )
    ws.add_data_validation(
        _list_validation(
            "Access Level",
            (a.value for a in AccessLevel),
            "Pick Full, High or Read Only. Full on a business account is for its direct employees only.",
        )
    )
    letter = LETTER_OF["Account ID"]
    account = DataValidation(
        type="textLength",
        operator="equal",
        formula1="10",
        allow_blank=True,
        showErrorMessage=True,
        errorStyle="stop",
        errorTitle="Not a 10-digit Account ID",
        error="An Account ID is exactly 10 digits, leading zeros included (e.g. 0012345678).",
        showInputMessage=True,
        promptTitle="Account ID",
        prompt="10 digits, leading zeros included (e.g. 0012345678).",
    )
    account.add(f"{letter}2:{letter}{_ALL_ROWS}")
    ws.add_data_validation(account)


def _fix_properties(wb: Workbook) -> None:
    props = wb.properties
    props.creator = "delegation"
    props.lastModifiedBy = "delegation"
    props.title = "Delegate User Form"
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
