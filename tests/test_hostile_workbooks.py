"""Hostile and broken files: refused early, with the right code, fast, and without the memory they ask for.

The zips are written by hand here (headers included) so that they can lie. Bombs are made cheaply:
a deflate segment ending in a full flush is a run of complete blocks that refer to nothing before
them, so repeating it N times (plus a final block) is a valid stream N times as long.
"""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
import zlib
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loaders.workbook as reader
from grants.errors import Code, FileRejected
from grants.form import FORM_SHEET
from grants.sheet import SheetCells
from loaders.workbook import read_workbook

MiB = 1024 * 1024
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
SECRET = "SECRET-4111111111111111"  # never to be seen in a message

# ------------------------------------------------------------------------------ zips, by hand


@dataclass(frozen=True)
class Entry:
    name: str
    stored: bytes  # the bytes as they lie in the zip (deflated unless method is 0)
    crc: int
    size: int  # the inflated size the headers declare
    method: int = 8
    flags: int = 0


def deflated(name: str, payload: bytes | str, **lies) -> Entry:
    payload = payload.encode("utf-8") if isinstance(payload, str) else payload
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    entry = Entry(name, packer.compress(payload) + packer.flush(), zlib.crc32(payload), len(payload))
    return replace(entry, **lies)


def zip_of(entries: list[Entry], *, declared_count: int | None = None) -> bytes:
    """A zip archive; every header says what the entries say, true or not."""
    body, directory = bytearray(), bytearray()
    for e in entries:
        name = e.name.encode("utf-8")
        offset = len(body)
        sizes = (e.crc, len(e.stored), e.size)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, e.flags, e.method, 0, 0x21, *sizes, len(name), 0)
        body += name + e.stored
        directory += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, e.flags, e.method, 0, 0x21, *sizes, len(name), 0, 0, 0, 0, 0, offset
        )
        directory += name
    count = len(entries) if declared_count is None else declared_count
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    return bytes(body + directory + end)


def parts(rows: str = "", *, shared: str | None = None, sheets=(FORM_SHEET, "Example")) -> dict[str, str]:
    """The parts of a minimal workbook; the form sheet holds `rows`."""
    out = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{PACKAGE_REL}"><Relationship Id="rId1" '
            f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "docProps/app.xml": "<Properties><Application>hand</Application></Properties>",
    }
    entries, rels = [], []
    for i, name in enumerate(sheets, 1):
        entries.append(f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>')
        rels.append(f'<Relationship Id="rId{i}" Type="{REL}/worksheet" Target="worksheets/sheet{i}.xml"/>')
        body = rows if name == FORM_SHEET else ""
        out[f"xl/worksheets/sheet{i}.xml"] = f'<worksheet xmlns="{MAIN}"><sheetData>{body}</sheetData></worksheet>'
    if shared is not None:
        rels.append(f'<Relationship Id="rId9" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>')
        out["xl/sharedStrings.xml"] = shared
    out["xl/workbook.xml"] = f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>{"".join(entries)}</sheets></workbook>'
    out["xl/_rels/workbook.xml.rels"] = f'<Relationships xmlns="{PACKAGE_REL}">{"".join(rels)}</Relationships>'
    return out


def workbook(rows: str = "", *, extra: tuple[Entry, ...] = (), **kw) -> bytes:
    return zip_of([deflated(name, text) for name, text in parts(rows, **kw).items()] + list(extra))


def with_part(name: str, entry_or_text: Entry | str | bytes, *, extra_entries: tuple[Entry, ...] = (), **kw) -> bytes:
    """A minimal workbook whose part `name` is replaced (or added)."""
    given_parts = parts(**kw)
    given_parts.pop(name, None)
    entry = entry_or_text if isinstance(entry_or_text, Entry) else deflated(name, entry_or_text)
    return zip_of([deflated(n, t) for n, t in given_parts.items()] + [entry, *extra_entries])


def repeated_stream(head: bytes, segment: bytes, times: int, tail: bytes) -> tuple[bytes, int]:
    """A raw deflate stream of head + segment * times + tail, and its inflated size; cheap to make."""
    first, middle, last = (zlib.compressobj(9, zlib.DEFLATED, -15) for _ in range(3))
    stream = first.compress(head) + first.flush(zlib.Z_FULL_FLUSH)
    stream += (middle.compress(segment) + middle.flush(zlib.Z_FULL_FLUSH)) * times
    stream += last.compress(tail) + last.flush()
    return stream, len(head) + len(segment) * times + len(tail)


SHEET_HEAD = f'<worksheet xmlns="{MAIN}"><sheetData>'.encode()
SHEET_TAIL = b"</sheetData></worksheet>"


def row(r: int, *cells: str) -> str:
    return f'<row r="{r}">{"".join(cells)}</row>'


def inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


# ------------------------------------------------------------------------------ judging


def refusal(data: bytes, *, seconds: float = 2.0) -> FileRejected:
    """The refusal of `data`, which must come within `seconds` (a generous bound, not a benchmark)."""
    start = time.perf_counter()
    with pytest.raises(FileRejected) as refused:
        read_workbook(data)
    assert time.perf_counter() - start < seconds
    assert SECRET not in refused.value.error.message
    return refused.value


def refusal_in_little_memory(data: bytes, *, limit: int = 50 * MiB) -> FileRejected:
    """The refusal of `data`, whose peak of traced memory stays under `limit`."""
    tracemalloc.start()
    try:
        refused = refusal(data, seconds=4.0)  # tracing slows Python down
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak {peak / MiB:.1f} MiB"
    return refused


# ------------------------------------------------------------------------------ not an .xlsx at all


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty file"),
        pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096), id="legacy xls or encrypted OOXML (OLE)"),
        pytest.param(b"Requester First Name,Requester Last Name\nHana,Sato\n", id="CSV"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), id="PNG"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", id="PDF"),
        pytest.param(b"PK\x05\x06" + bytes(18), id="empty zip"),
        pytest.param(b"PK\x03\x04" + bytes(range(7, 207)), id="zip signature then noise"),
    ],
)
def test_a_file_that_is_not_a_zip_workbook_is_not_xlsx(data):
    assert refusal(data).code is Code.NOT_XLSX


