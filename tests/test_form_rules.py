"""validate_sheet: workbook, cell and form errors of a Delegate Form sheet, all found at once."""

from __future__ import annotations

import time
import unicodedata

import pytest
from sheet_builders import (
    REQUESTER,
    account_id,
    errors_of,
    letter,
    row,
    sheet,
    valid_rows,
    with_cell,
)

from grants.errors import Code
from grants.form import TITLES, AccessLevel, Contact, PhoneType
from validators import validate_sheet


def codes(cells) -> list[tuple[Code, int | None, str | None]]:
    """(code, row, column) of every error, in the order returned."""
    errors = errors_of(cells)
    return [(e.code, e.row, e.column) for e in errors]


def only_error(cells):
    errors = errors_of(cells)
    assert len(errors) == 1, [e.to_dict() for e in errors]
    return errors[0]


# --- a valid form ------------------------------------------------------------------------------


def test_a_valid_sheet_gives_the_normalised_form_and_no_errors():
    rows = valid_rows(15)
    rows[3][TITLES.index("Requester Primary Email")] = "Jane.Doe@EXAMPLE.com"
    rows[4][TITLES.index("Delegate Primary Phone")] = "212.555.0199"
    rows[5][TITLES.index("Delegate Phone Type")] = " mobile "
    form, errors = validate_sheet(sheet(rows))
    assert errors == []
    assert form.requester == Contact("Jane", "Doe", "jane.doe@example.com", "4155550100")
    assert form.delegate == Contact("Taro", "Yamada", "taro.yamada@example.jp", "2125550199")
    assert form.phone_type is PhoneType.MOBILE
    assert [line.row for line in form.lines] == list(range(2, 17))
    assert form.account_ids == tuple(account_id(i) for i in range(1, 16))


def test_drop_down_values_in_any_case_are_stored_in_their_canonical_spelling():
    rows = {r: row(r - 1, level) for r, level in
            zip(range(2, 17), ["read only", " FULL ", "high", "Read Only", "full"] * 3, strict=True)}
    form, errors = validate_sheet(sheet(rows))
    assert errors == []
    assert [line.level for line in form.lines[:5]] == [
        AccessLevel.READ_ONLY, AccessLevel.FULL, AccessLevel.HIGH, AccessLevel.READ_ONLY,
        AccessLevel.FULL]


@pytest.mark.parametrize(
    "phone", ["415-555-0100", "(415) 555-0100", "415.555.0100", "4155550100", "+1 415 555 0100"]
)
def test_each_phone_spelling_of_the_spec_is_accepted_on_every_row(phone):
    rows = valid_rows()
    for cells in rows.values():
        cells[TITLES.index("Requester Primary Phone")] = phone
    form, errors = validate_sheet(sheet(rows))
    assert errors == []
    assert form.requester.phone == "4155550100"


def test_the_rows_may_spell_the_same_phone_and_email_differently():
    rows = valid_rows()
    for r, phone in zip(range(2, 7), ["415-555-0100", "(415) 555-0100", "415.555.0100",
                                      "4155550100", "+1 415 555 0100"], strict=True):
        rows[r][TITLES.index("Requester Primary Phone")] = phone
        rows[r][TITLES.index("Requester Primary Email")] = "JANE.DOE@example.COM"
    assert codes(sheet(rows)) == []


def test_japanese_and_vietnamese_names_are_accepted_and_nfd_input_is_stored_nfc():
    rows = valid_rows()
    nfd_first = unicodedata.normalize("NFD", "Nguyễn Thị")
    for cells in rows.values():
        cells[0:2] = [nfd_first, unicodedata.normalize("NFD", "Minh Khai")]
        cells[4:6] = ["山田", "太郎"]
    form, errors = validate_sheet(sheet(rows))
    assert errors == []
    assert form.requester.first_name == "Nguyễn Thị"
    assert form.requester.last_name == "Minh Khai"
    assert (form.delegate.first_name, form.delegate.last_name) == ("山田", "太郎")


