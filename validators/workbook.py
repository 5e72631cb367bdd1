"""Workbook errors: the sheets, the title row, data right of column K, and whether there is data."""

from __future__ import annotations

from dataclasses import dataclass

from grants.errors import Code, FormError
from grants.form import COLUMN_LETTERS, EXAMPLE_SHEET, FORM_SHEET, TITLES
from grants.sheet import SheetCells
from grants.values import clean

ALLOWED_SHEETS = frozenset({FORM_SHEET, EXAMPLE_SHEET})


@dataclass(frozen=True)
class WorkbookReport:
    """The workbook errors, and whether the data rows can be read as the form's columns."""

    errors: list[FormError]
    rows_readable: bool


def check_workbook(cells: SheetCells, *, has_data: bool) -> WorkbookReport:
    """Sheet, header, outside-the-form and no-data errors; `has_data`: a non-blank data row exists.

    The data rows are readable only with the form sheet present, its titles right and some data:
    with a wrong title row no column can be trusted to hold what its title says, so cell and form
    checks would only add noise. Extra sheets and data beyond column K do not stop them.
    """
    errors = [_extra_sheet(name) for name in cells.sheet_names if name not in ALLOWED_SHEETS]
    if not cells.has_form_sheet:
        errors.insert(0, _missing_sheet(cells.sheet_names))
        return WorkbookReport(errors, rows_readable=False)
    header = _header_errors(cells)
    errors += header
    errors += [
        FormError(
            Code.DATA_OUTSIDE_FORM,
            f"Cell {letter}{row} holds data, but only columns A-K of '{FORM_SHEET}' may. "
            f"Delete it.",
            row=row,
            column=letter,
            value=text,
        )
        for row, letter, text in cells.outside
    ]
    if not has_data:
        errors.append(
            FormError(
                Code.NO_DATA,
                f"'{FORM_SHEET}' has no data rows. Fill in one row per account from row 2 on.",
            )
        )
    return WorkbookReport(errors, rows_readable=not header and has_data)


def _missing_sheet(names: tuple[str, ...]) -> FormError:
    near = [n for n in names if clean(n).casefold() == FORM_SHEET.casefold()]
    hint = (
        f" The sheet '{near[0]}' looks like it: rename it to exactly '{FORM_SHEET}'."
        if near
        else " Fill in the form on the template's sheet, without renaming it."
    )
    return FormError(Code.SHEET_MISSING, f"The workbook has no '{FORM_SHEET}' sheet.{hint}")


def _extra_sheet(name: str) -> FormError:
    return FormError(
        Code.SHEET_EXTRA,
        f"The workbook may hold only the sheets '{FORM_SHEET}' and '{EXAMPLE_SHEET}'. "
        f"Delete the sheet '{name}' (one form per delegate: put another delegate in another "
        f"workbook).",
        value=name,
    )


def _header_errors(cells: SheetCells) -> list[FormError]:
    """One error per title cell of row 1 that is not its title, saying what it must read."""
    header = tuple(cells.header[: len(TITLES)]) + ("",) * (len(TITLES) - len(cells.header))
    found = [clean(h) for h in header]
    errors = []
    for letter, expected, text, got in zip(COLUMN_LETTERS, TITLES, header, found, strict=True):
        if got == expected:
            continue
        if (1, letter) in cells.formulas:
            what = "holds a formula"
        elif not got:
            what = "is empty"
        else:
            what = f"reads '{got}'"
            if got.casefold() == expected.casefold():
                what += " (only upper/lower case differs)"
            elif got in TITLES:
                what += f", the title of column {COLUMN_LETTERS[TITLES.index(got)]}"
        errors.append(
            FormError(
                Code.HEADER_MISMATCH,
                f"Cell {letter}1 {what}, but must read '{expected}' exactly. Restore the titles "
                f"of row 1 as in the template, in their order.",
                row=1,
                column=expected,
                value=text,
            )
        )
    return errors
