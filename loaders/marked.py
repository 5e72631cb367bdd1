"""The marked workbook: the requester's own workbook with every bad cell shown, for the rejection.

Each error with a row and a column (a title of A-K, or a column letter for data outside the form)
fills its cell red and adds a comment with the code and message; an `Errors` sheet lists every error.
Nothing in the copy can run: formulas become inert text, every string that could start a formula is
escaped with safe_cell, and defined names, links, tables, conditional formats and validations that
compute are dropped (validations of literal values, like the template's drop-downs, are kept so the
requester can fix the copy and send it again).
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Iterable

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.comments import Comment
from openpyxl.formatting.formatting import ConditionalFormattingList
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import column_index_from_string
from openpyxl.utils.escape import unescape
from openpyxl.worksheet.datavalidation import DataValidationList
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula
from openpyxl.worksheet.worksheet import Worksheet

from grants.errors import FormError
from grants.escape import safe_cell
from grants.form import FORM_SHEET, LETTER_OF

ERRORS_SHEET = "Errors"
ERRORS_HEADER = ("Row", "Column", "Value", "Code", "Message")
MARK_COLOR = "FFFF7C80"
MARK_FILL = PatternFill("solid", fgColor=MARK_COLOR)
COMMENT_AUTHOR = "delegation"
AFTER_LIST_NOTE = (
    "Fix the cells marked in red on the 'Delegate Form' sheet, then delete this 'Errors' sheet"
    " before you send the form again."
)

_LETTERS = re.compile(r"[A-Z]{1,3}")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_MAX_COLUMN = 16_384  # XFD
_MAX_ROW = 1_048_576
_WIDTHS = {"A": 8, "B": 24, "C": 30, "D": 24, "E": 90}


def mark_workbook(original: bytes, errors: list[FormError]) -> bytes:
    """A copy of `original` with the bad cells marked and an `Errors` sheet listing every error.

    When the original cannot be loaded as a workbook at all, the copy is a new workbook holding
    only the `Errors` sheet, so a rejection can always attach the list.
    """
    wb = _load(original)
    if wb is None:
        wb = Workbook()
        wb.remove(wb.active)
    _defuse(wb)
    if FORM_SHEET in wb.sheetnames:
        _mark_cells(wb[FORM_SHEET], errors)
    _add_errors_sheet(wb, errors)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def cell_of(error: FormError) -> tuple[int, int] | None:
    """The (row, column index) an error points at, or None when it names no single cell."""
    if error.row is None or error.column is None or not 1 <= error.row <= _MAX_ROW:
        return None
    letter = LETTER_OF.get(error.column)
    if letter is None and _LETTERS.fullmatch(error.column):
        letter = error.column
    if letter is None:
        return None
    col = column_index_from_string(letter)
    return (error.row, col) if col <= _MAX_COLUMN else None


def _load(original: bytes) -> Workbook | None:
    # defusedxml is installed, so openpyxl parses with it; VBA and external links are not kept.
    try:
        return load_workbook(io.BytesIO(original), data_only=False, keep_vba=False, keep_links=False)
    except Exception:  # noqa: BLE001 - see below
        # Whatever openpyxl cannot model (its errors are many and untyped), the requester still
        # deserves the list of errors: the caller gets a workbook holding only that.
        return None


def _defuse(wb: Workbook) -> None:
    """Make every cell inert text or a plain value, and drop what can compute or link."""
    for name in list(wb.defined_names):
        del wb.defined_names[name]
    wb._external_links = []
    for ws in wb.worksheets:
        for name in list(ws.defined_names):
            del ws.defined_names[name]
        ws.conditional_formatting = ConditionalFormattingList()
        for name in list(ws.tables):  # a table's calculated columns are formulas too
            del ws.tables[name]
        kept = [dv for dv in ws.data_validations.dataValidation if _is_inert(dv)]
        ws.data_validations = DataValidationList(dataValidation=kept)
        ws._hyperlinks = []
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell, MergedCell):
                    continue
                cell.hyperlink = None
                _defuse_cell(cell)


def _defuse_cell(cell: Cell) -> None:
    value = cell.value
    if isinstance(value, ArrayFormula):
        cell.value = _text(value.text or "")
    elif isinstance(value, DataTableFormula):
        cell.value = _text("=TABLE()")
    elif cell.data_type == "f" or isinstance(value, str):
        # A formula's text, or a string that the file stored as text but starts like a formula.
        cell.value = _text(str(value))


def _is_inert(dv) -> bool:
    """A validation of literal values only (the template's kinds): nothing to compute or follow."""
    if dv.type == "custom":
        return False
    return all(_is_literal(f) for f in (dv.formula1, dv.formula2) if f)


def _is_literal(formula: str) -> bool:
    if len(formula) >= 2 and formula[0] == formula[-1] == '"':
        return '"' not in formula[1:-1]
    return _NUMBER.fullmatch(formula) is not None


def _text(value: object) -> object:
    """A value safe to write: no characters XML cannot hold, no formula trigger at the start."""
    if value is None:
        return None
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("", value)
        # openpyxl keeps the file's _xHHHH_ escapes as they are, and Excel decodes them: judge the
        # start of the text as Excel will show it.
        if safe_cell(unescape(text[:64])) != unescape(text[:64]):
            text = "'" + text
        return text or None
    return value


def _mark_cells(ws: Worksheet, errors: Iterable[FormError]) -> None:
    # Merged ranges would hide the cells to mark: the copy shows every cell on its own.
    for merged in list(ws.merged_cells.ranges):
        ws.unmerge_cells(str(merged))
    by_cell: dict[tuple[int, int], list[FormError]] = defaultdict(list)
    for error in errors:
        where = cell_of(error)
        if where is not None:
            by_cell[where].append(error)
    for (row, col), cell_errors in sorted(by_cell.items()):
        cell = ws.cell(row, col)
        cell.fill = MARK_FILL
        text = "\n".join(f"{e.code}: {e.message}" for e in cell_errors)
        comment = Comment(ILLEGAL_CHARACTERS_RE.sub("", text), COMMENT_AUTHOR)
        comment.width = 360
        comment.height = 40 + 30 * len(cell_errors)
        cell.comment = comment


def _add_errors_sheet(wb: Workbook, errors: list[FormError]) -> None:
    # A stale list (a marked copy sent back unchanged) is replaced by the current one.
    if ERRORS_SHEET in wb.sheetnames:
        wb.remove(wb[ERRORS_SHEET])
    ws = wb.create_sheet(ERRORS_SHEET, 0)
    ws.append(list(ERRORS_HEADER))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for error in errors:
        ws.append(
            [
                error.row,
                _text(error.column),
                _text(error.value),
                _text(str(error.code)),
                _text(error.message),
            ]
        )
    note_row = ws.max_row + 2
    ws.cell(note_row, 1, _text(AFTER_LIST_NOTE)).font = Font(italic=True)
    for letter, width in _WIDTHS.items():
        ws.column_dimensions[letter].width = width
    for row in ws.iter_rows(min_row=2, max_row=len(errors) + 1):
        row[-1].alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    # Only the Errors sheet selected: several selected tabs would group-edit them in Excel.
    for other in wb.worksheets:
        other.sheet_view.tabSelected = False
    ws.sheet_view.tabSelected = True
    wb.active = 0