@pytest.mark.parametrize(
    "names",
    [
        pytest.param({"[Content_Types].xml": "<Types/>", "word/document.xml": "<document/>"}, id="a Word file"),
        pytest.param({"[Content_Types].xml": "<Types/>", "xl/workbook.bin": "binary"}, id="a binary .xlsb"),
        pytest.param({"xl/workbook.xml": "<workbook/>"}, id="no content types"),
    ],
)
def test_a_zip_without_the_parts_of_a_workbook_is_not_xlsx(names):
    data = zip_of([deflated(name, text) for name, text in names.items()])

    assert refusal(data).code is Code.NOT_XLSX


def test_a_workbook_cut_short_is_not_xlsx():
    data = workbook(row(2, inline("A2", "Hana")))

    assert refusal(data[: len(data) // 2]).code is Code.NOT_XLSX


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(replace(deflated("xl/worksheets/sheet1.xml", "<worksheet/>"), crc=1), id="wrong checksum"),
        pytest.param(replace(deflated("xl/worksheets/sheet1.xml", "<worksheet/>"), size=5), id="wrong size"),
        pytest.param(Entry("xl/worksheets/sheet1.xml", b"\xff" * 40, 0, 40), id="not deflate data"),
        pytest.param(replace(deflated("xl/worksheets/sheet1.xml", "<worksheet/>"), flags=1), id="encrypted entry"),
        pytest.param(replace(deflated("xl/worksheets/sheet1.xml", "<worksheet/>"), method=12), id="bzip2 entry"),
        pytest.param(
            Entry("xl/worksheets/sheet1.xml", b"<worksheet/>", zlib.crc32(b"<worksheet/>"), 99, method=0),
            id="stored entry of two sizes",
        ),
    ],
)
def test_a_damaged_or_encrypted_zip_entry_is_not_xlsx(entry):
    assert refusal(with_part("xl/worksheets/sheet1.xml", entry)).code is Code.NOT_XLSX


