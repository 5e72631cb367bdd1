"""The evidence bundle of one form: what it holds, that it verifies, and that tampering shows (issue 6).

Forms go through the real pipeline (flows.pipeline.process_item, no Prefect) on a folder inbox, so
the sealed originals, outcomes, audit rows and emails are the ones a production run leaves.
"""

from __future__ import annotations

import csv
import email
import hashlib
import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import cli
from flows.evidence import FormNotFound, verify_bundle, write_bundle
from flows.pipeline import Deps, process_item
from flows.settings import Settings
from loaders.store import Store

SAMPLES = Path(__file__).resolve().parent.parent / "sample_forms"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Processed:
    db_url: str
    inbox_url: str
    key_file: Path
    workbook: bytes
    sealed: dict[str, bytes]  # inbox key -> sealed bytes as dropped
    garbage_sha: str


@pytest.fixture
def processed(db_url, tmp_path) -> Processed:
    """valid_20 applied, then the same workbook resent (duplicate), and a file that is no envelope."""
    from loaders.envelope import generate_intake_keypair, seal
    from loaders.inbox import open_inbox

    private, public = generate_intake_keypair()
    key_file = tmp_path / "intake.key"
    key_file.write_bytes(private)
    store = Store.connect(db_url)
    store.load_directory(SAMPLES / "directory")
    store.dispose()
    workbook = (SAMPLES / "valid_20.xlsx").read_bytes()
    inbox_url = str(tmp_path / "inbox")
    inbox = open_inbox(inbox_url)
    inbox.ensure_layout()
    sealed = {"inbox/acme-2026-11.xlsx.sealed": seal(workbook, public),
              "inbox/acme-2026-11-again.xlsx.sealed": seal(workbook, public)}
    garbage = os.urandom(512)
    for n, (key, data) in enumerate([*sealed.items(), ("inbox/scan.sealed", garbage)]):
        inbox.put(key, data)
        stamp = 1_795_000_000 + n  # distinct receipt times, in order
        os.utime(tmp_path / "inbox" / key, (stamp, stamp))
    settings = Settings(db_url=db_url, inbox_url=inbox_url, private_key_files=(str(key_file),),
                        outbox_dir=str(tmp_path / "outbox"), ops_email="ops@evidence.example")
    deps = Deps.build(settings)
    try:
        items = sorted(deps.inbox.waiting(), key=lambda i: i.received_at)
        statuses = [str(process_item(deps, item, run_id="evidence-test").status) for item in items]
    finally:
        deps.store.dispose()
    assert statuses == ["applied", "duplicate", "quarantined"]
    return Processed(db_url, inbox_url, key_file, workbook, sealed, _sha(garbage))


def _bundle(p: Processed, sha: str, out: Path, **kwargs):
    from loaders.inbox import open_inbox

    store = Store.connect(p.db_url)
    try:
        return write_bundle(store, open_inbox(p.inbox_url), sha, out, **kwargs)
    finally:
        store.dispose()


def test_the_bundle_holds_the_originals_outcomes_audit_rows_and_emails_and_verifies(processed, tmp_path):
    form = _sha(processed.workbook)
    out = tmp_path / "bundle"
    bundle = _bundle(processed, form, out)
    assert bundle.complete, bundle.problems
    assert verify_bundle(out) == []
    assert verify_bundle(out, manifest_sha256=bundle.manifest_sha256) == []

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["form_sha256"] == form and manifest["form"]["status"] == "applied"
    assert manifest["form"]["requester_email"] == "hanako.yamada@sakura-trading.example"
    # both dropped files with this content, each sealed original byte for byte as received
    subs = manifest["submissions"]
    assert [(s["object_key"], s["status"]) for s in subs] == [
        ("inbox/acme-2026-11.xlsx.sealed", "applied"), ("inbox/acme-2026-11-again.xlsx.sealed", "duplicate")]
    for sub in subs:
        assert sub["archived_key"].startswith(f"archive/{sub['status']}/")
        assert (out / sub["sealed_file"]).read_bytes() == processed.sealed[sub["object_key"]]
        outcome = json.loads((out / sub["outcome_file"]).read_text())
        assert (outcome["status"], outcome["sha256"], outcome["key"]) == (sub["status"], form, sub["object_key"])
        assert outcome["sla_due"] == sub["sla_due"]
    # the audit rows, exactly as `delegation audit --form` writes them
    audit_csv = (out / "audit.csv").read_text()
    cli_csv = CliRunner().invoke(cli, ["audit", "--db", processed.db_url, "--form", form]).output
    assert audit_csv == cli_csv
    rows = list(csv.DictReader(io.StringIO(audit_csv)))
    assert len(rows) == manifest["audit"]["rows"] == 20 and {r["form_sha256"] for r in rows} == {form}
    # the one email (a duplicate gets none), as queued
    (mail,) = manifest["emails"]
    message = email.message_from_bytes((out / mail["file"]).read_bytes(), policy=policy.default)
    assert mail["kind"] == "applied" and "completed" in message["Subject"]
    assert message["Message-ID"] == mail["message_id"]
    assert mail["recipients"] == ["hanako.yamada@sakura-trading.example"] and mail["delivery"] == "sent"
    # and the sums for people without our tool
    sums = dict(reversed(line.split("  ", 1)) for line in (out / "SHA256SUMS").read_text().splitlines())
    assert sums == manifest["files"] and "manifest.json" not in sums
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out, check=True)


