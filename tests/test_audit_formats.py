"""The audit trail's history and its three formats: CSV (cli.md, exact), Markdown, XLSX (issue 6)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from store_builders import ALEX, DIRECTORY, LAN, RECEIVED, form_of, sha

from flows.cli import cli
from grants.form import AccessLevel
from loaders.exports import markdown_table
from loaders.store import AUDIT_COLUMNS, Store
from loaders.store.reads import audit_rows

AUDIT_HEADER = "at,action,account_id,person_id,email,old_level,new_level,form_sha256,requester_email,submitted_by"
HIGH, READ = AccessLevel.HIGH, AccessLevel.READ_ONLY
# The acceptance flow: form 1 grants two accounts; form 2 changes one, leaves one, grants a third;
# the requester then removes one of them. (action, account, old, new, form, requester, submitter)
HISTORY = [
    ("granted", "1000000004", None, "High", sha(1), "lan@nguyenfoods.example", "S1"),
    ("granted", "1000000005", None, "High", sha(1), "lan@nguyenfoods.example", "S1"),
    ("changed", "1000000004", "High", "Read Only", sha(2), "lan@nguyenfoods.example", None),
    ("unchanged", "1000000005", "High", "High", sha(2), "lan@nguyenfoods.example", None),
    ("granted", "1000000006", None, "High", sha(2), "lan@nguyenfoods.example", None),
    ("revoked", "1000000004", "Read Only", None, None, "lan@nguyenfoods.example", None),
]


def _acceptance_flow(store: Store) -> None:
    store.load_directory(DIRECTORY)
    t = RECEIVED
    store.apply_form(form_of(LAN, ALEX, ["1000000004", "1000000005"], HIGH), sha(1), received_at=t,
                     submitted_by="S1", now=t + timedelta(minutes=1))
    store.apply_form(form_of(LAN, ALEX, ["1000000004", "1000000005", "1000000006"], HIGH,
                             levels={"1000000004": READ}),
                     sha(2), received_at=t + timedelta(hours=1), now=t + timedelta(hours=1, minutes=1))
    result = store.revoke(person_email="alex@consult.example", by_email="lan@nguyenfoods.example",
                          account_ids=["1000000004"], now=t + timedelta(days=1))
    assert result.ok


@pytest.fixture
def history(db_url) -> str:
    store = Store.connect(db_url)
    try:
        _acceptance_flow(store)
    finally:
        store.dispose()
    return db_url


def _shape(rows: list[dict]) -> list[tuple]:
    return [(r["action"], r["account_id"], r["old_level"], r["new_level"], r["form_sha256"], r["requester_email"],
             r["submitted_by"]) for r in rows]


def test_the_audit_query_returns_exactly_the_acceptance_history_in_order(history):
    store = Store.connect(history)
    try:
        with store.reading() as conn:
            everything = audit_rows(conn, person_email="alex@consult.example", grant_source=True)
            by_account = audit_rows(conn, account="1000000004")
            by_form = audit_rows(conn, form=sha(2))
            by_submitter = audit_rows(conn, submitter="S1")
    finally:
        store.dispose()
    assert _shape(everything) == HISTORY
    assert [r["at"] for r in everything] == sorted(r["at"] for r in everything)
    assert all(r["at"].tzinfo is not None for r in everything)
    assert all(r["email"] == "alex@consult.example" and r["person_id"] == "P-ALEX" for r in everything)
    # a revocation names the form that had set the grant it removed; other rows name none
    assert [r["grant_form_sha256"] for r in everything] == [None] * 5 + [sha(2)]
    assert _shape(by_account) == [HISTORY[0], HISTORY[2], HISTORY[5]]
    assert _shape(by_form) == HISTORY[2:5]
    assert _shape(by_submitter) == HISTORY[:2]


def test_a_revocation_of_a_directory_grant_names_no_form(db_url):
    store = Store.connect(db_url)
    try:
        store.load_directory(DIRECTORY)  # Alex holds 1000000001 from the directory
        store.revoke(person_email="alex@consult.example", by_email="lan@nguyenfoods.example",
                     account_ids=["1000000001"])
        with store.reading() as conn:
            (row,) = audit_rows(conn, grant_source=True)
    finally:
        store.dispose()
    assert (row["action"], row["grant_form_sha256"], row["requester_email"]) == (
        "revoked", None, "lan@nguyenfoods.example")


def _run(*args: str, code: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.output, result.stderr)
    return result


def test_csv_stays_exactly_as_cli_md_says(history):
    text = _run("audit", "--db", history).output
    assert text.splitlines()[0] == AUDIT_HEADER
    assert tuple(next(csv.reader(io.StringIO(text)))) == AUDIT_COLUMNS
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["action"], r["account_id"]) for r in rows] == [(h[0], h[1]) for h in HISTORY]
    assert rows[-1]["form_sha256"] == "" and rows[0]["at"] == "2026-11-23T14:01:00Z"
    assert _run("audit", "--db", history, "--format", "csv").output == text


def test_markdown_reads_in_a_terminal_with_every_row_tied_to_form_and_requester(history):
    text = _run("audit", "--db", history, "--format", "md", "--person", "alex@consult.example").output
    lines = text.splitlines()
    assert lines[0] == "# Audit trail: 6 row(s), oldest first"
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 2 + len(HISTORY)
    assert len({len(line) for line in table}) == 1  # padded: the columns line up
    body = table[2:]
    for line, (action, account, *_rest) in zip(body, HISTORY, strict=True):
        assert f"| {action} " in line and f"| {account} |" in line and "lan@nguyenfoods.example" in line
    assert sha(1)[:12] in body[0] and sha(2)[:12] in body[2]
    assert f"(grant of {sha(2)[:12]})" in body[5]


def test_markdown_cells_cannot_break_the_table_or_drive_the_terminal():
    table = markdown_table(("a", "b"), [("x|y", "\x1b[2J\nnext"), (None, datetime(2026, 1, 2, 3, 4, 5).astimezone())])
    assert "x\\|y" in table and "\\x1b[2J\\x0anext" in table
    assert "\x1b" not in table and len(table.splitlines()) == 4


def test_xlsx_is_escaped_bold_frozen_and_sized(history, tmp_path):
    from openpyxl import load_workbook

    store = Store.connect(history)
    try:  # a hostile address, as a directory might hold it: a spreadsheet must not run it
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE people SET email = '=hyperlink(\"x\")@consult.example' "
                                 "WHERE person_id = 'P-NIA'")
        store.revoke(person_email='=hyperlink("x")@consult.example', by_email="lan@nguyenfoods.example",
                     account_ids=["1000000002"])
    finally:
        store.dispose()
    out = tmp_path / "audit.xlsx"
    result = _run("audit", "--db", history, "--format", "xlsx", "-o", str(out))
    assert "7 audit rows written" in result.stderr
    book = load_workbook(out)
    sheet = book["Audit"]
    header = [c.value for c in sheet[1]]
    assert header[:10] == ["at (UTC)", *AUDIT_COLUMNS[1:]] and header[10] == "revoked grant's form_sha256"
    assert all(c.font.b for c in sheet[1]) and sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["H"].width >= 64  # the whole sha256 shows
    assert sheet.auto_filter.ref == "A1:K8"
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert [r[1] for r in rows] == [h[0] for h in HISTORY] + ["revoked"]
    assert isinstance(rows[0][0], datetime) and rows[0][0] == datetime(2026, 11, 23, 14, 1)
    assert rows[0][7] == sha(1) and rows[0][8] == "lan@nguyenfoods.example"
    assert rows[5][10] == sha(2) and rows[6][10] is None
    assert rows[6][4] == "'=hyperlink(\"x\")@consult.example"  # text, not a formula
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)
    about = {r[0].value: r[1].value for r in book["About"].iter_rows(min_row=2) if r[0].value != "note"}
    assert about["rows"] == 7 and about["database"].startswith(history.split(":")[0])


def test_xlsx_needs_a_file(history):
    assert "give -o PATH" in _run("audit", "--db", history, "--format", "xlsx", code=2).output
