"""Who dropped this form (issue 8): the verified submitter is recorded everywhere an auditor looks.

The envelope's own signature cases (revoked, unknown, altered, swapped, key id altered) are proven
at the envelope in test_envelope.py; here the pipeline carries the result through.
"""

from __future__ import annotations

import boto3
import pytest

from flows.pipeline import process_items
from flows.report import RunReport
from loaders.store import Store
from tests.pipeline_builders import REQUESTER, deps_for, make_world, valid_drop, waiting
from tests.servers import aws_dummy_env, fixture_moto_endpoint  # noqa: F401 (fixture)


def _run(world, **settings):
    deps = deps_for(world, **settings)
    return process_items(deps, waiting(deps), run_id="t")


def test_a_form_signed_by_an_active_submitter_names_them_in_report_audit_and_artifacts(tmp_path, db_url):
    world = make_world(tmp_path, db_url, delegates=2, submitter=True)
    world.drop(valid_drop(world, 1, signed=True))

    (outcome,) = _run(world, require_signature=True).done

    assert (str(outcome.status), outcome.submitted_by) == ("applied", "S1")
    assert outcome.to_report()["submitted_by"] == "S1"
    store = Store.connect(db_url)
    try:
        audit = store.audit_rows(submitter="S1")
        assert len(audit) == 15 and {r["submitted_by"] for r in audit} == {"S1"}
        assert store.audit_rows(submitter="S2") == []
    finally:
        store.dispose()
    report = RunReport("t", outcome.received_at, outcomes=[outcome])
    assert report.table()[0]["submitted_by"] == "S1"


@pytest.mark.parametrize(
    ("signed", "require", "status", "codes", "submitted_by"),
    [
        (False, False, "applied", [], None),
        (False, True, "quarantined", ["SIGNATURE_MISSING"], None),
        (True, False, "applied", [], "S1"),
    ],
    ids=["unsigned accepted by default", "unsigned refused when required", "signed accepted"],
)
def test_unsigned_forms_are_accepted_unless_signatures_are_required(tmp_path, sqlite_url, signed, require, status,
                                                                     codes, submitted_by):
    world = make_world(tmp_path, sqlite_url, delegates=2, submitter=True)
    world.drop(valid_drop(world, 1, signed=signed))
    (outcome,) = _run(world, require_signature=require).done
    assert (str(outcome.status), [str(e.code) for e in outcome.errors], outcome.submitted_by) == (
        status, codes, submitted_by)


def test_a_form_signed_by_a_revoked_submitter_is_quarantined_as_signature_invalid(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=2, submitter=True)
    submitters = world.directory / "submitters.csv"
    submitters.write_text(submitters.read_text().replace(",active", ",revoked"))
    store = Store.connect(sqlite_url)
    store.load_directory(world.directory)
    store.dispose()
    world.drop(valid_drop(world, 1, signed=True))

    (outcome,) = _run(world).done

    assert (str(outcome.status), [str(e.code) for e in outcome.errors]) == ("quarantined", ["SIGNATURE_INVALID"])
    assert outcome.sha256 is None, "nothing was decrypted"


def test_the_confirmation_goes_to_the_requesters_login_address_on_file(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=2)
    world.drop(valid_drop(world, 1))
    _run(world)
    (eml,) = world.outbox.glob("*.eml")
    assert f"To: {REQUESTER.email}" in eml.read_text()


@pytest.mark.parametrize(
    ("metadata", "warned"),
    [({"submitted-by": "S1"}, False), ({"submitted-by": "S9"}, True), ({}, False)],
    ids=["metadata agrees with the signer", "metadata names someone else", "no metadata"],
)
def test_s3_submitted_by_metadata_is_recorded_and_a_mismatch_with_the_signer_reported(
    tmp_path, sqlite_url, moto_endpoint, monkeypatch, metadata, warned
):
    aws_dummy_env(monkeypatch, moto_endpoint)
    bucket = f"meta-{len(tmp_path.name)}-{abs(hash(str(metadata))) % 10**6}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    world = make_world(tmp_path, sqlite_url, delegates=2, submitter=True, inbox_url=f"s3://{bucket}/root")
    drop = valid_drop(world, 1, signed=True)
    world.open_inbox().put(drop.key, drop.data, metadata=metadata)

    (outcome,) = _run(world).done

    entry = outcome.to_report()
    assert (entry["status"], entry["submitted_by"], entry["dropped_by"]) == (
        "applied", "S1", metadata.get("submitted-by"))
    assert bool(entry["warnings"]) is warned
    if warned:
        assert "S9" in entry["warnings"][0] and "S1" in entry["warnings"][0]
