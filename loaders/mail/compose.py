"""The emails of cli.md ("The outbox"), built with the standard library: text and HTML parts.

Composition is pure (no IO): the caller stores the bytes in its outbox row in the same transaction
as the form's end state, then a transport delivers them. Everything taken from a form is escaped in
HTML, kept on one line in text, and never reaches a header unsanitised.

The completed email lists up to 500 accounts three times, so its cost is in the tables and in the
email package. Tables whose every cell needs no escaping in any format (_plain_cells) are built with
one format each, and an HTML table has a row per line (short lines: 7bit, no quoted-printable
encoding of the whole part); the message is written (_Generator) by a faster equivalent of the
email package's own writer. Each gives the bytes the straightforward code gives:
tests/test_mail_compose.py holds them to it.
"""

from __future__ import annotations

import binascii
import csv
import hashlib
import html
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from itertools import chain
from typing import Any

from grants.errors import REQUESTER_IDENTITY_CODES, FormError
from grants.escape import safe_cell
from grants.outcome import Outcome, iso, sla_due

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
CSV_COLUMNS = ("account_id", "access_level", "action")
_SUBJECT_NAME_MAX = 80


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, each header class built once instead of on every lookup.

    HeaderRegistry makes a new class with type() whenever a header is set or counted (~20 µs, about
    40 times an email); the classes it makes are the same each time, so reusing them changes nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# CRLF line ends. Headers are not folded at 78: Python's folder moves a 70-77 character value whole
# onto a continuation line, and readers then see a Subject starting with a space (RFC 5322 allows
# lines up to 998; our headers are bounded far below that).
POLICY = policy.SMTP.clone(max_line_length=998, header_factory=_HeaderClasses())


