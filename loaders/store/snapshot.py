"""What the directory says about one form, in at most five queries whatever its size.

The queries are built once (`Prepared`): building them for each form cost more than running them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grants.directory import Account, CustomerType, Grant, GrantStatus, Person, Role, Snapshot
from grants.form import AccessLevel, DelegateForm
from loaders.store.schema import accounts, customers, grants, people, roles
from loaders.store.sql import Prepared, among_param, listed

_MEMBERS = {kind: {m.value: m for m in kind} for kind in (CustomerType, AccessLevel, GrantStatus)}


def _enum(kind, value: str):
    """kind(value), looked up (a 500-account form makes 1,000 of them)."""
    member = _MEMBERS[kind].get(value)
    return member if member is not None else kind(value)


def person_of(row) -> Person:
    return Person(row.person_id, row.first_name, row.last_name, row.email, row.phone)


_PEOPLE = Prepared(lambda _: sa.select(people).where(people.c.email.in_(sa.bindparam("emails", expanding=True))))
_ACCOUNTS = Prepared(lambda dialect: (
    sa.select(accounts.c.account_id, accounts.c.customer_id, accounts.c.status, customers.c.customer_type)
    .join(customers, customers.c.customer_id == accounts.c.customer_id)
    .where(among_param(dialect, accounts.c.account_id, "account_ids"))
))
_ROLES = Prepared(lambda _: sa.select(roles.c.customer_id, roles.c.person_id, roles.c.role).where(
    roles.c.customer_id.in_(sa.bindparam("customer_ids", expanding=True)),
    roles.c.person_id.in_(sa.bindparam("person_ids", expanding=True)),
))
_GRANTS = Prepared(lambda dialect: sa.select(
    grants.c.account_id, grants.c.person_id, grants.c.access_level, grants.c.status
).where(grants.c.person_id == sa.bindparam("person_id"),
        among_param(dialect, grants.c.account_id, "account_ids")))


def _active_customers(_dialect: str):
    # EXISTS per customer: stops at the first active grant instead of reading them all
    holds_active = (
        sa.select(grants.c.account_id)
        .join(accounts, accounts.c.account_id == grants.c.account_id)
        .where(
            grants.c.person_id == sa.bindparam("person_id"),
            grants.c.status == "active",
            accounts.c.customer_id == customers.c.customer_id,
        )
        .exists()
    )
    return sa.select(customers.c.customer_id).where(
        customers.c.customer_id.in_(sa.bindparam("customer_ids", expanding=True)), holds_active
    )


_ACTIVE_CUSTOMERS = Prepared(_active_customers)


def load_snapshot(conn: Connection, form: DelegateForm) -> Snapshot:
    """The requester, the delegate, the form's accounts, their roles and the delegate's grants.

    Queries: people (1), accounts with their customers (1), roles (1), and for a known delegate
    their grants on the form's accounts (1) and the form's customers where they hold active access
    (1). A form has at most 500 accounts, well within every database's bind-parameter limit.
    """
    emails = sorted({form.requester.email, form.delegate.email})
    found = {row.email: person_of(row) for row in conn.execute(_PEOPLE(conn), {"emails": emails})}
    requester, delegate = found.get(form.requester.email), found.get(form.delegate.email)

    account_ids = sorted(set(form.account_ids))
    account_rows = conn.execute(_ACCOUNTS(conn), {"account_ids": listed(conn, account_ids)}).all()
    by_id = {
        account_id: Account(account_id, customer_id, _enum(CustomerType, customer_type), status == "closed")
        for account_id, customer_id, status, customer_type in account_rows
    }
    customer_ids = sorted({a.customer_id for a in by_id.values()})
    person_ids = sorted({p.person_id for p in (requester, delegate) if p is not None})

    role_map: dict[tuple[str, str], Role] = {}
    if customer_ids and person_ids:
        role_map = {
            (r.customer_id, r.person_id): Role(r.role)
            for r in conn.execute(_ROLES(conn), {"customer_ids": customer_ids, "person_ids": person_ids})
        }

    grant_map: dict[tuple[str, str], Grant] = {}
    active_customers: frozenset[str] = frozenset()
    if delegate is not None and by_id:
        grant_map = {
            (account_id, person_id): Grant(account_id, person_id, _enum(AccessLevel, level), _enum(GrantStatus, status))
            for account_id, person_id, level, status in conn.execute(
                _GRANTS(conn), {"person_id": delegate.person_id, "account_ids": listed(conn, sorted(by_id))}
            ).all()
        }
        active_customers = frozenset(conn.execute(
            _ACTIVE_CUSTOMERS(conn), {"person_id": delegate.person_id, "customer_ids": customer_ids}
        ).scalars())
    return Snapshot(
        requester=requester,
        delegate=delegate,
        accounts=by_id,
        roles=role_map,
        grants=grant_map,
        delegate_active_customers=active_customers,
    )
