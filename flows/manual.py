"""The back office's manual path: judge (`check`) or apply (`apply`) one form file by hand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flows.judge import judge_workbook, sha256
from flows.pipeline import apply_verdict, utcnow
from grants.errors import Code, FileRejected, FormError
from grants.outcome import Outcome, Status


def read_form_file(path: Path, private_key: str | None = None) -> tuple[bytes, str | None]:
    """The plaintext workbook of a plain or sealed file, and the verified submitter if signed."""
    from loaders.envelope import MAGIC, load_private_keys, open_sealed

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileRejected(Code.NOT_XLSX, f"cannot read {path.name}: {exc.strerror}") from None
    if not data.startswith(MAGIC):
        return data, None
    if not private_key:
        raise FileRejected(Code.DECRYPT_FAILED, "the file is sealed: give --private-key to open it")
    opened = open_sealed(data, load_private_keys(private_key))
    return opened.plaintext, opened.submitted_by


@dataclass
class Check:
    """What `delegation check` reports: every error, and with a database the plan of changes."""

    errors: list[FormError]
    plan: object | None = None
    unusable: bool = False


def check_file(path: Path, *, db_url: str | None = None, private_key: str | None = None) -> Check:
    try:
        plaintext, _ = read_form_file(path, private_key)
        verdict = judge_workbook(plaintext)
    except FileRejected as exc:
        return Check([exc.error], unusable=True)
    if verdict.form is None or not db_url:
        return Check(verdict.errors)
    from loaders.store import Store

    errors, plan = Store.connect(db_url).judge(verdict.form)
    return Check(list(errors), plan)


def apply_file(path: Path, *, db_url: str, private_key: str | None = None) -> Outcome:
    """Apply one form as one transaction; the outcome is shaped like a run report entry."""
    from loaders.store import Store

    now = utcnow()
    outcome = Outcome(key=str(path), status=Status.QUARANTINED, received_at=now, completed_at=now)
    try:
        plaintext, outcome.submitted_by = read_form_file(path, private_key)
        outcome.sha256 = sha256(plaintext)
        verdict = judge_workbook(plaintext)
    except FileRejected as exc:
        outcome.errors = [exc.error]
        return outcome
    with Store.connect(db_url).unit_of_work() as uow:
        apply_verdict(uow, outcome, verdict)
        uow.commit()
    return outcome
