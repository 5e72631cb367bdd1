"""Workbooks written by a second program: LibreOffice Calc re-saves the forms; nothing may change.

All the conversions run in ONE headless soffice call per test session (it costs seconds to start),
with a profile of its own so that parallel runs do not lock each other out. Without soffice these
tests are skipped, unless DELEGATION_REQUIRE_LIBREOFFICE=1 (CI sets it): then they fail. They need
the safe reader (loaders/workbook.py) and the validators, and are skipped while those are missing.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook

from grants.errors import Code
from grants.form import FORM_SHEET, LETTER_OF, TITLES
from loaders.marked import ERRORS_HEADER, ERRORS_SHEET, MARK_COLOR, mark_workbook
from loaders.template import load_template

SAMPLES = Path(__file__).resolve().parent.parent / "sample_forms"
MANIFEST = {e["file"]: e for e in json.loads((SAMPLES / "manifest.json").read_text("utf-8"))["samples"]}
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

RESAVED_SAMPLES = [
    *(name for name, e in MANIFEST.items() if e["kind"] == "valid"),
    "invalid_CELL_FORMULA.xlsx",
    "invalid_ACCOUNT_ID_INVALID_numeric.xlsx",
    "invalid_ACCOUNT_ID_INVALID.xlsx",
    "invalid_CELL_FORBIDDEN_CHAR.xlsx",
    "invalid_CELL_BLANK.xlsx",
    "invalid_NAME_INVALID.xlsx",
    "invalid_SHEET_EXTRA.xlsx",
    "invalid_SHEET_MISSING.xlsx",
    "invalid_HEADER_MISMATCH.xlsx",
    "invalid_DATA_OUTSIDE_FORM.xlsx",
    "invalid_NO_DATA.xlsx",
    "invalid_ACCOUNT_DUPLICATE.xlsx",
    "invalid_DELEGATE_NOT_UNIQUE.xlsx",
    "invalid_TOO_MANY_ACCOUNTS.xlsx",
    "invalid_many_errors.xlsx",
    "directory_FULL_ACCESS_THIRD_PARTY.xlsx",
]
HAND_FILLED = "hand_filled_template.xlsx"
MARKED = "marked_many_errors.xlsx"

# The person of the demo directory who fills the template by hand: 山田 花子 gives a third party
# (Nguyễn Văn An, who accepted an invitation to 0410000002) access to 16 accounts.
HAND_ACCOUNTS = ["0410000002", *(f"0410000{n:03d}" for n in range(301, 316))]
HAND_REQUESTER = ("花子", "山田", "hanako.yamada@sakura-trading.example", "(415) 555-0101")
HAND_DELEGATE = ("Văn An", "Nguyễn", "an.nguyen@mekong-energy.example", "408-555-0123", "Work")


def judge(data: bytes):
    """(form, errors) as the pipeline judges a workbook's sheet; skips while the modules are missing."""
    read_workbook = pytest.importorskip(
        "loaders.workbook", reason="loaders/workbook.py (the safe reader) is not written yet"
    ).read_workbook
    validate_sheet = pytest.importorskip(
        "validators", reason="validators/ (validate_sheet) is not written yet"
    ).validate_sheet
    return validate_sheet(read_workbook(data))


def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found:
        return found
    if os.environ.get("DELEGATION_REQUIRE_LIBREOFFICE") == "1":
        pytest.fail("LibreOffice is required (DELEGATION_REQUIRE_LIBREOFFICE=1) but soffice is missing")
    pytest.skip("LibreOffice (soffice) is not installed; CI installs it and requires these tests")


def hand_filled() -> bytes:
    """The template filled in as a person would (drop-downs kept), saved by a plain save."""
    wb = load_template()
    ws = wb[FORM_SHEET]
    for r, account in enumerate(HAND_ACCOUNTS, start=2):
        level = "High" if r % 2 else "Read Only"
        for c, value in enumerate((*HAND_REQUESTER, *HAND_DELEGATE, account, level), start=1):
            ws.cell(r, c).value = value
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def inputs() -> dict[str, bytes]:
    """Every workbook LibreOffice re-saves in the session, by file name."""
    files = {name: (SAMPLES / name).read_bytes() for name in RESAVED_SAMPLES}
    files[HAND_FILLED] = hand_filled()
    many = files["invalid_many_errors.xlsx"]
    files[MARKED] = mark_workbook(many, judge(many)[1])
    return files


