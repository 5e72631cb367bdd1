"""Validate a form sheet: every workbook, cell and form error at once, or the normalised form."""

from __future__ import annotations

from grants.errors import FormError
from grants.form import AccountLine, Contact, DelegateForm
from grants.sheet import SheetCells
from validators.quick import valid_form
from validators.workbook import check_workbook


def validate_sheet(cells: SheetCells) -> tuple[DelegateForm | None, list[FormError]]:
    """(the form, []) when the sheet breaks no rule, else (None, every error found).

    Errors come in three groups, each in row order: workbook, cell, form. A missing form sheet, a
    wrong title row or no data rows stop before the cell checks (see `check_workbook`).
    """
    form = valid_form(cells)  # the usual case, without pandas
    if form is not None:
        return form, []
    return validate_sheet_fully(cells)


def validate_sheet_fully(cells: SheetCells) -> tuple[DelegateForm | None, list[FormError]]:
    """`validate_sheet` through the pandera schema and the cell and form rules, whatever the sheet."""
    # Imported here: pandas and pandera take ~1 s to import, and a run of valid forms needs neither.
    from validators.cells import check_cells
    from validators.rules import DELEGATE_COLUMNS, REQUESTER_COLUMNS, check_form_rules
    from validators.schema import ACCESS_LEVEL, ACCOUNT_ID, DELEGATE_PHONE_TYPE, sheet_frame

    frame = sheet_frame(cells)
    workbook = check_workbook(cells, has_data=not frame.empty)
    if not workbook.rows_readable:
        return None, workbook.errors
    cell_report = check_cells(cells, frame)
    rules = check_form_rules(cells, cell_report.canonical)
    errors = workbook.errors + cell_report.errors + rules.errors
    if errors:
        return None, errors
    canonical, agreed = cell_report.canonical, rules.agreed
    form = DelegateForm(
        requester=Contact(*(agreed[t] for t in REQUESTER_COLUMNS)),
        delegate=Contact(*(agreed[t] for t in DELEGATE_COLUMNS[:4])),
        phone_type=agreed[DELEGATE_PHONE_TYPE],
        lines=tuple(
            AccountLine(row, account_id, level)
            for row, account_id, level in zip(
                canonical.index.tolist(),
                canonical[ACCOUNT_ID].tolist(),
                canonical[ACCESS_LEVEL].tolist(),
                strict=True,
            )
        ),
    )
    return form, []
