"""The evidence bundle of one form: everything about it in a folder an auditor can verify later
without the database.

    DIR/manifest.json                    what is here and the sha256 of every other file
    DIR/SHA256SUMS                       the same sums for `sha256sum -c SHA256SUMS`
    DIR/README.txt                       how to check it
    DIR/form.json                        the form's row (status, requester, counts, times)
    DIR/audit.csv                        its audit rows, as `delegation audit --form` writes them
    DIR/submissions/<id>-<name>          each dropped file with this content, sealed, as received
    DIR/submissions/<id>-outcome.json    its outcome (the run report's entry)
    DIR/submissions/<id>-workbook.xlsx   the decrypted workbook (only with include_workbook)
    DIR/emails/<message-id>.eml          every email about it, as queued (RFC 5322)

The sealed original's sha256 was recorded when the file was claimed; the bundle refuses to call
itself complete when the copy found in the archive does not match it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flows.pipeline import sha256 as digest_of
from grants.outcome import iso

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
README = "README.txt"
MAX_ORIGINAL_BYTES = 64 * 1024 * 1024  # far above the intake's limit: what was dropped, whole
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

_README_TEXT = """Evidence bundle of one Delegate User Form (see manifest.json for what each file is).

To check that nothing here was changed since it was written:

    sha256sum -c SHA256SUMS              (coreutils; any platform with sha256sum)
    delegation evidence verify .         (also checks the manifest against SHA256SUMS and that
                                          every sealed original matches the sha256 recorded at receipt)

manifest.json itself is covered by neither: record its sha256 (printed when the bundle was made)
with the request, and give it to `delegation evidence verify DIR --manifest-sha256 HEX`.
"""


@dataclass
class Bundle:
    """What was written: files (relative path -> sha256), and anything that could not be included."""

    path: Path
    form_sha256: str
    files: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    manifest_sha256: str = ""

    @property
    def complete(self) -> bool:
        return not self.problems


class FormNotFound(LookupError):
    pass


def _safe_name(key: str) -> str:
    name = _SAFE.sub("_", key.rsplit("/", 1)[-1]).lstrip(".") or "file"
    return name[:120]


def _jsonable(row: dict) -> dict:
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def write_bundle(
    store,
    inbox,
    sha256: str,
    out: Path,
    *,
    private_keys: list[bytes] | None = None,
    source: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Bundle:
    """Gather everything about the form `sha256` (the workbook's; or a sealed file's, for files
    that never opened) into the empty or new folder `out`. Raises FormNotFound when the database
    knows nothing of it. With `private_keys`, the decrypted workbook is included and its sha256
    checked against the form's."""
    from loaders.store.reads import AUDIT_COLUMNS, audit_rows, form_mail, form_row, form_submissions

    sha256 = sha256.strip().lower()
    with store.reading() as conn:
        subs = form_submissions(conn, sha256)
        form = form_row(conn, sha256)
        rows = audit_rows(conn, form=sha256)
        mails = form_mail(conn, [s["id"] for s in subs], sha256)
    if not subs and form is None and not rows:
        raise FormNotFound(f"the database knows no form or dropped file with sha256 {sha256}")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: an evidence bundle goes into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    bundle = Bundle(out, sha256)

    def put(rel: str, data: bytes) -> str:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        bundle.files[rel] = digest_of(data)
        return rel

    put(README, _README_TEXT.encode())
    if form is not None:
        put("form.json", _json_bytes(_jsonable(form)))
    put("audit.csv", _audit_csv(rows, AUDIT_COLUMNS))

    listed_subs = []
    for sub in subs:
        listed_subs.append(_put_submission(sub, inbox, put, bundle, private_keys, store))

    listed_mail = []
    for mail in mails:
        from loaders.mail import eml_name

        rel = put(f"emails/{eml_name(mail['message_id'])}", bytes(mail["message"]))
        listed_mail.append({
            "file": rel,
            "message_id": mail["message_id"],
            "kind": mail["kind"],
            "recipients": json.loads(mail["recipients"]),
            "delivery": mail["status"],
            "queued_at": iso(mail["created_at"]),
            "sent_at": iso(mail["sent_at"]),
        })

    manifest = {
        "bundle": "delegation evidence",
        "version": 1,
        "form_sha256": sha256,
        "created_at": iso(now or datetime.now(UTC)),
        "source": source or {},
        "form": _jsonable(form) if form else None,
        "submissions": listed_subs,
        "emails": listed_mail,
        "audit": {"file": "audit.csv", "rows": len(rows)},
        "problems": bundle.problems,
        "files": dict(sorted(bundle.files.items())),
    }
    data = _json_bytes(manifest)
    (out / MANIFEST).write_bytes(data)
    bundle.manifest_sha256 = digest_of(data)
    sums = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(bundle.files.items()))
    (out / SUMS).write_text(sums, encoding="utf-8")
    return bundle