def test_a_text_account_id_keeps_its_leading_zeros_and_a_ten_digit_number_is_accepted():
    rows = with_cell("Account ID", "1234567890", at_row=3)
    form, errors = validate_sheet(sheet(rows, numeric={(3, "J")}))
    assert errors == []
    assert form.account_ids[:2] == ("0000000001", "1234567890")


# --- workbook level ----------------------------------------------------------------------------


def test_a_workbook_without_the_form_sheet_gets_sheet_missing_and_nothing_else_is_read():
    assert codes(sheet(has_form_sheet=False, sheet_names=("Delegate Form", "Example")[1:])) == [
        (Code.SHEET_MISSING, None, None)]


def test_a_missing_form_sheet_with_a_near_name_says_to_rename_it_and_the_stray_sheet_is_extra():
    errors = errors_of(sheet(has_form_sheet=False, sheet_names=("delegate form ",)))
    assert [e.code for e in errors] == [Code.SHEET_MISSING, Code.SHEET_EXTRA]
    assert "rename it to exactly 'Delegate Form'" in errors[0].message
    assert errors[1].value == "delegate form "


def test_each_extra_sheet_is_one_error_naming_it_and_the_cells_are_still_checked():
    cells = sheet(with_cell("Delegate Email", "taro@", at_row=4),
                  sheet_names=("Delegate Form", "Example", "Sheet2", "Notes"))
    errors = errors_of(cells)
    assert [(e.code, e.value) for e in errors] == [
        (Code.SHEET_EXTRA, "Sheet2"), (Code.SHEET_EXTRA, "Notes"), (Code.EMAIL_INVALID, "taro@")]
    assert "'Sheet2'" in errors[0].message


def test_the_example_sheet_is_allowed_and_never_read():
    assert codes(sheet(sheet_names=("Example", "Delegate Form"))) == []


@pytest.mark.parametrize(
    ("position", "written", "says"),
    [
        (2, "Requester Email", "reads 'Requester Email'"),
        (9, "", "is empty"),
        (9, "account id", "only upper/lower case differs"),
        (10, "Access level ", "only upper/lower case differs"),
        (0, "Requester Last Name", "the title of column B"),
    ],
)
def test_a_wrong_title_is_a_header_mismatch_naming_the_column_and_the_expected_title(
    position, written, says
):
    header = list(TITLES)
    header[position] = written
    error = only_error(sheet(header=tuple(header)))
    assert (error.code, error.row, error.column, error.value) == (
        Code.HEADER_MISMATCH, 1, TITLES[position], written)
    assert says in error.message
    assert f"must read '{TITLES[position]}' exactly" in error.message
    assert f"Cell {'ABCDEFGHIJK'[position]}1" in error.message


def test_swapped_titles_give_one_header_mismatch_per_wrong_column():
    header = list(TITLES)
    header[0], header[1] = header[1], header[0]
    assert codes(sheet(header=tuple(header))) == [
        (Code.HEADER_MISMATCH, 1, TITLES[0]), (Code.HEADER_MISMATCH, 1, TITLES[1])]


def test_titles_are_compared_after_stripping_and_nfc():
    header = tuple(f"  {t} " for t in TITLES)
    assert codes(sheet(header=header)) == []


def test_a_short_title_row_reports_each_missing_title():
    assert codes(sheet(header=TITLES[:9])) == [
        (Code.HEADER_MISMATCH, 1, "Account ID"), (Code.HEADER_MISMATCH, 1, "Access Level")]


def test_a_title_written_as_a_formula_is_a_header_mismatch_saying_so():
    header = list(TITLES)
    header[3] = '="Requester Primary Phone"'
    error = only_error(sheet(header=tuple(header), formulas={(1, "D")}))
    assert error.code is Code.HEADER_MISMATCH
    assert "holds a formula" in error.message


