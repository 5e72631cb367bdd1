"""The emails of cli.md ("The outbox"): subjects, parts, attachments, escaping, every error told."""

from __future__ import annotations

import csv
import email
import html
import io
import random
import re
from collections import namedtuple
from datetime import UTC, datetime
from email import generator, policy
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grants.errors import Code, FormError
from grants.escape import safe_cell
from grants.outcome import Outcome, Status
from loaders.mail import (
    as_bytes,
    compose,
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


# --- the fast paths give the straightforward code's bytes --------------------------------------
#
# compose.py builds the completed email's tables in one piece when no cell needs escaping, encodes
# the text parts with its own copy of the email package's steps, and writes messages with a generator
# that checks boundaries faster. Each must give exactly the bytes of the straightforward code: the
# tables cell by cell below, and the email package's own set_content and generator.

TITLES = ("Account ID", "Access level", "Action")
PLAIN_ROWS = [
    (f"09{k:08d}", ("Full", "High", "Read Only")[k % 3], ("new", "changed", "unchanged")[k % 3]) for k in range(500)
]
ADVERSARIAL = [
    "",
    " ",
    "<script>alert('x')</script>",
    "a & b > c",
    "\"double\" and 'single'",
    "a\nb",
    "a\r\nb",
    "\rx",
    "\tx",
    "x\t",
    "\x00\x07\x1b\x7f\x85\x9f\u2028\u2029",
    "=1+1",
    '=HYPERLINK("http://x")',
    "+1",
    "-1",
    "@SUM(A1)",
    "a,b",
    "山田 太郎",
    "Nguyễn Thị Ánh",
    "\u00a0",
    "x" * 5000,
    "=" * 1200,
    "é" * 700,
    "trailing ",
    "0900000001",
    "Read Only",
]


def reference_text_table(titles, rows):
    """The text table cell by cell: each cell kept on one line, columns padded to the widest."""
    rows = [[compose._one_line(c) for c in r] for r in rows]
    widths = [max([len(t), *(len(r[i]) for r in rows)]) for i, t in enumerate(titles)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*titles), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)])


def reference_html_table(titles, rows):
    """The HTML table cell by cell: each cell kept on one line, then html.escape'd."""

    def cell(tag, value):
        return f"<{tag}>{html.escape(compose._one_line(value), quote=True)}</{tag}>"

    head = "".join(cell("th", t) for t in titles)
    body = "".join("\n<tr>" + "".join(cell("td", c) for c in r) + "</tr>" for r in rows)
    return f"<table border='1' cellpadding='4' cellspacing='0'><tr>{head}</tr>{body}\n</table>"


