"""The emails of cli.md ("The outbox"), built with the standard library: text and HTML parts.

Composition is pure (no IO): the caller stores the bytes in its outbox row in the same transaction
as the form's end state, then a transport delivers them. Everything taken from a form is escaped in
HTML, kept on one line in text, and never reaches a header unsanitised.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from grants.errors import REQUESTER_IDENTITY_CODES, FormError
from grants.escape import safe_cell
from grants.outcome import Outcome, iso, sla_due

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
CSV_COLUMNS = ("account_id", "access_level", "action")
_SUBJECT_NAME_MAX = 80
# CRLF line ends. Headers are not folded at 78: Python's folder moves a 70-77 character value whole
# onto a continuation line, and readers then see a Subject starting with a space (RFC 5322 allows
# lines up to 998; our headers are bounded far below that).
POLICY = policy.SMTP.clone(max_line_length=998)


def message_id_for(*parts: object) -> str:
    """A stable Message-ID '<hex@delegation.local>' made from the parts (same parts, same id)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f"<{digest}@delegation.local>"


def as_bytes(message: EmailMessage) -> bytes:
    """The message as RFC 5322 bytes with CRLF line ends: what a transport sends or stores."""
    return message.as_bytes(policy=POLICY)


# --- the four emails ----------------------------------------------------------------------------


def compose_completed(
    outcome: Outcome,
    lines: Iterable[Any],
    *,
    to: str,
    message_id: str,
    sender: str,
    delegate_name: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """To the requester: the form is applied; the delegate, each account and level; a CSV."""
    rows = [_line(x) for x in lines]
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
    table = _text_table(("Account ID", "Access level", "Action"), rows)
    text = "\n".join(["Hello,", "", *intro, "", *table, "", *_footer(outcome)])
    body = (
        f"<p>Hello,</p><p>Your Delegate User Form {_h(_form_name(outcome))} has been completed.</p>"
        f"<ul><li>Delegate: <b>{_h(who)}</b></li>"
        f"<li>Accounts: {n} ({_h(counts)})</li>"
        f"<li>Received: {_h(iso(outcome.received_at))}</li></ul>"
        "<p>You may now tell the delegate that they can use these accounts. "
        "The attached CSV lists every account with its access level.</p>"
        + _html_table(("Account ID", "Access level", "Action"), rows)
        + _html_footer(outcome)
    )
    msg = _message(
        subject=f"Delegate User Form completed: {n} accounts for {delegate}",
        to=to,
        sender=sender,
        message_id=message_id,
        date=date or outcome.completed_at,
        text=text,
        html_body=body,
    )
    msg.add_attachment(
        accounts_csv(rows).encode("utf-8"),
        maintype="text",
        subtype="csv",
        filename=f"{_file_stem(outcome)}-accounts.csv",
    )
    return msg


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
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in lines:
        writer.writerow([safe_cell(v) for v in _line(row)])
    return out.getvalue()


# --- helpers ------------------------------------------------------------------------------------


def _line(x: Any) -> tuple[str, str, str]:
    """(account_id, level, action) from a tuple or an object with those attributes."""
    if hasattr(x, "account_id"):
        level = getattr(x, "level", None) or getattr(x, "access_level", "")
        return str(x.account_id), str(level), str(getattr(x, "action", ""))
    account_id, level, action = x
    return str(account_id), str(level), str(action)


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


def _text_table(titles: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    rows = [[_one_line(c) for c in r] for r in rows]
    widths = [max([len(t), *(len(r[i]) for r in rows)]) for i, t in enumerate(titles)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*titles), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]


def _html_table(titles: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_h(t)}</th>" for t in titles)
    body = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table border='1' cellpadding='4' cellspacing='0'><tr>{head}</tr>{body}</table>"


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
    msg["Date"] = format_datetime((date or datetime.now(UTC)).astimezone(UTC))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    msg.set_content(text + "\n")
    msg.add_alternative(
        "<!doctype html><html><head><meta charset='utf-8'></head><body>" + html_body + "</body></html>\n",
        subtype="html",
    )
    return msg