def test_a_wrong_header_stops_before_the_cell_checks_but_not_the_other_workbook_checks():
    header = ("Name", *TITLES[1:])
    rows = with_cell("Requester Primary Email", "not an email", at_row=2)
    cells = sheet(rows, header=header, sheet_names=("Delegate Form", "Extra"),
                  outside=((2, "L", "note"),))
    assert codes(cells) == [
        (Code.SHEET_EXTRA, None, None),
        (Code.HEADER_MISMATCH, 1, "Requester First Name"),
        (Code.DATA_OUTSIDE_FORM, 2, "L"),
    ]


def test_each_cell_outside_columns_a_to_k_is_an_error_at_its_row_and_letter():
    outside = ((1, "L", "Notes"), (7, "M", "call Bob"), (300, "AA", "x"))
    errors = errors_of(sheet(outside=outside))
    assert [(e.code, e.row, e.column, e.value) for e in errors] == [
        (Code.DATA_OUTSIDE_FORM, 1, "L", "Notes"),
        (Code.DATA_OUTSIDE_FORM, 7, "M", "call Bob"),
        (Code.DATA_OUTSIDE_FORM, 300, "AA", "x"),
    ]
    assert "Cell M7" in errors[1].message


def test_data_outside_the_form_does_not_stop_the_cell_checks():
    cells = sheet(with_cell("Access Level", "Admin", at_row=5), outside=((5, "L", "why"),))
    assert codes(cells) == [(Code.DATA_OUTSIDE_FORM, 5, "L"),
                            (Code.ACCESS_LEVEL_INVALID, 5, "Access Level")]


@pytest.mark.parametrize("rows", [{}, {2: [""] * 11, 3: ["  "] * 11}], ids=["none", "blank"])
def test_a_sheet_without_data_rows_is_no_data_alone(rows):
    assert codes(sheet(rows)) == [(Code.NO_DATA, None, None)]


# --- cell level --------------------------------------------------------------------------------


@pytest.mark.parametrize("title", TITLES)
def test_an_empty_cell_in_a_partly_filled_row_is_cell_blank(title):
    error = only_error(sheet(with_cell(title, "   ", at_row=9)))
    assert (error.code, error.row, error.column, error.value) == (Code.CELL_BLANK, 9, title, "   ")
    assert f"{title} is empty" in error.message


def test_a_row_with_a_single_filled_cell_reports_each_empty_cell():
    rows = valid_rows(16)
    rows[17] = [""] * 10 + ["Full"]
    assert codes(sheet(rows)) == [(Code.CELL_BLANK, 17, t) for t in TITLES[:10]]


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("Requester First Name", "=1+1"),
        ("Requester Last Name", "a:b"),
        ("Requester Primary Email", "mailto:jane.doe@example.com"),
        ("Requester Primary Phone", "tel:415-555-0100"),
        ("Delegate Email", "a=b@example.com"),
        ("Delegate Phone Type", "Mobile:"),
        ("Account ID", "=0123456789"),
        ("Access Level", "Full="),
    ],
)
def test_a_cell_holding_an_equals_sign_or_a_colon_is_forbidden_whatever_its_column(title, text):
    error = only_error(sheet(with_cell(title, text, at_row=3)))
    assert (error.code, error.row, error.column, error.value) == (
        Code.CELL_FORBIDDEN_CHAR, 3, title, text)
    assert "Remove" in error.message


@pytest.mark.parametrize(
    ("text", "is_formula", "code"),
    [
        ("=1+1", True, Code.CELL_FORMULA),
        ('="0123456789"', True, Code.CELL_FORMULA),
        ("=A1", False, Code.CELL_FORBIDDEN_CHAR),
        ("12:34", False, Code.CELL_FORBIDDEN_CHAR),
        ("123", False, Code.ACCOUNT_ID_INVALID),
        ("", False, Code.CELL_BLANK),
    ],
)
def test_each_bad_cell_gets_one_code_formula_before_blank_before_forbidden_before_the_column(
    text, is_formula, code
):
    cells = sheet(with_cell("Account ID", text, at_row=6),
                  formulas={(6, "J")} if is_formula else set())
    error = only_error(cells)
    assert (error.code, error.row, error.column, error.value) == (code, 6, "Account ID", text)


