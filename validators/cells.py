"""Cell errors: every bad cell of the data rows gets exactly one code, by a fixed precedence.

A cell can break several rules at once (a formula `=A2` also holds `=`; `a:b` in an email column
is also no email). The person is told the one thing to fix first:

    CELL_FORMULA > CELL_BLANK > CELL_FORBIDDEN_CHAR > the column's own code

A formula comes first because its text is not what the cell shows; the forbidden characters come
before the column's rule because they are the utility's rule for every cell, whatever the column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from grants.errors import Code, FormError
from grants.form import COLUMN_LETTERS, LETTER_OF, TITLES
from grants.sheet import SheetCells
from grants.values import InvalidValue, forbidden_chars, normalise_account_id
from validators.schema import ACCOUNT_ID, NORMALISERS, FormSheet

# pandera check name -> the code of a cell that fails it
CODE_OF_CHECK = {
    "not_nullable": Code.CELL_BLANK,
    "no_forbidden_char": Code.CELL_FORBIDDEN_CHAR,
    "name": Code.NAME_INVALID,
    "email": Code.EMAIL_INVALID,
    "phone": Code.PHONE_INVALID,
    "phone_type": Code.PHONE_TYPE_INVALID,
    "account_id": Code.ACCOUNT_ID_INVALID,
    "access_level": Code.ACCESS_LEVEL_INVALID,
}
# Lower rank wins; the column codes never meet each other (one per column).
RANK = {Code.CELL_FORMULA: 0, Code.CELL_BLANK: 1, Code.CELL_FORBIDDEN_CHAR: 2}
_COLUMN_RANK = 3
_POSITION = {title: i for i, title in enumerate(TITLES)}
_TITLE_OF_LETTER = dict(zip(COLUMN_LETTERS, TITLES, strict=True))


@dataclass(frozen=True)
class CellReport:
    """The cell errors in (row, column) order, and the canonical value of every valid cell.

    `canonical` has the frame's index and the 11 titles as columns; a cell that is blank or has
    an error holds None, so form rules see only values that passed their cell's rules.
    """

    errors: list[FormError]
    canonical: pd.DataFrame


def check_cells(cells: SheetCells, frame: pd.DataFrame) -> CellReport:
    """Every cell error of the frame (`schema.sheet_frame(cells)`), at most one per cell."""
    failing = _failing_cells(cells, frame)
    errors = []
    for row, title, code in failing.itertuples(index=False):
        text = cells.rows[row][_POSITION[title]]
        errors.append(
            FormError(code, _message(code, cells, row, title, text), row, title, value=text)
        )
    return CellReport(errors, _canonical(frame, failing))


def _failing_cells(cells: SheetCells, frame: pd.DataFrame) -> pd.DataFrame:
    """Columns row, column, code: one row per failing cell, sorted by row then column position."""
    found = [_schema_failures(frame), _formula_cells(cells, frame)]
    failing = pd.concat([f for f in found if not f.empty] or [found[0]], ignore_index=True)
    if failing.empty:
        return failing
    failing["rank"] = failing["code"].map(lambda c: RANK.get(c, _COLUMN_RANK))
    failing["position"] = failing["column"].map(_POSITION)
    failing = failing.sort_values(["row", "position", "rank"], kind="stable")
    failing = failing.drop_duplicates(["row", "column"], keep="first")
    return failing[["row", "column", "code"]]


def _schema_failures(frame: pd.DataFrame) -> pd.DataFrame:
    try:
        FormSheet.validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        unknown = set(cases["check"]) - CODE_OF_CHECK.keys()
        if unknown:  # the frame is built to the schema's shape: a bug, not a form error
            raise RuntimeError(f"unexpected schema failures: {sorted(unknown)}") from exc
        return pd.DataFrame(
            {
                "row": cases["index"].astype("int64"),
                "column": cases["column"].astype(object),
                "code": cases["check"].map(CODE_OF_CHECK).astype(object),
            }
        )
    return pd.DataFrame({"row": [], "column": [], "code": []}).astype({"row": "int64"})


def _formula_cells(cells: SheetCells, frame: pd.DataFrame) -> pd.DataFrame:
    rows = set(frame.index)
    found = sorted(
        (row, _TITLE_OF_LETTER[letter])
        for row, letter in cells.formulas
        if row in rows and letter in _TITLE_OF_LETTER
    )
    return pd.DataFrame(
        {
            "row": pd.array([r for r, _ in found], dtype="int64"),
            "column": pd.array([t for _, t in found], dtype=object),
            "code": pd.array([Code.CELL_FORMULA] * len(found), dtype=object),
        }
    )


def _canonical(frame: pd.DataFrame, failing: pd.DataFrame) -> pd.DataFrame:
    """The canonical value of each valid cell (normalised once per distinct value), else None."""
    bad = {title: set() for title in TITLES}
    for row, title in zip(failing["row"].tolist(), failing["column"].tolist(), strict=True):
        bad[title].add(row)
    rows = frame.index.tolist()
    columns = {}
    for title in TITLES:
        normalise, skip, known = NORMALISERS[title], bad[title], {}
        out = []
        for row, text in zip(rows, frame[title].tolist(), strict=True):
            if row in skip or not isinstance(text, str):  # an error, or blank (NaN)
                out.append(None)
                continue
            if text not in known:
                known[text] = normalise(text)
            out.append(known[text])
        columns[title] = pd.Series(out, index=frame.index, dtype=object)
    return pd.DataFrame(columns, index=frame.index)


def _message(code: Code, cells: SheetCells, row: int, title: str, text: str) -> str:
    """What the person is to do about this cell."""
    if code is Code.CELL_FORMULA:
        return (
            "This cell holds a formula, and formulas are not accepted. Replace it with the value "
            "itself, typed in as text."
        )
    if code is Code.CELL_BLANK:
        return (
            f"{title} is empty, but this row is used. Fill it in (every used row needs all 11 "
            f"columns), or clear the whole row if it is not meant to be there."
        )
    if code is Code.CELL_FORBIDDEN_CHAR:
        chars = " and ".join(f"'{c}'" for c in forbidden_chars(text))
        return f"No cell may hold '=' or ':' (the utility's rule against formulas). Remove {chars}."
    try:
        if title == ACCOUNT_ID:
            normalise_account_id(text, numeric=(row, LETTER_OF[ACCOUNT_ID]) in cells.numeric)
        else:
            NORMALISERS[title](text)
    except InvalidValue as exc:
        return str(exc)
    raise AssertionError(f"{code} reported for a valid value in row {row}, {title}")
