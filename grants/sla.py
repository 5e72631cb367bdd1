"""The SLA clock (pure): where each dropped file stands against the 15-day promise, and which
notices are due. Every time comes in as a parameter, so the clock can be frozen in tests.

A form is *pending* until it reaches an end state. A pending form is *at risk* once it has waited
more than `at_risk_days` since receipt, and *breached* once its due time has passed; a finished
form is *breached* when it was completed after its due time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from grants.outcome import SLA_DAYS, iso, sla_due

DEFAULT_AT_RISK_DAYS = 10


class State(StrEnum):
    PENDING = "pending"  # not finished, still inside its at-risk threshold
    AT_RISK = "at-risk"  # not finished, waiting longer than the threshold, not yet due
    BREACHED = "breached"  # not finished and past due, or finished after due
    MET = "met"  # finished by its due time


class Threshold(StrEnum):
    """What a notice is about: each is sent once per dropped file."""

    AT_RISK = "at-risk"
    BREACHED = "breached"


@dataclass(frozen=True)
class Entry:
    """One dropped file on the clock. `submission_id` is None for a file nobody has claimed yet."""

    key: str
    received_at: datetime
    completed_at: datetime | None = None
    status: str = "processing"
    submission_id: int | None = None
    form_sha256: str | None = None
    requester_email: str | None = None
    attempts: int = 0
    due: datetime | None = None  # as recorded; sla_due(received_at) when None

    @property
    def sla_due(self) -> datetime:
        return self.due or sla_due(self.received_at)

    @property
    def finished(self) -> bool:
        return self.completed_at is not None

    def state(self, now: datetime, at_risk_days: float = DEFAULT_AT_RISK_DAYS) -> State:
        if self.finished:
            return State.BREACHED if self.completed_at > self.sla_due else State.MET
        if now > self.sla_due:
            return State.BREACHED
        if now - self.received_at > timedelta(days=at_risk_days):
            return State.AT_RISK
        return State.PENDING

    def age_days(self, now: datetime) -> float:
        """Days from receipt to completion, or to `now` while pending."""
        return ((self.completed_at or now) - self.received_at).total_seconds() / 86400

    def identity(self) -> str:
        """The dropped file, the same before and after it is claimed: its key and second of receipt."""
        return f"{self.key}@{iso(self.received_at)}"

    def to_json(self, now: datetime, at_risk_days: float = DEFAULT_AT_RISK_DAYS) -> dict:
        return {
            "key": self.key,
            "state": str(self.state(now, at_risk_days)),
            "status": self.status,
            "submission_id": self.submission_id,
            "form_sha256": self.form_sha256,
            "requester_email": self.requester_email,
            "received_at": iso(self.received_at),
            "sla_due": iso(self.sla_due),
            "completed_at": iso(self.completed_at),
            "age_days": round(self.age_days(now), 2),
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class Board:
    """The clock at one moment: pending (every unfinished file, at risk and breached included),
    at risk (unfinished, past the threshold, not yet due) and breached (unfinished past due, or
    finished after due)."""

    now: datetime
    at_risk_days: float
    entries: tuple[Entry, ...]

    def _in(self, *states: State) -> list[Entry]:
        return [e for e in self.entries if e.state(self.now, self.at_risk_days) in states]

    @property
    def pending(self) -> list[Entry]:
        return [e for e in self.entries if not e.finished]

    @property
    def at_risk(self) -> list[Entry]:
        return self._in(State.AT_RISK)

    @property
    def breached(self) -> list[Entry]:
        return self._in(State.BREACHED)

    def to_json(self) -> dict:
        def listed(entries: list[Entry]) -> list[dict]:
            return [e.to_json(self.now, self.at_risk_days) for e in entries]

        return {
            "now": iso(self.now),
            "sla_days": SLA_DAYS,
            "at_risk_days": self.at_risk_days,
            "pending": listed(self.pending),
            "at_risk": listed(self.at_risk),
            "breached": listed(self.breached),
        }


def notices_due(board: Board) -> list[tuple[Entry, Threshold]]:
    """Every (file, threshold) the board says the operations mailbox should hear about now.

    A file already past due gets the breach notice only: the at-risk warning would come too late
    to help (e.g. after an outage of the watch itself). Whether a notice was sent before is the
    caller's business (the outbox remembers it by a Message-ID made from the file and threshold).
    """
    due: list[tuple[Entry, Threshold]] = []
    for entry in board.entries:
        state = entry.state(board.now, board.at_risk_days)
        if state is State.AT_RISK:
            due.append((entry, Threshold.AT_RISK))
        elif state is State.BREACHED:
            due.append((entry, Threshold.BREACHED))
    return due
