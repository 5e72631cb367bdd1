"""Delivering email once: .eml files in a folder, and SMTP against aiosmtpd (plain and STARTTLS)."""

from __future__ import annotations

import email
import os
import ssl
from datetime import UTC, datetime
from email import policy

import pytest

from grants.outcome import Outcome, Status
from loaders.mail import (
    FolderTransport,
    PermanentMailError,
    SmtpTransport,
    TransientMailError,
    as_bytes,
    compose_completed,
    eml_name,
    message_id_for,
    open_transport,
)
from tests.servers import (  # the fixture_* are the smtpd and self_signed fixtures
    DROP,
    RecordingHandler,
    authenticator_for,
    fixture_self_signed,  # noqa: F401
    fixture_smtpd,  # noqa: F401
    free_port,
)

FAST = {"retry_delays": (0.01, 0.01), "timeout": 5}
REQUESTER = "req@acme.example"


def a_message(n: int = 1) -> tuple[bytes, str]:
    """A real completed-form email and its Message-ID."""
    mid = message_id_for("sha", n, "completed")
    o = Outcome(
        key=f"inbox/form-{n}.sealed",
        status=Status.APPLIED,
        received_at=datetime(2026, 11, 3, tzinfo=UTC),
        completed_at=datetime(2026, 11, 3, 1, tzinfo=UTC),
        sha256="cd" * 32,
        delegate_email="dee@acme.example",
        accounts=15,
    )
    rows = [(f"{i:010d}", "High", "granted") for i in range(15)]
    msg = compose_completed(o, rows, to=REQUESTER, message_id=mid, sender="delegation@utility.example")
    return as_bytes(msg), mid


# --- choosing a transport ---------------------------------------------------------------------


def test_open_transport_needs_exactly_one_destination(tmp_path):
    with pytest.raises(ValueError):
        open_transport()
    with pytest.raises(ValueError):
        open_transport(outbox_dir=tmp_path, smtp_url="smtp://127.0.0.1:25")
    assert isinstance(open_transport(outbox_dir=tmp_path), FolderTransport)
    assert isinstance(open_transport(smtp_url="smtp://127.0.0.1:25"), SmtpTransport)


@pytest.mark.parametrize(
    ("url", "port"),
    [("smtp://h", 25), ("smtp+starttls://h", 587), ("smtps://h", 465), ("smtp://h:2525", 2525)],
)
def test_an_smtp_url_gives_scheme_host_and_default_port(url, port):
    transport = open_transport(smtp_url=url)
    assert (transport.host, transport.port) == ("h", port)


@pytest.mark.parametrize("url", ["http://h", "smtp://", "smtp+ssl://h"])
def test_an_unusable_smtp_url_is_refused(url):
    with pytest.raises(ValueError):
        open_transport(smtp_url=url)


def test_the_transport_never_shows_its_password():
    transport = open_transport(smtp_url="smtp+starttls://user:s3cr%40t@mail.example:587")
    assert "s3cr" not in repr(transport) and "s3cr" not in transport.where
    assert transport._password == "s3cr@t"  # percent-decoded


# --- folder -----------------------------------------------------------------------------------


def test_the_folder_transport_writes_one_eml_per_message_id(tmp_path):
    data, mid = a_message()
    open_transport(outbox_dir=tmp_path / "outbox").send(data, mid, [REQUESTER])
    (path,) = (tmp_path / "outbox").iterdir()
    assert path.name == mid.strip("<>") + ".eml"
    assert path.read_bytes() == data
    assert email.message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"] == mid


def test_sending_the_same_message_id_twice_leaves_one_file_the_first(tmp_path):
    transport = open_transport(outbox_dir=tmp_path)
    data, mid = a_message()
    transport.send(data, mid, [REQUESTER])
    transport.send(data + b"a retry composed again", mid, [REQUESTER])
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [data]


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    data, mid = a_message()
    with pytest.raises(TransientMailError):
        open_transport(outbox_dir=tmp_path).send(data, mid, [REQUESTER])
    assert list(tmp_path.iterdir()) == []


