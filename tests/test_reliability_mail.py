"""Guarantee 3: every form's email is delivered once, through the outbox, despite retries.

The pipeline's side of it, in-process against a real SMTP server (aiosmtpd): the outbox row keeps
its Message-ID from the transaction that decided the form to the delivery that succeeds; 4xx and
dropped connections are retried; a 5xx is dead-lettered and the operations mailbox is told.
The transport's own classification of replies is in test_mail_delivery.py.
"""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
import sqlalchemy as sa

from flows.pipeline import deliver_pending, process_item, process_items
from loaders.mail import SmtpTransport
from loaders.store import intake
from loaders.store.schema import outbox
from tests.pipeline_builders import (
    OPS,
    REQUESTER,
    deps_for,
    end_places,
    hostile_drops,
    make_world,
    outbox_rows,
    smtpd_on,
    valid_drop,
    waiting,
)
from tests.servers import DROP, RecordingHandler, fixture_smtpd, free_port  # noqa: F401 (fixture)


def _smtp(deps, port: int) -> None:
    """Send through SMTP on 127.0.0.1:port, with the transport's own retries quick."""
    deps.transport = SmtpTransport(f"smtp://127.0.0.1:{port}", retry_delays=(0.05, 0.05), timeout=5)


def _received(handler) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m.content, policy=policy.default) for m in handler.messages]


@pytest.fixture
def world(tmp_path, sqlite_url):
    return make_world(tmp_path, sqlite_url, delegates=4)


def _process_all(deps) -> list:
    """Every waiting file, one by one, or in stages (deps_for(staged=True)): their outcomes."""
    if deps.staged(waiting(deps)):  # the email is taken for delivery in the transaction that queues it
        batch = process_items(deps, waiting(deps), run_id="test")
        assert not batch.failed
        return batch.done
    return [process_item(deps, item, run_id="test") for item in waiting(deps)]


STAGES = pytest.mark.parametrize("staged", [False, True], ids=["one by one", "in stages"])


@pytest.mark.parametrize(
    "replies",
    [["451 4.3.0 Try again later"], [DROP], ["421 4.3.2 Shutting down", DROP]],
    ids=["451 then OK", "connection dropped after DATA then OK", "421 and a drop then OK"],
)
@STAGES
def test_a_transient_refusal_is_retried_and_the_form_email_delivered_once(world, smtpd, replies, staged):
    handler = RecordingHandler(data_replies=list(replies))
    server = smtpd(handler)
    world.drop(valid_drop(world, 1))
    deps = deps_for(world, staged=staged)
    _smtp(deps, server.port)

    _process_all(deps)

    [row] = outbox_rows(world.db_url)
    [got] = _received(handler)
    assert got["Message-ID"] == row["message_id"]
    assert row["status"] == "sent" and handler.data_commands == len(replies) + 1
    assert got["To"] == REQUESTER.email and "completed" in got["Subject"]


@STAGES
def test_the_outbox_row_keeps_its_message_id_across_runs_until_the_server_takes_it(world, smtpd, staged):
    handler = RecordingHandler(data_replies=["451 4.3.0 Try again later"] * 3)  # the transport's 3 tries
    server = smtpd(handler)
    world.drop(valid_drop(world, 1))
    deps = deps_for(world, staged=staged)
    _smtp(deps, server.port)

    _process_all(deps)
    [queued] = outbox_rows(world.db_url)
    assert (queued["status"], queued["attempts"]) == ("pending", 1)
    assert end_places(world.inbox_root)["valid-01.xlsx.sealed"] == ["archive/applied"], "the end state is committed"

    later = deps_for(world)  # the next run
    _smtp(later, server.port)
    assert deliver_pending(later)["sent"] == 1

    [row] = outbox_rows(world.db_url)
    [got] = _received(handler)
    assert got["Message-ID"] == row["message_id"] == queued["message_id"]
    assert bytes(row["message"]) == bytes(queued["message"]), "the same bytes, composed once"
    assert deliver_pending(later)["sent"] == 0 and len(handler.messages) == 1