def message_id_for(*parts: object) -> str:
    """A stable Message-ID '<hex@delegation.local>' made from the parts (same parts, same id)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f"<{digest}@delegation.local>"


def as_bytes(message: EmailMessage) -> bytes:
    """The message as RFC 5322 bytes with CRLF line ends: what a transport sends or stores.

    The same bytes as message.as_bytes(policy=POLICY), from a generator that checks its multipart
    boundaries faster (_Generator).
    """
    out = io.BytesIO()
    _Generator(out, mangle_from_=False, policy=POLICY).flatten(message, unixfrom=False)
    return out.getvalue()


_LINE_END = re.compile(r"\r\n|\r|\n")  # email.generator's NLCRE


class _Generator(BytesGenerator):
    """email's BytesGenerator, which first looks for a new boundary in the parts' text as a substring.

    The standard generator draws a random boundary for each multipart, then compiles a regular
    expression for it and scans all the parts' text for a line that is that boundary: ~1 ms for the
    completed email's two multiparts. A text without the boundary anywhere cannot have a line that is
    the boundary, so that case (all but always) is answered by a substring search; any other goes to
    the standard check. Same random draw, same boundary, same bytes.

    It also writes a payload in one piece where the standard one writes each line and each line end
    separately (~1,200 writes for the completed email); every line end, CRLF, CR or LF, still becomes
    the policy's.
    """

    def _write_lines(self, lines: str) -> None:
        if lines:
            self.write(lines.replace("\n", self._NL) if "\r" not in lines else _LINE_END.sub(self._NL, lines))

    @classmethod
    def _make_boundary(cls, text: bytes | str | None = None) -> str:
        boundary = super()._make_boundary()  # the random draw, unchecked
        if text is None:
            return boundary
        needle = "--" + boundary
        if (needle.encode("ascii") if isinstance(text, bytes) else needle) not in text:
            return boundary
        # As the standard check goes on: the first of boundary, boundary.0, boundary.1, ... that is
        # not a line of the text (with or without a closing "--").
        b, counter = boundary, 0
        while cls._compile_re("^--" + re.escape(b) + "(--)?$", re.MULTILINE).search(text):
            b, counter = f"{boundary}.{counter}", counter + 1
        return b


# --- a text and HTML email with a CSV attached, written directly -----------------------------------


@dataclass(frozen=True)
class CompletedEmail:
    """An email of _message's shape with a CSV attached (the completed email)."""

    subject: str
    to: str
    sender: str
    message_id: str
    date: datetime | None
    text: str
    html_body: str
    csv: bytes
    filename: str

    def message(self) -> EmailMessage:
        msg = _message(subject=self.subject, to=self.to, sender=self.sender, message_id=self.message_id,
                       date=self.date, text=self.text, html_body=self.html_body)
        msg.add_attachment(self.csv, maintype="text", subtype="csv", filename=self.filename)
        return msg

    def as_bytes(self) -> bytes:
        """as_bytes(self.message()): the same bytes, written directly in the usual case."""
        return self.written() or as_bytes(self.message())

    def written(self) -> bytes | None:
        """The bytes as_bytes(self.message()) gives, written directly; None outside the usual case.

        The usual case: every header a plain ASCII value the email package writes as it is given
        (no encoded word, no folding, addresses of the plainest form), and no line of a part over
        the policy's 998 characters (then the package picks 7bit or 8bit, and base64 for the CSV).
        The multipart boundaries are drawn as the package draws them, inner first; a boundary found
        in the text leaves the case to the package. tests/test_mail_compose.py holds the two to one
        answer byte for byte.
        """
        date = _date_header(self.date)
        subject, sender, to, message_id = (_one_line(v) for v in (self.subject, self.sender, self.to, self.message_id))
        if max(map(len, (subject, sender, to, message_id, self.filename))) > _HEADER_MAX or "=?" in subject:
            return None  # folded, or read as an encoded word
        if not (_PLAIN_SUBJECT.fullmatch(subject) and _PLAIN_ADDRESS.fullmatch(sender)
                and _PLAIN_ADDRESS.fullmatch(to) and _PLAIN_MESSAGE_ID.fullmatch(message_id)
                and _PLAIN_FILENAME.fullmatch(self.filename)):
            return None
        text = _text_part(self.text + "\n")
        html_part = _text_part(_html_document(self.html_body))
        if text is None or html_part is None:
            return None
        text_cte, text_body = text
        html_cte, html_body = html_part
        chunks = range(0, len(self.csv), _BASE64_CHUNK)
        csv = b"".join(binascii.b2a_base64(self.csv[i:i + _BASE64_CHUNK]) for i in chunks).replace(b"\n", b"\r\n")
        inner_parts = (
            b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: ' + text_cte + b"\r\n\r\n"
            + text_body,
            b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: ' + html_cte
            + b"\r\nMIME-Version: 1.0\r\n\r\n" + html_body,
        )
        b_inner = _Generator._make_boundary().encode()
        if any(b"--" + b_inner in part for part in inner_parts):
            return None
        alternative = _multipart_body(b_inner, inner_parts)
        attachment = (b"Content-Type: text/csv\r\nContent-Transfer-Encoding: base64\r\n"
                      b'Content-Disposition: attachment; filename="' + self.filename.encode() + b'"\r\n'
                      b"MIME-Version: 1.0\r\n\r\n" + csv)
        b_outer = _Generator._make_boundary().encode()
        mixed_parts = (
            b'Content-Type: multipart/alternative; boundary="' + b_inner + b'"\r\n\r\n' + alternative,
            attachment,
        )
        if any(b"--" + b_outer in part for part in mixed_parts):
            return None
        head = (f"Subject: {subject}\r\nFrom: {sender}\r\nTo: {to}\r\nMessage-ID: {message_id}\r\n"
                f"Date: {date}\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
                f'Content-Type: multipart/mixed; boundary="{b_outer.decode()}"\r\n\r\n').encode()
        return head + _multipart_body(b_outer, mixed_parts)


_BASE64_CHUNK = POLICY.max_line_length // 4 * 3  # what the email package puts on one base64 line
_HEADER_MAX = 900  # a header line stays under the policy's 998 characters, so is never folded
_PLAIN_SUBJECT = re.compile(r"[!-~](?:[!-~]| (?=[!-~]))*")  # printable ASCII, single spaces inside
_ADDR_SPEC = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_PLAIN_ADDRESS = re.compile(rf"{_ADDR_SPEC}|[A-Za-z0-9]+(?: [A-Za-z0-9]+)* <{_ADDR_SPEC}>")
_PLAIN_MESSAGE_ID = re.compile(rf"<{_ADDR_SPEC}>")
_PLAIN_FILENAME = re.compile(r"[A-Za-z0-9._-]+")


