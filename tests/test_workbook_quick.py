"""The quick form-sheet reader answers only what the general reader would: the same cells, or it
declines and the general reader decides (with its own errors). Both are run on every input here."""

from __future__ import annotations

import io
import random
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loaders.workbook as reader
from grants.errors import FileRejected
from tests.pipeline_builders import sample
from tests.test_hostile_workbooks import MAIN, inline, row, workbook

HEADER = row(1, inline("A1", "Requester First Name"), inline("B1", "Requester Last Name"))


def outcome(data: bytes, *, quick: bool, monkeypatch: pytest.MonkeyPatch):
    """What read_workbook answers: its cells, or the refusal's code and message."""
    with monkeypatch.context() as m:
        if not quick:
            m.setattr(reader, "QUICK_SHEET_MAX", -1)
        try:
            return reader.read_workbook(data)
        except FileRejected as exc:
            return ("refused", exc.error.code, exc.error.message)


def quick_answers(data: bytes) -> bool:
    """Does the quick reader answer for this workbook's form sheet (rather than decline)?"""
    answered = []
    original = reader._quick_sheet

    def spy(*args):
        cells = original(*args)
        answered.append(cells is not None)
        return cells

    reader._quick_sheet = spy
    try:
        reader.read_workbook(data)
    except FileRejected:
        pass
    finally:
        reader._quick_sheet = original
    return answered == [True]


def assert_same(data: bytes, monkeypatch, *, answered: bool) -> None:
    assert outcome(data, quick=True, monkeypatch=monkeypatch) == outcome(data, quick=False, monkeypatch=monkeypatch)
    assert quick_answers(data) is answered


def sheet_workbook(sheet_xml: str | bytes, *, shared: str | None = None) -> bytes:
    """A minimal workbook whose form sheet part is exactly `sheet_xml`."""
    base = workbook(HEADER, shared=shared)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet_xml.encode("utf-8") if isinstance(sheet_xml, str) else sheet_xml
            dst.writestr(info.filename, data)
    return out.getvalue()


def sheet(rows: str, *, head: str = "", root: str = f'<worksheet xmlns="{MAIN}">') -> str:
    return f"{head}{root}<sheetData>{HEADER}{rows}</sheetData></worksheet>"


@pytest.mark.parametrize("name", ["valid_500.xlsx", "valid_20.xlsx", "valid_third_party_high.xlsx",
                                  "invalid_CELL_BLANK.xlsx", "invalid_ACCESS_LEVEL_INVALID.xlsx", "template.xlsx"])
def test_the_shipped_forms_are_read_quickly_and_alike(name, monkeypatch):
    assert_same(sample(name), monkeypatch, answered=True)


@pytest.mark.parametrize("name", ["invalid_CELL_FORMULA.xlsx", "invalid_ACCOUNT_ID_INVALID_numeric.xlsx",
                                  "invalid_DATA_OUTSIDE_FORM.xlsx", "invalid_many_errors.xlsx"])
def test_formulas_numbers_and_cells_past_k_are_left_to_the_general_reader(name, monkeypatch):
    assert_same(sample(name), monkeypatch, answered=False)


SPACES = "".join(random.Random(7).choices(" \t\n", k=200_000))  # white space that does not deflate 100-fold

QUICK = {
    "excel shared strings": (
        sheet(row(2, '<c r="A2" s="1" t="s"><v>0</v></c>', '<c r="B2" t="s"><v>1</v></c>')),
        f'<sst xmlns="{MAIN}"><si><t>Hana</t></si><si><r><t>Sa</t></r><r><t>to</t></r></si></sst>',
    ),
    "declaration, row attributes, preserved space, white space between elements": (
        sheet('\n  <row r="2" spans="1:11" x14ac:dyDescent="0.25">\n    <c r="A2" t="inlineStr"><is>'
              '<t xml:space="preserve">  Hana  </t></is></c>\n  </row>\n',
              head='<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n',
              root=f'<worksheet xmlns="{MAIN}" xmlns:x14ac="urn:x14ac">'),
        None,
    ),
    "entities and character references": (sheet(row(2, inline("A2", "a &amp; b &lt;c&gt; &#x41;&#66; &quot;&apos;"),
                                                    inline("B2", "x&#13;&#10;y"))), None),
    "escapes, unicode, NFC": (sheet(row(2, inline("A2", "_x003D_1+1"), inline("B2", "Nguye\u0302\u0303n"),
                                        inline("C2", "佐藤\u3000花子"))), None),
    "empty cells and empty rows": (sheet(row(2, '<c r="A2" s="3"/>', inline("B2", "x"), '<c r="C2" t="s"/>')
                                         + '<row r="4"/><row r="5" spans="1:11"></row>'
                                         + row(6, inline("K6", "High"))), None),
    "a cell of exactly 1000 characters": (sheet(row(2, inline("A2", "x" * 1000))), None),
    "a column of inline and shared strings, texts repeated": (
        sheet(row(2, inline("A2", "Hana"), '<c r="B2" t="s"><v>0</v></c>')
              + row(3, '<c r="A3" t="s"><v>0</v></c>', inline("B3", "Hana"))
              + row(4, inline("A4", " Hana "), '<c r="B4"/>', '<c r="C4" t="s"><v>0</v></c>')),
        f'<sst xmlns="{MAIN}"><si><t>Sato</t></si></sst>',
    ),
    # the token reader before took minutes over this one (each space a failed match of the rest)
    "a long run of white space after the last row": (sheet(row(2, inline("A2", "x")) + SPACES), None),
    "no title row, white space only": (f'<worksheet xmlns="{MAIN}"><sheetData>\n\t </sheetData></worksheet>', None),
    "an attribute value that looks like another attribute": (
        sheet('<row r="2" spans="1 r=2 spans=3">' + inline("A2", "x") + "</row>"), None),
}


