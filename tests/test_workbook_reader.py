"""The workbook reader on well-formed workbooks: what each kind of cell reads as (loaders/workbook.py).

Hostile and broken files are in test_hostile_workbooks.py.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
import zipfile
from xml.sax.saxutils import escape

import openpyxl
import pytest
from openpyxl.styles import Font

from grants.errors import Code, FileRejected
from grants.form import COLUMN_LETTERS, EXAMPLE_SHEET, FORM_SHEET, TITLES
from loaders.workbook import read_workbook

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
STRICT_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships"

ROW = (
    "Hana", "Sato", "hana@example.com", "415-555-0100",
    "Minh", "Nguyen", "minh@example.com", "(415) 555-0199", "Mobile", "0012345678", "Read Only",
)  # fmt: skip


# ------------------------------------------------------------------------------ building workbooks


def openpyxl_xlsx(*rows, sheets=(FORM_SHEET, EXAMPLE_SHEET), form=None) -> bytes:
    """A workbook written by openpyxl: `rows` appended to the form sheet; `form(ws)` may edit it."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name in sheets:
        ws = wb.create_sheet(name)
        if name == FORM_SHEET:
            for row in rows:
                ws.append(list(row))
            if form:
                form(ws)
        else:
            ws["A1"] = "filled in like this"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def hand_xlsx(
    rows: str = "",
    *,
    shared: list[str] | None = None,
    sheets=(FORM_SHEET, EXAMPLE_SHEET),
    ns: str = MAIN,
    rel_ns: str = REL,
    target: str = "worksheets/sheet{}.xml",
    example_rows: str = "",
) -> bytes:
    """A minimal package with the XML written out here (as Excel writes it, or as it should not)."""
    parts, entries, rels = {}, [], []
    for i, name in enumerate(sheets, 1):
        entries.append(f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>')
        rels.append(f'<Relationship Id="rId{i}" Type="{rel_ns}/worksheet" Target="{target.format(i)}"/>')
        body = rows if name == FORM_SHEET else example_rows
        parts[f"xl/worksheets/sheet{i}.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<worksheet xmlns="{ns}"><dimension ref="A1"/><sheetData>{body}</sheetData>'
            f'<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
            f"</worksheet>"
        )
    if shared is not None:
        items = "".join(s if s.startswith("<si") else f"<si><t>{escape(s)}</t></si>" for s in shared)
        parts["xl/sharedStrings.xml"] = f'<sst xmlns="{ns}" count="{len(shared)}">{items}</sst>'
        rels.append(f'<Relationship Id="rId99" Type="{rel_ns}/sharedStrings" Target="sharedStrings.xml"/>')
    parts["xl/workbook.xml"] = (
        f'<workbook xmlns="{ns}" xmlns:r="{rel_ns}"><sheets>{"".join(entries)}</sheets></workbook>'
    )
    package_rels = "http://schemas.openxmlformats.org/package/2006/relationships"
    parts["xl/_rels/workbook.xml.rels"] = f'<Relationships xmlns="{package_rels}">{"".join(rels)}</Relationships>'
    parts["_rels/.rels"] = (
        f'<Relationships xmlns="{package_rels}"><Relationship Id="rId1" '
        f'Type="{rel_ns}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    parts["[Content_Types].xml"] = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        "</Types>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


def inline(ref: str | None, text: str) -> str:
    attr = f' r="{ref}"' if ref else ""
    return f'<c{attr} t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'


def number(ref: str, value: str) -> str:
    return f'<c r="{ref}"><v>{value}</v></c>'


def row(r: int | None, *cells: str) -> str:
    attr = "" if r is None else f' r="{r}"'
    return f"<row{attr}>{''.join(cells)}</row>"


def title_row() -> str:
    return row(1, *(inline(f"{letter}1", t) for letter, t in zip(COLUMN_LETTERS, TITLES, strict=True)))


def read_cell(cell_xml: str, **kw) -> tuple[str, bool, bool]:
    """(text, numeric, formula) of one cell written at A2."""
    cells = read_workbook(hand_xlsx(title_row() + row(2, cell_xml), **kw))
    return cells.rows[2][0], (2, "A") in cells.numeric, (2, "A") in cells.formulas


# ------------------------------------------------------------------------------ sheets and layout


def test_an_openpyxl_form_is_read_with_its_sheet_names_titles_and_rows():
    cells = read_workbook(openpyxl_xlsx(TITLES, ROW, ROW))

    assert cells.sheet_names == (FORM_SHEET, EXAMPLE_SHEET)
    assert cells.has_form_sheet
    assert cells.header == TITLES
    assert cells.rows == {2: ROW, 3: ROW}
    assert cells.formulas == cells.numeric == frozenset()
    assert cells.outside == ()


def test_a_workbook_without_the_form_sheet_gives_its_sheet_names_only():
    cells = read_workbook(openpyxl_xlsx(sheets=("Sheet1", EXAMPLE_SHEET, "Notes")))

    assert cells.sheet_names == ("Sheet1", EXAMPLE_SHEET, "Notes")
    assert not cells.has_form_sheet
    assert (cells.header, cells.rows, cells.outside) == ((), {}, ())


@pytest.mark.parametrize("name", ["delegate form", "Delegate Form ", "Delegate\u00a0Form"])
def test_only_the_exact_sheet_name_is_the_form_sheet(name):
    cells = read_workbook(hand_xlsx(title_row(), sheets=(name,)))

    assert cells.sheet_names == (name,)
    assert not cells.has_form_sheet


def test_the_example_sheet_is_named_but_never_read_as_data():
    example = row(1, '<c r="A1"><f>1+1</f><v>2</v></c>', inline("L1", "x" * 5000))

    cells = read_workbook(hand_xlsx(title_row() + row(2, inline("A2", "Hana")), example_rows=example))

    assert cells.sheet_names == (FORM_SHEET, EXAMPLE_SHEET)
    assert cells.formulas == frozenset()
    assert cells.outside == ()


def test_the_form_sheet_is_found_through_its_relationship_wherever_it_is():
    workbook = hand_xlsx(title_row(), sheets=(EXAMPLE_SHEET, FORM_SHEET), target="/xl/worksheets/sheet{}.xml")

    cells = read_workbook(workbook)

    assert cells.sheet_names == (EXAMPLE_SHEET, FORM_SHEET)
    assert cells.header == TITLES


def test_a_strict_open_xml_workbook_is_read_like_a_transitional_one():
    rows = title_row() + row(2, inline("A2", "Hana"), '<c r="B2" t="s"><v>0</v></c>')

    cells = read_workbook(hand_xlsx(rows, shared=["Sato"], ns=STRICT, rel_ns=STRICT_REL))

    assert cells.header == TITLES
    assert cells.rows == {2: ("Hana", "Sato") + ("",) * 9}


def test_a_long_prolog_before_the_root_element_is_read_through():
    comments = "".join(f"<!-- note {i} -->" for i in range(20_000))  # ~350 KiB
    workbook = hand_xlsx(row(2, inline("A2", "Hana"), '<c r="B2" t="s"><v>0</v></c>'), shared=["Sato"], ns=STRICT)
    with zipfile.ZipFile(io.BytesIO(workbook)) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            declaration, _, rest = data.rpartition(b"?>")  # comments may only follow it
            z.writestr(name, declaration + _ + comments.encode() + rest if name.startswith("xl/") else data)

    assert read_workbook(buf.getvalue()).rows == {2: ("Hana", "Sato") + ("",) * 9}


def test_a_missing_title_row_reads_as_eleven_empty_titles():
    cells = read_workbook(hand_xlsx(row(2, inline("A2", "Hana"))))

    assert cells.header == ("",) * 11
    assert list(cells.rows) == [2]


# ------------------------------------------------------------------------------ rows and columns


def test_rows_blank_in_all_eleven_columns_are_left_out_even_when_formatted():
    def format_row_3(ws):
        for letter in COLUMN_LETTERS:
            ws[f"{letter}3"].font = Font(bold=True)
        ws["B4"] = "   "

    cells = read_workbook(openpyxl_xlsx(TITLES, ROW, [None] * 11, [None] * 11, ROW, form=format_row_3))

    assert sorted(cells.rows) == [2, 5]


def test_row_numbers_are_the_spreadsheets_own_gaps_included():
    rows = title_row() + row(7, inline("A7", "a")) + row(12, inline("K12", "b")) + row(40000, inline("C40000", "c"))

    cells = read_workbook(hand_xlsx(rows))

    assert sorted(cells.rows) == [7, 12, 40000]
    assert cells.rows[12][10] == "b"
    assert cells.rows[40000][2] == "c"


def test_a_partly_filled_row_keeps_empty_text_for_its_blank_cells():
    cells = read_workbook(hand_xlsx(row(2, inline("C2", "x"), inline("J2", "y"))))

    assert cells.rows[2] == ("", "", "x", "", "", "", "", "", "", "y", "")


def test_rows_and_cells_without_references_follow_one_another():
    rows = row(None, inline(None, "A-title")) + row(None, *(inline(None, v) for v in "abc"))

    cells = read_workbook(hand_xlsx(rows))

    assert cells.header[0] == "A-title"
    assert cells.rows == {2: ("a", "b", "c") + ("",) * 8}


def test_cells_after_a_referenced_cell_continue_from_its_column():
    cells = read_workbook(hand_xlsx(row(2, inline("I2", "x"), inline(None, "y"))))

    assert cells.rows[2][8:10] == ("x", "y")


def test_data_beyond_column_k_is_reported_as_outside_with_its_place():
    def fill(ws):
        ws["L2"] = "stray"
        ws["AA3"] = 42
        ws["M4"] = "=1+1"

    cells = read_workbook(openpyxl_xlsx(TITLES, ROW, ROW, form=fill))

    assert cells.outside == ((2, "L", "stray"), (3, "AA", "42"), (4, "M", "=1+1"))
    assert cells.rows == {2: ROW, 3: ROW}  # row 4 holds nothing in A-K
    assert cells.formulas == frozenset()  # formulas are listed for A-K only


def test_the_outside_sample_is_bounded_but_the_whole_sheet_is_still_checked():
    strays = "".join(row(r, inline(f"L{r}", "stray")) for r in range(2, 80))
    too_long = row(80, inline("Z80", "y" * 1001))

    sample = read_workbook(hand_xlsx(strays)).outside
    with pytest.raises(FileRejected) as refused:
        read_workbook(hand_xlsx(strays + too_long))

    assert len(sample) == 50
    assert sample[0] == (2, "L", "stray")
    assert refused.value.code is Code.FILE_TOO_LARGE


def test_formatted_empty_cells_beyond_column_k_are_not_data():
    cells = read_workbook(hand_xlsx(row(2, inline("A2", "a"), '<c r="L2" s="3"/>', '<c r="M2"><v></v></c>')))

    assert cells.outside == ()


# ------------------------------------------------------------------------------ cell values


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1234567890", "1234567890"),
        ("123456789", "123456789"),
        ("1234567890.0", "1234567890"),
        ("1.23456789E+9", "1234567890"),
        ("12345678901234567890", "12345678901234567890"),
        ("0012", "12"),
        ("-7", "-7"),
        ("-0", "0"),
        ("1.5", "1.5"),
        ("0.1", "0.1"),
        ("1E-3", "0.001"),
        ("1e-05", "1e-05"),
        (" 42 ", "42"),
    ],
)
def test_numbers_read_as_their_shortest_text_integers_without_decimals(value, text):
    assert read_cell(number("A2", value)) == (text, True, False)


