"""Build `SheetCells` directly (no workbook) for the validator tests: a valid form, then edits."""

from __future__ import annotations

from grants.form import COLUMN_LETTERS, EXAMPLE_SHEET, FORM_SHEET, TITLES
from grants.sheet import SheetCells

COLUMN = dict(zip(TITLES, range(len(TITLES)), strict=True))

REQUESTER = ("Jane", "Doe", "jane.doe@example.com", "415-555-0100")
DELEGATE = ("Taro", "Yamada", "taro.yamada@example.jp", "(212) 555-0199", "Mobile")


def account_id(i: int) -> str:
    """A 10-digit Account ID with leading zeros, distinct for each i."""
    return f"{i:010d}"


def row(i: int, level: str = "Full") -> list[str]:
    """The 11 cells of a valid data row for account number i."""
    return [*REQUESTER, *DELEGATE, account_id(i), level]


def valid_rows(n: int = 15) -> dict[int, list[str]]:
    """n valid data rows, on spreadsheet rows 2..n+1, each with its own account."""
    return {r: row(r - 1) for r in range(2, n + 2)}


def sheet(
    rows: dict[int, list[str]] | None = None,
    *,
    sheet_names: tuple[str, ...] = (FORM_SHEET, EXAMPLE_SHEET),
    has_form_sheet: bool = True,
    header: tuple[str, ...] = TITLES,
    formulas: set[tuple[int, str]] = frozenset(),
    numeric: set[tuple[int, str]] = frozenset(),
    outside: tuple[tuple[int, str, str], ...] = (),
) -> SheetCells:
    """A SheetCells as the reader would hand it over; 15 valid rows unless `rows` is given."""
    rows = valid_rows() if rows is None else rows
    return SheetCells(
        sheet_names=sheet_names,
        has_form_sheet=has_form_sheet,
        header=header if has_form_sheet else (),
        rows={r: tuple(cells) for r, cells in rows.items()} if has_form_sheet else {},
        formulas=frozenset(formulas),
        numeric=frozenset(numeric),
        outside=outside,
    )


def with_cell(title: str, value: str, at_row: int = 2, rows=None) -> dict[int, list[str]]:
    """Valid rows (15 unless given) with one cell replaced."""
    rows = valid_rows() if rows is None else rows
    rows[at_row][COLUMN[title]] = value
    return rows


def letter(title: str) -> str:
    return COLUMN_LETTERS[COLUMN[title]]


def errors_of(cells: SheetCells) -> list:
    """validate_sheet's errors, checking that a form comes back exactly when there are none."""
    from validators import validate_sheet

    form, errors = validate_sheet(cells)
    assert (form is None) == bool(errors)
    return errors