def convert(files: dict[str, bytes], work: Path) -> dict[str, bytes]:
    """One soffice run re-saving every file as .xlsx; the re-saved bytes by file name."""
    exe = soffice()
    src, out = work / "in", work / "out"
    src.mkdir(parents=True)
    out.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    profile = work / f"profile-{uuid.uuid4().hex}"
    command = [
        exe, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
        "--nolockcheck", "--convert-to", "xlsx", "--outdir", str(out),
        *(str(src / name) for name in files),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    missing = [name for name in files if not (out / name).is_file()]
    if done.returncode != 0 or missing:
        pytest.fail(f"soffice failed (rc={done.returncode}, missing {missing}):\n{done.stdout}\n{done.stderr}")
    shutil.rmtree(profile, ignore_errors=True)
    return {name: (out / name).read_bytes() for name in files}


@pytest.fixture(scope="session")
def originals() -> dict[str, bytes]:
    return inputs()


@pytest.fixture(scope="session")
def resaved(originals, tmp_path_factory) -> dict[str, bytes]:
    """The originals as LibreOffice saves them; converted once even across xdist workers."""
    soffice()
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return convert(originals, tmp_path_factory.mktemp("libreoffice"))
    shared = tmp_path_factory.getbasetemp().parent / "libreoffice"  # one per run, all workers
    shared.mkdir(exist_ok=True)
    with (shared / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = shared / "work" / "out"
        if not (shared / "done").exists():
            convert(originals, shared / "work")
            (shared / "done").touch()
        return {name: (out / name).read_bytes() for name in originals}


def summary(errors) -> list[tuple[str, int | None, str | None]]:
    return [(str(e.code), e.row, e.column) for e in errors]


@pytest.mark.parametrize("name", RESAVED_SAMPLES)
def test_a_sample_resaved_by_libreoffice_is_judged_as_the_original(name, originals, resaved):
    form, errors = judge(originals[name])
    form_again, errors_again = judge(resaved[name])
    expected = MANIFEST[name]["expected_codes"] if MANIFEST[name]["kind"] == "invalid" else []
    assert sorted({code for code, _, _ in summary(errors_again)}) == expected
    assert summary(errors_again) == summary(errors)
    assert form_again == form


def test_a_formula_resaved_by_libreoffice_gets_a_cached_value_and_is_still_refused(resaved):
    data = resaved["invalid_CELL_FORMULA.xlsx"]
    cached = load_workbook(io.BytesIO(data), data_only=True)[FORM_SHEET]
    assert (cached["J7"].value, cached["K9"].value) == ("0410000006", "Full")  # they look fine
    form, errors = judge(data)
    assert form is None
    assert summary(errors) == [("CELL_FORMULA", 7, "Account ID"), ("CELL_FORMULA", 9, "Access Level")]


def test_the_template_filled_in_and_saved_by_libreoffice_passes_validation(resaved):
    form, errors = judge(resaved[HAND_FILLED])
    assert errors == []
    assert [line.account_id for line in form.lines] == HAND_ACCOUNTS
    assert (form.requester.first_name, form.requester.last_name) == ("花子", "山田")
    assert (form.delegate.first_name, form.delegate.last_name) == ("Văn An", "Nguyễn")
    assert form.delegate.phone == "4085550123" and str(form.phone_type) == "Work"


def test_libreoffice_keeps_the_templates_drop_downs_and_text_account_ids(resaved):
    ws = load_workbook(io.BytesIO(resaved[HAND_FILLED]))[FORM_SHEET]
    lists = {str(dv.sqref).split(":")[0]: dv for dv in ws.data_validations.dataValidation if dv.type == "list"}
    for title in ("Delegate Phone Type", "Access Level"):
        dv = lists[f"{LETTER_OF[title]}2"]
        assert dv.showErrorMessage and dv.errorStyle in (None, "stop")
    account = TITLES.index("Account ID") + 1
    cells = [ws.cell(r, account) for r in range(2, 2 + len(HAND_ACCOUNTS))]
    assert all(c.data_type == "s" and len(c.value) == 10 for c in cells)
    assert ws.column_dimensions[LETTER_OF["Account ID"]].number_format == "@"


def test_libreoffice_opens_the_marked_workbook_and_finds_nothing_to_compute(resaved):
    wb = load_workbook(io.BytesIO(resaved[MARKED]), data_only=False)
    assert wb.sheetnames[0] == ERRORS_SHEET
    assert tuple(c.value for c in wb[ERRORS_SHEET][1]) == ERRORS_HEADER
    listed = {row[3] for row in wb[ERRORS_SHEET].iter_rows(min_row=2, values_only=True) if row[3]}
    assert str(Code.CELL_FORMULA) in listed
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)
                assert not (isinstance(cell.value, str) and cell.value.startswith(TRIGGERS))
    formula_cell = wb[FORM_SHEET]["J14"]  # a formula in the original
    assert formula_cell.fill.fgColor.rgb == MARK_COLOR and formula_cell.comment is not None
