"""Real servers on loopback for integration tests: moto's S3 server and aiosmtpd.

Plain helpers (context managers, a recording SMTP handler, a self-signed certificate) plus pytest
fixtures built on them. Test modules import the fixtures they use by name:

    from tests.servers import fixture_moto_endpoint, fixture_s3_env  # noqa: F401 (fixtures)

and then take `moto_endpoint` and `s3_env` as arguments, as with any fixture.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# --- ports --------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- moto's S3 server ---------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server(port: int | None = None) -> Iterator[Any]:
    """A ThreadedMotoServer over real HTTP on 127.0.0.1; yields it (`.endpoint` is its URL).

    All moto servers of one process share one in-memory backend: use a fresh bucket per test.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    server.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):  # a test may have stopped it already (an outage)
            server.stop()


def aws_dummy_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Dummy credentials and the endpoint, the way a deployment would set them."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module", name="moto_endpoint")
def fixture_moto_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server shared by the tests of one module."""
    with moto_server() as server:
        yield server.endpoint


@pytest.fixture(name="s3_env")
def fixture_s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS settings pointing at the module's moto server; returns its endpoint."""
    aws_dummy_env(monkeypatch, moto_endpoint)
    return moto_endpoint


# --- aiosmtpd -----------------------------------------------------------------------------------

ACCEPT = "250 OK"
DROP = "DROP"  # close the connection instead of answering


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that records what it accepts.

    `data_replies` are the answers to successive DATA commands ("451 ...", "550 ...", DROP); when
    they run out, DATA is accepted. `rcpt_replies` maps an address to its successive RCPT answers.
    """

    data_replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    data_commands: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        replies = self.rcpt_replies.get(address.lower())
        reply = replies.pop(0) if replies else ACCEPT
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        reply = self.data_replies.pop(0) if self.data_replies else ACCEPT
        if reply == DROP:
            server.transport.abort()  # the client sent the message and never hears back
            return "421 closing"  # never reaches the client
        if reply.startswith("250"):
            auth = session.auth_data
            login = auth.login.decode() if session.authenticated and auth is not None else None
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login))
        return reply


def authenticator_for(user: str, password: str) -> Callable[..., Any]:
    """An aiosmtpd authenticator accepting exactly one login."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


@contextlib.contextmanager
def smtp_server(handler: Any, **kwargs: Any) -> Iterator[Any]:
    """An aiosmtpd Controller on 127.0.0.1 (kwargs go to aiosmtpd's SMTP); yields it started."""
    from aiosmtpd.controller import Controller

    # a dropped connection makes asyncio log "socket.send() raised exception": expected noise
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=5.0, **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture(name="smtpd")
def fixture_smtpd() -> Iterator[Callable[..., Any]]:
    """Start aiosmtpd servers: smtpd(handler, **smtp_kwargs) -> a started Controller."""
    with contextlib.ExitStack() as stack:
        yield lambda handler, **kwargs: stack.enter_context(smtp_server(handler, **kwargs))


# --- TLS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfSigned:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and verifies the host name)."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_self_signed(folder: Path) -> SelfSigned:
    """A certificate for 127.0.0.1 and localhost, signed by its own key (cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "smtpd.crt", folder / "smtpd.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return SelfSigned(cert_path, key_path)


@pytest.fixture(scope="module", name="self_signed")
def fixture_self_signed(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    """A self-signed certificate for 127.0.0.1, made once per module."""
    return make_self_signed(tmp_path_factory.mktemp("tls"))
