"""The SLA clock with a frozen clock: states at their thresholds, and notices sent once each (issue 6)."""

from __future__ import annotations

import email
import json
import os
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from history_builders import drop

from flows.cli import cli
from flows.pipeline import deliver_pending
from flows.settings import Settings
from flows.sla import mail_deps, queue_notices, read_board
from grants.sla import Board, Entry, State, Threshold, notices_due
from loaders.store import Store
from loaders.store.schema import outbox

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)  # receipt: due 2026-11-17 09:30
OPS = "ops@sla.example"
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("waited", "completed_after", "state"),
    [
        (timedelta(0), None, State.PENDING),
        (10 * DAY, None, State.PENDING),  # "more than 10 days": exactly 10 is not yet at risk
        (10 * DAY + SECOND, None, State.AT_RISK),
        (15 * DAY, None, State.AT_RISK),  # due exactly now: not yet breached
        (15 * DAY + SECOND, None, State.BREACHED),
        (40 * DAY, 15 * DAY, State.MET),  # finished on the dot
        (40 * DAY, 15 * DAY + SECOND, State.BREACHED),  # finished late
        (40 * DAY, 11 * DAY, State.MET),  # slow but in time: not at risk once finished
    ],
)
def test_a_forms_state_at_each_threshold(waited, completed_after, state):
    entry = Entry("inbox/a.sealed", T0, completed_at=T0 + completed_after if completed_after else None)
    assert entry.state(T0 + waited, at_risk_days=10) is state


def test_the_at_risk_threshold_is_configurable():
    entry = Entry("inbox/a.sealed", T0)
    assert entry.state(T0 + 3 * DAY, at_risk_days=2) is State.AT_RISK
    assert entry.state(T0 + 3 * DAY, at_risk_days=5) is State.PENDING


def test_a_form_already_past_due_owes_the_breach_notice_only():
    board = Board(T0 + 20 * DAY, 10, (Entry("inbox/late.sealed", T0), Entry("inbox/risky.sealed", T0 + 9 * DAY)))
    assert [(e.key, t) for e, t in notices_due(board)] == [
        ("inbox/late.sealed", Threshold.BREACHED), ("inbox/risky.sealed", Threshold.AT_RISK)]


def _watch(store, now, *, inbox=None):
    board = read_board(store, now=now, at_risk_days=10, inbox=inbox)
    return board, queue_notices(store, board, to=OPS, sender="SLA <sla@delegation.invalid>")


def _notices(store) -> list[tuple[str, int | None, list[str]]]:
    with store.reading() as conn:
        rows = conn.execute(sa.select(outbox.c.kind, outbox.c.submission_id, outbox.c.recipients)
                            .order_by(outbox.c.created_at, outbox.c.kind)).all()
    return [(kind, sid, json.loads(to)) for kind, sid, to in rows]


def test_the_watch_tells_operations_once_at_risk_and_once_breached(db_url, tmp_path):
    store = Store.connect(db_url)
    try:
        stuck = drop(store, "inbox/stuck.xlsx.sealed", T0, attempts=3)
        drop(store, "inbox/done.xlsx.sealed", T0, status="applied", completed_at=T0 + timedelta(minutes=4),
             form_sha256="a" * 64, requester="req@example.com")
        said = []
        for now in (T0 + 9 * DAY, T0 + 10 * DAY, T0 + 10 * DAY + SECOND, T0 + 10 * DAY + SECOND, T0 + 12 * DAY,
                    T0 + 15 * DAY, T0 + 15 * DAY + SECOND, T0 + 16 * DAY, T0 + 30 * DAY):
            board, queued = _watch(store, now)
            said.append([t for _, t in queued.new])
        assert said == [[], [], ["at-risk"], [], [], [], ["breached"], [], []]
        assert [e.key for e in board.pending] == ["inbox/stuck.xlsx.sealed"]
        assert _notices(store) == [("sla-at-risk", stuck, [OPS]), ("sla-breached", stuck, [OPS])]

        # delivered by the pipeline's own outbox delivery, once
        settings = Settings(db_url=db_url, outbox_dir=str(tmp_path / "outbox"), ops_email=OPS)
        deps = mail_deps(settings, store)
        assert deliver_pending(deps)["sent"] == 2
        assert deliver_pending(deps)["sent"] == 0
        mails = [email.message_from_bytes(p.read_bytes(), policy=policy.default)
                 for p in sorted((tmp_path / "outbox").glob("*.eml"))]
        subjects = sorted(m["Subject"] for m in mails)
        assert subjects == ["Delegate User Form SLA breached: stuck.xlsx.sealed",
                            "Delegate User Form at risk of missing its SLA: stuck.xlsx.sealed"]
        body = mails[0].get_body(("plain",)).get_content()
        assert "inbox/stuck.xlsx.sealed" in body and "2026-11-17T09:30:00Z" in body
        assert all(m["To"] == OPS for m in mails)
    finally:
        store.dispose()


