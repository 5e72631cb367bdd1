"""The emails of cli.md ("The outbox"): subjects, parts, attachments, escaping, every error told."""

from __future__ import annotations

import csv
import email
import html
import io
import re
from collections import namedtuple
from datetime import UTC, datetime
from email import policy

import pytest

from grants.errors import Code, FormError
from grants.outcome import Outcome, Status
from loaders.mail import (
    as_bytes,
    compose_completed,
    compose_quarantined,
    compose_rejected,
    compose_rejected_to_ops,
    message_id_for,
)

RECEIVED = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
COMPLETED = datetime(2026, 11, 3, 9, 31, tzinfo=UTC)
SENDER = "Delegation <delegation@utility.example>"
HOSTILE = "<script>alert('x')</script>"
XLSX = b"PK\x03\x04 pretend this is a marked workbook"

Line = namedtuple("Line", "account_id level action")


def outcome(status: Status, **kw) -> Outcome:
    base = dict(
        key="inbox/acme-2026-11.xlsx.sealed",
        status=status,
        received_at=RECEIVED,
        completed_at=COMPLETED,
        sha256="ab" * 32,
        requester_email="req@acme.example",
        delegate_email="dee@acme.example",
    )
    return Outcome(**{**base, **kw})


def lines(n: int = 20) -> list[tuple[str, str, str]]:
    return [(f"{n:010d}", "Read Only" if n % 2 else "Full", "granted") for n in range(1, n + 1)]


def parts(msg) -> dict[str, str]:
    """The text and HTML bodies of a message, re-read from its bytes as a mail client would."""
    parsed = email.message_from_bytes(as_bytes(msg), policy=policy.default)
    out = {}
    for part in parsed.walk():
        if part.get_content_type() in ("text/plain", "text/html") and not part.get_filename():
            out[part.get_content_type()] = part.get_content()
    return out


def shown(text: str, ctype: str) -> str:
    return html.escape(text) if ctype == "text/html" else text


def attachments(msg) -> dict[str, tuple[str, bytes]]:
    parsed = email.message_from_bytes(as_bytes(msg), policy=policy.default)
    return {a.get_filename(): (a.get_content_type(), a.get_payload(decode=True)) for a in parsed.iter_attachments()}


ERRORS = [
    FormError(Code.CELL_BLANK, "Delegate Email is required.", row=5, column="Delegate Email", value=""),
    FormError(
        Code.ACCOUNT_ID_INVALID, "Account ID 12345 lost its leading zeros.", row=7, column="Account ID", value="12345"
    ),
    FormError(Code.DATA_OUTSIDE_FORM, "Only columns A-K may hold data.", row=9, column="M", value="stray"),
    FormError(Code.TOO_FEW_ACCOUNTS, "The form names 3 accounts; at least 15 are needed."),
    FormError(Code.ACCOUNT_UNKNOWN, "No account 0000000042.", row=12, column="Account ID", value="0000000042"),
]


# --- Message-IDs ------------------------------------------------------------------------------


def test_a_message_id_is_stable_for_the_same_parts_and_differs_for_others():
    a = message_id_for("ab" * 32, "completed")
    assert a == message_id_for("ab" * 32, "completed")
    assert a != message_id_for("ab" * 32, "rejected")
    assert a != message_id_for("ab" * 32 + "completed")  # parts are kept apart
    assert re.fullmatch(r"<[0-9a-f]{32}@delegation\.local>", a)


@pytest.mark.parametrize(
    "compose",
    [
        lambda o, mid: compose_completed(o, lines(), to="req@acme.example", message_id=mid, sender=SENDER),
        lambda o, mid: compose_rejected(o, to="req@acme.example", message_id=mid, sender=SENDER, marked_workbook=None),
        lambda o, mid: compose_rejected_to_ops(o, to="ops@utility.example", message_id=mid, sender=SENDER),
        lambda o, mid: compose_quarantined(o, to="ops@utility.example", message_id=mid, sender=SENDER),
    ],
    ids=["completed", "rejected", "rejected-to-ops", "quarantined"],
)
def test_every_email_carries_the_given_message_id_addresses_and_both_parts(compose):
    mid = message_id_for("x", "y")
    msg = compose(outcome(Status.REJECTED, errors=ERRORS[:2]), mid)
    assert msg["Message-ID"] == mid
    assert msg["From"] == SENDER
    assert msg["Auto-Submitted"] == "auto-generated"
    assert email.utils.parsedate_to_datetime(msg["Date"]) == COMPLETED
    assert set(parts(msg)) == {"text/plain", "text/html"}
    assert re.search(rb"(?<!\r)\n", as_bytes(msg)) is None  # CRLF line ends only, as on the wire
    reread = email.message_from_bytes(as_bytes(msg), policy=policy.default)
    assert reread["Subject"] == msg["Subject"]  # no header folded into a leading space