def test_account_ids_stored_as_numbers_are_numeric_and_written_in_full():
    def ids(ws):
        ws["J2"], ws["J3"], ws["J4"] = 1234567890, 123456789, 1234567890.0

    cells = read_workbook(openpyxl_xlsx(TITLES, ROW, ROW, ROW, form=ids))

    assert [cells.rows[r][9] for r in (2, 3, 4)] == ["1234567890", "123456789", "1234567890"]
    assert cells.numeric == {(2, "J"), (3, "J"), (4, "J")}


def test_an_account_id_stored_as_text_keeps_its_leading_zeros():
    cells = read_workbook(openpyxl_xlsx(TITLES, ROW))

    assert cells.rows[2][9] == "0012345678"
    assert (2, "J") not in cells.numeric


def test_a_date_formatted_cell_is_read_as_the_number_it_holds():
    def dated(ws):
        ws["A2"] = dt.datetime(2024, 3, 1)

    cells = read_workbook(openpyxl_xlsx(TITLES, ROW, form=dated))

    assert cells.rows[2][0] == "45352"
    assert (2, "A") in cells.numeric


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        ('<c r="A2" t="b"><v>1</v></c>', "TRUE"),
        ('<c r="A2" t="b"><v>0</v></c>', "FALSE"),
        ('<c r="A2" t="e"><v>#N/A</v></c>', "#N/A"),
        ('<c r="A2" t="d"><v>2024-03-01T00:00:00</v></c>', "2024-03-01T00:00:00"),
        ('<c r="A2" t="str"><v>text result</v></c>', "text result"),
    ],
)
def test_booleans_errors_and_dates_read_as_text(cell, text):
    assert read_cell(cell) == (text, False, False)