@pytest.mark.parametrize("case", QUICK)
def test_usual_sheets_are_read_quickly_and_alike(case, monkeypatch):
    xml, shared = QUICK[case]
    assert_same(sheet_workbook(xml, shared=shared), monkeypatch, answered=True)


DECLINED = {
    "a number": sheet(row(2, '<c r="J2"><v>1234567890</v></c>')),
    "a formula": sheet(row(2, '<c r="A2" t="str"><f>1+1</f><v>2</v></c>')),
    "a boolean": sheet(row(2, '<c r="A2" t="b"><v>1</v></c>')),
    "a cell past K": sheet(row(2, inline("L2", "x"))),
    "a row without its number": sheet('<row>' + inline("A2", "x") + "</row>"),
    "rows out of order": sheet(row(3, inline("A3", "x")) + row(2, inline("A2", "y"))),
    "a row number twice": sheet(row(2, inline("A2", "x")) + row(2, inline("B2", "y"))),
    # text the rows do not cover, after long white space: one search, not a failed match at each space
    "a stray character after long white space": sheet(row(2, inline("A2", "x")) + SPACES + "x"),
    "a stray character in a row after long white space": sheet('<row r="2">' + SPACES + "x</row>"),
    "cells out of order": sheet(row(2, inline("B2", "x"), inline("A2", "y"))),
    "a cell of another row": sheet(row(2, inline("A3", "x"))),
    "a comment": sheet(row(2, "<!-- note -->", inline("A2", "x"))),
    "CDATA": sheet(row(2, '<c r="A2" t="inlineStr"><is><t><![CDATA[x]]></t></is></c>')),
    "a carriage return": sheet(row(2, inline("A2", "a\r\nb"))),
    "a prefixed root": f'<x:worksheet xmlns:x="{MAIN}"><x:sheetData>{HEADER}</x:sheetData></x:worksheet>'.replace(
        "<row", "<x:row").replace("</row", "</x:row").replace("<c ", "<x:c ").replace("</c>", "</x:c>"),
    "a row in another namespace": sheet('<row r="2" xmlns="urn:other">' + inline("A2", "x") + "</row>"),
    "a DTD": sheet(row(2, inline("A2", "x")), head='<!DOCTYPE worksheet [<!ENTITY e "x">]>'),
    "an unbound prefix": sheet(row(2, inline("A2", "x"), "<y:z/>")),
    "a cell over 1000 characters": sheet(row(2, inline("A2", "x" * 1001))),
    "a shared string that is not there": sheet(row(2, '<c r="A2" t="s"><v>5</v></c>')),
    "a row past the last row": sheet(row(1048577, inline("A1048577", "x"))),
    "over 5000 rows": sheet("".join(row(r, inline(f"A{r}", "x")) for r in range(2, 5003))),
    "not well-formed": sheet(row(2, inline("A2", "x"))) + "<",
    "no sheetData": f'<worksheet xmlns="{MAIN}"><sheetData/></worksheet>',
    "UTF-16": sheet(row(2, inline("A2", "x")), head='<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16"),
    "strict namespace": sheet(row(2, inline("A2", "x")),
                              root='<worksheet xmlns="http://purl.oclc.org/ooxml/spreadsheetml/main">'),
    # not well-formed inside the sheet data, where the quick reader's own checks must see it
    "a control character": sheet(row(2, inline("A2", "a\x01b"))),
    "a non-character": sheet(row(2, inline("A2", "a\ufffeb"))),
    "']]>' in text": sheet(row(2, inline("A2", "a]]>b"))),
    "an unknown entity": sheet(row(2, inline("A2", "a&bogus;b"))),
    "a bare ampersand": sheet(row(2, inline("A2", "a & b"))),
    "a reference to NUL": sheet(row(2, inline("A2", "a&#0;b"))),
    "a reference to a surrogate": sheet(row(2, inline("A2", "a&#xD800;b"))),
    "a reference past Unicode": sheet(row(2, inline("A2", "a&#x110000;b"))),
    "a bad reference in an attribute": sheet('<row r="2" spans="&x;">' + inline("A2", "x") + "</row>"),
    "a control character in an attribute": sheet('<row r="2" spans="1\x02">' + inline("A2", "x") + "</row>"),
    "a duplicate attribute": sheet('<row r="2" r="2">' + inline("A2", "x") + "</row>"),
    "another duplicate attribute": sheet('<row r="2" spans="1:2" spans="1:2">' + inline("A2", "x") + "</row>"),
    "a duplicate attribute by namespace": sheet('<row r="2" a:s="1" b:s="1">' + inline("A2", "x") + "</row>",
                                                root=f'<worksheet xmlns="{MAIN}" xmlns:a="urn:s" xmlns:b="urn:s">'),
    "an unbound attribute prefix": sheet('<row r="2" q:x="1">' + inline("A2", "x") + "</row>"),
    "a non-ASCII attribute name": sheet('<row r="2" a\u00b2="1">' + inline("A2", "x") + "</row>"),
    "no-break space between elements": sheet(row(2, "\u00a0", inline("A2", "x"))),
    "a next-line character between elements": sheet(row(2, "\x85", inline("A2", "x"))),
    "invalid UTF-8": sheet(row(2, inline("A2", "a\u00e9b"))).encode().replace(b"\xc3\xa9", b"\xff"),
    "the sheet data inside a comment": f'<worksheet xmlns="{MAIN}"><!-- <sheetData>{HEADER}'
                                       + row(2, inline("A2", "x")) + "</sheetData> --></worksheet>",
    "the sheet data inside CDATA": f'<worksheet xmlns="{MAIN}"><x><![CDATA[<sheetData>{HEADER}'
                                   + row(2, inline("A2", "x")) + "</sheetData>]]></x></worksheet>",
    "the sheet data in a child element": f'<worksheet xmlns="{MAIN}"><x><sheetData>{HEADER}'
                                         + row(2, inline("A2", "x")) + "</sheetData></x></worksheet>",
    "the sheet data in a comment beside a prefixed one": f'<worksheet xmlns="{MAIN}" xmlns:x="{MAIN}"><!--<sheetData>'
                                                         f'{HEADER}' + row(2, inline("A2", "x"))
                                                         + "</sheetData>--><x:sheetData/></worksheet>",
    "the sheet data in a processing instruction beside a prefixed one": (
        f'<worksheet xmlns="{MAIN}" xmlns:x="{MAIN}"><?p <sheetData>{HEADER}' + row(2, inline("A2", "x"))
        + "</sheetData>?><x:sheetData/></worksheet>"),
    "a row before the sheet data": f'<worksheet xmlns="{MAIN}"><sheetPr>' + row(1, inline("A1", "Evil"))
                                   + f"</sheetPr><sheetData>{row(2, inline('A2', 'x'))}</sheetData></worksheet>",
    "a row beside the sheet data": f'<worksheet xmlns="{MAIN}">' + row(1, inline("A1", "Evil"))
                                   + f"<sheetData>{row(2, inline('A2', 'x'))}</sheetData></worksheet>",
    "not well-formed before the sheet data": sheet(row(2, inline("A2", "x")), root=f'<worksheet xmlns="{MAIN}"><a>'),
    "not well-formed after the sheet data": sheet(row(2, inline("A2", "x"))).replace("</worksheet>", "</worksheet"),
}


@pytest.mark.parametrize("case", DECLINED)
def test_unusual_sheets_are_left_to_the_general_reader(case, monkeypatch):
    assert_same(sheet_workbook(DECLINED[case]), monkeypatch, answered=False)


SMALL = sheet(row(2, inline("A2", "Hana"), '<c r="B2" s="1"/>', inline("C2", "a&amp;b")) + '<row r="3"/>'
              + row(4, '<c r="A4" t="s"><v>0</v></c>', inline("K4", "Read Only")))
PIECES = st.sampled_from(['<', '>', '/', '"', '=', '&', ';', '#', 'x', 'r', 'c', 't', 's', ' ', '\r', '\n',
                          '<row r="9">', '</row>', '<c r="A2">', '<v>1</v>', '</c>', '<!--', '-->', '&amp;',
                          'é', '_x0041_', 'inlineStr', 'B', '2', '0',
                          '\x01', '\u00a0', '\x85', '\ufffe', ']]>', '&#0;', '&#x41;', '&#xD800;', '&bogus;',
                          ' r="3"', ' q:x="1"', ' spans="1"', '<sheetData>', '</sheetData>', '<![CDATA[', ']]'])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, len(SMALL)), st.integers(0, 3), PIECES), min_size=1, max_size=3))
def test_any_edit_of_a_sheet_is_read_alike_by_both_readers(edits, monkeypatch):
    xml = SMALL
    for at, cut, piece in edits:
        at = min(at, len(xml))
        xml = xml[:at] + piece + xml[at + cut:]
    data = sheet_workbook(xml, shared=f'<sst xmlns="{MAIN}"><si><t>Sato</t></si></sst>')
    assert outcome(data, quick=True, monkeypatch=monkeypatch) == outcome(data, quick=False, monkeypatch=monkeypatch)
