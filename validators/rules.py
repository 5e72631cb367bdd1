"""Form errors: the rules across rows, judged only on cells that passed their own rules.

A cell with an error already has its own message; judging it again across rows would report one
mistake twice. So:
- the requester's and the delegate's details are compared column by column over the valid cells;
  the value most rows give is taken as meant (on a tie, the value of the earliest row), and each
  row giving another value is an error on that cell. Emails compare in lower case, phones by their
  digits, names and the phone type (canonical spelling) exactly;
- the delegate is the requester when the two agreed emails are the same. The directory identifies
  people by email; a shared name and phone is not taken as the same person (relatives share both,
  and the form would offer them no way out);
- the account count is checked against what the form would hold whichever way its bad Account ID
  cells are corrected: too few only when even one new account per bad cell would not reach 15,
  too many when the valid distinct IDs alone exceed 500.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from grants.errors import Code, FormError
from grants.form import MAX_ACCOUNTS, MIN_ACCOUNTS, TITLES
from grants.sheet import SheetCells
from validators.schema import ACCESS_LEVEL, ACCOUNT_ID, DELEGATE_EMAIL, REQUESTER_EMAIL

REQUESTER_COLUMNS = TITLES[0:4]
DELEGATE_COLUMNS = TITLES[4:9]
_POSITION = {title: i for i, title in enumerate(TITLES)}


@dataclass(frozen=True)
class FormRulesReport:
    """The form errors (per-row ones in row order first), and the value the rows agree on per
    requester/delegate column (None where no cell of the column is valid)."""

    errors: list[FormError]
    agreed: dict[str, object]


def check_form_rules(cells: SheetCells, canonical: pd.DataFrame) -> FormRulesReport:
    """Duplicates, disagreeing details, delegate = requester and the account count."""
    text = _Text(cells)
    per_row: list[FormError] = []
    agreed: dict[str, object] = {}
    for columns, code, who, source in (
        (REQUESTER_COLUMNS, Code.REQUESTER_NOT_UNIQUE, "requester", "the requester's login"),
        (DELEGATE_COLUMNS, Code.DELEGATE_NOT_UNIQUE, "delegate", "the delegate's first invitation"),
    ):
        for title in columns:
            agreed[title], errors = _agreement(canonical[title], text, title, code, who, source)
            per_row += errors
    per_row += _duplicates(canonical, text)
    per_row.sort(key=lambda e: (e.row, _POSITION[e.column]))
    whole = _delegate_is_requester(canonical, agreed, text) + _account_count(canonical)
    return FormRulesReport(per_row + whole, agreed)


class _Text:
    """The cell's text as read, for error values."""

    def __init__(self, cells: SheetCells):
        self._rows = cells.rows

    def __call__(self, row: int, title: str) -> str:
        return self._rows[row][_POSITION[title]]


def _agreement(
    column: pd.Series, text: _Text, title: str, code: Code, who: str, source: str
) -> tuple[object, list[FormError]]:
    """The value most valid cells give (None if none is valid), and an error per dissenting cell."""
    valid = column.dropna()
    rows, values = valid.index.tolist(), valid.tolist()
    if not values:
        return None, []
    counts = Counter(values)
    agreed = max(counts, key=counts.__getitem__)  # max keeps the first of equals: earliest row
    if len(counts) == 1:
        return agreed, []
    first = rows[values.index(agreed)]
    shown, n = text(first, title), counts[agreed]
    errors = [
        FormError(
            code,
            f"Every row must give the same {who}, exactly as on {source}. This row's {title} is "
            f"'{text(row, title)}', but {n} row{'s' if n > 1 else ''} give '{shown}' (the first "
            f"is row {first}). Correct whichever is wrong so that all rows agree.",
            row=row,
            column=title,
            value=text(row, title),
        )
        for row, value in zip(rows, values, strict=True)
        if value != agreed
    ]
    return agreed, errors


def _duplicates(canonical: pd.DataFrame, text: _Text) -> list[FormError]:
    ids = canonical[ACCOUNT_ID].dropna()
    levels = canonical[ACCESS_LEVEL]
    first_row: dict[str, int] = {}
    errors = []
    for row, account_id in zip(ids.index.tolist(), ids.tolist(), strict=True):
        first = first_row.setdefault(account_id, row)
        if first == row:
            continue
        level, first_level = levels.at[row], levels.at[first]
        differs = (
            f" (there with access level {first_level}, here {level})"
            if isinstance(level, str) and isinstance(first_level, str) and level != first_level
            else ""
        )
        errors.append(
            FormError(
                Code.ACCOUNT_DUPLICATE,
                f"Account ID {account_id} is already on row {first}{differs}. List each account "
                f"once, with the one access level it is to get, and delete this row.",
                row=row,
                column=ACCOUNT_ID,
                value=text(row, ACCOUNT_ID),
            )
        )
    return errors


def _delegate_is_requester(
    canonical: pd.DataFrame, agreed: dict[str, object], text: _Text
) -> list[FormError]:
    email = agreed[DELEGATE_EMAIL]
    if email is None or email != agreed[REQUESTER_EMAIL]:
        return []
    emails = canonical[DELEGATE_EMAIL]
    first = emails.index[(emails == email).to_numpy()][0]
    return [
        FormError(
            Code.DELEGATE_IS_REQUESTER,
            f"The delegate's email {email} is the requester's own. The delegate is the person who "
            f"is to get access: give their details in columns E-I, as on their first invitation.",
            column=DELEGATE_EMAIL,
            value=text(first, DELEGATE_EMAIL),
        )
    ]


def _account_count(canonical: pd.DataFrame) -> list[FormError]:
    ids = canonical[ACCOUNT_ID].dropna()
    distinct = ids.nunique()
    unsure = len(canonical) - len(ids)  # rows whose Account ID is blank or has an error
    if distinct + unsure < MIN_ACCOUNTS:
        return [
            FormError(
                Code.TOO_FEW_ACCOUNTS,
                f"This form lists {distinct} distinct account{'s' if distinct != 1 else ''}"
                f"{f' (and {unsure} row(s) whose Account ID has an error)' if unsure else ''}; "
                f"a form needs {MIN_ACCOUNTS} to {MAX_ACCOUNTS}. For fewer than {MIN_ACCOUNTS} "
                f"accounts, invite the delegate to each account online instead.",
            )
        ]
    if distinct > MAX_ACCOUNTS:
        return [
            FormError(
                Code.TOO_MANY_ACCOUNTS,
                f"This form lists {distinct} distinct accounts; a form may hold at most "
                f"{MAX_ACCOUNTS}. Split the accounts over several forms of at most {MAX_ACCOUNTS} "
                f"accounts each, every one with the same requester and delegate.",
            )
        ]
    return []
