"""The usual case without pandas: a sheet that breaks no rule, recognised and turned into its form.

`validate_sheet` asks this first. It only ever answers "valid, and here is the form": at the first
sign of any error it answers None, and the full path (the pandera schema, the cell and form rules)
judges the sheet and names every error. It checks what the full path checks, in the same terms:

- workbook: only the allowed sheets, the form sheet there, its titles right, nothing right of K;
- cells: in every used row all 11 cells filled, no formula, no '=' or ':', each value accepted by
  its column's normaliser (the same functions the schema's checks call, from `NORMALISERS`);
- form: every row gives the same requester and delegate, each account once, the delegate is not
  the requester, 15 to 500 accounts.

A valid 500-row sheet costs ~2 ms here against ~15 ms through pandera, and a run of valid forms
never imports pandas (~1 s). tests/test_validation_paths.py holds the two paths to one verdict.
"""

from __future__ import annotations

from collections.abc import Callable

from grants.form import MAX_ACCOUNTS, MIN_ACCOUNTS, TITLES, AccountLine, Contact, DelegateForm
from grants.sheet import SheetCells
from grants.values import (
    InvalidValue,
    clean,
    forbidden_chars,
    normalise_access_level,
    normalise_account_id,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_phone_type,
)
from validators.workbook import ALLOWED_SHEETS

# The canonical value of each column's cells, by title (the schema's checks use the same).
NORMALISERS: dict[str, Callable[[str], object]] = dict(
    zip(
        TITLES,
        (
            normalise_name, normalise_name, normalise_email, normalise_phone,  # the requester
            normalise_name, normalise_name, normalise_email, normalise_phone, normalise_phone_type,  # delegate
            normalise_account_id, normalise_access_level,
        ),
        strict=True,
    )
)  # fmt: skip
_WIDTH = len(TITLES)
_PERSON_COLUMNS = 9  # A-I: the requester's and the delegate's details, the same on every row
_REQUESTER_EMAIL, _DELEGATE_EMAIL = TITLES.index("Requester Primary Email"), TITLES.index("Delegate Email")


def valid_form(cells: SheetCells) -> DelegateForm | None:
    """The form when the sheet breaks no workbook, cell or form rule; None otherwise (or if unsure)."""
    if not cells.has_form_sheet or cells.outside or any(n not in ALLOWED_SHEETS for n in cells.sheet_names):
        return None
    header = tuple(cells.header[:_WIDTH]) + ("",) * (_WIDTH - len(cells.header))
    if tuple(clean(h) for h in header) != TITLES:
        return None
    if any(len(texts) != _WIDTH for texts in cells.rows.values()):
        return None
    # the people's details repeat on every row: each distinct text cleaned once
    cleaned_of = {t: clean(t) for t in set().union(*cells.rows.values())}.__getitem__
    numbers, rows = [], []
    for number, texts in sorted(cells.rows.items()):
        cleaned = tuple(map(cleaned_of, texts))
        if not any(cleaned):
            continue  # a blank row is no data row
        if not all(cleaned):
            return None  # a blank cell in a used row
        numbers.append(number)
        rows.append(cleaned)
    if not MIN_ACCOUNTS <= len(rows) <= MAX_ACCOUNTS:
        return None  # no data, or (accounts being distinct below) too few or too many
    if cells.formulas:
        used = set(numbers)
        if any(number in used for number, _ in cells.formulas):
            return None
    canonical = []
    for title, texts in zip(TITLES, zip(*rows, strict=True), strict=True):
        normalise, known = NORMALISERS[title], {}
        for text in set(texts):
            if forbidden_chars(text):
                return None
            try:
                known[text] = normalise(text)
            except InvalidValue:
                return None
        canonical.append(tuple(map(known.__getitem__, texts)))
    agreed = []
    for values in canonical[:_PERSON_COLUMNS]:
        distinct = set(values)
        if len(distinct) != 1:
            return None  # some row gives another requester or delegate detail
        agreed.append(distinct.pop())
    account_ids, levels = canonical[_PERSON_COLUMNS], canonical[_PERSON_COLUMNS + 1]
    if len(set(account_ids)) != len(account_ids) or agreed[_DELEGATE_EMAIL] == agreed[_REQUESTER_EMAIL]:
        return None
    return DelegateForm(
        requester=Contact(*agreed[0:4]),
        delegate=Contact(*agreed[4:8]),
        phone_type=agreed[8],
        lines=tuple(AccountLine(*line) for line in zip(numbers, account_ids, levels, strict=True)),
    )