def test_a_local_header_that_names_another_entry_than_the_directory_is_not_xlsx():
    data = workbook().replace(b"xl/workbook.xml", b"xl/workbooK.xml", 1)  # the first is the local header

    assert refusal(data).code is Code.NOT_XLSX


def test_stored_entries_are_read_like_deflated_ones():
    payloads = {name: text.encode() for name, text in parts(row(2, inline("A2", "Hana"))).items()}
    data = zip_of([Entry(name, p, zlib.crc32(p), len(p), method=0) for name, p in payloads.items()])

    assert read_workbook(data).rows == {2: ("Hana",) + ("",) * 10}


def test_two_zip_entries_of_one_name_are_not_xlsx():
    data = workbook(extra=(deflated("XL/Workbook.xml", "<workbook/>"),))

    assert refusal(data).code is Code.NOT_XLSX


# ------------------------------------------------------------------------------ macros and DTDs


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(workbook(extra=(deflated("xl/vbaProject.bin", b"\x00" * 64),)), id="vbaProject.bin"),
        pytest.param(
            with_part(
                "[Content_Types].xml",
                '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Override PartName="/xl/workbook.xml" '
                'ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/></Types>',
            ),
            id="macro-enabled content type",
        ),
    ],
)
def test_a_macro_enabled_workbook_is_not_xlsx(data):
    refused = refusal(data)

    assert refused.code is Code.NOT_XLSX
    assert "macro" in refused.error.message


LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))  # lol9 expands to 10^9 'lol's
BILLION_LAUGHS = f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{LAUGHS}]>'
EXTERNAL_ENTITY = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize(
    ("name", "text", "shared"),
    [
        pytest.param(
            "xl/sharedStrings.xml",
            f'{BILLION_LAUGHS}<sst xmlns="{MAIN}"><si><t>&lol9;</t></si></sst>',
            "",
            id="billion laughs in sharedStrings",
        ),
        pytest.param(
            "xl/worksheets/sheet1.xml",
            f'{BILLION_LAUGHS}<worksheet xmlns="{MAIN}"><sheetData>'
            f'<row r="2"><c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>',
            None,
            id="billion laughs in the form sheet",
        ),
        pytest.param(
            "xl/workbook.xml",
            f'{EXTERNAL_ENTITY}<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
            f'<sheet name="&xxe;" sheetId="1" r:id="rId1"/></sheets></workbook>',
            None,
            id="external entity in workbook.xml",
        ),
        pytest.param(
            "docProps/app.xml", f"{EXTERNAL_ENTITY}<Properties>&xxe;</Properties>", None, id="entity in an unread part"
        ),
        pytest.param(
            "xl/worksheets/sheet2.xml",
            '<!DOCTYPE worksheet SYSTEM "http://example.com/x.dtd"><worksheet/>',
            None,
            id="external DTD in the Example sheet",
        ),
        pytest.param(
            "xl/sharedStrings.xml",
            (f'<?xml version="1.0" encoding="UTF-16"?>{BILLION_LAUGHS[21:]}<sst xmlns="{MAIN}"/>').encode("utf-16"),
            "",
            id="DTD in UTF-16",
        ),
    ],
)
def test_xml_with_a_dtd_or_entities_is_not_xlsx(name, text, shared):
    refused = refusal_in_little_memory(with_part(name, text, shared=shared))

    assert refused.code is Code.NOT_XLSX
    assert "DTD" in refused.error.message


def test_a_dtd_is_refused_in_a_part_that_its_content_type_calls_xml_whatever_its_name():
    types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/customXml/item1.dat" ContentType="application/xml"/></Types>'
    )
    hidden = deflated("customXml/item1.dat", f"{EXTERNAL_ENTITY}<a/>")
    data = with_part("[Content_Types].xml", types, extra_entries=(hidden,))

    assert refusal(data).code is Code.NOT_XLSX


def test_a_dtd_is_refused_even_when_the_workbook_has_no_form_sheet():
    data = with_part("docProps/app.xml", f"{EXTERNAL_ENTITY}<Properties/>", sheets=("Sheet1",))

    assert refusal(data).code is Code.NOT_XLSX


# ------------------------------------------------------------------------------ sizes of the zip


