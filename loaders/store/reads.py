"""Read-only views: the audit trail, the current grants, the submitters (cli.md's CSV shapes), and
the bounded queries behind the SLA clock, the evidence bundle and the HTML report.

Every query here returns a bounded result: one row per pending form, per day and status, per
bucket or per error code, never one per audit row unless the caller filtered for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grants.directory import Submitter
from loaders.store.schema import audit, forms, grants, outbox, people, submissions, submitters

AUDIT_COLUMNS = (
    "at",
    "action",
    "account_id",
    "person_id",
    "email",
    "old_level",
    "new_level",
    "form_sha256",
    "requester_email",
    "submitted_by",
)
GRANT_COLUMNS = ("account_id", "person_id", "email", "access_level", "status", "form_sha256")


def audit_rows(
    conn: Connection,
    *,
    account: str | None = None,
    person_email: str | None = None,
    form: str | None = None,
    submitter: str | None = None,
    grant_source: bool = False,
) -> list[dict]:
    """The audit trail, oldest first, filtered; one dict per row with AUDIT_COLUMNS (`at` aware UTC).

    With `grant_source`, each row also has `grant_form_sha256`: for a `revoked` row, the form that
    had set the grant it removed (None when the grant came from the directory); None on other rows.
    """
    columns = [audit.c[c] for c in AUDIT_COLUMNS]
    if grant_source:
        columns.append(_grant_source().label("grant_form_sha256"))
    query = sa.select(*columns).order_by(audit.c.id)
    if account is not None:
        query = query.where(audit.c.account_id == account.strip())
    if person_email is not None:
        email = person_email.strip().lower()
        # the email as it was then, or whoever holds that login now (emails can change)
        current = sa.select(people.c.person_id).where(people.c.email == email).scalar_subquery()
        query = query.where(sa.or_(audit.c.email == email, audit.c.person_id == current))
    if form is not None:
        query = query.where(audit.c.form_sha256 == form.strip().lower())
    if submitter is not None:
        query = query.where(audit.c.submitted_by == submitter.strip())
    return [dict(row._mapping) for row in conn.execute(query)]


def _grant_source():
    """For a revoked row: the form of the last grant/change of that (account, person) before it,
    unless an earlier revocation came in between (then the grant was the directory's)."""
    prior = audit.alias("prior")
    source = (
        sa.select(sa.case((prior.c.action == "revoked", sa.null()), else_=prior.c.form_sha256))
        .where(
            prior.c.account_id == audit.c.account_id,
            prior.c.person_id == audit.c.person_id,
            prior.c.id < audit.c.id,
            prior.c.action.in_(("granted", "changed", "revoked")),
        )
        .order_by(prior.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.case((audit.c.action == "revoked", source), else_=sa.null())


def grants_rows(conn: Connection) -> list[dict]:
    """Every current grant with the person's email, by account then person."""
    query = (
        sa.select(
            grants.c.account_id,
            grants.c.person_id,
            people.c.email,
            grants.c.access_level,
            grants.c.status,
            grants.c.form_sha256,
        )
        .join(people, people.c.person_id == grants.c.person_id)
        .order_by(grants.c.account_id, grants.c.person_id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def submitter_list(conn: Connection) -> list[Submitter]:
    """Every submitter (active or revoked), by id."""
    query = sa.select(
        submitters.c.submitter_id,
        submitters.c.name,
        submitters.c.email,
        submitters.c.public_key,
        submitters.c.status,
    ).order_by(submitters.c.submitter_id)
    return [Submitter(*row) for row in conn.execute(query)]


# --------------------------------------------------------------------------------------------
# the SLA clock

SLA_COLUMNS = (
    "submission_id",
    "object_key",
    "status",
    "received_at",
    "sla_due",
    "completed_at",
    "form_sha256",
    "requester_email",
    "attempts",
)


def sla_rows(conn: Connection, *, completed_since, limit: int = 5000) -> list[dict]:
    """Every unfinished submission, and those completed after their due time since
    `completed_since`; oldest receipt first, at most `limit` rows (SLA_COLUMNS)."""
    s = submissions
    query = (
        sa.select(
            s.c.id.label("submission_id"),
            s.c.object_key,
            s.c.status,
            s.c.received_at,
            s.c.sla_due,
            s.c.completed_at,
            s.c.form_sha256,
            forms.c.requester_email,
            s.c.attempts,
        )
        .select_from(s.outerjoin(forms, forms.c.sha256 == s.c.form_sha256))
        .where(
            sa.or_(
                s.c.status == "processing",
                sa.and_(s.c.completed_at > s.c.sla_due, s.c.completed_at >= completed_since),
            )
        )
        .order_by(s.c.received_at, s.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def live_object_keys(conn: Connection) -> set[str]:
    """Inbox keys with a submission not archived yet (claimed, whatever their state)."""
    query = sa.select(submissions.c.object_key).where(submissions.c.archived_at.is_(None))
    return {key for (key,) in conn.execute(query)}


def queued_message_ids(conn: Connection, message_ids: list[str]) -> set[str]:
    """Those of `message_ids` already in the outbox (queued, sent or dead)."""
    found: set[str] = set()
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start : start + 500]
        found.update(conn.execute(sa.select(outbox.c.message_id).where(outbox.c.message_id.in_(chunk))).scalars())
    return found


# --------------------------------------------------------------------------------------------
# one form's evidence

SUBMISSION_COLUMNS = (
    "id",
    "object_key",
    "sealed_sha256",
    "received_at",
    "sla_due",
    "status",
    "attempts",
    "form_sha256",
    "submitted_by",
    "report",
    "completed_at",
    "archived_at",
    "archived_key",
    "run_id",
)


def form_submissions(conn: Connection, sha256: str) -> list[dict]:
    """Every dropped file whose workbook (or, for files never opened, whose sealed bytes) has this
    sha256, in order of receipt; each with SUBMISSION_COLUMNS."""
    sha256 = sha256.strip().lower()
    query = (
        sa.select(*(submissions.c[c] for c in SUBMISSION_COLUMNS))
        .where(sa.or_(submissions.c.form_sha256 == sha256, submissions.c.sealed_sha256 == sha256))
        .order_by(submissions.c.received_at, submissions.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def form_row(conn: Connection, sha256: str) -> dict | None:
    """The forms row of that workbook content, or None."""
    row = conn.execute(sa.select(forms).where(forms.c.sha256 == sha256.strip().lower())).first()
    return dict(row._mapping) if row else None


def form_mail(conn: Connection, submission_ids: list[int], sha256: str) -> list[dict]:
    """The emails about these submissions or this form (whatever their delivery state), oldest first."""
    about = outbox.c.form_sha256 == sha256
    if submission_ids:
        about = sa.or_(about, outbox.c.submission_id.in_(submission_ids))
    query = sa.select(
        outbox.c.message_id,
        outbox.c.submission_id,
        outbox.c.kind,
        outbox.c.recipients,
        outbox.c.status,
        outbox.c.created_at,
        outbox.c.sent_at,
        outbox.c.message,
    ).where(about).order_by(outbox.c.created_at, outbox.c.message_id)
    return [dict(row._mapping) for row in conn.execute(query)]


# --------------------------------------------------------------------------------------------
# the report: aggregates over a period of receipt [since, until)

# Time-to-completion buckets: (label, upper bound in seconds, exclusive); the last one is open.
COMPLETION_BUCKETS = (
    ("< 1 h", 3600),
    ("1–24 h", 86400),
    ("1–3 d", 3 * 86400),
    ("3–7 d", 7 * 86400),
    ("7–10 d", 10 * 86400),
    ("10–15 d", 15 * 86400),
    ("> 15 d", None),
)


def _received_in(since, until):
    return sa.and_(submissions.c.received_at >= since, submissions.c.received_at < until)


def _utc_day(conn: Connection, column):
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD'."""
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.substr(sa.cast(column, sa.Text), 1, 10)  # SQLite stores 'YYYY-MM-DD HH:MM:SS...' in UTC


def _seconds_between(conn: Connection, start, end):
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def daily_status_counts(conn: Connection, since, until) -> list[tuple[str, str, int]]:
    """(UTC day of receipt 'YYYY-MM-DD', submission status, forms) for each pair that occurs."""
    day = _utc_day(conn, submissions.c.received_at).label("day")
    query = (
        sa.select(day, submissions.c.status, sa.func.count())
        .where(_received_in(since, until))
        .group_by(day, submissions.c.status)
        .order_by(day, submissions.c.status)
    )
    return [(d, status, n) for d, status, n in conn.execute(query)]


def completion_stats(conn: Connection, since, until) -> dict:
    """Forms received in the period and finished: {'buckets': {label: n}, 'completed', 'within_sla',
    'median_seconds', 'p95_seconds', 'max_seconds'} (times from receipt to the end state)."""
    s = submissions
    seconds = _seconds_between(conn, s.c.received_at, s.c.completed_at)
    whens = [(seconds < bound, label) for label, bound in COMPLETION_BUCKETS if bound is not None]
    bucket = sa.case(*whens, else_=COMPLETION_BUCKETS[-1][0]).label("bucket")
    done = sa.and_(_received_in(since, until), s.c.completed_at.is_not(None))
    counts = dict(conn.execute(sa.select(bucket, sa.func.count()).where(done).group_by(bucket)).all())
    total, within, worst = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((s.c.completed_at <= s.c.sla_due, 1), else_=0)), 0),
            sa.func.max(seconds),
        ).where(done)
    ).one()

    def quantile(q: float) -> float | None:  # one row, whatever the number of forms
        if not total:
            return None
        at = min(int(q * total), total - 1)
        value = conn.execute(sa.select(seconds).where(done).order_by(seconds).limit(1).offset(at)).scalar()
        return float(value)

    return {
        "buckets": {label: int(counts.get(label, 0)) for label, _ in COMPLETION_BUCKETS},
        "completed": int(total),
        "within_sla": int(within),
        "median_seconds": quantile(0.5),
        "p95_seconds": quantile(0.95),
        "max_seconds": float(worst) if worst is not None else None,
    }


_CODES_SQL = {
    "sqlite": """
        SELECT json_extract(e.value, '$.code') AS code, s.status, count(DISTINCT s.id) AS forms
        FROM submissions s, json_each(s.report, '$.errors') e
        WHERE s.status IN ('rejected', 'quarantined') AND s.report IS NOT NULL AND json_valid(s.report)
          AND s.received_at >= :since AND s.received_at < :until
        GROUP BY code, s.status ORDER BY forms DESC, code, s.status LIMIT :limit""",
    "postgresql": """
        SELECT e ->> 'code' AS code, s.status, count(DISTINCT s.id) AS forms
        FROM submissions s CROSS JOIN LATERAL jsonb_array_elements(s.report::jsonb -> 'errors') e
        WHERE s.status IN ('rejected', 'quarantined') AND s.report IS NOT NULL
          AND s.received_at >= :since AND s.received_at < :until
        GROUP BY code, s.status ORDER BY forms DESC, code, s.status LIMIT :limit""",
}


def top_error_codes(conn: Connection, since, until, limit: int = 10) -> list[tuple[str, str, int]]:
    """(code, 'rejected' or 'quarantined', forms it stopped) for the codes that stopped most forms."""
    query = sa.text(_CODES_SQL[conn.dialect.name]).bindparams(
        sa.bindparam("since", type_=submissions.c.received_at.type),
        sa.bindparam("until", type_=submissions.c.received_at.type),
    )
    rows = conn.execute(query, {"since": since, "until": until, "limit": limit})
    return [(code, status, int(n)) for code, status, n in rows if code]
