"""The product as its users meet it: `delegation run` over an inbox, end to end (issue 4).

A folder inbox with .eml files, then S3 on moto's server with SMTP on aiosmtpd, and the flow
itself under Prefect's test harness. Each dropped file must end in its place, with its report
entry and its email (none for a duplicate).
"""

from __future__ import annotations

import email
import json
import os
from email import policy

import pytest

from tests.pipeline_builders import (
    OPS,
    REQUESTER,
    Drop,
    fixture_prefect_api,  # noqa: F401 (fixture)
    lines_for,
    make_world,
    place_of,
    resealed,
    run,
    seal,
    valid_drop,
    workbook,
)
from tests.servers import RecordingHandler, aws_dummy_env, fixture_moto_endpoint, fixture_smtpd  # noqa: F401


def _the_six(world) -> list[Drop]:
    """Valid, invalid, duplicate, unsealed, tampered and garbage: one of each."""
    valid = valid_drop(world, 1, name="valid.xlsx.sealed")
    # Dropped after it, so the duplicate. (S3 times receipt to the second; same second: by key.)
    again = resealed(world, valid, "z-valid-again.xlsx.sealed")
    valid.status, again.status = "applied", "duplicate"
    lines = lines_for(world.delegates[1])
    lines[4] = (lines[4][0], "Everything")
    invalid = workbook(REQUESTER, world.delegates[1], lines)
    tampered = bytearray(seal(workbook(REQUESTER, world.delegates[2], lines_for(world.delegates[2])), world.keys))
    tampered[len(tampered) // 2] ^= 0x01
    return [
        valid,
        Drop("invalid.xlsx.sealed", seal(invalid, world.keys), "rejected", ("ACCESS_LEVEL_INVALID",),
             plaintext=invalid, mail_to=REQUESTER.email),
        again,
        Drop("unsealed.xlsx", invalid, "quarantined", ("NOT_ENCRYPTED",), mail_to=OPS),
        Drop("tampered.xlsx.sealed", bytes(tampered), "quarantined", ("DECRYPT_FAILED",), mail_to=OPS),
        Drop("garbage.sealed", bytes(range(256)) * 8, "quarantined", ("DECRYPT_FAILED",), mail_to=OPS),
    ]


# Each kind of end and the email it brings: subject word, attachment type (None: no attachment).
MAIL = {
    "applied": ("completed", "text/csv"),
    "rejected": ("rejected", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "quarantined": ("quarantined", None),
}


def _check(world, report: dict, messages: list[tuple[list[str], email.message.EmailMessage]]) -> None:
    entries = {e["key"]: e for e in report["forms"]}
    assert sorted(entries) == sorted(d.key for d in world.drops), "each file in the report once"
    places = {}
    for key in world.open_inbox().keys(""):
        place, name = key.rsplit("/", 1)
        places.setdefault(name, []).append(place)
    for d in world.drops:
        entry = entries[d.key]
        assert entry["status"] == d.status, (d.name, entry["errors"])
        assert {e["code"] for e in entry["errors"]} == set(d.codes), d.name
        assert places[d.name] == [place_of(d.status)], d.name
        assert entry["sla_due"] > entry["received_at"]
    valid = entries["inbox/valid.xlsx.sealed"]
    changes = valid["grants_created"] + valid["grants_updated"] + valid["grants_unchanged"]
    assert (valid["accounts"], changes) == (15, 15)
    assert valid["sha256"] == entries["inbox/z-valid-again.xlsx.sealed"]["sha256"]

    expected = sorted((d.mail_to, d.status) for d in world.drops if d.status != "duplicate")
    got = []
    for recipients, msg in messages:
        (status,) = [s for s, (word, _) in MAIL.items() if word in msg["Subject"]]
        got.append((recipients[0], status))
        attached = [part.get_content_type() for part in msg.iter_attachments()]
        assert attached == ([MAIL[status][1]] if MAIL[status][1] else []), (msg["Subject"], attached)
        assert {p.get_content_type() for p in msg.walk()} >= {"text/plain", "text/html"}
    assert sorted(got) == expected, "one email per form, to the right person, none for the duplicate"


def test_a_folder_inbox_run_puts_each_file_in_its_place_with_its_entry_and_email(prefect_api, tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=4)
    world.drop(*_the_six(world))

    code, out = run(world.env(), prefect_api, "--report-json", str(tmp_path / "report.json"), log=tmp_path / "log")

    assert code == 0, out
    report = json.loads((tmp_path / "report.json").read_text())
    messages = [([str(m["To"])], m) for m in
                (email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in world.outbox.glob("*.eml"))]
    _check(world, report, messages)


@pytest.mark.postgres
def test_an_s3_inbox_with_smtp_delivery_does_the_same_on_postgresql(prefect_api, tmp_path, pg_url, moto_endpoint,
                                                                     smtpd, monkeypatch):
    aws_dummy_env(monkeypatch, moto_endpoint)
    import boto3

    boto3.client("s3").create_bucket(Bucket="forms-e2e")
    world = make_world(tmp_path, pg_url, delegates=4, inbox_url="s3://forms-e2e/intake")
    world.drop(*_the_six(world))
    handler = RecordingHandler()
    server = smtpd(handler)
    env = {k: v for k, v in world.env().items() if k != "DELEGATION_OUTBOX_DIR"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    env["DELEGATION_SMTP_URL"] = f"smtp://{server.hostname}:{server.port}"

    code, out = run(env, prefect_api, "--report-json", str(tmp_path / "report.json"), log=tmp_path / "log")

    assert code == 0, out
    report = json.loads((tmp_path / "report.json").read_text())
    messages = [(m.rcpt_tos, email.message_from_bytes(m.content, policy=policy.default)) for m in handler.messages]
    _check(world, report, messages)


def test_the_flow_runs_under_prefects_test_harness_and_returns_the_report(tmp_path, sqlite_url, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness

    from flows.process_inbox import process_inbox

    world = make_world(tmp_path, sqlite_url, delegates=2)
    world.drop(valid_drop(world, 1))
    monkeypatch.setenv("DELEGATION_PRIVATE_KEY_FILE", str(world.keys.intake_key))
    monkeypatch.setenv("DELEGATION_DB_URL", sqlite_url)
    with prefect_test_harness(server_startup_timeout=60):
        result = process_inbox(inbox_url=world.url, outbox_dir=str(world.outbox))
    assert [(f["key"], f["status"]) for f in result["forms"]] == [("inbox/valid-01.xlsx.sealed", "applied")]
