"""The intake's bookkeeping: claims on dropped files (with leases) and the transactional mail outbox.

A claim is a `submissions` row keyed by (inbox key, sha256 of the sealed bytes) among the rows not
yet archived: whoever inserts it, or takes it over after its lease ran out, owns the file. The end
state, the grants and the outgoing mail are committed together; the file is archived after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from grants.form import DelegateForm
from grants.outcome import Outcome, sla_due
from grants.sheet import SheetCells
from loaders.store.schema import forms, outbox, people, submissions

MAIL_LEASE = timedelta(minutes=5)
MAIL_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(t: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive: they were stored as UTC."""
    if t is None or t.tzinfo is not None:
        return t
    return t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Claim:
    """This worker owns the file now. `outcome` is set when its end state was already committed."""

    submission_id: int
    sealed_sha256: str
    received_at: datetime
    outcome: Outcome | None


def claim(store, *, object_key: str, sealed_sha256: str, received_at: datetime, worker: str,
          lease_seconds: int, run_id: str | None = None) -> Claim | None:
    """Claim a waiting file for this worker, or None while another worker's lease on it holds."""
    now = _now()
    until = now + timedelta(seconds=lease_seconds)
    live = sa.and_(
        submissions.c.object_key == object_key,
        submissions.c.sealed_sha256 == sealed_sha256,
        submissions.c.archived_at.is_(None),
    )
    with store.engine.begin() as conn:
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
        inserted = conn.execute(
            store.insert(submissions)
            .values(object_key=object_key, sealed_sha256=sealed_sha256, received_at=received_at,
                    sla_due=sla_due(received_at), status="processing", claimed_by=worker,
                    lease_until=until, attempts=1, run_id=run_id)
            .on_conflict_do_nothing()
            .returning(submissions.c.id)
        ).first()
        taken = inserted or conn.execute(
            sa.update(submissions)
            .where(live, sa.or_(submissions.c.lease_until <= now, submissions.c.claimed_by == worker))
            .values(claimed_by=worker, lease_until=until, attempts=submissions.c.attempts + 1, run_id=run_id)
        ).rowcount
        if not taken:
            return None
        row = conn.execute(sa.select(submissions).where(live)).one()
    outcome = Outcome.from_report(json.loads(row.report)) if row.report else None
    return Claim(row.id, sealed_sha256, _utc(row.received_at), outcome)


def finish(uow, submission_id: int, outcome: Outcome) -> None:
    """Record the end state (inside the transaction that applies or rejects the form)."""
    uow.conn.execute(
        sa.update(submissions)
        .where(submissions.c.id == submission_id)
        .values(status=str(outcome.status), report=json.dumps(outcome.to_report()),
                form_sha256=outcome.sha256, submitted_by=outcome.submitted_by,
                completed_at=outcome.completed_at)
    )


def mark_archived(store, submission_id: int, destination: str) -> None:
    """The sealed original has left the inbox: the claim is released for good."""
    now = _now()
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(submissions)
            .where(submissions.c.id == submission_id)
            .values(archived_at=now, archived_key=destination, lease_until=now)
        )


def release(store, submission_id: int) -> None:
    """Give the file back at once (a failed attempt): the next run may take it without waiting."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(submissions)
            .where(submissions.c.id == submission_id, submissions.c.archived_at.is_(None))
            .values(lease_until=_now())
        )


def form_status(uow, sha256: str) -> str | None:
    """'applied' or 'rejected' for workbook content seen before, else None."""
    return uow.conn.execute(sa.select(forms.c.status).where(forms.c.sha256 == sha256)).scalar()


def requester_login(uow, cells: SheetCells, form: DelegateForm | None) -> str | None:
    """The login email on file when the form's requester details match that login exactly."""
    from grants.values import normalise_email, normalise_name, normalise_phone

    if form is not None:
        who = form.requester
        first, last, email, phone = who.first_name, who.last_name, who.email, who.phone
    elif cells.rows:
        raw = cells.rows[min(cells.rows)]
        try:
            first, last = normalise_name(raw[0]), normalise_name(raw[1])
            email, phone = normalise_email(raw[2]), normalise_phone(raw[3])
        except ValueError:
            return None
    else:
        return None
    person = uow.conn.execute(sa.select(people).where(people.c.email == email)).first()
    if person is None or (person.first_name, person.last_name, person.phone) != (first, last, phone):
        return None
    return person.email


# --------------------------------------------------------------------------------------------
# the outbox


@dataclass(frozen=True)
class Mail:
    message_id: str
    recipients: list[str]
    message: bytes


def add_mail(uow, *, message_id: str, submission_id: int | None, outcome: Outcome | None, kind: str,
             recipients: list[str], message: bytes) -> None:
    """Queue one email in the caller's transaction; the same Message-ID twice is one email."""
    uow.conn.execute(
        uow.store.insert(outbox)
        .values(message_id=message_id, submission_id=submission_id,
                form_sha256=outcome.sha256 if outcome else None, kind=kind,
                recipients=json.dumps(recipients), message=message, status="pending",
                attempts=0, created_at=_now(), next_attempt_at=_now())
        .on_conflict_do_nothing()
    )


def claim_pending_mail(store, *, submission_id: int | None = None, worker: str = "") -> list[Mail]:
    """Take the due pending mail (one submission's, or all) for a while, so no one else sends it."""
    now = _now()
    due = sa.and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
    if submission_id is not None:
        due = sa.and_(due, outbox.c.submission_id == submission_id)
    taken = []
    with store.engine.begin() as conn:
        for row in conn.execute(sa.select(outbox).where(due).order_by(outbox.c.created_at)).all():
            got = conn.execute(
                sa.update(outbox)
                .where(outbox.c.message_id == row.message_id, due)
                .values(next_attempt_at=now + MAIL_LEASE, attempts=outbox.c.attempts + 1)
            ).rowcount
            if got:
                taken.append(Mail(row.message_id, json.loads(row.recipients), bytes(row.message)))
    return taken


def mail_sent(store, message_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(outbox).where(outbox.c.message_id == message_id)
                     .values(status="sent", sent_at=_now(), last_error=None))


def mail_failed(store, message_id: str, error: str, *, dead: bool) -> None:
    """A refused mail is dead-lettered; one that may go through later waits a growing while."""
    with store.engine.begin() as conn:
        attempts = conn.execute(sa.select(outbox.c.attempts).where(outbox.c.message_id == message_id)).scalar() or 1
        wait = MAIL_BACKOFF[min(attempts, len(MAIL_BACKOFF)) - 1]
        conn.execute(
            sa.update(outbox).where(outbox.c.message_id == message_id)
            .values(status="dead" if dead else "pending", last_error=error[:500],
                    next_attempt_at=_now() + wait)
        )
