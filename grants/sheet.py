"""What the workbook reader hands the validators: the sheet's cells as text, with where they came from.

The reader (loaders/workbook.py) has already refused what is not a safe, small `.xlsx` (FileRejected).
Everything about the *content* — which sheets, the titles, every cell — is judged by validators/.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SheetCells:
    """The `Delegate Form` sheet of one workbook, as read.

    - `sheet_names`: every sheet of the workbook, in workbook order;
    - `has_form_sheet`: False when there is no `Delegate Form` sheet (then the rest is empty);
    - `header`: row 1, columns A-K, as text ('' where empty);
    - `rows`: spreadsheet row number (>= 2) -> the 11 cells of A-K as text ('' where empty),
      surrounding white space stripped and NFC-normalised; rows blank in all 11 columns are left out;
      a formula cell holds its formula text (never its cached value);
    - `formulas`: (row, column letter) of every formula cell in A-K, including row 1;
    - `numeric`: (row, column letter) of every cell in A-K stored as a number (not text); its text
      is the number written without exponent or trailing '.0' (e.g. 123456789.0 -> '123456789');
    - `outside`: (row, column letter, text) of non-empty cells beyond column K (a bounded sample).
    """

    sheet_names: tuple[str, ...]
    has_form_sheet: bool
    header: tuple[str, ...] = ()
    rows: dict[int, tuple[str, ...]] = field(default_factory=dict)
    formulas: frozenset[tuple[int, str]] = frozenset()
    numeric: frozenset[tuple[int, str]] = frozenset()
    outside: tuple[tuple[int, str, str], ...] = ()
