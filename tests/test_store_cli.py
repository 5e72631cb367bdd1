"""The store's commands: db upgrade, directory load, grants export, audit, revoke (cli.md)."""

from __future__ import annotations

import csv
import io
import shutil

import pytest
from click.testing import CliRunner
from store_builders import ALEX, BIZ, DIRECTORY, LAN, RECEIVED, form_of, sha

from flows.cli import cli
from loaders.store import Store

AUDIT_HEADER = "at,action,account_id,person_id,email,old_level,new_level,form_sha256,requester_email,submitted_by"


@pytest.fixture
def run(sqlite_url, monkeypatch):
    """Run `delegation ...` with DELEGATION_DB_URL pointing at a fresh SQLite database."""
    monkeypatch.setenv("DELEGATION_DB_URL", sqlite_url)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, (result.output, result.stderr)
        return result

    return invoke


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["directory", "load"], ["grants", "export"], ["audit"], ["revoke"]]
)
def test_every_store_command_answers_help(run, command):
    assert "--db" in run(*command, "--help").output


def test_db_upgrade_creates_the_schema_once(run, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert "(was empty)" in run("db", "upgrade", "--db", url).output
    assert run("db", "upgrade", "--db", url).output.strip() == "schema at revision 0002"


def test_directory_load_prints_the_rows_per_table_and_is_idempotent(run):
    first = run("directory", "load", str(DIRECTORY)).output
    assert "customers: 3" in first and "accounts: 42" in first and "grants: 6" in first
    assert run("directory", "load", str(DIRECTORY)).output == first


def test_a_bad_row_exits_1_naming_file_line_and_field(run, tmp_path):
    folder = shutil.copytree(DIRECTORY, tmp_path / "d")
    with (folder / "roles.csv").open("a", encoding="utf-8") as f:
        f.write("C-RES,P-ALEX,primary_account_holder\n")
    result = run("directory", "load", str(folder), code=1)
    assert "roles.csv, line 6, field role" in result.stderr and "nothing changed" in result.stderr


def test_grants_export_writes_the_current_grants_with_text_made_safe(run, tmp_path, sqlite_url):
    folder = shutil.copytree(DIRECTORY, tmp_path / "d")
    with (folder / "people.csv").open("a", encoding="utf-8") as f:
        f.write("P-DASH,Dee,Ash,-dee@consult.example,415-555-0177\n")
    with (folder / "grants.csv").open("a", encoding="utf-8") as f:
        f.write("1000000004,P-DASH,Read Only,active\n")
    run("directory", "load", str(folder))
    store = Store.connect(sqlite_url)
    store.apply_form(form_of(LAN, ALEX, BIZ[:15]), sha(1), received_at=RECEIVED)
    store.dispose()
    out = tmp_path / "grants.csv"
    run("grants", "export", "-o", str(out))
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "account_id,person_id,email,access_level,status,form_sha256"
    rows = {(r["account_id"], r["person_id"]): r for r in rows_of(text)}
    assert rows[("1000000004", "P-DASH")]["email"] == "'-dee@consult.example"  # no formula
    assert rows[("1000000001", "P-MINH")]["form_sha256"] == ""  # from the directory
    assert rows[("1000000002", "P-ALEX")]["form_sha256"] == sha(1)
    assert run("grants", "export").output == text  # standard output by default


def test_audit_writes_the_trail_as_csv_oldest_first_with_its_filters(run, sqlite_url):
    run("directory", "load", str(DIRECTORY))
    store = Store.connect(sqlite_url)
    store.apply_form(form_of(LAN, ALEX, BIZ[:15]), sha(1), received_at=RECEIVED, submitted_by="S1")
    store.dispose()
    run("revoke", "--person", "alex@consult.example", "--account", "1000000002", "--by", "lan@nguyenfoods.example")
    run(
        "revoke",
        "--person",
        "alex@consult.example",
        "--account",
        "1000000004, 1000000005",
        "--by",
        "lan@nguyenfoods.example",
    )
    everything = run("audit").output
    assert everything.splitlines()[0] == AUDIT_HEADER
    rows = rows_of(everything)
    assert len(rows) == 18 and [r["action"] for r in rows[-3:]] == ["revoked"] * 3
    assert rows[-1]["requester_email"] == "lan@nguyenfoods.example"
    assert rows[0]["at"].endswith("Z") and rows[0]["submitted_by"] == "S1"
    assert [r["action"] for r in rows_of(run("audit", "--account", "1000000002").output)] == ["granted", "revoked"]
    assert len(rows_of(run("audit", "--form", sha(1)).output)) == 15
    assert len(rows_of(run("audit", "--submitter", "S1").output)) == 15
    assert rows_of(run("audit", "--person", "lone@elsewhere.example").output) == []


def test_revoke_by_customer_and_its_refusals(run):
    run("directory", "load", str(DIRECTORY))
    refused = run(
        "revoke", "--person", "alex@consult.example", "--customer", "C-BIZ", "--by", "minh@nguyenfoods.example", code=1
    )
    assert "REQUESTER_NOT_AUTHORIZED" in refused.stderr and "nothing removed" in refused.stderr
    done = run("revoke", "--person", "alex@consult.example", "--customer", "C-BIZ", "--by", "lan@nguyenfoods.example")
    assert "removed 2 grant(s)" in done.output and "1000000003 (High)" in done.output
    assert (
        "nothing to remove"
        in run(
            "revoke", "--person", "alex@consult.example", "--customer", "C-BIZ", "--by", "lan@nguyenfoods.example"
        ).output
    )
    run("revoke", "--person", "alex@consult.example", "--by", "lan@nguyenfoods.example", code=2)  # no target


def test_an_unreachable_database_is_a_clean_error(run):
    result = run("grants", "export", "--db", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none", code=1)
    assert "cannot open the database" in result.stderr and "secret" not in result.stderr