def test_a_workbook_file_over_10_mib_is_too_large():
    data = workbook(extra=(Entry("xl/media/big.bin", os.urandom(11 * MiB), 0, 11 * MiB, method=0),))

    assert refusal(data).code is Code.FILE_TOO_LARGE


@pytest.mark.parametrize(("entries", "code"), [(100, None), (101, Code.FILE_TOO_LARGE)])
def test_a_zip_of_over_100_entries_is_too_large(entries, code):
    pads = tuple(deflated(f"customXml/item{i}.bin", b"x") for i in range(entries - len(parts())))
    data = workbook(extra=pads)

    if code is None:
        assert isinstance(read_workbook(data), SheetCells)
    else:
        refused = refusal(data)
        assert refused.code is code
        assert "101 entries" in refused.error.message


def test_the_real_number_of_entries_counts_when_the_end_record_understates_it():
    pads = [deflated(f"customXml/item{i}.bin", b"x") for i in range(200)]
    entries = [deflated(name, text) for name, text in parts().items()] + pads

    assert refusal(zip_of(entries, declared_count=5)).code is Code.FILE_TOO_LARGE


def test_a_zip_end_record_claiming_many_entries_is_refused_before_reading_the_directory():
    assert refusal(zip_of([deflated("a.xml", "<a/>")], declared_count=60000)).code is Code.FILE_TOO_LARGE


@pytest.mark.parametrize(("zeros", "accepted"), [(100 * 1024, True), (100 * 1024 + 1, False)])
def test_a_part_may_inflate_over_100_fold_only_within_its_first_100_kib(zeros, accepted):
    data = workbook(extra=(deflated("xl/media/blank.bin", bytes(zeros)),))

    if accepted:
        assert read_workbook(data).has_form_sheet
    else:
        assert refusal(data).code is Code.FILE_TOO_LARGE


def test_a_1_gib_zip_bomb_is_refused_from_its_directory_without_inflating_it():
    stream, size = repeated_stream(SHEET_HEAD, bytes(MiB), 1024, SHEET_TAIL)
    bomb = Entry("xl/worksheets/sheet1.xml", stream, 0, size)

    refused = refusal_in_little_memory(with_part("xl/worksheets/sheet1.xml", bomb))

    assert refused.code is Code.FILE_TOO_LARGE


@pytest.mark.parametrize("filler", [b" " * MiB, bytes(MiB)], ids=["white space", "zeros"])
def test_a_zip_bomb_whose_headers_lie_is_refused_while_inflating(filler):
    stream, _ = repeated_stream(SHEET_HEAD, filler, 1024, SHEET_TAIL)
    bomb = Entry("xl/worksheets/sheet1.xml", stream, 0, 2000)  # claims 2,000 bytes: a lie

    refused = refusal_in_little_memory(with_part("xl/worksheets/sheet1.xml", bomb))

    assert refused.code is Code.FILE_TOO_LARGE
    assert "100-fold" in refused.error.message


def compressible_comments() -> bytes:
    """1 MiB of XML comments that deflate about 30-fold: under the ratio limit, so only size counts."""
    comments = b"".join(b"<!--" + os.urandom(16).hex().encode() + b"a" * 985 + b"-->" for _ in range(1024))
    return comments + b" " * (MiB - len(comments))


@pytest.mark.parametrize("headers", ["honest", "lying"])
def test_over_50_mib_inflated_is_too_large_whether_the_headers_tell_or_not(headers):
    stream, size = repeated_stream(SHEET_HEAD, compressible_comments(), 51, SHEET_TAIL)
    assert 20 < size / len(stream) < 100
    declared = size if headers == "honest" else 4000
    sheet = Entry("xl/worksheets/sheet1.xml", stream, 0, declared)

    refused = refusal_in_little_memory(with_part("xl/worksheets/sheet1.xml", sheet))

    assert refused.code is Code.FILE_TOO_LARGE
    assert "50 MiB" in refused.error.message


# ------------------------------------------------------------------------------ sizes of the sheet


def many_rows(count: int, text: str = "x") -> str:
    return "".join(row(r, inline(f"A{r}", text)) for r in range(1, count + 1))


def test_a_form_sheet_of_5000_rows_is_read():
    assert len(read_workbook(workbook(many_rows(5000))).rows) == 4999