def test_a_formula_whose_value_looks_fine_is_refused():
    rows = with_cell("Delegate First Name", '="Taro"', at_row=2)
    error = only_error(sheet(rows, formulas={(2, letter("Delegate First Name"))}))
    assert error.code is Code.CELL_FORMULA
    assert "formula" in error.message


@pytest.mark.parametrize(
    ("title", "text", "code"),
    [
        ("Requester First Name", "J4ne", Code.NAME_INVALID),
        ("Requester Last Name", "D" * 101, Code.NAME_INVALID),
        ("Delegate First Name", "Taro!", Code.NAME_INVALID),
        ("Delegate Last Name", "Yamada (work)", Code.NAME_INVALID),
        ("Requester Primary Email", "jane.doe@", Code.EMAIL_INVALID),
        ("Delegate Email", "taro yamada@example.jp", Code.EMAIL_INVALID),
        ("Requester Primary Phone", "555-0100", Code.PHONE_INVALID),
        ("Delegate Primary Phone", "012-555-0100", Code.PHONE_INVALID),
        ("Delegate Phone Type", "Cell", Code.PHONE_TYPE_INVALID),
        ("Account ID", "12345", Code.ACCOUNT_ID_INVALID),
        ("Access Level", "Admin", Code.ACCESS_LEVEL_INVALID),
    ],
)
def test_a_value_breaking_its_column_rule_gets_the_column_code_with_the_text_as_read(
    title, text, code
):
    error = only_error(sheet(with_cell(title, text, at_row=10)))
    assert (error.code, error.row, error.column, error.value) == (code, 10, title, text)


def test_a_nine_digit_numeric_account_id_is_refused_saying_excel_dropped_the_leading_zero():
    error = only_error(sheet(with_cell("Account ID", "123456789", at_row=4), numeric={(4, "J")}))
    assert (error.code, error.row, error.value) == (Code.ACCOUNT_ID_INVALID, 4, "123456789")
    assert "dropped its leading zero" in error.message
    assert "Format the Account ID column as Text" in error.message


def test_a_nine_digit_text_account_id_is_refused_as_nine_digits():
    error = only_error(sheet(with_cell("Account ID", "123456789", at_row=4)))
    assert error.code is Code.ACCOUNT_ID_INVALID
    assert "this one has 9" in error.message


# --- form level --------------------------------------------------------------------------------


def test_each_repeat_of_an_account_id_is_a_duplicate_naming_its_first_row():
    rows = valid_rows(17)
    rows[9][9] = rows[12][9] = rows[3][9]  # 0000000002 on rows 3, 9 and 12
    rows[12][10] = "High"
    errors = errors_of(sheet(rows))
    assert [(e.code, e.row, e.column, e.value) for e in errors] == [
        (Code.ACCOUNT_DUPLICATE, 9, "Account ID", "0000000002"),
        (Code.ACCOUNT_DUPLICATE, 12, "Account ID", "0000000002"),
    ]
    assert "already on row 3" in errors[0].message
    assert "already on row 3 (there with access level Full, here High)" in errors[1].message


@pytest.mark.parametrize(
    ("title", "other"),
    [("Requester First Name", "Janet"), ("Requester First Name", "jane"),
     ("Requester Last Name", "Do"), ("Requester Primary Email", "jane@example.com"),
     ("Requester Primary Phone", "415-555-0101")],
)
def test_a_row_giving_another_requester_detail_is_requester_not_unique_on_that_cell(title, other):
    error = only_error(sheet(with_cell(title, other, at_row=8)))
    assert (error.code, error.row, error.column, error.value) == (
        Code.REQUESTER_NOT_UNIQUE, 8, title, other)
    assert "the first is row 2" in error.message