def test_shared_strings_are_resolved_by_index():
    rows = row(2, '<c r="A2" t="s"><v>1</v></c>', '<c r="B2" t="s"><v>0</v></c>')

    cells = read_workbook(hand_xlsx(rows, shared=["zero", "one"]))

    assert cells.rows[2][:2] == ("one", "zero")


def test_rich_text_runs_are_joined_and_phonetic_guides_left_out():
    rich = (
        "<si><r><rPr><b/></rPr><t>佐</t></r><r><t>藤</t></r>"
        '<rPh sb="0" eb="2"><t>サトウ</t></rPh><phoneticPr fontId="1"/></si>'
    )

    assert read_cell('<c r="A2" t="s"><v>0</v></c>', shared=[rich])[0] == "佐藤"


def test_inline_strings_plain_and_rich_are_read():
    rich = '<c r="B2" t="inlineStr"><is><r><t>Ha</t></r><r><rPr><i/></rPr><t>na</t></r></is></c>'

    cells = read_workbook(hand_xlsx(row(2, inline("A2", "Sato"), rich)))

    assert cells.rows[2][:2] == ("Sato", "Hana")


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("  Hana  ", "Hana"),
        ("\u00a0Hana\t\n", "Hana"),
        ("\u3000佐藤\u3000", "佐藤"),
        (unicodedata.normalize("NFD", "ゆうじ"), "ゆうじ"),
        (unicodedata.normalize("NFD", "Nguyễn Thị Ánh"), "Nguyễn Thị Ánh"),
        ("   ", ""),
    ],
)
def test_text_is_stripped_and_nfc_normalised(written, read):
    assert unicodedata.is_normalized("NFC", read)
    cells = read_workbook(openpyxl_xlsx(TITLES, [written, "x"]))

    assert cells.rows[2][0] == read


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("_x003D_1+1", "=1+1"),
        ("a_x005F_x0041_b", "a_x0041_b"),
        ("tab_x0009_here", "tab\there"),
        ("_xD83D__xDE00_", "\U0001f600"),
        ("_x00zz_", "_x00zz_"),
    ],
)
def test_excel_escapes_in_text_are_decoded_so_a_hidden_equals_sign_is_seen(written, read):
    assert read_cell(inline("A2", written)) == (read, False, False)