def test_the_half_written_temporary_of_a_write_killed_midway_goes_with_the_next_delivery(tmp_path):
    data, mid = a_message()
    other, other_mid = a_message(2)
    transport = open_transport(outbox_dir=tmp_path)
    killed = tmp_path / f".{eml_name(mid)}.0badf00d.tmp"  # SIGKILL between its write and its rename
    killed.write_bytes(data[:100])
    kept = tmp_path / f".{eml_name(other_mid)}.0badf00d.tmp"  # another message's: not this delivery's
    kept.write_bytes(other[:100])

    transport.send(data, mid, [REQUESTER])

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([eml_name(mid), kept.name])


@pytest.mark.parametrize(
    ("a", "b"),
    [("<a/b@x>", "<a_b@x>"), ("<../../etc@x>", "<.._.._etc@x>"), ("<a b@x>", "<a_b@x>")],
)
def test_message_ids_that_sanitise_alike_still_get_their_own_files(tmp_path, a, b):
    assert eml_name(a) != eml_name(b)
    transport = open_transport(outbox_dir=tmp_path)
    transport.send(b"A", a, [REQUESTER])
    transport.send(b"B", b, [REQUESTER])
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == [b"A", b"B"]
    assert all(p.parent == tmp_path and not p.name.startswith(".") for p in tmp_path.iterdir())


def test_a_message_without_recipients_is_refused(tmp_path):
    with pytest.raises(PermanentMailError):
        open_transport(outbox_dir=tmp_path).send(b"x", "<m@x>", [])


# --- SMTP -------------------------------------------------------------------------------------


def test_smtp_delivers_the_message_once_to_its_recipients(smtpd):
    handler = RecordingHandler()
    server = smtpd(handler)
    data, mid = a_message()
    transport = open_transport(smtp_url=f"smtp://127.0.0.1:{server.port}", **FAST)
    transport.send(data, mid, [REQUESTER])
    (got,) = handler.messages
    assert got.rcpt_tos == [REQUESTER]
    assert got.mail_from == "delegation@utility.example"  # the envelope sender is the From
    assert email.message_from_bytes(got.content, policy=policy.default)["Message-ID"] == mid
    assert transport.attempts == 1


@pytest.mark.parametrize("reply", ["451 4.3.0 Try again later", "421 4.3.2 Shutting down", DROP])
def test_a_transient_failure_is_retried_and_the_message_delivered_once(smtpd, reply):
    handler = RecordingHandler(data_replies=[reply])
    server = smtpd(handler)
    transport = open_transport(smtp_url=f"smtp://127.0.0.1:{server.port}", **FAST)
    data, mid = a_message()
    transport.send(data, mid, [REQUESTER])
    assert len(handler.messages) == 1
    assert transport.attempts == 2


@pytest.mark.parametrize(
    ("replies", "error"),
    [
        (["451 4.3.0 Try again later"] * 3, TransientMailError),
        ([DROP] * 3, TransientMailError),
        (["550 5.7.1 Rejected"], PermanentMailError),
        (["554 5.6.0 Message refused"], PermanentMailError),
    ],
    ids=["451-always", "dropped-after-data-always", "550", "554"],
)
def test_failures_are_classified_and_retries_are_bounded(smtpd, replies, error):
    handler = RecordingHandler(data_replies=list(replies))
    server = smtpd(handler)
    transport = open_transport(smtp_url=f"smtp://127.0.0.1:{server.port}", **FAST)
    with pytest.raises(error):
        transport.send(*a_message(), [REQUESTER])
    assert handler.messages == []
    # 4xx: 1 + 2 retries; 5xx: no retry
    assert transport.attempts == (3 if error is TransientMailError else 1)