def test_a_form_sheet_of_5001_rows_is_too_large():
    refused = refusal(workbook(many_rows(5001, SECRET)))

    assert refused.code is Code.FILE_TOO_LARGE
    assert "5,000 rows" in refused.error.message


def test_rows_are_counted_as_present_not_by_their_numbers():
    cells = read_workbook(workbook(row(1, inline("A1", "t")) + row(1048576, inline("A1048576", "x"))))

    assert list(cells.rows) == [1048576]


def test_a_row_beyond_the_last_row_of_a_sheet_is_not_xlsx():
    assert refusal(workbook(row(1048577, inline("A1048577", "x")))).code is Code.NOT_XLSX


LONG = SECRET + "y" * (1001 - len(SECRET))


@pytest.mark.parametrize(
    ("rows", "shared"),
    [
        pytest.param(row(2, inline("C2", LONG)), None, id="inline string"),
        pytest.param(
            row(2, '<c r="C2" t="s"><v>0</v></c>'),
            f'<sst xmlns="{MAIN}"><si><t>{LONG}</t></si></sst>',
            id="shared string",
        ),
        pytest.param(row(2, f'<c r="C2"><f>{LONG}</f></c>'), None, id="formula"),
        pytest.param(row(2, f'<c r="C2"><v>{"9" * 1001}</v></c>'), None, id="number"),
        pytest.param(row(2, inline("AB2", LONG)), None, id="beyond column K"),
        pytest.param(row(1, inline("C1", LONG)), None, id="title row"),
    ],
)
def test_a_cell_over_1000_characters_is_too_large_and_its_text_not_repeated(rows, shared):
    refused = refusal(workbook(rows, shared=shared))

    assert refused.code is Code.FILE_TOO_LARGE
    assert "1,000 characters" in refused.error.message


def test_a_cell_of_1000_characters_is_read():
    cells = read_workbook(workbook(row(2, inline("C2", "y" * 1000))))

    assert len(cells.rows[2][2]) == 1000


def test_a_long_text_that_the_form_sheet_never_uses_is_not_refused():
    shared = f'<sst xmlns="{MAIN}"><si><t>{"z" * 5000}</t></si><si><t>ok</t></si></sst>'

    cells = read_workbook(workbook(row(2, '<c r="A2" t="s"><v>1</v></c>'), shared=shared))

    assert cells.rows[2][0] == "ok"


def test_a_row_holding_too_many_elements_is_too_large():
    junk = "".join(f'<x n="{i}"/>' for i in range(100_001))

    assert refusal(workbook(f'<row r="2">{junk}</row>')).code is Code.FILE_TOO_LARGE


def test_more_shared_strings_than_any_form_needs_is_too_large():
    shared = f'<sst xmlns="{MAIN}">{"".join(f"<si><t>{i}</t></si>" for i in range(100_001))}</sst>'

    refused = refusal(workbook(row(2, '<c r="A2" t="s"><v>0</v></c>'), shared=shared))

    assert refused.code is Code.FILE_TOO_LARGE


def test_a_sheet_of_more_elements_than_the_limit_is_too_large(monkeypatch):
    monkeypatch.setattr(reader, "MAX_PART_ELEMENTS", 1000)

    assert refusal(workbook(many_rows(600))).code is Code.FILE_TOO_LARGE


# ------------------------------------------------------------------------------ anything at all


VALID = workbook(
    row(1, inline("A1", "Requester First Name"))
    + row(2, inline("A2", "Hana"), '<c r="B2" t="s"><v>0</v></c>', '<c r="J2"><v>1234567890</v></c>'),
    shared=f'<sst xmlns="{MAIN}"><si><r><t>Sa</t></r><r><t>to</t></r></si></sst>',
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_damaged_workbook_gives_sheet_cells_or_a_file_refusal_never_a_crash(data):
    damaged = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(damaged) // 2, len(damaged)))

    try:
        result = read_workbook(bytes(damaged[:cut]))
    except FileRejected as refused:
        assert refused.code in (Code.NOT_XLSX, Code.FILE_TOO_LARGE)
    else:
        assert isinstance(result, SheetCells)
