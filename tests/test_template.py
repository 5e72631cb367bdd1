"""The official blank form (`delegation template`): what a person opening it sees and can pick."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from flows.cli import cli
from grants.form import (
    EXAMPLE_SHEET,
    FORM_SHEET,
    LETTER_OF,
    MAX_ACCOUNTS,
    MIN_ACCOUNTS,
    TITLES,
    AccessLevel,
    PhoneType,
)
from loaders.template import (
    EXAMPLE_ROWS,
    fill_rows,
    load_template,
    template_bytes,
    write_template,
)

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
def workbook():
    """The template as written and read back (full mode: data validations are visible)."""
    return load_workbook(io.BytesIO(template_bytes()))


@pytest.fixture(scope="module")
def form(workbook):
    return workbook[FORM_SHEET]


def validations_on(ws, letter: str):
    """The data validations whose ranges lie in column `letter` only."""
    return [
        dv
        for dv in ws.data_validations.dataValidation
        if {get_column_letter(r.min_col) for r in dv.sqref.ranges} == {letter}
        and all(r.min_col == r.max_col for r in dv.sqref.ranges)
    ]


def test_the_template_has_the_form_sheet_first_then_the_example_sheet(workbook):
    assert workbook.sheetnames == [FORM_SHEET, EXAMPLE_SHEET]
    assert workbook.active.title == FORM_SHEET


def test_row_one_holds_the_eleven_titles_in_order_and_in_bold(form):
    assert tuple(c.value for c in form[1]) == TITLES
    assert all(c.font.b for c in form[1])


def test_the_title_row_is_frozen(form):
    assert form.freeze_panes == "A2"


def test_every_column_is_at_least_as_wide_as_its_title(form):
    for i, title in enumerate(TITLES, start=1):
        assert form.column_dimensions[get_column_letter(i)].width >= len(title)


def test_the_form_sheet_has_no_data_rows_and_nothing_beyond_column_k(form):
    assert form.max_column == len(TITLES)
    assert all(c.value is None for row in form.iter_rows(min_row=2) for c in row)


def test_the_account_id_column_is_formatted_as_text_as_a_whole_and_cell_by_cell(form):
    letter = LETTER_OF["Account ID"]
    assert form.column_dimensions[letter].number_format == "@"
    assert all(form[f"{letter}{r}"].number_format == "@" for r in range(2, MAX_ACCOUNTS + 2))
    other = LETTER_OF["Access Level"]
    assert form.column_dimensions[other].number_format == "General"


@pytest.mark.parametrize(
    ("title", "choices"),
    [
        ("Delegate Phone Type", [t.value for t in PhoneType]),
        ("Access Level", [a.value for a in AccessLevel]),
    ],
)
def test_a_drop_down_column_offers_exactly_its_values_and_stops_anything_else(form, title, choices):
    letter = LETTER_OF[title]
    (dv,) = [dv for dv in validations_on(form, letter) if dv.type == "list"]
    assert dv.formula1 == '"' + ",".join(choices) + '"'
    assert f"{letter}2" in dv.sqref and f"{letter}{MAX_ACCOUNTS + 1}" in dv.sqref
    assert f"{letter}1048576" in dv.sqref
    assert f"{letter}1" not in dv.sqref  # the title itself is not a choice
    assert dv.showErrorMessage and dv.errorStyle == "stop"
    assert dv.errorTitle and all(c in dv.error for c in choices)
    assert dv.showInputMessage and dv.promptTitle and dv.prompt
    assert not dv.showDropDown  # openpyxl's inverted flag: False shows the arrow
    assert len(dv.errorTitle) <= 32 and len(dv.error) <= 255 and len(dv.prompt) <= 255


def test_the_account_id_column_accepts_only_ten_characters(form):
    (dv,) = validations_on(form, LETTER_OF["Account ID"])
    assert (dv.type, dv.operator, dv.formula1) == ("textLength", "equal", "10")
    assert dv.showErrorMessage and dv.errorStyle == "stop" and dv.prompt


def test_the_example_sheet_shows_filled_rows_under_the_titles(workbook):
    ws = workbook[EXAMPLE_SHEET]
    assert tuple(c.value for c in ws[1]) == TITLES
    rows = [tuple(c.value for c in row) for row in ws.iter_rows(min_row=2, max_row=1 + len(EXAMPLE_ROWS))]
    assert rows == list(EXAMPLE_ROWS)
    account_ids = [ws.cell(r, TITLES.index("Account ID") + 1) for r in range(2, 2 + len(EXAMPLE_ROWS))]
    assert all(c.data_type == "s" and len(c.value) == 10 and c.value.startswith("0") for c in account_ids)
    names = {row[0] for row in rows} | {row[4] for row in rows}
    assert {"花子", "Văn An"} <= names  # Japanese and Vietnamese names are everyday ones


@pytest.mark.parametrize(
    "rule",
    [
        f"{MIN_ACCOUNTS} to {MAX_ACCOUNTS} accounts",
        "same requester details",
        "same delegate details",
        "equals sign or a colon",
        "leading zeros",
        "formatted as text",
        "Full access on a business account is only for a direct employee",
        "drop-down",
        "accepted an invitation",
    ],
)
def test_the_example_sheet_states_the_rules_a_requester_must_know(workbook, rule):
    ws = workbook[EXAMPLE_SHEET]
    text = " ".join(str(c.value) for row in ws.iter_rows() for c in row if c.value)
    assert rule in text


def test_the_template_holds_no_formula_and_no_text_that_could_start_one(workbook):
    for ws in workbook.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f"
                assert not (isinstance(cell.value, str) and cell.value.startswith(TRIGGERS))


def test_writing_the_template_twice_gives_the_same_bytes(tmp_path):
    write_template(tmp_path / "a.xlsx")
    buf = io.BytesIO()
    write_template(buf)
    assert (tmp_path / "a.xlsx").read_bytes() == buf.getvalue() == template_bytes()


def test_the_workbook_properties_are_fixed_so_regenerating_changes_nothing(workbook):
    props = workbook.properties
    assert props.created == props.modified
    assert props.created.year == 2026 and props.creator == "delegation"


def test_filling_rows_beyond_the_pre_formatted_ones_keeps_account_ids_as_text():
    wb = load_template()
    ws = wb[FORM_SHEET]
    rows = [("a",) * 9 + (f"{i:010d}", "High") for i in range(MAX_ACCOUNTS + 5)]
    assert fill_rows(ws, rows) == MAX_ACCOUNTS + 7
    last = ws.cell(MAX_ACCOUNTS + 6, TITLES.index("Account ID") + 1)
    assert last.number_format == "@" and last.value == f"{MAX_ACCOUNTS + 4:010d}"


def test_delegation_template_writes_the_blank_form_to_the_given_path(tmp_path):
    target = tmp_path / "form.xlsx"
    result = CliRunner().invoke(cli, ["template", str(target)])
    assert result.exit_code == 0, result.output
    assert str(target) in result.output
    assert target.read_bytes() == template_bytes()


def test_delegation_template_replaces_an_existing_file(tmp_path):
    target = tmp_path / "form.xlsx"
    target.write_bytes(b"old")
    assert CliRunner().invoke(cli, ["template", str(target)]).exit_code == 0
    assert target.read_bytes() == template_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["form.xlsx"]  # no temporary file left


def test_delegation_template_refuses_a_folder_that_does_not_exist(tmp_path):
    result = CliRunner().invoke(cli, ["template", str(tmp_path / "nowhere" / "form.xlsx")])
    assert result.exit_code == 2
    assert "no such folder" in result.output


def test_delegation_template_answers_help():
    result = CliRunner().invoke(cli, ["template", "--help"])
    assert result.exit_code == 0 and "Delegate User Form" in result.output