@pytest.mark.parametrize(
    ("title", "other"),
    [("Delegate First Name", "Hanako"), ("Delegate Last Name", "YAMADA"),
     ("Delegate Email", "taro@example.jp"), ("Delegate Primary Phone", "212-555-0198"),
     ("Delegate Phone Type", "Work")],
)
def test_a_row_giving_another_delegate_detail_is_delegate_not_unique_on_that_cell(title, other):
    error = only_error(sheet(with_cell(title, other, at_row=16)))
    assert (error.code, error.row, error.column, error.value) == (
        Code.DELEGATE_NOT_UNIQUE, 16, title, other)


def test_the_detail_most_rows_give_is_taken_as_meant_even_when_the_first_row_differs():
    error = only_error(sheet(with_cell("Delegate First Name", "Tarou", at_row=2)))
    assert (error.code, error.row) == (Code.DELEGATE_NOT_UNIQUE, 2)
    assert "14 rows give 'Taro' (the first is row 3)" in error.message


def test_on_a_tie_the_earliest_rows_detail_is_taken_as_meant():
    rows = valid_rows(16)
    for r in range(10, 18):
        rows[r][TITLES.index("Requester Last Name")] = "Smith"
    assert codes(sheet(rows)) == [
        (Code.REQUESTER_NOT_UNIQUE, r, "Requester Last Name") for r in range(10, 18)]


def test_a_cell_with_its_own_error_is_not_also_reported_by_the_form_rules():
    rows = valid_rows()
    rows[4][TITLES.index("Requester Primary Email")] = "jane.doe@"
    rows[5][TITLES.index("Account ID")] = rows[2][TITLES.index("Account ID")][:-1]
    assert codes(sheet(rows)) == [(Code.EMAIL_INVALID, 4, "Requester Primary Email"),
                                  (Code.ACCOUNT_ID_INVALID, 5, "Account ID")]


def test_a_delegate_with_the_requesters_email_in_any_case_is_the_requester():
    rows = valid_rows()
    for cells in rows.values():
        cells[TITLES.index("Delegate Email")] = "JANE.DOE@example.com"
    error = only_error(sheet(rows))
    assert (error.code, error.row, error.column, error.value) == (
        Code.DELEGATE_IS_REQUESTER, None, "Delegate Email", "JANE.DOE@example.com")


def test_a_delegate_sharing_the_requesters_name_and_phone_but_not_email_is_not_the_requester():
    rows = {r: [*REQUESTER, "Jane", "Doe", "jane.doe@work.example.com", REQUESTER[3], "Home",
                account_id(r), "High"] for r in range(2, 17)}
    assert codes(sheet(rows)) == []


@pytest.mark.parametrize(
    ("accounts", "expected"),
    [(1, [Code.TOO_FEW_ACCOUNTS]), (14, [Code.TOO_FEW_ACCOUNTS]), (15, []), (500, []),
     (501, [Code.TOO_MANY_ACCOUNTS])],
)
def test_a_form_holds_15_to_500_distinct_accounts(accounts, expected):
    assert [c for c, _, _ in codes(sheet(valid_rows(accounts)))] == expected


def test_too_few_accounts_tells_the_requester_to_invite_the_delegate_online():
    error = only_error(sheet(valid_rows(14)))
    assert (error.row, error.column) == (None, None)
    assert "14 distinct accounts" in error.message
    assert "invite the delegate to each account online" in error.message


def test_too_many_accounts_tells_the_requester_to_split_them_over_several_forms():
    error = only_error(sheet(valid_rows(501)))
    assert "501 distinct accounts" in error.message
    assert "Split the accounts over several forms of at most 500" in error.message


def test_repeated_accounts_do_not_count_towards_the_fifteen():
    rows = valid_rows(15)
    rows[16][9] = rows[2][9]
    assert [c for c, _, _ in codes(sheet(rows))] == [Code.ACCOUNT_DUPLICATE,
                                                     Code.TOO_FEW_ACCOUNTS]


