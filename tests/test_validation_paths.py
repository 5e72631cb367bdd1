"""The quick path (validators/quick.py) and the full pandera path give every sheet one verdict.

`validate_sheet` takes a sheet through the quick path first: it must accept exactly the sheets the
full path finds no error in, and build the same form from them.
"""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sheet_builders import COLUMN, REQUESTER, sheet, valid_rows, with_cell

from grants.errors import FileRejected
from grants.form import TITLES
from loaders.workbook import read_workbook
from validators.form import validate_sheet_fully
from validators.quick import NORMALISERS, valid_form


def same_verdict(cells) -> None:
    form, errors = validate_sheet_fully(cells)
    assert valid_form(cells) == form, [e.to_dict() for e in errors][:3]


def test_the_schema_checks_each_column_with_its_normaliser_from_the_quick_path():
    from validators import schema

    assert schema.NORMALISERS is NORMALISERS
    assert len({NORMALISERS[t] for t in schema.NAME_COLUMNS}) == 1
    assert len({NORMALISERS[t] for t in schema.EMAIL_COLUMNS}) == 1
    assert len({NORMALISERS[t] for t in schema.PHONE_COLUMNS}) == 1


SAMPLE_FILES = [s["file"] for s in json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))["samples"]]


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_each_sample_form_gets_one_verdict(name):
    try:
        cells = read_workbook((SAMPLES / name).read_bytes())
    except FileRejected:
        pytest.skip("not a workbook the reader opens")
    same_verdict(cells)


def _rows(n):
    return valid_rows(n)


EDITS = {
    "valid": lambda: sheet(),
    "500 accounts": lambda: sheet(_rows(500)),
    "501 accounts": lambda: sheet(_rows(501)),
    "14 accounts": lambda: sheet(_rows(14)),
    "a blank cell": lambda: sheet(with_cell("Access Level", "")),
    "a blank row between": lambda: sheet({**valid_rows(), 40: [""] * 11}),
    "a whitespace-only cell": lambda: sheet(with_cell("Delegate Last Name", "  ")),
    "an equals sign": lambda: sheet(with_cell("Account ID", "=0000000001")),
    "a colon": lambda: sheet(with_cell("Delegate First Name", "Taro:")),
    "a bad email": lambda: sheet(with_cell("Delegate Email", "taro.yamada")),
    "a bad level": lambda: sheet(with_cell("Access Level", "Admin")),
    "level in another case": lambda: sheet(with_cell("Access Level", " read only ")),
    "another phone spelling": lambda: sheet(with_cell("Requester Primary Phone", "(415) 555-0100")),
    "email in another case": lambda: sheet(with_cell("Delegate Email", "Taro.Yamada@Example.JP", at_row=7)),
    "another delegate phone": lambda: sheet(with_cell("Delegate Primary Phone", "212-555-0100", at_row=5)),
    "another requester name": lambda: sheet(with_cell("Requester First Name", "Janet", at_row=9)),
    "a duplicate account": lambda: sheet(with_cell("Account ID", "0000000003", at_row=2)),
    "delegate is requester": lambda: sheet({r: [*REQUESTER, "Jane", "Doe", REQUESTER[2].upper(), "4155550100",
                                                "Home", f"{r:010d}", "High"] for r in range(2, 20)}),
    "a formula in a data row": lambda: sheet(formulas={(4, "J")}),
    "a formula in the title row only": lambda: sheet(formulas={(1, "A")}),
    "a wrong title": lambda: sheet(header=(*TITLES[:9], "Account Number", TITLES[10])),
    "a title with spaces": lambda: sheet(header=(f" {TITLES[0]} ", *TITLES[1:])),
    "a short title row": lambda: sheet(header=TITLES[:10]),
    "an extra sheet": lambda: sheet(sheet_names=("Delegate Form", "Example", "Notes")),
    "no form sheet": lambda: sheet(has_form_sheet=False, sheet_names=("Example",)),
    "data outside": lambda: sheet(outside=((3, "L", "note"),)),
    "no data rows": lambda: sheet({}),
    "a numeric 9-digit id": lambda: sheet(with_cell("Account ID", "410000004"), numeric={(2, "J")}),
}


@pytest.mark.parametrize("case", EDITS)
def test_each_kind_of_sheet_gets_one_verdict(case):
    same_verdict(EDITS[case]())


CELL_TEXT = st.one_of(
    st.sampled_from(["", " ", "=", ":", "Full", "read only", "Mobile", "cell", "x@y", "a:b",
                     "jane.doe@example.com", "JANE.DOE@EXAMPLE.COM", "415-555-0100", "4155550100",
                     "(212) 555-0199", "Taro", "Yamada", "0000000002", "000000002", "Jane", "Doe"]),
    st.text(max_size=12),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(2, 17), st.sampled_from(TITLES), CELL_TEXT), max_size=4))
def test_a_valid_sheet_with_cells_changed_at_random_gets_one_verdict(changes):
    rows = valid_rows(16)
    for at_row, title, text in changes:
        rows[at_row][COLUMN[title]] = text
    same_verdict(sheet(rows))