def reference_csv(rows):
    """The CSV cell by cell: csv.writer, every cell through grants.escape.safe_cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["account_id", "access_level", "action"])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def assert_tables_are_the_reference(lines_):
    rows = [compose._line(x) for x in lines_]
    plain = compose._plain_cells(rows)
    assert "\n".join(compose._text_table(TITLES, rows, plain)) == reference_text_table(TITLES, rows)
    assert compose._html_table(TITLES, rows, plain) == reference_html_table(TITLES, rows)
    assert compose.accounts_csv(lines_) == reference_csv(rows)
    return plain


def adversarial_row_sets():
    """Each adversarial value alone in each column among plain rows, then all of them together."""
    for value in ADVERSARIAL:
        for column in range(3):
            row = list(PLAIN_ROWS[1])
            row[column] = value
            yield [PLAIN_ROWS[0], tuple(row), PLAIN_ROWS[2]]
    yield list(zip(ADVERSARIAL, reversed(ADVERSARIAL), ADVERSARIAL[1:] + ADVERSARIAL[:1], strict=True))


def test_plain_account_rows_take_the_fast_path_and_give_the_cell_by_cell_tables():
    for lines_ in (PLAIN_ROWS, PLAIN_ROWS[:1], [], [Line(*t) for t in PLAIN_ROWS[:20]], [(1, "Full", "new")]):
        assert assert_tables_are_the_reference(lines_) is not None


def test_any_cell_that_needs_escaping_sends_the_whole_table_the_cell_by_cell_way():
    for lines_ in adversarial_row_sets():
        plain = assert_tables_are_the_reference(lines_)
        needs_escaping = any(not re.fullmatch(r"[0-9A-Za-z ._]*", c) for row in lines_ for c in row)
        assert (plain is None) == needs_escaping, lines_


EVERY_CHARACTER = [chr(c) for c in range(0x250)] + ["\u2028", "\u2029", "\u200b", "\ufeff", "\U0001f600", "\udc80"]


def test_every_character_anywhere_in_a_cell_gives_the_cell_by_cell_tables():
    for ch in EVERY_CHARACTER:
        plain = assert_tables_are_the_reference([(ch, "a" + ch, ch + "a"), ("0900000001", "Full", f"x{ch}y")])
        assert (plain is None) == (re.fullmatch(r"[0-9A-Za-z ._]", ch) is None), repr(ch)


cells = st.one_of(
    st.text(alphabet="0123456789AZaz ._", max_size=12),
    st.text(max_size=12),
    st.sampled_from(ADVERSARIAL),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(cells, cells, cells), max_size=12))
def test_tables_of_any_cells_are_the_cell_by_cell_tables(lines_):
    assert_tables_are_the_reference(lines_)


@pytest.fixture
def draws():
    """Seeds random (the generator draws boundaries from it) and restores its state afterwards."""
    state = random.getstate()

    def seeded(seed, make):
        random.seed(seed)
        return make()

    yield seeded
    random.setstate(state)


def every_email(rows, value):
    """Each email, composed afresh on each call (serialising sets a message's boundaries)."""
    o = outcome(
        Status.APPLIED,
        key=f"inbox/{value}.sealed",
        delegate_email=value or None,
        requester_email=value,
        accounts=len(rows),
        grants_created=len(rows),
        errors=[FormError(Code.NAME_INVALID, f"bad {value}", row=3, column="Delegate First Name", value=value)],
    )
    common = dict(message_id="<m@x>", sender=SENDER)
    return {
        "completed": lambda: compose_completed(o, rows, to="r@x.example", delegate_name=value, **common),
        "rejected": lambda: compose_rejected(o, to="r@x.example", marked_workbook=XLSX * 200, **common),
        "rejected-to-ops": lambda: compose_rejected_to_ops(o, to="ops@x.example", **common),
        "quarantined": lambda: compose_quarantined(o, to="ops@x.example", **common),
    }


def straightforward_bytes(monkeypatch, make):
    """The email as the straightforward code writes it: tables cell by cell, the email package's own
    header registry and generator."""
    stock = policy.SMTP.clone(max_line_length=998)
    with monkeypatch.context() as m:
        m.setattr(compose, "_plain_cells", lambda rows: None)
        m.setattr(compose, "POLICY", stock)
        return make().as_bytes(policy=stock)


@pytest.mark.parametrize("value", ["", "Dee Delegate", *ADVERSARIAL[2:]], ids=repr)
@pytest.mark.parametrize("kind", ["completed", "rejected", "rejected-to-ops", "quarantined"])
def test_every_email_is_byte_for_byte_the_straightforward_codes(kind, value, draws, monkeypatch):
    rows = PLAIN_ROWS if value == "Dee Delegate" else [*PLAIN_ROWS[:40], (value, value, value)]
    make = every_email(rows, value)[kind]
    ours = draws(7, lambda: as_bytes(make()))
    theirs = draws(7, lambda: straightforward_bytes(monkeypatch, make))
    assert ours == theirs


def test_the_header_registry_gives_the_standard_header_classes():
    stock = HeaderRegistry()
    names = ["Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"]
    names += ["Content-Transfer-Encoding", "Content-Disposition", "Bcc", "X-Anything"]
    for name in names + [n.lower() for n in names] + [n.upper() for n in names]:
        made = compose.POLICY.header_factory[name]
        assert made.__bases__ == stock[name].__bases__, name
        assert made is compose.POLICY.header_factory[name.swapcase()]  # made once per header name


@pytest.mark.parametrize("to", ["r@x.example", "山田 太郎 <r@x.example>", '"Dee, D." <d@x.example>, e@x.example'])
def test_addresses_are_written_as_the_straightforward_code_writes_them(to, draws, monkeypatch):
    def make():
        o = outcome(Status.APPLIED, accounts=20)
        return compose_completed(o, lines(), to=to, message_id="<m@x>", sender=f"Délégation <{to.split('<')[-1]}")

    assert draws(5, lambda: as_bytes(make())) == draws(5, lambda: straightforward_bytes(monkeypatch, make))


@pytest.mark.parametrize(
    "payload", ["", "a", "a\n", "a\r\nb\rc\nd", "\r", "\n\n", "x\r\n\r\n", "no end", "\udc80\r\nx"], ids=repr
)
def test_payload_lines_are_written_as_the_email_package_writes_them(payload, draws):
    def make():
        msg = EmailMessage(policy=compose.POLICY)
        msg.set_content("text\n")
        msg.add_attachment(b"x", maintype="application", subtype="octet-stream")
        msg.preamble, msg.epilogue = payload, payload
        for part in msg.iter_parts():
            part.set_payload(payload)
        return msg

    assert draws(3, lambda: as_bytes(make())) == draws(3, lambda: make().as_bytes(policy=compose.POLICY))


def test_a_boundary_found_in_the_text_is_checked_and_drawn_again_as_the_email_package_does(draws):
    boundary = draws(11, generator.Generator._make_boundary)
    for text, chosen in [
        (f"--{boundary}\n--{boundary}.0--\nsee --{boundary}.1\n", f"{boundary}.1"),
        (f"mentions --{boundary}, not as a line\n", boundary),
        ("nothing like it\n", boundary),
    ]:
        ours = draws(11, lambda: compose._Generator._make_boundary(text.encode()))  # noqa: B023 - called at once
        theirs = draws(11, lambda: generator.BytesGenerator._make_boundary(text.encode()))  # noqa: B023
        assert ours == theirs == chosen

        def make(text=text):
            msg = EmailMessage(policy=compose.POLICY)
            msg.set_content(text)
            msg.add_alternative("<p>x</p>", subtype="html")
            return msg

        assert draws(11, lambda: as_bytes(make())) == draws(11, lambda: make().as_bytes(policy=compose.POLICY))


# --- the completed email written directly (compose.completed(...).as_bytes()) -------------------


def completed_both_ways(monkeypatch, draws, o, rows, **kw):
    """(completed(...).as_bytes(), the straightforward code's bytes), boundaries drawn from the same seed; for
    input the email package cannot write (e.g. the address '. <r@x>'), the type of what it raised."""
    kw = {"to": "r@x.example", "message_id": "<m@x.example>", "sender": SENDER, **kw}

    def outcome_of(make):
        try:
            return draws(7, make)
        except Exception as exc:  # noqa: BLE001 - compared: both ways must fail alike
            return type(exc)

    ours = outcome_of(lambda: compose.completed(o, rows, **kw).as_bytes())
    theirs = outcome_of(lambda: straightforward_bytes(monkeypatch, lambda: compose_completed(o, rows, **kw)))
    return ours, theirs


WHERE = {
    "delegate name": lambda v: ({}, {"delegate_name": v}),
    "delegate email": lambda v: ({"delegate_email": v or None}, {}),
    "file name": lambda v: ({"key": f"inbox/{v}.xlsx.sealed"}, {}),
    "requester address": lambda v: ({}, {"to": v or "r@x.example"}),
    "sender": lambda v: ({}, {"sender": v or SENDER}),
    "a table cell": lambda v: ({}, {}),
}


@pytest.mark.parametrize("value", ["", "Dee Delegate", "山田 花子", "x" * 895, "x" * 990, "=?utf-8?q?x?=",
                                   "a  b", " a", "a ", "Dee <d@x.example>", *ADVERSARIAL[2:]], ids=repr)
@pytest.mark.parametrize("where", list(WHERE))
def test_the_completed_email_written_directly_is_the_email_packages_byte_for_byte(where, value, draws, monkeypatch):
    fields, kw = WHERE[where](value)
    rows = [*PLAIN_ROWS, (value, value, value)] if where == "a table cell" else PLAIN_ROWS
    o = outcome(Status.APPLIED, accounts=len(rows), grants_created=len(rows), **fields)
    ours, theirs = completed_both_ways(monkeypatch, draws, o, rows, delegate_name=kw.pop("delegate_name", "Dee"), **kw)
    assert ours == theirs


def test_a_usual_completed_email_is_written_without_the_email_package(monkeypatch, draws):
    monkeypatch.setattr(compose.CompletedEmail, "message", lambda self: pytest.fail("the email package was used"))
    o = outcome(Status.APPLIED, accounts=500, grants_created=500)
    rows = [(f"{n:010d}", "High", "granted") for n in range(500)]
    for name in ("Dee Delegate", "山田 花子", "Nguyễn Văn An", None):
        written = compose.completed(o, rows, to="r@x.example", message_id="<m@x.example>", sender=SENDER,
                                    delegate_name=name).as_bytes()
        assert written.startswith(b"Subject: Delegate User Form completed: 500 accounts for dee@acme.example\r\n")


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=30), address=st.text(max_size=30), file=st.text(max_size=30),
       rows=st.lists(st.tuples(cells, cells, cells), max_size=4))
def test_any_completed_email_written_directly_is_the_email_packages(name, address, file, rows, draws, monkeypatch):
    o = outcome(Status.APPLIED, key=f"inbox/{file}", delegate_email=address or None, accounts=len(rows) or 1)
    ours, theirs = completed_both_ways(monkeypatch, draws, o, [*PLAIN_ROWS[:3], *rows], delegate_name=name,
                                       to=f"{address} <r@x.example>", sender=f"{name} <s@x.example>")
    assert ours == theirs
