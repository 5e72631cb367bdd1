"""How long the safe reader takes on a 500-row form (target: well under 20 ms), beside calamine and openpyxl.

    .venv/bin/python benchmarks/read_speed.py [--runs 30]

Three 500-row forms (501 rows with the titles, 11 columns, Japanese and Vietnamese names):
- `openpyxl`: written by openpyxl, as the project's template and samples are (inline strings);
- `excel-style`: the same cells written the way Excel and LibreOffice write them (shared strings,
  a style and spans on every row);
- `sample_forms/valid_500.xlsx`, when it is there.
Reported per reader: the median and the best of `--runs` reads of the bytes in memory (the
reader's whole job: zip checks, inflation, DTD checks, shared strings, the sheet). calamine returns
cached values instead of formulas, and openpyxl's read-only mode is what the reader would cost if it
were built on openpyxl; both are here for scale only.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grants.form import FORM_SHEET, TITLES  # noqa: E402
from loaders.workbook import read_workbook  # noqa: E402

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def form_rows() -> list[list[str]]:
    requester = ["花子", "山田", "hanako.yamada@sakura.example", "415-555-0101"]
    delegate = ["Văn An", "Nguyễn", "an.nguyen@partner.example", "(415) 555-0102", "Mobile"]
    levels = ("Full", "High", "Read Only")
    return [list(TITLES)] + [requester + delegate + [f"{410_000_001 + i:010d}", levels[i % 3]] for i in range(500)]


def openpyxl_form(rows: list[list[str]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = FORM_SHEET
    for row in rows:
        ws.append(row)
    wb.create_sheet("Example").append(rows[1])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def excel_style_form(rows: list[list[str]]) -> bytes:
    strings: dict[str, int] = {}
    body = []
    for r, row in enumerate(rows, 1):
        cells = "".join(
            f'<c r="{letter}{r}" s="1" t="s"><v>{strings.setdefault(text, len(strings))}</v></c>'
            for letter, text in zip("ABCDEFGHIJK", row, strict=True)
        )
        body.append(f'<row r="{r}" spans="1:11" x14ac:dyDescent="0.25">{cells}</row>')
    x14ac = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac"
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{MAIN}" '
        f'xmlns:r="{REL}" xmlns:x14ac="{x14ac}"><dimension ref="A1:K{len(rows)}"/>'
        f"<sheetData>{''.join(body)}</sheetData></worksheet>"
    )
    shared = "".join(f"<si><t>{escape(text)}</t></si>" for text in strings)
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{SML}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SML}.worksheet+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet2.xml" ContentType="{SML}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SML}.sharedStrings+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{PACKAGE_REL}"><Relationship Id="rId1" Type="{REL}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets><sheet name="{FORM_SHEET}" sheetId="1" '
            'r:id="rId1"/><sheet name="Example" sheetId="2" r:id="rId2"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PACKAGE_REL}">'
            f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{REL}/worksheet" Target="worksheets/sheet2.xml"/>'
            f'<Relationship Id="rId3" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": sheet,
        "xl/worksheets/sheet2.xml": f'<worksheet xmlns="{MAIN}"><sheetData/></worksheet>',
        "xl/sharedStrings.xml": f'<sst xmlns="{MAIN}" count="{len(strings)}">{shared}</sst>',
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


def with_calamine(data: bytes) -> object:
    from python_calamine import CalamineWorkbook

    return CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name(FORM_SHEET).to_python()


def with_openpyxl(data: bytes) -> object:
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    rows = list(wb[FORM_SHEET].iter_rows(values_only=True))
    wb.close()
    return rows


def timed(read: Callable[[bytes], object], data: bytes, runs: int) -> tuple[float, float]:
    """(median, best) milliseconds of `runs` reads, after one warm-up read."""
    read(data)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        read(data)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    rows = form_rows()
    forms = {"openpyxl": openpyxl_form(rows), "excel-style": excel_style_form(rows)}
    sample = ROOT / "sample_forms" / "valid_500.xlsx"
    if sample.exists():
        forms["valid_500.xlsx"] = sample.read_bytes()
    readers = {"read_workbook": read_workbook, "calamine": with_calamine, "openpyxl r/o": with_openpyxl}

    print(f"{'form':16} {'KiB':>5}  " + "  ".join(f"{name:>22}" for name in readers))
    for form, data in forms.items():
        cells = read_workbook(data)
        assert len(cells.rows) == 500, form
        results = [timed(read, data, args.runs) for read in readers.values()]
        columns = "  ".join(f"{median:8.1f} ms (best {best:5.1f})" for median, best in results)
        print(f"{form:16} {len(data) / 1024:5.0f}  {columns}")


if __name__ == "__main__":
    main()
