"""Guarantee 6: the private key and decrypted workbooks never appear in logs, reports, artifacts or
exception messages, and no plaintext workbook is written to disk except the requester's own marked
copy attached to their rejection email.

Workbooks carry marker strings in cells that no error quotes; after a real `delegation run`, every
place the run writes to is searched for them, for the private key, and for the database password.
"""

from __future__ import annotations

import email
import io
import json
import logging
import random
import string
import zipfile
from email import policy
from pathlib import Path

import pytest

from flows.pipeline import process_item, process_items
from tests.pipeline_builders import (
    REQUESTER,
    STRANGER,
    Drop,
    deps_for,
    fixture_prefect_api,  # noqa: F401 (fixture)
    lines_for,
    make_world,
    run,
    seal,
    valid_drop,
    waiting,
    workbook,
)


def _marker(tag: str) -> str:
    """A name no one has: letters only, so that it is a valid name cell."""
    return f"Zq{tag}" + "".join(random.choices(string.ascii_lowercase, k=14))


def _with_macro(xlsx: bytes) -> bytes:
    """The workbook with a VBA project added: a macro-enabled workbook (quarantined, NOT_XLSX)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        dst.writestr("xl/vbaProject.bin", b"\x00" * 64)
    return out.getvalue()


def _secret_drops(world, markers: dict[str, str]) -> list[Drop]:
    d = world.delegates
    renamed = d[3].__class__(d[3].person_id, markers["rejected"], d[3].last_name, d[3].email, d[3].phone)
    bad = lines_for(renamed)
    bad[4] = (bad[4][0], "Superuser")  # the only error; the marker sits in cells no error quotes
    stranger = STRANGER.__class__("-", markers["to ops"], "Stranger", STRANGER.email, STRANGER.phone, employee=False)
    quarantined = _with_macro(workbook(REQUESTER, d[4].__class__(d[4].person_id, markers["quarantined"],
                                                                 d[4].last_name, d[4].email, d[4].phone),
                                       lines_for(d[4])))
    return [
        valid_drop(world, 1),
        Drop("rejected.xlsx.sealed", seal(workbook(REQUESTER, renamed, bad), world.keys), "rejected",
             ("ACCESS_LEVEL_INVALID",), mail_to=REQUESTER.email),
        Drop("to-ops.xlsx.sealed", seal(workbook(stranger, d[2], lines_for(d[2])), world.keys), "rejected",
             ("REQUESTER_UNKNOWN",), mail_to=world.ops),
        Drop("macro.xlsx.sealed", seal(quarantined, world.keys), "quarantined", ("NOT_XLSX",), mail_to=world.ops),
    ]


def _key_lines(pem: bytes) -> list[bytes]:
    return [line for line in pem.splitlines() if line and not line.startswith(b"-----")]


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def test_a_run_leaves_no_key_no_password_and_no_workbook_content_in_logs_reports_artifacts_or_files(
    tmp_path, pg_url, prefect_api
):
    password = "pw" + "".join(random.choices(string.ascii_lowercase, k=16))  # trust auth: any password works
    db_url = pg_url.replace("postgres@", f"postgres:{password}@")
    world = make_world(tmp_path / "w", db_url, delegates=6)
    markers = {k: _marker(k[:3]) for k in ("rejected", "to ops", "quarantined")}
    world.drop(*_secret_drops(world, markers))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = world.env(TMPDIR=str(temp))
    env["DELEGATION_DB_URL"] = db_url

    code, out = run(env, prefect_api, "--report-json", str(tmp_path / "report.json"), log=tmp_path / "run.log")
    assert code == 0, out

    secrets = [m.encode() for m in markers.values()] + _key_lines(world.keys.private_pem) + [password.encode()]
    prefect_files = _files(prefect_api.home)  # the API's database (logs, artifacts, parameters), the client's
    assert [p for p in prefect_files if p.name == "prefect.db"], "the Prefect API's database is searched"
    for path in [tmp_path / "run.log", tmp_path / "report.json", *prefect_files, *_files(world.inbox_root, temp)]:
        data = path.read_bytes()
        found = [s for s in secrets if s in data]
        assert not found, f"{path}: {found}"
        if path.is_relative_to(world.inbox_root) or path.is_relative_to(temp):
            assert not data.startswith(b"PK"), f"{path}: a plaintext workbook on disk"

    attachments = []
    for path in world.outbox.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        for part in msg.walk():
            payload = part.get_payload(decode=True) or b""
            if part.get_content_disposition() == "attachment" and payload.startswith(b"PK"):
                attachments.append((msg["To"], msg["Subject"], _unzipped(payload)))
                continue
            assert not [s for s in secrets if s in payload], f"{path.name}: {part.get_content_type()}"
    [(to, subject, content)] = attachments
    assert to == REQUESTER.email and "rejected" in subject, "only the requester's own marked copy"
    assert markers["rejected"].encode() in content, "the search would have found a workbook's content"
    report = json.loads((tmp_path / "report.json").read_text())
    assert {f["status"] for f in report["forms"]} == {"applied", "rejected", "quarantined"}


def _unzipped(xlsx: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        return b"".join(z.read(n) for n in z.namelist())


# --- exception messages, in-process -------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "status"),
    [("loaders.workbook.read_workbook", "quarantined"), ("loaders.marked.mark_workbook", None)],
    ids=["the workbook reader", "the marker of rejected workbooks"],
)
def test_an_exception_quoting_a_workbook_is_logged_by_its_type_only(where, status, tmp_path, sqlite_url, monkeypatch,
                                                                     caplog):
    world = make_world(tmp_path, sqlite_url, delegates=6)
    secret = _marker("exc")
    person = world.delegates[3]
    bad = lines_for(person)
    bad[4] = (bad[4][0], "Superuser")
    world.drop(Drop("form.xlsx.sealed", seal(workbook(REQUESTER, person, bad), world.keys), "rejected"))
    module, name = where.rsplit(".", 1)

    def leaky(*_args, **_kwargs):
        raise ValueError(f"cannot read cell E2 = {secret!r}")

    monkeypatch.setattr(f"{module}.{name}", leaky)
    deps = deps_for(world)
    caplog.set_level(logging.DEBUG)

    batch = process_items(deps, waiting(deps), run_id="leak")

    assert secret not in caplog.text
    assert "ValueError" in caplog.text, caplog.text
    if status is None:  # the file stays for the next run: nothing committed, nothing said
        assert batch.failed == ["inbox/form.xlsx.sealed"] and batch.done == []
    else:
        [outcome] = batch.done
        assert str(outcome.status) == status and secret not in json.dumps(outcome.to_report())
        assert not [p for p in world.outbox.glob("*.eml") if secret.encode() in p.read_bytes()]


def test_a_failure_to_decrypt_names_key_ids_never_key_material(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=3)
    world.drop(Drop("other.sealed", seal(b"x", world.keys, to_other_key=True), "quarantined"))
    deps = deps_for(world)

    outcome = process_item(deps, waiting(deps)[0], run_id="keys")

    message = outcome.errors[0].message
    assert "key id" in message
    assert not [line for line in _key_lines(world.keys.private_pem) if line.decode() in message]
