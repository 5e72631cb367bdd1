"""The grants store: the directory, the grants, the forms, the audit trail (SQLAlchemy Core).

`Store.connect(url)` at an entry point; `store.unit_of_work()` for a transaction; `apply_form`,
`record_rejected` and `revoke` write inside the caller's unit of work.
"""

from loaders.store.apply import ApplyResult, apply_form, record_rejected
from loaders.store.directory_csv import DirectoryLoadError
from loaders.store.reads import AUDIT_COLUMNS, GRANT_COLUMNS
from loaders.store.revoke import RevokeResult, revoke
from loaders.store.store import Store, UnitOfWork

__all__ = [
    "AUDIT_COLUMNS",
    "GRANT_COLUMNS",
    "ApplyResult",
    "DirectoryLoadError",
    "RevokeResult",
    "Store",
    "UnitOfWork",
    "apply_form",
    "record_rejected",
    "revoke",
]