def test_a_changed_added_or_removed_file_is_found(processed, tmp_path):
    out = tmp_path / "bundle"
    bundle = _bundle(processed, _sha(processed.workbook), out)
    pristine = tmp_path / "pristine"
    shutil.copytree(out, pristine)

    audit = out / "audit.csv"
    audit.write_text(audit.read_text().replace("High", "Full", 1))
    (out / "emails" / "extra.eml").write_bytes(b"Subject: hello\r\n\r\n")
    next((out / "submissions").glob("*-outcome.json")).unlink()
    problems = verify_bundle(out)
    assert any(p.startswith("audit.csv: changed") for p in problems)
    assert "emails/extra.eml: not in the manifest" in problems
    assert any(p.endswith("-outcome.json: missing") for p in problems)

    # rewriting the manifest to match is caught by SHA256SUMS, or by the manifest's recorded sha256
    manifest = json.loads((pristine / "manifest.json").read_text())
    sealed = manifest["submissions"][0]["sealed_file"]
    (pristine / sealed).write_bytes(b"another file")
    manifest["files"][sealed] = _sha(b"another file")
    (pristine / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_bundle(pristine, manifest_sha256=bundle.manifest_sha256)
    assert "SHA256SUMS does not agree with manifest.json" in problems
    assert any("not the sealed file received" in p for p in problems)
    assert any(p.startswith("manifest.json has sha256") for p in problems)


def test_a_quarantined_file_is_found_by_its_sealed_sha256_with_the_operations_email(processed, tmp_path):
    out = tmp_path / "bundle"
    bundle = _bundle(processed, processed.garbage_sha, out)
    assert bundle.complete and verify_bundle(out) == []
    manifest = json.loads((out / "manifest.json").read_text())
    (sub,) = manifest["submissions"]
    assert sub["status"] == "quarantined" and sub["archived_key"] == "quarantine/scan.sealed"
    assert manifest["form"] is None and manifest["audit"]["rows"] == 0
    (mail,) = manifest["emails"]
    assert mail["kind"] == "quarantined" and mail["recipients"] == ["ops@evidence.example"]


def test_the_workbook_is_included_only_when_asked_and_matches_the_form(processed, tmp_path):
    from loaders.envelope import load_private_keys

    form = _sha(processed.workbook)
    out = tmp_path / "bundle"
    bundle = _bundle(processed, form, out, private_keys=load_private_keys(str(processed.key_file)))
    assert bundle.complete, bundle.problems
    manifest = json.loads((out / "manifest.json").read_text())
    for sub in manifest["submissions"]:
        assert (out / sub["workbook_file"]).read_bytes() == processed.workbook
    _bundle(processed, form, tmp_path / "plain")  # without keys: no personal data beyond the sealed file
    assert not list((tmp_path / "plain").rglob("*.xlsx"))
    plain = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert [s["workbook_file"] for s in plain["submissions"]] == [None, None]


def test_a_missing_original_makes_the_bundle_incomplete(processed, tmp_path):
    (Path(processed.inbox_url) / "archive" / "applied" / "acme-2026-11.xlsx.sealed").unlink()
    bundle = _bundle(processed, _sha(processed.workbook), tmp_path / "bundle")
    assert not bundle.complete and "could not be read" in bundle.problems[0]
    assert verify_bundle(tmp_path / "bundle") == []  # what is there is intact; the manifest says what is not
    assert json.loads((tmp_path / "bundle" / "manifest.json").read_text())["problems"] == bundle.problems


def test_an_unknown_form_and_a_used_folder_are_refused(processed, tmp_path):
    with pytest.raises(FormNotFound):
        _bundle(processed, "f" * 64, tmp_path / "none")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        _bundle(processed, _sha(processed.workbook), tmp_path / "used")


def test_the_commands_write_and_verify_a_bundle(processed, tmp_path):
    runner = CliRunner()
    form = _sha(processed.workbook)
    out = tmp_path / "bundle"
    made = runner.invoke(cli, ["evidence", "--form", form.upper(), "-o", str(out), "--db", processed.db_url,
                               "--inbox", processed.inbox_url])
    assert made.exit_code == 0, made.output
    assert f"evidence of form {form}" in made.output and "manifest sha256: " in made.output
    recorded = made.output.split("manifest sha256: ")[1].split()[0]
    ok = runner.invoke(cli, ["evidence", "verify", str(out), "--manifest-sha256", recorded])
    assert ok.exit_code == 0 and ok.output.startswith("OK: ")
    (out / "audit.csv").write_text("at\n")
    bad = runner.invoke(cli, ["evidence", "verify", str(out)])
    assert bad.exit_code == 1 and "FAIL audit.csv: changed" in bad.stderr
    missing = runner.invoke(cli, ["evidence", "--form", form, "-o", str(tmp_path / "b2"), "--db", processed.db_url],
                            env={"DELEGATION_INBOX_URL": ""})
    assert missing.exit_code == 2 and "--inbox" in missing.output
    unknown = runner.invoke(cli, ["evidence", "--form", "0" * 64, "-o", str(tmp_path / "b3"),
                                  "--db", processed.db_url, "--inbox", processed.inbox_url])
    assert unknown.exit_code == 1 and "knows no form" in unknown.output
