"""Removing a person's access (seed 000: the primary account holder or an authorized user may
remove access at any time; one may remove a person from ALL of a customer's accounts at once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grants.directory import CustomerType, Role
from grants.errors import Code, FormError
from grants.plan import Action
from grants.rules import may_grant
from loaders.store.apply import insert_audit, lock_person
from loaders.store.schema import accounts, customers, grants, people, roles, utcnow


@dataclass
class RevokeResult:
    """What was removed: (account_id, level it had) per grant; or the errors, and nothing removed."""

    errors: list[FormError] = field(default_factory=list)
    revoked: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def revoke(
    uow,
    *,
    person_email: str,
    by_email: str,
    account_ids: list[str] | tuple[str, ...] | None = None,
    customer_id: str | None = None,
    now: datetime | None = None,
) -> RevokeResult:
    """Remove the person's grants on `account_ids`, or on every account of `customer_id`.

    Only someone who may grant on those accounts may remove (the primary account holder of a
    residential customer, an authorized user of a business). All or nothing: with any error nothing
    is removed. One `revoked` audit row per grant removed, with `by_email` as the actor.
    """
    if (account_ids is None) == (customer_id is None) or (account_ids is not None and not account_ids):
        raise ValueError("give either account ids or a customer id")
    conn: Connection = uow.conn
    now = now or utcnow()
    person_email, by_email = person_email.strip().lower(), by_email.strip().lower()
    person_id = lock_person(conn, person_email)  # queue with applies for the same person
    by = conn.execute(sa.select(people.c.person_id).where(people.c.email == by_email)).scalar_one_or_none()

    errors: list[FormError] = []
    if by is None:
        errors.append(FormError(Code.REQUESTER_UNKNOWN, f"No login uses the email {by_email}.", value=by_email))
    if person_id is None:
        errors.append(
            FormError(
                Code.DELEGATE_NOT_INVITED,
                f"No login uses the email {person_email}: there is no access to remove.",
                value=person_email,
            )
        )
    if customer_id is not None:
        scope = sa.select(accounts.c.account_id).where(accounts.c.customer_id == customer_id)
        targets = _customer_targets(conn, customer_id)
    else:
        ids = sorted(set(account_ids or ()))
        scope = sa.select(accounts.c.account_id).where(accounts.c.account_id.in_(ids))
        targets = _account_targets(conn, ids)
    for target, customer_type in targets.items():
        if customer_type is None:
            what = "customer" if customer_id is not None else "account"
            errors.append(FormError(Code.ACCOUNT_UNKNOWN, f"There is no {what} {target}.", value=target))
    if by is not None:
        errors.extend(_authority_errors(conn, by, by_email, targets, customer_id))
    if errors:
        return RevokeResult(errors)

    held = conn.execute(
        sa.select(grants.c.account_id, grants.c.access_level)
        .where(grants.c.person_id == person_id, grants.c.account_id.in_(scope))
        .order_by(grants.c.account_id)
        .with_for_update()
    ).all()
    if not held:
        return RevokeResult()
    conn.execute(sa.delete(grants).where(grants.c.person_id == person_id, grants.c.account_id.in_(scope)))
    insert_audit(
        conn,
        [
            {
                "at": now,
                "action": str(Action.REVOKED),
                "account_id": account_id,
                "person_id": person_id,
                "email": person_email,
                "old_level": level,
                "new_level": None,
                "form_sha256": None,
                "requester_email": by_email,  # who asked for the removal
                "submitted_by": None,
                "actor_email": by_email,
            }
            for account_id, level in held
        ],
    )
    return RevokeResult([], [(a, lv) for a, lv in held])


def _customer_targets(conn: Connection, customer_id: str) -> dict[str, str | None]:
    """{customer_id: its type, or None when unknown}."""
    found = conn.execute(
        sa.select(customers.c.customer_type).where(customers.c.customer_id == customer_id)
    ).scalar_one_or_none()
    return {customer_id: found}


def _account_targets(conn: Connection, ids: list[str]) -> dict[str, str | None]:
    """{account_id: its customer's type, or None when unknown}."""
    found = dict.fromkeys(ids)
    for account_id, customer_type in conn.execute(
        sa.select(accounts.c.account_id, customers.c.customer_type)
        .join(customers, customers.c.customer_id == accounts.c.customer_id)
        .where(accounts.c.account_id.in_(ids))
    ):
        found[account_id] = customer_type
    return found


def _authority_errors(
    conn: Connection, by: str, by_email: str, targets: dict[str, str | None], customer_id: str | None
) -> list[FormError]:
    known = [t for t, kind in targets.items() if kind is not None]
    if not known:
        return []
    if customer_id is not None:
        customer_of = {customer_id: customer_id}
    else:
        customer_of = dict(
            conn.execute(
                sa.select(accounts.c.account_id, accounts.c.customer_id).where(accounts.c.account_id.in_(known))
            ).all()
        )
    role_of = dict(
        conn.execute(
            sa.select(roles.c.customer_id, roles.c.role).where(
                roles.c.person_id == by, roles.c.customer_id.in_(sorted(set(customer_of.values())))
            )
        ).all()
    )
    errors = []
    for target in known:
        role = role_of.get(customer_of[target])
        if not may_grant(CustomerType(targets[target]), Role(role) if role else None):
            errors.append(
                FormError(
                    Code.REQUESTER_NOT_AUTHORIZED,
                    f"{by_email} may not remove access on {target}: only the primary account holder "
                    "(residential) or an authorized user (business) can.",
                    value=target,
                )
            )
    return errors