def _put_submission(sub: dict, inbox, put, bundle: Bundle, private_keys, store) -> dict:
    """One dropped file's sealed original, outcome and (optionally) workbook; its manifest entry."""
    from loaders.inbox import InboxError

    stem = f"submissions/{sub['id']}"
    entry = {
        "id": sub["id"],
        "object_key": sub["object_key"],
        "archived_key": sub["archived_key"],
        "status": sub["status"],
        "sealed_sha256": sub["sealed_sha256"],
        "workbook_sha256": sub["form_sha256"],
        "submitted_by": sub["submitted_by"],
        "received_at": iso(sub["received_at"]),
        "sla_due": iso(sub["sla_due"]),
        "completed_at": iso(sub["completed_at"]),
        "run_id": sub["run_id"],
        "sealed_file": None,
        "outcome_file": None,
        "workbook_file": None,
    }
    if sub["report"]:
        entry["outcome_file"] = put(f"{stem}-outcome.json", _json_bytes(json.loads(sub["report"])))
    elif sub["status"] != "processing":
        bundle.problems.append(f"submission {sub['id']}: no outcome recorded")
    # Where the original lies: its archive copy, or still the inbox while it is being processed.
    where = sub["archived_key"] or sub["object_key"]
    try:
        data = inbox.fetch(where, MAX_ORIGINAL_BYTES)
    except InboxError as exc:
        bundle.problems.append(f"submission {sub['id']}: the sealed original {where} could not be read: {exc}")
        return entry
    if len(data) > MAX_ORIGINAL_BYTES:
        bundle.problems.append(f"submission {sub['id']}: {where} is over {MAX_ORIGINAL_BYTES} bytes; not included")
        return entry
    if digest_of(data) != sub["sealed_sha256"]:
        bundle.problems.append(
            f"submission {sub['id']}: {where} does not match the sha256 recorded at receipt "
            f"({digest_of(data)} != {sub['sealed_sha256']}); included as found"
        )
    entry["sealed_file"] = put(f"{stem}-{_safe_name(sub['object_key'])}", data)
    if private_keys and sub["form_sha256"]:
        entry["workbook_file"] = _put_workbook(sub, data, stem, put, bundle, private_keys, store)
    return entry


def _put_workbook(sub: dict, sealed: bytes, stem: str, put, bundle: Bundle, private_keys, store) -> str | None:
    """Decrypt the original and include the workbook when its sha256 is the form's."""
    from grants.errors import FileRejected
    from loaders.envelope import SignerKey, open_sealed, signer_key_id_of

    # Evidence, not intake: a submitter revoked since still verifies as who signed it then.
    signers = {signer_key_id_of(s.public_key): SignerKey(s.submitter_id, s.public_key, True)
               for s in store.submitters()}
    try:
        plaintext = open_sealed(sealed, private_keys, signers=signers).plaintext
    except FileRejected as exc:
        bundle.problems.append(f"submission {sub['id']}: the original could not be opened: {exc.error.code}")
        return None
    if digest_of(plaintext) != sub["form_sha256"]:
        bundle.problems.append(f"submission {sub['id']}: the decrypted workbook is not the form recorded")
        return None
    return put(f"{stem}-workbook.xlsx", plaintext)


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")


def _audit_csv(rows: list[dict], columns) -> bytes:
    import io

    from loaders.exports import write_csv

    buffer = io.StringIO()
    write_csv(buffer, columns, rows)
    return buffer.getvalue().encode("utf-8")


# --------------------------------------------------------------------------------------------
# verifying, without the database


def verify_bundle(folder: Path, *, manifest_sha256: str | None = None) -> list[str]:
    """Every problem found re-hashing the bundle at `folder` (empty: it is as written).

    Checks: each file the manifest lists exists with its sha256; no file is there that it does
    not list; SHA256SUMS says the same; each sealed original hashes to the sha256 recorded at
    receipt; and, when given, the manifest's own sha256.
    """
    problems: list[str] = []
    manifest_path = folder / MANIFEST
    try:
        raw = manifest_path.read_bytes()
        manifest = json.loads(raw)
        listed: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{MANIFEST} unreadable: {exc}"]
    if manifest_sha256 and digest_of(raw) != manifest_sha256.strip().lower():
        problems.append(f"{MANIFEST} has sha256 {digest_of(raw)}, not the {manifest_sha256} recorded")
    for rel, digest in sorted(listed.items()):
        path = folder / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            problems.append(f"{rel}: not a path inside the bundle")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif digest_of(path.read_bytes()) != digest:
            problems.append(f"{rel}: changed (sha256 {digest_of(path.read_bytes())}, manifest {digest})")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    for rel in sorted(present - set(listed) - {MANIFEST, SUMS}):
        problems.append(f"{rel}: not in the manifest")
    problems += _check_sums(folder / SUMS, listed)
    for sub in manifest.get("submissions", []):
        rel = sub.get("sealed_file")
        if rel and listed.get(rel) != sub.get("sealed_sha256"):
            recorded = sub.get("sealed_sha256")
            problems.append(f"{rel}: not the sealed file received (sha256 recorded at receipt {recorded})")
    return problems


def _check_sums(path: Path, listed: dict[str, str]) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        return [f"{SUMS} unreadable: {exc}"]
    sums = {}
    for line in lines:
        digest, _, rel = line.partition("  ")
        sums[rel] = digest
    return [] if sums == listed else [f"{SUMS} does not agree with {MANIFEST}"]


def describe(bundle: Bundle) -> str:
    """A few lines for the terminal: where, how many files, the manifest's sha256, any problem."""
    lines = [
        f"evidence of form {bundle.form_sha256} written to {bundle.path} ({len(bundle.files)} files + manifest)",
        f"manifest sha256: {bundle.manifest_sha256}  (record it: `delegation evidence verify "
        f"{os.fspath(bundle.path)} --manifest-sha256 {bundle.manifest_sha256}`)",
    ]
    lines += [f"INCOMPLETE: {p}" for p in bundle.problems]
    return "\n".join(lines)
