"""Removing access: only those who may grant may remove; one transaction; `revoked` audit rows."""

from __future__ import annotations

import pytest
from store_builders import (
    ALEX,
    BACKENDS,
    BIZ,
    DIRECTORY,
    LAN,
    RECEIVED,
    dump,
    form_of,
    grant_levels,
    scratch_store,
    sha,
)

from loaders.store import Store, revoke


@pytest.fixture
def store(db_url):
    s = Store.connect(db_url)
    s.load_directory(DIRECTORY)
    s.apply_form(form_of(LAN, ALEX, BIZ[:15]), sha(1), received_at=RECEIVED)  # Alex: High on BIZ[:15]
    yield s
    s.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def shared_store(request, tmp_path_factory):
    """One database per backend for the refusals, which change nothing."""
    with scratch_store(request.param, request, tmp_path_factory.mktemp("shared")) as s:
        s.apply_form(form_of(LAN, ALEX, BIZ[:15]), sha(1), received_at=RECEIVED)
        yield s


def test_an_authorized_user_removes_a_third_party_from_some_accounts(store):
    result = store.revoke(
        person_email="alex@consult.example",
        by_email="Lan@NguyenFoods.example",
        account_ids=["1000000002", "1000000003", "1000000020"],
    )
    assert result.ok and result.revoked == [("1000000002", "High"), ("1000000003", "High")]  # none on ...20
    assert "1000000002" not in grant_levels(store, "P-ALEX")
    rows = [r for r in store.audit_rows(person_email="alex@consult.example") if r["action"] == "revoked"]
    assert [
        (r["account_id"], r["old_level"], r["new_level"], r["requester_email"], r["form_sha256"]) for r in rows
    ] == [
        ("1000000002", "High", None, "lan@nguyenfoods.example", None),
        ("1000000003", "High", None, "lan@nguyenfoods.example", None),
    ]


def test_removing_a_person_from_a_customer_removes_them_from_all_its_accounts_and_only_those(store):
    result = store.revoke(person_email="alex@consult.example", by_email="lan@nguyenfoods.example", customer_id="C-BIZ")
    assert result.ok and [a for a, _ in result.revoked] == list(BIZ[:15])
    assert grant_levels(store, "P-ALEX") == {
        "0000000101": ("Read Only", "active"),
        "2000000001": ("Read Only", "active"),
    }
    again = store.revoke(person_email="alex@consult.example", by_email="lan@nguyenfoods.example", customer_id="C-BIZ")
    assert again.ok and again.revoked == []


def test_the_primary_account_holder_removes_access_to_a_home(store):
    result = store.revoke(person_email="alex@consult.example", by_email="aiko@example.jp", customer_id="C-RES")
    assert result.ok and result.revoked == [("0000000101", "Read Only")]


@pytest.mark.parametrize(
    ("kwargs", "codes"),
    [
        pytest.param(
            {"by_email": "minh@nguyenfoods.example", "customer_id": "C-BIZ"},
            ["REQUESTER_NOT_AUTHORIZED"],
            id="a-direct-employee-may-not",
        ),
        pytest.param(
            {"by_email": "olga@othercorp.example", "account_ids": ["1000000001", "2000000001"]},
            ["REQUESTER_NOT_AUTHORIZED"],
            id="another-business-authorized-user",
        ),
        pytest.param(
            {"by_email": "lan@nguyenfoods.example", "account_ids": ["1000000001", "0000000101"]},
            ["REQUESTER_NOT_AUTHORIZED"],
            id="not-on-a-home",
        ),
        pytest.param({"by_email": "eve@probe.example", "customer_id": "C-BIZ"}, ["REQUESTER_UNKNOWN"], id="unknown-by"),
        pytest.param(
            {"by_email": "lan@nguyenfoods.example", "account_ids": ["1000000001", "1000000777"]},
            ["ACCOUNT_UNKNOWN"],
            id="unknown-account",
        ),
        pytest.param(
            {"by_email": "lan@nguyenfoods.example", "customer_id": "C-NOPE"}, ["ACCOUNT_UNKNOWN"], id="unknown-customer"
        ),
        pytest.param(
            {"by_email": "lan@nguyenfoods.example", "customer_id": "C-BIZ", "person_email": "nobody@nowhere.example"},
            ["DELEGATE_NOT_INVITED"],
            id="unknown-person",
        ),
    ],
)
def test_a_refused_removal_removes_nothing(shared_store, kwargs, codes):
    store = shared_store
    before = dump(store, "grants", "audit")
    result = store.revoke(**{"person_email": "alex@consult.example", **kwargs})
    assert [str(e.code) for e in result.errors] == codes and result.revoked == []
    assert dump(store, "grants", "audit") == before


def test_a_removal_inside_a_unit_of_work_is_rolled_back_unless_committed(store):
    before = dump(store, "grants", "audit")
    with store.unit_of_work() as uow:
        result = revoke(
            uow, person_email="alex@consult.example", by_email="lan@nguyenfoods.example", customer_id="C-BIZ"
        )
        assert len(result.revoked) == 15
    assert dump(store, "grants", "audit") == before


def test_either_accounts_or_a_customer_must_be_named(store):
    with pytest.raises(ValueError, match="either"):
        store.revoke(person_email="alex@consult.example", by_email="lan@nguyenfoods.example")
    with pytest.raises(ValueError, match="either"):
        store.revoke(
            person_email="alex@consult.example",
            by_email="lan@nguyenfoods.example",
            account_ids=["1000000001"],
            customer_id="C-BIZ",
        )
