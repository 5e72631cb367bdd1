"""The SLA notice to the operations mailbox: a form is at risk of missing, or has missed, its due time.

Pure like the other emails (compose.py, whose header and body helpers it shares): the caller queues
the bytes in the outbox, and the transport delivers them once.
"""

from __future__ import annotations

from datetime import datetime

from grants.outcome import SLA_DAYS, iso
from grants.sla import Entry, Threshold
from loaders.mail.compose import _h, _message, _one_line, message_id_for

KIND = {Threshold.AT_RISK: "sla-at-risk", Threshold.BREACHED: "sla-breached"}


def sla_message_id(entry: Entry, threshold: Threshold) -> str:
    """One Message-ID per dropped file and threshold: the outbox's primary key makes it one email."""
    return message_id_for("sla-notice", entry.identity(), str(threshold))


def compose_sla_notice(
    entry: Entry, threshold: Threshold, *, now: datetime, at_risk_days: float, to: str, sender: str
):
    """To the operations mailbox: which file, received and due when, how long it has waited, what next."""
    name = _one_line(entry.key.rsplit("/", 1)[-1])
    short = name if len(name) <= 80 else name[:79] + "…"
    age = entry.age_days(now)
    if threshold is Threshold.AT_RISK:
        subject = f"Delegate User Form at risk of missing its SLA: {short}"
        why = (
            f"This form has waited {age:.1f} days, more than the {at_risk_days:g}-day warning threshold, "
            f"and must be completed within {SLA_DAYS} days of receipt."
        )
    elif entry.finished:
        subject = f"Delegate User Form completed after its SLA: {short}"
        why = f"This form was completed {age:.1f} days after receipt, past the {SLA_DAYS}-day promise."
    else:
        subject = f"Delegate User Form SLA breached: {short}"
        why = f"This form has waited {age:.1f} days and is past its {SLA_DAYS}-day due time."
    facts = [
        ("File", entry.key),
        ("Received", iso(entry.received_at)),
        ("Due", iso(entry.sla_due)),
        ("Completed", iso(entry.completed_at) or "not yet"),
        ("State", entry.status if entry.submission_id is not None else "waiting in the inbox, not claimed"),
        ("Attempts", str(entry.attempts)),
        ("Form sha256", entry.form_sha256 or "unknown (not opened yet)"),
        ("Requester", entry.requester_email or "unknown"),
    ]
    todo = (
        "Check the process-inbox runs (Prefect UI) and the worker's logs for this file; "
        "`delegation sla` lists every pending form."
    )
    text = "\n".join([why, "", *(f"{k}: {_one_line(v)}" for k, v in facts), "", todo])
    body = (
        f"<p>{_h(why)}</p><table border='1' cellpadding='4' cellspacing='0'>"
        + "".join(f"<tr><th align='left'>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in facts)
        + f"</table><p>{_h(todo)}</p>"
    )
    return _message(
        subject=subject,
        to=to,
        sender=sender,
        message_id=sla_message_id(entry, threshold),
        date=now,
        text=text,
        html_body=body,
    )
