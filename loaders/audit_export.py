"""The audit trail for people: a Markdown table for a terminal and a workbook for auditors in Excel.

Rows come from loaders.store.reads.audit_rows(..., grant_source=True): every row names the form
(the workbook's sha256) and the requester; a revoked row names who removed the access and, as
`grant_form_sha256`, the form that had set the grant it removed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from grants.outcome import iso
from loaders.exports import markdown_table, printable, write_xlsx
from loaders.store.reads import AUDIT_COLUMNS

SHORT = 12  # hex digits of a sha256 shown in a terminal (like a short git hash)

XLSX_COLUMNS = (*AUDIT_COLUMNS, "grant_form_sha256")
XLSX_TITLES = ("at (UTC)", *AUDIT_COLUMNS[1:], "revoked grant's form_sha256")


def _form_cell(row: dict) -> str:
    if row["action"] != "revoked":
        return (row["form_sha256"] or "")[:SHORT]
    source = row.get("grant_form_sha256")
    return f"(grant of {source[:SHORT]})" if source else "(grant of the directory)"


def audit_markdown(rows: list[dict], about: dict[str, str]) -> str:
    """A heading with the filters, the table, and a line on how to read the form column."""
    columns = ("at", "action", "account", "person", "email", "old", "new", "form", "requester", "submitted_by")
    table = markdown_table(
        columns,
        [
            (
                iso(r["at"]),
                r["action"],
                r["account_id"],
                r["person_id"],
                r["email"],
                r["old_level"],
                r["new_level"],
                _form_cell(r),
                r["requester_email"],
                r["submitted_by"],
            )
            for r in rows
        ],
    )
    filters = ", ".join(f"{k} {printable(v)}" for k, v in about.items() if k != "database") or "none"
    return "\n".join(
        [
            f"# Audit trail: {len(rows)} row(s), oldest first",
            "",
            f"Database: {printable(about.get('database', ''))}. Filters: {filters}.",
            "",
            table,
            "",
            f"form: the first {SHORT} hex digits of the workbook's sha256 (`delegation audit --format csv` has "
            "them whole). A revoked row's requester is who removed the access; its form column names the form "
            "whose grant it removed.",
        ]
    )


def write_audit_xlsx(path: Path, rows: list[dict], about: dict[str, str], *, now: datetime | None = None) -> None:
    """Sheet "Audit" (one row per audit row, XLSX_TITLES) and sheet "About" (what was asked, when)."""
    generated = now or datetime.now(UTC)
    about_rows = [
        ("generated_at (UTC)", generated),
        ("rows", len(rows)),
        *((k, v) for k, v in about.items()),
        ("note", "Times are UTC. Text that a spreadsheet could run as a formula starts with an apostrophe."),
        ("note", "A revoked row's requester_email is who removed the access; the last column names the form "
                 "that had set the grant it removed (empty: the grant came from the directory)."),
    ]
    write_xlsx(
        path,
        [
            ("Audit", XLSX_TITLES, [[r.get(c) for c in XLSX_COLUMNS] for r in rows]),
            ("About", ("what", "value"), about_rows),
        ],
    )