def _multipart_body(boundary: bytes, parts: Sequence[bytes]) -> bytes:
    """Each part after its boundary line; the line end before a boundary line belongs to it."""
    return b"--" + boundary + b"\r\n" + (b"\r\n--" + boundary + b"\r\n").join(parts) + b"\r\n--" + boundary + b"--\r\n"


def _text_part(body: str) -> tuple[bytes, bytes] | None:
    """(transfer encoding, body with CRLF line ends) as the email package writes a text part, when
    it picks 7bit or 8bit; None when a line is too long for either."""
    data = body.encode("utf-8", "surrogateescape")
    lines = data.splitlines()
    if any(len(line) > POLICY.max_line_length for line in lines):
        return None
    return (b"7bit" if data.isascii() else b"8bit"), b"\r\n".join(lines) + b"\r\n"


def _date_header(date: datetime | None) -> str:
    return format_datetime((date or datetime.now(UTC)).astimezone(UTC))


def _html_document(body: str) -> str:
    return "<!doctype html><html><head><meta charset='utf-8'></head><body>" + body + "</body></html>\n"


# --- the four emails ----------------------------------------------------------------------------


def compose_completed(outcome: Outcome, lines: Iterable[Any], **kwargs: Any) -> EmailMessage:
    """To the requester: the form is applied; the delegate, each account and level; a CSV."""
    return completed(outcome, lines, **kwargs).message()


def completed(outcome: Outcome, lines: Iterable[Any], *, to: str, message_id: str, sender: str,
              delegate_name: str | None = None, date: datetime | None = None) -> CompletedEmail:
    """The completed email (compose_completed's): `.as_bytes()` writes it without the email package
    where it can."""
    rows = [_line(x) for x in lines]
    plain = _plain_cells(rows)
    delegate = _one_line(outcome.delegate_email or "the delegate")
    who = f"{_one_line(delegate_name)} <{delegate}>" if delegate_name else delegate
    n = outcome.accounts or len(rows)
    counts = f"{outcome.grants_created} new, {outcome.grants_updated} changed, {outcome.grants_unchanged} unchanged"
    intro = [
        f"Your Delegate User Form {_form_name(outcome)} has been completed.",
        "",
        f"Delegate: {who}",
        f"Accounts: {n} ({counts})",
        f"Received: {iso(outcome.received_at)}",
        f"Completed: {iso(outcome.completed_at) or iso(date) or ''}",
        "",
        "You may now tell the delegate that they can use these accounts.",
        "The attached CSV lists every account with its access level.",
    ]
    table = _text_table(("Account ID", "Access level", "Action"), rows, plain)
    text = "\n".join(["Hello,", "", *intro, "", *table, "", *_footer(outcome)])
    body = (
        f"<p>Hello,</p><p>Your Delegate User Form {_h(_form_name(outcome))} has been completed.</p>"
        f"<ul><li>Delegate: <b>{_h(who)}</b></li>"
        f"<li>Accounts: {n} ({_h(counts)})</li>"
        f"<li>Received: {_h(iso(outcome.received_at))}</li></ul>"
        "<p>You may now tell the delegate that they can use these accounts. "
        "The attached CSV lists every account with its access level.</p>"
        + _html_table(("Account ID", "Access level", "Action"), rows, plain)
        + _html_footer(outcome)
    )
    return CompletedEmail(
        subject=f"Delegate User Form completed: {n} accounts for {delegate}",
        to=to,
        sender=sender,
        message_id=message_id,
        date=date or outcome.completed_at,
        text=text,
        html_body=body,
        csv=_accounts_csv(rows, plain).encode("utf-8"),
        filename=f"{_file_stem(outcome)}-accounts.csv",
    )


