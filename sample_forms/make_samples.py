"""Regenerate sample_forms/: the demo directory (CSV), the blank template, the forms and manifest.json.

    python sample_forms/make_samples.py [--out DIR]

Deterministic: the same code writes the same bytes. Every form starts as the official template
(written, then read back as a person's copy would be) and is filled with openpyxl; Account IDs are
written as text unless a sample is about numbers. manifest.json lists every sample with the codes
judging it must produce; the tests and the demo read it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import cycle, islice
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script from anywhere, installed or not

from openpyxl import Workbook  # noqa: E402

from grants.form import EXAMPLE_SHEET, FORM_SHEET, MAX_ACCOUNTS, MIN_ACCOUNTS  # noqa: E402
from loaders.template import (  # noqa: E402
    _ZIP_TIME,
    fill_rows,
    load_template,
    template_bytes,
    workbook_bytes,
)

# ---------------------------------------------------------------------------------------------
# The demo directory (spec: directory.md)


@dataclass(frozen=True)
class Person:
    person_id: str
    first_name: str
    last_name: str
    email: str
    phone: str  # 10 digits

    def dashed(self) -> str:
        return f"{self.phone[:3]}-{self.phone[3:6]}-{self.phone[6:]}"


SAKURA, TRAN_HOME, BAKERY = "C100", "C200", "C300"
CUSTOMERS = (
    (SAKURA, "Sakura Trading KK", "business"),
    (TRAN_HOME, "Trần Thị Mai", "residential"),
    (BAKERY, "Pacific Bakery LLC", "business"),
)

YAMADA = Person("P001", "花子", "山田", "hanako.yamada@sakura-trading.example", "4155550101")
SATO = Person("P002", "健", "佐藤", "ken.sato@sakura-trading.example", "4155550102")
NGUYEN = Person("P003", "Văn An", "Nguyễn", "an.nguyen@mekong-energy.example", "4085550123")
TRAN = Person("P004", "Thị Mai", "Trần", "mai.tran@example.net", "6505550144")
LE = Person("P005", "Minh", "Lê", "minh.le@example.net", "6505550145")
LOPEZ = Person("P006", "María", "López", "maria.lopez@pacific-bakery.example", "5105550166")
TANAKA = Person("P007", "美咲", "田中", "misaki.tanaka@sakura-trading.example", "4155550107")
PEOPLE = (YAMADA, SATO, NGUYEN, TRAN, LE, LOPEZ, TANAKA)
# Not in the directory at all: a delegate nobody invited.
KOBAYASHI = Person("-", "由紀", "小林", "yuki.kobayashi@sakura-trading.example", "4155550108")

ROLES = (
    (SAKURA, YAMADA.person_id, "authorized_user"),  # the requester of the business forms
    (SAKURA, SATO.person_id, "direct_employee"),
    (SAKURA, TANAKA.person_id, "direct_employee"),
    (TRAN_HOME, TRAN.person_id, "primary_account_holder"),
    (BAKERY, LOPEZ.person_id, "authorized_user"),
)


def sakura(n: int) -> str:
    """The n-th active account of Sakura Trading KK (1..620): one leading zero, as IDs often have."""
    return f"0{410_000_000 + n:09d}"


SAKURA_ACTIVE = 620
SAKURA_CLOSED = ("0419990001", "0419990002")
TRAN_ACTIVE = ("0520000001", "0520000002", "0520000003")
TRAN_CLOSED = ("0520000004",)
BAKERY_ACTIVE = tuple(f"06300000{n:02d}" for n in range(1, 13))
UNKNOWN_ACCOUNT = "0419999999"

ACCOUNTS = (
    *((sakura(n), SAKURA, "active") for n in range(1, SAKURA_ACTIVE + 1)),
    *((a, SAKURA, "closed") for a in SAKURA_CLOSED),
    *((a, TRAN_HOME, "active") for a in TRAN_ACTIVE),
    *((a, TRAN_HOME, "closed") for a in TRAN_CLOSED),
    *((a, BAKERY, "active") for a in BAKERY_ACTIVE),
)

GRANTS = (
    (sakura(1), SATO.person_id, "Read Only", "active"),  # Sato accepted his first invitation
    (sakura(3), SATO.person_id, "High", "invited"),  # pending: the valid forms activate it
    (sakura(2), NGUYEN.person_id, "High", "active"),  # the third party's first account
    (sakura(4), TANAKA.person_id, "Read Only", "invited"),  # Tanaka never accepted hers
    (TRAN_ACTIVE[0], LE.person_id, "Read Only", "active"),  # a residential delegate
)


def directory_files() -> dict[str, list[tuple[str, ...]]]:
    """File name -> rows (header first) of the demo directory."""
    return {
        "customers.csv": [("customer_id", "name", "customer_type"), *CUSTOMERS],
        "accounts.csv": [("account_id", "customer_id", "status"), *ACCOUNTS],
        "people.csv": [
            ("person_id", "first_name", "last_name", "email", "phone"),
            *((p.person_id, p.first_name, p.last_name, p.email, p.phone) for p in PEOPLE),
        ],
        "roles.csv": [("customer_id", "person_id", "role"), *ROLES],
        "grants.csv": [("account_id", "person_id", "access_level", "status"), *GRANTS],
    }


def csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def plan_on_fresh_directory(delegate: Person, lines: Sequence[tuple[str, str]]) -> dict[str, int]:
    """What applying a valid form to the freshly loaded demo directory does, by kind of change."""
    held = {(a, p): (level, status) for a, p, level, status in GRANTS}
    plan = {"created": 0, "changed": 0, "unchanged": 0}
    for account, level in lines:
        grant = held.get((account, delegate.person_id))
        if grant is None:
            plan["created"] += 1
        elif grant == (level, "active"):
            plan["unchanged"] += 1
        else:  # another level, or a pending invitation that becomes active
            plan["changed"] += 1
    return plan


# ---------------------------------------------------------------------------------------------
# Building forms

Row = tuple[object, ...]
Edit = Callable[[Workbook], None]
ALL_LEVELS = ("Full", "High", "Read Only")
THIRD_PARTY_LEVELS = ("High", "Read Only")


def rows_for(
    requester: Person,
    delegate: Person,
    lines: Sequence[tuple[str, str]],
    phone_type: str = "Mobile",
) -> list[Row]:
    """One row per (account, level), the requester's and delegate's details repeated as written."""
    return [
        (
            requester.first_name, requester.last_name, requester.email, requester.dashed(),
            delegate.first_name, delegate.last_name, delegate.email, delegate.dashed(),
            phone_type, account, level,
        )
        for account, level in lines
    ]  # fmt: skip


def lines(accounts: Sequence[str], levels: Sequence[str] = ALL_LEVELS) -> list[tuple[str, str]]:
    return list(zip(accounts, islice(cycle(levels), len(accounts)), strict=True))


def sakura_range(first: int, count: int) -> list[str]:
    return [sakura(n) for n in range(first, first + count)]


def form_bytes(rows: Sequence[Row], *edits: Edit) -> bytes:
    """The template, read back as a person's copy, filled with `rows`, then edited."""
    wb = load_template()
    fill_rows(wb[FORM_SHEET], rows)
    for edit in edits:
        edit(wb)
    return workbook_bytes(wb)


