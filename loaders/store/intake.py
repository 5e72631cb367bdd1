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
from loaders.store.schema import forms, outbox, people, submissions
from loaders.store.sql import Prepared, insert_for

MAIL_LEASE = timedelta(minutes=5)
# The wait before the 2nd, 3rd, 4th... attempt, in multiples of the retry base (a minute by default).
MAIL_BACKOFF = (1, 5, 15, 60)
MAIL_MAX_ATTEMPTS = 30  # then dead-lettered: about a day at the default base (1, 5, 15, then 60 min apart)


class LostClaim(Exception):
    """Another worker took the file over (this worker's lease ran out): this attempt must not commit."""


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


_LIVE = sa.and_(submissions.c.object_key == sa.bindparam("key"), submissions.c.sealed_sha256 == sa.bindparam("sealed"),
               submissions.c.archived_at.is_(None))
# RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
_NEW_CLAIM = Prepared(lambda dialect: insert_for(dialect, submissions).on_conflict_do_nothing()
                      .returning(submissions.c.id))
# A live claim this worker may take: its lease ran out, or it is this worker's own.
_TAKEABLE = sa.or_(submissions.c.lease_until <= sa.bindparam("now"), submissions.c.claimed_by == sa.bindparam("worker"))
_TAKE_OVER = Prepared(lambda _: sa.update(submissions).where(_LIVE, _TAKEABLE).values(
    claimed_by=sa.bindparam("worker"), lease_until=sa.bindparam("until"), attempts=submissions.c.attempts + 1,
    run_id=sa.bindparam("run")))
_CLAIMED = Prepared(lambda _: sa.select(submissions.c.id, submissions.c.received_at, submissions.c.report)
                    .where(_LIVE))


def claim(store, *, object_key: str, sealed_sha256: str, received_at: datetime, worker: str,
          lease_seconds: int, run_id: str | None = None) -> Claim | None:
    """Claim a waiting file for this worker, or None while another worker's lease on it holds."""
    now = _now()
    until = now + timedelta(seconds=lease_seconds)
    live = {"key": object_key, "sealed": sealed_sha256}
    with store.begin() as conn:
        inserted = conn.execute(_NEW_CLAIM(conn), {
            "object_key": object_key, "sealed_sha256": sealed_sha256, "received_at": received_at,
            "sla_due": sla_due(received_at), "status": "processing", "claimed_by": worker, "lease_until": until,
            "attempts": 1, "run_id": run_id,
        }).first()
        taken = inserted or conn.execute(
            _TAKE_OVER(conn), {**live, "now": now, "worker": worker, "until": until, "run": run_id}
        ).rowcount
        if not taken:
            return None
        row = conn.execute(_CLAIMED(conn), live).one()
    outcome = Outcome.from_report(json.loads(row.report)) if row.report else None
    return Claim(row.id, sealed_sha256, _utc(row.received_at), outcome)


_HELD_BY_ANOTHER = Prepared(lambda _: sa.select(submissions.c.id).where(
    submissions.c.object_key == sa.bindparam("key"), submissions.c.archived_at.is_(None), sa.not_(_TAKEABLE),
).limit(1))


def held_by_another(store, object_key: str, worker: str) -> bool:
    """Does another worker's live lease hold a file under this key, any version of it (a read: no
    claim is made)? A file replaced under a key another worker holds so waits for that worker to
    give it back (it finds the change when it archives) or for its lease to run out."""
    with store.reading() as conn:
        held = conn.execute(_HELD_BY_ANOTHER(conn), {"key": object_key, "worker": worker, "now": _now()}).first()
    return held is not None


_FINISH = Prepared(lambda _: sa.update(submissions).where(
    submissions.c.id == sa.bindparam("submission"), submissions.c.claimed_by == sa.bindparam("worker"),
    submissions.c.report.is_(None), submissions.c.archived_at.is_(None),
).returning(submissions.c.id))