def test_a_form_completed_after_its_due_time_is_breached_and_told_once(db_url):
    store = Store.connect(db_url)
    try:
        late = drop(store, "inbox/late.xlsx.sealed", T0, status="rejected", completed_at=T0 + 16 * DAY,
                    form_sha256="b" * 64, requester="req@example.com", codes=("CELL_BLANK",))
        board, queued = _watch(store, T0 + 17 * DAY)
        assert [e.submission_id for e in board.breached] == [late] and board.pending == []
        assert board.breached[0].requester_email == "req@example.com"
        assert queued.new == [("inbox/late.xlsx.sealed", "breached")]
        assert _watch(store, T0 + 18 * DAY)[1].new == []
        # outside the look-back window it is history: not listed any more
        assert read_board(store, now=T0 + 16 * DAY + 31 * DAY).breached == []
    finally:
        store.dispose()


def test_a_file_no_run_has_claimed_is_pending_and_not_told_twice_once_claimed(sqlite_url, tmp_path):
    from loaders.inbox import open_inbox

    inbox = open_inbox(str(tmp_path / "inbox"))
    inbox.ensure_layout()
    inbox.put("inbox/waiting.xlsx.sealed", b"sealed bytes")
    stamp = T0.timestamp()
    os.utime(tmp_path / "inbox" / "inbox" / "waiting.xlsx.sealed", (stamp, stamp))
    store = Store.connect(sqlite_url)
    try:
        board, queued = _watch(store, T0 + 11 * DAY, inbox=inbox)
        assert [(e.key, e.submission_id) for e in board.at_risk] == [("inbox/waiting.xlsx.sealed", None)]
        assert queued.new == [("inbox/waiting.xlsx.sealed", "at-risk")]
        drop(store, "inbox/waiting.xlsx.sealed", T0)  # a run finally claims it (and is still at it)
        board, queued = _watch(store, T0 + 12 * DAY, inbox=inbox)
        assert len(board.pending) == 1 and board.pending[0].submission_id is not None
        assert queued.new == [] and queued.already == 1
    finally:
        store.dispose()


def test_sla_command_lists_pending_at_risk_and_breached(sqlite_url):
    store = Store.connect(sqlite_url)
    try:
        drop(store, "inbox/new.xlsx.sealed", T0 + 14 * DAY)
        drop(store, "inbox/risky.xlsx.sealed", T0 + 4 * DAY)
        drop(store, "inbox/overdue.xlsx.sealed", T0)
        drop(store, "inbox/late.xlsx.sealed", T0, status="applied", completed_at=T0 + 15 * DAY + SECOND,
             form_sha256="c" * 64)
        drop(store, "inbox/fine.xlsx.sealed", T0, status="applied", completed_at=T0 + DAY, form_sha256="d" * 64)
    finally:
        store.dispose()
    runner = CliRunner()
    result = runner.invoke(cli, ["sla", "--db", sqlite_url, "--now", "2026-11-17T10:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    board = json.loads(result.output)
    assert board["now"] == "2026-11-17T10:00:00Z" and board["at_risk_days"] == 10 and board["sla_days"] == 15
    assert [e["key"] for e in board["pending"]] == ["inbox/overdue.xlsx.sealed", "inbox/risky.xlsx.sealed",
                                                    "inbox/new.xlsx.sealed"]
    assert [e["key"] for e in board["at_risk"]] == ["inbox/risky.xlsx.sealed"]
    assert [(e["key"], e["state"]) for e in board["breached"]] == [
        ("inbox/late.xlsx.sealed", "breached"), ("inbox/overdue.xlsx.sealed", "breached")]
    assert board["at_risk"][0]["sla_due"] == "2026-11-21T09:30:00Z" and board["at_risk"][0]["age_days"] == 11.02

    text = runner.invoke(cli, ["sla", "--db", sqlite_url, "--now", "2026-11-17T10:00:00Z", "--at-risk-days", "0.5"])
    assert "pending 3 · at risk 2 · breached 2 (1 pending, 1 completed late" in text.output
    assert "| breached | inbox/overdue.xlsx.sealed" in text.output and "fine.xlsx" not in text.output


def test_two_watches_at_once_queue_one_notice(db_url, monkeypatch):
    import loaders.store.reads

    store = Store.connect(db_url)
    try:
        drop(store, "inbox/stuck.xlsx.sealed", T0)
        _watch(store, T0 + 11 * DAY)
        # the second watch read the outbox before the first committed: it tries to queue the same notice
        monkeypatch.setattr(loaders.store.reads, "queued_message_ids", lambda conn, ids: set())
        _watch(store, T0 + 11 * DAY)
        assert [kind for kind, _, _ in _notices(store)] == ["sla-at-risk"]
    finally:
        store.dispose()
