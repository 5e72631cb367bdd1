"""The plan of changes: new, changed or unchanged per account (pure)."""

from __future__ import annotations

import pytest

from grants.directory import Grant, GrantStatus, Person, Snapshot
from grants.form import AccessLevel, AccountLine, Contact, DelegateForm, PhoneType
from grants.plan import Action, plan

FULL, HIGH, READ = AccessLevel.FULL, AccessLevel.HIGH, AccessLevel.READ_ONLY
DELEGATE = Person("P-D", "Alex", "Rivera", "alex@consult.example", "4155550104")
REQUESTER = Contact("Lan", "Nguyễn", "lan@biz.example", "4155550101")


def form_of(*lines: tuple[str, AccessLevel]) -> DelegateForm:
    return DelegateForm(
        REQUESTER,
        Contact(DELEGATE.first_name, DELEGATE.last_name, DELEGATE.email, DELEGATE.phone),
        PhoneType.WORK,
        tuple(AccountLine(row, a, level) for row, (a, level) in enumerate(lines, start=2)),
    )


def snapshot_with(*grants: tuple[str, AccessLevel, GrantStatus]) -> Snapshot:
    return Snapshot(
        requester=None,
        delegate=DELEGATE,
        grants={(a, "P-D"): Grant(a, "P-D", level, status) for a, level, status in grants},
    )


ACTIVE, INVITED = GrantStatus.ACTIVE, GrantStatus.INVITED


@pytest.mark.parametrize(
    ("before", "wanted", "action", "old_level"),
    [
        pytest.param(None, HIGH, Action.GRANTED, None, id="no-grant"),
        pytest.param((READ, ACTIVE), HIGH, Action.CHANGED, READ, id="raised"),
        pytest.param((FULL, ACTIVE), READ, Action.CHANGED, FULL, id="lowered"),
        pytest.param((HIGH, ACTIVE), HIGH, Action.UNCHANGED, HIGH, id="same"),
        pytest.param((HIGH, INVITED), HIGH, Action.CHANGED, HIGH, id="invited-same-level-becomes-active"),
        pytest.param((READ, INVITED), FULL, Action.CHANGED, READ, id="invited-other-level"),
    ],
)
def test_each_account_gets_a_new_changed_or_unchanged_grant(before, wanted, action, old_level):
    grants = [("1000000001", *before)] if before else []
    [change] = plan(form_of(("1000000001", wanted)), snapshot_with(*grants)).changes
    assert (change.action, change.old_level, change.new_level, change.row) == (action, old_level, wanted, 2)


def test_an_invited_grant_becoming_active_counts_as_changed():
    the_plan = plan(form_of(("1000000001", HIGH)), snapshot_with(("1000000001", HIGH, INVITED)))
    assert the_plan.counts() == {"created": 0, "updated": 1, "unchanged": 0}
    assert the_plan.changes[0].old_status is INVITED


def test_the_counts_add_up_and_the_changes_follow_the_form_rows():
    form = form_of(("1000000003", HIGH), ("1000000001", HIGH), ("1000000002", READ), ("1000000004", FULL))
    snap = snapshot_with(("1000000001", HIGH, ACTIVE), ("1000000002", HIGH, ACTIVE))
    the_plan = plan(form, snap)
    assert [c.account_id for c in the_plan.changes] == ["1000000003", "1000000001", "1000000002", "1000000004"]
    assert (the_plan.created, the_plan.updated, the_plan.unchanged) == (2, 1, 1)
    assert the_plan.person_id == "P-D"


def test_grants_of_other_people_do_not_count():
    snap = Snapshot(
        requester=None,
        delegate=DELEGATE,
        grants={("1000000001", "P-OTHER"): Grant("1000000001", "P-OTHER", HIGH, ACTIVE)},
    )
    [change] = plan(form_of(("1000000001", HIGH)), snap).changes
    assert change.action is Action.GRANTED


def test_there_is_no_plan_without_a_delegate():
    with pytest.raises(ValueError, match="delegate"):
        plan(form_of(("1000000001", HIGH)), Snapshot(requester=None, delegate=None))