def finish(uow, submission_id: int, outcome: Outcome, *, worker: str) -> None:
    """Record the end state (inside the transaction that applies or rejects the form).

    Fenced: only while this worker still holds the claim and no end state was recorded. Otherwise
    LostClaim is raised and the caller's transaction (grants, audit, mail) rolls back whole.
    """
    done = uow.conn.execute(_FINISH(uow.conn), {
        "submission": submission_id, "worker": worker, "status": str(outcome.status),
        "report": json.dumps(outcome.to_report()), "form_sha256": outcome.sha256,
        "submitted_by": outcome.submitted_by, "completed_at": outcome.completed_at,
    }).first()
    if done is None:
        raise LostClaim(f"submission {submission_id} was taken over by another worker")


_ARCHIVED = Prepared(lambda _: sa.update(submissions).where(submissions.c.id == sa.bindparam("submission")))


def mark_archived(store, submission_id: int, destination: str) -> None:
    """The sealed original has left the inbox: the claim is released for good."""
    now = _now()
    with store.begin() as conn:
        conn.execute(_ARCHIVED(conn), {"submission": submission_id, "archived_at": now, "archived_key": destination,
                                       "lease_until": now})


def release(store, submission_id: int, *, worker: str | None = None) -> None:
    """Give the file back at once (a failed attempt): the next run may take it without waiting."""
    mine = [] if worker is None else [submissions.c.claimed_by == worker]
    with store.begin() as conn:
        conn.execute(
            sa.update(submissions)
            .where(submissions.c.id == submission_id, submissions.c.archived_at.is_(None), *mine)
            .values(lease_until=_now())
        )


def abandon(store, submission_id: int, *, worker: str) -> None:
    """Drop a claim on a file that left the inbox under us; an undecided claim leaves no row."""
    with store.begin() as conn:
        gone = conn.execute(
            sa.delete(submissions)
            .where(submissions.c.id == submission_id, submissions.c.claimed_by == worker,
                   submissions.c.report.is_(None), submissions.c.archived_at.is_(None))
            .returning(submissions.c.id)
        ).first()
    if gone is None:
        release(store, submission_id, worker=worker)


def unfinished(store) -> list[dict]:
    """Decided files whose worker died before archiving and whose lease ran out: to be finished."""
    live = sa.and_(submissions.c.archived_at.is_(None), submissions.c.report.is_not(None),
                   submissions.c.lease_until <= _now())
    cols = (submissions.c.object_key, submissions.c.sealed_sha256, submissions.c.received_at)
    with store.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(*cols).where(live).order_by(submissions.c.id))]


def form_status(uow, sha256: str) -> str | None:
    """'applied' or 'rejected' for workbook content seen before, else None."""
    return uow.conn.execute(sa.select(forms.c.status).where(forms.c.sha256 == sha256)).scalar()


_PERSON_BY_EMAIL = Prepared(lambda _: sa.select(people).where(people.c.email == sa.bindparam("email")))


def requester_login(uow, first_row: tuple[str, ...] | None, form: DelegateForm | None) -> str | None:
    """The login email on file when the form's requester details match that login exactly (those of
    the valid `form`, else those written on the sheet's `first_row`)."""
    from grants.values import normalise_email, normalise_name, normalise_phone

    if form is not None:
        who = form.requester
        first, last, email, phone = who.first_name, who.last_name, who.email, who.phone
    elif first_row is not None:
        try:
            first, last = normalise_name(first_row[0]), normalise_name(first_row[1])
            email, phone = normalise_email(first_row[2]), normalise_phone(first_row[3])
        except ValueError:
            return None
    else:
        return None
    person = uow.conn.execute(_PERSON_BY_EMAIL(uow.conn), {"email": email}).first()
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
    kind: str = ""
    submission_id: int | None = None
    attempts: int = 1  # this attempt included


def add_mail(uow, *, message_id: str, submission_id: int | None, outcome: Outcome | None, kind: str,
             recipients: list[str], message: bytes) -> None:
    """Queue one email in the caller's transaction; the same Message-ID twice is one email."""
    _queue(uow.conn, message_id=message_id, submission_id=submission_id,
           form_sha256=outcome.sha256 if outcome else None, kind=kind, recipients=recipients, message=message)


def _queue(conn, *, message_id: str, submission_id: int | None, form_sha256: str | None, kind: str,
           recipients: list[str], message: bytes) -> None:
    now = _now()
    conn.execute(_QUEUE(conn), {
        "message_id": message_id, "submission_id": submission_id, "form_sha256": form_sha256, "kind": kind,
        "recipients": json.dumps(recipients), "message": message, "status": "pending", "attempts": 0,
        "created_at": now, "next_attempt_at": now,
    })


