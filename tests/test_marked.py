"""The marked workbook sent back with a rejection: bad cells shown, every error listed, nothing runs."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import PatternFill
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.formula import ArrayFormula

from grants.errors import Code, FormError
from grants.escape import safe_cell
from grants.form import EXAMPLE_SHEET, FORM_SHEET, TITLES
from loaders.marked import (
    AFTER_LIST_NOTE,
    ERRORS_HEADER,
    ERRORS_SHEET,
    MARK_COLOR,
    cell_of,
    mark_workbook,
)
from loaders.template import fill_rows, load_template

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

ROWS = [
    ("花子", "山田", "hanako.yamada@sakura-trading.example", "415-555-0101",
     "健", "佐藤", "ken.sato@sakura-trading.example", "415-555-0102", "Mobile",
     f"0{410_000_000 + i:09d}", "High")
    for i in range(1, 21)
]  # fmt: skip

ERRORS = [
    FormError(Code.CELL_FORMULA, "Type the Account ID, not a formula.", 7, "Account ID",
              '="0410000006"'),
    FormError(Code.ACCESS_LEVEL_INVALID, "-Pick Full, High or Read Only.", 5, "Access Level",
              "=Admin"),
    FormError(Code.REQUESTER_NOT_UNIQUE, "The rows disagree on the phone.", 8,
              "Requester Primary Phone", "+1 415 555 0199"),
    FormError(Code.PHONE_INVALID, "Not a phone number.", 8, "Requester Primary Phone",
              "+1 415 555 0199"),
    FormError(Code.DATA_OUTSIDE_FORM, "Delete it.", 3, "L", "-2+3"),
    FormError(Code.TOO_FEW_ACCOUNTS, "@ least 15 accounts, or invite online."),
    FormError(Code.DELEGATE_NOT_UNIQUE, "The rows disagree on the delegate.", 6, None, None),
    FormError(Code.HEADER_MISMATCH, "Put the title back.", None, "Account ID", "Account Number"),
]  # fmt: skip
MARKED = {"J7": ERRORS[:1], "K5": ERRORS[1:2], "D8": ERRORS[2:4], "L3": ERRORS[4:5]}


def original() -> bytes:
    """A filled template with formulas, formula-like text, links and rules that compute."""
    wb = load_template()
    ws = wb[FORM_SHEET]
    fill_rows(ws, ROWS)
    ws["J7"] = '="0410000006"'
    ws["K9"] = ArrayFormula("K9", '=UPPER("high")')
    ws["E3"] = '=HYPERLINK("http://evil.example","click")'
    ws["E3"].data_type = "s"  # stored as text, as Excel stores '=... typed with an apostrophe
    ws["F4"] = "@SUM(1+1)"
    ws["L3"] = "-2+3"
    ws["K5"] = "Admin"
    ws["D8"] = "+1 415 555 0199"
    ws["B2"].hyperlink = "http://evil.example/"
    ws.conditional_formatting.add(
        "A2:A5", FormulaRule(formula=["ISBLANK(A2)"], fill=PatternFill("solid", fgColor="FF00FF00"))
    )
    custom = DataValidation(type="custom", formula1="ISNUMBER(A2)")
    custom.add("A2:A10")
    ws.add_data_validation(custom)
    notes = wb.create_sheet("Notes")
    notes["A1"] = "=1+1"
    notes["A2"] = "+44 20 7946 0958"
    notes["A3"] = "\tindented"
    notes["A4"] = "_x000D_return"  # how Excel stores a leading carriage return
    notes["A5"] = 42
    wb.defined_names["evil"] = DefinedName("evil", attr_text="Notes!$A$1")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def before():
    return load_workbook(io.BytesIO(original()))


@pytest.fixture(scope="module")
def marked():
    return load_workbook(io.BytesIO(mark_workbook(original(), ERRORS)), data_only=False)


def all_cells(wb):
    return [cell for ws in wb.worksheets for row in ws.iter_rows() for cell in row]


@pytest.mark.parametrize(("ref", "errors"), MARKED.items(), ids=MARKED.keys())
def test_each_bad_cell_is_filled_red_and_commented_with_its_codes_and_messages(marked, ref, errors):
    cell = marked[FORM_SHEET][ref]
    assert cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb == MARK_COLOR
    assert cell.comment is not None
    for error in errors:
        assert f"{error.code}: {error.message}" in cell.comment.text


def test_only_the_cells_that_errors_name_are_marked(marked):
    ws = marked[FORM_SHEET]
    red = {c.coordinate for row in ws.iter_rows() for c in row if c.fill.fgColor.rgb == MARK_COLOR}
    commented = {c.coordinate for row in ws.iter_rows() for c in row if c.comment}
    assert red == commented == set(MARKED)


def test_the_errors_sheet_comes_first_and_lists_every_error_in_order(marked):
    assert marked.sheetnames == [ERRORS_SHEET, FORM_SHEET, EXAMPLE_SHEET, "Notes"]
    ws = marked[ERRORS_SHEET]
    assert tuple(c.value for c in ws[1]) == ERRORS_HEADER
    listed = [tuple(c.value for c in row) for row in ws.iter_rows(min_row=2, max_row=len(ERRORS) + 1)]
    assert listed == [(e.row, e.column, safe_cell(e.value), str(e.code), safe_cell(e.message)) for e in ERRORS]
    after = [c.value for row in ws.iter_rows(min_row=len(ERRORS) + 2) for c in row if c.value]
    assert after == [AFTER_LIST_NOTE]


def test_the_errors_sheet_has_a_bold_frozen_header_and_readable_widths(marked):
    ws = marked[ERRORS_SHEET]
    assert all(c.font.b for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["E"].width >= 60 and ws.column_dimensions["C"].width >= 20


def test_the_marked_copy_opens_on_the_errors_sheet_with_no_other_tab_selected(marked):
    assert marked.active.title == ERRORS_SHEET
    assert [ws.sheet_view.tabSelected for ws in marked.worksheets] == [True, False, False, False]


def test_nothing_in_the_marked_workbook_is_a_formula_or_starts_like_one(marked):
    for cell in all_cells(marked):
        assert cell.data_type != "f", cell.coordinate
        assert not (isinstance(cell.value, str) and cell.value.startswith(TRIGGERS)), cell.coordinate


@pytest.mark.parametrize(
    ("sheet", "ref", "text"),
    [
        (FORM_SHEET, "J7", '\'="0410000006"'),
        (FORM_SHEET, "K9", '\'=UPPER("high")'),
        (FORM_SHEET, "E3", '\'=HYPERLINK("http://evil.example","click")'),
        (FORM_SHEET, "F4", "'@SUM(1+1)"),
        (FORM_SHEET, "L3", "'-2+3"),
        (FORM_SHEET, "D8", "'+1 415 555 0199"),
        ("Notes", "A1", "'=1+1"),
        ("Notes", "A2", "'+44 20 7946 0958"),
        ("Notes", "A3", "'\tindented"),
        ("Notes", "A4", "'_x000D_return"),
    ],
)
def test_formulas_and_formula_like_text_of_the_original_come_out_as_inert_text(marked, sheet, ref, text):
    cell = marked[sheet][ref]
    assert (cell.value, cell.data_type) == (text, "s")


def test_every_other_value_of_the_original_is_kept_as_it_was(before, marked):
    changed = {"J7", "K9", "E3", "F4", "L3", "D8"}
    for name in (FORM_SHEET, EXAMPLE_SHEET):
        for row in before[name].iter_rows():
            for cell in row:
                if not (name == FORM_SHEET and cell.coordinate in changed):
                    assert marked[name][cell.coordinate].value == cell.value
    assert marked["Notes"]["A5"].value == 42
    assert marked[FORM_SHEET]["J2"].data_type == "s" and marked[FORM_SHEET]["J2"].value == ROWS[0][9]


def test_what_computes_or_links_is_dropped_but_the_templates_drop_downs_stay(before, marked):
    ws, was = marked[FORM_SHEET], before[FORM_SHEET]
    assert "evil" in before.defined_names and not marked.defined_names
    assert len(was.conditional_formatting) == 1 and len(ws.conditional_formatting) == 0
    assert was["B2"].hyperlink is not None and ws["B2"].hyperlink is None
    kinds = sorted(dv.type for dv in ws.data_validations.dataValidation)
    assert sorted(dv.type for dv in was.data_validations.dataValidation) == [
        "custom", "list", "list", "textLength"]  # fmt: skip
    assert kinds == ["list", "list", "textLength"]


def test_an_errors_sheet_already_in_the_workbook_is_replaced_by_the_current_list():
    first = mark_workbook(original(), ERRORS)
    again = load_workbook(io.BytesIO(mark_workbook(first, ERRORS[:1])))
    assert again.sheetnames.count(ERRORS_SHEET) == 1
    assert again[ERRORS_SHEET].cell(2, 4).value == str(Code.CELL_FORMULA)
    assert again[ERRORS_SHEET].cell(3, 4).value is None


def test_a_workbook_without_the_form_sheet_still_gets_every_error_listed():
    wb = load_template()
    wb.remove(wb[FORM_SHEET])
    buf = io.BytesIO()
    wb.save(buf)
    errors = [FormError(Code.SHEET_MISSING, "No 'Delegate Form' sheet.")]
    out = load_workbook(io.BytesIO(mark_workbook(buf.getvalue(), errors)))
    assert out.sheetnames == [ERRORS_SHEET, EXAMPLE_SHEET]
    assert out[ERRORS_SHEET]["D2"].value == "SHEET_MISSING"


@pytest.mark.parametrize("data", [b"", b"not a workbook", b"PK\x03\x04broken"])
def test_bytes_that_are_not_a_workbook_still_give_a_workbook_with_the_list(data):
    out = load_workbook(io.BytesIO(mark_workbook(data, ERRORS)))
    assert out.sheetnames == [ERRORS_SHEET]
    assert out[ERRORS_SHEET].max_row >= len(ERRORS) + 1


def test_characters_a_workbook_cannot_hold_are_left_out_of_the_list():
    error = FormError(Code.NAME_INVALID, "Bad\x07 name.", 2, "Delegate First Name", "\x00Ken\x1b")
    out = load_workbook(io.BytesIO(mark_workbook(original(), [error])))
    assert out[ERRORS_SHEET]["C2"].value == "Ken"
    assert out[FORM_SHEET]["E2"].comment.text == "NAME_INVALID: Bad name."


def test_a_bad_cell_inside_a_merged_range_is_still_marked():
    wb = load_template()
    fill_rows(wb[FORM_SHEET], ROWS)
    wb[FORM_SHEET].merge_cells("A2:B3")
    buf = io.BytesIO()
    wb.save(buf)
    error = FormError(Code.NAME_INVALID, "Fix the name.", 3, "Requester Last Name", "")
    out = load_workbook(io.BytesIO(mark_workbook(buf.getvalue(), [error])))
    assert out[FORM_SHEET]["B3"].fill.fgColor.rgb == MARK_COLOR
    assert out[FORM_SHEET]["B3"].comment is not None


@pytest.mark.parametrize(
    ("row", "column", "cell"),
    [
        *((5, title, (5, i)) for i, title in enumerate(TITLES, start=1)),
        (3, "L", (3, 12)),
        (9, "AA", (9, 27)),
        (9, "XFD", (9, 16384)),
        (9, "XFE", None),  # past the last column
        (None, "Account ID", None),
        (5, None, None),
        (0, "Account ID", None),
        (5, "Notes", None),
        (5, "j", None),
    ],
)
def test_an_error_names_a_cell_only_with_a_row_and_a_title_or_column_letter(row, column, cell):
    assert cell_of(FormError(Code.CELL_BLANK, "m", row, column)) == cell
