"""The run report (cli.md, `--report-json`) and the Prefect artifacts that show it to people."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grants.outcome import Outcome, Status, iso, sla_due


@dataclass
class RunReport:
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # keys that reached no end state this run

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "forms": [o.to_report() for o in self.outcomes],
        }

    def counts(self) -> dict[str, int]:
        c = Counter(str(o.status) for o in self.outcomes)
        return {str(s): c.get(str(s), 0) for s in Status}

    def write(self, path: str | os.PathLike) -> None:
        """Written atomically: a reader never sees half a report."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, indent=2, ensure_ascii=False)
        os.replace(tmp, target)

    def markdown(self) -> str:
        """A summary a scheduler can read at a glance: counts, failures, the earliest SLA due."""
        counts = self.counts()
        lines = [
            f"# Delegate forms: run {self.run_id}",
            "",
            f"Started {iso(self.started_at)}, finished {iso(self.finished_at)}.",
            "",
            "| status | forms |",
            "| --- | ---: |",
            *(f"| {status} | {n} |" for status, n in counts.items()),
            f"| **total** | **{len(self.outcomes)}** |",
        ]
        if self.failures:
            lines += ["", f"**{len(self.failures)} file(s) reached no end state** and stay in the inbox "
                      "for the next run:", *(f"- `{k}`" for k in self.failures)]
        if self.outcomes:
            due = min(sla_due(o.received_at) for o in self.outcomes)
            lines += ["", f"Earliest SLA due date among these forms: {iso(due)} (15 days from receipt)."]
        return "\n".join(lines)

    def table(self) -> list[dict]:
        """One row per form for the artifact table (no row data, no secrets)."""
        return [
            {
                "key": o.key,
                "status": str(o.status),
                "requester": o.requester_email or "",
                "delegate": o.delegate_email or "",
                "submitted_by": o.submitted_by or "",
                "dropped_by": o.dropped_by or "",
                "warnings": "; ".join(o.warnings),
                "accounts": o.accounts,
                "created/updated/unchanged": f"{o.grants_created}/{o.grants_updated}/{o.grants_unchanged}",
                "errors": ", ".join(sorted({str(e.code) for e in o.errors})),
                "received": iso(o.received_at),
                "sla_due": iso(sla_due(o.received_at)),
            }
            for o in self.outcomes
        ]