_QUEUE = Prepared(lambda dialect: insert_for(dialect, outbox).on_conflict_do_nothing())


_TAKE_SUBMISSION_MAIL = Prepared(lambda _: sa.update(outbox).where(
    outbox.c.submission_id == sa.bindparam("submission"), outbox.c.status == "pending",
    outbox.c.next_attempt_at <= sa.bindparam("now"),
).values(next_attempt_at=sa.bindparam("until"), attempts=outbox.c.attempts + 1).returning(
    outbox.c.message_id, outbox.c.recipients, outbox.c.message, outbox.c.kind, outbox.c.submission_id,
    outbox.c.attempts, outbox.c.created_at,
))


def claim_pending_mail(store, *, submission_id: int | None = None, worker: str = "",
                       lease: timedelta = MAIL_LEASE) -> list[Mail]:
    """Take the due pending mail (one submission's, or all) for `lease`, so no one else sends it.

    Taking a row counts an attempt and moves its next attempt past the lease: a worker that dies
    while sending leaves the row to be taken again once the lease has run out. One submission's
    mail (what a run does after each file) is taken with one UPDATE ... RETURNING.
    """
    now = _now()
    if submission_id is not None:
        with store.begin() as conn:
            rows = conn.execute(_TAKE_SUBMISSION_MAIL(conn),
                                {"submission": submission_id, "now": now, "until": now + lease}).all()
        return [Mail(r.message_id, json.loads(r.recipients), bytes(r.message), r.kind, r.submission_id, r.attempts)
                for r in sorted(rows, key=lambda r: (r.created_at, r.message_id))]
    due = sa.and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
    taken = []
    with store.begin() as conn:
        for row in conn.execute(sa.select(outbox).where(due).order_by(outbox.c.created_at)).all():
            got = conn.execute(
                sa.update(outbox)
                .where(outbox.c.message_id == row.message_id, due)
                .values(next_attempt_at=now + lease, attempts=outbox.c.attempts + 1)
            ).rowcount
            if got:
                taken.append(Mail(row.message_id, json.loads(row.recipients), bytes(row.message), row.kind,
                                  row.submission_id, row.attempts + 1))
    return taken


def put_back(store, message_ids: list[str]) -> None:
    """Return mail taken but not tried (the server is down): due at once, the attempt not counted."""
    if not message_ids:
        return
    with store.begin() as conn:
        conn.execute(sa.update(outbox).where(outbox.c.message_id.in_(message_ids), outbox.c.status == "pending")
                     .values(next_attempt_at=_now(), attempts=outbox.c.attempts - 1))


_SENT = Prepared(lambda _: sa.update(outbox).where(outbox.c.message_id == sa.bindparam("mail")))


def mail_sent(store, message_id: str) -> None:
    with store.begin() as conn:
        conn.execute(_SENT(conn), {"mail": message_id, "status": "sent", "sent_at": _now(), "last_error": None})


def mail_failed(store, mail: Mail, error: str, *, dead: bool, retry_base: timedelta = timedelta(minutes=1),
                notice: Mail | None = None) -> None:
    """A refused mail is dead-lettered (and `notice` queued in the same transaction, to tell
    someone); one that may go through later waits a growing while."""
    wait = retry_base * MAIL_BACKOFF[min(mail.attempts, len(MAIL_BACKOFF)) - 1]
    with store.begin() as conn:
        conn.execute(
            sa.update(outbox).where(outbox.c.message_id == mail.message_id)
            .values(status="dead" if dead else "pending", last_error=error[:500],
                    next_attempt_at=_now() + wait)
        )
        if dead and notice is not None:
            _queue(conn, message_id=notice.message_id, submission_id=notice.submission_id,
                   form_sha256=None, kind=notice.kind, recipients=notice.recipients, message=notice.message)


def mail_counts(store) -> dict[str, int]:
    """Rows of the outbox by status (pending, sent, dead)."""
    with store.reading() as conn:
        rows = conn.execute(sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)).all()
    return {status: n for status, n in rows}
