"""The access rules as pure functions of (form, snapshot): every directory-level code, no database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grants.directory import Account, CustomerType, Grant, GrantStatus, Person, Role, Snapshot
from grants.errors import Code
from grants.form import AccessLevel, AccountLine, Contact, DelegateForm, PhoneType
from grants.rules import check, may_grant, may_hold

FULL, HIGH, READ = AccessLevel.FULL, AccessLevel.HIGH, AccessLevel.READ_ONLY
RES, BIZ = CustomerType.RESIDENTIAL, CustomerType.BUSINESS

OWNER = Person("P-OWN", "Aiko", "Tanaka", "aiko@example.jp", "4155550103")  # primary holder of C-RES
AUTH = Person("P-AUTH", "Lan", "Nguyễn", "lan@biz.example", "4155550101")  # authorized user of C-BIZ
EMPLOYEE = Person("P-EMP", "Minh", "Trần", "minh@biz.example", "4155550102")  # direct employee of C-BIZ
OUTSIDER = Person("P-OUT", "Alex", "Rivera", "alex@consult.example", "4155550104")  # a third party

ACCOUNTS = {
    "1000000001": Account("1000000001", "C-BIZ", BIZ, False),
    "1000000002": Account("1000000002", "C-BIZ", BIZ, False),
    "1000000099": Account("1000000099", "C-BIZ", BIZ, True),
    "0000000101": Account("0000000101", "C-RES", RES, False),
    "0000000102": Account("0000000102", "C-RES", RES, False),
    "0000000199": Account("0000000199", "C-RES", RES, True),
    "2000000001": Account("2000000001", "C-OTHER", BIZ, False),
    "2000000099": Account("2000000099", "C-OTHER", BIZ, True),
}
ROLES = {
    ("C-RES", "P-OWN"): Role.PRIMARY_ACCOUNT_HOLDER,
    ("C-BIZ", "P-AUTH"): Role.AUTHORIZED_USER,
    ("C-BIZ", "P-EMP"): Role.DIRECT_EMPLOYEE,
}


def contact(p: Person) -> Contact:
    return Contact(p.first_name, p.last_name, p.email, p.phone)


def form_of(requester: Person, delegate: Person, *lines: tuple[str, AccessLevel]) -> DelegateForm:
    return DelegateForm(
        contact(requester),
        contact(delegate),
        PhoneType.MOBILE,
        tuple(AccountLine(row, account, level) for row, (account, level) in enumerate(lines, start=2)),
    )


def snapshot_for(form: DelegateForm, *people: Person, active_at: tuple[str, ...] = ("C-BIZ", "C-RES")) -> Snapshot:
    """The snapshot the store would load: `people` exist; the delegate is active at `active_at`."""
    by_email = {p.email: p for p in people}
    requester, delegate = by_email.get(form.requester.email), by_email.get(form.delegate.email)
    wanted = set(form.account_ids)
    return Snapshot(
        requester=requester,
        delegate=delegate,
        accounts={k: v for k, v in ACCOUNTS.items() if k in wanted},
        roles=dict(ROLES),
        delegate_active_customers=frozenset(active_at) if delegate else frozenset(),
    )


EVERYONE = (OWNER, AUTH, EMPLOYEE, OUTSIDER)


def codes(errors) -> list[str]:
    return [str(e.code) for e in errors]


@pytest.mark.parametrize(
    ("requester", "delegate", "level", "accounts", "expected"),
    [
        pytest.param(OWNER, OUTSIDER, FULL, ("0000000101", "0000000102"), [], id="residential-holder-full-to-anyone"),
        pytest.param(OWNER, OUTSIDER, READ, ("0000000101",), [], id="residential-holder-read-only"),
        pytest.param(AUTH, EMPLOYEE, FULL, ("1000000001", "1000000002"), [], id="business-full-to-employee"),
        pytest.param(AUTH, OUTSIDER, HIGH, ("1000000001", "1000000002"), [], id="business-high-to-third-party"),
        pytest.param(AUTH, OUTSIDER, READ, ("1000000001",), [], id="business-read-only-to-third-party"),
        pytest.param(
            AUTH,
            OUTSIDER,
            FULL,
            ("1000000001", "1000000002"),
            ["FULL_ACCESS_THIRD_PARTY"] * 2,
            id="business-full-to-third-party",
        ),
        pytest.param(EMPLOYEE, OUTSIDER, HIGH, ("1000000001",), ["REQUESTER_NOT_AUTHORIZED"], id="employee-may-not"),
        pytest.param(OUTSIDER, EMPLOYEE, HIGH, ("0000000101",), ["REQUESTER_NOT_AUTHORIZED"], id="stranger-on-a-home"),
        pytest.param(AUTH, OUTSIDER, HIGH, ("2000000001",), ["REQUESTER_NOT_AUTHORIZED"], id="another-business"),
        pytest.param(AUTH, OUTSIDER, HIGH, ("1000000099",), ["ACCOUNT_CLOSED"], id="closed"),
        pytest.param(AUTH, OUTSIDER, HIGH, ("1234567890",), ["ACCOUNT_UNKNOWN"], id="unknown"),
    ],
)
def test_the_access_model_decides_who_may_grant_what(requester, delegate, level, accounts, expected):
    form = form_of(requester, delegate, *((a, level) for a in accounts))
    assert codes(check(form, snapshot_for(form, *EVERYONE))) == expected


def test_a_third_party_cannot_get_full_access_to_a_business_account():
    form = form_of(AUTH, OUTSIDER, ("1000000001", HIGH), ("1000000002", FULL))
    [error] = check(form, snapshot_for(form, *EVERYONE))
    assert (error.code, error.row, error.column, error.value) == (
        Code.FULL_ACCESS_THIRD_PARTY,
        3,
        "Access Level",
        "Full",
    )
    assert "High or Read Only" in error.message


def test_an_authorized_user_counts_as_a_direct_employee_of_their_business():
    other_auth = Person("P-AUTH2", "Bao", "Lê", "bao@biz.example", "4155550109")
    form = form_of(AUTH, other_auth, ("1000000001", FULL))
    snap = snapshot_for(form, AUTH, other_auth)
    snap = replace(snap, roles={**snap.roles, ("C-BIZ", "P-AUTH2"): Role.AUTHORIZED_USER})
    assert check(form, snap) == []


def test_an_unknown_requester_gets_only_that_error_and_nothing_about_accounts_or_people():
    stranger = Person("P-X", "Eve", "Probe", "eve@probe.example", "4155550199")
    form = form_of(stranger, OUTSIDER, ("1234567890", FULL), ("2000000001", FULL), ("1000000099", HIGH))
    [error] = check(form, snapshot_for(form, *EVERYONE))
    assert error.code is Code.REQUESTER_UNKNOWN
    assert (error.row, error.column, error.value) == (None, "Requester Primary Email", "eve@probe.example")


@pytest.mark.parametrize(
    ("field", "written", "column"),
    [
        ("first_name", "lan", "Requester First Name"),  # names compare exactly, case included
        ("last_name", "Nguyen", "Requester Last Name"),  # and marks included
        ("phone", "4155550199", "Requester Primary Phone"),
    ],
)
def test_a_requester_whose_name_or_phone_differs_is_told_which_field_but_not_the_stored_value(field, written, column):
    form = form_of(replace(AUTH, **{field: written}), OUTSIDER, ("1234567890", FULL))
    [error] = check(form, snapshot_for(form, *EVERYONE))
    assert (error.code, error.column, error.value) == (Code.REQUESTER_MISMATCH, column, written)
    assert getattr(AUTH, field) not in error.message
    assert error.row is None


def test_every_mismatched_requester_field_is_reported_at_once():
    form = form_of(replace(AUTH, first_name="Lam", phone="4155550100"), OUTSIDER, ("1000000001", HIGH))
    errors = check(form, snapshot_for(form, *EVERYONE))
    assert [(e.code, e.column) for e in errors] == [
        (Code.REQUESTER_MISMATCH, "Requester First Name"),
        (Code.REQUESTER_MISMATCH, "Requester Primary Phone"),
    ]


@pytest.mark.parametrize(
    ("delegate", "active_at"),
    [
        pytest.param(Person("P-N", "No", "Body", "nobody@nowhere.example", "4155550111"), (), id="no-login"),
        pytest.param(OUTSIDER, (), id="no-active-access-anywhere"),
        pytest.param(OUTSIDER, ("C-OTHER",), id="active-only-at-a-customer-not-on-the-form"),
    ],
)
def test_a_delegate_without_an_accepted_invitation_to_these_customers_is_not_invited(delegate, active_at):
    form = form_of(AUTH, delegate, ("1000000001", HIGH), ("1000000002", HIGH))
    people = (*EVERYONE, delegate)
    [error] = check(form, snapshot_for(form, *people, active_at=active_at))
    assert (error.code, error.column, error.value) == (Code.DELEGATE_NOT_INVITED, "Delegate Email", delegate.email)


def test_the_not_invited_message_is_the_same_whether_or_not_the_email_has_a_login():
    nobody = Person("P-N", "No", "Body", "alex@consult.example", "4155550111")
    form = form_of(AUTH, OUTSIDER, ("1000000001", HIGH))
    with_login = check(form, snapshot_for(form, *EVERYONE, active_at=()))
    without_login = check(form, snapshot_for(form, AUTH, active_at=()))
    assert with_login == without_login
    assert nobody.email in with_login[0].message


def test_nothing_is_said_about_the_delegate_when_the_requester_may_grant_on_no_account_of_the_form():
    form = form_of(EMPLOYEE, replace(OUTSIDER, first_name="Wrong"), ("1000000001", HIGH))
    assert codes(check(form, snapshot_for(form, *EVERYONE, active_at=()))) == ["REQUESTER_NOT_AUTHORIZED"]


def test_access_at_a_customer_the_requester_cannot_grant_on_does_not_count_as_invited():
    # Otherwise a form could reveal who holds access to another customer's accounts.
    form = form_of(AUTH, OUTSIDER, ("1000000001", HIGH), ("2000000001", HIGH))
    errors = check(form, snapshot_for(form, *EVERYONE, active_at=("C-OTHER",)))
    assert codes(errors) == ["DELEGATE_NOT_INVITED", "REQUESTER_NOT_AUTHORIZED"]


@pytest.mark.parametrize(
    ("field", "written", "column"),
    [
        ("first_name", "Alexander", "Delegate First Name"),
        ("last_name", "RIVERA", "Delegate Last Name"),
        ("phone", "4155550100", "Delegate Primary Phone"),
    ],
)
def test_a_delegate_whose_details_differ_from_their_record_is_mismatched(field, written, column):
    form = form_of(AUTH, replace(OUTSIDER, **{field: written}), ("1000000001", HIGH))
    [error] = check(form, snapshot_for(form, *EVERYONE))
    assert (error.code, error.column, error.value) == (Code.DELEGATE_MISMATCH, column, written)
    assert getattr(OUTSIDER, field) not in error.message


def test_a_mismatch_is_not_reported_for_a_delegate_who_is_not_invited():
    form = form_of(AUTH, replace(OUTSIDER, first_name="Alexander"), ("1000000001", HIGH))
    assert codes(check(form, snapshot_for(form, *EVERYONE, active_at=()))) == ["DELEGATE_NOT_INVITED"]


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        ("1000000099", "ACCOUNT_CLOSED"),  # the requester's own closed account
        ("2000000099", "REQUESTER_NOT_AUTHORIZED"),  # a stranger's closed account: not described
        ("0000000199", "REQUESTER_NOT_AUTHORIZED"),
        ("9999999999", "ACCOUNT_UNKNOWN"),
    ],
)
def test_row_errors_name_the_row_the_account_id_column_and_the_value(account, expected):
    form = form_of(AUTH, OUTSIDER, ("1000000001", HIGH), (account, HIGH))
    [error] = check(form, snapshot_for(form, *EVERYONE))
    assert (str(error.code), error.row, error.column, error.value) == (expected, 3, "Account ID", account)


def test_every_error_of_a_form_comes_back_at_once_delegate_first_then_rows_in_order():
    form = form_of(
        AUTH,
        replace(OUTSIDER, last_name="Rivers"),
        ("1000000001", FULL),
        ("9999999999", HIGH),
        ("1000000099", HIGH),
        ("2000000001", HIGH),
    )
    errors = check(form, snapshot_for(form, *EVERYONE))
    assert [(str(e.code), e.row) for e in errors] == [
        ("DELEGATE_MISMATCH", None),
        ("FULL_ACCESS_THIRD_PARTY", 2),
        ("ACCOUNT_UNKNOWN", 3),
        ("ACCOUNT_CLOSED", 4),
        ("REQUESTER_NOT_AUTHORIZED", 5),
    ]


def test_an_invited_grant_alone_does_not_make_the_delegate_invited():
    form = form_of(AUTH, OUTSIDER, ("1000000001", HIGH))
    snap = snapshot_for(form, *EVERYONE, active_at=())
    snap = replace(snap, grants={("1000000001", "P-OUT"): Grant("1000000001", "P-OUT", HIGH, GrantStatus.INVITED)})
    assert codes(check(form, snap)) == ["DELEGATE_NOT_INVITED"]


@pytest.mark.parametrize(
    ("customer_type", "role", "allowed"),
    [
        (RES, Role.PRIMARY_ACCOUNT_HOLDER, True),
        (RES, Role.AUTHORIZED_USER, False),
        (RES, None, False),
        (BIZ, Role.AUTHORIZED_USER, True),
        (BIZ, Role.DIRECT_EMPLOYEE, False),
        (BIZ, Role.PRIMARY_ACCOUNT_HOLDER, False),
        (BIZ, None, False),
    ],
)
def test_who_may_grant_on_a_customer(customer_type, role, allowed):
    assert may_grant(customer_type, role) is allowed


@pytest.mark.parametrize(
    ("customer_type", "role", "level", "allowed"),
    [
        (RES, None, FULL, True),
        (BIZ, None, FULL, False),
        (BIZ, None, HIGH, True),
        (BIZ, None, READ, True),
        (BIZ, Role.DIRECT_EMPLOYEE, FULL, True),
        (BIZ, Role.AUTHORIZED_USER, FULL, True),
    ],
)
def test_who_may_hold_which_level(customer_type, role, level, allowed):
    assert may_hold(customer_type, role, level) is allowed