# ------------------------------------------------------------------------------ formulas


def test_a_formula_is_read_as_its_formula_never_its_cached_value():
    assert read_cell('<c r="A2"><f>1+1</f><v>2</v></c>') == ("=1+1", False, True)


def test_a_string_formula_is_read_as_its_formula_not_its_cached_text():
    cell = '<c r="A2" t="str"><f>"ab"&amp;"cd"</f><v>abcd</v></c>'

    assert read_cell(cell) == ('="ab"&"cd"', False, True)


def test_shared_formula_children_without_text_read_as_a_bare_equals_sign():
    rows = row(
        2,
        '<c r="A2"><f t="shared" ref="A2:A3" si="0">B2*2</f><v>4</v></c>',
        '<c r="C2" t="s"><f t="shared" si="0"/><v>0</v></c>',
    )

    cells = read_workbook(hand_xlsx(rows, shared=["looks fine"]))

    assert cells.rows[2][0] == "=B2*2"
    assert cells.rows[2][2] == "="
    assert cells.formulas == {(2, "A"), (2, "C")}


def test_an_openpyxl_formula_is_recorded_with_its_place_title_row_included():
    def formulas(ws):
        ws["K1"] = '=UPPER("access level")'
        ws["J2"] = "=1234567890"

    cells = read_workbook(openpyxl_xlsx(TITLES, ROW, form=formulas))

    assert cells.header[10] == '=UPPER("access level")'
    assert cells.rows[2][9] == "=1234567890"
    assert cells.formulas == {(1, "K"), (2, "J")}
    assert cells.numeric == frozenset()


