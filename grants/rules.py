"""Who may grant what: the directory-level checks of one form against a snapshot (pure, no IO).

The access model (delegate-form.md, "Who may grant what"; seed 000):
- residential: only the one primary account holder grants, any level, to anyone;
- business: an authorized user grants; Full only to a direct employee (an authorized user counts as
  one), High and Read Only also to third parties;
- the delegate must already hold active access to an account of a customer on the form.

Privacy (delegate-form.md, last paragraph): a requester whose identity does not match a login gets
only the identity errors, and nothing on the form may reveal whether some email has a login or
what access someone holds elsewhere (see `check`).
"""

from __future__ import annotations

from grants.directory import Account, CustomerType, Person, Role, Snapshot
from grants.errors import Code, FormError
from grants.form import AccessLevel, Contact, DelegateForm

REQUESTER_COLUMNS = {
    "first_name": "Requester First Name",
    "last_name": "Requester Last Name",
    "phone": "Requester Primary Phone",
}
DELEGATE_COLUMNS = {
    "first_name": "Delegate First Name",
    "last_name": "Delegate Last Name",
    "phone": "Delegate Primary Phone",
}
_FIELD_WORDS = {"first_name": "first name", "last_name": "last name", "phone": "phone number"}
_EMPLOYEE_ROLES = frozenset({Role.DIRECT_EMPLOYEE, Role.AUTHORIZED_USER})


def may_grant(customer_type: CustomerType, role: Role | None) -> bool:
    """True when someone with `role` on a customer of that type may grant (or remove) access."""
    if customer_type == CustomerType.RESIDENTIAL:
        return role == Role.PRIMARY_ACCOUNT_HOLDER
    return role == Role.AUTHORIZED_USER


def may_hold(customer_type: CustomerType, role: Role | None, level: AccessLevel) -> bool:
    """True when someone with `role` (None: a third party) may hold `level` on such a customer's account."""
    if customer_type == CustomerType.BUSINESS and level == AccessLevel.FULL:
        return role in _EMPLOYEE_ROLES
    return True


def differing_fields(written: Contact, record: Person) -> list[str]:
    """The fields ('first_name', 'last_name', 'phone') where the form differs from the record."""
    return [f for f in ("first_name", "last_name", "phone") if getattr(written, f) != getattr(record, f)]


def check(form: DelegateForm, snap: Snapshot) -> list[FormError]:
    """Every directory-level error of `form` against `snap`, requester first, then delegate, then rows.

    When the requester's identity fails (unknown email, or a name or phone differs from the login),
    only those errors come back: an unverified sender learns nothing about accounts or people.
    """
    identity = _requester_errors(form.requester, snap.requester)
    if identity:
        return identity
    requester = snap.requester
    assert requester is not None  # identity errors cover the None case

    row_errors: list[FormError] = []
    granting_customers: set[str] = set()
    for line in form.lines:
        account = snap.accounts.get(line.account_id)
        error = _line_error(line.row, line.account_id, line.level, account, requester, form, snap)
        if error is not None:
            row_errors.append(error)
        if account is not None and may_grant(
            account.customer_type, snap.roles.get((account.customer_id, requester.person_id))
        ):
            granting_customers.add(account.customer_id)
    return _delegate_errors(form.delegate, snap, granting_customers) + row_errors


def _requester_errors(written: Contact, record: Person | None) -> list[FormError]:
    if record is None:
        return [
            FormError(
                Code.REQUESTER_UNKNOWN,
                f"No login uses the email {written.email}. Write the primary email of your own "
                "login, exactly as it is on your account, and send the form again.",
                column="Requester Primary Email",
                value=written.email,
            )
        ]
    return [
        FormError(
            Code.REQUESTER_MISMATCH,
            f"The {_FIELD_WORDS[f]} does not match the login of {written.email}. Write it exactly "
            "as it is on your login (spelling and case included) and send the form again.",
            column=REQUESTER_COLUMNS[f],
            value=getattr(written, f),
        )
        for f in differing_fields(written, record)
    ]


def _delegate_errors(written: Contact, snap: Snapshot, granting_customers: set[str]) -> list[FormError]:
    # Only the customers the requester may grant on count: otherwise a requester could learn who
    # holds access to other customers' accounts by putting them on a form. With none (every row
    # is refused anyway) nothing is said about the delegate.
    if not granting_customers:
        return []
    delegate = snap.delegate
    invited = delegate is not None and bool(snap.delegate_active_customers & granting_customers)
    if not invited:
        # One message whether or not the email has a login at all: the form must not tell.
        return [
            FormError(
                Code.DELEGATE_NOT_INVITED,
                f"{written.email} has not accepted an invitation to any of your accounts on this "
                "form. Invite the delegate online to one of them first (the first account); once "
                "they have accepted, send the form again.",
                column="Delegate Email",
                value=written.email,
            )
        ]
    assert delegate is not None
    return [
        FormError(
            Code.DELEGATE_MISMATCH,
            f"The delegate's {_FIELD_WORDS[f]} does not match the details {written.email} "
            "accepted the invitation with. Write it exactly as on that invitation (spelling and "
            "case included) and send the form again.",
            column=DELEGATE_COLUMNS[f],
            value=getattr(written, f),
        )
        for f in differing_fields(written, delegate)
    ]


def _line_error(
    row: int,
    account_id: str,
    level: AccessLevel,
    account: Account | None,
    requester: Person,
    form: DelegateForm,
    snap: Snapshot,
) -> FormError | None:
    if account is None:
        return FormError(
            Code.ACCOUNT_UNKNOWN,
            f"There is no account {account_id}. Check the number on a bill (10 digits, leading "
            "zeros included) or remove the row.",
            row=row,
            column="Account ID",
            value=account_id,
        )
    requester_role = snap.roles.get((account.customer_id, requester.person_id))
    if not may_grant(account.customer_type, requester_role):
        # Said before "closed", and in the same words for any account: a stranger's account is
        # not described any further.
        return FormError(
            Code.REQUESTER_NOT_AUTHORIZED,
            f"You may not give access to account {account_id}: only its primary account holder "
            "(home accounts) or an authorized user of the business (business accounts) can. "
            "Remove the row, or ask them to send the form.",
            row=row,
            column="Account ID",
            value=account_id,
        )
    if account.closed:
        return FormError(
            Code.ACCOUNT_CLOSED,
            f"Account {account_id} is closed: access to it can no longer be given. Remove the row.",
            row=row,
            column="Account ID",
            value=account_id,
        )
    delegate = snap.delegate
    delegate_role = snap.roles.get((account.customer_id, delegate.person_id)) if delegate is not None else None
    if not may_hold(account.customer_type, delegate_role, level):
        return FormError(
            Code.FULL_ACCESS_THIRD_PARTY,
            f"{form.delegate.email} is not a direct employee of the business that holds account "
            f"{account_id}, so cannot get Full access to it. Choose High or Read Only.",
            row=row,
            column="Access Level",
            value=str(level),
        )
    return None
