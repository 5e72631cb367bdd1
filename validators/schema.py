"""The form sheet's data rows as a DataFrame, and the pandera schema each cell must satisfy.

The frame's index is the spreadsheet row number and its columns are the 11 titles, so a failure
case's `index` and `column` name the cell (design.md, habit 6). A blank cell is null, and the
schema's non-nullable columns report it as `not_nullable`; every other check ignores nulls, so a
blank cell fails exactly one check.

Value checks call the normalisers of `grants.values` once per distinct value of a column (a
form repeats the same requester and delegate on every row): one rule, one implementation, shared
with the store, and still a few hundred microseconds for 500 rows.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from grants.form import TITLES
from grants.sheet import SheetCells
from grants.values import InvalidValue, clean
from validators.quick import NORMALISERS  # the canonical value of each column's cells (the store's rules)

(
    REQUESTER_FIRST_NAME,
    REQUESTER_LAST_NAME,
    REQUESTER_EMAIL,
    REQUESTER_PHONE,
    DELEGATE_FIRST_NAME,
    DELEGATE_LAST_NAME,
    DELEGATE_EMAIL,
    DELEGATE_PHONE,
    DELEGATE_PHONE_TYPE,
    ACCOUNT_ID,
    ACCESS_LEVEL,
) = TITLES

NAME_COLUMNS = (REQUESTER_FIRST_NAME, REQUESTER_LAST_NAME, DELEGATE_FIRST_NAME, DELEGATE_LAST_NAME)
EMAIL_COLUMNS = (REQUESTER_EMAIL, DELEGATE_EMAIL)
PHONE_COLUMNS = (REQUESTER_PHONE, DELEGATE_PHONE)


def _passes(normalise: Callable[[str], object]) -> Callable[[pd.Series], pd.Series]:
    """A vectorised check: the normaliser runs once per distinct value, mapped back to cells."""

    def check(series: pd.Series) -> pd.Series:
        good = []
        for value in series.unique().tolist():
            try:
                normalise(value)
            except InvalidValue:
                continue
            good.append(value)
        return series.isin(good)

    return check


_is_name = _passes(NORMALISERS[REQUESTER_FIRST_NAME])  # the same for the four name columns
_is_email = _passes(NORMALISERS[REQUESTER_EMAIL])  # and for both emails, both phones
_is_phone = _passes(NORMALISERS[REQUESTER_PHONE])
_is_phone_type = _passes(NORMALISERS[DELEGATE_PHONE_TYPE])
_is_account_id = _passes(NORMALISERS[ACCOUNT_ID])
_is_access_level = _passes(NORMALISERS[ACCESS_LEVEL])


def _field(title: str) -> object:
    return pa.Field(alias=title, nullable=False, coerce=False)


class FormSheet(pa.DataFrameModel):
    """The data rows of `Delegate Form`: the 11 titled columns, every cell filled and well formed.

    Check names are what `validators.cells` maps to error codes: `not_nullable` (pandera's own),
    `no_forbidden_char` and one check per kind of value.
    """

    requester_first_name: Series[str] = _field(REQUESTER_FIRST_NAME)
    requester_last_name: Series[str] = _field(REQUESTER_LAST_NAME)
    requester_email: Series[str] = _field(REQUESTER_EMAIL)
    requester_phone: Series[str] = _field(REQUESTER_PHONE)
    delegate_first_name: Series[str] = _field(DELEGATE_FIRST_NAME)
    delegate_last_name: Series[str] = _field(DELEGATE_LAST_NAME)
    delegate_email: Series[str] = _field(DELEGATE_EMAIL)
    delegate_phone: Series[str] = _field(DELEGATE_PHONE)
    delegate_phone_type: Series[str] = _field(DELEGATE_PHONE_TYPE)
    account_id: Series[str] = _field(ACCOUNT_ID)
    access_level: Series[str] = _field(ACCESS_LEVEL)

    class Config:
        strict = True
        ordered = True

    @pa.check(*TITLES, name="no_forbidden_char")
    def check_no_forbidden_char(cls, series: pd.Series) -> pd.Series:
        return ~series.str.contains("[=:]", regex=True)

    @pa.check(*NAME_COLUMNS, name="name")
    def check_name(cls, series: pd.Series) -> pd.Series:
        return _is_name(series)

    @pa.check(*EMAIL_COLUMNS, name="email")
    def check_email(cls, series: pd.Series) -> pd.Series:
        return _is_email(series)

    @pa.check(*PHONE_COLUMNS, name="phone")
    def check_phone(cls, series: pd.Series) -> pd.Series:
        return _is_phone(series)

    @pa.check(DELEGATE_PHONE_TYPE, name="phone_type")
    def check_phone_type(cls, series: pd.Series) -> pd.Series:
        return _is_phone_type(series)

    @pa.check(ACCOUNT_ID, name="account_id")
    def check_account_id(cls, series: pd.Series) -> pd.Series:
        return _is_account_id(series)

    @pa.check(ACCESS_LEVEL, name="access_level")
    def check_access_level(cls, series: pd.Series) -> pd.Series:
        return _is_access_level(series)


def sheet_frame(cells: SheetCells) -> pd.DataFrame:
    """The data rows as a frame: index = row number, columns = titles, cleaned text, None if blank.

    Rows blank in all 11 columns are left out (the reader already does; a hand-built SheetCells
    may not), so every row of the frame is a data row.
    """
    index, data = [], []
    for row, texts in sorted(cells.rows.items()):
        cleaned = [clean(t) or None for t in texts]
        if any(cleaned):
            index.append(row)
            data.append(cleaned)
    index = pd.Index(index, dtype="int64")
    return pd.DataFrame(data, index=index, columns=list(TITLES), dtype="str")
