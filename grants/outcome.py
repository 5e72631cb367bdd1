"""What happened to one dropped file: the run report's entry (spec: cli.md, "The run report")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from grants.errors import FormError

SLA_DAYS = 15


class Status(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


def iso(t: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, to the second; None stays None."""
    if t is None:
        return None
    return t.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sla_due(received_at: datetime) -> datetime:
    """The utility's promise: complete within 15 calendar days of receipt."""
    return received_at + timedelta(days=SLA_DAYS)


@dataclass
class Outcome:
    """One report entry. `sha256` is of the decrypted workbook (None when it could not be opened)."""

    key: str
    status: Status
    received_at: datetime
    sha256: str | None = None
    requester_email: str | None = None
    delegate_email: str | None = None
    submitted_by: str | None = None
    accounts: int = 0
    grants_created: int = 0
    grants_updated: int = 0
    grants_unchanged: int = 0
    errors: list[FormError] = field(default_factory=list)
    completed_at: datetime | None = None
    dropped_by: str | None = None  # the object store's `submitted-by` metadata: a claim, not a proof
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_report(cls, d: dict) -> Outcome:
        """The entry back from its report shape (as stored with the submission)."""
        from grants.errors import Code

        def when(text: str | None) -> datetime | None:
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

        return cls(
            key=d["key"], status=Status(d["status"]), received_at=when(d["received_at"]),
            sha256=d["sha256"], requester_email=d["requester_email"],
            delegate_email=d["delegate_email"], submitted_by=d["submitted_by"],
            accounts=d["accounts"], grants_created=d["grants_created"],
            grants_updated=d["grants_updated"], grants_unchanged=d["grants_unchanged"],
            errors=[FormError(Code(e["code"]), e["message"], e["row"], e["column"], e["value"])
                    for e in d["errors"]],
            completed_at=when(d["completed_at"]),
            dropped_by=d.get("dropped_by"), warnings=list(d.get("warnings", [])),
        )

    def to_report(self) -> dict:
        """The entry exactly as cli.md shapes it."""
        return {
            "key": self.key,
            "sha256": self.sha256,
            "status": str(self.status),
            "requester_email": self.requester_email,
            "delegate_email": self.delegate_email,
            "submitted_by": self.submitted_by,
            "accounts": self.accounts,
            "grants_created": self.grants_created,
            "grants_updated": self.grants_updated,
            "grants_unchanged": self.grants_unchanged,
            "errors": [e.to_dict() for e in self.errors],
            "received_at": iso(self.received_at),
            "completed_at": iso(self.completed_at),
            "sla_due": iso(sla_due(self.received_at)),
            # Additions to cli.md's entry: the uploader's own claim, and anything an auditor should see.
            "dropped_by": self.dropped_by,
            "warnings": list(self.warnings),
        }
