"""Builders for the SLA and report tests: dropped files at chosen times, and a busy made-up history.

Rows go straight into `submissions` (and `forms`), as the pipeline leaves them, so a history of
weeks is built in milliseconds; the report and the SLA clock only read these tables.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from grants.outcome import sla_due
from loaders.store.schema import forms, submissions

NOW = datetime(2026, 12, 15, 9, 0, tzinfo=UTC)
ERROR_CODES = ("CELL_BLANK", "ACCOUNT_ID_INVALID", "EMAIL_INVALID", "FULL_ACCESS_THIRD_PARTY", "REQUESTER_UNKNOWN",
               "ACCOUNT_CLOSED", "LEVEL_INVALID")
QUARANTINE_CODES = ("DECRYPT_FAILED", "NOT_ENCRYPTED", "SIGNATURE_INVALID")


def drop(store, key: str, received_at: datetime, *, status: str = "processing", completed_at: datetime | None = None,
         form_sha256: str | None = None, requester: str | None = None, codes: tuple[str, ...] = (),
         attempts: int = 1, archived: bool | None = None) -> int:
    """One dropped file in the state given; its submission id."""
    report = None
    if status != "processing":
        report = json.dumps({
            "key": key, "sha256": form_sha256, "status": status, "requester_email": requester,
            "delegate_email": None, "submitted_by": None, "accounts": 0, "grants_created": 0,
            "grants_updated": 0, "grants_unchanged": 0,
            "errors": [{"code": c, "row": None, "column": None, "value": None, "message": c} for c in codes],
            "received_at": None, "completed_at": None, "sla_due": None,
        })
    archived = status != "processing" if archived is None else archived
    with store.engine.begin() as conn:
        if form_sha256 and status in ("applied", "rejected"):
            conn.execute(store.insert(forms).values(
                sha256=form_sha256, status=status, requester_email=requester, received_at=received_at,
                completed_at=completed_at, sla_due=sla_due(received_at), updated_at=completed_at or received_at,
            ).on_conflict_do_nothing())
        return conn.execute(sa.insert(submissions).values(
            object_key=key, sealed_sha256=hashlib.sha256(f"{key}@{received_at}".encode()).hexdigest(),
            received_at=received_at,
            sla_due=sla_due(received_at), status=status, attempts=attempts, form_sha256=form_sha256,
            report=report, completed_at=completed_at,
            archived_at=completed_at if archived else None,
            archived_key=f"archive/{status}/{key.rsplit('/', 1)[-1]}" if archived else None,
        ).returning(submissions.c.id)).scalar_one()


def busy_history(store, *, now: datetime = NOW, days: int = 45, seed: int = 6) -> dict[str, int]:
    """Weeks of traffic ending at `now`: mostly applied within minutes, some rejected and
    quarantined, a few duplicates, a few slow or late ones, and pending forms of every age."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    n = 0
    for day in range(days, -1, -1):
        base = (now - timedelta(days=day)).replace(hour=8, minute=0, second=0, microsecond=0)
        weekend = base.weekday() >= 5
        for _ in range(rng.randint(0, 3) if weekend else rng.randint(4, 14)):
            n += 1
            received = base + timedelta(minutes=rng.randint(0, 600))
            if received >= now:
                continue
            status = rng.choices(("applied", "rejected", "duplicate", "quarantined"), (70, 20, 5, 5))[0]
            wait = timedelta(minutes=rng.randint(1, 20))
            if rng.random() < 0.06:  # stuck behind an outage or a retry
                wait = timedelta(days=rng.uniform(1, 18), minutes=rng.randint(0, 600))
            completed = received + wait
            codes = ()
            if status == "rejected":
                codes = tuple(rng.sample(ERROR_CODES, rng.choice((1, 1, 2))))
            elif status == "quarantined":
                codes = (rng.choice(QUARANTINE_CODES),)
            if completed > now:
                status, completed, codes = "processing", None, ()
            key = f"inbox/customer-{n:04d}.xlsx.sealed"
            sha = None if status in ("quarantined", "processing") else f"{n:064x}"
            drop(store, key, received, status=status, completed_at=completed, form_sha256=sha,
                 requester=f"requester{n % 17}@example.com", codes=codes, attempts=1 if completed else 3)
            counts[status] = counts.get(status, 0) + 1
    for age in (2.5, 11.2, 16.4):  # pending, at risk, breached
        drop(store, f"inbox/stuck-{age:g}-days.xlsx.sealed", now - timedelta(days=age), attempts=4)
        counts["processing"] = counts.get("processing", 0) + 1
    return counts