def test_a_server_that_is_down_is_a_transient_failure():
    transport = open_transport(smtp_url=f"smtp://127.0.0.1:{free_port()}", **FAST)
    with pytest.raises(TransientMailError, match="connection failed"):
        transport.send(*a_message(), [REQUESTER])
    assert transport.attempts == 3


def test_only_the_recipients_not_yet_accepted_are_tried_again(smtpd):
    handler = RecordingHandler(rcpt_replies={"ops@utility.example": ["450 4.2.1 Mailbox busy"]})
    server = smtpd(handler)
    transport = open_transport(smtp_url=f"smtp://127.0.0.1:{server.port}", **FAST)
    data, mid = a_message()
    transport.send(data, mid, [REQUESTER, "ops@utility.example"])
    assert [m.rcpt_tos for m in handler.messages] == [[REQUESTER], ["ops@utility.example"]]


def test_a_recipient_refused_for_good_is_a_permanent_failure(smtpd):
    handler = RecordingHandler(rcpt_replies={"nobody@acme.example": ["550 5.1.1 No such user"]})
    server = smtpd(handler)
    transport = open_transport(smtp_url=f"smtp://127.0.0.1:{server.port}", **FAST)
    with pytest.raises(PermanentMailError, match=r"nobody@acme\.example"):
        transport.send(*a_message(), ["nobody@acme.example"])
    assert handler.messages == []


# --- STARTTLS and AUTH ------------------------------------------------------------------------


@pytest.fixture
def tls_server(smtpd, self_signed):
    """aiosmtpd that requires STARTTLS, and AUTH only over TLS, for the login mailer/s3cret."""
    handler = RecordingHandler()
    server = smtpd(
        handler,
        tls_context=self_signed.server_context(),
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=authenticator_for("mailer", "s3cret"),
    )
    return server, handler


def test_starttls_then_auth_delivers_the_message(tls_server, self_signed):
    server, handler = tls_server
    transport = open_transport(
        smtp_url=f"smtp+starttls://mailer:s3cret@127.0.0.1:{server.port}",
        ssl_context=self_signed.client_context(),
        **FAST,
    )
    data, mid = a_message()
    transport.send(data, mid, [REQUESTER])
    (got,) = handler.messages
    assert got.login == "mailer"
    assert email.message_from_bytes(got.content, policy=policy.default)["Message-ID"] == mid


def test_a_wrong_password_is_a_permanent_failure_without_the_password_in_it(tls_server, self_signed):
    server, handler = tls_server
    transport = open_transport(
        smtp_url=f"smtp+starttls://mailer:wrong-pw@127.0.0.1:{server.port}",
        ssl_context=self_signed.client_context(),
        **FAST,
    )
    with pytest.raises(PermanentMailError, match="535") as caught:
        transport.send(*a_message(), [REQUESTER])
    assert "wrong-pw" not in str(caught.value)
    assert transport.attempts == 1 and handler.messages == []


def test_credentials_are_never_sent_without_tls(tls_server):
    server, handler = tls_server
    transport = open_transport(smtp_url=f"smtp://mailer:s3cret@127.0.0.1:{server.port}", **FAST)
    with pytest.raises(PermanentMailError):
        transport.send(*a_message(), [REQUESTER])
    assert handler.messages == []


def test_an_untrusted_certificate_is_a_permanent_failure(tls_server):
    server, _ = tls_server
    transport = open_transport(
        smtp_url=f"smtp+starttls://mailer:s3cret@127.0.0.1:{server.port}",
        ssl_context=ssl.create_default_context(),  # the system's CAs do not know this certificate
        **FAST,
    )
    with pytest.raises(PermanentMailError, match="certificate"):
        transport.send(*a_message(), [REQUESTER])


def test_starttls_against_a_server_without_it_is_a_permanent_failure(smtpd):
    server = smtpd(RecordingHandler())
    transport = open_transport(smtp_url=f"smtp+starttls://127.0.0.1:{server.port}", **FAST)
    with pytest.raises(PermanentMailError, match="STARTTLS"):
        transport.send(*a_message(), [REQUESTER])
