"""Delivering composed emails: as .eml files in a folder, or over SMTP.

Each email is delivered under its Message-ID, which the caller's outbox row keeps across crashes
and retries. The folder transport is idempotent (one file per Message-ID, written atomically). SMTP
cannot be: a connection dropped after DATA leaves unknown whether the server took the message, and a
retry may deliver it twice; receivers can tell the copies apart by their one Message-ID.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS = (0.5, 2.0)  # seconds before the 2nd and 3rd attempt
DEFAULT_TIMEOUT = 30.0
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._@+=-]")


class MailError(Exception):
    """The email could not be delivered (messages name the server, never a password)."""


class TransientMailError(MailError):
    """Try again later: a 4xx reply, a dropped or refused connection, a timeout."""


class PermanentMailError(MailError):
    """Retrying will not help: a 5xx reply, refused credentials, a TLS or configuration problem."""


@runtime_checkable
class Transport(Protocol):
    def send(self, message_bytes: bytes, message_id: str, recipients: list[str]) -> None:
        """Deliver one email, or raise TransientMailError / PermanentMailError."""


def open_transport(
    outbox_dir: str | os.PathLike[str] | None = None,
    smtp_url: str | None = None,
    **options: object,
) -> Transport:
    """A FolderTransport (`outbox_dir`) or an SmtpTransport (`smtp_url`): exactly one of them.

    SMTP options: retry_delays, timeout, ssl_context, envelope_from, sleep.
    """
    if (outbox_dir is None) == (smtp_url is None):
        raise ValueError("give exactly one of outbox_dir and smtp_url")
    if outbox_dir is not None:
        if options:
            raise TypeError(f"a folder transport takes no options: {sorted(options)}")
        return FolderTransport(outbox_dir)
    return SmtpTransport(smtp_url, **options)  # type: ignore[arg-type]


def eml_name(message_id: str) -> str:
    """The file name for a Message-ID: '<abc@host>' -> 'abc@host.eml'; unsafe ids stay distinct."""
    bare = message_id.strip().removeprefix("<").removesuffix(">")
    safe = _SAFE_NAME.sub("_", bare).lstrip(".")[:150]
    if safe != bare or not safe:
        # sanitising merged characters: keep two different ids from landing in one file
        safe = f"{safe}.{hashlib.sha256(message_id.encode()).hexdigest()[:12]}"
    return f"{safe}.eml"


class FolderTransport:
    """Writes DIR/<message-id>.eml atomically; a Message-ID already written is not written again."""

    def __init__(self, outbox_dir: str | os.PathLike[str]):
        self.dir = Path(outbox_dir)
        self._stale: dict[str, list[Path]] | None = None

    def __repr__(self) -> str:
        return f"FolderTransport({str(self.dir)!r})"

    def path_for(self, message_id: str) -> Path:
        return self.dir / eml_name(message_id)

    def send(self, message_bytes: bytes, message_id: str, recipients: list[str]) -> None:
        if not recipients:
            raise PermanentMailError(f"{message_id}: no recipients")
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.path_for(message_id)
        if final.exists():
            return  # delivered before (a retry after a crash): exactly once
        for stale in self._stale_of(final.name):  # an attempt killed mid-write
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        tmp = self.dir / f".{final.name}.{secrets.token_hex(4)}.tmp"
        try:
            with open(tmp, "xb") as f:
                f.write(message_bytes)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)  # readers see no file or the whole file
        except OSError as exc:
            raise TransientMailError(f"{message_id}: cannot write to {self.dir}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        with contextlib.suppress(OSError):
            fd = os.open(self.dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _stale_of(self, name: str) -> list[Path]:
        """The temporaries of `name` left by a write killed before this transport's first send.

        The folder is read once (reading it for each email made a batch's delivery quadratic); a
        write of this process that fails removes its own temporary.
        """
        if self._stale is None:
            self._stale = {}
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(self.dir):
                    if entry.name.startswith(".") and entry.name.endswith(".tmp"):  # .NAME.RANDOM.tmp
                        written = entry.name[1:-4].rpartition(".")[0]
                        self._stale.setdefault(written, []).append(Path(entry.path))
        return self._stale.pop(name, [])


class SmtpTransport:
    """smtp://user:pass@host:port (plain), smtp+starttls://... (STARTTLS, then AUTH), smtps://...

    Transient failures are retried `len(retry_delays)` times, waiting those delays; what is still
    failing is raised for the caller's own (slower) retries. Recipients that were accepted are
    never sent to again within one send().
    """

    def __init__(
        self,
        url: str,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        envelope_from: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
            raise ValueError("an SMTP URL is smtp://, smtp+starttls:// or smtps://[user:pass@]host[:port]")
        self.scheme = scheme
        self.host = parts.hostname
        self.port = parts.port or {"smtp": 25, "smtp+starttls": 587, "smtps": 465}[scheme]
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password or "")
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self._ssl_context = ssl_context
        self.envelope_from = envelope_from
        self._sleep = sleep
        self.attempts = 0  # connections tried over this transport's life (for tests and logs)

    def __repr__(self) -> str:  # never the password
        user = f"{self._user}@" if self._user else ""
        return f"SmtpTransport('{self.scheme}://{user}{self.host}:{self.port}')"

    @property
    def where(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def send(self, message_bytes: bytes, message_id: str, recipients: list[str]) -> None:
        pending = list(dict.fromkeys(recipients))
        if not pending:
            raise PermanentMailError(f"{message_id}: no recipients")
        sender = self.envelope_from or _from_address(message_bytes)
        delays = iter(self.retry_delays)
        while True:
            try:
                self._attempt(message_bytes, sender, pending)
                return
            except TransientMailError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise
                log.warning("mail %s to %s: %s; retrying in %.1fs", message_id, self.where, exc, delay)
                self._sleep(delay)

    def _attempt(self, message_bytes: bytes, sender: str, pending: list[str]) -> None:
        """One connection. Removes accepted recipients from `pending`; raises on any failure."""
        self.attempts += 1
        try:
            with self._connect() as smtp:
                refused = smtp.sendmail(sender, pending, message_bytes)
        except smtplib.SMTPRecipientsRefused as exc:  # nobody accepted
            raise _classify_refusals(exc.recipients, self.where) from exc
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, f"{self.where} answered {exc.smtp_code} {_text(exc.smtp_error)}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentMailError(f"{self.where}: {exc} (check the URL's scheme)") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentMailError(f"{self.where}: TLS certificate not trusted: {exc.verify_message}") from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:  # refused, reset, timed out, TLS EOF
            raise TransientMailError(f"{self.where}: connection failed: {exc or type(exc).__name__}") from exc
        except smtplib.SMTPException as exc:
            raise PermanentMailError(f"{self.where}: {exc}") from exc
        accepted = [r for r in pending if r not in refused]
        del pending[:]
        pending.extend(r for r in refused)
        if refused:  # some took it, some did not: only the others are tried again
            log.info("mail accepted for %d recipient(s) by %s", len(accepted), self.where)
            raise _classify_refusals(refused, self.where)

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        if self.scheme == "smtps":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.scheme == "smtp+starttls":
                smtp.starttls(context=context)  # raises SMTPNotSupportedError if not offered
                smtp.ehlo()
            if self._user:
                smtp.login(self._user, self._password)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _by_code(code: int, text: str) -> MailError:
    return TransientMailError(text) if 400 <= code < 500 else PermanentMailError(text)


def _classify_refusals(refused: dict, where: str) -> MailError:
    details = "; ".join(f"{r}: {c} {_text(m)}" for r, (c, m) in refused.items())
    permanent = any(not 400 <= int(c) < 500 for c, _ in refused.values())
    return (PermanentMailError if permanent else TransientMailError)(f"{where} refused {details}")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _from_address(message_bytes: bytes) -> str:
    headers = BytesHeaderParser().parsebytes(message_bytes)
    sender = headers.get("Sender") or headers.get("From") or ""
    addr = parseaddr(str(sender))[1]
    if not addr:
        raise PermanentMailError("the message has no From address (give envelope_from)")
    return addr