# ------------------------------------------------------------------------------ damaged sheets


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(row(3, inline("A3", "a")) + row(2, inline("A2", "b")), id="rows out of order"),
        pytest.param(row(2, inline("A2", "a")) + row(2, inline("B2", "b")), id="row repeated"),
        pytest.param(row(2, inline("B2", "a"), inline("A2", "b")), id="cells out of order"),
        pytest.param(row(2, inline("A2", "a"), inline("A2", "b")), id="cell repeated"),
        pytest.param(row(2, inline("A3", "a")), id="cell in the wrong row"),
        pytest.param(row(2, inline("XFE2", "a")), id="column beyond XFD"),
        pytest.param(row(2, inline("2", "a")), id="reference without letters"),
        pytest.param('<row r="two"><c r="A2"><v>1</v></c></row>', id="row number not a number"),
        pytest.param(row(2, '<c r="A2" t="s"><v>7</v></c>'), id="shared string index out of range"),
        pytest.param(row(2, '<c r="A2" t="s"><v>-1</v></c>'), id="negative shared string index"),
        pytest.param(row(2, '<c r="A2" t="x"><v>1</v></c>'), id="unknown cell type"),
        pytest.param(row(2, number("A2", "12abc")), id="number that is not a number"),
        pytest.param(row(2, number("A2", "NaN")), id="not a number"),
        pytest.param(row(2, number("A2", "1e999")), id="infinite number"),
        pytest.param(row(2, '<c r="A2" t="b"><v>2</v></c>'), id="boolean that is not one"),
        pytest.param(row(2, inline("A2", "a")) + "<row", id="XML cut short"),
    ],
)
def test_a_damaged_sheet_is_not_read_as_xlsx(rows):
    with pytest.raises(FileRejected) as refused:
        read_workbook(hand_xlsx(rows, shared=["only one"]))

    assert refused.value.code is Code.NOT_XLSX
    assert "damaged" in refused.value.error.message


def test_two_sheets_named_delegate_form_are_refused_as_damaged():
    with pytest.raises(FileRejected) as refused:
        read_workbook(hand_xlsx(title_row(), sheets=(FORM_SHEET, FORM_SHEET)))

    assert refused.value.code is Code.NOT_XLSX