def compose_rejected(
    outcome: Outcome,
    *,
    to: str,
    message_id: str,
    sender: str,
    marked_workbook: bytes | None,
    date: datetime | None = None,
) -> EmailMessage:
    """To the requester: the form is rejected, every error listed, their marked workbook attached.

    Refuses a form whose requester did not match a login (spec: such a requester is told nothing;
    use compose_rejected_to_ops).
    """
    told_nothing = sorted({str(e.code) for e in outcome.errors} & REQUESTER_IDENTITY_CODES)
    if told_nothing:
        raise ValueError(f"the requester did not match a login ({', '.join(told_nothing)}): tell ops")
    errors = list(outcome.errors)
    intro = [
        f"Your Delegate User Form {_form_name(outcome)} was rejected: nothing in it was applied.",
        f"It has {len(errors)} error(s), all listed below"
        + (", and the attached copy of your workbook has the cells in error marked." if marked_workbook else "."),
        "Please correct every error and submit the form again.",
        "",
        f"Received: {iso(outcome.received_at)}",
    ]
    text = "\n".join(["Hello,", "", *intro, "", *_text_errors(errors), "", *_footer(outcome)])
    body = (
        f"<p>Hello,</p><p>Your Delegate User Form {_h(_form_name(outcome))} was <b>rejected</b>: "
        f"nothing in it was applied. It has {len(errors)} error(s), all listed below"
        + (", and the attached copy of your workbook has the cells in error marked." if marked_workbook else ".")
        + " Please correct every error and submit the form again.</p>"
        + _html_errors(errors)
        + _html_footer(outcome)
    )
    msg = _message(
        subject=f"Delegate User Form rejected: {len(errors)} errors to correct",
        to=to,
        sender=sender,
        message_id=message_id,
        date=date or outcome.completed_at,
        text=text,
        html_body=body,
    )
    if marked_workbook is not None:
        msg.add_attachment(
            marked_workbook,
            maintype=XLSX_TYPE[0],
            subtype=XLSX_TYPE[1],
            filename=f"{_file_stem(outcome)}-errors-marked.xlsx",
        )
    return msg


def compose_rejected_to_ops(
    outcome: Outcome,
    *,
    to: str,
    message_id: str,
    sender: str,
    date: datetime | None = None,
) -> EmailMessage:
    """To the operations mailbox: a rejection whose requester did not match a login.

    The address on the form gets nothing (spec), so ops are told why and given every error. The
    workbook is not attached: decrypted workbooks are written only into their requester's own email.
    """
    errors = list(outcome.errors)
    identity = sorted({str(e.code) for e in errors} & REQUESTER_IDENTITY_CODES) or ["(none)"]
    form_address = _one_line(outcome.requester_email or "(none)")
    why = [
        f"The Delegate User Form {_one_line(outcome.key)} was rejected, and its requester's details do not",
        f"match a login ({', '.join(identity)}). The address written on the form ({form_address})",
        "has been sent nothing, so that a form cannot be used to learn which accounts exist or",
        "who holds access to them. It is sent here instead, for a person to follow up.",
    ]
    facts = [
        f"File: {_one_line(outcome.key)}",
        f"Workbook sha256: {outcome.sha256 or '(unknown)'}",
        f"Requester on the form: {form_address}",
        f"Delegate on the form: {_one_line(outcome.delegate_email or '(none)')}",
        f"Submitted by: {_one_line(outcome.submitted_by or '(unsigned)')}",
        f"Received: {iso(outcome.received_at)}",
        f"SLA due: {iso(sla_due(outcome.received_at))}",
    ]
    return _ops_notice(
        subject=f"Delegate User Form rejected, requester not verified: {_subject_name(outcome)}",
        why=why, facts=facts,
        text_tail=["", f"{len(errors)} error(s):", *_text_errors(errors)],
        html_tail=f"<p>{len(errors)} error(s):</p>" + _html_errors(errors),
        to=to, sender=sender, message_id=message_id, date=date or outcome.completed_at,
    )


