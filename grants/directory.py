"""The part of the utility's directory one form is judged against, as plain values (no IO).

The store loads a `Snapshot` for a form with a bounded number of queries; the rules and the plan
are pure functions of (form, snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from grants.form import AccessLevel


class CustomerType(StrEnum):
    RESIDENTIAL = "residential"
    BUSINESS = "business"


class Role(StrEnum):
    PRIMARY_ACCOUNT_HOLDER = "primary_account_holder"
    AUTHORIZED_USER = "authorized_user"
    DIRECT_EMPLOYEE = "direct_employee"


class GrantStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    first_name: str
    last_name: str
    email: str  # lower-case
    phone: str  # 10 digits


class Account(NamedTuple):  # a tuple: a 500-account form makes 500 of them, ~3x cheaper than a dataclass
    account_id: str
    customer_id: str
    customer_type: CustomerType
    closed: bool


class Grant(NamedTuple):
    account_id: str
    person_id: str
    level: AccessLevel
    status: GrantStatus


@dataclass(frozen=True, slots=True)
class Submitter:
    """An account manager who may drop forms; `public_key` is the PEM or base64 of their signing key."""

    submitter_id: str
    name: str
    email: str
    public_key: str
    status: str  # 'active' or 'revoked'


@dataclass(frozen=True)
class Snapshot:
    """What the directory says about one form's requester, delegate and accounts.

    - `accounts`: the form's accounts that exist, by id;
    - `roles`: (customer_id, person_id) -> role, for the requester and delegate on those customers;
    - `grants`: (account_id, person_id) -> grant, the delegate's grants on the form's accounts;
    - `delegate_active_customers`: those of the form's customers on whose accounts the delegate
      holds active access (the accepted "first account").
    """

    requester: Person | None
    delegate: Person | None
    accounts: dict[str, Account] = field(default_factory=dict)
    roles: dict[tuple[str, str], Role] = field(default_factory=dict)
    grants: dict[tuple[str, str], Grant] = field(default_factory=dict)
    delegate_active_customers: frozenset[str] = frozenset()