# --- completed --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [tuple, lambda t: Line(*t)], ids=["tuples", "objects"])
def test_the_completed_email_names_the_delegate_the_accounts_and_what_to_do_next(shape):
    o = outcome(Status.APPLIED, accounts=20, grants_created=18, grants_updated=1, grants_unchanged=1)
    msg = compose_completed(
        o,
        [shape(t) for t in lines()],
        to="req@acme.example",
        message_id="<m@x>",
        sender=SENDER,
        delegate_name="Dee Delegate",
    )
    assert "completed" in msg["Subject"].lower()
    assert msg["To"] == "req@acme.example"
    for body in parts(msg).values():
        assert "dee@acme.example" in body and "Dee Delegate" in body
        assert "20" in body and "18 new, 1 changed, 1 unchanged" in body
        assert "tell the delegate" in body
        assert "0000000001" in body and "0000000020" in body  # every account, with its level


def test_the_completed_email_attaches_the_accounts_as_csv():
    msg = compose_completed(
        outcome(Status.APPLIED, accounts=20), lines(), to="r@x.example", message_id="<m@x>", sender=SENDER
    )
    ((name, (ctype, data)),) = attachments(msg).items()
    assert ctype == "text/csv" and name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["account_id", "access_level", "action"]
    assert rows[1:] == [list(t) for t in lines()]