def compose_quarantined(
    outcome: Outcome,
    *,
    to: str,
    message_id: str,
    sender: str,
    quarantine_key: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """To the operations mailbox: a file that could not be opened as a form, and why."""
    errors = list(outcome.errors)
    codes = ", ".join(sorted({str(e.code) for e in errors})) or "UNKNOWN"
    facts = [
        f"File: {_one_line(outcome.key)}",
        f"Moved to: {_one_line(quarantine_key or 'quarantine/')}",
        f"Received: {iso(outcome.received_at)}",
        f"SLA due: {iso(sla_due(outcome.received_at))}",
    ]
    problems = [f"{e.code}: {_one_line(e.message)}" for e in errors] or ["(no detail recorded)"]
    why = (
        "A file dropped in the inbox could not be opened as a Delegate User Form. "
        "It has been quarantined and nobody else has been told. If it came from a customer, "
        "they are waiting for an answer within the SLA."
    )
    return _ops_notice(
        subject=f"Delegate User Form quarantined, {codes}: {_subject_name(outcome)}",
        why=[why], facts=facts,
        text_tail=["", *problems],
        html_tail="<table border='1' cellpadding='4' cellspacing='0'><tr><th>Code</th><th>Message</th></tr>"
        + "".join(f"<tr><td>{_h(e.code)}</td><td>{_h(e.message)}</td></tr>" for e in errors)
        + "</table>",
        to=to, sender=sender, message_id=message_id, date=date or outcome.completed_at,
    )


def compose_dead_letter(
    *,
    dead_message_id: str,
    kind: str,
    recipients: Sequence[str],
    error: str,
    to: str,
    message_id: str,
    sender: str,
    reference: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """To the operations mailbox: an email the mail server refused for good (dead-lettered).

    Names the email and the server's answer only; the refused email itself is not attached (it may
    carry a requester's workbook, which goes to nobody but them).
    """
    why = (
        "An email of the Delegate User Form pipeline was refused by the mail server for good and will "
        "not be retried. Its recipient has not been told; please follow up by another channel."
    )
    facts = [
        f"Email: {_one_line(kind)} (Message-ID {_one_line(dead_message_id)})",
        f"To: {_one_line(', '.join(recipients))}",
        f"Form: {_one_line(reference or '(none)')}",
        f"Server's answer: {_one_line(error)}",
    ]
    return _ops_notice(
        subject=f"Delegate User Form email undeliverable ({_one_line(kind)}) to {_one_line(', '.join(recipients))}",
        why=[why], facts=facts, to=to, sender=sender, message_id=message_id, date=date,
    )


def _ops_notice(*, subject: str, why: Sequence[str], facts: Sequence[str], text_tail: Sequence[str] = (),
                html_tail: str = "", to: str, sender: str, message_id: str, date: datetime | None) -> EmailMessage:
    """An operations notice: why (lines of one paragraph), a list of facts, then what follows."""
    return _message(
        subject=subject, to=to, sender=sender, message_id=message_id, date=date,
        text="\n".join([*why, "", *facts, *text_tail]),
        html_body=f"<p>{_h(' '.join(why))}</p><ul>" + "".join(f"<li>{_h(f)}</li>" for f in facts) + "</ul>"
        + html_tail,
    )


def accounts_csv(lines: Iterable[Any]) -> str:
    """The completed form's CSV: account_id,access_level,action, every cell formula-safe."""
    rows = [_line(x) for x in lines]
    return _accounts_csv(rows, _plain_cells(rows))


def _accounts_csv(rows: Sequence[tuple[str, str, str]], plain: tuple[str, ...] | None) -> str:
    if plain is not None:  # nothing to quote, nothing a spreadsheet would run: the cells as they are
        return ",".join(CSV_COLUMNS) + "\r\n" + ("%s,%s,%s\r\n" * len(rows)) % plain
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


# --- helpers ------------------------------------------------------------------------------------


def _line(x: Any) -> tuple[str, str, str]:
    """(account_id, level, action) from a tuple or an object with those attributes."""
    if hasattr(x, "account_id"):
        level = getattr(x, "level", None) or getattr(x, "access_level", "")
        return str(x.account_id), str(level), str(getattr(x, "action", ""))
    account_id, level, action = x
    return str(account_id), str(level), str(action)


# Cells made only of these characters are the same in every format: printable (text keeps them),
# nothing html.escape changes, nothing the CSV writer quotes, no first character that starts a
# formula (grants/escape.safe_cell). Account IDs, levels and actions are such words.
_PLAIN = re.compile(r"[0-9A-Za-z ._]*")


def _plain_cells(rows: Sequence[Sequence[str]]) -> tuple[str, ...] | None:
    """Every cell of rows of _line, row after row, when none needs escaping anywhere; else None."""
    cells = tuple(chain.from_iterable(rows))
    if len(cells) != 3 * len(rows):  # rows of _line have three cells; anything else goes the long way
        return None
    return cells if _PLAIN.fullmatch("".join(cells)) else None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(value: object) -> str:
    """Text for a text part or a header: control characters (newlines too) shown, not obeyed."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the usual case: every character _CONTROL matches is unprintable
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _h(value: object) -> str:
    return html.escape(_one_line(value), quote=True)


def _form_name(outcome: Outcome) -> str:
    return f"'{_one_line(outcome.key.rsplit('/', 1)[-1])}'"


def _subject_name(outcome: Outcome) -> str:
    name = _one_line(outcome.key.rsplit("/", 1)[-1])
    return name if len(name) <= _SUBJECT_NAME_MAX else name[: _SUBJECT_NAME_MAX - 1] + "…"


def _file_stem(outcome: Outcome) -> str:
    """A safe attachment name from the dropped file's name, without .sealed/.xlsx."""
    name = outcome.key.rsplit("/", 1)[-1]
    for ext in (".sealed", ".xlsx"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:60]
    return stem or (outcome.sha256 or "form")[:12]


def _footer(outcome: Outcome) -> list[str]:
    ref = (outcome.sha256 or "")[:12]
    return ["--", f"Reference: {ref}" if ref else "", "This message was sent automatically."]


def _html_footer(outcome: Outcome) -> str:
    ref = (outcome.sha256 or "")[:12]
    return f"<hr><p><small>Reference: {_h(ref)}. This message was sent automatically.</small></p>"


def _text_table(
    titles: Sequence[str], rows: Sequence[Sequence[str]], plain: tuple[str, ...] | None = None
) -> list[str]:
    """The lines of a text table; given `plain` (_plain_cells of three-cell rows), the rows as one block."""
    if plain is not None and len(titles) == 3:
        columns = [plain[0::3], plain[1::3], plain[2::3]]
        widths = [max(len(t), max(map(len, c), default=0)) for t, c in zip(titles, columns, strict=True)]
        fmt = "  ".join(f"%-{w}s" for w in widths)
        head = [fmt % tuple(titles), fmt % tuple("-" * w for w in widths)]
        return [*head, ("\n".join([fmt] * len(rows))) % plain] if rows else head
    rows = [[_one_line(c) for c in r] for r in rows]
    widths = [max([len(t), *(len(r[i]) for r in rows)]) for i, t in enumerate(titles)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*titles), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]


def _html_table(titles: Sequence[str], rows: Sequence[Sequence[object]], plain: tuple[str, ...] | None = None) -> str:
    """An HTML table, a row per line, every cell escaped; given `plain` (_plain_cells of three-cell
    rows), as they are."""
    head = "".join(f"<th>{_h(t)}</th>" for t in titles)
    if plain is not None and len(titles) == 3:
        body = ("\n<tr><td>%s</td><td>%s</td><td>%s</td></tr>" * len(rows)) % plain
    else:
        body = "".join("\n<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table border='1' cellpadding='4' cellspacing='0'><tr>{head}</tr>{body}\n</table>"


_ERROR_TITLES = ("Row", "Column", "Value", "Code", "Message")


def _error_cells(e: FormError) -> tuple[str, str, str, str, str]:
    return (
        "" if e.row is None else str(e.row),
        e.column or "",
        "" if e.value is None else repr(e.value) if e.value == "" else e.value,
        str(e.code),
        e.message,
    )


def _text_errors(errors: Sequence[FormError]) -> list[str]:
    out = []
    for i, e in enumerate(errors, 1):
        row, column, value, code, message = (_one_line(c) for c in _error_cells(e))
        where = ", ".join(p for p in (f"row {row}" if row else "", f"column {column}" if column else "") if p)
        out.append(f"{i}. [{code}] {where or 'the whole form'}" + (f", value {value}" if value else ""))
        out.append(f"   {message}")
    return out


def _html_errors(errors: Sequence[FormError]) -> str:
    return _html_table(_ERROR_TITLES, [_error_cells(e) for e in errors])


def _message(
    *,
    subject: str,
    to: str,
    sender: str,
    message_id: str,
    date: datetime | None,
    text: str,
    html_body: str,
) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = _one_line(subject)
    msg["From"] = _one_line(sender)
    msg["To"] = _one_line(to)
    msg["Message-ID"] = _one_line(message_id)
    msg["Date"] = _date_header(date)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    msg.set_content(text + "\n")
    msg.add_alternative(_html_document(html_body), subtype="html")
    return msg