@STAGES
def test_a_550_dead_letters_the_mail_and_the_operations_mailbox_is_told_later(world, smtpd, staged):
    handler = RecordingHandler(rcpt_replies={REQUESTER.email: ["550 5.1.1 No such user"]})
    server = smtpd(handler)
    world.drop(valid_drop(world, 1))
    deps = deps_for(world, staged=staged)
    _smtp(deps, server.port)

    _process_all(deps)
    rows = {r["kind"]: r for r in outbox_rows(world.db_url)}
    assert rows["applied"]["status"] == "dead"
    assert rows["dead-letter"]["status"] == "pending", "the notice is queued through the outbox"

    assert deliver_pending(deps)["sent"] == 1  # the next delivery pass (the run's last one)
    [notice] = _received(handler)
    assert notice["To"] == OPS and "undeliverable" in notice["Subject"]
    body = notice.get_body(("plain",)).get_content()
    assert rows["applied"]["message_id"] in body and "550" in body and "inbox/valid-01.xlsx.sealed" in body
    assert not list(notice.iter_attachments()), "the refused email (and its workbook) is not forwarded"
    assert deliver_pending(deps) == {"sent": 0, "retry": 0, "dead": 0, "deferred": 0}, "a dead letter is not retried"


def test_a_mail_to_the_operations_mailbox_that_is_refused_is_dead_lettered_without_a_notice(world, smtpd):
    handler = RecordingHandler(rcpt_replies={OPS: ["550 5.1.1 No such user"] * 5})
    server = smtpd(handler)
    world.drop(hostile_drops(world)[2])  # quarantined: the email goes to the operations mailbox
    deps = deps_for(world)
    _smtp(deps, server.port)

    _process_all(deps)
    deliver_pending(deps)

    assert [(r["kind"], r["status"]) for r in outbox_rows(world.db_url)] == [("quarantined", "dead")]
    assert handler.messages == []


@STAGES
def test_with_the_mail_server_down_one_email_is_tried_and_the_rest_wait_in_the_outbox(world, smtpd, staged):
    world.drop(*(valid_drop(world, i) for i in (1, 2, 3)), *hostile_drops(world)[:2])
    deps = deps_for(world, staged=staged)
    port = free_port()  # nothing listens there (yet)
    _smtp(deps, port)

    outcomes = _process_all(deps)

    assert all(o is not None for o in outcomes)
    assert {tuple(v) for v in end_places(world.inbox_root).values()} <= {("archive/applied",), ("quarantine",)}
    rows = outbox_rows(world.db_url)
    assert sorted(r["attempts"] for r in rows) == [0, 0, 0, 0, 1], "one try, then the breaker held the rest"
    assert {r["status"] for r in rows} == {"pending"} and deps.mail_down

    handler = RecordingHandler()
    with smtpd_on(handler, port):  # the server is back
        later = deps_for(world)
        _smtp(later, port)
        counts = deliver_pending(later)

    assert counts["sent"] == 5
    assert sorted(m["Message-ID"] for m in _received(handler)) == sorted(r["message_id"] for r in rows)


def test_mail_taken_by_a_worker_that_died_is_sent_by_another_once_the_lease_is_over(world):
    world.drop(valid_drop(world, 1))
    deps = deps_for(world)
    outcome = process_item(deps, waiting(deps)[0], run_id="test")
    assert str(outcome.status) == "applied"
    (written,) = world.outbox.glob("*.eml")
    written.unlink()  # pretend it never went out: a worker took the row, then died before sending
    with deps.store.engine.begin() as conn:
        conn.execute(sa.update(outbox).values(status="pending", sent_at=None, next_attempt_at=datetime.now(UTC)))
    taken = intake.claim_pending_mail(deps.store, worker="dead", lease=timedelta(seconds=0))
    assert len(taken) == 1

    assert deliver_pending(deps_for(world))["sent"] == 1
    assert [p.name for p in world.outbox.glob("*.eml")] == [written.name]