@pytest.mark.parametrize("evil", ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_could_start_a_formula_are_escaped(evil):
    msg = compose_completed(
        outcome(Status.APPLIED), [("0000000001", evil, evil)], to="r@x.example", message_id="<m@x>", sender=SENDER
    )
    ((_, data),) = attachments(msg).values()
    row = list(csv.reader(io.StringIO(data.decode(), newline="")))[1]
    assert row == ["0000000001", "'" + evil, "'" + evil]


# --- rejected ---------------------------------------------------------------------------------


def test_the_rejected_email_lists_every_error_with_row_column_value_code_and_message():
    msg = compose_rejected(
        outcome(Status.REJECTED, errors=ERRORS),
        to="req@acme.example",
        message_id="<m@x>",
        sender=SENDER,
        marked_workbook=XLSX,
    )
    assert "rejected" in msg["Subject"].lower()
    bodies = parts(msg)
    for e in ERRORS:
        for body in bodies.values():
            assert str(e.code) in body
            assert e.message in body
            if e.row is not None:
                assert str(e.row) in body
            if e.column:
                assert e.column in body
            if e.value:
                assert e.value in body
    assert bodies["text/html"].count("<tr>") == len(ERRORS) + 1  # a table: titles + one row each
    assert f"{len(ERRORS)} error" in bodies["text/plain"]


def test_the_rejected_email_attaches_the_marked_workbook_as_xlsx():
    msg = compose_rejected(
        outcome(Status.REJECTED, errors=ERRORS),
        to="r@x.example",
        message_id="<m@x>",
        sender=SENDER,
        marked_workbook=XLSX,
    )
    ((name, (ctype, data)),) = attachments(msg).items()
    assert name == "acme-2026-11-errors-marked.xlsx"
    assert ctype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert data == XLSX


def test_without_a_marked_workbook_the_rejected_email_has_no_attachment():
    msg = compose_rejected(
        outcome(Status.REJECTED, errors=ERRORS),
        to="r@x.example",
        message_id="<m@x>",
        sender=SENDER,
        marked_workbook=None,
    )
    assert attachments(msg) == {}


@pytest.mark.parametrize("code", [Code.REQUESTER_UNKNOWN, Code.REQUESTER_MISMATCH])
def test_a_requester_who_did_not_match_a_login_is_never_sent_the_rejection(code):
    o = outcome(Status.REJECTED, errors=[*ERRORS, FormError(code, "not a login")])
    with pytest.raises(ValueError, match=str(code)):
        compose_rejected(o, to="req@acme.example", message_id="<m@x>", sender=SENDER, marked_workbook=XLSX)


@pytest.mark.parametrize("code", [Code.REQUESTER_UNKNOWN, Code.REQUESTER_MISMATCH])
def test_the_rejection_goes_to_ops_saying_why_with_every_error_and_no_workbook(code):
    errors = [*ERRORS, FormError(code, "The requester's details do not match a login.")]
    msg = compose_rejected_to_ops(
        outcome(Status.REJECTED, errors=errors), to="ops@utility.example", message_id="<m@x>", sender=SENDER
    )
    assert "rejected" in msg["Subject"].lower()
    assert msg["To"] == "ops@utility.example"
    assert attachments(msg) == {}  # decrypted workbooks go only to their own requester
    for ctype, body in parts(msg).items():
        assert str(code) in body
        assert "req@acme.example" in body and "sent nothing" in body  # why it came here
        assert "inbox/acme-2026-11.xlsx.sealed" in body
        for e in errors:
            assert str(e.code) in body
            assert shown(e.message, ctype) in body


# --- quarantined ------------------------------------------------------------------------------


def test_the_quarantine_email_tells_ops_the_file_the_code_the_message_and_the_sla():
    error = FormError(Code.DECRYPT_FAILED, "unknown key id 7f3a")
    msg = compose_quarantined(
        outcome(Status.QUARANTINED, sha256=None, errors=[error]),
        to="ops@utility.example",
        message_id="<q@x>",
        sender=SENDER,
        quarantine_key="quarantine/acme-2026-11.xlsx.sealed",
    )
    assert "quarantined" in msg["Subject"].lower() and "DECRYPT_FAILED" in msg["Subject"]
    assert msg["To"] == "ops@utility.example"
    for body in parts(msg).values():
        for fact in (
            "inbox/acme-2026-11.xlsx.sealed",
            "quarantine/acme-2026-11.xlsx.sealed",
            "DECRYPT_FAILED",
            "unknown key id 7f3a",
            "2026-11-03T09:30:00Z",  # received
            "2026-11-18T09:30:00Z",  # SLA due: 15 days later
        ):
            assert fact in body, fact


# --- hostile content --------------------------------------------------------------------------


def hostile_emails():
    o = outcome(
        Status.REJECTED,
        key=f"inbox/{HOSTILE}.sealed",
        delegate_email=HOSTILE,
        requester_email=HOSTILE,
        errors=[
            FormError(Code.NAME_INVALID, f"bad name {HOSTILE}", row=3, column="Delegate First Name", value=HOSTILE)
        ],
    )
    common = dict(to="r@x.example", message_id="<m@x>", sender=SENDER)
    return {
        "completed": compose_completed(o, [(HOSTILE, HOSTILE, HOSTILE)], delegate_name=HOSTILE, **common),
        "rejected": compose_rejected(o, marked_workbook=None, **common),
        "rejected-to-ops": compose_rejected_to_ops(o, **common),
        "quarantined": compose_quarantined(o, **common),
    }


@pytest.mark.parametrize("kind", ["completed", "rejected", "rejected-to-ops", "quarantined"])
def test_everything_from_the_form_is_html_escaped(kind):
    html_body = parts(hostile_emails()[kind])["text/html"]
    assert "<script>" not in html_body
    assert "&lt;script&gt;" in html_body


@pytest.mark.parametrize("kind", ["completed", "rejected", "rejected-to-ops", "quarantined"])
def test_a_newline_in_form_data_cannot_add_a_header(kind):
    o = outcome(
        Status.QUARANTINED,
        key="inbox/x\r\nBcc: victim@evil.example\r\n.sealed",
        delegate_email="d@x\nBcc: victim@evil.example",
        errors=[FormError(Code.NOT_XLSX, "x\r\nBcc: victim@evil.example")],
    )
    common = dict(to="r@x.example", message_id="<m@x>", sender=SENDER)
    msg = {
        "completed": lambda: compose_completed(o, lines(1), **common),
        "rejected": lambda: compose_rejected(o, marked_workbook=None, **common),
        "rejected-to-ops": lambda: compose_rejected_to_ops(o, **common),
        "quarantined": lambda: compose_quarantined(o, **common),
    }[kind]()
    parsed = email.message_from_bytes(as_bytes(msg), policy=policy.default)
    assert parsed["Bcc"] is None
    assert all("victim" not in line for line in parts(msg)["text/plain"].splitlines() if line.startswith("Bcc"))


def test_an_attachment_name_is_made_safe_from_the_dropped_file_name():
    o = outcome(Status.REJECTED, key='inbox/../"evil"; name=x.xlsx.sealed', errors=ERRORS[:1])
    msg = compose_rejected(o, to="r@x.example", message_id="<m@x>", sender=SENDER, marked_workbook=XLSX)
    (name,) = attachments(msg)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)


def test_names_in_any_script_survive_the_trip_through_bytes():
    name = "山田 太郎 / Nguyễn Thị Ánh"
    msg = compose_completed(
        outcome(Status.APPLIED), lines(15), to="r@x.example", message_id="<m@x>", sender=SENDER, delegate_name=name
    )
    assert max(len(line) for line in as_bytes(msg).splitlines()) <= 998  # RFC 5322 line limit
    for body in parts(msg).values():
        assert name in body