def test_a_bad_account_id_is_not_also_counted_as_too_few_accounts():
    assert [c for c, _, _ in codes(sheet(with_cell("Account ID", "x", at_row=5)))] == [
        Code.ACCOUNT_ID_INVALID]


# --- every error at once -----------------------------------------------------------------------


def test_every_error_of_a_form_with_errors_in_many_rows_is_returned_at_once():
    rows = valid_rows(40)
    t = TITLES.index
    rows[3][t("Requester First Name")] = "=1+1"
    rows[5][t("Requester Primary Email")] = "jane.doe@@example.com"
    rows[7][t("Requester Primary Phone")] = "415-555-0100 x9"
    rows[9][t("Delegate Last Name")] = ""
    rows[11][t("Delegate Phone Type")] = "Cell"
    rows[13][t("Account ID")] = "123456789"
    rows[15][t("Access Level")] = "Admin"
    rows[17][t("Delegate First Name")] = "a:b"
    rows[19][t("Requester Last Name")] = "Smith"
    rows[21][t("Account ID")] = rows[2][t("Account ID")]
    rows[23][t("Delegate Email")] = "someone.else@example.jp"
    rows[25][t("Requester First Name")] = "J4ne"
    rows[25][t("Delegate Primary Phone")] = "(212) 055-0199"
    cells = sheet(rows, formulas={(3, "A")}, numeric={(13, "J")}, outside=((30, "L", "?"),),
                  sheet_names=("Delegate Form", "Example", "Copy of Delegate Form"))
    assert codes(cells) == [
        (Code.SHEET_EXTRA, None, None),
        (Code.DATA_OUTSIDE_FORM, 30, "L"),
        (Code.CELL_FORMULA, 3, "Requester First Name"),
        (Code.EMAIL_INVALID, 5, "Requester Primary Email"),
        (Code.PHONE_INVALID, 7, "Requester Primary Phone"),
        (Code.CELL_BLANK, 9, "Delegate Last Name"),
        (Code.PHONE_TYPE_INVALID, 11, "Delegate Phone Type"),
        (Code.ACCOUNT_ID_INVALID, 13, "Account ID"),
        (Code.ACCESS_LEVEL_INVALID, 15, "Access Level"),
        (Code.CELL_FORBIDDEN_CHAR, 17, "Delegate First Name"),
        (Code.NAME_INVALID, 25, "Requester First Name"),
        (Code.PHONE_INVALID, 25, "Delegate Primary Phone"),
        (Code.REQUESTER_NOT_UNIQUE, 19, "Requester Last Name"),
        (Code.ACCOUNT_DUPLICATE, 21, "Account ID"),
        (Code.DELEGATE_NOT_UNIQUE, 23, "Delegate Email"),
    ]


def test_a_form_of_500_rows_with_an_error_in_every_cell_reports_all_5500():
    rows = {r: [f"x{r}:"] * 11 for r in range(2, 502)}
    errors = errors_of(sheet(rows))
    assert len(errors) == 5500
    assert {e.code for e in errors} == {Code.CELL_FORBIDDEN_CHAR}


def test_validating_500_rows_is_timed_for_the_record(capsys):
    """Prints how long 500 valid rows and 500 rows with 250 errors take (no timing asserted)."""
    valid = sheet(valid_rows(500))
    rows = valid_rows(500)
    for r in range(2, 502, 2):
        rows[r][(r // 2) % 11] = "bad:" if r % 3 else ""
    invalid = sheet(rows)
    timings = {}
    for name, cells in (("valid", valid), ("250 errors", invalid)):
        validate_sheet(cells)
        best = min(_elapsed(validate_sheet, cells) for _ in range(5))
        timings[name] = best
    assert validate_sheet(valid)[1] == []
    assert len(validate_sheet(invalid)[1]) == 250
    with capsys.disabled():
        print("\nvalidate_sheet, 500 rows: " + ", ".join(
            f"{name} {ms:.1f} ms" for name, ms in timings.items()))


def _elapsed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000
