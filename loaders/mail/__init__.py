"""Mail: composing the pipeline's emails (compose) and delivering them once (transport)."""

from loaders.mail.compose import (
    accounts_csv,
    as_bytes,
    completed,
    compose_completed,
    compose_dead_letter,
    compose_quarantined,
    compose_rejected,
    compose_rejected_to_ops,
    message_id_for,
)
from loaders.mail.transport import (
    FolderTransport,
    MailError,
    PermanentMailError,
    SmtpTransport,
    TransientMailError,
    Transport,
    eml_name,
    open_transport,
)

__all__ = [
    "FolderTransport",
    "MailError",
    "PermanentMailError",
    "SmtpTransport",
    "TransientMailError",
    "Transport",
    "accounts_csv",
    "as_bytes",
    "completed",
    "compose_completed",
    "compose_dead_letter",
    "compose_quarantined",
    "compose_rejected",
    "compose_rejected_to_ops",
    "eml_name",
    "message_id_for",
    "open_transport",
]
