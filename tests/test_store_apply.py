"""Judging and applying forms against the directory, on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from store_builders import (
    AIKO,
    ALEX,
    BACKENDS,
    BIZ,
    BIZ2,
    BIZ_CLOSED,
    DIRECTORY,
    LAN,
    LONE,
    MINH,
    NIA,
    OLGA,
    RECEIVED,
    RES,
    dump,
    form_of,
    grant_levels,
    scratch_store,
    sha,
    statements,
)

from grants.form import AccessLevel, Contact
from grants.outcome import Status
from loaders.store import Store, apply_form, record_rejected
from loaders.store import apply as apply_module
from loaders.store.schema import forms

FULL, HIGH, READ = AccessLevel.FULL, AccessLevel.HIGH, AccessLevel.READ_ONLY
NOW = RECEIVED + timedelta(minutes=5)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_store(request, tmp_path_factory):
    """One loaded database per backend for the tests that change no grant (rejections, judging)."""
    with scratch_store(request.param, request, tmp_path_factory.mktemp("shared")) as s:
        yield s


@pytest.fixture
def store(db_url):
    s = Store.connect(db_url)
    s.load_directory(DIRECTORY)
    yield s
    s.dispose()


def apply(store, form, n=1, **kwargs):
    with store.unit_of_work() as uow:
        result = apply_form(uow, form, sha(n), received_at=RECEIVED, now=NOW, **kwargs)
        uow.commit()
    return result


def form_row(store, n=1):
    with store.reading() as conn:
        return conn.execute(sa.select(forms).where(forms.c.sha256 == sha(n))).first()


STRANGER = Contact("Eve", "Probe", "eve@probe.example", "4155550199")

# Every directory-level code, as the spec words it; each form is otherwise valid.
REJECTIONS = [
    pytest.param(form_of(STRANGER, ALEX), ["REQUESTER_UNKNOWN"], id="requester-unknown"),
    pytest.param(form_of(replace(LAN, last_name="Nguyen"), ALEX), ["REQUESTER_MISMATCH"], id="requester-name"),
    pytest.param(form_of(replace(LAN, phone="4155550100"), ALEX), ["REQUESTER_MISMATCH"], id="requester-phone"),
    pytest.param(form_of(LAN, ALEX, (*BIZ[:14], "1000000777")), ["ACCOUNT_UNKNOWN"], id="account-unknown"),
    pytest.param(form_of(LAN, ALEX, (*BIZ[:14], BIZ_CLOSED)), ["ACCOUNT_CLOSED"], id="account-closed"),
    pytest.param(form_of(LAN, ALEX, (*BIZ[:14], BIZ2[0])), ["REQUESTER_NOT_AUTHORIZED"], id="other-business"),
    pytest.param(form_of(MINH, ALEX), ["REQUESTER_NOT_AUTHORIZED"] * 15, id="employee-is-not-authorized-user"),
    pytest.param(form_of(LAN, LONE), ["DELEGATE_NOT_INVITED"], id="delegate-without-access"),
    pytest.param(form_of(LAN, NIA), ["DELEGATE_NOT_INVITED"], id="delegate-only-invited"),
    pytest.param(form_of(LAN, replace(ALEX, email="alex@other.example")), ["DELEGATE_NOT_INVITED"], id="no-login"),
    pytest.param(form_of(LAN, replace(ALEX, first_name="Alexander")), ["DELEGATE_MISMATCH"], id="delegate-mismatch"),
    pytest.param(form_of(LAN, ALEX, BIZ[:15], FULL), ["FULL_ACCESS_THIRD_PARTY"] * 15, id="third-party-full"),
]


@pytest.mark.parametrize(("form", "expected"), REJECTIONS)
def test_every_directory_level_code_rejects_the_form_and_changes_nothing_else(shared_store, form, expected):
    store, n = shared_store, hash(form) % 10**9  # a workbook sha of its own
    before = dump(store, "grants", "audit")
    result = apply(store, form, n)
    assert [str(e.code) for e in result.errors] == expected
    assert result.status is Status.REJECTED and result.plan is None
    assert dump(store, "grants", "audit") == before
    row = form_row(store, n)
    assert (row.status, row.requester_email, row.delegate_email) == (
        "rejected",
        form.requester.email,
        form.delegate.email,
    )
    assert row.completed_at == NOW


def test_another_business_grants_on_its_own_accounts(store):
    assert apply(store, form_of(OLGA, ALEX, BIZ2)).status is Status.APPLIED


def test_judging_a_form_is_read_only_and_gives_the_plan(shared_store):
    store = shared_store
    before = dump(store)
    errors, plan = store.judge(form_of(LAN, ALEX))
    assert errors == [] and plan.counts() == {"created": 13, "updated": 1, "unchanged": 1}
    errors, plan = store.judge(form_of(LAN, LONE))
    assert [str(e.code) for e in errors] == ["DELEGATE_NOT_INVITED"] and plan is None
    assert dump(store) == before


def test_a_third_party_gets_high_access_on_a_business_account(store):
    result = apply(store, form_of(LAN, ALEX, BIZ[:15], HIGH), submitted_by="S1")
    assert result.status is Status.APPLIED
    # 1000000001 was High already, 1000000003 was an invitation at High: it becomes active
    assert result.plan.counts() == {"created": 13, "updated": 1, "unchanged": 1}
    assert grant_levels(store, "P-ALEX") == {
        **{a: ("High", "active") for a in BIZ[:15]},
        "0000000101": ("Read Only", "active"),
        "2000000001": ("Read Only", "active"),
    }
    row = form_row(store)
    assert (row.status, row.accounts, row.grants_created, row.grants_updated, row.grants_unchanged) == (
        "applied",
        15,
        13,
        1,
        1,
    )
    assert (row.received_at, row.completed_at, row.sla_due) == (RECEIVED, NOW, RECEIVED + timedelta(days=15))
    assert row.received_at.tzinfo is not None and row.submitted_by == "S1"


def test_an_invited_grant_becomes_active_at_the_forms_level_and_counts_as_changed(store):
    result = apply(store, form_of(LAN, ALEX, BIZ[:15], HIGH))
    [change] = [c for c in result.plan.changes if c.account_id == "1000000003"]
    assert (str(change.action), change.old_level, change.new_level) == ("changed", HIGH, HIGH)
    [audit] = store.audit_rows(account="1000000003")
    assert (audit["action"], audit["old_level"], audit["new_level"]) == ("changed", "High", "High")
    assert grant_levels(store, "P-ALEX")["1000000003"] == ("High", "active")


def test_the_primary_account_holder_grants_full_access_to_anyone(store):
    result = apply(store, form_of(AIKO, ALEX, RES, FULL))
    assert result.status is Status.APPLIED
    assert result.plan.counts() == {"created": 14, "updated": 1, "unchanged": 0}
    assert {grant_levels(store, "P-ALEX")[a] for a in RES} == {("Full", "active")}


def test_an_authorized_user_grants_full_access_to_a_direct_employee(store):
    result = apply(store, form_of(LAN, MINH, BIZ[:15], FULL))
    assert result.status is Status.APPLIED and result.plan.counts()["updated"] == 1  # Read Only -> Full


def test_an_applied_form_writes_one_audit_row_per_account_with_who_asked_and_who_submitted(store):
    form = form_of(LAN, ALEX, BIZ[:15], HIGH, levels={BIZ[1]: READ})
    apply(store, form, submitted_by="S1")
    rows = store.audit_rows(form=sha(1))
    assert [r["account_id"] for r in rows] == list(BIZ[:15])
    assert {r["action"] for r in rows} == {"granted", "changed", "unchanged"}
    assert {(r["requester_email"], r["submitted_by"], r["person_id"], r["email"]) for r in rows} == {
        ("lan@nguyenfoods.example", "S1", "P-ALEX", "alex@consult.example")
    }
    assert {r["at"] for r in rows} == {NOW}
    assert store.audit_rows(submitter="S1") == rows
    assert store.audit_rows(submitter="S2") == []
    assert [r["account_id"] for r in store.audit_rows(person_email="ALEX@consult.example ")] == list(BIZ[:15])
    assert grant_levels(store, "P-ALEX")[BIZ[1]] == ("Read Only", "active")


def test_grants_record_the_form_that_last_set_them(store):
    apply(store, form_of(LAN, ALEX, BIZ[:15], HIGH), n=1)
    apply(store, form_of(LAN, ALEX, BIZ[5:20], READ), n=2)
    by_account = {g["account_id"]: g for g in store.grants_rows() if g["person_id"] == "P-ALEX"}
    assert by_account["1000000001"]["form_sha256"] is None  # unchanged by form 1: still the directory's
    assert by_account["1000000002"]["form_sha256"] == sha(1)
    assert by_account["1000000006"]["form_sha256"] == sha(2)
    assert by_account["1000000020"]["access_level"] == "Read Only"


def test_the_same_workbook_applied_twice_is_a_duplicate_that_changes_nothing(store):
    form = form_of(LAN, ALEX)
    assert apply(store, form).status is Status.APPLIED
    before = dump(store)
    again = apply(store, form)
    assert (again.status, again.errors, again.plan) == (Status.DUPLICATE, [], None)
    assert dump(store) == before


def test_a_rejected_workbook_sent_again_is_judged_again(store, tmp_path):
    form = form_of(LAN, NIA, BIZ[1:16])  # Nia has not accepted her invitation yet
    assert apply(store, form).status is Status.REJECTED
    (tmp_path / "grants.csv").write_text(
        "account_id,person_id,access_level,status\n1000000002,P-NIA,High,active\n", encoding="utf-8"
    )
    store.load_directory(tmp_path)  # she accepts
    result = apply(store, form)
    assert result.status is Status.APPLIED and result.plan.counts() == {"created": 14, "updated": 0, "unchanged": 1}
    assert form_row(store).status == "applied"


def test_a_failure_in_the_middle_of_an_apply_leaves_no_grant_audit_or_form_row(store, monkeypatch):
    def broken_audit(conn, rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(apply_module, "insert_audit", broken_audit)
    before = dump(store)
    with pytest.raises(RuntimeError, match="disk full"), store.unit_of_work() as uow:
        apply_form(uow, form_of(LAN, ALEX), sha(1), received_at=RECEIVED)
        uow.commit()
    assert dump(store) == before
    assert form_row(store) is None


def test_an_apply_without_commit_is_rolled_back(store):
    before = dump(store)
    with store.unit_of_work() as uow:
        assert apply_form(uow, form_of(LAN, ALEX), sha(1), received_at=RECEIVED).status is Status.APPLIED
    assert dump(store) == before


def test_a_form_rejected_before_the_directory_is_recorded_but_never_over_an_applied_one(store):
    with store.unit_of_work() as uow:
        assert record_rejected(
            uow, sha(7), received_at=RECEIVED, requester_email=None, delegate_email=None, submitted_by="S1", now=NOW
        )
        uow.commit()
    row = form_row(store, 7)
    assert (row.status, row.submitted_by, row.sla_due) == ("rejected", "S1", RECEIVED + timedelta(days=15))
    apply(store, form_of(LAN, ALEX), n=8)
    with store.unit_of_work() as uow:
        assert not record_rejected(
            uow, sha(8), received_at=RECEIVED, requester_email="x@y.example", delegate_email=None, submitted_by=None
        )
        uow.commit()
    assert form_row(store, 8).status == "applied"


def test_the_number_of_statements_of_an_apply_does_not_grow_with_its_accounts(store):
    counts, mixed = [], []
    for n, (requester, accounts) in enumerate([(LAN, BIZ[:15]), (LAN, BIZ), (AIKO, RES)], start=1):
        with statements(store.engine) as seen:
            result = apply(store, form_of(requester, ALEX, accounts, READ), n=n)
            assert result.status is Status.APPLIED
        counts.append(len(seen))
        mixed.append(result.plan.created > 0 and result.plan.updated > 0)
    # New grants and changed ones are written by a statement each: the first form also changes
    # the grant of Alex's accepted invitation, the others only add grants.
    assert mixed == [True, False, False]
    assert counts[0] - 1 == counts[1] == counts[2] <= 12, counts
