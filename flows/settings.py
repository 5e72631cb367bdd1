"""Where things are and which secrets to use: from the command line, else the environment (cli.md)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field, replace

DEFAULT_DB_URL = "sqlite:///delegation.db"
DEFAULT_OPS_EMAIL = "operations@delegation.invalid"
DEFAULT_SENDER = "Delegate Forms <no-reply@delegation.invalid>"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know. Secrets are paths, never the key material itself."""

    db_url: str = DEFAULT_DB_URL
    inbox_url: str | None = None
    private_key_files: tuple[str, ...] = ()
    outbox_dir: str | None = None
    smtp_url: str | None = None
    require_signature: bool = False
    ops_email: str = DEFAULT_OPS_EMAIL
    sender: str = DEFAULT_SENDER
    lease_seconds: int = 600
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from DELEGATION_* variables, with explicit (non-None) overrides winning."""
        env = os.environ
        keys = env.get("DELEGATION_PRIVATE_KEY_FILE", "")
        base = cls(
            db_url=env.get("DELEGATION_DB_URL", DEFAULT_DB_URL),
            inbox_url=env.get("DELEGATION_INBOX_URL") or None,
            private_key_files=tuple(p for p in keys.split(":") if p),
            outbox_dir=env.get("DELEGATION_OUTBOX_DIR") or None,
            smtp_url=env.get("DELEGATION_SMTP_URL") or None,
            require_signature=_flag(env.get("DELEGATION_REQUIRE_SIGNATURE")),
            ops_email=env.get("DELEGATION_OPS_EMAIL", DEFAULT_OPS_EMAIL),
            sender=env.get("DELEGATION_MAIL_FROM", DEFAULT_SENDER),
            lease_seconds=int(env.get("DELEGATION_LEASE_SECONDS", "600")),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(given.get("private_key_files"), str):
            given["private_key_files"] = tuple(p for p in given["private_key_files"].split(":") if p)
        return replace(base, **given)