def put(**cells: object) -> Edit:
    """Set cells of the form sheet as given (str text, int number, '=...' a real formula)."""

    def edit(wb: Workbook) -> None:
        ws = wb[FORM_SHEET]
        for ref, value in cells.items():
            ws[ref] = value

    return edit


def put_text(ref: str, text: str) -> Edit:
    """Set a cell to a string even when it starts with '=' (as Excel stores '=... typed)."""

    def edit(wb: Workbook) -> None:
        cell = wb[FORM_SHEET][ref]
        cell.value = text
        cell.data_type = "s"
        cell.quotePrefix = True

    return edit


def rename_sheet(old: str, new: str) -> Edit:
    def edit(wb: Workbook) -> None:
        wb[old].title = new

    return edit


def drop_sheet(name: str) -> Edit:
    def edit(wb: Workbook) -> None:
        wb.remove(wb[name])

    return edit


def add_sheet(name: str, *lines_: str) -> Edit:
    def edit(wb: Workbook) -> None:
        ws = wb.create_sheet(name)
        for r, text in enumerate(lines_, start=1):
            ws.cell(r, 1, text)

    return edit


def with_entry(xlsx: bytes, name: str, data: bytes) -> bytes:
    """The workbook's zip with one more entry (deterministic, like workbook_bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        extra = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
        extra.compress_type = zipfile.ZIP_DEFLATED
        extra.external_attr = 0o644 << 16
        dst.writestr(extra, data)
    return out.getvalue()


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# ---------------------------------------------------------------------------------------------
# The samples


@dataclass
class Sample:
    file: str
    kind: str  # valid | invalid | directory | file
    expected_codes: list[str]
    description: str
    build: Callable[[], bytes] = field(repr=False)
    requester: Person | None = None
    delegate: Person | None = None
    lines: list[tuple[str, str]] | None = None

    def entry(self) -> dict:
        d: dict = {
            "file": self.file,
            "kind": self.kind,
            "expected_codes": sorted(self.expected_codes),
            "description": self.description,
        }
        if self.lines is not None and self.kind in {"valid", "directory"}:
            d["accounts"] = len({a for a, _ in self.lines})
        if self.requester is not None:
            d["requester_email"] = self.requester.email
        if self.delegate is not None:
            d["delegate_email"] = self.delegate.email
        if self.kind == "valid":
            assert self.delegate is not None and self.lines is not None
            d["plan_on_fresh_directory"] = plan_on_fresh_directory(self.delegate, self.lines)
        return d


def samples() -> list[Sample]:
    out: list[Sample] = []

    def add(file, kind, codes, description, rows_or_build, *edits, people=None, lines_=None):
        if callable(rows_or_build):
            build = rows_or_build
        else:
            rows = rows_or_build

            def build(rows=rows, edits=edits):
                return form_bytes(rows, *edits)

        requester, delegate = people or (None, None)
        out.append(Sample(file, kind, codes, description, build, requester, delegate, lines_))

    def std(lines_: list[tuple[str, str]], requester: Person = YAMADA, delegate: Person = SATO) -> dict:
        return {"people": (requester, delegate), "lines_": lines_}

    # --- valid: Sakura Trading's authorized user gives Sato (a direct employee) access ---------
    l15 = lines(sakura_range(1, 15))
    add("valid_15.xlsx", "valid", [],
        f"{MIN_ACCOUNTS} accounts, the fewest a form may hold; includes Sato's first account (its level"
        " changes) and his pending invitation (it becomes active).",
        rows_for(YAMADA, SATO, l15), **std(l15))  # fmt: skip

    l20 = lines(sakura_range(1, 20))
    spelled = []
    req_phones = ("(415) 555-0101", "415.555.0101", "4155550101", "+1 415 555 0101", "415-555-0101")
    del_phones = ("+1 415 555 0102", "(415) 555-0102", "415-555-0102", "415.555.0102")
    levels = {"Full": " full ", "High": "HIGH", "Read Only": "read only"}
    for i, (account, level) in enumerate(l20):
        spelled.append((
            " 花子 ", "山田", "Hanako.Yamada@Sakura-Trading.example" if i % 2 else YAMADA.email,
            req_phones[i % len(req_phones)],
            "健", " 佐藤", "KEN.SATO@sakura-trading.example" if i % 3 == 0 else SATO.email,
            del_phones[i % len(del_phones)], "mobile" if i % 2 else "Mobile ",
            account, levels[level],
        ))  # fmt: skip
    add("valid_20.xlsx", "valid", [],
        "20 accounts written every way the spec allows: phone formats, e-mail case, drop-down"
        " case and spaces, names with surrounding spaces; the rows agree once normalised.",
        spelled, **std(l20))  # fmt: skip

    l500 = lines(sakura_range(1, 500))
    add("valid_500.xlsx", "valid", [], f"{MAX_ACCOUNTS} accounts, the most a form may hold.",
        rows_for(YAMADA, SATO, l500), **std(l500))  # fmt: skip

    ltp = lines([sakura(2), *sakura_range(201, 24)], THIRD_PARTY_LEVELS)
    tp_rows = rows_for(YAMADA, NGUYEN, ltp, phone_type="Work")
    tp_rows = [
        # the same name, composed (NFC) and decomposed (NFD), with stray spaces: one person
        (*r[:4], nfd(r[4]) if i % 2 else r[4], f" {nfd(r[5])} " if i % 3 else r[5], *r[6:])
        for i, r in enumerate(tp_rows)
    ]
    add("valid_third_party_high.xlsx", "valid", [],
        "A third party (Nguyễn Văn An, not an employee) gets High and Read Only on 25 business"
        " accounts; his name is written composed and decomposed (NFC/NFD) on alternate rows.",
        tp_rows, **std(ltp, delegate=NGUYEN))  # fmt: skip

    # --- invalid: one sample per cell, workbook and form code ----------------------------------
    base_lines = lines(sakura_range(1, 20))
    base = rows_for(YAMADA, SATO, base_lines)

    def every_row(col: int, value: str) -> list[Row]:
        return [(*r[:col], value, *r[col + 1 :]) for r in base]

    def inv(code, description, rows, *edits, file=None):
        add(file or f"invalid_{code}.xlsx", "invalid", [code] if isinstance(code, str) else code,
            description, rows, *edits, people=(YAMADA, SATO), lines_=base_lines)  # fmt: skip

    inv("CELL_BLANK", "Access Level left empty on row 6 and Account ID on row 11.",
        base, put(K6=None, J11=None))  # fmt: skip
    inv("CELL_FORBIDDEN_CHAR",
        "A colon in the Account ID of row 4 ('Acct:0410000003') and a text cell starting with"
        " an equals sign (='High', stored as text, not a formula) in the Access Level of row 7.",
        base, put(J4="Acct:" + sakura(3)), put_text("K7", '="High"'))  # fmt: skip
    inv("CELL_FORMULA",
        "Real formulas whose values would look right: =\"0410000006\" as the Account ID of row 7"
        " and =PROPER(\"full\") as the Access Level of row 9.",
        base, put(J7=f'="{sakura(6)}"', K9='=PROPER("full")'))  # fmt: skip
    inv("NAME_INVALID", "Delegate First Name '健 (IT)' on every row: brackets are not in names.",
        every_row(4, "健 (IT)"))  # fmt: skip
    inv("EMAIL_INVALID", "Requester Primary Email without an @ on every row.",
        every_row(2, "hanako.yamada at sakura-trading.example"))  # fmt: skip
    inv("PHONE_INVALID", "A UK number as the Delegate Primary Phone on every row.",
        every_row(7, "+44 20 7946 0958"))  # fmt: skip
    inv("PHONE_TYPE_INVALID", "Delegate Phone Type 'Cell' (not Mobile, Home or Work) on every row.",
        every_row(8, "Cell"))  # fmt: skip
    inv("ACCESS_LEVEL_INVALID", "Access Level 'Admin' on row 5 and 'Read-only' on row 9.",
        base, put(K5="Admin", K9="Read-only"))  # fmt: skip
    inv("ACCOUNT_ID_INVALID",
        "Account IDs as text that are not 10 digits: 9 digits (row 4), 11 digits (row 6), a"
        " hyphen (row 8), a letter O for a zero (row 10).",
        base, put(J4="041000003", J6="04100000055", J8="0410-000007", J10="O410000009"))  # fmt: skip
    inv("ACCOUNT_ID_INVALID",
        "Account ID 0410000004 typed as a number on row 5: Excel dropped its leading zero,"
        " leaving the 9-digit number 410000004.",
        base, put(J5=410_000_004), file="invalid_ACCOUNT_ID_INVALID_numeric.xlsx")  # fmt: skip

    inv("SHEET_MISSING", "Only the Example sheet: the Delegate Form sheet was deleted.",
        base, drop_sheet(FORM_SHEET))  # fmt: skip
    inv("SHEET_EXTRA", "A valid form with one more sheet, 'Notes'.",
        base, add_sheet("Notes", "Ask Ken which accounts he needs"))  # fmt: skip
    inv("HEADER_MISMATCH", "Title of column J changed to 'Account Number'.",
        base, put(J1="Account Number"))  # fmt: skip
    inv("DATA_OUTSIDE_FORM", "Notes typed beside the form, in L3 and N8.",
        base, put(L3="ask Ken first", N8="check"))  # fmt: skip
    add("invalid_NO_DATA.xlsx", "invalid", ["NO_DATA"],
        "The blank template sent as it is: titles and no data rows.", template_bytes)  # fmt: skip

    l14 = lines(sakura_range(1, 14))
    add("invalid_TOO_FEW_ACCOUNTS.xlsx", "invalid", ["TOO_FEW_ACCOUNTS"],
        f"14 accounts: fewer than {MIN_ACCOUNTS}, to be invited online instead.",
        rows_for(YAMADA, SATO, l14), **std(l14))  # fmt: skip
    l501 = lines(sakura_range(1, 501))
    add("invalid_TOO_MANY_ACCOUNTS.xlsx", "invalid", ["TOO_MANY_ACCOUNTS"],
        f"501 accounts: more than {MAX_ACCOUNTS}, to be split over two forms.",
        rows_for(YAMADA, SATO, l501), **std(l501))  # fmt: skip
    dup = [*base[:10], (*base[10][:9], sakura(2), base[10][10]), *base[11:]]
    add("invalid_ACCOUNT_DUPLICATE.xlsx", "invalid", ["ACCOUNT_DUPLICATE"],
        "Account 0410000002 on rows 3 and 12 (19 distinct accounts).",
        dup, people=(YAMADA, SATO),
        lines_=[(r[9], r[10]) for r in dup])  # fmt: skip
    inv("REQUESTER_NOT_UNIQUE", "Row 8 gives the requester another (valid) phone number.",
        base, put(D8="415-555-0199"))  # fmt: skip
    inv("DELEGATE_NOT_UNIQUE", "Row 8 gives the delegate another (valid) e-mail address.",
        base, put(G8="k.sato@sakura-trading.example"))  # fmt: skip
    lself = lines(sakura_range(1, 20), THIRD_PARTY_LEVELS)
    add("invalid_DELEGATE_IS_REQUESTER.xlsx", "invalid", ["DELEGATE_IS_REQUESTER"],
        "The requester names herself as the delegate on every row.",
        rows_for(YAMADA, YAMADA, lself), **std(lself, delegate=YAMADA))  # fmt: skip
    inv(["ACCOUNT_ID_INVALID", "ACCESS_LEVEL_INVALID", "CELL_BLANK", "CELL_FORMULA",
         "CELL_FORBIDDEN_CHAR", "ACCOUNT_DUPLICATE"],
        "Several mistakes at once, all reported together: a numeric Account ID (row 5), a blank"
        " Access Level (row 6), 'Admin' (row 9), a duplicate of row 3's account (row 12), a"
        " formula (row 14), a colon (row 16).",
        base, put(J5=410_000_004, K6=None, K9="Admin", J12=sakura(2),
                  J14=f'="{sakura(13)}"', K16="High: please"),
        file="invalid_many_errors.xlsx")  # fmt: skip

    # --- directory: sheet-valid forms the directory refuses -------------------------------------
    def dirs(code, description, rows, lines_, *edits, file=None, delegate=SATO, requester=YAMADA):
        add(file or f"directory_{code}.xlsx", "directory", [code], description, rows, *edits,
            people=(requester, delegate), lines_=lines_)  # fmt: skip

    stranger = Person("-", YAMADA.first_name, YAMADA.last_name, "hanako@sakura-trading.example",
                      YAMADA.phone)  # fmt: skip
    dirs("REQUESTER_UNKNOWN", "The requester's e-mail is not a login's.",
         rows_for(stranger, SATO, base_lines), base_lines, requester=stranger)  # fmt: skip
    dirs("REQUESTER_MISMATCH",
         "The requester's last name written 'Yamada' where her login says 山田.",
         every_row(1, "Yamada"), base_lines)  # fmt: skip
    unknown = [*base_lines[:9], (UNKNOWN_ACCOUNT, "High"), *base_lines[10:]]
    dirs("ACCOUNT_UNKNOWN", f"Row 11 names account {UNKNOWN_ACCOUNT}, which does not exist.",
         rows_for(YAMADA, SATO, unknown), unknown)  # fmt: skip
    closed = [*base_lines[:9], (SAKURA_CLOSED[0], "High"), *base_lines[10:]]
    dirs("ACCOUNT_CLOSED", f"Row 11 names Sakura's closed account {SAKURA_CLOSED[0]}.",
         rows_for(YAMADA, SATO, closed), closed)  # fmt: skip
    other = [*base_lines[:9], (BAKERY_ACTIVE[0], "Read Only"), *base_lines[10:]]
    dirs("REQUESTER_NOT_AUTHORIZED",
         f"Row 11 names {BAKERY_ACTIVE[0]}, an account of Pacific Bakery LLC, for which"
         " the requester is nobody.",
         rows_for(YAMADA, SATO, other), other)  # fmt: skip
    tp_lines = lines(sakura_range(1, 20), THIRD_PARTY_LEVELS)
    dirs("DELEGATE_NOT_INVITED",
         "The delegate (小林 由紀) is not in the directory: never invited. Levels High and Read"
         " Only only, so that Full for a stranger is not also in question.",
         rows_for(YAMADA, KOBAYASHI, tp_lines), tp_lines, delegate=KOBAYASHI)  # fmt: skip
    dirs("DELEGATE_NOT_INVITED",
         "The delegate (田中 美咲, a direct employee) was invited to 0410000004 but never accepted:"
         " a pending invitation does not count.",
         rows_for(YAMADA, TANAKA, tp_lines), tp_lines, delegate=TANAKA,
         file="directory_DELEGATE_NOT_INVITED_pending.xlsx")  # fmt: skip
    dirs("DELEGATE_MISMATCH", "The delegate's phone is not the one on his record.",
         every_row(7, "415-555-0199"), base_lines)  # fmt: skip
    full_tp = lines([sakura(2), *sakura_range(201, 19)], ("High", "Full", "Read Only"))
    dirs("FULL_ACCESS_THIRD_PARTY",
         "Full access for a third party (Nguyễn Văn An) on business accounts (rows 3, 6, ...).",
         rows_for(YAMADA, NGUYEN, full_tp, phone_type="Work"), full_tp,
         delegate=NGUYEN)  # fmt: skip

    # --- file: not a workbook the reader will open at all --------------------------------------
    add(
        "file_NOT_XLSX_csv.xlsx",
        "file",
        ["NOT_XLSX"],
        "The form saved as CSV and renamed .xlsx.",
        lambda: csv_bytes([("Requester First Name", "..."), *((r[0], r[1]) for r in base)]),
    )
    add(
        "file_NOT_XLSX_macro.xlsx",
        "file",
        ["NOT_XLSX"],
        "A valid form with a VBA project inside (macro-enabled), renamed .xlsx.",
        lambda: with_entry(form_bytes(base), "xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 not run"),
    )
    return out


def write(out_dir: Path) -> dict:
    """Write the directory, the template, every sample and manifest.json under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    directory = out_dir / "directory"
    directory.mkdir(exist_ok=True)
    for name, rows in directory_files().items():
        (directory / name).write_bytes(csv_bytes(rows))
    (out_dir / "template.xlsx").write_bytes(template_bytes())

    made = samples()
    names = [s.file for s in made]
    assert len(names) == len(set(names)), "sample file names must be unique"
    for stale in out_dir.glob("*.xlsx"):
        if stale.name.split("_", 1)[0] in {"valid", "invalid", "directory", "file"} and (stale.name not in names):
            stale.unlink()
    for sample in made:
        (out_dir / sample.file).write_bytes(sample.build())

    manifest = {
        "about": "Sample Delegate User Forms; see README.md. Regenerate with `python sample_forms/make_samples.py`.",
        "directory": "directory",
        "template": "template.xlsx",
        "sheet_names": [FORM_SHEET, EXAMPLE_SHEET],
        "samples": [s.entry() for s in made],
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: here)")
    args = parser.parse_args(argv)
    manifest = write(args.out)
    print(f"wrote {len(manifest['samples'])} samples, the template and the directory to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
